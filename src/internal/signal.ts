interface Link {
  readonly listener: () => void;
  readonly callbacks: Set<() => void>;
}

/** One abort listener per signal, fanning out to every waiter linked to it. */
const links = new WeakMap<AbortSignal, Link>();

/**
 * Links an AbortSignal to one waiter: `onAbort` runs once if the signal aborts before
 * {@link unlinkSignal} is called. The one place sluice listens to signals. However many
 * waiters share a signal (one request's signal across many queued calls, say), the signal
 * carries a single listener, so Node's MaxListenersExceededWarning never fires and nothing
 * is left behind on a long-lived signal once every waiter has unlinked.
 */
export function linkSignal(signal: AbortSignal, onAbort: () => void): () => void {
  let link = links.get(signal);
  if (link === undefined) {
    const callbacks = new Set<() => void>();
    const listener = (): void => {
      links.delete(signal);
      for (const callback of Array.from(callbacks)) callback();
    };
    link = { listener, callbacks };
    links.set(signal, link);
    signal.addEventListener('abort', listener, { once: true });
  }
  link.callbacks.add(onAbort);
  return onAbort;
}

/** Undoes {@link linkSignal}; removes the signal's listener when its last waiter unlinks. */
export function unlinkSignal(signal: AbortSignal | undefined, onAbort: (() => void) | undefined): void {
  if (signal === undefined || onAbort === undefined) return;
  const link = links.get(signal);
  if (link === undefined || !link.callbacks.delete(onAbort) || link.callbacks.size > 0) return;
  links.delete(signal);
  signal.removeEventListener('abort', link.listener);
}
