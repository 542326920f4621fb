// Seed 004 (agent orchestrator): input validation and a rate limit on one endpoint. Naive
// validates only (the report's phase 1): every well-formed request is served, however many.
// Decision: the limiter runs before validation, so malformed bodies consume quota too — a
// flood of garbage is refused at the same price as a flood of valid requests, and never
// reaches the parser once the quota is spent.
import type { IncomingMessage } from 'node:http';
import { rateLimit } from '../src/rate/http/index.js';
import { RateLimiter } from '../src/rate/index.js';
import { count, send, startApi, type Middleware } from './harness/rate-app.js';
import type { Scenario } from './harness/types.js';

const LIMIT = 20;
const VALID = 5;
const MALFORMED = 5;
const FLOOD = 100;

const clientOf = (req: IncomingMessage): string => {
  const id = req.headers['x-client'];
  return typeof id === 'string' ? id : 'anonymous';
};

async function replay(middleware: Middleware | undefined) {
  let parsed = 0;
  let registered = 0;
  const api = await startApi(middleware, (_req, res, body) => {
    parsed++;
    let name: unknown;
    try {
      name = (JSON.parse(body) as { name?: unknown }).name;
    } catch {
      name = undefined;
    }
    if (typeof name !== 'string' || name.length === 0 || name.length > 64) {
      res.statusCode = 400;
      res.end('{"error":"name must be a string of 1-64 characters"}');
      return;
    }
    registered++;
    res.end('{"ok":true}');
  });
  const post = (client: string, body: string) => ({ method: 'POST', body, headers: { 'x-client': client } });
  try {
    const valid = await send(`${api.url}/agents/register`, VALID, post('a', '{"name":"agent-1"}'));
    const malformed = await send(`${api.url}/agents/register`, MALFORMED, post('a', '{"name":'));
    const flood = await send(`${api.url}/agents/register`, FLOOD, post('a', '{"name":"flood"}'));
    const other = await send(`${api.url}/agents/register`, VALID, post('b', '{"name":"agent-2"}'));
    return { valid, malformed, flood, other, parsed, registered };
  } finally {
    await api.close();
  }
}

const scenario: Scenario = {
  seed: '004',
  name: 'validate-then-limit',
  api: 'RateLimiter + rateLimit (sluice/rate/http)',
  workload: `POST /agents/register (${LIMIT}/min per client): client a sends ${VALID} valid, ${MALFORMED} malformed, then a flood of ${FLOOD}; client b sends ${VALID} valid`,
  async run(ctx) {
    ctx.progress(0, 2, 'naive');
    const naive = await replay(undefined);
    ctx.progress(1, 2, 'sluice');
    const limiter = new RateLimiter({ policy: `${LIMIT}/1m`, name: 'register' });
    const fixed = await replay(rateLimit({ limiter, key: clientOf }));
    ctx.progress(2, 2, 'sluice');
    const floodServed = count(fixed.flood, 200);
    const expectedServed = LIMIT - VALID - MALFORMED;
    return {
      naive: { floodServed: count(naive.flood, 200), parsed: naive.parsed, registered: naive.registered },
      sluice: { floodServed, parsed: fixed.parsed, registered: fixed.registered },
      headline: {
        measure: 'flood requests served',
        of: FLOOD,
        naive: count(naive.flood, 200),
        sluice: floodServed,
        better: 'lower',
      },
      invariant: `malformed → 400 (${count(fixed.malformed, 400)}/${MALFORMED}) and they consume quota: flood served ${floodServed} = ${LIMIT} − ${VALID} valid − ${MALFORMED} malformed, ${count(fixed.flood, 429)} → 429 (Retry-After ${fixed.flood.at(-1)?.headers.get('retry-after')}); valid traffic of another client ${count(fixed.other, 200)}/${VALID}`,
      ok:
        count(fixed.valid, 200) === VALID &&
        count(fixed.malformed, 400) === MALFORMED &&
        floodServed === expectedServed &&
        count(fixed.flood, 429) === FLOOD - expectedServed &&
        count(fixed.other, 200) === VALID &&
        count(naive.flood, 200) === FLOOD,
    };
  },
};

export default scenario;
