// The example service under load: starts it, checks a client disconnect cancels its upstream
// fan-out, drives it with autocannon, sends SIGTERM mid-load, and checks that nothing was lost.
//
// With DATABASE_URL the service runs as a child process (`main.ts`, a real SIGTERM, a real exit
// code) against Postgres, in a schema of its own. Without it, the service runs in this process
// on PGlite: PGlite is embedded, so a child's database would die with the child (and a fresh
// on-disk one takes ~20 s to initialise here), leaving nothing to count rows in. That run goes
// through the same `serve()` signal handler, fed by an EventEmitter instead of the OS.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { Agent, get } from 'node:http';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import autocannon from 'autocannon';
import { migrate, openDb, type Db } from '../../examples/fastify-service/db.js';
import { buildService, serve, type ServiceStats } from '../../examples/fastify-service/server.js';
import { startFakeUpstream, type FakeUpstream } from '../../examples/fastify-service/upstream.js';
import { until } from '../helpers/async.js';

const MAIN = fileURLToPath(new URL('../../examples/fastify-service/main.ts', import.meta.url));
const LOAD_MS = 2_000; // SIGTERM after this much load
const CONNECTIONS = 16;
const FAN_OUT = 4; // the service's default

interface Running {
  readonly url: string;
  /** Sends SIGTERM. */
  terminate(): void;
  /** Exit code and the service's final stats. */
  readonly exited: Promise<{ code: number | null; stats: ServiceStats | undefined }>;
  /** Every audit row's request id, read after exit. */
  auditIds(): Promise<Set<string>>;
  cleanup(): Promise<void>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies are checked by the assertions
async function getJson(url: string): Promise<{ status: number; body: any }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.json() };
}

/** The service as a child process on Postgres, in a schema dropped afterwards. */
async function startChild(databaseUrl: string, upstream: FakeUpstream): Promise<Running> {
  const schema = `ex_${process.pid}_${randomBytes(4).toString('hex')}`;
  const admin = await openDb(databaseUrl);
  await admin.query(`CREATE SCHEMA ${schema}`);
  const scoped = new URL(databaseUrl);
  scoped.searchParams.set('options', `-c search_path=${schema}`);
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN], {
    env: {
      ...process.env,
      DATABASE_URL: scoped.href,
      UPSTREAM_URL: upstream.url,
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let stats: ServiceStats | undefined;
  let onListening: (url: string) => void = () => undefined;
  const listening = new Promise<string>((resolve) => (onListening = resolve));
  let buffer = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    buffer += chunk;
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      if (!line.startsWith('{')) continue;
      const msg = JSON.parse(line);
      if (typeof msg.listening === 'string') onListening(msg.listening);
      if (msg.stats !== undefined) stats = msg.stats;
    }
  });
  const exited = new Promise<{ code: number | null; stats: ServiceStats | undefined }>((resolve) =>
    child.once('exit', (code) => resolve({ code, stats })),
  );
  const url = await Promise.race([
    listening,
    exited.then(({ code }) => Promise.reject(new Error(`service exited with ${code} before listening`))),
  ]);
  return {
    url,
    terminate: () => child.kill('SIGTERM'),
    exited,
    async auditIds() {
      const { rows } = await admin.query<{ request_id: string }>(`SELECT request_id FROM ${schema}.audit`);
      return new Set(rows.map((r) => r.request_id));
    },
    async cleanup() {
      if (child.exitCode === null) child.kill('SIGKILL');
      await admin.query(`DROP SCHEMA ${schema} CASCADE`);
      await admin.close();
    },
  };
}

/** The service in this process on PGlite; the database outlives it so rows can be counted. */
async function startInProcess(upstream: FakeUpstream): Promise<Running> {
  const lite = await openDb(undefined);
  await migrate(lite);
  let closedByService = false;
  const db: Db = {
    query: (sql, params) => lite.query(sql, params),
    get queries() {
      return lite.queries;
    },
    close: async () => {
      closedByService = true;
    },
  };
  const service = buildService({ db, upstreamUrl: upstream.url });
  const signals = new EventEmitter();
  const { url, closed } = await serve(service, { port: 0, host: '127.0.0.1', signals });
  return {
    url,
    terminate: () => signals.emit('SIGTERM', 'SIGTERM'),
    exited: closed.then((code) => {
      assert.ok(closedByService, 'the service closes its database');
      return { code, stats: service.stats() };
    }),
    async auditIds() {
      const { rows } = await lite.query<{ request_id: string }>('SELECT request_id FROM audit');
      return new Set(rows.map((r) => r.request_id));
    },
    async cleanup() {
      await service.close();
      await lite.close();
    },
  };
}

interface Seen {
  status: number;
  afterSigterm: boolean;
  id: string | undefined;
}

