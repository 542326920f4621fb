import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Fastify, { type FastifyRequest } from 'fastify';
import { fastifyRateLimit, type RateLimitOptions } from '../../../src/rate/http/index.js';
import { RateLimiter } from '../../../src/rate/index.js';
import { contract, type Start } from './contract.js';
import { hit, hits, newTiers, tierOf } from './helpers.js';

const start: Start = async (options, variant) => {
  const app = Fastify();
  const plugin = fastifyRateLimit(options as RateLimitOptions<FastifyRequest>);
  await app.register(plugin);
  // Registered twice (e.g. once by a shared setup plugin, once by the app): counted once.
  if (variant?.twice === true) await app.register(plugin);
  app.all('/*', async () => 'ok');
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}`, close: () => app.close() };
};

contract('fastify', start, (req: FastifyRequest) => req.url.split('?')[0]!);

describe('fastify: route config and 404s', () => {
  it('404s are counted; config.rateLimit overrides the tier per route or opts out', async () => {
    const app = Fastify();
    await app.register(
      fastifyRateLimit<FastifyRequest>({ tiers: newTiers(), tier: (req) => tierOf(req.url) }),
    );
    app.post('/session', { config: { rateLimit: { tier: 'auth', cost: 5 } } }, async () => 'ok');
    app.get('/metrics', { config: { rateLimit: false } }, async () => 'ok');
    app.get('/items', async () => 'ok');
    await app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = app.server.address() as { port: number };
    const url = `http://127.0.0.1:${port}`;
    try {
      const missing = await hit(`${url}/login/nope`);
      assert.equal(missing.status, 404);
      assert.equal(missing.headers.get('ratelimit'), '"auth";r=4;t=12');
      // /session costs the whole auth quota of this client...
      assert.equal((await hit(`${url}/session`, { method: 'POST' })).status, 429);
      assert.deepEqual(await hits(`${url}/login/nope`, 5), [404, 404, 404, 404, 429]);
      const metrics = await hit(`${url}/metrics`);
      assert.equal(metrics.status, 200);
      assert.equal(metrics.headers.get('ratelimit'), null);
      assert.equal((await hit(`${url}/items`)).headers.get('ratelimit'), '"read";r=119;t=1');
    } finally {
      await app.close();
    }
  });

  it('a bad route config is refused when the route is registered', async () => {
    const app = Fastify();
    await app.register(fastifyRateLimit({ tiers: newTiers(), tier: () => 'read' }));
    assert.throws(
      () => app.get('/x', { config: { rateLimit: { tier: 'nope' } } }, async () => 'ok'),
      /Expected `config.rateLimit of route \/x.tier` to be a tier name of `tiers`/,
    );
    await app.close();
    const single = Fastify();
    await single.register(fastifyRateLimit({ limiter: new RateLimiter({ policy: '5/1m' }) }));
    assert.throws(
      () => single.get('/y', { config: { rateLimit: { tier: 'auth' } } }, async () => 'ok'),
      /to be undefined with `limiter`/,
    );
    await single.close();
  });
});
