import { Server as NetServer } from 'node:net';
import { channels } from '../internal/channels.js';
import { monotonicClock } from '../internal/clock.js';
import { reportError, watchResult } from '../internal/report.js';
import { schedule, type Timer } from '../internal/timer.js';
import * as v from '../internal/validate.js';
import { Supervisor, type ShutdownReport } from './supervisor.js';

/**
 * Something {@link onShutdown} can close: a `node:http` / `node:net` server, a
 * {@link Supervisor}, or anything with `[Symbol.asyncDispose]()` or `close()` (a pool, a
 * `BatchWriter`, a `Limiter`, a Redis client). A returned promise is awaited.
 */
export type ShutdownResource = NetServer | Supervisor | AsyncDisposableLike | ClosableLike;

/** Anything with `[Symbol.asyncDispose]()`. */
export interface AsyncDisposableLike {
  /** Releases the resource; a returned promise is awaited. */
  [Symbol.asyncDispose](): unknown;
}

/** Anything with `close()`. */
export interface ClosableLike {
  /** Closes the resource; a returned promise is awaited. */
  close(): unknown;
}

/**
 * One line of the shutdown log, also published on `sluice:tasks:shutdown`: the signal that
 * started it, each resource closed, the deadline passing, a forcing second signal, the end.
 */
export type ShutdownEvent =
  ShutdownSignalEvent | ShutdownClosedEvent | ShutdownDeadlineEvent | ShutdownForcedEvent | ShutdownDoneEvent;

/** The shutdown started. */
export interface ShutdownSignalEvent {
  /** The kind of event. */
  readonly event: 'signal';
  /** The signal (or `trigger()` argument) that started it. */
  readonly signal: string;
}

/** A resource finished closing. */
export interface ShutdownClosedEvent extends ClosedResource {
  /** The kind of event. */
  readonly event: 'closed';
  /** A Supervisor's shutdown report. */
  readonly report?: ShutdownReport;
}

/** The deadline passed with resources still closing. */
export interface ShutdownDeadlineEvent {
  /** The kind of event. */
  readonly event: 'deadline';
  /** Time since the shutdown started, in ms. */
  readonly ms: number;
  /** The resources still closing. */
  readonly pending: readonly string[];
}

/** A second signal forced the exit. */
export interface ShutdownForcedEvent {
  /** The kind of event. */
  readonly event: 'forced';
  /** The second signal. */
  readonly signal: string;
  /** Time since the shutdown started, in ms. */
  readonly ms: number;
  /** The resources still closing. */
  readonly pending: readonly string[];
}

/** The shutdown ended. */
export interface ShutdownDoneEvent {
  /** The kind of event. */
  readonly event: 'done';
  /** How it went. */
  readonly result: ShutdownResult;
}

/** One resource's close, as the shutdown log reports it. */
export interface ClosedResource {
  /** The resource's name (its `name`, constructor name or position). */
  readonly name: string;
  /** How long its close took, in ms. */
  readonly ms: number;
  /** Whether it closed without an error. */
  readonly ok: boolean;
  /** What its close threw or rejected with. */
  readonly error?: unknown;
}

/** How a shutdown went; what `done` / `trigger()` resolve with, and what is logged last. */
export interface ShutdownResult {
  /** The signal (or `trigger()` argument) that started it. */
  readonly signal: string;
  /** 0 when everything closed in time without error, else 1. */
  readonly exitCode: 0 | 1;
  /** The deadline passed. */
  readonly timedOut: boolean;
  /** A second signal cut it short. */
  readonly forced: boolean;
  /** From the first signal to the end, in ms. */
  readonly durationMs: number;
  /** Each resource closed, in the order it finished. */
  readonly closed: readonly ClosedResource[];
  /** Resources still closing when it ended (deadline or forced). */
  readonly pending: readonly string[];
}

