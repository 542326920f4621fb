export {
  BatchWriter,
  type BatchRetryOptions,
  type BatchWriterOptions,
  type BatchWriterStats,
  type FlushContext,
  type FlushFn,
  type WriteOptions,
} from './batch-writer.js';
export type { CacheLike } from './cache-like.js';
export {
  Loader,
  type BatchContext,
  type BatchFn,
  type BatchResult,
  type LoaderEntry,
  type LoaderLoadOptions,
  type LoaderOptions,
  type LoaderStats,
} from './loader.js';
