import { ClosedError, InvalidInputError, NoTargetError, TargetLoadError } from '../errors.js';
import { channels } from '../internal/channels.js';
import { monotonicClock, readClock, type Clock } from '../internal/clock.js';
import { Deque } from '../internal/deque.js';
import { IndexedHeap } from '../internal/heap.js';
import { reportError } from '../internal/report.js';
import { linkSignal, unlinkSignal } from '../internal/signal.js';
import * as v from '../internal/validate.js';
import { ewmaCost, observeRtt, TargetNode } from './target.js';

/**
 * How a {@link Router} chooses a target.
 *
 * - `'least-loaded'`: the target with the lowest load, from an indexed binary heap (O(log n)
 *   per pick and per load change, never a stale entry). Ties go to the target picked longest
 *   ago, so equal targets take turns.
 * - `'p2c'`: power of two choices — the less loaded of two targets drawn at random (Envoy's
 *   least-request default). O(1); close to least-loaded without herding on one target.
 * - `'round-robin'`: every target in turn, ignoring load. O(1).
 * - `'peak-ewma'`: power of two choices on `latency estimate × (load + 1)`, the estimate being a
 *   peak-sensitive, time-decaying average of the latencies permits measured (tower, Finagle).
 *   O(1); the estimate changes with time, so it is compared at pick time, not kept in a heap.
 */
export type RouteStrategy = 'least-loaded' | 'p2c' | 'round-robin' | 'peak-ewma';

const STRATEGIES: readonly RouteStrategy[] = ['least-loaded', 'p2c', 'round-robin', 'peak-ewma'];

/** Options of {@link Router}. */
export interface RouterOptions<T> {
  /**
   * How to choose a target; see {@link RouteStrategy}.
   * @default 'least-loaded'
   */
  readonly strategy?: RouteStrategy | undefined;
  /**
   * The load of a target (lower is preferred), read when the target is added and on every
   * `update(target)` — call it whenever the load changes. Any number but `NaN`; a throw or a
   * `NaN` leaves the router unchanged and is reported to the caller of `add` / `update`
   * (`TargetLoadError`, `InvalidInputError`).
   * @default the router's own count of unreleased permits per target (kept current by
   * `acquire` and the permits' release: nothing to call)
   */
  readonly load?: ((target: T) => number) | undefined;
  /**
   * How many `acquire()` calls may wait while the router has no target at all; they are served
   * FIFO as soon as a target is added. Beyond it (and with `0`) `acquire()` rejects at once
   * with `NoTargetError`. `Infinity` must be spelled explicitly.
   * @default 10_000
   */
  readonly maxWaiting?: number | undefined;
  /**
   * `peak-ewma`: how fast the latency estimate forgets, in ms (the time constant of its
   * exponential decay). Ignored by the other strategies.
   * @default 10_000
   */
  readonly decayMs?: number | undefined;
  /**
   * Time source for `peak-ewma` latencies, in ms. Read once per `acquire` and per release
   * (and per pick with `peak-ewma`); the other strategies never read it.
   * @default monotonic `performance.now()`
   */
  readonly clock?: Clock | undefined;
  /**
   * Random numbers in [0, 1) for `p2c` and `peak-ewma` (inject a seeded one for reproducible
   * runs). A throw is reported on `sluice:route:error` and `Math.random` is used instead.
   * @default Math.random
   */
  readonly random?: (() => number) | undefined;
  /**
   * Names this router in its errors' messages, its `stats` and its channel payloads.
   * @default 'Router'
   */
  readonly name?: string | undefined;
}

/** Per-call options of {@link Router.acquire}. */
export interface AcquireOptions {
  /**
   * Aborting stops waiting for a target: the call rejects with `signal.reason` and leaves the
   * wait queue in O(1). An already-aborted signal rejects at once, even when a target is free.
   */
  readonly signal?: AbortSignal | undefined;
}

/** Counters and gauges of a {@link Router}; reading them is free. */
export interface RouterStats {
  /** The `name` option. */
  readonly name: string;
  /** The `strategy` option. */
  readonly strategy: RouteStrategy;
  /** Targets now. */
  readonly targets: number;
  /** Unreleased permits now, including those of targets removed since. */
  readonly inFlight: number;
  /** `acquire()` calls waiting for a target now. */
  readonly waiting: number;
  /** Targets chosen, by `pick`, `tryAcquire` and `acquire`. */
  readonly picks: number;
  /** Permits handed out. */
  readonly acquired: number;
  /** Permits released. */
  readonly released: number;
  /** `acquire()` calls refused: no target and no room to wait, bad options, or closed. */
  readonly rejected: number;
  /** `acquire()` calls whose signal aborted (while waiting, or on arrival). */
  readonly aborted: number;
  /** `load(target)` calls that threw or returned `NaN`. */
  readonly loadErrors: number;
}

