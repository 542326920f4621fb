/**
 * `rate` on Redis: 50 concurrent callers deciding over 10k keys against REDIS_URL, sluice's
 * RedisStore (ioredis) vs rate-limiter-flexible's RateLimiterRedis (ioredis), same limit.
 *
 * - Each impl has its own ioredis client and its own key prefix; every run uses fresh keys
 *   (a run number in the prefix), so no run sees another's state.
 * - sluice runs its default (GCRA) and the fixed window; rate-limiter-flexible's Redis limiter is
 *   a fixed-window counter (INCR + TTL in a Lua script).
 * - Round trips: `INFO commandstats` before and after every sluice run; the run throws unless
 *   Redis counted exactly one EVALSHA per decision (and the harness then reports nothing).
 *
 * Wired into bench/rate.ts as `redisGroups(process.env.REDIS_URL)` when REDIS_URL is set.
 */
import { Redis } from 'ioredis';
import { RateLimiterRedis, type RateLimiterRes } from 'rate-limiter-flexible';
import { RateLimiter, type RateAlgorithm } from '../src/rate/index.js';
import { ioredisScripting, RedisStore } from '../src/rate/redis/index.js';
import type { Case, Group } from './harness.js';

const CALLERS = 50;
const KEYS = 10_000;
const DECISIONS = 20_000;
const LIMIT = 100;
const WINDOW_S = 60;

let runs = 0;

async function evalshaCalls(admin: Redis): Promise<number> {
  const info = await admin.info('commandstats');
  const match = /cmdstat_evalsha:calls=(\d+)/.exec(info);
  return match === null ? 0 : Number(match[1]);
}

/** 50 callers, each deciding DECISIONS / CALLERS times in turn, keys spread over KEYS. */
async function callers(decide: (key: string) => Promise<boolean>): Promise<number> {
  let allowed = 0;
  const per = DECISIONS / CALLERS;
  await Promise.all(
    Array.from({ length: CALLERS }, async (_, c) => {
      for (let i = 0; i < per; i++) {
        if (await decide(`user${((c * per + i) * 7919) % KEYS}`)) allowed++;
      }
    }),
  );
  return allowed;
}

function sluiceCase(url: string, algorithm: RateAlgorithm, impl: string): Case {
  let client: Redis | undefined;
  let admin: Redis | undefined;
  let limiter: RateLimiter;
  return {
    impl,
    setup: async () => {
      client ??= new Redis(url, { enableOfflineQueue: true, maxRetriesPerRequest: 1 });
      admin ??= new Redis(url);
      const store = new RedisStore(ioredisScripting(client), {
        prefix: `sluice:bench:${process.pid}:${++runs}:`,
      });
      limiter = new RateLimiter({ limit: LIMIT, window: WINDOW_S * 1000, algorithm, store, name: 'b' });
      await limiter.consume('warm'); // loads the script (NOSCRIPT → EVAL) outside the count
    },
    run: async () => {
      const before = await evalshaCalls(admin!);
      const allowed = await callers(async (key) => {
        const d = await limiter.consume(key);
        if (d.storeError !== undefined) throw d.storeError as Error;
        return d.allowed;
      });
      const trips = (await evalshaCalls(admin!)) - before;
      if (trips !== DECISIONS) throw new Error(`${impl}: ${trips} EVALSHA for ${DECISIONS} decisions`);
      if (allowed !== DECISIONS) throw new Error(`${impl}: ${allowed} of ${DECISIONS} allowed`);
    },
  };
}

function flexibleCase(url: string): Case {
  let client: Redis | undefined;
  let limiter: RateLimiterRedis;
  return {
    impl: 'rate-limiter-flexible',
    setup: async () => {
      client ??= new Redis(url, { enableOfflineQueue: true, maxRetriesPerRequest: 1 });
      limiter = new RateLimiterRedis({
        storeClient: client,
        points: LIMIT,
        duration: WINDOW_S,
        keyPrefix: `rlf:bench:${process.pid}:${++runs}`,
      });
      await limiter.consume('warm');
    },
    run: async () => {
      const allowed = await callers(async (key) => {
        try {
          await limiter.consume(key);
          return true;
        } catch (rejection) {
          if (rejection instanceof Error) throw rejection;
          return (rejection as RateLimiterRes).remainingPoints > 0;
        }
      });
      if (allowed !== DECISIONS) throw new Error(`rate-limiter-flexible: ${allowed} of ${DECISIONS} allowed`);
    },
  };
}

/** The Redis groups of the rate bench, against the Redis at `url`. */
export function redisGroups(url: string): Group[] {
  return [
    {
      bench: 'rate/redis-20k-c50-10k-keys',
      ops: DECISIONS,
      rounds: 5,
      cases: [
        sluiceCase(url, 'gcra', 'sluice'),
        sluiceCase(url, 'fixed-window', 'sluice (fixed-window)'),
        flexibleCase(url),
      ],
    },
  ];
}
