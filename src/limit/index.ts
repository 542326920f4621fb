export { Limiter, Permit, type LimiterOptions, type LimiterStats, type RunOptions } from './limiter.js';
export { KeyedMutex, Mutex, type KeyedMutexStats, type MutexOptions } from './mutex.js';
export { map, type MapOptions, type Mapper } from './map.js';
export {
  settle,
  type Failed,
  type Fulfilled,
  type Outcome,
  type Settled,
  type SettleOptions,
} from './settle.js';