/** A queued `acquire()`: settled once, then it lets go of its resolvers and signal. */
class Waiter<T> {
  done = false;
  onAbort: (() => void) | undefined = undefined;
  constructor(
    public resolve: ((permit: RoutePermit<T>) => void) | undefined,
    public reject: ((reason: unknown) => void) | undefined,
    public signal: AbortSignal | undefined,
  ) {}
}

const isDone = (w: { readonly done: boolean }): boolean => w.done;
const channel = channels('route', ['pick', 'error']);

let releasePermit: <T>(router: Router<T>, node: TargetNode<T>, acquiredAt: number) => void;

/**
 * A routed unit of work from {@link Router.acquire}: counts one in flight on `target` until
 * released. Releasing is O(1) for a target removed meanwhile, O(log n) otherwise, and
 * idempotent, so `using permit = await router.acquire()` and an explicit `release()` in a
 * `finally` are both safe. With `peak-ewma`, the time between acquire and release is the
 * latency sample.
 *
 * @example
 * ```ts
 * using permit = await router.acquire({ signal });
 * await permit.target.query(sql); // released (and timed) when the block exits
 * ```
 */
export class RoutePermit<T> implements Disposable {
  #router: Router<T> | undefined;
  readonly #node: TargetNode<T>;
  readonly #acquiredAt: number;

  /** @internal */
  constructor(router: Router<T>, node: TargetNode<T>, acquiredAt: number) {
    this.#router = router;
    this.#node = node;
    this.#acquiredAt = acquiredAt;
  }

  /** The target this permit routes to. */
  get target(): T {
    return this.#node.target;
  }

  /** Whether this permit has been released. */
  get released(): boolean {
    return this.#router === undefined;
  }

  /** Uncounts the permit (and, with `peak-ewma`, records its latency). Only the first call acts. */
  release(): void {
    const router = this.#router;
    if (router === undefined) return;
    this.#router = undefined;
    releasePermit(router, this.#node, this.#acquiredAt);
  }

  /** Same as {@link RoutePermit.release}: `using permit = await router.acquire()`. */
  [Symbol.dispose](): void {
    this.release();
  }
}

/**
 * Routes work to one of a set of targets (pools, connections, replicas): least-loaded through
 * an indexed heap, power of two choices, round robin, or peak-EWMA latency.
 *
 * - **Load**: by default the router's own count of unreleased permits per target, kept current
 *   by `acquire` and release; with a `load` callback, call `update(target)` when it changes.
 * - **Ties** are broken deterministically and fairly: the target picked longest ago wins, so
 *   equal targets take turns instead of the first one taking everything.
 * - **No target**: `pick()` and `tryAcquire()` fail at once (`NoTargetError` / `undefined`);
 *   `acquire()` waits, FIFO and cancellable with `signal`, at most `maxWaiting` calls, until a
 *   target is added.
 * - **Removal** with permits outstanding is safe: they stay counted in `stats.inFlight` until
 *   released, and their release is O(1) and touches nothing else.
 * - **Shutdown**: `close()` rejects waiting `acquire()` calls with `ClosedError`, refuses new
 *   picks, and resolves once every permit has been released.
 *
 * @example
 * ```ts
 * import { Router } from 'sluice/route';
 * const router = new Router(pools); // least-loaded by in-flight permits
 * using permit = await router.acquire({ signal });
 * await permit.target.run(task);
 * ```
 */
export class Router<T> implements AsyncDisposable {
  readonly #strategy: RouteStrategy;
  readonly #load: ((target: T) => number) | undefined;
  readonly #maxWaiting: number;
  readonly #decayMs: number;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #name: string;
  readonly #byTarget = new Map<T, TargetNode<T>>();
  /** Every current target, in no particular order: random and round-robin access, O(1) removal. */
  readonly #list: TargetNode<T>[] = [];
  /** `least-loaded` only: lowest load on top, then the one picked longest ago. */
  readonly #heap: IndexedHeap<TargetNode<T>> | undefined;
  readonly #waiters = new Deque<Waiter<T>, undefined>(isDone, 4);
  #seq = 0;
  #cursor = 0;
  #lastNow = 0;
  #closed = false;
  #closing: Promise<void> | undefined;
  #onIdle: (() => void) | undefined;
  #draining = false;
  #inFlight = 0;
  #waiting = 0;
  #picks = 0;
  #acquired = 0;
  #released = 0;
  #rejected = 0;
  #aborted = 0;
  #loadErrors = 0;