/** Options of {@link onShutdown}. */
export interface OnShutdownOptions {
  /**
   * Signals that start the shutdown; a second one while it runs forces exit 1.
   * @default ['SIGTERM', 'SIGINT']
   */
  readonly signals?: readonly NodeJS.Signals[] | undefined;
  /**
   * Budget for the whole shutdown, in ms. When it passes, servers' remaining connections are
   * destroyed and the process exits 1 (or `done` resolves with `timedOut`).
   * @default 10_000
   */
  readonly deadlineMs?: number | undefined;
  /**
   * `process.exit(result.exitCode)` at the end; `false`: just resolve `done`.
   * @default true
   */
  readonly exit?: boolean | undefined;
  /**
   * Receives each step (what was closed and how long it took, the deadline, the result). A throw
   * from it, or a rejection of the promise it returns, never breaks the shutdown: it is
   * published on `sluice:tasks:error`. Nothing is printed by default; every step is also
   * published on the diagnostics channel `sluice:tasks:shutdown`.
   * @default none
   */
  readonly log?: ((event: ShutdownEvent) => unknown) | undefined;
}

/** What {@link onShutdown} returns. */
export interface ShutdownHandle extends Disposable {
  /** Starts the shutdown as a signal would (a second call acts as a second signal); resolves with `done`. */
  trigger(signal?: string): Promise<ShutdownResult>;
  /** Resolves when the shutdown has ended (with `exit: true` the process exits right after). */
  readonly done: Promise<ShutdownResult>;
  /** Removes the signal listeners (a shutdown already running goes on). */
  [Symbol.dispose](): void;
}

const channel = channels('tasks', ['shutdown', 'error']);

type Closer = () => unknown;

interface Entry {
  readonly name: string;
  readonly resource: ShutdownResource;
  readonly server: NetServer | undefined;
}

/**
 * Graceful shutdown of a process on SIGTERM / SIGINT, with a deadline.
 *
 * On the first signal:
 * 1. every server in `resources` stops accepting connections (`server.close()`) and its idle
 *    keep-alive connections are closed (`closeIdleConnections()`, again as requests finish); it
 *    counts as closed once its in-flight requests are answered. Servers go first, whatever
 *    their place in the array, because they are where new work comes from;
 * 2. then every other resource closes, one after the other, in reverse order of the array (list
 *    them in the order you created them: the last created closes first): a `Supervisor`
 *    through `shutdown({ deadlineMs: <time left> })`, anything else through
 *    `[Symbol.asyncDispose]()` or `close()`;
 * 3. the process exits 0 — or 1 when a close failed or the deadline passed; at the deadline,
 *    servers' remaining connections are destroyed (`closeAllConnections()`) first.
 *
 * A second signal forces exit 1 at once. What each step took is given to `log` and published on
 * `sluice:tasks:shutdown`; nothing is printed by default.
 *
 * @example
 * ```ts
 * import { Supervisor, onShutdown } from 'sluice/tasks';
 * const sup = new Supervisor();
 * const server = http.createServer(handler).listen(8080);
 * onShutdown([db, sup, server], { deadlineMs: 10_000, log: (e) => console.error(e) });
 * ```
 */
