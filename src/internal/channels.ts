import { channel, type Channel } from 'node:diagnostics_channel';

/**
 * Channels named `sluice:<module>:<event>`. Publishers check `hasSubscribers` before building
 * a payload so an unobserved channel costs one property read.
 */
export function channels<const E extends string>(module: string, events: readonly E[]): Record<E, Channel> {
  const out = {} as Record<E, Channel>;
  for (const e of events) out[e] = channel(`sluice:${module}:${e}`);
  return out;
}
