export type { Headline, Measures, Scenario, ScenarioContext, ScenarioResult } from './types.js';
export { SEEDS } from './seeds.js';
export { isQuick, sized, SIZE_ENV } from './size.js';
export { LoopbackServer, type RouteOptions, type RouteRequest, type RouteStats } from './server.js';
export { HttpClient, HttpError, type HttpResponse } from './client.js';
export { LoopLagSampler, withLoopLag, type LoopLag } from './lag.js';
export { Latencies, percentile, round, sleep, summarize, timed, type Summary } from './stats.js';
