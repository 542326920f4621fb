// Seed 001 (multi-agent API): the API answers 429 + Retry-After once a client exceeds its tier.
// This replays the other side — a client with a batch of calls to make — naive (a retry loop
// that sleeps a fixed 10 ms on 429) vs a sluice Throttle (spaces calls; on 429 pauses every
// caller until Retry-After, then retries). Time is scaled down: the server's window is 200 ms
// and its Retry-After is in fractional seconds ("0.137"), as every latency here is scaled.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Throttle } from '../src/rate/index.js';
import { sized } from './harness/size.js';
import { round, timed } from './harness/stats.js';
import type { Scenario } from './harness/types.js';

const LIMIT = 5;
const WINDOW_MS = 200;
const JOBS = sized(40, 20);
const NAIVE_SLEEP_MS = 10;

interface Counters {
  requests: number;
  limited: number;
  /** Requests that arrived after the first 429 was sent. */
  afterFirst429: number;
  /** Most requests accepted in one window (must be ≤ LIMIT). */
  maxAccepted: number;
}

/** A fixed-window limiter in front of a trivial endpoint: LIMIT per WINDOW_MS, then 429. */
async function startServer(): Promise<{
  server: Server;
  url: string;
  counters: Counters;
  reset: () => void;
}> {
  let t0 = performance.now();
  let window = -1;
  let accepted = 0;
  const counters: Counters = { requests: 0, limited: 0, afterFirst429: 0, maxAccepted: 0 };
  const server = createServer((req, res) => {
    req.resume();
    const now = performance.now() - t0;
    counters.requests++;
    if (counters.limited > 0) counters.afterFirst429++;
    const w = Math.floor(now / WINDOW_MS);
    if (w !== window) {
      window = w;
      accepted = 0;
    }
    if (accepted < LIMIT) {
      accepted++;
      counters.maxAccepted = Math.max(counters.maxAccepted, accepted);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
      return;
    }
    counters.limited++;
    const retryAfter = Math.ceil((w + 1) * WINDOW_MS - now) / 1000;
    res
      .writeHead(429, { 'content-type': 'application/json', 'retry-after': retryAfter.toFixed(3) })
      .end('{"error":"rate limited"}');
  });
  server.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/agents`;
  const reset = () => {
    t0 = performance.now();
    window = -1;
    accepted = 0;
    Object.assign(counters, { requests: 0, limited: 0, afterFirst429: 0, maxAccepted: 0 });
  };
  return { server, url, counters, reset };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const scenario: Scenario = {
  seed: '001',
  name: 'client-throttle',
  api: 'Throttle.fetch',
  workload: `${JOBS} calls to an API that allows ${LIMIT} per ${WINDOW_MS} ms and answers 429 + Retry-After: retry loop (fixed ${NAIVE_SLEEP_MS} ms sleep) vs Throttle (limit guessed 2× too high, pauses on Retry-After)`,
  async run(ctx) {
    const { server, url, counters, reset } = await startServer();
    try {
      // Naive: every call at once; on 429, sleep a fixed 10 ms and try again.
      reset();
      let done = 0;
      const naive = await timed(() =>
        Promise.all(
          Array.from({ length: JOBS }, async () => {
            for (let attempt = 0; attempt < 10_000; attempt++) {
              // Checked per attempt instead of passed to fetch: undici drops a fetch's abort
              // listener only when the request is collected, and the naive loop sends hundreds.
              ctx.signal.throwIfAborted();
              const res = await fetch(url);
              await res.text();
              if (res.status !== 429) {
                ctx.progress(++done, JOBS, 'naive');
                return res.status;
              }
              await sleep(NAIVE_SLEEP_MS);
            }
            return 429;
          }),
        ),
      );
      const naiveCounts = { ...counters };

      // sluice: a Throttle configured at 10 per 200 ms (the client's guess, twice the real
      // limit). The 429s it still gets pause every caller until Retry-After; fetch retries.
      reset();
      done = 0;
      const throttle = new Throttle({ limit: 2 * LIMIT, window: WINDOW_MS, burst: 0, retries: 5 });
      const throttled = await timed(() =>
        Promise.all(
          Array.from({ length: JOBS }, async () => {
            const res = await throttle.fetch(url, { signal: ctx.signal });
            await res.text();
            ctx.progress(++done, JOBS, 'sluice');
            return res.status;
          }),
        ),
      );
      await throttle.close();
      const sluiceCounts = { ...counters };
      const stats = throttle.stats;

      const naiveOk = naive.value.filter((s) => s === 200).length;
      const sluiceOk = throttled.value.filter((s) => s === 200).length;
      return {
        naive: {
          ms: round(naive.ms),
          ok: naiveOk,
          requests: naiveCounts.requests,
          limited429: naiveCounts.limited,
          afterFirst429: naiveCounts.afterFirst429,
        },
        sluice: {
          ms: round(throttled.ms),
          ok: sluiceOk,
          requests: sluiceCounts.requests,
          limited429: sluiceCounts.limited,
          afterFirst429: sluiceCounts.afterFirst429,
          pauses: stats.pauses,
        },
        headline: {
          measure: 'requests after the first 429',
          naive: naiveCounts.afterFirst429,
          sluice: sluiceCounts.afterFirst429,
          better: 'lower',
        },
        invariant:
          `all ${JOBS} calls succeeded (${naiveOk} / ${sluiceOk}); server accepted ≤ ${LIMIT} per window ` +
          `(${naiveCounts.maxAccepted} / ${sluiceCounts.maxAccepted}); requests sent ${naiveCounts.requests} → ` +
          `${sluiceCounts.requests} for the same work, in ${round(naive.ms)} → ${round(throttled.ms)} ms`,
        ok:
          naiveOk === JOBS &&
          sluiceOk === JOBS &&
          sluiceCounts.maxAccepted <= LIMIT &&
          sluiceCounts.afterFirst429 * 5 < naiveCounts.afterFirst429 &&
          // Both are quantised by the server's windows: the throttle may finish a window later.
          throttled.ms <= naive.ms + 2 * WINDOW_MS,
      };
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  },
};

export default scenario;
