// Drives a shutdown-worker.ts child process: loopback HTTP load, SIGTERM mid-load (and
// optionally a second one), then counts what was lost from the child's journal.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const WORKER = fileURLToPath(new URL('./shutdown-worker.ts', import.meta.url));

/** Options of {@link shutdownUnderLoad}. */
export interface ShutdownLoadOptions {
  readonly mode: 'graceful' | 'naive';
  /** The child's onShutdown deadline. @default 3000 */
  readonly deadlineMs?: number;
  /** Time a request takes before it is answered. @default 20 */
  readonly requestMs?: number;
  /** Time a background write takes; < 0: never finishes. @default 30 */
  readonly writeMs?: number;
  /** Concurrent client loops. @default 16 */
  readonly concurrency?: number;
  /** SIGTERM once this many requests were answered. @default 100 */
  readonly sigtermAfter?: number;
  /** Send a second SIGTERM this long after the first. */
  readonly secondSignalMs?: number;
  /** Give up on the child after this long (it is then killed). @default 20_000 */
  readonly timeoutMs?: number;
}

/** What happened, counted by the parent and from the child's journal. */
export interface ShutdownLoadResult {
  /** Requests the server received (journal `R`). */
  readonly arrived: number;
  /** Requests answered with 200 (the client saw the answer). */
  readonly answered: number;
  /** Requests received but never answered. */
  readonly unanswered: number;
  /** Received requests whose background write never finished (journal `W` missing). */
  readonly lostWrites: number;
  /** Background writes finished. */
  readonly writes: number;
  /** Requests refused or reset after SIGTERM (never received: not accepted). */
  readonly refused: number;
  readonly exitCode: number | null;
  readonly exitSignal: string | null;
  /** From the first SIGTERM to the child's exit, in ms. */
  readonly exitMs: number;
  /** The shutdown events the child logged (JSON lines on its stderr). */
  readonly events: readonly Record<string, unknown>[];
  readonly stderr: string;
}

/**
 * Starts the worker, loads it until `sigtermAfter` answers, sends SIGTERM (and maybe a second),
 * keeps the load going until the child exits, and counts requests and writes lost.
 */
export async function shutdownUnderLoad(options: ShutdownLoadOptions): Promise<ShutdownLoadResult> {
  const journal = join(tmpdir(), `sluice-shutdown-${process.pid}-${randomBytes(4).toString('hex')}.log`);
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      WORKER,
      journal,
      options.mode,
      String(options.deadlineMs ?? 3000),
      String(options.requestMs ?? 20),
      String(options.writeMs ?? 30),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const guard = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 20_000);
  const agent = new Agent({ keepAlive: true, maxSockets: options.concurrency ?? 16 });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      let out = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        out += chunk;
        const line = out.split('\n')[0];
        if (out.includes('\n') && line !== undefined) resolve((JSON.parse(line) as { port: number }).port);
      });
      void exited.then(() => reject(new Error(`worker exited before listening: ${stderr}`)));
    });

    const answered = new Set<number>();
    let refused = 0;
    let signalledAt = 0;
    let done = false;
    void exited.then(() => (done = true));
    const get = () =>
      new Promise<number>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (body += c));
          res.on('end', () => (res.statusCode === 200 ? resolve(Number(body)) : reject(new Error(body))));
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end();
      });
    const sigtermAfter = options.sigtermAfter ?? 100;
    const loop = async (): Promise<void> => {
      while (!done) {
        try {
          answered.add(await get());
        } catch {
          if (signalledAt > 0) {
            refused++;
            return; // after SIGTERM a refused connection ends this client
          }
          await new Promise((resolve) => setTimeout(resolve, 5));
          continue;
        }
        if (signalledAt === 0 && answered.size >= sigtermAfter) {
          signalledAt = performance.now();
          child.kill('SIGTERM');
          if (options.secondSignalMs !== undefined) {
            setTimeout(() => child.kill('SIGTERM'), options.secondSignalMs).unref();
          }
        }
      }
    };
    const loops = Array.from({ length: options.concurrency ?? 16 }, loop);
    const exit = await exited;
    const exitMs = performance.now() - signalledAt;
    await Promise.all(loops);

    const lines = readFileSync(journal, 'utf8').split('\n');
    const arrived = new Set<number>();
    const written = new Set<number>();
    for (const line of lines) {
      const [kind, id] = line.split(' ');
      if (kind === 'R') arrived.add(Number(id));
      else if (kind === 'W') written.add(Number(id));
    }
    let unanswered = 0;
    for (const id of arrived) if (!answered.has(id)) unanswered++;
    let lostWrites = 0;
    for (const id of arrived) if (!written.has(id)) lostWrites++;
    const events: Record<string, unknown>[] = [];
    for (const line of stderr.split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        events.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // not an event line
      }
    }
    return {
      arrived: arrived.size,
      answered: answered.size,
      unanswered,
      lostWrites,
      writes: written.size,
      refused,
      exitCode: exit.code,
      exitSignal: exit.signal,
      exitMs,
      events,
      stderr,
    };
  } finally {
    clearTimeout(guard);
    agent.destroy();
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    rmSync(journal, { force: true });
  }
}
