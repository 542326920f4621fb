import { setMaxListeners } from 'node:events';
import { linkSignal, unlinkSignal } from '../internal/signal.js';
import * as v from '../internal/validate.js';

/** Options of {@link map}. */
export interface MapOptions {
  /**
   * How many `fn` calls may be pending at once: a positive integer, or `Infinity` spelled
   * out (there is no unbounded default). The input is pulled only as fast as slots free up,
   * so at most `concurrency` items are in memory besides the results.
   */
  readonly concurrency: number;
  /** Aborting stops pulling input, aborts the `signal` passed to `fn`, and rejects with `signal.reason`. */
  readonly signal?: AbortSignal | undefined;
  /**
   * `true`: the first error stops scheduling and rejects with that error at once (the `fn`
   * signal is aborted so in-flight calls can stop). `false`: every item runs and, if any
   * failed, the call rejects with an `AggregateError` of all errors in input order.
   * @default true
   */
  readonly stopOnError?: boolean | undefined;
}

const STARTED: Promise<void> = Promise.resolve();

/** The function {@link map} applies; `signal` aborts when the whole map stops early. */
export type Mapper<T, R> = (item: T, index: number, signal: AbortSignal) => R | PromiseLike<R>;

/**
 * Applies `fn` to every item with bounded concurrency and resolves with the results in input
 * order. Sync and async iterables are consumed lazily: an async iterable is never read ahead
 * of free slots, so an endless stream runs in bounded memory (besides the results).
 *
 * Never throws: bad input rejects with `InvalidInputError`. `fn` and the iterator start a
 * microtask after the call, in the caller's async context.
 *
 * @example
 * ```ts
 * import { map } from 'sluice/limit';
 * const users = await map(ids, (id, _i, signal) => fetchUser(id, { signal }), { concurrency: 8, signal });
 * ```
 */
export function map<T, R>(
  input: Iterable<T> | AsyncIterable<T>,
  fn: Mapper<T, R>,
  options: MapOptions,
): Promise<R[]> {
  let concurrency = 0;
  let outer: AbortSignal | undefined;
  let stopOnError = true;
  let sync = false;
  const invalid = v.checkInput(() => {
    v.options('options', options);
    v.isFunction('fn', fn);
    concurrency = v.positiveInteger('concurrency', options?.concurrency, true);
    outer = options.signal;
    v.abortSignal('signal', outer);
    stopOnError = options.stopOnError === undefined ? true : v.boolean('stopOnError', options.stopOnError);
    sync = typeof (input as Partial<Iterable<T>> | null)?.[Symbol.iterator] === 'function';
    if (!sync && typeof (input as Partial<AsyncIterable<T>> | null)?.[Symbol.asyncIterator] !== 'function') {
      throw new TypeError(v.expectation('input', 'an iterable or async iterable', input));
    }
  });
  if (invalid !== undefined) return Promise.reject(invalid);
  if (outer?.aborted === true) return Promise.reject(outer.reason as Error);

  return new Promise<R[]>((resolve, reject) => {
    const controller = new AbortController();
    const signal = controller.signal;
    // Every `fn` call shares this signal, and each may add a listener (fetch, http.get,
    // events.once): up to `concurrency` at once is expected, not a leak to warn about.
    if (concurrency > 10) setMaxListeners(concurrency === Infinity ? 0 : concurrency + 10, signal);
    const results: R[] = [];
    const errors: { index: number; error: unknown }[] = [];
    const iterator = sync
      ? (input as Iterable<T>)[Symbol.iterator]()
      : (input as AsyncIterable<T>)[Symbol.asyncIterator]();
    let pulling: Promise<unknown> = Promise.resolve();
    let index = 0;
    let workers = 0;
    let exhausted = false;
    let stopped = false;

    const o = outer;
    const onAbort = o === undefined ? undefined : linkSignal(o, () => stop(o.reason, false));

    function stop(error: unknown, fromIterator: boolean): void {
      if (stopped) return;
      stopped = true;
      unlinkSignal(outer, onAbort);
      controller.abort(error);
      if (!fromIterator && !exhausted) closeIterator();
      reject(error);
    }

    function closeIterator(): void {
      try {
        const done = iterator.return?.();
        if (done !== undefined && !sync) (done as Promise<unknown>).then(undefined, () => undefined);
      } catch {
        // A failing `return()` must not mask the error that stopped the map.
      }
    }

    function finish(): void {
      if (stopped) return;
      stopped = true;
      unlinkSignal(outer, onAbort);
      if (errors.length === 0) {
        resolve(results);
        return;
      }
      errors.sort((a, b) => a.index - b.index);
      reject(
        new AggregateError(
          errors.map((e) => e.error),
          `${errors.length} of ${index} items failed`,
        ),
      );
    }

    // Serialises `next()` on async iterators, which need not support overlapping calls.
    function pull(): Promise<IteratorResult<T>> {
      const next = pulling.then(() => (iterator as AsyncIterator<T>).next());
      pulling = next.then(undefined, () => undefined);
      return next;
    }

    // Arrays skip the iterator protocol: no result object per item.
    async function arrayWorker(array: readonly T[]): Promise<void> {
      try {
        await STARTED; // user code never starts inside the call to `map`
        while (!stopped && index < array.length) {
          const i = index++;
          try {
            results[i] = await fn(array[i] as T, i, signal);
          } catch (error) {
            if (stopOnError) {
              stop(error, false);
              return;
            }
            errors.push({ index: i, error });
          }
        }
        exhausted = true;
      } finally {
        if (--workers === 0 && exhausted) finish();
      }
    }

    async function worker(): Promise<void> {
      try {
        await STARTED; // user code (the iterator too) never starts inside the call to `map`
        while (!stopped && !exhausted) {
          let step: IteratorResult<T>;
          try {
            step = sync ? (iterator as Iterator<T>).next() : await pull();
          } catch (error) {
            exhausted = true;
            stop(error, true);
            return;
          }
          if (step.done === true) {
            exhausted = true;
            return;
          }
          if (stopped) return;
          const i = index++;
          if (!sync && workers < concurrency) spawn();
          try {
            results[i] = await fn(step.value, i, signal);
          } catch (error) {
            if (stopOnError) {
              stop(error, false);
              return;
            }
            errors.push({ index: i, error });
          }
        }
      } finally {
        if (--workers === 0 && exhausted) finish();
      }
    }

    function spawn(): void {
      workers++;
      void worker();
    }

    if (Array.isArray(input)) {
      const array = input as readonly T[];
      results.length = array.length;
      const n = Math.min(concurrency, array.length);
      workers = n;
      for (let w = 0; w < n && !stopped; w++) void arrayWorker(array);
      if (n === 0) {
        exhausted = true;
        finish();
      }
    } else if (sync) {
      while (workers < concurrency && !exhausted && !stopped) spawn();
      if (workers === 0 && !stopped) finish();
    } else {
      spawn();
    }
  });
}
