import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HttpClient } from './client.js';

// Kept here too: the first scenarios imported them from this file.
export { round, timed } from './stats.js';

/** How one route of the {@link LoopbackServer} behaves. */
export interface RouteOptions {
  /** Answers after this many ms (a real timer). @default 0 */
  readonly latencyMs?: number;
  /**
   * Serves at most this many requests of the route at once (a dependency with `capacity`
   * workers): the rest wait, FIFO, before their `latencyMs` starts, so past `capacity` in flight
   * throughput stays `capacity / latencyMs` and only latency grows. @default Infinity
   */
  readonly capacity?: number;
  /** Fails every k-th request of this route (k = 1: every request). */
  readonly failEvery?: number;
  /** Fails this fraction of requests, drawn from a PRNG seeded with `seed`: the same requests fail every run. */
  readonly failRate?: number;
  /** @default 1 */
  readonly seed?: number;
  /** Status of a failed request. @default 500 */
  readonly failStatus?: number;
  /** Produces the JSON body (default `{ "ok": true, "n": <request number on this route> }`). */
  readonly handler?: (req: RouteRequest) => unknown;
}

/** What a route handler sees. */
export interface RouteRequest {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly body: string;
  /** 1-based request number on this route. */
  readonly n: number;
}

/** Counters of a route, or of the whole server. */
export interface RouteStats {
  requests: number;
  failures: number;
  inFlight: number;
  /** The most requests in flight at once (arrival to response) since the last reset. */
  maxInFlight: number;
}

interface Route {
  readonly prefix: string;
  readonly options: RouteOptions;
  readonly stats: RouteStats;
  rng: number;
  /** Requests being served, and those waiting for a worker (with `capacity`). */
  busy: number;
  readonly waiting: (() => void)[];
  waitingHead: number;
}

const newStats = (): RouteStats => ({ requests: 0, failures: 0, inFlight: 0, maxInFlight: 0 });

/**
 * A loopback HTTP server (`127.0.0.1`, port 0) standing in for remote services, measuring what
 * arrives: requests, failures and the maximum number in flight at once, per route and overall.
 *
 * - `route('/pool/3', { latencyMs: 25, failEvery: 1 })` configures `/pool/3` and `/pool/3/...`
 *   (the longest matching prefix wins); unrouted paths answer at once with 200.
 * - Any request may override with `?ms=<latency>` and `?fail=1`.
 * - `/kv/<key>` is a key-value store: `GET` returns the value (`""` when unset), `PUT` sets the
 *   body and returns it. Route `/kv/<key>` to give it latency and per-key counters.
 *
 * @example
 * ```ts
 * const server = await new LoopbackServer().route('/status', { latencyMs: 20 }).start();
 * await server.client.get('/status');
 * server.stats.maxInFlight; // measured at the server
 * await server.close();
 * ```
 */
export class LoopbackServer implements AsyncDisposable {
  readonly #server: Server;
  readonly #routes = new Map<string, Route>();
  readonly #kv = new Map<string, string>();
  readonly #stats = newStats();
  #client: HttpClient | undefined;
  #url = '';

  constructor() {
    this.#server = createServer((req, res) => this.#handle(req, res));
  }

