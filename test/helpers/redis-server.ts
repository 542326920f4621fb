import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TestContext } from 'node:test';

/**
 * Whether a `redis-server` binary is on PATH. Without it a test that starts its own servers
 * skips visibly, or fails under `SLUICE_REQUIRE_SERVICES=1` (as test/helpers/services.ts does).
 */
export function redisServerBinary(t: TestContext): boolean {
  if (spawnSync('redis-server', ['--version']).error === undefined) return true;
  if (process.env['SLUICE_REQUIRE_SERVICES'] === '1') {
    throw new Error('redis-server is not on PATH but SLUICE_REQUIRE_SERVICES=1 requires it');
  }
  t.skip('redis-server is not on PATH; install Redis (or run .ci/run) to run this test');
  return false;
}

/** A free loopback TCP port (the kernel's pick; released before returning). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** Sends PING on a fresh connection; resolves true on +PONG. */
export function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (data) => done(data.toString().startsWith('+PONG')));
  });
}

/** A redis-server child process on a loopback port, in its own tmp dir. */
export class RedisServer {
  readonly port: number;
  readonly dir: string;
  readonly #extra: readonly string[];
  #child: ChildProcess | undefined;

  private constructor(port: number, extra: readonly string[]) {
    this.port = port;
    this.#extra = extra;
    this.dir = mkdtempSync(join(tmpdir(), 'sluice-redis-'));
    servers.add(this);
  }

  /**
   * Starts a server (on `port`, or a free one) and waits until it answers PING. Without
   * `appendOnly` nothing is persisted: a restart starts empty.
   */
  static async start(options?: {
    port?: number;
    cluster?: boolean;
    appendOnly?: boolean;
  }): Promise<RedisServer> {
    const port = options?.port ?? (await freePort());
    const extra =
      options?.cluster === true
        ? ['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`]
        : [];
    // Persistence that survives kill -9: every write is fsynced to the AOF before its reply.
    if (options?.appendOnly === true) extra.push('--appendonly', 'yes', '--appendfsync', 'always');
    const server = new RedisServer(port, extra);
    await server.restart();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** (Re)starts the process on the same port; resolves once it answers PING (≤ 5 s). */
  async restart(): Promise<void> {
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
    args.push('--daemonize', 'no', '--dir', this.dir, ...this.#extra);
    this.#child = spawn('redis-server', args, { stdio: 'ignore' });
    const deadline = Date.now() + 5000;
    while (!(await ping(this.port))) {
      if (Date.now() > deadline) throw new Error(`redis-server on port ${this.port} did not start`);
      await sleep(20);
    }
  }

  /** Kills the process with `signal` (SIGKILL: an outage) and waits for it to exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.#child;
    this.#child = undefined;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill(signal);
    await exited;
  }

  /** Kills the process and removes its directory. */
  async stop(): Promise<void> {
    await this.kill();
    servers.delete(this);
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Sends `signal` (SIGSTOP: a server that stops answering without closing its sockets). */
  signal(signal: NodeJS.Signals): void {
    this.#child?.kill(signal);
  }

  /** Synchronous last resort (process exit): kill without waiting. */
  killNow(): void {
    this.#child?.kill('SIGCONT');
    this.#child?.kill('SIGKILL');
  }
}

const servers = new Set<RedisServer>();
process.on('exit', () => {
  for (const server of servers) server.killNow();
});

/** Starts 3 cluster-enabled servers, creates the cluster and waits for cluster_state:ok. */
export async function startCluster(): Promise<RedisServer[]> {
  const nodes: RedisServer[] = [];
  try {
    for (let i = 0; i < 3; i++) nodes.push(await RedisServer.start({ cluster: true }));
    const create = spawnSync(
      'redis-cli',
      [
        '--cluster',
        'create',
        ...nodes.map((n) => `127.0.0.1:${n.port}`),
        '--cluster-replicas',
        '0',
        '--cluster-yes',
      ],
      { encoding: 'utf8', timeout: 20_000 },
    );
    if (create.status !== 0)
      throw new Error(`redis-cli --cluster create failed: ${create.stdout}${create.stderr}`);
    const deadline = Date.now() + 10_000;
    for (const node of nodes) {
      for (;;) {
        const info = spawnSync('redis-cli', ['-p', String(node.port), 'cluster', 'info'], {
          encoding: 'utf8',
        });
        if (info.stdout.includes('cluster_state:ok')) break;
        if (Date.now() > deadline) throw new Error(`cluster not ok on ${node.port}: ${info.stdout}`);
        await sleep(50);
      }
    }
    return nodes;
  } catch (error) {
    await Promise.all(nodes.map((n) => n.stop()));
    throw error;
  }
}
