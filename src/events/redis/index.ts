export {
  RedisStreamTransport,
  jsonCodec,
  type EventCodec,
  type RedisStreamConnectOptions,
  type RedisStreamTransportOptions,
} from './redis-stream-transport.js';
export {
  ioredisClient,
  nodeRedisClient,
  type IoredisClientLike,
  type IoredisLike,
  type NodeRedisClientLike,
  type NodeRedisLike,
  type RedisClient,
  type RedisScripting,
} from '../../internal/redis-client.js';
