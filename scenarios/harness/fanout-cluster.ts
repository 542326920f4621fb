// Runs the two "processes" of the `event-fanout` scenario through its two phases and returns what
// each saw and handled:
// - `processes`: two forked workers (harness/fanout-worker.ts), on one Redis stream (kind `bus`)
//   or each with its own EventEmitter (kind `emitter`); the kill is a real SIGKILL.
// - `embedded`: two FanoutNodes in this process, on one MemoryTransport (kind `bus`) or each
//   with its own EventEmitter; the kill is simulated (see FanoutNode.kill).
// Phase 1: both emit `perNode` events one after another, the indexer is fast. Phase 2: the
// indexer takes `delayMs` per event, both emit `killPerNode` events in bursts `intervalMs` apart, and `b` is killed as
// its indexer starts its `killAfter`-th event; `a` goes on alone. Every wait is bounded; every
// child is killed and the journals removed on the way out.
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { MemoryTransport, type EventTransport } from '../../src/events/index.js';
import { FanoutNode, busCarrier, emitterCarrier, type Carrier } from './fanout-node.js';
import type { WorkerAsk, WorkerReply, WorkerRequest } from './fanout-worker.js';

const workerFile = fileURLToPath(new URL('./fanout-worker.ts', import.meta.url));

export interface FanoutOptions {
  readonly kind: 'bus' | 'emitter';
  readonly where: 'processes' | 'embedded';
  /** The Redis stream both workers share (kind `bus` in `processes`). */
  readonly stream?: string;
  readonly perNode: number;
  readonly killPerNode: number;
  readonly killAfter: number;
  readonly delayMs: number;
  readonly intervalMs: number;
  /** Phase-2 events emitted together every `intervalMs`. */
  readonly burst: number;
  readonly claimAfterMs: number;
  readonly signal: AbortSignal;
  /**
   * Entries of the `indexer` group not yet acknowledged, of consumer `fanout-<name>` or of all
   * (the workers' consumer names): asked right after the kill and at the end, when given.
   */
  readonly pending?: ((consumer?: string) => Promise<number>) | undefined;
}

export interface FanoutResult {
  /** What each node's broadcast handler saw in phase 1, in order. */
  readonly seen1: { readonly a: string[]; readonly b: string[] };
  /** The log of phase 2 as the survivor saw it: every phase-2 event that was emitted. */
  readonly log2: string[];
  /** Every event the indexer finished, per node (a killed node's record survives it). */
  readonly handled: { readonly a: string[]; readonly b: string[] };
  /** Events b's indexer had started when it was killed. */
  readonly startedByB: string[];
  /** Events each node emitted in phase 2 (b: up to its death, as far as a saw). */
  readonly sent2: { readonly a: number; readonly b: number };
  /** Entries b held unacknowledged right after its death, and the group's left at the end (when `pending` is given). */
  readonly pendingAtKill: number | undefined;
  readonly pendingAtEnd: number | undefined;
}

/** One node as the cluster drives it, in a child process or in this one. */
interface Handle {
  emit(phase: number, count: number, intervalMs: number, burst: number): Promise<number>;
  setDelay(ms: number): Promise<void>;
  seen(): Promise<string[]>;
  handled(): string[];
  /** Set by the cluster: told when the slow indexer starts an event. */
  onStarted: (id: string) => void;
  /** Kills it now; resolves once it is dead. */
  kill(): Promise<void>;
  /** Graceful stop: every accepted event handled. */
  close(): Promise<void>;
  /** Whatever state it is in, stops it (the cleanup on every path). */
  dispose(): Promise<void>;
}

const TIMEOUT_MS = 15_000;

/** Polls `check` every 10 ms until it holds; throws after `ms` or when `signal` aborts. */
async function until(
  check: () => boolean | Promise<boolean>,
  what: string | (() => string),
  signal: AbortSignal,
  ms = 10_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    signal.throwIfAborted();
    if (Date.now() > deadline)
      throw new Error(`timed out after ${ms} ms waiting for ${typeof what === 'string' ? what : what()}`);
    await sleep(10);
  }
}

/**
 * `inner` as seen from one simulated process: `cut()` is its death, after which every call
 * fails (what a killed process's connection does), so nothing it still holds is acknowledged.
 */
