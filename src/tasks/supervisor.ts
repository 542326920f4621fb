import { ClosedError, QueueFullError, RestartIntensityError } from '../errors.js';
import { channels } from '../internal/channels.js';
import { monotonicClock, type Clock } from '../internal/clock.js';
import { captureContext, type ContextRunner } from '../internal/context.js';
import { Deque } from '../internal/deque.js';
import { reportError, watchResult } from '../internal/report.js';
import { linkSignal, unlinkSignal } from '../internal/signal.js';
import { schedule, type Timer } from '../internal/timer.js';
import * as v from '../internal/validate.js';

/** What a tracked piece of work is: how it was submitted. */
export type TaskKind = 'background' | 'spawn' | 'every';

/**
 * When a spawned task is started again (Erlang/OTP's child restart types):
 * `'permanent'` after every end, `'transient'` only after a failure (a throw or a rejection),
 * `'temporary'` never.
 */
export type RestartPolicy = 'permanent' | 'transient' | 'temporary';

/** State of a spawned task, see {@link TaskHandle.state}. */
export type TaskState = 'running' | 'restarting' | 'stopped' | 'done' | 'gave-up';

/** Exponential backoff between restarts of a spawned task. */
export interface BackoffOptions {
  /**
   * Delay before the first restart in a quiet period, in ms. The n-th restart within `withinMs`
   * waits `initialMs × factor^(n−1)`, capped by `maxMs`.
   * @default 100
   */
  readonly initialMs?: number | undefined;
  /**
   * Upper bound of one delay, in ms.
   * @default 30_000
   */
  readonly maxMs?: number | undefined;
  /**
   * Growth per restart.
   * @default 2
   */
  readonly factor?: number | undefined;
  /**
   * Equal jitter: each delay is uniform in `[delay / 2, delay]`, so that tasks failing together
   * do not restart together; `false`: exactly `delay`.
   * @default true
   */
  readonly jitter?: boolean | undefined;
  /**
   * Source of the jitter, uniform in `[0, 1)`; inject a seeded one for reproducible delays. A
   * throw or a value outside `[0, 1)` counts as 0.5.
   * @default Math.random
   */
  readonly random?: (() => number) | undefined;
}

/** What {@link SupervisorOptions.onError} is told about a failure. */
export interface TaskErrorInfo {
  /** The task's name, or the supervisor's for a give-up. */
  readonly name: string;
  /** How the task was submitted; `'supervisor'` when the supervisor gave up (a `RestartIntensityError`). */
  readonly kind: TaskKind | 'supervisor';
  /** The `name` of the supervisor that ran it. */
  readonly supervisor: string;
}

/** Options of {@link Supervisor} (and of {@link Supervisor.child}, which inherits omitted ones). */
export interface SupervisorOptions {
  /**
   * Restart intensity: more than this many restarts within `withinMs` make the supervisor give
   * up (counted across all its spawned tasks, as OTP does). `Infinity` must be spelled.
   * @default 5
   */
  readonly maxRestarts?: number | undefined;
  /**
   * The restart-intensity window, in ms (or `'1m'`-style). A restart exactly `withinMs` ago no
   * longer counts.
   * @default 60_000
   */
  readonly withinMs?: number | string | undefined;
  /**
   * Delay between restarts.
   * @default { initialMs: 100, maxMs: 30_000, factor: 2, jitter: true }
   */
  readonly backoff?: BackoffOptions | undefined;
  /**
   * Background tasks in flight at once. At the bound, `background` throws `QueueFullError`
   * and `backgroundAsync` waits for room. `Infinity` must be spelled.
   * @default 10_000
   */
  readonly maxBackground?: number | undefined;
  /**
   * `backgroundAsync` calls waiting for room; beyond it they reject with `QueueFullError`.
   * @default 10_000
   */
  readonly maxWaiting?: number | undefined;
  /**
   * Receives every failure: a background task, a spawned task's run or a periodic run that threw
   * or rejected, and a give-up (`RestartIntensityError`, kind `'supervisor'`). It runs in the
   * async context of the call that submitted the task. A throw or rejection from it is counted
   * in `stats.callbackFailures` and published on `sluice:tasks:error`, never rethrown. Every
   * failure is also counted in `stats.failures` and published on `sluice:tasks:error` as
   * `{ error, source, where, name, kind, supervisor }`.
   * @default none
   */
  readonly onError?: ((error: unknown, info: TaskErrorInfo) => unknown) | undefined;
  /**
   * Time source for the restart-intensity window, ages and durations, in ms. Timers (backoff,
   * intervals, the shutdown deadline) are real timers.
   * @default monotonic `performance.now()`
   */
  readonly clock?: Clock | undefined;
  /**
   * Names this supervisor in errors, `stats`, reports and channel payloads. A child's name is
   * prefixed with its parent's: `app/indexers`.
   * @default 'Supervisor'
   */
  readonly name?: string | undefined;
}

/** Per-call options of {@link Supervisor.background}. */
export interface BackgroundOptions {
  /**
   * Names the task in error reports and the shutdown report.
   * @default the function's name, else `'background'`
   */
  readonly name?: string | undefined;
}

/** Per-call options of {@link Supervisor.backgroundAsync}. */
export interface BackgroundAsyncOptions extends BackgroundOptions {
  /** Aborting stops waiting for room: the task is never started and the call rejects with `signal.reason`. */
  readonly signal?: AbortSignal | undefined;
}

/** Options of {@link Supervisor.spawn}. */
export interface SpawnOptions {
  /** @default 'permanent' */
  readonly restart?: RestartPolicy | undefined;
}

