import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MemoryStore, RateLimiter, Tiers, type RateStore } from '../../../src/rate/index.js';

/** The four tiers of report 001. */
export const newTiers = (): Tiers =>
  new Tiers({ auth: '5/1m', write: '30/1m', read: '120/1m', health: '300/1m' });

/** Route → tier, as report 001 assigned them. */
export function tierOf(path: string): string | undefined {
  if (path.startsWith('/login')) return 'auth';
  if (path.startsWith('/health')) return 'health';
  if (path.startsWith('/free')) return undefined;
  return 'read';
}

export function urlOf(server: Server): string {
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A store whose every call rejects: what a Redis outage looks like to a limiter. */
export const brokenStore: RateStore = {
  consume: () => Promise.reject(new Error('store down')),
  peek: () => Promise.reject(new Error('store down')),
  reset: () => Promise.reject(new Error('store down')),
};

export const failClosed = (): RateLimiter =>
  new RateLimiter({ policy: '5/1m', name: 'auth', store: brokenStore, onStoreError: 'fail-closed' });

export const withFallback = (): RateLimiter =>
  new RateLimiter({
    policy: '1/1m',
    name: 'auth',
    store: brokenStore,
    onStoreError: { fallback: new MemoryStore() },
  });

export const shadow = (): RateLimiter => new RateLimiter({ policy: '5/1m', name: 'auth', mode: 'shadow' });

/** Collects `sluice:rate:error` payloads while `fn` runs. */
export async function collectErrors<T>(
  fn: () => Promise<T>,
): Promise<{ value: T; errors: { error: unknown; where: string }[] }> {
  const errors: { error: unknown; where: string }[] = [];
  const onMessage = (m: unknown): void => void errors.push(m as { error: unknown; where: string });
  subscribe('sluice:rate:error', onMessage);
  try {
    return { value: await fn(), errors };
  } finally {
    unsubscribe('sluice:rate:error', onMessage);
  }
}

export async function hit(
  url: string,
  init?: RequestInit,
): Promise<{ status: number; headers: Headers; body: string }> {
  const res = await fetch(url, init);
  return { status: res.status, headers: res.headers, body: await res.text() };
}

/** Sends `n` requests one after another; returns the statuses. */
export async function hits(url: string, n: number, init?: RequestInit): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push((await hit(url, init)).status);
  return out;
}