function killable(inner: EventTransport): { transport: EventTransport; cut: () => void } {
  let dead = false;
  const dies = (): Promise<never> => Promise.reject(new Error('the simulated process was killed'));
  const guard = <T>(call: () => Promise<T>): Promise<T> =>
    dead ? dies() : call().then((value) => (dead ? dies() : value));
  const transport: EventTransport = {
    append: (entries) => guard(() => inner.append(entries)),
    read: (after, options) => guard(() => inner.read(after, options)),
    lastId: () => guard(() => inner.lastId()),
    createGroup: (group, startId) => guard(() => inner.createGroup(group, startId)),
    readGroup: (group, consumer, options) => guard(() => inner.readGroup(group, consumer, options)),
    ack: (group, ids) => guard(() => inner.ack(group, ids)),
    claim: (group, consumer, minIdleMs, count) => guard(() => inner.claim(group, consumer, minIdleMs, count)),
    close: () => Promise.resolve(), // the shared log is closed by the cluster
  };
  return { transport, cut: () => void (dead = true) };
}

function embedded(name: string, carrier: Carrier, cut?: () => void): Handle {
  const journal: string[] = [];
  let closed = false;
  const handle: Handle = {
    emit: (phase, count, intervalMs, burst) => node.emit(phase, count, intervalMs, burst),
    setDelay: (ms) => {
      node.setDelay(ms);
      return Promise.resolve();
    },
    seen: () => Promise.resolve([...node.seen]),
    handled: () => [...journal],
    onStarted: () => undefined,
    kill: () => {
      closed = true;
      cut?.();
      node.kill();
      return Promise.resolve();
    },
    close: async () => {
      closed = true;
      await node.close(AbortSignal.timeout(5000));
    },
    dispose: () => {
      if (!closed) {
        closed = true;
        node.kill();
      }
      return Promise.resolve();
    },
  };
  const node = new FanoutNode(name, carrier, {
    started: (id) => handle.onStarted(id),
    handled: (id) => void journal.push(id),
  });
  return handle;
}

async function forked(
  name: string,
  kind: 'bus' | 'emitter',
  dir: string,
  options: FanoutOptions,
): Promise<Handle> {
  const journal = join(dir, `${name}.journal`);
  writeFileSync(journal, '');
  const child: ChildProcess = fork(workerFile, [kind, name, journal, String(options.claimAfterMs)], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, SLUICE_FANOUT_STREAM: options.stream ?? '' },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const waiting = new Map<number, { resolve: (r: WorkerReply) => void; reject: (e: Error) => void }>();
  let next = 0;
  let onStarted = (_id: string): void => undefined;
  const ready = new Promise<void>((resolve, reject) => {
    child.on('message', (m: WorkerReply | { ready: true } | { started: string }) => {
      if ('ready' in m) resolve();
      else if ('started' in m) onStarted(m.started);
      else waiting.get(m.req)?.resolve(m);
    });
    child.once('exit', (code, sig) => {
      const error = new Error(`fanout worker ${name} exited (${sig ?? code})`);
      reject(error);
      for (const w of waiting.values()) w.reject(error);
      waiting.clear();
    });
  });
  const ask = (m: WorkerAsk): Promise<WorkerReply> => {
    const req = next++;
    return new Promise<WorkerReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        waiting.delete(req);
        reject(new Error(`fanout worker ${name}: no answer to ${m.op} within ${TIMEOUT_MS} ms`));
      }, TIMEOUT_MS);
      waiting.set(req, {
        resolve: (r) => {
          clearTimeout(timer);
          waiting.delete(req);
          if (r.error === undefined) resolve(r);
          else reject(new Error(`fanout worker ${name}: ${r.error}`));
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      const request: WorkerRequest = { ...m, req };
      child.send(request);
    });
  };
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    if (child.connected) child.disconnect();
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  };
  try {
    await Promise.race([
      ready,
      sleep(TIMEOUT_MS, undefined, { ref: false }).then(() =>
        Promise.reject(new Error(`fanout worker ${name} not ready within ${TIMEOUT_MS} ms`)),
      ),
    ]);
  } catch (error) {
    child.kill('SIGKILL');
    await exited;
    throw error;
  }
  const handle: Handle = {
    emit: async (phase, count, intervalMs, burst) =>
      (await ask({ op: 'emit', phase, count, intervalMs, burst })).sent ?? 0,
    setDelay: async (ms) => void (await ask({ op: 'delay', ms })),
    seen: async () => (await ask({ op: 'seen' })).seen ?? [],
    handled: () =>
      readFileSync(journal, 'utf8')
        .split('\n')
        .filter((l) => l !== ''),
    set onStarted(fn: (id: string) => void) {
      onStarted = fn;
    },
    get onStarted() {
      return onStarted;
    },
    kill: async () => {
      child.kill('SIGKILL');
      await exited;
    },
    close: async () => {
      await ask({ op: 'close' });
      await stop();
    },
    dispose: stop,
  };
  return handle;
}

