// TypeScript consumer, type-checked against the installed package with `strict`,
// `exactOptionalPropertyTypes` and `module` nodenext, node16 and bundler in turn.
import { SluiceError, type SluiceErrorCode } from 'sluice';
import { Cache } from 'sluice/cache';
import { BatchWriter, Loader } from 'sluice/batch';
import { KeyedMutex, Limiter, Mutex, map, settle, type RunOptions } from 'sluice/limit';
import { RateLimiter, Tiers, type RateDecision } from 'sluice/rate';

// Configuration as services really have it: every field may be missing.
interface Config {
  readonly concurrency: number;
  readonly maxQueue?: number | undefined;
  readonly ttl?: number | undefined;
  readonly maxBatch?: number | undefined;
  readonly signal?: AbortSignal | undefined;
}
declare const cfg: Config;

// exactOptionalPropertyTypes: passing `undefined` to an optional option means "the default".
const limiter = new Limiter({ concurrency: cfg.concurrency, maxQueue: cfg.maxQueue });
const mutex = new Mutex({ maxQueue: cfg.maxQueue });
const locks = new KeyedMutex<string>({ maxQueue: cfg.maxQueue });
const cache = new Cache<string, number>({ maxSize: 100, ttl: cfg.ttl });
const loader = new Loader<number, string>(async (ids) => ids.map(String), { maxBatch: cfg.maxBatch });
const writer = new BatchWriter<string>(async () => undefined, { maxPending: cfg.maxQueue });
const rate = new RateLimiter({ limit: cfg.concurrency, window: '1m', burst: cfg.maxBatch, store: undefined });
const tiers = new Tiers({ auth: '5/1m', read: { limit: 120, window: 60_000 } });
const options: RunOptions = { signal: cfg.signal, priority: undefined, timeout: undefined };

export async function main(): Promise<void> {
  const decision: RateDecision = await rate.consume('ip', { cost: undefined, signal: cfg.signal });
  if (!decision.allowed) console.log(decision.retryAfterMs, tiers.tryConsume('auth', 'ip').remaining);
  const n: number = await limiter.run(() => 1, options);
  const s: string = await loader.load(n);
  await mutex.run(() => s);
  await locks.run('k', () => s, { signal: cfg.signal });
  const v: number = await cache.getOrLoad('k', async () => 2);
  const doubled: number[] = await map([v], (x) => x * 2, { concurrency: 2, signal: cfg.signal });
  const [first] = await settle([() => doubled[0] ?? 0]);
  if (first.ok) console.log(first.value.toFixed(0));
  await writer.add('row');
  await writer.close();
  try {
    await limiter.close();
  } catch (err) {
    const code: SluiceErrorCode | undefined = err instanceof SluiceError ? err.code : undefined;
    // @ts-expect-error a misspelt code fails to compile
    if (code === 'SLUICE_QUEUE_FUL') throw err;
  }
}
