/**
 * HTTP middleware overhead on loopback (DESIGN: "rate: HTTP middleware overhead, ≤ peers'").
 * Each server runs in its own child process (`--serve <case>`), autocannon drives it from this
 * one, so client and server do not share an event loop. Cases of one framework alternate, every
 * case runs `rounds` times for `durationS` seconds with 50 connections; the best rps counts.
 * Limits are far above the load (nothing is denied), keyed by client IP; peers run with their
 * default headers. Overhead per request = 1e6 / rps_with − 1e6 / rps_bare (µs).
 *
 * Usage: `npm run bench:http [-- durationS rounds]` (default 3 s, 2 rounds) prints a table and JSON
 * lines. Not part of `npm run bench`: the harness times a fixed amount of work, and autocannon
 * with a request count finishes on its 1 s sampling tick, so the rate is measured over a duration.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { expressRateLimit, fastifyRateLimit, rateLimit } from '../src/rate/http/index.js';
import { RateLimiter } from '../src/rate/index.js';

export const CASES = [
  'node:bare',
  'node:sluice',
  'fastify:bare',
  'fastify:sluice',
  'fastify:@fastify/rate-limit',
  'express:bare',
  'express:sluice',
  'express:express-rate-limit',
] as const;
export type CaseName = (typeof CASES)[number];

const HIGH = 50_000_000; // per minute per IP: never reached
const limiter = (): RateLimiter => new RateLimiter({ limit: HIGH, window: '1m', name: 'bench' });

async function serve(name: CaseName): Promise<number> {
  const body = JSON.stringify({ ok: true });
  const [framework, impl] = name.split(':') as [string, string];
  if (framework === 'node') {
    const handler = (_req: unknown, res: import('node:http').ServerResponse): void => {
      res.setHeader('content-type', 'application/json');
      res.end(body);
    };
    const limit = impl === 'sluice' ? rateLimit({ limiter: limiter() }) : undefined;
    const server = createServer((req, res) =>
      limit === undefined ? handler(req, res) : limit(req, res, () => handler(req, res)),
    );
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return (server.address() as AddressInfo).port;
  }
  if (framework === 'fastify') {
    const { default: Fastify } = await import('fastify');
    const app = Fastify();
    if (impl === 'sluice') await app.register(fastifyRateLimit({ limiter: limiter() }));
    if (impl === '@fastify/rate-limit') {
      const { default: peer } = await import('@fastify/rate-limit');
      await app.register(peer, { max: HIGH, timeWindow: 60_000 });
    }
    app.get('/', async () => ({ ok: true }));
    await app.listen({ port: 0, host: '127.0.0.1' });
    return (app.server.address() as AddressInfo).port;
  }
  const { default: express } = await import('express');
  const app = express();
  if (impl === 'sluice') app.use(expressRateLimit({ limiter: limiter() }));
  if (impl === 'express-rate-limit') {
    const { rateLimit: peer } = await import('express-rate-limit');
    app.use(peer({ windowMs: 60_000, limit: HIGH }));
  }
  app.get('/', (_req, res) => void res.json({ ok: true }));
  const server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

/** Starts one case in a child process; resolves with its port and a stop function. */
async function startChild(name: CaseName): Promise<{ port: number; stop(): void }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(import.meta.url), '--serve', name],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /port (\d+)/.exec(out);
      if (match !== null) resolve(Number(match[1]));
    });
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code}`)));
  });
  return { port, stop: () => void child.kill() };
}

function cannon(port: number, durationS: number): Promise<{ rps: number; non2xx: number }> {
  return new Promise((resolve, reject) => {
    autocannon(
      { url: `http://127.0.0.1:${port}/`, connections: 50, duration: durationS },
      (err: Error | null, result: autocannon.Result) => {
        if (err !== null && err !== undefined) reject(err);
        else resolve({ rps: result.requests.average, non2xx: result.non2xx });
      },
    );
  });
}

export interface OverheadRow {
  readonly bench: string;
  readonly impl: string;
  /** Best of the rounds. */
  readonly rps: number;
  /** 1e6 / rps − 1e6 / rps of the bare server of the same framework; 0 for the bare server. */
  readonly overheadUs: number;
  readonly non2xx: number;
}

/**
 * Runs every case `rounds` times (alternating within each framework, after a 1 s warm-up each)
 * and returns rps and overhead per request in µs against the bare server of the same framework.
 */
export async function httpOverhead(durationS = 3, rounds = 2): Promise<OverheadRow[]> {
  const best = new Map<CaseName, { rps: number; non2xx: number }>();
  for (const framework of ['node', 'fastify', 'express']) {
    const cases = CASES.filter((c) => c.startsWith(`${framework}:`));
    const children = new Map<CaseName, { port: number; stop(): void }>();
    try {
      for (const c of cases) children.set(c, await startChild(c));
      for (const c of cases) await cannon(children.get(c)!.port, 1); // warm-up
      for (let round = 0; round < rounds; round++) {
        // Rotate the order each round so no case always runs first.
        const order = cases.map((_, i) => cases[(i + round) % cases.length]!);
        for (const c of order) {
          const r = await cannon(children.get(c)!.port, durationS);
          process.stderr.write(`  ${c} round ${round + 1}: ${Math.round(r.rps)} req/s\n`);
          const prev = best.get(c);
          if (prev === undefined || r.rps > prev.rps) best.set(c, { rps: r.rps, non2xx: r.non2xx });
        }
      }
    } finally {
      for (const child of children.values()) child.stop();
    }
  }
  return CASES.map((c) => {
    const [framework, impl] = c.split(':') as [string, string];
    const mine = best.get(c)!;
    const bare = best.get(`${framework}:bare` as CaseName)!;
    return {
      bench: `rate/http-overhead-${framework}`,
      impl,
      rps: Math.round(mine.rps),
      overheadUs: impl === 'bare' ? 0 : Math.round((1e6 / mine.rps - 1e6 / bare.rps) * 100) / 100,
      non2xx: mine.non2xx,
    };
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (process.argv[2] === '--serve') {
    const port = await serve(process.argv[3] as CaseName);
    process.stdout.write(`port ${port}\n`);
  } else {
    const rows = await httpOverhead(Number(process.argv[2] ?? 3), Number(process.argv[3] ?? 2));
    for (const r of rows) {
      process.stdout.write(
        `${r.bench.padEnd(28)} ${r.impl.padEnd(22)} ${String(r.rps).padStart(8)} req/s  overhead ${String(r.overheadUs).padStart(7)} µs  non2xx ${r.non2xx}\n`,
      );
    }
    for (const r of rows) process.stdout.write(`${JSON.stringify(r)}\n`);
  }
}
