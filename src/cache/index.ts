export { Cache } from './cache.js';
export type {
  CacheOptions,
  CachePolicy,
  CacheStats,
  CacheEvictReason,
  CacheLoadContext,
  CacheLoadOptions,
  CacheLoader,
  CacheSetOptions,
} from './options.js';
