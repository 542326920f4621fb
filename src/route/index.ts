export {
  Router,
  RoutePermit,
  type AcquireOptions,
  type RouterOptions,
  type RouterStats,
  type RouteStrategy,
} from './router.js';
