import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { rateLimit, type RateLimitOptions } from '../../../src/rate/http/index.js';
import { RateLimiter, Tiers } from '../../../src/rate/index.js';
import { RateLimitedError } from '../../../src/errors.js';
import { contract, type Start } from './contract.js';
import { collectErrors, hit, urlOf } from './helpers.js';

const start: Start = async (options, variant) => {
  const limit = rateLimit(options as RateLimitOptions<IncomingMessage>);
  const handler = (_req: IncomingMessage, res: ServerResponse): void => void res.end('ok');
  const server = createServer((req, res) =>
    limit(req, res, () => {
      if (variant?.twice === true && req.url === '/login') limit(req, res, () => handler(req, res));
      else handler(req, res);
    }),
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: urlOf(server),
    close: () => new Promise<void>((resolve) => server.close(() => resolve()).closeAllConnections()),
  };
};

contract('node:http', start, (req: IncomingMessage) => req.url ?? '/');

describe('node:http: options and edge cases', () => {
  it('validates eagerly with the DESIGN message shape', () => {
    const limiter = new RateLimiter({ policy: '5/1m' });
    const tiers = new Tiers({ auth: '5/1m' });
    assert.throws(() => rateLimit({}), /Expected `options` to be given exactly one of `limiter` and `tiers`/);
    assert.throws(
      () => rateLimit({ limiter, tiers, tier: () => 'auth' }),
      /Expected `options` to be given exactly one of `limiter` and `tiers`/,
    );
    assert.throws(() => rateLimit({ tiers }), /Expected `tier` to be a function/);
    assert.throws(
      () => rateLimit({ limiter, tier: () => 'x' }),
      /Expected `tier` to be undefined when `limiter`/,
    );
    assert.throws(
      () => rateLimit({ limiter, headers: 'x' as 'draft' }),
      /Expected `headers` to be one of 'draft', 'legacy', 'both'/,
    );
    assert.throws(
      () => rateLimit({ limiter, key: 'ip' as never }),
      /Expected `key` to be a function or undefined/,
    );
    assert.throws(() => rateLimit({ limiter: {} as RateLimiter }), /Expected `limiter` to be a RateLimiter/);
    // A name a header cannot carry is refused at construction, not on the first request.
    const bad = new RateLimiter({ policy: '5/1m', name: 'a\r\nSet-Cookie: x=1' });
    assert.throws(() => rateLimit({ limiter: bad }), /Expected `limiter.policy.name` to be printable ASCII/);
    // ...unless no header is sent.
    assert.equal(typeof rateLimit({ limiter: bad, headers: false }), 'function');
  });

  it('ids with quotes and backslashes are escaped; unknown tier → 500; RateLimitedError from a callback → 429', async () => {
    const tiers = new Tiers({ 'say "hi" \\o/': '5/1m', plain: '5/1m' });
    let n = 0;
    const app = await start({
      tiers,
      tier: () => (++n === 2 ? 'nope' : 'say "hi" \\o/'),
      cost: () => {
        if (n === 3) throw new RateLimitedError('custom', { retryAfterMs: 2500 });
        return 1;
      },
    });
    try {
      const { value, errors } = await collectErrors(async () => [
        await hit(`${app.url}/x`),
        await hit(`${app.url}/x`),
        await hit(`${app.url}/x`),
      ]);
      assert.equal(value[0]!.headers.get('ratelimit-policy'), '"say \\"hi\\" \\\\o/";q=5;w=60');
      assert.equal(value[1]!.status, 500);
      assert.equal(value[2]!.status, 429);
      assert.equal(value[2]!.headers.get('retry-after'), '3');
      assert.deepEqual(
        errors.map((e) => e.where),
        ['limiter'],
      );
    } finally {
      await app.close();
    }
  });

  it('both header sets; response already sent by an earlier middleware: nothing written, next not called', async () => {
    const limiter = new RateLimiter({ policy: '5/1m', name: 'auth' });
    const limit = rateLimit({
      limiter,
      headers: 'both',
      key: async () => {
        await new Promise((r) => setTimeout(r, 20));
        return 'k';
      },
    });
    let nextCalls = 0;
    const server = createServer((req, res) => {
      if (req.url === '/early') setTimeout(() => res.end('timeout answered'), 5);
      limit(req, res, () => {
        nextCalls++;
        if (!res.writableEnded) res.end('ok');
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const early = await hit(`${urlOf(server)}/early`);
      assert.equal(early.body, 'timeout answered');
      await new Promise((r) => setTimeout(r, 30));
      assert.equal(nextCalls, 0);
      const normal = await hit(`${urlOf(server)}/x`);
      assert.equal(normal.headers.get('ratelimit'), '"auth";r=3;t=24');
      assert.equal(normal.headers.get('x-ratelimit-remaining'), '3');
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it('a client that aborts mid-decision crashes nothing; the server keeps answering', async () => {
    const limiter = new RateLimiter({ policy: '100/1m', name: 'read' });
    let decided = 0;
    const limit = rateLimit({
      limiter,
      key: async () => {
        await new Promise((r) => setTimeout(r, 30));
        decided++;
        return 'k';
      },
    });
    const server = createServer((req, res) => limit(req, res, () => res.end('ok')));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const aborted = Array.from({ length: 5 }, () =>
        fetch(`${urlOf(server)}/x`, { signal: AbortSignal.timeout(5) }).catch((e: unknown) => e),
      );
      for (const r of await Promise.all(aborted)) assert.ok(r instanceof Error);
      await new Promise((r) => setTimeout(r, 60));
      assert.ok(decided <= 5);
      assert.equal((await hit(`${urlOf(server)}/x`)).status, 200);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it('keep-alive: a denied POST whose body was never read leaves the connection usable', async () => {
    const limiter = new RateLimiter({ policy: '1/1m', name: 'auth' });
    const app = await start({ limiter });
    try {
      const body = 'x'.repeat(64 * 1024);
      const statuses = [];
      for (let i = 0; i < 3; i++)
        statuses.push((await hit(`${app.url}/login`, { method: 'POST', body })).status);
      assert.deepEqual(statuses, [200, 429, 429]);
    } finally {
      await app.close();
    }
  });
});

describe('rateLimit (node:http): a broken clock', () => {
  it('falls back to the limiter’s onStoreError (fail-open by default) instead of answering 500', async () => {
    const limiter = new RateLimiter({ policy: '5/1m', name: 'auth', clock: { now: () => NaN } });
    const limit = rateLimit({ limiter });
    const server = createServer((req, res) => limit(req, res, () => res.end('ok')));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const res = await fetch(`http://127.0.0.1:${port}/`);
      assert.equal(res.status, 200);
      assert.equal(await res.text(), 'ok');
      assert.equal(limiter.stats.storeErrors, 1);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
