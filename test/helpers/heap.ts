/** `global.gc` when the run has `--expose-gc` (npm test passes it). */
const gc = (globalThis as { gc?: () => void }).gc;

/** `it(..., { skip: needsGc })`: leak tests skip visibly, with the reason, without a GC hook. */
export const needsGc: string | false = gc === undefined ? 'needs --expose-gc (npm test passes it)' : false;

/** Lets pending callbacks run and collects garbage a few times; returns the heap in use. */
export async function settleHeap(): Promise<number> {
  if (gc === undefined) throw new Error('settleHeap needs --expose-gc');
  for (let i = 0; i < 4; i++) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    gc();
  }
  return process.memoryUsage().heapUsed;
}