export function onShutdown(
  resources: readonly ShutdownResource[],
  options: OnShutdownOptions = {},
): ShutdownHandle {
  if (!Array.isArray(resources)) throw new TypeError(v.expectation('resources', 'an array', resources));
  v.options('options', options);
  const signals = options.signals ?? ['SIGTERM', 'SIGINT'];
  if (!Array.isArray(signals) || !signals.every((s) => typeof s === 'string')) {
    throw new TypeError(v.expectation('signals', 'an array of signal names', signals));
  }
  const deadlineMs = v.nonNegativeNumber('deadlineMs', options.deadlineMs ?? 10_000, true);
  const exit = v.boolean('exit', options.exit ?? true);
  v.optionalFunction('log', options.log);
  const log = options.log;
  const list: readonly ShutdownResource[] = resources;
  const entries: Entry[] = list.map((resource, i) => describeResource(resource, i));

  const clock = monotonicClock;
  let startedAt = 0;
  let started = false;
  let finished = false;
  let forced = false;
  let timedOut = false;
  let firstSignal = '';
  let deadline: Timer | undefined;
  const closed: ClosedResource[] = [];
  /** Resources closing now (by entry: two resources may share a name). */
  const pending = new Set<Entry>();
  const pendingNames = (): string[] => Array.from(pending, (entry) => entry.name);
  const pollers = new Set<ReturnType<typeof setInterval>>();
  let resolveDone!: (result: ShutdownResult) => void;
  const done = new Promise<ShutdownResult>((resolve) => (resolveDone = resolve));

  /** The handle this returns; the source of its error reports. Filled in at the end. */
  const handle = {} as ShutdownHandle;
  const emit = (event: ShutdownEvent): void => {
    if (channel.shutdown.hasSubscribers) channel.shutdown.publish(event);
    if (log === undefined) return;
    // A logger must not break the shutdown: a throw or a rejected promise is reported, no more.
    try {
      watchResult(log(event), channel.error, handle, 'log');
    } catch (error) {
      reportError(channel.error, error, handle, 'log');
    }
  };
  const elapsed = (): number => clock.now() - startedAt;

  const finish = (failed: boolean): void => {
    if (finished) return;
    finished = true;
    deadline?.cancel();
    for (const poller of pollers) clearInterval(poller);
    pollers.clear();
    const result: ShutdownResult = {
      signal: firstSignal,
      exitCode: failed || timedOut || forced ? 1 : 0,
      timedOut,
      forced,
      durationMs: elapsed(),
      closed: closed.slice(),
      pending: pendingNames(),
    };
    emit({ event: 'done', result });
    if (!exit) removeListeners();
    resolveDone(result);
    if (exit) process.exit(result.exitCode);
  };

  const destroyConnections = (): void => {
    for (const { server } of entries) {
      const s = server as { closeAllConnections?: () => void } | undefined;
      try {
        s?.closeAllConnections?.();
      } catch {
        // Already closed.
      }
    }
  };

  const step = async (entry: Entry, close: Closer): Promise<boolean> => {
    const begin = clock.now();
    pending.add(entry);
    let ok = true;
    let error: unknown;
    let report: ShutdownReport | undefined;
    try {
      const out = await close();
      if (entry.resource instanceof Supervisor) report = out as ShutdownReport;
      // The supervisor got the time left as its deadline: its timing out is ours.
      if (report !== undefined && report.timedOut) ok = false;
      if (report !== undefined && report.timedOut) timedOut = true;
    } catch (thrown) {
      ok = false;
      error = thrown;
    }
    pending.delete(entry);
    const ms = clock.now() - begin;
    closed.push(error === undefined ? { name: entry.name, ms, ok } : { name: entry.name, ms, ok, error });
    if (!finished) {
      emit({
        event: 'closed',
        name: entry.name,
        ms,
        ok,
        ...(error === undefined ? {} : { error }),
        ...(report === undefined ? {} : { report }),
      });
    }
    return ok;
  };

  const run = async (): Promise<void> => {
    let failed = false;
    // 1. Intake: every server stops accepting, all at once.
    const servers = entries.filter((e) => e.server !== undefined);
    const serverSteps = servers.map((entry) =>
      step(entry, () => closeServer(entry.server as NetServer, pollers)),
    );
    for (const ok of await Promise.all(serverSteps)) if (!ok) failed = true;
    // 2. Everything else, last created first.
    for (let i = entries.length - 1; i >= 0 && !finished; i--) {
      const entry = entries[i] as Entry;
      if (entry.server !== undefined) continue;
      const resource = entry.resource;
      const left = Math.max(0, deadlineMs - elapsed());
      const close: Closer =
        resource instanceof Supervisor
          ? () => resource.shutdown({ deadlineMs: left })
          : typeof (resource as Partial<AsyncDisposable>)[Symbol.asyncDispose] === 'function'
            ? () => (resource as AsyncDisposable)[Symbol.asyncDispose]()
            : () => (resource as { close(): unknown }).close();
      if (!(await step(entry, close))) failed = true;
    }
    finish(failed);
  };

  const onSignal = (signal: string): void => {
    if (finished) return;
    if (started) {
      forced = true;
      emit({ event: 'forced', signal, ms: elapsed(), pending: pendingNames() });
      destroyConnections();
      finish(true);
      return;
    }
    started = true;
    firstSignal = signal;
    startedAt = clock.now();
    emit({ event: 'signal', signal });
    // Ref'd: the process must not linger, nor exit before it has reported.
    deadline = schedule(
      () => {
        if (finished) return;
        timedOut = true;
        emit({ event: 'deadline', ms: elapsed(), pending: pendingNames() });
        destroyConnections();
        finish(true);
      },
      deadlineMs,
      true,
    );
    void run();
  };

  const listeners = signals.map((signal) => {
    const listener = (): void => onSignal(signal);
    process.on(signal, listener);
    return [signal, listener] as const;
  });
  let removed = false;
  const removeListeners = (): void => {
    if (removed) return;
    removed = true;
    for (const [signal, listener] of listeners) process.off(signal, listener);
  };

  return Object.assign(handle, {
    trigger(signal = 'trigger'): Promise<ShutdownResult> {
      onSignal(signal);
      return done;
    },
    done,
    [Symbol.dispose]: removeListeners,
  });
}