/** Options of {@link Supervisor.every}. */
export interface EveryOptions {
  /**
   * A tick that finds the previous run still going: `'skip'` drops it (counted in `skipped`),
   * `'queue'` runs once more as soon as the current run ends (at most one pending run; further
   * ticks are skipped).
   * @default 'skip'
   */
  readonly overlap?: 'skip' | 'queue' | undefined;
  /**
   * Keep the process alive for this job's timer. By default the timer is unref'd: a periodic job
   * alone does not keep a process running.
   * @default false
   */
  readonly ref?: boolean | undefined;
}

/** Options of {@link Supervisor.shutdown}. */
export interface ShutdownOptions {
  /**
   * How long to wait for work to finish after aborting it, in ms. `shutdown()` resolves by then
   * whatever the work does (`Infinity` must be spelled).
   * @default 10_000
   */
  readonly deadlineMs?: number | undefined;
}

/** A task still running when `shutdown` resolved. */
export interface UnfinishedTask {
  /** The task's name. */
  readonly name: string;
  /** What kind of work it is. */
  readonly kind: TaskKind;
  /** Time since this run started, in ms. */
  readonly ageMs: number;
  /** The supervisor (or child supervisor) that runs it. */
  readonly supervisor: string;
}

/** What {@link Supervisor.shutdown} resolves with. */
export interface ShutdownReport {
  /** Runs still going when it resolved (none unless `timedOut`), this supervisor's and its children's. */
  readonly unfinished: readonly UnfinishedTask[];
  /** The deadline passed before everything finished. */
  readonly timedOut: boolean;
  /** From the `shutdown()` call to its resolution, in ms. */
  readonly durationMs: number;
}

/** Counters and gauges of a {@link Supervisor}; reading them is free. */
export interface SupervisorStats {
  /** The supervisor's name. */
  readonly name: string;
  /** Spawned-task runs and periodic runs executing now. */
  readonly running: number;
  /** Spawned tasks alive (running or waiting to restart). */
  readonly tasks: number;
  /** Periodic jobs registered. */
  readonly jobs: number;
  /** Background tasks accepted and not finished (≤ `maxBackground`). */
  readonly backgroundInFlight: number;
  /** `backgroundAsync` calls waiting for room (≤ `maxWaiting`). */
  readonly backgroundWaiting: number;
  /** Background tasks that finished without error. */
  readonly backgroundCompleted: number;
  /** Restarts made (of spawned tasks, and of child supervisors that gave up). */
  readonly restarts: number;
  /** Runs that threw or rejected: background, spawned and periodic. */
  readonly failures: number;
  /** Times the restart intensity was exceeded and the supervisor gave up. */
  readonly givenUp: number;
  /** Periodic ticks dropped because the previous run was still going. */
  readonly skipped: number;
  /** Work refused: `QueueFullError`, `ClosedError`. */
  readonly rejected: number;
  /** `backgroundAsync` waits abandoned through their signal. */
  readonly aborted: number;
  /** `onError` / `backoff.random` / `clock.now` calls that threw or rejected. */
  readonly callbackFailures: number;
  /** Whether `shutdown()` has been called. */
  readonly closed: boolean;
}

/** A run in flight: an intrusive list node, so tracking costs no Set or array per task. */
class Run {
  prev: Run | undefined = undefined;
  next: Run | undefined = undefined;
  constructor(
    readonly name: string,
    readonly kind: TaskKind,
    readonly startedAt: number,
  ) {}
}

/** A spawned task. */
class Task {
  state: TaskState = 'running';
  restarts = 0;
  controller: AbortController | undefined = undefined;
  run: Run | undefined = undefined;
  timer: Timer | undefined = undefined;
  /** Start again once the current run ends (its supervisor was restarted meanwhile). */
  resume = false;
  /** Gave up with no restart to come: forget it once its run ends. */
  final = false;
  waiters: (() => void)[] | undefined = undefined;
  constructor(
    readonly name: string,
    readonly fn: (signal: AbortSignal) => unknown,
    readonly policy: RestartPolicy,
    readonly context: ContextRunner,
  ) {}
}

/** A periodic job. */
class Job {
  stopped = false;
  run: Run | undefined = undefined;
  pending = false;
  timer: Timer | undefined = undefined;
  runs = 0;
  skipped = 0;
  failures = 0;
  readonly controller = new AbortController();
  waiters: (() => void)[] | undefined = undefined;
  constructor(
    readonly name: string,
    readonly intervalMs: number,
    readonly fn: (signal: AbortSignal) => unknown,
    readonly queue: boolean,
    readonly ref: boolean,
    readonly context: ContextRunner,
  ) {}
}

/** A `backgroundAsync` call waiting for room. */
class Waiter {
  dead = false;
  listener: (() => void) | undefined = undefined;
  constructor(
    readonly fn: () => unknown,
    readonly name: string,
    readonly resolve: () => void,
    readonly reject: (reason: unknown) => void,
    readonly signal: AbortSignal | undefined,
    readonly context: ContextRunner,
  ) {}
}

interface ShutdownState {
  readonly promise: Promise<ShutdownReport>;
  readonly resolve: (report: ShutdownReport) => void;
  readonly startedAt: number;
  timer: Timer | undefined;
  concluding: boolean;
}

const OPEN: Promise<void> = Promise.resolve();
const RESOLVED: Promise<void> = Promise.resolve();
const POLICIES: readonly RestartPolicy[] = ['permanent', 'transient', 'temporary'];
const isDead = (w: Waiter): boolean => w.dead;
const channel = channels('tasks', ['error', 'reject', 'restart', 'giveup']);

/** Key of the parent a {@link Supervisor.child} passes to the constructor; not part of the API. */
const PARENT = Symbol('sluice.Supervisor.parent');
let stopTask: (sup: Supervisor, task: Task) => Promise<void>;
let stopJob: (sup: Supervisor, job: Job) => Promise<void>;

