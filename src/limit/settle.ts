import * as v from '../internal/validate.js';
import { map } from './map.js';

/** The outcome of one settled operation: its value or its error, never a throw. */
export type Outcome<T> = Fulfilled<T> | Failed;

/** An operation that succeeded. */
export interface Fulfilled<T> {
  /** Always `true`: narrows the union. */
  readonly ok: true;
  /** What it resolved with. */
  readonly value: T;
}

/** An operation that threw or rejected. */
export interface Failed {
  /** Always `false`: narrows the union. */
  readonly ok: false;
  /** What it threw or rejected with. */
  readonly error: unknown;
}

/** Options of {@link settle}. */
export interface SettleOptions {
  /**
   * How many thunks run at once (promises passed in are already running and are not limited).
   * The default starts every thunk, which is bounded by the list you pass: `settle` reads its
   * input into an array up front. For a large or streamed input, use `map` with a bound.
   * @default Infinity
   */
  readonly concurrency?: number | undefined;
  /** Aborting stops starting thunks and rejects with `signal.reason`. */
  readonly signal?: AbortSignal | undefined;
}

/** The outcome type of one input of {@link settle}: thunks are called, promises awaited. */
export type Settled<T> = T extends () => infer R ? Outcome<Awaited<R>> : Outcome<Awaited<T>>;

/**
 * Waits for every operation and reports each outcome in input order, never rejecting because
 * one failed: the typed answer to Python's `gather(..., return_exceptions=True)`. Accepts
 * promises (already running) and thunks (started here, at most `concurrency` at once).
 *
 * @example
 * ```ts
 * import { settle } from 'sluice/limit';
 * const [user, orders] = await settle([() => getUser(id), () => getOrders(id)]);
 * if (user.ok) render(user.value); else log(user.error);
 * ```
 */
export async function settle<const T extends readonly unknown[]>(
  items: T,
  options?: SettleOptions,
): Promise<{ -readonly [K in keyof T]: Settled<T[K]> }>;
export async function settle<T>(
  items: Iterable<T | PromiseLike<T> | (() => T | PromiseLike<T>)>,
  options?: SettleOptions,
): Promise<Outcome<T>[]>;
export async function settle(
  items: Iterable<unknown>,
  options: SettleOptions = {},
): Promise<Outcome<unknown>[]> {
  const invalid = v.checkInput(() => {
    v.options('options', options);
    if (typeof (items as Partial<Iterable<unknown>> | null)?.[Symbol.iterator] !== 'function') {
      throw new TypeError(v.expectation('items', 'an iterable', items));
    }
    if (options.concurrency !== undefined) v.positiveInteger('concurrency', options.concurrency, true);
    v.abortSignal('signal', options.signal);
  });
  if (invalid !== undefined) throw invalid;
  const list = Array.from(items);
  // Attach to every promise now, so a rejection never goes unhandled while thunks wait.
  const outcomes: (Promise<Outcome<unknown>> | undefined)[] = list.map((item) =>
    typeof item === 'function' ? undefined : outcomeOf(item),
  );
  const thunks: number[] = [];
  for (let i = 0; i < list.length; i++) if (outcomes[i] === undefined) thunks.push(i);
  if (thunks.length > 0) {
    const mapOptions = { concurrency: options.concurrency ?? Infinity, signal: options.signal };
    const ran = await map(thunks, (i) => run(list[i] as () => unknown), mapOptions);
    for (let k = 0; k < thunks.length; k++)
      outcomes[thunks[k] as number] = Promise.resolve(ran[k] as Outcome<unknown>);
  }
  return Promise.all(outcomes as Promise<Outcome<unknown>>[]);
}

function run(thunk: () => unknown): Outcome<unknown> | Promise<Outcome<unknown>> {
  try {
    return outcomeOf(thunk());
  } catch (error) {
    return { ok: false, error };
  }
}

function outcomeOf(value: unknown): Promise<Outcome<unknown>> {
  return Promise.resolve(value).then(
    (resolved) => ({ ok: true, value: resolved }),
    (error: unknown) => ({ ok: false, error }),
  );
}
