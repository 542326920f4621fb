import { hash } from 'node:crypto';
import { Deque } from '../internal/deque.js';

/** Keys longer than this are replaced by their SHA-256, so the table's memory stays per entry. */
const MAX_KEY_LENGTH = 128;
/** Nesting deeper than this is refused rather than recursed into. */
const MAX_DEPTH = 64;
/** Expired entries reclaimed per check: more than one enters per call, so the table keeps up. */
const RECLAIM_PER_CALL = 4;

function canonical(value: unknown, depth: number, out: string[]): void {
  if (depth > MAX_DEPTH) throw new RangeError(`payload nested deeper than ${MAX_DEPTH} levels`);
  switch (typeof value) {
    case 'string':
      out.push(JSON.stringify(value));
      return;
    case 'number':
      out.push(Object.is(value, -0) ? '0' : String(value));
      return;
    case 'boolean':
      out.push(value ? 'true' : 'false');
      return;
    case 'bigint':
      out.push(`${value}n`);
      return;
    case 'undefined':
      out.push('u');
      return;
    case 'object':
      break;
    default:
      // Functions and symbols have no value identity worth comparing.
      out.push(`<${typeof value}>`);
      return;
  }
  if (value === null) {
    out.push('null');
    return;
  }
  const toJSON = (value as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function') {
    canonical((toJSON as () => unknown).call(value), depth + 1, out);
    return;
  }
  if (Array.isArray(value)) {
    out.push('[');
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out.push(',');
      canonical(value[i], depth + 1, out);
    }
    out.push(']');
    return;
  }
  if (value instanceof Map || value instanceof Set) {
    // Insertion order is part of neither's identity: compare their entries as a sorted list.
    const parts = Array.from(value as Iterable<unknown>, (entry) => stableKey(entry, depth + 1));
    out.push(value instanceof Map ? 'M[' : 'S[', parts.sort().join(','), ']');
    return;
  }
  const keys = Object.keys(value).sort();
  out.push('{');
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as string;
    if (i > 0) out.push(',');
    out.push(JSON.stringify(key), ':');
    canonical((value as Record<string, unknown>)[key], depth + 1, out);
  }
  out.push('}');
}

/**
 * A string that is equal for equal values whatever their key order: plain objects by sorted own
 * enumerable keys, arrays in order, `Map`/`Set` by their sorted entries, objects with `toJSON`
 * (a `Date`) by what it returns. Throws a `RangeError` past 64 levels of nesting (which is also
 * how a cycle ends).
 */
function stableKey(value: unknown, depth = 0): string {
  const out: string[] = [];
  canonical(value, depth, out);
  return out.join('');
}

/** The default dedup key of an event: its type and its payload's {@link stableKey}. */
export function defaultDedupKey(type: string, payload: unknown): string {
  const key = `${type}\u0000${stableKey(payload)}`;
  // A long key is hashed: the table then holds at most 44 characters per entry. SHA-256 because
  // a payload is attacker-chosen: a collision would suppress a distinct event.
  return key.length > MAX_KEY_LENGTH ? hash('sha256', key, 'base64') : key;
}

/**
 * Which event keys were seen in the last `windowMs`: a `Map` from key to the time it was first
 * seen, plus a FIFO of keys in that order. Every check first reclaims up to four entries whose
 * window has passed from the head of the FIFO (no timer, no sweep); at `maxKeys` the oldest
 * entry is evicted even if its window is still open (counted in `evicted`).
 */
export class DedupTable {
  readonly #seen = new Map<string, number>();
  readonly #order = new Deque<string, undefined>(() => false);
  readonly #windowMs: number;
  readonly #maxKeys: number;
  /** Entries evicted at `maxKeys` before their window passed. */
  evicted = 0;

  constructor(windowMs: number, maxKeys: number) {
    this.#windowMs = windowMs;
    this.#maxKeys = maxKeys;
  }

  /** Entries held. */
  get size(): number {
    return this.#seen.size;
  }

  /** True when `key` was first seen less than `windowMs` before `now`; otherwise records it. */
  seen(key: string, now: number): boolean {
    const seen = this.#seen;
    const order = this.#order;
    for (let k = 0; k < RECLAIM_PER_CALL; k++) {
      const head = order.peek();
      if (head === undefined || now - order.stamp < this.#windowMs) break;
      order.shift();
      if (seen.get(head) === order.stamp) seen.delete(head);
    }
    const first = seen.get(key);
    if (first !== undefined && now - first < this.#windowMs) return true;
    if (first === undefined && seen.size >= this.#maxKeys) {
      // Each key has one live FIFO entry (a re-seen key's older entry no longer matches its
      // time and is skipped here), so this loop ends after at most a few stale entries.
      for (;;) {
        const oldest = order.shift();
        if (oldest === undefined) break;
        if (seen.get(oldest) === order.stamp) {
          seen.delete(oldest);
          this.evicted++;
          break;
        }
      }
    }
    seen.set(key, now);
    order.push(key, undefined, now);
    return false;
  }
}
