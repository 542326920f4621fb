import { linkSignal, unlinkSignal } from '../internal/signal.js';
import { Timer } from '../internal/timer.js';

/** A pending {@link sleep}: settles once, then holds nothing. */
class Sleeper {
  timer: Timer | undefined = undefined;
  onAbort: (() => void) | undefined = undefined;
  constructor(
    readonly signal: AbortSignal | undefined,
    readonly resolve: () => void,
    readonly reject: (reason: unknown) => void,
  ) {}

  wake(): void {
    unlinkSignal(this.signal, this.onAbort);
    this.onAbort = undefined;
    this.timer = undefined;
    this.resolve();
  }

  abort(): void {
    this.timer?.cancel();
    this.timer = undefined;
    this.onAbort = undefined;
    this.reject((this.signal as AbortSignal).reason);
  }
}

/**
 * Resolves after `ms` (through the project's Timer: any delay, chained past 2^31−1 ms). The
 * timer is ref'd, as Throttle's is: it is what settles a promise the caller awaits, and an
 * unref'd one would let the process exit in the middle of a retry. Aborting `signal` rejects with its reason, clears the timer and unlinks the
 * listener: an aborted sleep leaves nothing behind.
 */
export function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (signal?.aborted === true) return Promise.reject(signal.reason as Error);
  return new Promise<void>((resolve, reject) => {
    const sleeper = new Sleeper(signal, resolve, reject);
    if (signal !== undefined) sleeper.onAbort = linkSignal(signal, () => sleeper.abort());
    sleeper.timer = new Timer(() => sleeper.wake(), ms, true);
  });
}
