export {
  RateLimiter,
  type ConsumeOptions,
  type OnStoreError,
  type RateLimiterOptions,
  type RateLimiterStats,
  type RateLimitSharedOptions,
} from './rate-limiter.js';
export { Tiers, type TiersOptions } from './tiers.js';
export { MemoryStore, type MemoryStoreOptions, type MemoryStoreStats } from './memory-store.js';
export {
  parsePolicy,
  type RateAlgorithm,
  type RatePolicy,
  type RatePolicyOptions,
  type RatePolicySpec,
} from './policy.js';
export type { RateDecision, RateStore, SyncRateStore } from './store.js';
export { Throttle, type ThrottleOptions, type ThrottleRunOptions, type ThrottleStats } from './throttle.js';
export { rateLimitedPause } from './retry-after.js';
