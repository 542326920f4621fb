import * as v from '../internal/validate.js';
import { apply, init, KeyState } from './algorithms.js';
import type { RatePolicy } from './policy.js';
import type { RateDecision, SyncRateStore } from './store.js';

/** Options of {@link MemoryStore}. */
export interface MemoryStoreOptions {
  /**
   * How many keys the store holds state for. At the bound a new key first takes the place of
   * expired state (a key whose quota is whole again, so nothing is lost), and only when the
   * few keys the store looks at are all live, the place of a key that has held its slot
   * long (FIFO order of slots) — that key starts over with a whole quota (the bound fails open for one old key,
   * never closed for a new one). `stats.evicted` counts those. `Infinity` must be explicit.
   * @default 100_000
   */
  readonly maxKeys?: number | undefined;
}

/** Counters and gauges of a {@link MemoryStore}. */
export interface MemoryStoreStats {
  /** Keys with state now. */
  readonly size: number;
  /** The bound. */
  readonly maxKeys: number;
  /** Expired states dropped to make room or by the incremental sweep. */
  readonly expired: number;
  /** Live states dropped at the bound (their keys start over). */
  readonly evicted: number;
}

/** How many slots the full store inspects for expired state before evicting a live key. */
const PROBE = 16;
/** How many slots each new key's insertion sweeps for expired state. */
const SWEEP = 2;

/**
 * In-process {@link RateStore}: exact, synchronous underneath (what makes
 * `RateLimiter.tryConsume` possible), bounded by `maxKeys`. No timers at all — expired state is
 * reclaimed a little at a time as new keys arrive — so it never keeps a process (or a test
 * runner) alive, and a flood of random keys costs O(1) work per key and at most `maxKeys`
 * states of memory. Per process only: behind several workers use a shared store (`RedisStore`).
 *
 * @example
 * ```ts
 * import { MemoryStore, RateLimiter } from 'sluice/rate';
 * const store = new MemoryStore({ maxKeys: 50_000 });
 * const limiter = new RateLimiter({ limit: 100, window: '1m', store });
 * ```
 */
export class MemoryStore implements SyncRateStore {
  readonly #maxKeys: number;
  /** One table per policy name: the limiter's keys are used as they are, never concatenated. */
  readonly #tables = new Map<string, Map<string, Entry>>();
  #lastPolicy: RatePolicy | undefined;
  #lastTable: Map<string, Entry> | undefined;
  #size = 0;
  readonly #slots: (Entry | undefined)[] = [];
  readonly #free: number[] = [];
  #hand = 0;
  #sweep = 0;
  #expired = 0;
  #evicted = 0;

  constructor(options?: MemoryStoreOptions) {
    v.options('options', options);
    this.#maxKeys = v.positiveInteger('maxKeys', options?.maxKeys ?? 100_000, true);
  }