function describeResource(resource: ShutdownResource, index: number): Entry {
  if (typeof resource !== 'object' || resource === null) {
    throw new TypeError(v.expectation(`resources[${index}]`, 'an object', resource));
  }
  if (resource instanceof NetServer) {
    const address = resource.address();
    const where = typeof address === 'object' && address !== null ? `:${address.port}` : '';
    return { name: `server${where}#${index}`, resource, server: resource };
  }
  if (resource instanceof Supervisor) return { name: resource.name, resource, server: undefined };
  const r = resource as Partial<AsyncDisposable> & { close?: unknown; name?: unknown };
  if (typeof r[Symbol.asyncDispose] !== 'function' && typeof r.close !== 'function') {
    throw new TypeError(
      v.expectation(
        `resources[${index}]`,
        'a server, a Supervisor, or an object with close() or [Symbol.asyncDispose]()',
        resource,
      ),
    );
  }
  const ctor = (resource as { constructor?: { name?: unknown } }).constructor?.name;
  const name =
    typeof r.name === 'string' ? r.name : typeof ctor === 'string' && ctor !== 'Object' ? ctor : 'resource';
  return { name: `${name}#${index}`, resource, server: undefined };
}

/**
 * Stops a server accepting, answers every later request on an open connection with
 * `Connection: close`, closes its idle keep-alive connections now and every 25 ms (a connection
 * that answered its last request becomes idle), resolves on its `close`.
 */
function closeServer(server: NetServer, pollers: Set<ReturnType<typeof setInterval>>): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const http = server as { closeIdleConnections?: () => void };
    if (!server.listening) {
      resolve();
      return;
    }
    // A keep-alive client that sends its next request as soon as it has an answer keeps its
    // connection busy forever: from now on every answer closes its connection.
    const closing = (
      _req: unknown,
      res: { headersSent?: boolean; setHeader?: (k: string, v: string) => void },
    ) => {
      if (res.headersSent === false) res.setHeader?.('connection', 'close');
    };
    server.prependListener('request', closing);
    server.close((error) => {
      server.off('request', closing);
      clearInterval(poller);
      pollers.delete(poller);
      if (error === undefined) resolve();
      else reject(error);
    });
    http.closeIdleConnections?.();
    const poller = setInterval(() => http.closeIdleConnections?.(), 25);
    poller.unref();
    pollers.add(poller);
  });
}
