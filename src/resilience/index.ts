export {
  AdaptiveLimit,
  type AdaptiveAlgorithm,
  type AdaptiveLimitChange,
  type AdaptiveLimitOptions,
  type AdaptiveLimitStats,
} from './adaptive-limit.js';