  /** Counters and gauges; reading them is free. */
  get stats(): MemoryStoreStats {
    return { size: this.#size, maxKeys: this.#maxKeys, expired: this.#expired, evicted: this.#evicted };
  }

  /** Decides and spends synchronously (what `RateLimiter.tryConsume` calls). */
  consumeSync(key: string, policy: RatePolicy, cost: number, nowMs: number): RateDecision {
    const now = toMicros(nowMs);
    if (!Number.isFinite(now)) throw badReading(nowMs);
    const table = policy === this.#lastPolicy ? (this.#lastTable as Map<string, Entry>) : this.#table(policy);
    let entry = table.get(key);
    if (entry === undefined) entry = this.#insert(table, key, policy, now);
    else if (entry.policy !== policy) adopt(entry, policy, now);
    return apply(entry, policy, now, cost, true);
  }

  /** The decision a request of cost 1 would get now, synchronously; spends nothing. */
  peekSync(key: string, policy: RatePolicy, nowMs: number): RateDecision {
    const now = toMicros(nowMs);
    if (!Number.isFinite(now)) throw badReading(nowMs);
    let entry: KeyState | undefined = this.#tables.get(policy.name)?.get(key);
    if (entry === undefined || !sameShape(entry.policy, policy)) entry = new KeyState(policy, now);
    return apply(entry, policy, now, 1, false);
  }

  /** {@link MemoryStore.consumeSync} as a promise; a bad clock reading rejects, never throws. */
  consume(key: string, policy: RatePolicy, cost: number, nowMs: number): Promise<RateDecision> {
    try {
      return Promise.resolve(this.consumeSync(key, policy, cost, nowMs));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** {@link MemoryStore.peekSync} as a promise; a bad clock reading rejects, never throws. */
  peek(key: string, policy: RatePolicy, nowMs: number): Promise<RateDecision> {
    try {
      return Promise.resolve(this.peekSync(key, policy, nowMs));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  reset(key: string, policy: RatePolicy): Promise<void> {
    const entry = this.#tables.get(policy.name)?.get(key);
    if (entry !== undefined) this.#remove(entry);
    return Promise.resolve();
  }

  /** Drops every key's state. */
  clear(): void {
    this.#tables.clear();
    this.#lastPolicy = this.#lastTable = undefined;
    this.#size = 0;
    this.#slots.length = 0;
    this.#free.length = 0;
    this.#hand = this.#sweep = 0;
  }

  /** Drops every key's state; the store stays usable (it owns no connection). */
  close(): Promise<void> {
    this.clear();
    return Promise.resolve();
  }

  #table(policy: RatePolicy): Map<string, Entry> {
    let table = this.#tables.get(policy.name);
    if (table === undefined) {
      table = new Map();
      this.#tables.set(policy.name, table);
    }
    this.#lastPolicy = policy;
    this.#lastTable = table;
    return table;
  }

  #insert(table: Map<string, Entry>, key: string, policy: RatePolicy, now: number): Entry {
    const slots = this.#slots;
    // Incremental sweep: each new key pays for inspecting a couple of slots.
    for (let k = 0; k < SWEEP && slots.length > 0; k++) {
      if (this.#sweep >= slots.length) this.#sweep = 0;
      const old = slots[this.#sweep++];
      if (old !== undefined && old.expiresUs <= now) {
        this.#expired++;
        this.#remove(old);
      }
    }
    if (this.#size >= this.#maxKeys) this.#makeRoom(now);
    const entry = new Entry(table, key, policy, now);
    const free = this.#free.pop();
    if (free === undefined) {
      entry.slot = slots.length;
      slots.push(entry);
    } else {
      entry.slot = free;
      slots[free] = entry;
    }
    table.set(key, entry);
    this.#size++;
    return entry;
  }

  #makeRoom(now: number): void {
    const slots = this.#slots;
    const n = slots.length;
    if (this.#hand >= n) this.#hand = 0;
    const start = this.#hand;
    // Expired state first: a few slots from the hand (the longest-held keys).
    for (let k = 0, i = start; k < PROBE && k < n; k++, i = i + 1 === n ? 0 : i + 1) {
      const old = slots[i];
      if (old !== undefined && old.expiresUs <= now) {
        this.#expired++;
        this.#remove(old);
        return;
      }
    }
    // All live: evict the key at the hand, the one that has held its slot longest (FIFO).
    for (let k = 0, i = start; k < n; k++, i = i + 1 === n ? 0 : i + 1) {
      const old = slots[i];
      if (old !== undefined) {
        this.#hand = i + 1;
        this.#evicted++;
        this.#remove(old);
        return;
      }
    }
  }

  #remove(entry: Entry): void {
    entry.table.delete(entry.key);
    this.#size--;
    this.#slots[entry.slot] = undefined;
    this.#free.push(entry.slot);
  }
}

/**
 * A clock reading in integer µs. Rounded, not floored: two readings a whole number of ms apart
 * (3194.06 and 3345.06) must stay that far apart in µs, and `x × 1000` of a fractional double
 * can land a hair below the integer (3194059.9999999995), which floor would turn into 1 µs early.
 */
export function toMicros(nowMs: number): number {
  return Math.round(nowMs * 1000);
}

/** A clock that returned NaN or ±Infinity must not turn into a silent allow or deny. */
function badReading(nowMs: unknown): Error {
  return v.invalidInput('clock.now()', 'a finite reading in ms', nowMs);
}

class Entry extends KeyState {
  slot = 0;

  constructor(
    readonly table: Map<string, Entry>,
    readonly key: string,
    policy: RatePolicy,
    now: number,
  ) {
    super(policy, now);
  }
}

/** A key met by another limiter of the same name: share its state unless its shape differs. */
function adopt(entry: Entry, policy: RatePolicy, now: number): void {
  // Limiters that share a name but not a policy (a rolling deploy changing a limit) read the
  // same state, as they would in Redis: resetting it here would hand out a fresh quota on every
  // alternation. Only a state of another shape starts over.
  if (sameShape(entry.policy, policy)) entry.policy = policy;
  else init(entry, policy, now);
}

/** Whether a state kept under policy `a` means the same under policy `b`. */
function sameShape(a: RatePolicy, b: RatePolicy): boolean {
  if (a === b) return true;
  if (a.algorithm !== b.algorithm) return false;
  if (b.algorithm === 'sliding-window') return a.segments === b.segments && a.segmentUs === b.segmentUs;
  if (b.algorithm === 'fixed-window') return a.windowUs === b.windowUs;
  return true;
}
