import * as v from '../internal/validate.js';
import { Limiter, type LimiterStats, type Permit, type RunOptions } from './limiter.js';

/** Options of {@link Mutex} and {@link KeyedMutex}. */
export interface MutexOptions {
  /**
   * How many callers may wait for the lock (per key, for `KeyedMutex`); beyond it they reject
   * with `QueueFullError`. `Infinity` must be spelled explicitly.
   * @default 10_000
   */
  readonly maxQueue?: number | undefined;
  /**
   * Names the lock in errors, `stats` and channel payloads (for `KeyedMutex`, every key's lock
   * carries the same name: keys are often user ids, which do not belong in error messages).
   * @default 'Mutex' / 'KeyedMutex'
   */
  readonly name?: string | undefined;
}

/**
 * One holder at a time, FIFO waiters, abortable waits. A `Limiter` of concurrency 1 with a
 * lock-shaped API.
 *
 * @example
 * ```ts
 * import { Mutex } from 'sluice/limit';
 * const mutex = new Mutex();
 * await mutex.run(() => updateConfigFile(), { signal });
 * ```
 */
export class Mutex implements AsyncDisposable {
  readonly #limiter: Limiter;

  constructor(options: MutexOptions = {}) {
    v.options('options', options);
    this.#limiter = new Limiter({
      concurrency: 1,
      maxQueue: options.maxQueue,
      name: options.name === undefined ? 'Mutex' : options.name,
    });
  }

  /** Whether someone holds the lock. */
  get locked(): boolean {
    return this.#limiter.running > 0;
  }

  /** The underlying limiter's counters (`running` is 0 or 1). */
  get stats(): LimiterStats {
    return this.#limiter.stats;
  }

  /** Runs `fn` while holding the lock. */
  run<T>(fn: () => T | PromiseLike<T>, options?: RunOptions): Promise<T> {
    return this.#limiter.run(fn, options);
  }

  /** Takes the lock; `using lock = await mutex.acquire()` releases it at block exit. */
  acquire(options?: RunOptions): Promise<Permit> {
    return this.#limiter.acquire(options);
  }

  /** Rejects waiters with `ClosedError`; resolves when the holder releases. */
  close(): Promise<void> {
    return this.#limiter.close();
  }

  /** Same as {@link Mutex.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** Counters of a {@link KeyedMutex}. */
export interface KeyedMutexStats {
  /** The `name` option. */
  readonly name: string;
  /** Keys currently held or waited for; idle keys are deleted, so this is the live-key count. */
  readonly keys: number;
  /** Callers holding a key's lock now. */
  readonly running: number;
  /** Callers waiting for a key's lock now. */
  readonly queued: number;
}

/**
 * A mutex per key: callers for one key run one at a time in FIFO order, different keys run in
 * parallel. A key's entry is deleted as soon as nobody holds or waits for it, so memory is
 * bounded by the keys in use, not the keys ever seen.
 *
 * @example
 * ```ts
 * import { KeyedMutex } from 'sluice/limit';
 * const locks = new KeyedMutex<string>();
 * await locks.run(user.id, () => register(user), { signal });
 * ```
 */
export class KeyedMutex<K = unknown> {
  readonly #locks = new Map<K, Limiter>();
  readonly #maxQueue: number;
  readonly #name: string;

  constructor(options: MutexOptions = {}) {
    v.options('options', options);
    this.#name = options.name === undefined ? 'KeyedMutex' : v.string('name', options.name);
    this.#maxQueue = v.nonNegativeInteger(
      'maxQueue',
      options.maxQueue === undefined ? 10_000 : options.maxQueue,
      true,
    );
  }

  /** Keys in use, holders and waiters, summed over keys (O(keys in use)). */
  get stats(): KeyedMutexStats {
    let running = 0;
    let queued = 0;
    for (const lock of this.#locks.values()) {
      running += lock.running;
      queued += lock.queued;
    }
    return { name: this.#name, keys: this.#locks.size, running, queued };
  }

  /** Whether `key`'s lock is held. */
  isLocked(key: K): boolean {
    return this.#locks.has(key);
  }

  /** Runs `fn` while holding `key`'s lock. */
  async run<T>(key: K, fn: () => T | PromiseLike<T>, options?: RunOptions): Promise<T> {
    let lock = this.#locks.get(key);
    if (lock === undefined) {
      lock = new Limiter({ concurrency: 1, maxQueue: this.#maxQueue, name: this.#name });
      this.#locks.set(key, lock);
    }
    try {
      return await lock.run(fn, options);
    } finally {
      // `run` enqueues synchronously, so an idle lock here has no holder and no waiter.
      if (lock.running === 0 && lock.queued === 0 && this.#locks.get(key) === lock) this.#locks.delete(key);
    }
  }
}
