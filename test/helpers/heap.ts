/** `global.gc` when the run has `--expose-gc` (npm test passes it). */
const gc = (globalThis as { gc?: () => void }).gc;

/** `it(..., { skip: needsGc })`: leak tests skip visibly, with the reason, without a GC hook. */
export const needsGc: string | false = gc === undefined ? 'needs --expose-gc (npm test passes it)' : false;

/** Lets pending callbacks run and collects garbage a few times; returns the heap in use. */
export async function settleHeap(): Promise<number> {
  if (gc === undefined) throw new Error('settleHeap needs --expose-gc');
  // At least 4 rounds, then more while the heap still shrinks: Node 24 drops the dependants of
  // an AbortSignal.any through a FinalizationRegistry, whose callbacks run after a collection,
  // so what they free goes only at a later one.
  let used = Infinity;
  for (let i = 0; i < 16; i++) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    gc();
    const now = process.memoryUsage().heapUsed;
    if (i >= 3 && used - now < 64 * 1024) return now;
    used = now;
  }
  return used;
}

/**
 * Starts `count` waits, each with its own `AbortController` (its signal joined with `shared`
 * through `AbortSignal.any` when given, as a request-scoped signal would be). Returns the
 * controllers and one promise for every wait; `start` attaches the wait's own handlers.
 */
export function abortableWaits(
  count: number,
  start: (signal: AbortSignal, i: number, controller: AbortController) => Promise<unknown>,
  shared?: AbortSignal,
): { controllers: AbortController[]; settled: Promise<unknown[]> } {
  const controllers: AbortController[] = [];
  const waits: Promise<unknown>[] = [];
  for (let i = 0; i < count; i++) {
    const controller = new AbortController();
    controllers.push(controller);
    const signal = shared === undefined ? controller.signal : AbortSignal.any([controller.signal, shared]);
    waits.push(start(signal, i, controller));
  }
  return { controllers, settled: Promise.all(waits) };
}

/**
 * What the platform itself retains for `count` signals joined to one long-lived signal with
 * `AbortSignal.any` and then aborted, with no sluice code involved: Node 24 keeps ~100 bytes per
 * dependent signal on the long-lived one (Node 20 keeps almost nothing). A leak test that joins
 * its waits to a shared signal subtracts this, so it measures sluice's retention only.
 */
export async function signalAnyRetention(count: number): Promise<number> {
  // Measured once per process, on a sample of at most 20k signals, and scaled: the retention
  // is per signal.
  perSignal ??= measurePerSignal();
  return count * (await perSignal);
}

let perSignal: Promise<number> | undefined;

async function measurePerSignal(): Promise<number> {
  const sample = 20_000;
  const longLived = new AbortController();
  const reason = new Error('control');
  const before = await settleHeap();
  for (let done = 0; done < sample; done += 10_000) {
    const { controllers, settled } = abortableWaits(
      Math.min(10_000, sample - done),
      (signal) => new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true })),
      longLived.signal,
    );
    for (const c of controllers) c.abort(reason);
    await settled;
  }
  const retained = (await settleHeap()) - before;
  // Keep the long-lived signal (and what it retains) alive until the measurement is taken.
  longLived.signal.throwIfAborted();
  return Math.max(0, retained / sample);
}

/**
 * Heap growth a leak test tolerates after 100k aborted waits, beyond what the platform itself
 * retains: 40 bytes per wait. One leaked waiter record (a promise and its resolvers, at least
 * ~100 bytes) per wait would be 10 MB and fail; Node 24's run-to-run noise after subtracting its
 * AbortSignal.any retention reached 2.2 MB.
 */
export const LEAK_BUDGET = 4 * 1024 * 1024;