  /**
   * @param targets the initial targets (copied; each must be distinct).
   * @throws TypeError / RangeError for a bad option; what {@link Router.add} throws for a bad
   * target.
   */
  constructor(targets: Iterable<T> = [], options?: RouterOptions<T>) {
    v.options('options', options);
    const o: RouterOptions<T> = options ?? {};
    this.#strategy = v.oneOf('strategy', o.strategy ?? 'least-loaded', STRATEGIES);
    v.optionalFunction('load', o.load);
    this.#load = o.load;
    this.#maxWaiting = v.nonNegativeInteger(
      'maxWaiting',
      o.maxWaiting === undefined ? 10_000 : o.maxWaiting,
      true,
    );
    this.#decayMs = v.positiveNumber('decayMs', o.decayMs === undefined ? 10_000 : o.decayMs);
    this.#clock = o.clock === undefined ? monotonicClock : v.clock('clock', o.clock);
    v.optionalFunction('random', o.random);
    this.#random = o.random ?? Math.random;
    this.#name = o.name === undefined ? 'Router' : v.string('name', o.name);
    this.#heap =
      this.#strategy === 'least-loaded'
        ? new IndexedHeap<TargetNode<T>>(
            (a, b) => a.load < b.load || (a.load === b.load && a.lastPick < b.lastPick),
          )
        : undefined;
    if (this.#strategy === 'peak-ewma') this.#now();
    if (
      targets === null ||
      typeof (targets as { [Symbol.iterator]?: unknown })[Symbol.iterator] !== 'function'
    ) {
      throw new TypeError(v.expectation('targets', 'an iterable', targets));
    }
    for (const target of Array.from(targets)) this.add(target);
  }

  static {
    releasePermit = (router, node, acquiredAt) => router.#release(node, acquiredAt);
  }

  /** The `name` option. */
  get name(): string {
    return this.#name;
  }

  /** The `strategy` option. */
  get strategy(): RouteStrategy {
    return this.#strategy;
  }

  /** How many targets the router has. */
  get size(): number {
    return this.#list.length;
  }

  /** Whether `close()` has been called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** A snapshot of the counters and gauges; cheap, synchronous. */
  get stats(): RouterStats {
    return {
      name: this.#name,
      strategy: this.#strategy,
      targets: this.#list.length,
      inFlight: this.#inFlight,
      waiting: this.#waiting,
      picks: this.#picks,
      acquired: this.#acquired,
      released: this.#released,
      rejected: this.#rejected,
      aborted: this.#aborted,
      loadErrors: this.#loadErrors,
    };
  }

  /** Whether `target` is one of the router's targets. */
  has(target: T): boolean {
    return this.#byTarget.has(target);
  }

  /** The current targets, as a new array (no particular order). O(n). */
  targets(): T[] {
    return this.#list.map((node) => node.target);
  }

  /** Unreleased permits of `target` (0 for an unknown target). */
  inFlight(target: T): number {
    return this.#byTarget.get(target)?.inFlight ?? 0;
  }

  /**
   * The load the router currently orders `target` by — `load(target)` as last read, or its
   * in-flight count — or `undefined` for an unknown target.
   */
  loadOf(target: T): number | undefined {
    return this.#byTarget.get(target)?.load;
  }

