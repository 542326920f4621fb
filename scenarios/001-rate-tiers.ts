// Seed 001 (multi-agent API): per-endpoint rate-limit tiers. The report started from slowapi
// with `default_limits=[120/min]` and no per-endpoint decorators: one 120/min budget per IP
// shared by every endpoint. Naive replays that (a sluice RateLimiter of 120/min on every
// route); the fix is four Tiers — auth 5, write 30, read 120, health 300 per minute.
import type { IncomingMessage } from 'node:http';
import { rateLimit } from '../src/rate/http/index.js';
import { RateLimiter, Tiers } from '../src/rate/index.js';
import { count, send, startApi, type Middleware } from './harness/rate-app.js';
import type { Scenario } from './harness/types.js';

const LOGINS = 10;
const READS = 120;
const HEALTH = 20;

function tierOf(req: IncomingMessage): string {
  const url = req.url ?? '/';
  if (url.startsWith('/login')) return 'auth';
  if (url.startsWith('/health')) return 'health';
  return req.method === 'GET' || req.method === 'HEAD' ? 'read' : 'write';
}

async function replay(middleware: Middleware) {
  const api = await startApi(middleware, (_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end('{"ok":true}');
  });
  try {
    const logins = await send(`${api.url}/login`, LOGINS, {
      method: 'POST',
      body: '{"user":"a","password":"guess"}',
    });
    const healthDuringAuth = await send(`${api.url}/health`, HEALTH);
    const reads = await send(`${api.url}/agents`, READS);
    const healthAfterReads = await send(`${api.url}/health`, HEALTH);
    return { logins, healthDuringAuth, reads, healthAfterReads };
  } finally {
    await api.close();
  }
}

const scenario: Scenario = {
  seed: '001',
  name: 'rate-tiers',
  api: 'Tiers + rateLimit (sluice/rate/http)',
  workload: `one client: ${LOGINS} login attempts, ${HEALTH} health checks, ${READS} reads, ${HEALTH} more health checks on a loopback API`,
  async run(ctx) {
    ctx.progress(0, 2, 'naive');
    const global = new RateLimiter({ policy: '120/1m', name: 'default' });
    const naive = await replay(rateLimit({ limiter: global }));
    ctx.progress(1, 2, 'sluice');
    const tiers = new Tiers({ auth: '5/1m', write: '30/1m', read: '120/1m', health: '300/1m' });
    const fixed = await replay(rateLimit({ tiers, tier: tierOf }));
    ctx.progress(2, 2, 'sluice');

    const sixth = fixed.logins[5]!;
    const retryAfter = sixth.headers.get('retry-after');
    const shown = `6th login → ${sixth.status}, Retry-After: ${retryAfter}, RateLimit: ${sixth.headers.get('ratelimit')}, RateLimit-Policy: ${sixth.headers.get('ratelimit-policy')}`;
    const firstFive = fixed.logins.slice(0, 5).every((r) => r.status === 200);
    const healthOk = count(fixed.healthDuringAuth, 200) + count(fixed.healthAfterReads, 200);
    const naiveHealthOk = count(naive.healthDuringAuth, 200) + count(naive.healthAfterReads, 200);
    return {
      naive: {
        loginsAllowed: count(naive.logins, 200),
        readsAllowed: count(naive.reads, 200),
        healthOk: naiveHealthOk,
      },
      sluice: {
        loginsAllowed: count(fixed.logins, 200),
        readsAllowed: count(fixed.reads, 200),
        healthOk,
      },
      headline: {
        measure: 'password guesses allowed',
        of: LOGINS,
        naive: count(naive.logins, 200),
        sluice: count(fixed.logins, 200),
        better: 'lower',
      },
      invariant: `${shown}; health ${healthOk}/${2 * HEALTH} while auth is exhausted and after ${READS} reads (naive, one shared budget: ${naiveHealthOk}/${2 * HEALTH})`,
      ok:
        firstFive &&
        sixth.status === 429 &&
        retryAfter !== null &&
        Number(retryAfter) >= 1 &&
        sixth.headers.get('ratelimit') !== null &&
        sixth.headers.get('ratelimit-policy') === '"auth";q=5;w=60' &&
        count(fixed.logins, 200) === 5 &&
        healthOk === 2 * HEALTH &&
        count(fixed.reads, 200) === READS,
    };
  },
};

export default scenario;
