import { ClosedError } from '../errors.js';
import * as v from '../internal/validate.js';
import { MemoryStore } from './memory-store.js';
import type { RatePolicySpec } from './policy.js';
import {
  RateLimiter,
  sharedOptions,
  type ConsumeOptions,
  type RateLimitSharedOptions,
} from './rate-limiter.js';
import type { RateDecision } from './store.js';

/** Options of {@link Tiers}. */
export interface TiersOptions extends RateLimitSharedOptions {
  /**
   * Prepended to each tier's name to form its name, its key space in the store,
   * so two services sharing one Redis can both have an `auth` tier.
   * @default ''
   */
  readonly prefix?: string | undefined;
}

/**
 * Named policies with independent key spaces: `auth` spending never touches `read`. Each tier is
 * a {@link RateLimiter} named after the tier (the id a client sees in `RateLimit` headers); all
 * share one store, clock and error policy. A request consumes from the one tier you name, so a
 * request is never counted twice.
 *
 * @example
 * ```ts
 * import { Tiers } from 'sluice/rate';
 * const tiers = new Tiers({ auth: '5/1m', write: '30/1m', read: '120/1m', health: '300/1m' });
 * const d = await tiers.consume('auth', ip); // d.policy.name === 'auth'
 * ```
 */
export class Tiers<T extends string = string> implements AsyncDisposable {
  /** The tier names, in the order given. */
  readonly names: readonly T[];
  readonly #limiters = new Map<string, RateLimiter>();
  readonly #ownedStore: MemoryStore | undefined;
  #closed = false;

  constructor(policies: Readonly<Record<T, RatePolicySpec>>, options?: TiersOptions) {
    if (typeof policies !== 'object' || policies === null) {
      throw new TypeError(
        v.expectation('policies', "an object of named policies like { auth: '5/1m' }", policies),
      );
    }
    v.options('options', options);
    const prefix = options?.prefix === undefined ? '' : v.string('prefix', options.prefix);
    sharedOptions(options ?? {});
    this.#ownedStore = options?.store === undefined ? new MemoryStore() : undefined;
    const store = options?.store ?? this.#ownedStore;
    const names = Object.keys(policies) as T[];
    if (names.length === 0)
      throw new RangeError(v.expectation('policies', 'at least one named policy', policies));
    for (const tier of names) {
      const limiter = new RateLimiter({
        ...options,
        store,
        policy: policies[tier],
        name: `${prefix}${tier}`,
      });
      this.#limiters.set(tier, limiter);
    }
    this.names = Object.freeze(names);
  }

  /** The limiter of one tier; `TypeError` for an unknown name. */
  get(tier: T): RateLimiter {
    const limiter = this.#limiters.get(tier);
    if (limiter === undefined) throw new TypeError(v.expectation('tier', `one of ${this.#list()}`, tier));
    return limiter;
  }

  /** {@link RateLimiter.consume} on one tier; rejects with `InvalidInputError` for an unknown tier. */
  consume(tier: T, key: string, options?: ConsumeOptions): Promise<RateDecision> {
    const limiter = this.#limiters.get(tier);
    if (limiter === undefined) {
      if (this.#closed) return Promise.reject(new ClosedError('Tiers is closed'));
      return Promise.reject(v.invalidInput('tier', `one of ${this.#list()}`, tier));
    }
    return limiter.consume(key, options);
  }

  /** {@link RateLimiter.tryConsume} on one tier (memory store only). */
  tryConsume(tier: T, key: string, cost?: number): RateDecision {
    const limiter = this.#limiters.get(tier);
    if (limiter === undefined) throw v.invalidInput('tier', `one of ${this.#list()}`, tier);
    return limiter.tryConsume(key, cost);
  }

  /** Closes every tier, and the store if `Tiers` created it. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all(Array.from(this.#limiters.values(), (limiter) => limiter.close()));
    await this.#ownedStore?.close();
  }

  /** Same as {@link Tiers.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #list(): string {
    return this.names.map((n) => `'${n}'`).join(', ');
  }
}
