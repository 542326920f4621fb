import { subscribe, unsubscribe } from 'node:diagnostics_channel';

/** A promise with its resolvers, for tests that settle work by hand. */
export function deferred<T = void>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * Collects the user-callback failures published on `channel` (`{ error, source, where }`);
 * `stop()` unsubscribes.
 */
export function captureReports(channel: string): {
  reports: { error: unknown; where: string }[];
  stop: () => void;
} {
  const reports: { error: unknown; where: string }[] = [];
  const onMessage = (message: unknown) => {
    const m = message as { error: unknown; where?: string };
    if (m.where !== undefined) reports.push({ error: m.error, where: m.where });
  };
  subscribe(channel, onMessage);
  return { reports, stop: () => unsubscribe(channel, onMessage) };
}

/**
 * Polls `check` every few ms until it holds; throws `timed out waiting for <what>` after `ms`.
 * `what` may be a function, to report the state at the time of the failure.
 */
export async function until(check: () => boolean, what: string | (() => string), ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