/** No database needed: a stand-in answers the circle query (20 members) and the audit inserts. */
function standInDb(): Db {
  return {
    query: async <R>(sql: string) => ({
      rows: (sql.includes('circle_members')
        ? Array.from({ length: 20 }, (_, i) => ({ agent_id: i + 1 }))
        : []) as R[],
    }),
    queries: 0,
    close: async () => undefined,
  };
}

describe('examples/fastify-service', () => {
  it('maps a full upstream queue to 503 and a queue timeout to 504', async () => {
    const db = standInDb();
    const upstream = await startFakeUpstream({ latencyMs: 200 });
    const cases = [
      { status: 503, error: 'SLUICE_QUEUE_FULL', options: { upstreamMaxQueue: 1 } },
      { status: 504, error: 'SLUICE_TIMEOUT', options: { upstreamQueueTimeoutMs: 30 } },
    ];
    try {
      for (const { status, error, options } of cases) {
        // One upstream slot: of the request's 4 calls, 1 runs and the others wait or are refused.
        const service = buildService({ db, upstreamUrl: upstream.url, upstreamConcurrency: 1, ...options });
        const url = await service.app.listen({ port: 0, host: '127.0.0.1' });
        const res = await fetch(`${url}/circles/1/status`);
        assert.deepEqual([res.status, ((await res.json()) as { error: string }).error], [status, error]);
        if (status === 503) assert.equal(res.headers.get('retry-after'), '1');
        await service.close(); // waits for the call that had the slot: it was aborted
        assert.deepEqual(
          [service.stats().upstream.running, service.stats().audit.written],
          [0, 1],
          'no slot held, one audit row',
        );
      }
      // In both cases map stopped at the first error and aborted the call that had the slot
      // (for the 503 that happens before its request is even sent).
      await until(() => upstream.stats.inFlight === 0, 'the aborted calls to reach the upstream');
      assert.ok(upstream.stats.requests >= 1);
      assert.equal(
        upstream.stats.aborted,
        upstream.stats.requests,
        'every call that reached the upstream aborted',
      );
    } finally {
      await upstream.close();
    }
  });

  const databaseUrl = process.env['DATABASE_URL'];
  if ((databaseUrl === undefined || databaseUrl === '') && process.env['SLUICE_REQUIRE_SERVICES'] === '1') {
    it('needs DATABASE_URL', () => {
      throw new Error('DATABASE_URL is not set but SLUICE_REQUIRE_SERVICES=1 requires it');
    });
    return;
  }
  const where = databaseUrl ? 'child process on Postgres (DATABASE_URL)' : 'in process on PGlite';

  it('does not wait for keep-alive clients at shutdown', async () => {
    const db = standInDb();
    const upstream = await startFakeUpstream({ latencyMs: 40 }); // 20 calls, 4 at a time: ~200 ms
    const service = buildService({ db, upstreamUrl: upstream.url });
    const agent = new Agent({ keepAlive: true });
    try {
      const url = new URL(await service.app.listen({ port: 0, host: '127.0.0.1' }));
      const response = new Promise<{ status: number | undefined; connection: string | undefined }>(
        (resolve) =>
          get({ host: url.hostname, port: url.port, path: '/circles/1/status', agent }, (res) => {
            res
              .resume()
              .on('end', () => resolve({ status: res.statusCode, connection: res.headers.connection }));
          }),
      );
      await until(() => upstream.stats.requests > 0, 'the request to fan out');
      const started = performance.now();
      await service.close(); // the client keeps its connection open: close() must not wait for it
      const closeMs = performance.now() - started;
      assert.deepEqual(await response, { status: 200, connection: 'close' });
      assert.ok(closeMs < 2_000, `close() took ${Math.round(closeMs)} ms`);
    } finally {
      agent.destroy();
      await upstream.close();
    }
  });

  it(
    `serves, cancels fan-out on disconnect, and loses no audit row on SIGTERM under load (${where})`,
    { timeout: 90_000 },
    async (t) => {
      const started = performance.now();
      const upstream = await startFakeUpstream({ latencyMs: 5 });
      const service = databaseUrl ? await startChild(databaseUrl, upstream) : await startInProcess(upstream);
      try {
        const { url } = service;

        // A circle's 20 members in 2 queries once the model registry is cached. The audit
        // writer's INSERTs count too: wait until it is idle, and subtract its batches.
        const settled = async () => {
          for (;;) {
            const { body } = await getJson(`${url}/stats`);
            if (body.audit.pending === 0) return body.db.queries - body.audit.batches;
            await sleep(10);
          }
        };
        assert.equal((await getJson(`${url}/circles/1/members`)).status, 200);
        const before = await settled();
        const members = await getJson(`${url}/circles/3/members`);
        assert.equal(members.status, 200);
        assert.equal(members.body.members.length, 20);
        assert.equal((await settled()) - before, 2, 'members + one batch of agents');

        // Errors map to status codes.
        const bad = await getJson(`${url}/circles/1/status?priority=abc`);
        assert.deepEqual([bad.status, bad.body.error], [400, 'SLUICE_INVALID_INPUT']);
        assert.equal((await getJson(`${url}/models/nope`)).status, 404);

        // A client that disconnects cancels the fan-out: the upstream sees its calls aborted,
        // and the rest of the circle is never called.
        upstream.latencyMs = 10_000;
        const { requests: calls0, aborted: aborted0 } = upstream.stats;
        const req = get(`${url}/circles/2/status`);
        req.on('error', () => undefined);
        await until(() => upstream.stats.inFlight === FAN_OUT, 'the fan-out to reach the upstream');
        req.destroy();
        await until(() => upstream.stats.inFlight === 0, 'the upstream calls to abort', 3_000);
        const abortedUpstream = upstream.stats.aborted - aborted0;
        assert.equal(abortedUpstream, FAN_OUT, 'every in-flight upstream call aborted');
        assert.equal(upstream.stats.requests - calls0, FAN_OUT, 'no further member was called');
        const afterAbort = (await getJson(`${url}/stats`)).body.upstream;
        assert.equal(afterAbort.running + afterAbort.queued, 0, 'no upstream slot held');
        upstream.latencyMs = 5;

        // Load, then SIGTERM in the middle of it.
        const seen: Seen[] = [];
        let sigterm = false;
        const circle = () => 1 + Math.floor(Math.random() * 10);
        // Mostly cheap reads; one request in ten fans out to the 20 members of a circle.
        const path = () => {
          const r = Math.random();
          if (r < 0.45) return `/circles/${circle()}/members`;
          if (r < 0.9) return `/models/model-${1 + (circle() % 5)}`;
          return `/circles/${circle()}/status`;
        };
        const record = (status: number, _body: string, _ctx: object, headers: Record<string, unknown>) => {
          const id = headers['x-request-id'];
          seen.push({ status, afterSigterm: sigterm, id: typeof id === 'string' ? id : undefined });
        };
        let errors = 0;
        let finish: (result: autocannon.Result) => void = () => undefined;
        const done = new Promise<autocannon.Result>((resolve) => (finish = resolve));
        const options = {
          url,
          connections: CONNECTIONS,
          duration: 5, // upper bound; stopped as soon as the service has exited
          requests: [
            { method: 'GET', setupRequest: (req: object) => ({ ...req, path: path() }), onResponse: record },
          ],
        } as autocannon.Options;
        const instance = autocannon(options, (_error, result) => finish(result));
        instance.on('reqError', () => errors++);
        await sleep(LOAD_MS);
        sigterm = true;
        service.terminate();
        const { code, stats } = await service.exited;
        const stoppedAfter = performance.now();
        instance.stop();
        const result = await done;

        const before5xx = seen.filter((s) => !s.afterSigterm && s.status >= 500);
        const after = seen.filter((s) => s.afterSigterm);
        const ok = seen.filter((s) => s.status >= 200 && s.status < 300);
        const rows = await service.auditIds();
        const missing = ok.filter((s) => s.id === undefined || !rows.has(s.id));
        const numbers = {
          where,
          responses: seen.length,
          rps: Math.round(seen.filter((s) => !s.afterSigterm).length / (LOAD_MS / 1000)),
          ok2xx: ok.length,
          fiveXxBeforeSigterm: before5xx.length,
          afterSigterm: after.length,
          afterSigtermStatuses: [...new Set(after.map((s) => s.status))],
          connectionErrors: errors,
          auditAccepted: stats?.audit.items,
          auditWritten: stats?.audit.written,
          auditRows: rows.size,
          abortedUpstream,
          exitCode: code,
          p99ms: result.latency.p99,
          seconds: Math.round((stoppedAfter - started) / 100) / 10,
        };
        t.diagnostic(JSON.stringify(numbers));

        assert.equal(code, 0, 'exit code 0');
        assert.ok(ok.length >= 30, `load reached the service (${ok.length} 2xx)`);
        assert.deepEqual(before5xx, [], 'no 5xx under normal load');
        for (const s of after) assert.ok(s.status < 500 || s.status === 503, `after SIGTERM: ${s.status}`);
        assert.deepEqual(missing, [], 'every 2xx response has its audit row');
        assert.ok(stats !== undefined);
        assert.equal(stats.audit.failedItems, 0);
        assert.equal(stats.audit.written, stats.audit.items, 'every accepted row written');
        assert.equal(rows.size, stats.audit.items, 'rows in the database = rows accepted');
        // The 5 audited requests before the load (200, 200, 400, 404, 499), then one row per 2xx:
        // the 503s of a closing server never reach a route, so they leave none.
        assert.equal(rows.size, ok.length + 5, 'one row per audited response, no more');
        assert.equal(stats.agents.live, 0);
      } finally {
        await service.cleanup();
        await upstream.close();
      }
    },
  );
});
