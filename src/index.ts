export * from './errors.js';
export * from './limit/index.js';
