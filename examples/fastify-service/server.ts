// A small Fastify + Postgres API built with sluice the way its README recommends:
//
//   GET /circles/:id/members  a circle's 20 members in 2 queries (request-scoped Loader)
//   GET /models/:id           a hot registry row (Cache.getOrLoad: single flight, TTL, SWR)
//   GET /circles/:id/status   fan-out to an upstream API (map + a shared Limiter), cancelled
//                             when the client disconnects
//   GET /stats                every primitive's stats
//
// Every request but /stats and /health leaves one audit row, written in batches (BatchWriter).
// In an application, import from 'sluice/limit', 'sluice/cache', 'sluice/batch' and 'sluice'.
import { randomUUID } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyServerOptions } from 'fastify';
import { BatchWriter, Loader, type BatchWriterStats } from '../../src/batch/index.js';
import { Cache, type CacheStats } from '../../src/cache/index.js';
import { SluiceError } from '../../src/errors.js';
import { Limiter, map, type LimiterStats } from '../../src/limit/index.js';
import type { Db } from './db.js';

interface Agent {
  id: number;
  name: string;
  model_id: string;
}
interface Model {
  id: string;
  provider: string;
  context_window: number;
}
interface AgentStatus {
  agent: number;
  status: string;
}
interface AuditRow {
  request_id: string;
  method: string;
  route: string;
  status: number;
  ms: number;
}

export interface ServiceOptions {
  readonly db: Db;
  /** Base URL of the agent-status API the fan-out calls. */
  readonly upstreamUrl: string;
  /** @default false */
  readonly logger?: FastifyServerOptions['logger'];
  /** Upstream calls in flight at once, across all requests. @default 16 */
  readonly upstreamConcurrency?: number;
  /** Upstream calls that may wait for a slot; one more is refused: 503. @default 256 */
  readonly upstreamMaxQueue?: number;
  /** Longest an upstream call waits for a slot; then 504. @default 1000 */
  readonly upstreamQueueTimeoutMs?: number;
  /** Upstream calls one request makes at once. @default 4 */
  readonly fanOut?: number;
}

/** What `/stats` answers. */
export interface ServiceStats {
  readonly upstream: LimiterStats;
  readonly models: CacheStats;
  /** Sums over the request-scoped Loaders, and how many are open now. */
  readonly agents: Readonly<
    Record<
      'created' | 'live' | 'loads' | 'cacheHits' | 'dedups' | 'batches' | 'keys' | 'failedBatches',
      number
    >
  >;
  readonly audit: BatchWriterStats;
  readonly db: { readonly queries: number };
}

export interface Service {
  readonly app: FastifyInstance;
  stats(): ServiceStats;
  /** Stops accepting, then closes the limiter, loaders, audit writer, cache and database. */
  close(): Promise<void>;
}

/** The error a request's work is aborted with when its client disconnects (nginx's 499). */
class ClientGone extends Error {
  override readonly name = 'ClientGone';
  readonly statusCode = 499;
}
class NotFound extends Error {
  override readonly name = 'NotFound';
  readonly statusCode = 404;
}
class UpstreamFailed extends Error {
  override readonly name = 'UpstreamFailed';
  readonly statusCode = 502;
}

/** sluice's errors carry a stable `code`; others may carry Fastify's `statusCode`. */
export function httpStatus(error: unknown): number {
  if (error instanceof SluiceError) {
    switch (error.code) {
      case 'SLUICE_QUEUE_FULL': // shed load: come back later
      case 'SLUICE_CLOSED': // shutting down
        return 503;
      case 'SLUICE_TIMEOUT': // waited too long for an upstream slot
        return 504;
      case 'SLUICE_INVALID_INPUT': // e.g. ?priority=abc, validated by the Limiter
        return 400;
      default:
        return 500;
    }
  }
  const status = (error as { statusCode?: unknown } | null)?.statusCode;
  return typeof status === 'number' && status >= 400 && status < 600 ? status : 500;
}

/**
 * Aborts when the client goes away before the response is complete. (On Node 20, Fastify's
 * `request.signal` also aborts after a request *body* has been read, i.e. on every POST.)
 */
function clientSignal(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) controller.abort(new ClientGone('client disconnected'));
  });
  return controller.signal;
}

const idParam = {
  params: {
    type: 'object',
    properties: { id: { type: 'integer', minimum: 1 } },
    required: ['id'],
  },
} as const;

