import { linkSignal, unlinkSignal } from '../internal/signal.js';
import type { CacheLoader } from './options.js';

/** A caller of `getOrLoad` with a signal: the only kind that needs its own promise. */
interface Waiter<V> {
  readonly resolve: (value: V) => void;
  readonly reject: (reason: unknown) => void;
  readonly signal: AbortSignal;
  onAbort: (() => void) | undefined;
  done: boolean;
}

/**
 * One load of one key, shared by every caller that missed it meanwhile (single flight).
 *
 * Callers without a signal share one promise and pin the load: it cannot be abandoned while
 * one of them waits. Each caller with a signal gets its own promise; when its signal aborts
 * it rejects with `signal.reason` at once, and when the last unpinned caller has aborted the
 * load's own signal aborts (refcounted abort). A background refresh is pinned from the start.
 */
export class Flight<K, V> {
  readonly controller = new AbortController();
  /** Callers with a signal still waiting. */
  #active = 0;
  #pinned: boolean;
  #waiters: Set<Waiter<V>> | undefined;
  #shared: Promise<V> | undefined;
  #resolveShared: ((value: V) => void) | undefined;
  #rejectShared: ((reason: unknown) => void) | undefined;
  /** Settled, or abandoned by every caller. */
  done = false;
  /** Abandoned by every caller: its result is ignored. */
  aborted = false;
  /** The loader, from when the load is started until it runs (a microtask later). */
  loader: CacheLoader<K, V> | undefined = undefined;

  constructor(
    readonly key: K,
    readonly ttl: number | undefined,
    readonly background: boolean,
    readonly startedAt: number,
    /** Called once when the last unpinned caller aborts, after the load's signal aborted. */
    readonly onAbandon: (flight: Flight<K, V>) => void,
  ) {
    this.#pinned = background;
  }

  /** A promise for this load's outcome, for one more caller. */
  wait(signal: AbortSignal | undefined): Promise<V> {
    if (signal === undefined) {
      this.#pinned = true;
      return (this.#shared ??= new Promise<V>((resolve, reject) => {
        this.#resolveShared = resolve;
        this.#rejectShared = reject;
      }));
    }
    this.#active++;
    return new Promise<V>((resolve, reject) => {
      const waiter: Waiter<V> = { resolve, reject, signal, onAbort: undefined, done: false };
      if (signal.aborted) {
        // Its abort event has fired already (or fires before any listener could see it).
        this.#abort(waiter);
        return;
      }
      waiter.onAbort = linkSignal(signal, () => this.#abort(waiter));
      (this.#waiters ??= new Set()).add(waiter);
    });
  }

  resolve(value: V): void {
    this.#settle(true, value);
  }

  reject(error: unknown): void {
    this.#settle(false, error);
  }

  #settle(ok: boolean, outcome: unknown): void {
    if (this.done) return;
    this.done = true;
    if (ok) this.#resolveShared?.(outcome as V);
    else this.#rejectShared?.(outcome);
    const waiters = this.#waiters;
    if (waiters === undefined) return;
    this.#waiters = undefined;
    for (const waiter of waiters) {
      if (waiter.done) continue;
      waiter.done = true;
      unlinkSignal(waiter.signal, waiter.onAbort);
      if (ok) waiter.resolve(outcome as V);
      else waiter.reject(outcome);
    }
  }

  #abort(waiter: Waiter<V>): void {
    if (waiter.done) return;
    waiter.done = true;
    this.#active--;
    const reason: unknown = waiter.signal.reason;
    this.#waiters?.delete(waiter);
    waiter.reject(reason);
    if (this.done || this.#pinned || this.#active > 0) return;
    this.done = true;
    this.aborted = true;
    this.#waiters = undefined;
    this.controller.abort(reason);
    this.onAbandon(this);
  }
}
