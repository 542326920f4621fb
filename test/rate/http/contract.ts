// The behaviour every adapter shares, run against a real server on 127.0.0.1 with fetch.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseItem, parseList } from 'structured-headers';
import type { RateLimitOptions } from '../../../src/rate/http/index.js';
import { RateLimiter } from '../../../src/rate/index.js';
import { collectErrors, failClosed, hit, hits, newTiers, shadow, tierOf, withFallback } from './helpers.js';

/** Starts the framework with the middleware; `twice` mounts a second copy on /login. */
export type Start = (
  options: RateLimitOptions<never>,
  variant?: { readonly twice?: boolean },
) => Promise<{ readonly url: string; close(): Promise<void> }>;

export function contract(name: string, start: Start, pathOf: (req: never) => string): void {
  const withTiers = (extra?: object): RateLimitOptions<never> => ({
    tiers: newTiers(),
    tier: (req: never) => tierOf(pathOf(req)),
    ...extra,
  });

  describe(`${name}: the shared contract`, () => {
    it('6th login → 429 with Retry-After, RateLimit headers and a problem+json body', async () => {
      const app = await start(withTiers());
      try {
        const first = await hit(`${app.url}/login`, { method: 'POST' });
        assert.equal(first.status, 200);
        assert.equal(first.headers.get('ratelimit-policy'), '"auth";q=5;w=60');
        assert.equal(first.headers.get('ratelimit'), '"auth";r=4;t=12');
        assert.deepEqual(await hits(`${app.url}/login`, 4, { method: 'POST' }), [200, 200, 200, 200]);
        const denied = await hit(`${app.url}/login`, { method: 'POST' });
        assert.equal(denied.status, 429);
        const retry = Number(denied.headers.get('retry-after'));
        assert.ok(Number.isInteger(retry) && retry >= 11 && retry <= 12, `Retry-After ${retry}`);
        assert.match(denied.headers.get('content-type')!, /^application\/problem\+json/);
        // Our own output, parsed by an RFC 9651 parser.
        const policy = parseList(denied.headers.get('ratelimit-policy')!);
        assert.equal(policy[0]![0], 'auth');
        assert.equal(policy[0]![1].get('q'), 5);
        assert.equal(policy[0]![1].get('w'), 60);
        const state = parseList(denied.headers.get('ratelimit')!);
        assert.equal(state[0]![0], 'auth');
        assert.equal(state[0]![1].get('r'), 0);
        assert.equal(state[0]![1].get('t'), 60);
        assert.equal(parseItem(denied.headers.get('retry-after')!)[0], retry);
        const body = JSON.parse(denied.body);
        assert.equal(body.status, 429);
        assert.match(body.type, /quota-exceeded$/);
        assert.equal(body.title, 'Too Many Requests');
        assert.equal(body.retryAfter, retry);
        assert.deepEqual(body['violated-policies'], ['auth']);
      } finally {
        await app.close();
      }
    });

    it('tiers are independent: health keeps answering while auth is exhausted; tier undefined = unlimited', async () => {
      const app = await start(withTiers());
      try {
        await hits(`${app.url}/login`, 6, { method: 'POST' });
        assert.equal((await hit(`${app.url}/login`, { method: 'POST' })).status, 429);
        const health = await hits(`${app.url}/health`, 20);
        assert.ok(health.every((s) => s === 200));
        const h = await hit(`${app.url}/health`);
        // 21 health requests at 300/min; a slow machine may have refilled one or two meanwhile.
        assert.match(h.headers.get('ratelimit')!, /^"health";r=2(79|8[0-2]);t=[2-5]$/);
        const free = await hit(`${app.url}/free`);
        assert.equal(free.status, 200);
        assert.equal(free.headers.get('ratelimit'), null);
      } finally {
        await app.close();
      }
    });

    it('no double counting: the middleware mounted twice consumes once per request', async () => {
      const app = await start(withTiers(), { twice: true });
      try {
        const a = await hit(`${app.url}/login`, { method: 'POST' });
        const b = await hit(`${app.url}/login`, { method: 'POST' });
        assert.equal(a.headers.get('ratelimit'), '"auth";r=4;t=12');
        assert.equal(b.headers.get('ratelimit'), '"auth";r=3;t=24');
        assert.deepEqual(await hits(`${app.url}/login`, 4, { method: 'POST' }), [200, 200, 200, 429]);
      } finally {
        await app.close();
      }
    });

    it('a throwing, rejecting or non-string key answers 500, is reported, and the server lives on', async () => {
      let mode = 0;
      const key = (): string | Promise<string> => {
        mode++;
        if (mode === 1) throw new Error('sync boom');
        if (mode === 2) return Promise.reject(new Error('async boom'));
        if (mode === 3) return 42 as unknown as string;
        return 'ok';
      };
      const app = await start(withTiers({ key }));
      try {
        const { value, errors } = await collectErrors(async () => [
          await hit(`${app.url}/items`),
          await hit(`${app.url}/items`),
          await hit(`${app.url}/items`),
          await hit(`${app.url}/items`),
        ]);
        assert.deepEqual(
          value.map((r) => r.status),
          [500, 500, 500, 200],
        );
        assert.equal(JSON.parse(value[0]!.body).status, 500);
        assert.match(value[0]!.headers.get('content-type')!, /^application\/problem\+json/);
        assert.deepEqual(
          errors.map((e) => [e.where, (e.error as Error).message.slice(0, 21)]),
          [
            ['key', 'sync boom'],
            ['key', 'async boom'],
            ['limiter', 'Expected `key` to be '],
          ],
        );
      } finally {
        await app.close();
      }
    });

    it('shadow mode: the 6th login passes and still carries the real state', async () => {
      const app = await start({ limiter: shadow() });
      try {
        await hits(`${app.url}/login`, 5, { method: 'POST' });
        const sixth = await hit(`${app.url}/login`, { method: 'POST' });
        assert.equal(sixth.status, 200);
        assert.equal(sixth.headers.get('ratelimit'), '"auth";r=0;t=60');
        assert.equal(sixth.headers.get('retry-after'), null);
      } finally {
        await app.close();
      }
    });

    it('a failing store with onStoreError: fail-closed answers 503 with Retry-After', async () => {
      const { value: res, errors } = await collectErrors(async () => {
        const app = await start({ limiter: failClosed() });
        try {
          return await hit(`${app.url}/login`, { method: 'POST' });
        } finally {
          await app.close();
        }
      });
      assert.equal(res.status, 503);
      assert.equal(res.headers.get('retry-after'), '1');
      assert.equal(JSON.parse(res.body).status, 503);
      assert.equal(errors.length, 1); // the limiter reported the store error once
    });

    it('a denial by the fallback store (the main one is down) is an ordinary 429, not a 503', async () => {
      const { value, errors } = await collectErrors(async () => {
        const app = await start({ limiter: withFallback() });
        try {
          const first = await hit(`${app.url}/login`, { method: 'POST' });
          const second = await hit(`${app.url}/login`, { method: 'POST' });
          return [first, second] as const;
        } finally {
          await app.close();
        }
      });
      const [first, second] = value;
      assert.equal(first.status, 200);
      assert.equal(second.status, 429);
      assert.match(JSON.parse(second.body).type, /quota-exceeded$/);
      assert.equal(errors.length, 2); // each store failure is still reported
    });

    it('legacy headers: X-RateLimit-Limit / Remaining / Reset (Unix seconds)', async () => {
      const limiter = new RateLimiter({ policy: '5/1m', name: 'auth' });
      const app = await start({ limiter, headers: 'legacy' });
      try {
        const res = await hit(`${app.url}/login`, { method: 'POST' });
        assert.equal(res.headers.get('ratelimit'), null);
        assert.equal(res.headers.get('x-ratelimit-limit'), '5');
        assert.equal(res.headers.get('x-ratelimit-remaining'), '4');
        const reset = Number(res.headers.get('x-ratelimit-reset'));
        const now = Date.now() / 1000;
        assert.ok(reset >= now + 11 && reset <= now + 14, `reset ${reset} vs now ${now}`);
      } finally {
        await app.close();
      }
    });

    it('HEAD requests are limited and a denied HEAD carries headers but no body', async () => {
      const limiter = new RateLimiter({ policy: '1/1m', name: 'auth' });
      const app = await start({ limiter });
      try {
        assert.equal((await hit(`${app.url}/health`, { method: 'HEAD' })).status, 200);
        const denied = await hit(`${app.url}/health`, { method: 'HEAD' });
        assert.equal(denied.status, 429);
        assert.equal(denied.body, '');
        assert.equal(denied.headers.get('retry-after'), '60');
      } finally {
        await app.close();
      }
    });
  });
}
