import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseList } from 'structured-headers';
import { decisionHeaders, policyHeaders, retryAfterSeconds, sfInt } from '../../../src/rate/http/headers.js';
import { httpStatusOf } from '../../../src/rate/http/index.js';
import { parsePolicy, type RateDecision } from '../../../src/rate/index.js';
import {
  ClosedError,
  InvalidInputError,
  QueueFullError,
  RateLimitedError,
  TimeoutError,
} from '../../../src/errors.js';

describe('headers', () => {
  it('property: any printable id and any numbers round-trip through an RFC 9651 parser', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[\x20-\x7e]{0,40}$/),
        fc.double(),
        fc.double(),
        (name, remaining, resetMs) => {
          const policy = parsePolicy('120/1m', name);
          const parts = policyHeaders(policy, 'name');
          const decision: RateDecision = {
            allowed: true,
            limit: 120,
            remaining,
            resetMs,
            retryAfterMs: 0,
            policy,
          };
          const headers = Object.fromEntries(decisionHeaders('draft', parts, decision, []));
          const p = parseList(headers['ratelimit-policy']!);
          assert.equal(p.length, 1);
          assert.equal(p[0]![0], name);
          assert.equal(p[0]![1].get('q'), 120);
          assert.equal(p[0]![1].get('w'), 60);
          const s = parseList(headers['ratelimit']!);
          assert.equal(s[0]![0], name);
          const r = s[0]![1].get('r') as number;
          const t = s[0]![1].get('t') as number;
          assert.ok(Number.isInteger(r) && r >= 0 && r <= 999_999_999_999_999);
          assert.ok(Number.isInteger(t) && t >= 0 && t <= 999_999_999_999_999);
          if (resetMs > 0 && resetMs < 1e15) assert.ok(t * 1000 >= resetMs); // never earlier
        },
      ),
      { numRuns: 300 },
    );
  });

  it('refuses ids a header cannot carry (CR/LF, non-ASCII, too long)', () => {
    for (const bad of ['a\r\nx: y', 'tab\t', 'é', 'x'.repeat(257)]) {
      assert.throws(
        () => policyHeaders(parsePolicy('1/1s', bad), 'name'),
        /Expected `name` to be printable ASCII/,
      );
    }
  });

  it('numbers are clamped; Retry-After rounds up and is at least 1 on a denial', () => {
    assert.equal(sfInt(-3), 0);
    assert.equal(sfInt(Number.NaN), 0);
    assert.equal(sfInt(Infinity), 999_999_999_999_999);
    assert.equal(sfInt(4.9), 4);
    assert.equal(retryAfterSeconds(1), 1);
    assert.equal(retryAfterSeconds(1001), 2);
    assert.equal(retryAfterSeconds(0), 1);
    assert.equal(retryAfterSeconds(-5), 1);
  });

  it('httpStatusOf maps sluice errors; anything else is undefined', () => {
    assert.equal(httpStatusOf(new RateLimitedError('x')), 429);
    assert.equal(httpStatusOf(new QueueFullError('x')), 503);
    assert.equal(httpStatusOf(new ClosedError('x')), 503);
    assert.equal(httpStatusOf(new TimeoutError('x')), 504);
    assert.equal(httpStatusOf(new InvalidInputError('x')), undefined);
    assert.equal(httpStatusOf(new Error('x')), undefined);
    assert.equal(httpStatusOf('SLUICE_TIMEOUT'), undefined);
    assert.equal(httpStatusOf(null), undefined);
  });
});