/**
 * A spawned task, as returned by {@link Supervisor.spawn}.
 *
 * @example
 * ```ts
 * const indexer = sup.spawn('indexer', (signal) => runIndexer(signal));
 * indexer.state;    // 'running' | 'restarting' | 'stopped' | 'done' | 'gave-up'
 * indexer.restarts; // how many times it was started again
 * await indexer.stop(); // aborts its signal, resolves when the run has ended
 * ```
 */
export class TaskHandle {
  readonly #sup: Supervisor;
  readonly #task: Task;

  /** @internal */
  constructor(sup: Supervisor, task: Task) {
    this.#sup = sup;
    this.#task = task;
  }

  /** The name given to `spawn`. */
  get name(): string {
    return this.#task.name;
  }

  /**
   * `'running'`; `'restarting'` (waiting out its backoff); `'stopped'` (by `stop()` or
   * shutdown); `'done'` (ended, and its policy does not restart it); `'gave-up'` (its supervisor
   * exceeded its restart intensity).
   */
  get state(): TaskState {
    return this.#task.state;
  }

  /** How many times it was started again. */
  get restarts(): number {
    return this.#task.restarts;
  }

  /**
   * Stops it: cancels a pending restart, aborts the signal of the current run and resolves when
   * that run has ended (a run that ignores its signal keeps this pending; `shutdown` has a
   * deadline, this does not). Idempotent.
   */
  stop(): Promise<void> {
    return stopTask(this.#sup, this.#task);
  }
}

/**
 * A periodic job, as returned by {@link Supervisor.every}.
 *
 * @example
 * ```ts
 * const sweep = sup.every('sweep', 60_000, (signal) => sweepExpired(signal));
 * sweep.runs; sweep.skipped; sweep.failures;
 * await sweep.stop();
 * ```
 */
export class JobHandle {
  readonly #sup: Supervisor;
  readonly #job: Job;

  /** @internal */
  constructor(sup: Supervisor, job: Job) {
    this.#sup = sup;
    this.#job = job;
  }

  /** The name given to `every`. */
  get name(): string {
    return this.#job.name;
  }

  /** Runs finished (with or without error). */
  get runs(): number {
    return this.#job.runs;
  }

  /** Ticks dropped because a run was still going. */
  get skipped(): number {
    return this.#job.skipped;
  }

  /** Runs that threw or rejected. */
  get failures(): number {
    return this.#job.failures;
  }

  /** Whether a run is executing now. */
  get running(): boolean {
    return this.#job.run !== undefined;
  }

  /** Whether `stop()` (or shutdown) has stopped it. */
  get stopped(): boolean {
    return this.#job.stopped;
  }

  /** Stops the schedule, aborts the current run's signal, resolves when that run has ended. Idempotent. */
  stop(): Promise<void> {
    return stopJob(this.#sup, this.#job);
  }
}

/**
 * Supervises the work a service starts and does not await: fire-and-forget tasks, long-running
 * tasks that must be restarted when they crash, and periodic jobs — and ends all of it in a
 * shutdown with a deadline.
 *
 * - **Bound**: at most `maxBackground` background tasks in flight; beyond it `background`
 *   throws `QueueFullError` (the caller decides: run it inline, shed the request) and
 *   `backgroundAsync` waits, FIFO, in a queue of at most `maxWaiting`.
 * - **Errors**: every throw, synchronous throw or rejection of a task is counted, published on
 *   `sluice:tasks:error` and given to `onError` with the task's name; none is ever unhandled.
 * - **Restarts**: `spawn` restarts per OTP policy with exponential backoff and jitter; more than
 *   `maxRestarts` restarts within `withinMs` and the supervisor gives up on its spawned tasks
 *   (aborts them), reports a `RestartIntensityError` and, if it is a `child()`, escalates: the
 *   parent counts it as one restart of its own and restarts the child's tasks after its backoff,
 *   or gives up in turn.
 * - **Cancellation**: every spawned or periodic run gets an AbortSignal, aborted by `stop()` and
 *   shutdown; a `backgroundAsync` wait takes `{ signal }` and leaves the queue in O(1).
 * - **Shutdown**: `shutdown({ deadlineMs })` refuses new work with `ClosedError`, rejects waiting
 *   `backgroundAsync` calls, aborts spawned and periodic runs, shuts children down first, and
 *   resolves by the deadline with the runs still unfinished — even if they ignore their signal.
 *
 * User code always starts asynchronously (one microtask later at the earliest), in the async
 * context (`AsyncLocalStorage`) of the call that submitted it; it may be synchronous, throw
 * synchronously, or call back into the supervisor.
 *
 * @example
 * ```ts
 * import { Supervisor } from 'sluice/tasks';
 * const sup = new Supervisor({ maxRestarts: 5, withinMs: 60_000, onError: (err, t) => log(t.name, err) });
 * sup.spawn('indexer', (signal) => runIndexer(signal), { restart: 'permanent' });
 * sup.every('sweep', 60_000, (signal) => sweep(signal));
 * sup.background(() => storePattern(p), { name: 'store-pattern' }); // tracked, never awaited
 * const report = await sup.shutdown({ deadlineMs: 10_000 }); // { unfinished, timedOut, durationMs }
 * ```
 */
export class Supervisor implements AsyncDisposable {
  readonly #name: string;
  readonly #maxRestarts: number;
  readonly #withinMs: number;
  readonly #initialMs: number;
  readonly #maxMs: number;
  readonly #factor: number;
  readonly #jitter: boolean;
  readonly #random: () => number;
  readonly #maxBackground: number;
  readonly #maxWaiting: number;
  readonly #onError: ((error: unknown, info: TaskErrorInfo) => unknown) | undefined;
  readonly #clock: Clock;
  readonly #options: SupervisorOptions;
  readonly #parent: Supervisor | undefined;