/** Runs both phases; see the file comment. */
export async function runFanout(options: FanoutOptions): Promise<FanoutResult> {
  const { kind, where, perNode, killPerNode, killAfter, delayMs, intervalMs, burst, claimAfterMs, signal } =
    options;
  const dir = mkdtempSync(join(tmpdir(), 'sluice-fanout-'));
  const shared = kind === 'bus' && where === 'embedded' ? new MemoryTransport() : undefined;
  const handles: Handle[] = [];
  try {
    const open = async (name: string): Promise<Handle> => {
      let h: Handle;
      if (where === 'processes') h = await forked(name, kind, dir, options);
      else if (shared === undefined) h = embedded(name, emitterCarrier());
      else {
        const { transport, cut } = killable(shared);
        h = embedded(name, busCarrier(transport, `bus ${name}`, claimAfterMs), cut);
      }
      handles.push(h);
      return h;
    };
    const a = await open('a');
    const b = await open('b');
    const fanned = kind === 'bus';

    // Phase 1: 2 × perNode events, emitted at once by both; a fast indexer.
    await Promise.all([a.emit(1, perNode, 0, 1), b.emit(1, perNode, 0, 1)]);
    const perSeen = fanned ? 2 * perNode : perNode;
    await until(
      async () =>
        (await a.seen()).length >= perSeen &&
        (await b.seen()).length >= perSeen &&
        a.handled().length + b.handled().length >= 2 * perNode,
      `phase 1: ${perSeen} events seen by each node and ${2 * perNode} indexed`,
      signal,
    );
    const seen1 = { a: await a.seen(), b: await b.seen() };

    // Phase 2: a slow indexer; b is killed as it starts its killAfter-th event.
    await Promise.all([a.setDelay(delayMs), b.setDelay(delayMs)]);
    const startedByB: string[] = [];
    let killing: Promise<void> | undefined;
    b.onStarted = (id) => {
      startedByB.push(id);
      if (startedByB.length === killAfter) killing = b.kill();
    };
    let aEmitting = true;
    const aSent = a.emit(2, killPerNode, intervalMs, burst).finally(() => (aEmitting = false));
    const bSent = b.emit(2, killPerNode, intervalMs, burst).catch(() => -1);
    await until(() => killing !== undefined, `b's indexer to start ${killAfter} events`, signal);
    await killing;
    const pendingAtKill = await options.pending?.('fanout-b');
    if (!aEmitting) throw new Error('a finished emitting before b was killed: raise killPerNode');
    const sentA = await aSent;
    await bSent;
    // a's last event was appended after b died: once a has read it, a has read the whole log.
    const last = `a2:${killPerNode - 1}`;
    await until(async () => (await a.seen()).includes(last), `a to read its last event`, signal);
    // Over the bus, a's view is the log (b's events included); with per-process emitters a
    // never sees b's events: b's are the ones its indexer started.
    const log2 = [...new Set([...(await a.seen()), ...startedByB])].filter((id) => id.includes('2:'));
    // Over the bus every event of the log gets indexed; with emitters only a's own can be.
    const due = fanned ? log2 : log2.filter((id) => id.startsWith('a'));
    await until(
      () => {
        const done = new Set([...a.handled(), ...b.handled()]);
        return due.every((id) => done.has(id));
      },
      () => {
        const done = new Set([...a.handled(), ...b.handled()]);
        return `every phase-2 event indexed (missing: ${due.filter((id) => !done.has(id)).join(' ')})`;
      },
      signal,
    );
    await a.close();
    const pendingAtEnd = await options.pending?.();
    return {
      seen1,
      log2,
      handled: { a: a.handled(), b: b.handled() },
      startedByB,
      pendingAtKill,
      pendingAtEnd,
      sent2: { a: sentA, b: log2.filter((id) => id.startsWith('b')).length },
    };
  } finally {
    await Promise.all(handles.map((h) => h.dispose()));
    await shared?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
