import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HttpError } from '../../scenarios/harness/client.js';
import { LoopLagSampler } from '../../scenarios/harness/lag.js';
import { LoopbackServer } from '../../scenarios/harness/server.js';
import { Latencies, percentile, summarize, timed } from '../../scenarios/harness/stats.js';

async function withServer(setup: (s: LoopbackServer) => void, fn: (s: LoopbackServer) => Promise<void>) {
  const server = new LoopbackServer();
  setup(server);
  await server.start();
  try {
    await fn(server);
  } finally {
    await server.close();
  }
}

describe('LoopbackServer', () => {
  it('answers after the route latency and measures max in flight at the server', async () => {
    await withServer(
      // 200 ms: long enough that all 25 requests arrive before the first answer, even on a loaded machine.
      (s) => s.route('/slow', { latencyMs: 200 }),
      async (s) => {
        const { ms } = await timed(() =>
          Promise.all(Array.from({ length: 25 }, () => s.client.get('/slow/x'))),
        );
        assert.ok(ms >= 199 && ms < 2000, `${ms}`);
        assert.equal(s.routeStats('/slow').maxInFlight, 25);
        assert.equal(s.routeStats('/slow').requests, 25);
        assert.equal(s.stats.inFlight, 0);
        s.resetCounters();
        assert.equal(s.maxInFlight, 0);
        await s.client.get('/other');
        assert.equal(s.requests, 1);
        assert.equal(s.routeStats('/slow').requests, 0);
      },
    );
  });

  it('serves at most `capacity` requests of a route at once; the rest wait FIFO', async () => {
    await withServer(
      (s) => s.route('/workers', { latencyMs: 40, capacity: 2 }),
      async (s) => {
        const { ms } = await timed(() =>
          Promise.all(Array.from({ length: 6 }, () => s.client.get('/workers'))),
        );
        // 6 requests, 2 workers, 40 ms each: three rounds.
        assert.ok(ms >= 119 && ms < 2000, `${ms}`);
        assert.equal(s.routeStats('/workers').requests, 6);
      },
    );
  });

  it('fails every k-th request, or a seeded fraction the same way every run', async () => {
    await withServer(
      (s) => s.route('/k', { failEvery: 3, failStatus: 503 }).route('/rate', { failRate: 0.3, seed: 42 }),
      async (s) => {
        const outcomes: (number | 'ok')[] = [];
        for (let i = 0; i < 7; i++) {
          outcomes.push(
            await s.client.get('/k').then(
              () => 'ok' as const,
              (e: unknown) => (e instanceof HttpError ? e.status : -1),
            ),
          );
        }
        assert.deepEqual(outcomes, ['ok', 'ok', 503, 'ok', 'ok', 503, 'ok']);
        const pattern = async () => {
          const out: boolean[] = [];
          for (let i = 0; i < 40; i++) out.push((await s.client.request('GET', '/rate')).status === 200);
          return out;
        };
        const first = await pattern();
        s.route('/rate', { failRate: 0.3, seed: 42 });
        assert.deepEqual(await pattern(), first);
        const failed = first.filter((ok) => !ok).length;
        assert.ok(failed > 3 && failed < 25, `${failed}`);
        assert.equal(s.routeStats('/rate').failures, failed);
      },
    );
  });

  it('routes by longest prefix on path segments, and serves /kv/', async () => {
    await withServer(
      (s) => s.route('/pool', { latencyMs: 1 }).route('/pool/1', { failEvery: 1 }),
      async (s) => {
        await s.client.get('/pool/10');
        await assert.rejects(s.client.get('/pool/1/status'), HttpError);
        assert.equal(s.routeStats('/pool').requests, 1);
        assert.equal(s.routeStats('/pool/1').failures, 1);
        assert.equal(await s.client.get('/kv/a'), '');
        assert.equal(await s.client.put('/kv/a', '[1]'), '[1]');
        assert.equal(await s.client.get('/kv/a'), '[1]');
        assert.equal(await s.call('/work?fail=1').catch((e: unknown) => (e as HttpError).status), 500);
      },
    );
  });
});

describe('measuring helpers', () => {
  it('percentile is nearest-rank, summarize copies its input', () => {
    const xs = Array.from({ length: 100 }, (_, i) => 100 - i);
    assert.equal(percentile([], 50), NaN);
    const s = summarize(xs);
    assert.deepEqual([s.count, s.p50, s.p99, s.max, s.mean], [100, 50, 99, 100, 50.5]);
    assert.equal(xs[0], 100);
  });

  it('Latencies stays bounded past maxSamples', async () => {
    const l = new Latencies(100);
    for (let i = 0; i < 10_000; i++) l.record(i % 10);
    assert.equal(l.count, 10_000);
    assert.equal(l.summary().count, 100);
    assert.equal(await l.time(() => 7), 7);
  });

  it('LoopLagSampler sees a blocked loop, and little lag on an idle one', async () => {
    const busy = new LoopLagSampler().start();
    const until = performance.now() + 120;
    while (performance.now() < until);
    await new Promise((r) => setTimeout(r, 20));
    const blocked = busy.stop();
    assert.ok(blocked.max >= 100, `max ${blocked.max}`);
    const idle = new LoopLagSampler({ resolutionMs: 2 }).start();
    await new Promise((r) => setTimeout(r, 60));
    const calm = idle.stop();
    assert.ok(calm.count > 5, `${calm.count}`);
    assert.ok(calm.p50 < 20, `p50 ${calm.p50}`);
  });
});
