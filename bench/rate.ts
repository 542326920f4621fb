/**
 * `rate` benches: sluice's RateLimiter on its MemoryStore against rate-limiter-flexible's
 * RateLimiterMemory, same keys, same run (fairness rules as in bench/limit.ts).
 *
 * - 1M decisions over 10k keys, each awaited in turn as a request handler would; the limit is
 *   high enough that every decision allows (rate-limiter-flexible rejects its promise on a
 *   denial, which would measure its error path instead). A second group denies half.
 * - sluice runs twice: the async `consume` (a promise per decision, like the peer) and the
 *   synchronous `tryConsume` fast path. Both read the clock once per decision
 *   (`performance.now()`), as the peer reads `Date.now()`.
 * - Every run counts the allowed decisions it got, so no impl can skip work.
 * - With REDIS_URL set, the Redis groups of bench/rate-redis.ts run too.
 */
import { RateLimiterMemory } from 'rate-limiter-flexible';
import { RateLimiter } from '../src/rate/index.js';
import type { Group } from './harness.js';
import { redisGroups } from './rate-redis.js';

const DECISIONS = 1_000_000;
const KEYS = 10_000;
const keys = Array.from({ length: KEYS }, (_, i) => `user:${i * 7919}`);

function check(what: string, actual: number, expected: number): void {
  if (actual !== expected) throw new Error(`${what}: expected ${expected}, got ${actual}`);
}

/** Each run uses a fresh limiter so no run starts on another's spent quotas. */
function consumeGroup(limitPerKey: number, expectAllowed: number, bench: string): Group {
  let sluice!: RateLimiter;
  let peer!: RateLimiterMemory;
  return {
    bench,
    ops: DECISIONS,
    rounds: 5,
    cases: [
      {
        impl: 'sluice',
        setup: () => {
          sluice = new RateLimiter({ limit: limitPerKey, window: '1h' });
        },
        run: async () => {
          let allowed = 0;
          for (let i = 0; i < DECISIONS; i++) {
            const d = await sluice.consume(keys[i % KEYS]!);
            if (d.allowed) allowed++;
          }
          check('sluice allowed', allowed, expectAllowed);
        },
      },
      {
        impl: 'sluice tryConsume',
        setup: () => {
          sluice = new RateLimiter({ limit: limitPerKey, window: '1h' });
        },
        run: () => {
          let allowed = 0;
          for (let i = 0; i < DECISIONS; i++) {
            if (sluice.tryConsume(keys[i % KEYS]!).allowed) allowed++;
          }
          check('sluice tryConsume allowed', allowed, expectAllowed);
          return Promise.resolve();
        },
      },
      {
        impl: 'rate-limiter-flexible',
        setup: () => {
          peer = new RateLimiterMemory({ points: limitPerKey, duration: 3600 });
        },
        run: async () => {
          let allowed = 0;
          for (let i = 0; i < DECISIONS; i++) {
            try {
              await peer.consume(keys[i % KEYS]!);
              allowed++;
            } catch {
              // denied: rate-limiter-flexible rejects with its RateLimiterRes
            }
          }
          check('rate-limiter-flexible allowed', allowed, expectAllowed);
        },
      },
    ],
  };
}

const perKey = DECISIONS / KEYS;

/** The Redis groups run when REDIS_URL is set (`.ci/run` and the scenarios' convention). */
const redisUrl = process.env['REDIS_URL'];

export default (): Group[] => [
  consumeGroup(perKey, DECISIONS, 'rate/consume-1m-10k-keys'),
  consumeGroup(perKey / 2, DECISIONS / 2, 'rate/consume-1m-half-denied'),
  ...(redisUrl === undefined || redisUrl === '' ? [] : redisGroups(redisUrl)),
];
