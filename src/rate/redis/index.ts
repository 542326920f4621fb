export {
  RedisStore,
  type RedisConnectOptions,
  type RedisStoreOptions,
  type RedisStoreStats,
} from './redis-store.js';
export {
  ioredisScripting,
  nodeRedisScripting,
  type IoredisLike,
  type NodeRedisLike,
  type RedisScripting,
} from '../../internal/redis-client.js';
