export { rateLimit, type NodeMiddleware, type NodeResponse } from './node.js';
export { expressRateLimit } from './express.js';
export {
  fastifyRateLimit,
  type FastifyInstanceLike,
  type FastifyRateLimitPlugin,
  type FastifyReplyLike,
  type FastifyRequestLike,
  type FastifyRouteLike,
  type RawReplyLike,
  type FastifyRouteRateLimit,
} from './fastify.js';
export { honoRateLimit, type HonoContextLike, type HonoMiddleware } from './hono.js';
export {
  ipKey,
  type HonoEnvLike,
  type IpKeyOptions,
  type IpSource,
  type NodeRequestLike,
  type SocketLike,
} from './ip-key.js';
export { httpStatusOf } from './status.js';
export { QUOTA_EXCEEDED, type Awaitable, type RateLimitOptions, type RouteLimit } from './core.js';
export type { HeadersMode } from './headers.js';
