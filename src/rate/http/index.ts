export { rateLimit, type NodeMiddleware, type NodeResponse } from './node.js';
export { expressRateLimit } from './express.js';
export {
  fastifyRateLimit,
  type FastifyInstanceLike,
  type FastifyRateLimitPlugin,
  type FastifyReplyLike,
  type FastifyRequestLike,
  type FastifyRouteRateLimit,
} from './fastify.js';
export { honoRateLimit, type HonoContextLike, type HonoMiddleware } from './hono.js';
export { ipKey, type IpKeyOptions, type IpSource } from './ip-key.js';
export { httpStatusOf } from './status.js';
export { QUOTA_EXCEEDED, type Awaitable, type RateLimitOptions, type RouteLimit } from './core.js';
export type { HeadersMode } from './headers.js';
