import type { HeapNode } from '../internal/heap.js';

/**
 * What a router keeps per target: its load, its in-flight count, when it was last picked (the
 * tie-breaker) and, for `peak-ewma`, its latency estimate. One object per target; its position
 * in the router's list (`index`) and heap (`heapIndex`) make removal O(1) / O(log n).
 */
export class TargetNode<T> implements HeapNode {
  heapIndex = -1;
  /** Position in the router's target list; -1 once removed. */
  index = -1;
  /** Permits of this node not yet released (they keep counting after a removal). */
  inFlight = 0;
  /** The pick sequence number of the last pick: lower = picked longer ago. */
  lastPick = 0;
  /** Peak-EWMA latency estimate in ms (0 = no sample yet), as of `rttAt`. */
  rtt = 0;
  /** Clock reading of the last update of `rtt`. */
  rttAt = 0;

  constructor(
    readonly target: T,
    /** The load the router orders by: `load(target)` as last read, or `inFlight`. */
    public load: number,
  ) {}
}

/** The cost of an unsampled target that already has work: above any sampled cost. */
const PENALTY = Number.MAX_SAFE_INTEGER;

/**
 * Records a latency sample (ms) at `now` into a peak-EWMA estimate, as tower and Finagle do: a
 * sample above the estimate replaces it at once (the peak), a lower one is blended in with the
 * weight `1 − e^(−elapsed / decayMs)`.
 */
export function observeRtt(node: TargetNode<unknown>, rtt: number, now: number, decayMs: number): void {
  const sample = rtt > 0 ? rtt : 0;
  if (sample > node.rtt) node.rtt = sample;
  else {
    const elapsed = now - node.rttAt;
    const w = elapsed > 0 ? Math.exp(-elapsed / decayMs) : 1;
    node.rtt = node.rtt * w + sample * (1 - w);
  }
  node.rttAt = now;
}

/**
 * The peak-EWMA cost of a target at `now`: its latency estimate, decayed towards 0 for the time
 * since its last sample (an idle target becomes worth probing again), times `load + 1`. A
 * target without a sample costs 0 when idle (it gets a probe) and more than any sampled target
 * once it has work, so a new target is not flooded before its first answer.
 */
export function ewmaCost(node: TargetNode<unknown>, now: number, decayMs: number): number {
  const load = node.load > 0 ? node.load : 0;
  const elapsed = now - node.rttAt;
  const rtt = elapsed > 0 ? node.rtt * Math.exp(-elapsed / decayMs) : node.rtt;
  if (rtt === 0) return load === 0 ? 0 : PENALTY + load;
  return rtt * (load + 1);
}
