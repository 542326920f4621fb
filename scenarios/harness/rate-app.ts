// A small loopback API for the rate-limit scenarios: node:http on 127.0.0.1, port 0, with an
// optional middleware in front of every route.
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Middleware = (req: IncomingMessage, res: ServerResponse, next: () => void) => void;
export type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

/** Starts the API; `close()` ends it and every keep-alive connection. */
export async function startApi(
  middleware: Middleware | undefined,
  handler: Handler,
): Promise<{ readonly url: string; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const route = (): void => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => handler(req, res, Buffer.concat(chunks).toString()));
    };
    if (middleware === undefined) route();
    else middleware(req, res, route);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Sends requests one after another; returns each response's status and headers. */
export async function send(
  url: string,
  n: number,
  init?: RequestInit,
): Promise<{ status: number; headers: Headers }[]> {
  const out: { status: number; headers: Headers }[] = [];
  for (let i = 0; i < n; i++) {
    const res = await fetch(url, init);
    await res.arrayBuffer();
    out.push({ status: res.status, headers: res.headers });
  }
  return out;
}

export const count = (rs: readonly { status: number }[], status: number): number =>
  rs.filter((r) => r.status === status).length;