  readonly #children = new Set<Supervisor>();
  readonly #tasks = new Set<Task>();
  readonly #jobs = new Set<Job>();
  readonly #waiters = new Deque<Waiter, undefined>(isDead);
  /** Newest run first. */
  #head: Run | undefined = undefined;
  #inFlight = 0;
  #background = 0;
  /** Restart times within the window, oldest first from `#historyHead`. */
  #history: number[] = [];
  #historyHead = 0;
  /** The restart a parent scheduled for this supervisor after it gave up. */
  #pendingRestart: Timer | undefined = undefined;
  #closed = false;
  #shutdown: ShutdownState | undefined = undefined;
  #lastNow = 0;
  #lastError: unknown = undefined;

  #completed = 0;
  #restarts = 0;
  #failures = 0;
  #givenUp = 0;
  #skipped = 0;
  #rejected = 0;
  #aborted = 0;
  #callbackFailures = 0;

  constructor(options: SupervisorOptions = {}) {
    v.options('options', options);
    const parent = (options as { [PARENT]?: Supervisor } | undefined)?.[PARENT];
    const o = options ?? {};
    this.#options = o;
    this.#maxRestarts = v.nonNegativeInteger('maxRestarts', orDefault(o.maxRestarts, 5), true);
    this.#withinMs = v.positiveDuration('withinMs', orDefault<unknown>(o.withinMs, 60_000));
    v.options('backoff', o.backoff);
    const b = o.backoff ?? {};
    this.#initialMs = v.nonNegativeNumber('backoff.initialMs', orDefault(b.initialMs, 100));
    this.#maxMs = v.nonNegativeNumber('backoff.maxMs', orDefault(b.maxMs, 30_000), true);
    this.#factor = v.positiveNumber('backoff.factor', orDefault(b.factor, 2));
    this.#jitter = v.boolean('backoff.jitter', orDefault<unknown>(b.jitter, true));
    v.optionalFunction('backoff.random', b.random);
    this.#random = b.random ?? Math.random;
    this.#maxBackground = v.positiveInteger('maxBackground', orDefault(o.maxBackground, 10_000), true);
    this.#maxWaiting = v.nonNegativeInteger('maxWaiting', orDefault(o.maxWaiting, 10_000), true);
    v.optionalFunction('onError', o.onError);
    this.#onError = o.onError;
    this.#clock = o.clock === undefined ? monotonicClock : v.clock('clock', o.clock);
    const name =
      o.name === undefined ? (parent === undefined ? 'Supervisor' : 'child') : v.string('name', o.name);
    this.#name = parent === undefined ? name : `${parent.#name}/${name}`;
    this.#parent = parent;
    if (parent !== undefined) parent.#children.add(this);
  }

  static {
    stopTask = (sup, task) => sup.#stopTask(task, new ClosedError(`${sup.#name}: task ${task.name} stopped`));
    stopJob = (sup, job) => sup.#stopJob(job, new ClosedError(`${sup.#name}: job ${job.name} stopped`));
  }

  /** The `name` option (prefixed by the parent's for a child). */
  get name(): string {
    return this.#name;
  }

  /** Whether `shutdown()` has been called (here or on an ancestor). */
  get closed(): boolean {
    return this.#closed;
  }

  /** The most recent failure reported, if any. */
  get lastError(): unknown {
    return this.#lastError;
  }

  /** A snapshot of the counters and gauges; cheap, synchronous. */
  get stats(): SupervisorStats {
    return {
      name: this.#name,
      running: this.#inFlight - this.#background,
      tasks: this.#tasks.size,
      jobs: this.#jobs.size,
      backgroundInFlight: this.#background,
      backgroundWaiting: this.#waiters.size,
      backgroundCompleted: this.#completed,
      restarts: this.#restarts,
      failures: this.#failures,
      givenUp: this.#givenUp,
      skipped: this.#skipped,
      rejected: this.#rejected,
      aborted: this.#aborted,
      callbackFailures: this.#callbackFailures,
      closed: this.#closed,
    };
  }

  /**
   * A nested supervisor: its own restart intensity, bound and shutdown, options inherited from
   * this one unless given. When it gives up, this supervisor counts one restart and restarts the
   * child's tasks after its backoff (or gives up in turn). This supervisor's shutdown shuts the
   * child down first, with the same deadline. Throws `ClosedError` after shutdown.
   */
  child(options: SupervisorOptions = {}): Supervisor {
    v.options('options', options);
    if (this.#closed) throw this.#refuse(new ClosedError(`${this.#name} is shut down`), 'child', 'closed');
    const parent = this.#options;
    const inherited: SupervisorOptions = {
      maxRestarts: parent.maxRestarts,
      withinMs: parent.withinMs,
      backoff: parent.backoff,
      maxBackground: parent.maxBackground,
      maxWaiting: parent.maxWaiting,
      onError: parent.onError,
      clock: parent.clock,
    };
    return new Supervisor({ ...inherited, ...stripUndefined(options), [PARENT]: this } as SupervisorOptions);
  }

  /**
   * Runs `fn` in the background, tracked: its failure (a throw, synchronous or not, or a
   * rejection) is reported with its name and never unhandled; `shutdown` waits for it. Returns
   * nothing, so there is nothing to forget to catch.
   *
   * Throws — synchronously, without running `fn` — `QueueFullError` when `maxBackground` tasks
   * are in flight (use {@link Supervisor.backgroundAsync} to wait for room instead),
   * `ClosedError` after `shutdown()`, `TypeError` when `fn` is not a function.
   */
  background(fn: () => unknown, options?: BackgroundOptions): void {
    if (typeof fn !== 'function') throw new TypeError(v.expectation('fn', 'a function', fn));
    const name = taskName(fn, options);
    if (this.#closed) {
      throw this.#refuse(new ClosedError(`${this.#name} is shut down; refused ${name}`), name, 'closed');
    }
    if (this.#background >= this.#maxBackground) {
      throw this.#refuse(
        new QueueFullError(`${this.#name}: ${this.#background} background tasks in flight; refused ${name}`),
        name,
        'full',
      );
    }
    this.#startBackground(fn, name);
  }

