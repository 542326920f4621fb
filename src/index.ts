export * from './errors.js';
export type { Clock } from './internal/clock.js';
export * from './limit/index.js';
export * from './cache/index.js';
export * from './batch/index.js';
export * from './rate/index.js';
export * from './tasks/index.js';