  /**
   * Adds a target (any value: objects and primitives are keyed by identity / value, as in a
   * `Map`) and serves waiting `acquire()` calls. O(log n).
   * @throws InvalidInputError when `target` was already added (or `load(target)` returned
   * `NaN`); TargetLoadError when `load(target)` threw. The router is unchanged then.
   */
  add(target: T): void {
    if (this.#byTarget.has(target)) throw this.#duplicate(target);
    const load = this.#load === undefined ? 0 : this.#readLoad(target);
    // `load` is user code: it may have added the target itself.
    if (this.#byTarget.has(target)) throw this.#duplicate(target);
    const node = new TargetNode(target, load);
    node.index = this.#list.length;
    this.#list.push(node);
    this.#byTarget.set(target, node);
    this.#heap?.push(node);
    if (this.#waiting > 0) this.#serveWaiters();
  }

  /**
   * Removes a target: it is never picked again. Its outstanding permits stay valid and counted
   * until released. O(1), O(log n) for `least-loaded`. Returns whether it was a target.
   */
  remove(target: T): boolean {
    const node = this.#byTarget.get(target);
    if (node === undefined) return false;
    this.#byTarget.delete(target);
    const list = this.#list;
    const last = list.pop() as TargetNode<T>;
    if (last !== node) {
      list[node.index] = last;
      last.index = node.index;
    }
    node.index = -1;
    this.#heap?.remove(node);
    return true;
  }

  /**
   * Re-reads `load(target)` after the target's load changed, and re-orders it. O(log n).
   * Without a `load` callback there is nothing to re-read (the router counts permits itself)
   * and this only reports whether `target` is known. Returns `false` for an unknown target.
   * @throws TargetLoadError when `load(target)` threw, InvalidInputError when it returned
   * `NaN` or a non-number; the target keeps its previous load.
   */
  update(target: T): boolean {
    const node = this.#byTarget.get(target);
    if (node === undefined) return false;
    if (this.#load === undefined) return true;
    const load = this.#readLoad(target);
    node.load = load;
    // A no-op if `load` re-entered and removed the target.
    this.#heap?.update(node);
    return true;
  }

  /**
   * Chooses a target by the strategy, without counting anything in flight (for a load you
   * track yourself through `load` and `update`). O(log n) for `least-loaded`, O(1) otherwise.
   * @throws NoTargetError when there is no target; ClosedError after `close()`.
   */
  pick(): T {
    if (this.#closed) throw new ClosedError(`${this.#name} is closed`);
    if (this.#list.length === 0) throw new NoTargetError(`${this.#name} has no targets`);
    const node = this.#choose();
    this.#picked(node);
    this.#heap?.update(node);
    return node.target;
  }

  /**
   * Picks a target and counts one in flight on it, synchronously: the permit, or `undefined`
   * when there is no target. Same choice and cost as {@link Router.pick}.
   * @throws ClosedError after `close()`.
   */
  tryAcquire(): RoutePermit<T> | undefined {
    if (this.#closed) throw new ClosedError(`${this.#name} is closed`);
    if (this.#list.length === 0) return undefined;
    return this.#grant(this.#choose());
  }

  /**
   * Picks a target and counts one in flight on it until the returned permit is released.
   * When there is no target it waits (FIFO, at most `maxWaiting` calls) for one to be added.
   * Rejects — never throws — with `signal.reason`, `NoTargetError` (no target, no room to
   * wait), `ClosedError`, or `InvalidInputError` for bad options.
   */
  acquire(options?: AcquireOptions): Promise<RoutePermit<T>> {
    const invalid = options === undefined ? undefined : v.invalidCallOptions(options);
    if (invalid !== undefined) {
      this.#rejected++;
      return Promise.reject(invalid);
    }
    const signal = options?.signal;
    if (signal?.aborted === true) {
      this.#aborted++;
      return Promise.reject(signal.reason as Error);
    }
    if (this.#closed) {
      this.#rejected++;
      return Promise.reject(new ClosedError(`${this.#name} is closed`));
    }
    if (this.#list.length > 0) return Promise.resolve(this.#grant(this.#choose()));
    if (this.#waiting >= this.#maxWaiting) {
      this.#rejected++;
      return Promise.reject(
        new NoTargetError(`${this.#name} has no targets (maxWaiting: ${this.#maxWaiting} already waiting)`),
      );
    }
    return new Promise<RoutePermit<T>>((resolve, reject) => {
      const waiter = new Waiter<T>(resolve, reject, signal);
      if (signal !== undefined)
        waiter.onAbort = linkSignal(signal, () => this.#abandon(waiter, signal.reason));
      this.#waiters.push(waiter, undefined, 0);
      this.#waiting++;
    });
  }

  /**
   * Stops intake: waiting `acquire()` calls reject with `ClosedError`, and so do later
   * `acquire` / `pick` calls. Resolves once every permit has been released. Idempotent.
   */
  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    this.#closed = true;
    const error = new ClosedError(`${this.#name} closed while the call waited for a target`);
    this.#waiters.drain((waiter) => {
      const reject = waiter.reject as (reason: unknown) => void;
      this.#settle(waiter);
      this.#waiting--;
      this.#rejected++;
      reject(error);
    });
    this.#closing =
      this.#inFlight === 0 ? Promise.resolve() : new Promise<void>((resolve) => (this.#onIdle = resolve));
    return this.#closing;
  }

  /** Same as {@link Router.close}: `await using router = new Router(...)`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #duplicate(target: T): InvalidInputError {
    return new InvalidInputError(`${this.#name}: target ${v.describe(target)} was already added`);
  }

  /** `load(target)`, checked; the router is untouched when it fails. */
  #readLoad(target: T): number {
    let load: unknown;
    try {
      load = (this.#load as (target: T) => number)(target);
    } catch (error) {
      this.#loadErrors++;
      throw new TargetLoadError(`${this.#name}: load(target) threw for ${v.describe(target)}`, {
        cause: error,
      });
    }
    if (typeof load !== 'number' || Number.isNaN(load)) {
      this.#loadErrors++;
      throw v.invalidInput('load(target)', 'a number other than NaN', load);
    }
    return load;
  }

  /** The strategy's choice among at least one target; changes nothing. */
  #choose(): TargetNode<T> {
    const list = this.#list;
    const n = list.length;
    switch (this.#strategy) {
      case 'least-loaded':
        return (this.#heap as IndexedHeap<TargetNode<T>>).peek() as TargetNode<T>;
      case 'round-robin': {
        if (this.#cursor >= n) this.#cursor = 0;
        return list[this.#cursor++] as TargetNode<T>;
      }
      default: {
        if (n === 1) return list[0] as TargetNode<T>;
        const i = this.#index(n);
        let j = this.#index(n - 1);
        if (j >= i) j++;
        const a = list[i] as TargetNode<T>;
        const b = list[j] as TargetNode<T>;
        let ca: number;
        let cb: number;
        if (this.#strategy === 'p2c') {
          ca = a.load;
          cb = b.load;
        } else {
          const now = this.#now();
          ca = ewmaCost(a, now, this.#decayMs);
          cb = ewmaCost(b, now, this.#decayMs);
        }
        return ca < cb || (ca === cb && a.lastPick <= b.lastPick) ? a : b;
      }
    }
  }

  /** Accounts for a pick of `node` (the caller re-orders the heap). */
  #picked(node: TargetNode<T>): void {
    node.lastPick = ++this.#seq;
    this.#picks++;
    if (channel.pick.hasSubscribers)
      channel.pick.publish({ router: this, name: this.#name, target: node.target, strategy: this.#strategy });
  }

  /** Picks `node` and hands out a permit on it. */
  #grant(node: TargetNode<T>): RoutePermit<T> {
    this.#picked(node);
    node.inFlight++;
    this.#inFlight++;
    this.#acquired++;
    if (this.#load === undefined) node.load = node.inFlight;
    this.#heap?.update(node);
    return new RoutePermit(this, node, this.#strategy === 'peak-ewma' ? this.#now() : 0);
  }

  #release(node: TargetNode<T>, acquiredAt: number): void {
    node.inFlight--;
    this.#inFlight--;
    this.#released++;
    if (node.index >= 0) {
      if (this.#strategy === 'peak-ewma') {
        const now = this.#now();
        observeRtt(node, now - acquiredAt, now, this.#decayMs);
      }
      if (this.#load === undefined) {
        node.load = node.inFlight;
        this.#heap?.update(node);
      }
    }
    if (this.#inFlight === 0 && this.#onIdle !== undefined) {
      const resolve = this.#onIdle;
      this.#onIdle = undefined;
      resolve();
    }
  }

  /** Hands targets to waiting `acquire()` calls, FIFO; a loop, never a recursion. */
  #serveWaiters(): void {
    if (this.#draining) return;
    this.#draining = true;
    try {
      while (this.#waiting > 0 && this.#list.length > 0 && !this.#closed) {
        const waiter = this.#waiters.shift() as Waiter<T>;
        const resolve = waiter.resolve as (permit: RoutePermit<T>) => void;
        this.#settle(waiter);
        this.#waiting--;
        resolve(this.#grant(this.#choose()));
      }
    } finally {
      this.#draining = false;
    }
  }

  #abandon(waiter: Waiter<T>, reason: unknown): void {
    if (waiter.done) return;
    const reject = waiter.reject as (reason: unknown) => void;
    this.#settle(waiter);
    this.#waiters.markDead();
    this.#waiting--;
    this.#aborted++;
    reject(reason);
  }

  #settle(waiter: Waiter<T>): void {
    waiter.done = true;
    unlinkSignal(waiter.signal, waiter.onAbort);
    waiter.onAbort = undefined;
    waiter.signal = undefined;
    waiter.resolve = undefined;
    waiter.reject = undefined;
  }

  /** A random index in [0, n); a throwing or out-of-range `random` cannot break a pick. */
  #index(n: number): number {
    let r: number;
    try {
      r = this.#random();
    } catch (error) {
      reportError(channel.error, error, this, `${this.#name}: random`);
      r = Math.random();
    }
    const i = Math.floor(r * n);
    return i >= 0 ? (i < n ? i : n - 1) : 0;
  }

  /** A clock reading; a throwing or non-finite clock gives the previous one (and is reported). */
  #now(): number {
    return (this.#lastNow = readClock(this.#clock, this.#lastNow, channel.error, this, 'clock.now'));
  }
}
