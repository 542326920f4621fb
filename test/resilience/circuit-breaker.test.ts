import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { CircuitOpenError, InvalidInputError } from '../../src/errors.js';
import { CircuitBreaker, type CircuitState, type CircuitStateChange } from '../../src/resilience/index.js';
import { captureReports, deferred } from '../helpers/async.js';

const ok = async () => 'ok';
const boom = async () => {
  throw new Error('boom');
};
const settle = (p: Promise<unknown>) =>
  p.then(
    () => 'ok' as const,
    (e: unknown) => (e instanceof CircuitOpenError ? 'rejected' : 'failed'),
  );

describe('CircuitBreaker', () => {
  it('opens at the failure rate once minimumRequests are seen, fails fast with retryAfterMs, half-opens lazily', async () => {
    let now = 0;
    const changes: CircuitStateChange[] = [];
    const breaker = new CircuitBreaker({
      failureRate: 0.5,
      minimumRequests: 4,
      halfOpenAfterMs: 1000,
      halfOpenCalls: 2,
      clock: { now: () => now },
      onStateChange: (c) => changes.push(c),
    });
    await breaker.run(ok);
    await assert.rejects(breaker.run(boom));
    await assert.rejects(breaker.run(boom));
    assert.equal(breaker.state, 'closed', '2 of 3 failed, but fewer than minimumRequests');
    await assert.rejects(breaker.run(boom));
    assert.equal(breaker.state, 'open');
    let ran = false;
    now = 400;
    await assert.rejects(
      breaker.run(() => {
        ran = true;
      }),
      (e) => e instanceof CircuitOpenError && e.code === 'SLUICE_CIRCUIT_OPEN' && e.retryAfterMs === 600,
    );
    assert.equal(ran, false);
    now = 1000;
    // Two trials run at once; a third is refused while they are out.
    const a = deferred<string>();
    const b = deferred<string>();
    const p1 = breaker.run(() => a.promise);
    const p2 = breaker.run(() => b.promise);
    assert.equal(breaker.state, 'half-open');
    await assert.rejects(breaker.run(ok), (e) => e instanceof CircuitOpenError && e.retryAfterMs === 0);
    a.resolve('x');
    b.resolve('y');
    assert.deepEqual(await Promise.all([p1, p2]), ['x', 'y']);
    assert.equal(breaker.state, 'closed');
    assert.deepEqual(
      changes.map((c) => `${c.from}→${c.to}`),
      ['closed→open', 'open→half-open', 'half-open→closed'],
    );
    const s = breaker.stats;
    assert.equal(s.rejected, 2);
    assert.equal(s.calls, 6);
    assert.equal(s.failures, 3);
    assert.equal(s.windowCalls, 0, 'closing starts a fresh window');
  });

  it('reopens as soon as the trials cannot end below the threshold', async () => {
    let now = 0;
    const breaker = new CircuitBreaker({
      minimumRequests: 1,
      halfOpenAfterMs: 10,
      halfOpenCalls: 4,
      clock: { now: () => now },
    });
    await assert.rejects(breaker.run(boom));
    now = 10;
    await assert.rejects(breaker.run(boom));
    assert.equal(breaker.state, 'half-open', '1 of 4 failed: not decided');
    await assert.rejects(breaker.run(boom));
    assert.equal(breaker.state, 'open', '2 of 4 failed: 50% whatever the rest do');
  });

  it('isFailure decides what counts; a throwing onStateChange or isFailure is contained; caller aborts do not count', async () => {
    const reports = captureReports('sluice:resilience:error');
    const breaker = new CircuitBreaker({
      minimumRequests: 1,
      isFailure: (e) => {
        if ((e as Error).message === 'weird') throw new Error('predicate bug');
        return (e as Error).message !== 'not found';
      },
      onStateChange: () => {
        throw new Error('listener bug');
      },
    });
    await assert.rejects(breaker.run(async () => Promise.reject(new Error('not found'))));
    assert.equal(breaker.state, 'closed');
    const controller = new AbortController();
    const p = breaker.run(
      (signal) =>
        new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason as Error))),
      { signal: controller.signal },
    );
    await new Promise((r) => setImmediate(r));
    controller.abort(new Error('mine'));
    await assert.rejects(p, /mine/);
    assert.equal(breaker.state, 'closed', 'the caller abort is not a dependency failure');
    await assert.rejects(breaker.run(async () => Promise.reject(new Error('weird'))));
    assert.equal(breaker.state, 'open');
    reports.stop();
    assert.deepEqual(reports.reports.map((r) => r.where).sort(), ['isFailure', 'onStateChange']);
    assert.equal(breaker.stats.callbackErrors, 2);
  });

  it('publishes transitions on sluice:resilience:breaker-state; rejects bad input; starts fn asynchronously', async () => {
    const seen: unknown[] = [];
    const onMessage = (m: unknown) => seen.push(m);
    subscribe('sluice:resilience:breaker-state', onMessage);
    const breaker = new CircuitBreaker({ minimumRequests: 1, name: 'payments' });
    await assert.rejects(breaker.run(boom));
    unsubscribe('sluice:resilience:breaker-state', onMessage);
    assert.equal(seen.length, 1);
    assert.deepEqual(
      { ...(seen[0] as object), breaker: undefined },
      {
        breaker: undefined,
        name: 'payments',
        from: 'closed',
        to: 'open',
        failureRate: 1,
      },
    );
    await assert.rejects(new CircuitBreaker().run(42 as never), InvalidInputError);
    assert.throws(() => new CircuitBreaker({ failureRate: 0 }), RangeError);
    assert.throws(() => new CircuitBreaker({ halfOpenCalls: 0 }), RangeError);
    let started = false;
    const p = new CircuitBreaker().run(() => {
      started = true;
      throw new Error('sync');
    });
    assert.equal(started, false);
    await assert.rejects(p, /sync/);
  });

  it('matches a simple model of the state machine under a fake clock (property)', async () => {
    type Cmd = { op: 'advance'; ms: number } | { op: 'burst'; outcomes: boolean[] }; // true = failure, all started at once, settled in order

    const B = 4;
    await fc.assert(
      fc.asyncProperty(
        fc.double({ min: 0.1, max: 1, noNaN: true }),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 4 }),
        fc.array(
          fc.oneof(
            fc.record({ op: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 700 }) }),
            fc.record({
              op: fc.constant('burst' as const),
              outcomes: fc.array(fc.boolean(), { minLength: 1, maxLength: 5 }),
            }),
          ),
          { maxLength: 40 },
        ),
        async (failureRate, minimumRequests, halfOpenCalls, cmds: Cmd[]) => {
          const windowMs = 1000;
          const halfOpenAfterMs = 500;
          let now = 0;
          const breaker = new CircuitBreaker({
            failureRate,
            minimumRequests,
            halfOpenCalls,
            windowMs,
            buckets: B,
            halfOpenAfterMs,
            clock: { now: () => now },
          });
          // The model: a list of timestamped outcomes instead of buckets, trials counted plainly.
          const m = {
            state: 'closed' as CircuitState,
            gen: 0,
            openedAt: 0,
            trials: 0,
            ok: 0,
            bad: 0,
            events: [] as { t: number; failed: boolean }[],
          };
          const bucket = (t: number) => Math.floor(t / (windowMs / B));
          const to = (s: CircuitState) => {
            m.state = s;
            m.gen++;
            m.trials = m.ok = m.bad = 0;
            if (s === 'closed') m.events = [];
            if (s === 'open') m.openedAt = now;
          };
          const admit = (): { trial: boolean; gen: number } | undefined => {
            if (m.state === 'open' && now - m.openedAt >= halfOpenAfterMs) to('half-open');
            if (m.state === 'open') return undefined;
            if (m.state === 'half-open') {
              if (m.trials >= halfOpenCalls) return undefined;
              m.trials++;
              return { trial: true, gen: m.gen };
            }
            return { trial: false, gen: m.gen };
          };
          const record = (failed: boolean, a: { trial: boolean; gen: number }) => {
            if (a.gen !== m.gen) return;
            if (a.trial) {
              if (failed) m.bad++;
              else m.ok++;
              if (m.bad / halfOpenCalls >= failureRate) to('open');
              else if ((m.bad + halfOpenCalls - m.bad - m.ok) / halfOpenCalls < failureRate) to('closed');
              return;
            }
            m.events.push({ t: now, failed });
            const live = m.events.filter((e) => bucket(e.t) > bucket(now) - B);
            const calls = live.length;
            const bad = live.filter((e) => e.failed).length;
            if (failed && calls >= minimumRequests && bad / calls >= failureRate) to('open');
          };

          for (const cmd of cmds) {
            if (cmd.op === 'advance') {
              now += cmd.ms;
              continue;
            }
            const gates = cmd.outcomes.map(() => deferred<void>());
            const admitted = cmd.outcomes.map(() => admit());
            const runs = cmd.outcomes.map((failed, i) =>
              settle(
                breaker.run(async () => {
                  await gates[i]!.promise;
                  if (failed) throw new Error('x');
                }),
              ),
            );
            for (const [i, failed] of cmd.outcomes.entries()) {
              gates[i]!.resolve();
              const got = await runs[i]!;
              const a = admitted[i];
              assert.equal(
                got,
                a === undefined ? 'rejected' : failed ? 'failed' : 'ok',
                `call ${i} of a burst`,
              );
              if (a !== undefined) record(failed, a);
            }
            assert.equal(
              breaker.stats.state,
              m.state === 'open' && now - m.openedAt >= halfOpenAfterMs ? 'half-open' : m.state,
            );
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