  /** Configures the route at `prefix` (replacing an earlier one) and resets its counters. */
  route(prefix: string, options: RouteOptions = {}): this {
    this.#routes.set(prefix, {
      prefix,
      options,
      stats: newStats(),
      rng: (options.seed ?? 1) >>> 0 || 1,
      busy: 0,
      waiting: [],
      waitingHead: 0,
    });
    return this;
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(0, '127.0.0.1', () => resolve());
    });
    const { port } = this.#server.address() as AddressInfo;
    this.#url = `http://127.0.0.1:${port}`;
    return this;
  }

  /** `http://127.0.0.1:<port>` once started. */
  get url(): string {
    return this.#url;
  }

  /** A keep-alive client of this server (created on first use, closed with the server). */
  get client(): HttpClient {
    this.#client ??= new HttpClient(this.#url);
    return this.#client;
  }

  /** Shorthand for `client.get(path)` / `client.put(path, body)`. */
  call(path: string, method: 'GET' | 'PUT' = 'GET', body = ''): Promise<string> {
    return method === 'GET' ? this.client.get(path) : this.client.put(path, body);
  }

  /** Server-wide counters. */
  get stats(): Readonly<RouteStats> {
    return this.#stats;
  }

  /** Counters of the route registered at `prefix`. */
  routeStats(prefix: string): Readonly<RouteStats> {
    const route = this.#routes.get(prefix);
    if (route === undefined) throw new Error(`No route ${prefix}`);
    return route.stats;
  }

  /** Server-wide `maxInFlight`. */
  get maxInFlight(): number {
    return this.#stats.maxInFlight;
  }

  /** Server-wide request count. */
  get requests(): number {
    return this.#stats.requests;
  }

  /** Zeroes every counter (requests, failures, max in flight) except what is in flight now. */
  resetCounters(): void {
    for (const s of [this.#stats, ...Array.from(this.#routes.values(), (r) => r.stats)]) {
      s.requests = 0;
      s.failures = 0;
      s.maxInFlight = s.inFlight;
    }
  }

  /** The key-value store behind `/kv/`. */
  get kv(): Map<string, string> {
    return this.#kv;
  }

  #match(path: string): Route | undefined {
    let best: Route | undefined;
    for (const route of this.#routes.values()) {
      const p = route.prefix;
      const hit = path === p || path.startsWith(p.endsWith('/') ? p : `${p}/`);
      if (hit && (best === undefined || p.length > best.prefix.length)) best = route;
    }
    return best;
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://loopback');
    const route = this.#match(url.pathname);
    const counters = route === undefined ? [this.#stats] : [this.#stats, route.stats];
    for (const s of counters) {
      s.requests++;
      s.inFlight++;
      if (s.inFlight > s.maxInFlight) s.maxInFlight = s.inFlight;
    }
    const n = route?.stats.requests ?? this.#stats.requests;
    const fail = url.searchParams.get('fail') === '1' || (route !== undefined && this.#fails(route, n));
    const latency = Number(url.searchParams.get('ms') ?? route?.options.latencyMs ?? 0);
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    const serve = (answer: () => void): void => {
      const capacity = route?.options.capacity;
      if (route === undefined || capacity === undefined) {
        setTimeout(answer, latency);
        return;
      }
      const done = (): void => {
        answer();
        const next = route.waiting[route.waitingHead];
        if (next === undefined) {
          route.busy--;
          return;
        }
        route.waiting[route.waitingHead++] = undefined as never;
        if (route.waitingHead > 1024 && route.waitingHead * 2 > route.waiting.length) {
          route.waiting.splice(0, route.waitingHead);
          route.waitingHead = 0;
        }
        next();
      };
      const start = (): void => void setTimeout(done, latency);
      if (route.busy < capacity) {
        route.busy++;
        start();
      } else route.waiting.push(start);
    };
    req.on('end', () => {
      serve(() => {
        let status = 200;
        let out: string;
        try {
          if (fail) {
            status = route?.options.failStatus ?? 500;
            out = JSON.stringify({ ok: false, error: 'injected failure', n });
          } else if (url.pathname.startsWith('/kv/')) {
            const key = decodeURIComponent(url.pathname.slice(4));
            if (req.method === 'PUT') this.#kv.set(key, body);
            out = this.#kv.get(key) ?? '';
          } else {
            const request = {
              method: req.method ?? 'GET',
              path: url.pathname,
              query: url.searchParams,
              body,
              n,
            };
            out = JSON.stringify(route?.options.handler?.(request) ?? { ok: true, n });
          }
        } catch (error) {
          status = 500;
          out = JSON.stringify({ ok: false, error: String(error) });
        }
        for (const s of counters) {
          s.inFlight--;
          if (status >= 400) s.failures++;
        }
        res.writeHead(status, { 'content-type': 'application/json' }).end(out);
      });
    });
  }

  #fails(route: Route, n: number): boolean {
    const { failEvery, failRate } = route.options;
    if (failEvery !== undefined && n % failEvery === 0) return true;
    if (failRate === undefined) return false;
    // xorshift32: deterministic per route and seed, one draw per request.
    let x = route.rng;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    route.rng = x >>> 0;
    return route.rng / 0x1_0000_0000 < failRate;
  }

  /** Closes the client, every connection and the server. */
  async close(): Promise<void> {
    this.#client?.close();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