  /**
   * Like {@link Supervisor.background}, but waits (FIFO) for room when `maxBackground` tasks are
   * in flight. Resolves once the task is accepted — not when it finishes. Rejects with
   * `QueueFullError` when `maxWaiting` calls already wait, `ClosedError` after (or at) shutdown,
   * `signal.reason` when aborted (the task then never runs), `InvalidInputError` for a bad
   * argument; never throws.
   */
  backgroundAsync(fn: () => unknown, options?: BackgroundAsyncOptions): Promise<void> {
    if (typeof fn !== 'function') return Promise.reject(v.invalidInput('fn', 'a function', fn));
    if (options !== undefined) {
      const invalid =
        v.invalidCallOptions(options) ??
        (options.name !== undefined && typeof options.name !== 'string'
          ? v.invalidInput('name', 'a string or undefined', options.name)
          : undefined);
      if (invalid !== undefined) return Promise.reject(invalid);
    }
    const name = taskName(fn, options);
    const signal = options?.signal;
    if (signal?.aborted === true) {
      this.#aborted++;
      return Promise.reject(signal.reason as Error);
    }
    if (this.#closed) {
      return Promise.reject(
        this.#refuse(new ClosedError(`${this.#name} is shut down; refused ${name}`), name, 'closed'),
      );
    }
    if (this.#background < this.#maxBackground && this.#waiters.size === 0) {
      this.#startBackground(fn, name);
      return RESOLVED;
    }
    if (this.#waiters.size >= this.#maxWaiting) {
      return Promise.reject(
        this.#refuse(
          new QueueFullError(
            `${this.#name}: ${this.#waiters.size} background tasks waiting; refused ${name}`,
          ),
          name,
          'full',
        ),
      );
    }
    return new Promise<void>((resolve, reject) => {
      const waiter = new Waiter(fn, name, resolve, reject, signal, captureContext());
      if (signal !== undefined) {
        waiter.listener = linkSignal(signal, () => {
          if (waiter.dead) return;
          waiter.dead = true;
          this.#aborted++;
          this.#waiters.markDead();
          reject(signal.reason as Error);
        });
      }
      this.#waiters.push(waiter, undefined, 0);
    });
  }

