/**
 * A deterministic discrete-event simulation of routing under skewed service times, for the
 * `route/imbalance` report: every strategy routes the same arrivals, drawn from one seeded PRNG,
 * on a fake clock the router reads (so peak-EWMA measures simulated latencies).
 *
 * Targets are servers with `WORKERS` workers and a FIFO queue each; most are fast, a few slow.
 * Requests arrive as a Poisson process at `LOAD` × the total capacity; each takes an exponential
 * service time with its target's mean. A request holds a router permit from arrival to the end
 * of its service (queue wait included), so in-flight = queued + in service.
 */
import { IndexedHeap, type HeapNode } from '../src/internal/heap.js';
import { Router, type RoutePermit, type RouteStrategy } from '../src/route/index.js';

const FAST = 16;
const SLOW = 4;
const FAST_MS = 10;
const SLOW_MS = 50;
const WORKERS = 4;
const LOAD = 0.8;
const REQUESTS = 200_000;

/** mulberry32: a small seeded PRNG, the same sequence on every machine. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Server {
  readonly id: number;
  readonly meanMs: number;
  busy: number;
  readonly queue: Request[];
  head: number;
}

interface Request {
  readonly arrivedAt: number;
  readonly permit: RoutePermit<Server>;
  readonly serviceMs: number;
}

interface Completion extends HeapNode {
  readonly at: number;
  readonly server: Server;
  readonly request: Request;
}

/** What one strategy did on the trace. */
export interface SimResult {
  readonly strategy: RouteStrategy;
  /** Mean over arrivals of (max in-flight over targets) / (mean in-flight over targets). */
  readonly imbalance: number;
  /** Largest in-flight count any target reached. */
  readonly maxInFlight: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Share of the requests sent to the slow targets (their share of capacity is given). */
  readonly slowShare: number;
}

export function simulate(strategy: RouteStrategy, seed = 42): SimResult {
  const servers: Server[] = Array.from({ length: FAST + SLOW }, (_, id) => ({
    id,
    meanMs: id < FAST ? FAST_MS : SLOW_MS,
    busy: 0,
    queue: [],
    head: 0,
  }));
  const capacityPerMs = servers.reduce((sum, s) => sum + WORKERS / s.meanMs, 0);
  const arrivalMeanMs = 1 / (LOAD * capacityPerMs);
  let now = 0;
  const router = new Router(servers, { strategy, clock: { now: () => now }, random: prng(seed + 1) });
  const rand = prng(seed);
  const exp = (mean: number): number => -mean * Math.log(1 - rand());
  const events = new IndexedHeap<Completion>((a, b) => a.at < b.at);
  const latencies = new Float64Array(REQUESTS);
  let done = 0;
  let ratioSum = 0;
  let maxInFlight = 0;
  let toSlow = 0;

  const start = (server: Server, request: Request): void => {
    server.busy++;
    events.push({ at: now + request.serviceMs, server, request, heapIndex: -1 });
  };
  const complete = (c: Completion): void => {
    now = c.at;
    c.request.permit.release();
    latencies[done++] = now - c.request.arrivedAt;
    const server = c.server;
    server.busy--;
    if (server.head < server.queue.length) {
      const next = server.queue[server.head++] as Request;
      if (server.head === server.queue.length) {
        server.queue.length = 0;
        server.head = 0;
      }
      start(server, next);
    }
  };

  let nextArrival = exp(arrivalMeanMs);
  for (let i = 0; i < REQUESTS; i++) {
    // Completions due before the next arrival happen first.
    for (let c = events.peek(); c !== undefined && c.at <= nextArrival; c = events.peek()) {
      events.remove(c);
      complete(c);
    }
    now = nextArrival;
    const permit = router.tryAcquire() as RoutePermit<Server>;
    const server = permit.target;
    if (server.meanMs === SLOW_MS) toSlow++;
    const request: Request = { arrivedAt: now, permit, serviceMs: exp(server.meanMs) };
    if (server.busy < WORKERS) start(server, request);
    else server.queue.push(request);
    // Imbalance as the arrival sees it (after routing it).
    let max = 0;
    for (const s of servers) max = Math.max(max, router.inFlight(s));
    const mean = router.stats.inFlight / servers.length;
    ratioSum += max / mean;
    maxInFlight = Math.max(maxInFlight, max);
    nextArrival = now + exp(arrivalMeanMs);
  }
  for (let c = events.peek(); c !== undefined; c = events.peek()) {
    events.remove(c);
    complete(c);
  }
  latencies.sort();
  const at = (q: number): number => latencies[Math.min(REQUESTS - 1, Math.floor(q * REQUESTS))] as number;
  return {
    strategy,
    imbalance: ratioSum / REQUESTS,
    maxInFlight,
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    slowShare: toSlow / REQUESTS,
  };
}

/** The markdown table of the report: one row per strategy. */
export function imbalanceTable(): string {
  const slowCapacity = (SLOW * WORKERS) / SLOW_MS / (SLOW * (WORKERS / SLOW_MS) + FAST * (WORKERS / FAST_MS));
  const rows = (['least-loaded', 'p2c', 'round-robin', 'peak-ewma'] as const).map((s) => simulate(s));
  const f = (n: number, d = 1): string => n.toFixed(d);
  return [
    `${FAST} targets with mean service ${FAST_MS} ms and ${SLOW} with ${SLOW_MS} ms (exponential), ${WORKERS} workers and a FIFO queue each; ` +
      `${REQUESTS / 1000}k Poisson arrivals at ${LOAD * 100}% of total capacity; fake clock, seeded PRNG (deterministic). ` +
      `In-flight = queued + in service; imbalance = mean over arrivals of max/mean in-flight. ` +
      `The slow targets hold ${f(slowCapacity * 100)}% of the capacity.`,
    '',
    '| strategy | imbalance (max/mean in-flight) | max in-flight | p50 latency | p99 latency | share to slow targets |',
    '|---|--:|--:|--:|--:|--:|',
    ...rows.map(
      (r) =>
        `| ${r.strategy} | ${f(r.imbalance, 2)} | ${r.maxInFlight} | ${f(r.p50Ms)} ms | ${f(r.p99Ms)} ms | ${f(r.slowShare * 100)}% |`,
    ),
  ].join('\n');
}
