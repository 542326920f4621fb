export {
  WorkQueue,
  type AddOptions,
  type WorkContext,
  type WorkHandler,
  type WorkQueueOptions,
  type WorkQueueStats,
  type WorkRetryOptions,
} from './work-queue.js';