  /**
   * Starts a long-running task and keeps it running per `restart` (default `'permanent'`):
   * `fn(signal)` is started again after it ends (`'permanent'`), after it fails
   * (`'transient'`), or never (`'temporary'`), each restart after an exponential backoff with
   * jitter. More than `maxRestarts` restarts within `withinMs` (all spawned tasks together) and
   * the supervisor gives up (see the class). `signal` aborts on `stop()`, shutdown and give-up.
   * Throws `ClosedError` after shutdown, `TypeError` / `RangeError` for bad arguments.
   */
  spawn(name: string, fn: (signal: AbortSignal) => unknown, options: SpawnOptions = {}): TaskHandle {
    v.string('name', name);
    v.isFunction('fn', fn);
    v.options('options', options);
    const policy = v.oneOf('restart', orDefault<unknown>(options.restart, 'permanent'), POLICIES);
    if (this.#closed)
      throw this.#refuse(new ClosedError(`${this.#name} is shut down; refused ${name}`), name, 'closed');
    const task = new Task(name, fn, policy, captureContext());
    this.#tasks.add(task);
    this.#startTask(task);
    return new TaskHandle(this, task);
  }

  /**
   * Runs `fn(signal)` every `intervalMs` (a number of ms or `'5m'`-style; delays beyond
   * 2^31−1 ms are honoured), first one interval from now. A run never overlaps the previous
   * one (`overlap`), a failing run is reported and the schedule goes on. Stops at `stop()` or
   * shutdown, which abort `signal`. The timer is unref'd unless `ref: true`. Throws
   * `ClosedError` after shutdown, `TypeError` / `RangeError` for bad arguments.
   */
  every(
    name: string,
    intervalMs: number | string,
    fn: (signal: AbortSignal) => unknown,
    options: EveryOptions = {},
  ): JobHandle {
    v.string('name', name);
    const interval = v.positiveDuration('intervalMs', intervalMs);
    v.isFunction('fn', fn);
    v.options('options', options);
    const overlap = v.oneOf('overlap', orDefault<unknown>(options.overlap, 'skip'), ['skip', 'queue']);
    const ref = v.boolean('ref', orDefault<unknown>(options.ref, false));
    if (this.#closed)
      throw this.#refuse(new ClosedError(`${this.#name} is shut down; refused ${name}`), name, 'closed');
    const job = new Job(name, interval, fn, overlap === 'queue', ref, captureContext());
    this.#jobs.add(job);
    this.#armJob(job);
    return new JobHandle(this, job);
  }

  /**
   * Stops intake (later `background`, `spawn`, `every`, `child` throw `ClosedError`, and
   * `backgroundAsync` rejects with it, waiting calls included), aborts the signal of every
   * spawned and periodic run, cancels pending restarts, shuts every child down (each child's
   * shutdown completes before this one's) and waits for in-flight work — until `deadlineMs`.
   * Resolves with what was still unfinished; never rejects (bad options excepted), never
   * resolves later than the deadline, even when a task ignores its signal. Idempotent: later
   * calls return the first call's promise. The deadline timer is ref'd: a process waits for it.
   */
  shutdown(options?: ShutdownOptions): Promise<ShutdownReport> {
    if (this.#shutdown !== undefined) return this.#shutdown.promise;
    let deadlineMs = 10_000;
    if (options !== undefined) {
      const invalid =
        v.invalidCallOptions(options) ??
        v.checkInput(() => {
          deadlineMs = v.nonNegativeNumber('deadlineMs', orDefault(options.deadlineMs, 10_000), true);
        });
      if (invalid !== undefined) return Promise.reject(invalid);
    }
    return this.#beginShutdown(deadlineMs);
  }

  /** Same as `shutdown()` with the default deadline: `await using sup = new Supervisor()`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.shutdown();
  }

  #refuse(error: Error, name: string, reason: 'closed' | 'full'): Error {
    this.#rejected++;
    if (channel.reject.hasSubscribers)
      channel.reject.publish({ supervisor: this, name: this.#name, task: name, reason });
    return error;
  }

  #now(): number {
    try {
      return (this.#lastNow = this.#clock.now());
    } catch (error) {
      this.#callbackFailures++;
      reportError(channel.error, error, this, `${this.#name}: clock.now`);
      return this.#lastNow;
    }
  }

  #link(run: Run): void {
    const head = this.#head;
    run.next = head;
    if (head !== undefined) head.prev = run;
    this.#head = run;
    this.#inFlight++;
  }

  #unlink(run: Run): void {
    const { prev, next } = run;
    if (prev === undefined) this.#head = next;
    else prev.next = next;
    if (next !== undefined) next.prev = prev;
    run.prev = run.next = undefined;
    this.#inFlight--;
  }

  /** A failure (of user code, or a give-up): counted, published, handed to `onError`. Never throws. */
  #failed(error: unknown, name: string, kind: TaskKind | 'supervisor'): void {
    if (kind !== 'supervisor') this.#failures++;
    this.#lastError = error;
    if (channel.error.hasSubscribers) {
      channel.error.publish({
        error,
        source: this,
        where: `${this.#name}: ${kind} ${name}`,
        name,
        kind,
        supervisor: this.#name,
      });
    }
    const onError = this.#onError;
    if (onError === undefined) return;
    try {
      const out = onError(error, { name, kind, supervisor: this.#name });
      watchResult(out, channel.error, this, `${this.#name}: onError`, this.#onErrorRejected);
    } catch (thrown) {
      this.#callbackFailures++;
      reportError(channel.error, thrown, this, `${this.#name}: onError`);
    }
  }

  readonly #onErrorRejected = (): void => {
    this.#callbackFailures++;
  };

  // ── background ────────────────────────────────────────────────────────────────────────

  #startBackground(fn: () => unknown, name: string): void {
    this.#background++;
    const run = new Run(name, 'background', this.#now());
    this.#link(run);
    void this.#runBackground(run, fn);
  }

  /** Called synchronously by the submitter: the `await` keeps its async context. Never rejects. */
  async #runBackground(run: Run, fn: () => unknown): Promise<void> {
    await OPEN;
    try {
      await fn();
      this.#completed++;
    } catch (error) {
      this.#failed(error, run.name, 'background');
    }
    this.#unlink(run);
    this.#background--;
    if (this.#waiters.size > 0) this.#admit();
    if (this.#shutdown !== undefined) this.#settled();
  }

  /** Lets waiting `backgroundAsync` calls in, FIFO, while there is room. */
  #admit(): void {
    while (this.#background < this.#maxBackground && this.#waiters.size > 0 && !this.#closed) {
      const waiter = this.#waiters.shift() as Waiter;
      waiter.dead = true;
      unlinkSignal(waiter.signal, waiter.listener);
      waiter.context(() => this.#startBackground(waiter.fn, waiter.name));
      waiter.resolve();
    }
  }

  // ── spawn ─────────────────────────────────────────────────────────────────────────────

  #startTask(task: Task): void {
    task.state = 'running';
    task.resume = false;
    const controller = new AbortController();
    task.controller = controller;
    const run = new Run(task.name, 'spawn', this.#now());
    task.run = run;
    this.#link(run);
    task.context(() => void this.#runTask(task, run, controller.signal));
  }

  async #runTask(task: Task, run: Run, signal: AbortSignal): Promise<void> {
    await OPEN;
    let failed = false;
    let error: unknown;
    try {
      await task.fn(signal);
    } catch (thrown) {
      failed = true;
      error = thrown;
    }
    this.#unlink(run);
    task.run = undefined;
    // A run that rejects with the reason it was aborted with did what it was asked: no failure.
    if (failed && !(signal.aborted && error === signal.reason)) this.#failed(error, task.name, 'spawn');
    else failed = false;
    this.#taskEnded(task, failed, error);
    if (this.#shutdown !== undefined) this.#settled();
  }

  #taskEnded(task: Task, failed: boolean, error: unknown): void {
    if (task.resume) {
      task.resume = false;
      if (task.state === 'restarting' && !this.#closed) this.#startTask(task);
      else this.#forget(task);
      return;
    }
    if (task.state === 'stopped' || (task.state === 'gave-up' && task.final)) {
      this.#forget(task);
      return;
    }
    if (task.state === 'gave-up') {
      notify(task);
      return;
    }
    const restart = task.policy === 'permanent' || (task.policy === 'transient' && failed);
    if (!restart || this.#closed) {
      if (task.state === 'running') task.state = 'done';
      this.#forget(task);
      return;
    }
    this.#restart(task, failed ? error : undefined, failed);
  }

  #forget(task: Task): void {
    this.#tasks.delete(task);
    notify(task);
  }

  /** Counts a restart in the window; returns how many the window holds now. */
  #recordRestart(now: number): number {
    const h = this.#history;
    let head = this.#historyHead;
    const horizon = now - this.#withinMs;
    while (head < h.length && (h[head] as number) <= horizon) head++;
    if (head > 32 && head * 2 > h.length) {
      h.splice(0, head);
      head = 0;
    }
    h.push(now);
    // With no limit, only the count matters (for the backoff exponent): keep it bounded.
    if (this.#maxRestarts === Infinity && h.length - head > 64) head++;
    this.#historyHead = head;
    return h.length - head;
  }

  #resetHistory(): void {
    this.#history = [];
    this.#historyHead = 0;
  }

  /** Delay before the restart that makes `n` restarts in the window. */
  #backoff(n: number): number {
    const grown = this.#initialMs * this.#factor ** Math.max(0, n - 1);
    // 0 × Infinity is NaN (a zero base, a huge factor): a delay that never fires would hang.
    const delay = grown === grown ? Math.min(this.#maxMs, grown) : 0;
    if (!this.#jitter) return delay;
    let u: number;
    try {
      u = this.#random();
    } catch (thrown) {
      this.#callbackFailures++;
      reportError(channel.error, thrown, this, `${this.#name}: backoff.random`);
      u = 0.5;
    }
    if (!(u >= 0 && u < 1)) u = 0.5;
    return delay / 2 + (u * delay) / 2;
  }

  #restart(task: Task, cause: unknown, failed: boolean): void {
    const count = this.#recordRestart(this.#now());
    if (count > this.#maxRestarts) {
      this.#giveUp(
        failed ? cause : new Error(`${task.name} ended and its policy restarts it`),
        `${task.name}`,
      );
      return;
    }
    task.restarts++;
    this.#restarts++;
    const delay = this.#backoff(count);
    task.state = 'restarting';
    if (channel.restart.hasSubscribers) {
      channel.restart.publish({
        supervisor: this,
        name: this.#name,
        task: task.name,
        kind: 'spawn',
        delay,
        count,
        restarts: task.restarts,
      });
    }
    // Referenced: a restart that is due is pending work, like a retry (the process must not
    // exit in the backoff of a crashed task that is the only thing keeping it alive).
    task.timer = schedule(
      () => {
        task.timer = undefined;
        if (task.state === 'restarting' && !this.#closed) this.#startTask(task);
      },
      delay,
      true,
    );
  }

  #giveUp(cause: unknown, what: string): void {
    this.#givenUp++;
    const error = new RestartIntensityError(
      `${this.#name}: more than ${this.#maxRestarts} restarts within ${this.#withinMs} ms (last: ${what}); gave up`,
      { cause },
    );
    if (channel.giveup.hasSubscribers) channel.giveup.publish({ supervisor: this, name: this.#name, error });
    const parent = this.#parent;
    const escalate = parent !== undefined && !parent.#closed;
    this.#terminate(error, !escalate);
    this.#failed(error, this.#name, 'supervisor');
    if (escalate) parent.#childGaveUp(this, error);
  }

  /** Aborts every spawned task here and below; `final`: no restart will come. */
  #terminate(reason: unknown, final: boolean): void {
    this.#resetHistory();
    this.#pendingRestart?.cancel();
    this.#pendingRestart = undefined;
    for (const task of Array.from(this.#tasks)) {
      if (task.state === 'running' || task.state === 'restarting') {
        task.state = 'gave-up';
        task.resume = false;
        task.timer?.cancel();
        task.timer = undefined;
        task.controller?.abort(reason);
      }
      if (task.state === 'gave-up') {
        task.final = final;
        if (final && task.run === undefined) this.#forget(task);
      }
    }
    for (const child of Array.from(this.#children)) child.#terminate(reason, final);
  }

  /** A child gave up: one restart of ours, or we give up too. */
  #childGaveUp(child: Supervisor, error: RestartIntensityError): void {
    const count = this.#recordRestart(this.#now());
    if (count > this.#maxRestarts) {
      this.#giveUp(error, child.#name);
      return;
    }
    this.#restarts++;
    const delay = this.#backoff(count);
    if (channel.restart.hasSubscribers) {
      channel.restart.publish({
        supervisor: this,
        name: this.#name,
        task: child.#name,
        kind: 'supervisor',
        delay,
        count,
        restarts: this.#restarts,
      });
    }
    child.#pendingRestart = schedule(
      () => {
        child.#pendingRestart = undefined;
        if (!child.#closed) child.#restartAll();
      },
      delay,
      true,
    );
  }

  /** Restarts every task here and below that a give-up terminated (temporary ones excepted). */
  #restartAll(): void {
    this.#resetHistory();
    for (const task of Array.from(this.#tasks)) {
      if (task.state !== 'gave-up') continue;
      if (task.policy === 'temporary') {
        task.state = 'stopped';
        if (task.run === undefined) this.#forget(task);
        continue;
      }
      task.restarts++;
      if (task.run !== undefined) {
        task.state = 'restarting';
        task.resume = true;
      } else {
        this.#startTask(task);
      }
    }
    for (const child of Array.from(this.#children)) child.#restartAll();
  }

  #stopTask(task: Task, reason: unknown): Promise<void> {
    if (task.state !== 'stopped' && task.state !== 'done') {
      task.state = 'stopped';
      task.resume = false;
      task.timer?.cancel();
      task.timer = undefined;
      if (task.run !== undefined) task.controller?.abort(reason);
      else this.#forget(task);
    }
    if (task.run === undefined) return RESOLVED;
    return new Promise<void>((resolve) => (task.waiters ??= []).push(resolve));
  }

  // ── every ─────────────────────────────────────────────────────────────────────────────

  #armJob(job: Job): void {
    job.timer = schedule(() => this.#tick(job), job.intervalMs, job.ref);
  }

  #tick(job: Job): void {
    job.timer = undefined;
    if (job.stopped) return;
    this.#armJob(job);
    if (job.run === undefined) {
      this.#startJob(job);
    } else if (job.queue && !job.pending) {
      job.pending = true;
    } else {
      job.skipped++;
      this.#skipped++;
    }
  }

  #startJob(job: Job): void {
    const run = new Run(job.name, 'every', this.#now());
    job.run = run;
    this.#link(run);
    job.context(() => void this.#runJob(job, run));
  }

  async #runJob(job: Job, run: Run): Promise<void> {
    await OPEN;
    try {
      await job.fn(job.controller.signal);
    } catch (error) {
      const signal = job.controller.signal;
      if (!(signal.aborted && error === signal.reason)) {
        job.failures++;
        this.#failed(error, job.name, 'every');
      }
    }
    this.#unlink(run);
    job.run = undefined;
    job.runs++;
    if (job.stopped) {
      notify(job);
    } else if (job.pending) {
      job.pending = false;
      this.#startJob(job);
    }
    if (this.#shutdown !== undefined) this.#settled();
  }

  #stopJob(job: Job, reason: unknown): Promise<void> {
    if (!job.stopped) {
      job.stopped = true;
      job.pending = false;
      job.timer?.cancel();
      job.timer = undefined;
      this.#jobs.delete(job);
      job.controller.abort(reason);
    }
    if (job.run === undefined) return RESOLVED;
    return new Promise<void>((resolve) => (job.waiters ??= []).push(resolve));
  }

  // ── shutdown ──────────────────────────────────────────────────────────────────────────

  #beginShutdown(deadlineMs: number): Promise<ShutdownReport> {
    if (this.#shutdown !== undefined) return this.#shutdown.promise;
    let resolve!: (report: ShutdownReport) => void;
    const promise = new Promise<ShutdownReport>((r) => (resolve = r));
    const state: ShutdownState = {
      promise,
      resolve,
      startedAt: this.#now(),
      timer: undefined,
      concluding: false,
    };
    this.#shutdown = state;
    this.#closed = true;
    const reason = new ClosedError(`${this.#name} is shutting down`);
    this.#pendingRestart?.cancel();
    this.#pendingRestart = undefined;
    this.#waiters.drain((waiter) => {
      waiter.dead = true;
      unlinkSignal(waiter.signal, waiter.listener);
      this.#rejected++;
      waiter.reject(new ClosedError(`${this.#name} shut down while ${waiter.name} waited for room`));
    });
    for (const job of Array.from(this.#jobs)) void this.#stopJob(job, reason);
    for (const task of Array.from(this.#tasks)) void this.#stopTask(task, reason);
    // Ref'd: a process waits for the report rather than exit with work unaccounted for.
    state.timer = schedule(() => this.#conclude(true), deadlineMs, true);
    for (const child of Array.from(this.#children)) void child.#beginShutdown(deadlineMs);
    this.#settled();
    return promise;
  }

  /** During shutdown: concludes once nothing is in flight here or in a child. */
  #settled(): void {
    const state = this.#shutdown;
    if (state === undefined) return;
    if (state.concluding) this.#detachIfIdle();
    else if (this.#head === undefined && this.#children.size === 0) this.#conclude(false);
  }

  /**
   * A concluded supervisor stays one of its parent's children while runs that ignored their
   * signal are still going (the parent's shutdown waits for them, or reports them); it leaves
   * once they have all ended.
   */
  #detachIfIdle(): void {
    const parent = this.#parent;
    if (parent === undefined || this.#head !== undefined || this.#children.size > 0) return;
    if (!parent.#children.delete(this)) return;
    parent.#settled();
  }

  /** Runs still going here and in lingering children, as a shutdown report lists them. */
  #unfinished(now: number): UnfinishedTask[] {
    const out: UnfinishedTask[] = [];
    for (const child of this.#children) out.push(...child.#unfinished(now));
    const own: UnfinishedTask[] = [];
    for (let run = this.#head; run !== undefined; run = run.next) {
      own.push({ name: run.name, kind: run.kind, ageMs: now - run.startedAt, supervisor: this.#name });
    }
    own.reverse();
    out.push(...own);
    return out;
  }

  #conclude(timedOut: boolean): void {
    const state = this.#shutdown as ShutdownState;
    if (state.concluding) return;
    state.concluding = true;
    state.timer?.cancel();
    state.timer = undefined;
    // Children first: each one's shutdown resolves before ours.
    for (const child of Array.from(this.#children)) {
      const childState = child.#shutdown;
      if (childState === undefined) void child.#beginShutdown(0);
      if (childState?.concluding !== true) child.#conclude(timedOut);
    }
    // Children still here have runs that ignored their signal (also one shut down earlier on
    // its own): this report lists them, with ours.
    const now = this.#now();
    const report: ShutdownReport = {
      unfinished: this.#unfinished(now),
      timedOut,
      durationMs: now - state.startedAt,
    };
    state.resolve(report);
    this.#detachIfIdle();
  }
}

function notify(record: { waiters: (() => void)[] | undefined }): void {
  const waiters = record.waiters;
  if (waiters === undefined) return;
  record.waiters = undefined;
  for (const resolve of waiters) resolve();
}

function taskName(fn: () => unknown, options: BackgroundOptions | undefined): string {
  const name = options?.name;
  if (name !== undefined) {
    if (typeof name !== 'string') throw new TypeError(v.expectation('name', 'a string or undefined', name));
    return name;
  }
  return fn.name === '' ? 'background' : fn.name;
}

/** An option's value, or its default when omitted (`undefined`; a `null` stays, to be refused). */
function orDefault<T>(value: T | undefined, fallback: T): T {
  return value === undefined ? fallback : value;
}

function stripUndefined(options: SupervisorOptions): SupervisorOptions {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(options)) if (value !== undefined) out[key] = value;
  return out;
}
