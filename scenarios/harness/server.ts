import { createServer, request, Agent, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A loopback HTTP server standing in for remote services. Routes:
 * - `GET /work?ms=20&fail=1` answers after `ms` (fails with 500 when `fail=1`);
 * - `GET /kv/<key>` / `PUT /kv/<key>?ms=..` a tiny key-value store with latency.
 * It counts requests and the maximum number in flight at once.
 */
export class LoopbackServer {
  readonly #server: Server;
  readonly #agent = new Agent({ keepAlive: true, maxSockets: Infinity });
  readonly #store = new Map<string, string>();
  #port = 0;
  inFlight = 0;
  maxInFlight = 0;
  requests = 0;

  constructor() {
    this.#server = createServer((req, res) => {
      this.requests++;
      this.inFlight++;
      this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
      const url = new URL(req.url ?? '/', 'http://x');
      const ms = Number(url.searchParams.get('ms') ?? 0);
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        setTimeout(() => {
          this.inFlight--;
          if (url.searchParams.get('fail') === '1') {
            res.writeHead(500).end('failed');
          } else if (url.pathname.startsWith('/kv/')) {
            const key = url.pathname.slice(4);
            if (req.method === 'PUT') this.#store.set(key, body);
            res.writeHead(200).end(this.#store.get(key) ?? '');
          } else {
            res.writeHead(200).end('ok');
          }
        }, ms);
      });
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.#port = (this.#server.address() as AddressInfo).port;
    return this;
  }

  resetCounters(): void {
    this.requests = 0;
    this.maxInFlight = 0;
  }

  /** Sends one request; rejects on a non-2xx status. */
  call(path: string, method: 'GET' | 'PUT' = 'GET', body?: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port: this.#port, path, method, agent: this.#agent },
        (res) => {
          let data = '';
          res.on('data', (chunk: Buffer) => (data += chunk.toString()));
          res.on('end', () => {
            if ((res.statusCode ?? 500) >= 400) reject(new Error(`${path}: HTTP ${res.statusCode}`));
            else resolve(data);
          });
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  async close(): Promise<void> {
    this.#agent.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

export async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const start = performance.now();
  const value = await fn();
  return { ms: performance.now() - start, value };
}

export const round = (n: number, digits = 1): number => Number(n.toFixed(digits));
