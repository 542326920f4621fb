import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { serve, type HttpBindings } from '@hono/node-server';
import { Hono, type Context } from 'hono';
import { honoRateLimit, type RateLimitOptions } from '../../../src/rate/http/index.js';
import { RateLimiter } from '../../../src/rate/index.js';
import { contract, type Start } from './contract.js';
import { hit } from './helpers.js';

type Ctx = Context<{ Bindings: HttpBindings }>;

function listen(app: Hono<{ Bindings: HttpBindings }>): Promise<{ url: string; close(): Promise<void> }> {
  return new Promise((resolve) => {
    const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info) =>
      resolve({
        url: `http://127.0.0.1:${info.port}`,
        close: () =>
          new Promise<void>((done) => {
            (server as unknown as { closeAllConnections(): void }).closeAllConnections();
            server.close(() => done());
          }),
      }),
    );
  });
}

const start: Start = async (options, variant) => {
  const app = new Hono<{ Bindings: HttpBindings }>();
  const limit = honoRateLimit(options as RateLimitOptions<Ctx>);
  app.use(limit);
  if (variant?.twice === true) app.use('/login', limit);
  app.all('*', (c) => c.text('ok'));
  return listen(app);
};

contract('hono', start, (c: Ctx) => c.req.path);

describe('hono: handlers that build their own Response', () => {
  it('still get the rate-limit headers', async () => {
    const app = new Hono<{ Bindings: HttpBindings }>();
    app.use(honoRateLimit({ limiter: new RateLimiter({ policy: '5/1m', name: 'auth' }) }));
    app.get('/raw', () => new Response('raw', { headers: { 'x-own': '1' } }));
    const server = await listen(app);
    try {
      const res = await hit(`${server.url}/raw`);
      assert.equal(res.body, 'raw');
      assert.equal(res.headers.get('x-own'), '1');
      assert.equal(res.headers.get('ratelimit'), '"auth";r=4;t=12');
    } finally {
      await server.close();
    }
  });
});