export function buildService(options: ServiceOptions): Service {
  const { db, upstreamUrl } = options;
  const fanOut = options.fanOut ?? 4;
  const queueTimeoutMs = options.upstreamQueueTimeoutMs ?? 1000;
  const app = Fastify({ logger: options.logger ?? false, genReqId: () => randomUUID() });

  // One bound on outbound calls for the whole process, however many requests fan out.
  const upstream = new Limiter({
    name: 'upstream',
    concurrency: options.upstreamConcurrency ?? 16,
    maxQueue: options.upstreamMaxQueue ?? 256,
  });

  // The model registry is read on every member: cache it (one load per key at a time).
  const models = new Cache<string, Model>({
    maxSize: 1000,
    ttl: '5m',
    staleWhileRevalidate: '30s',
    negativeTtl: '5s', // an unknown id is not looked up again for 5 s
    loader: async (id) => {
      const { rows } = await db.query<Model>(
        'SELECT id, provider, context_window FROM models WHERE id = $1',
        [id],
      );
      if (rows[0] === undefined) throw new NotFound(`No model ${id}`);
      return rows[0];
    },
  });

  // A Loader per request (fresh data, nothing shared between users); the totals survive it.
  const loaders = new Set<Loader<number, Agent>>();
  const loaderTotals = {
    created: 0,
    loads: 0,
    cacheHits: 0,
    dedups: 0,
    batches: 0,
    keys: 0,
    failedBatches: 0,
  };
  const loadAgents = async (ids: readonly number[]) => {
    const sql = 'SELECT id, name, model_id FROM agents WHERE id = ANY($1::int[])';
    const { rows } = await db.query<Agent>(sql, [ids]);
    return new Map(rows.map((agent) => [agent.id, agent]));
  };
  const requestLoader = () => {
    const loader = new Loader<number, Agent>(loadAgents, { maxBatch: 100, cacheSize: 1000 });
    loaders.add(loader);
    loaderTotals.created++;
    return loader;
  };
  const retire = async (loader: Loader<number, Agent>) => {
    await loader.close();
    loaders.delete(loader);
    const s = loader.stats;
    loaderTotals.loads += s.loads;
    loaderTotals.cacheHits += s.cacheHits;
    loaderTotals.dedups += s.dedups;
    loaderTotals.batches += s.batches;
    loaderTotals.keys += s.keys;
    loaderTotals.failedBatches += s.failedBatches;
  };

  // Audit rows are written 100 at a time (or every 50 ms); at most 10 000 wait unwritten.
  const audit = new BatchWriter<AuditRow>(
    async (rows) => {
      await db.query(
        `INSERT INTO audit (request_id, method, route, status, ms)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::real[])`,
        [
          rows.map((r) => r.request_id),
          rows.map((r) => r.method),
          rows.map((r) => r.route),
          rows.map((r) => r.status),
          rows.map((r) => r.ms),
        ],
      );
    },
    {
      maxItems: 100,
      maxWaitMs: 50,
      maxPending: 10_000,
      retry: { attempts: 3, delayMs: 100 },
      onError: (rows, error) => app.log.error({ err: error, rows: rows.length }, 'audit rows not written'),
    },
  );

  const memberIds = async (circle: number): Promise<number[]> => {
    const sql = 'SELECT agent_id FROM circle_members WHERE circle_id = $1 ORDER BY agent_id';
    const { rows } = await db.query<{ agent_id: number }>(sql, [circle]);
    if (rows.length === 0) throw new NotFound(`No circle ${circle}`);
    return rows.map((r) => r.agent_id);
  };

  const fetchStatus = async (id: number, signal: AbortSignal): Promise<AgentStatus> => {
    const res = await fetch(`${upstreamUrl}/agents/${id}/status`, { signal });
    if (!res.ok) throw new UpstreamFailed(`Upstream answered ${res.status} for agent ${id}`);
    return (await res.json()) as AgentStatus;
  };

  let stopping = false;
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });

  // One audit row per request, accepted before the response leaves: a 2xx implies its row.
  app.addHook('onSend', async (request, reply, payload) => {
    // A keep-alive connection busy when close() began would otherwise stay open after its
    // response, and hold close() until the client hangs up or keepAliveTimeout (72 s) passes.
    if (stopping) void reply.header('connection', 'close');
    const route = request.routeOptions.url;
    if (route === '/stats' || route === '/health') return payload;
    await audit.add({
      request_id: request.id,
      method: request.method,
      route: route ?? '(no route)',
      status: reply.statusCode,
      ms: reply.elapsedTime,
    });
    return payload;
  });

  app.setErrorHandler((error, request, reply) => {
    const status = httpStatus(error);
    if (status >= 500) request.log.error({ err: error }, 'request failed');
    if (status === 503) void reply.header('retry-after', '1');
    const { code, name, message } = error as { code?: string; name?: string; message?: string };
    return reply.status(status).send({ error: code ?? name ?? 'Error', message: message ?? String(error) });
  });

  app.get('/health', async () => ({ ok: true }));

  app.get<{ Params: { id: number } }>('/circles/:id/members', { schema: idParam }, async (request, reply) => {
    const signal = clientSignal(reply);
    const agents = requestLoader();
    try {
      const ids = await memberIds(request.params.id); // query 1
      const members = await Promise.all(
        ids.map(async (id) => {
          const agent = await agents.load(id, { signal }); // every id in one query: query 2
          const model = await models.getOrLoad(agent.model_id, { signal }); // cached
          return { id, name: agent.name, model: model.id, provider: model.provider };
        }),
      );
      return { circle: request.params.id, members };
    } finally {
      await retire(agents);
    }
  });

  app.get<{ Params: { id: string } }>('/models/:id', async (request, reply) =>
    models.getOrLoad(request.params.id, { signal: clientSignal(reply) }),
  );

  app.get<{ Params: { id: number }; Querystring: { priority?: string } }>(
    '/circles/:id/status',
    { schema: idParam },
    async (request, reply) => {
      const signal = clientSignal(reply);
      const { priority: raw } = request.query;
      const priority = raw === undefined ? 0 : Number(raw); // the Limiter rejects NaN: 400
      const ids = await memberIds(request.params.id);
      // `fanOut` calls of this request at once, each also waiting for a process-wide slot. When
      // the client leaves, `signal` aborts: map stops pulling ids and aborts `stop`, which
      // takes queued calls off the limiter and cancels the fetches already running.
      const statuses = await map(
        ids,
        (id, _index, stop) =>
          upstream.run(() => fetchStatus(id, stop), { signal: stop, priority, timeout: queueTimeoutMs }),
        { concurrency: fanOut, signal },
      );
      return { circle: request.params.id, statuses };
    },
  );

  function collectStats(): ServiceStats {
    return {
      upstream: upstream.stats,
      models: models.stats,
      agents: { ...loaderTotals, live: loaders.size },
      audit: audit.stats,
      db: { queries: db.queries },
    };
  }
  app.get('/stats', async () => collectStats());

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      stopping = true;
      await app.close(); // stop accepting; in-flight requests finish and their rows are accepted
      await upstream.close(); // nothing is queued any more; waits for running calls
      await Promise.all(Array.from(loaders, (loader) => loader.close()));
      await audit.close(); // every accepted audit row written (or reported to onError)
      await models.close(); // waits for loads and refreshes it started: they use the pool
      await db.close();
    })());

  return { app, stats: collectStats, close };
}

export interface ServeOptions {
  readonly port: number;
  readonly host: string;
  /** Where SIGTERM / SIGINT come from. @default process */
  readonly signals?: EventEmitter;
}

/**
 * Listens, and on the first SIGTERM or SIGINT closes the service in order. `closed` resolves
 * with the exit code (0 once everything closed cleanly, 1 if closing failed).
 */
export async function serve(
  service: Service,
  options: ServeOptions,
): Promise<{ url: string; closed: Promise<number> }> {
  const url = await service.app.listen({ port: options.port, host: options.host });
  const signals = options.signals ?? process;
  const closed = new Promise<number>((resolve) => {
    const onSignal = (signal: string) => {
      signals.off('SIGTERM', onSignal).off('SIGINT', onSignal); // a second signal kills at once
      service.app.log.info({ signal }, 'shutting down');
      service.close().then(
        () => resolve(0),
        (error: unknown) => {
          service.app.log.error({ err: error }, 'shutdown failed');
          resolve(1);
        },
      );
    };
    signals.on('SIGTERM', onSignal).on('SIGINT', onSignal);
  });
  return { url, closed };
}
