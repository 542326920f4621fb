export { type Policy, type PolicyRunOptions, type Work } from './policy.js';
export { Pipeline, pipe } from './pipe.js';
export { TimeoutPolicy, timeout, withTimeout } from './timeout.js';
export {
  RetryPolicy,
  retry,
  type RetryBackoff,
  type RetryEvent,
  type RetryOptions,
  type RetryPolicyOptions,
} from './retry.js';
export { retryAfterOf } from './retry-after.js';
export { RetryBudget, type RetryBudgetOptions, type RetryBudgetStats } from './retry-budget.js';
export {
  CircuitBreaker,
  type CircuitBreakerOptions,
  type CircuitBreakerStats,
  type CircuitState,
  type CircuitStateChange,
} from './circuit-breaker.js';
export { Hedger, hedge, type HedgeOptions, type HedgerOptions, type HedgerStats } from './hedge.js';
export { Bulkhead, bulkhead } from './bulkhead.js';
export {
  AdaptiveLimit,
  type AdaptiveAlgorithm,
  type AdaptiveLimitChange,
  type AdaptiveLimitOptions,
  type AdaptiveLimitStats,
} from './adaptive-limit.js';
