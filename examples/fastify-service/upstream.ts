// A loopback HTTP server standing in for a remote agent-status API. It counts what arrives,
// including calls whose client went away before the answer (`aborted`): that is how the
// example's test proves a client disconnect cancels the fan-out.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeUpstream {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** Answer delay of the next calls, in ms; change it at any time. */
  latencyMs: number;
  readonly stats: {
    /** Calls received. */
    readonly requests: number;
    /** Calls answered. */
    readonly completed: number;
    /** Calls whose connection closed before they were answered. */
    readonly aborted: number;
    /** Calls waiting for their answer now. */
    readonly inFlight: number;
  };
  close(): Promise<void>;
}

/** Starts the stand-in on 127.0.0.1 and a free port. `GET /agents/<id>/status` → `{ agent, status }`. */
export async function startFakeUpstream(options: { latencyMs?: number } = {}): Promise<FakeUpstream> {
  const stats = { requests: 0, completed: 0, aborted: 0, inFlight: 0 };
  const server = createServer((req, res) => {
    stats.requests++;
    stats.inFlight++;
    const agent = Number(/^\/agents\/(\d+)\/status/.exec(req.url ?? '')?.[1] ?? NaN);
    const timer = setTimeout(() => {
      const status = Number.isInteger(agent) ? 200 : 404;
      const body = { agent, status: agent % 3 === 0 ? 'busy' : 'idle' };
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    }, upstream.latencyMs);
    res.once('close', () => {
      stats.inFlight--;
      if (res.writableFinished) {
        stats.completed++;
      } else {
        stats.aborted++;
        clearTimeout(timer);
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  const upstream: FakeUpstream = {
    url: `http://127.0.0.1:${port}`,
    latencyMs: options.latencyMs ?? 5,
    stats,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return upstream;
}
