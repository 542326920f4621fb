import type { TestContext } from 'node:test';

/**
 * Integration tests read `DATABASE_URL` / `REDIS_URL`. Without them they skip visibly (a
 * skipped test with the reason); with `SLUICE_REQUIRE_SERVICES=1` a missing one fails.
 * Returns the URL, or `undefined` after marking the test skipped.
 */
export function serviceUrl(t: TestContext, variable: 'DATABASE_URL' | 'REDIS_URL'): string | undefined {
  const url = process.env[variable];
  if (url !== undefined && url !== '') return url;
  if (process.env['SLUICE_REQUIRE_SERVICES'] === '1') {
    throw new Error(`${variable} is not set but SLUICE_REQUIRE_SERVICES=1 requires it`);
  }
  t.skip(`${variable} is not set; set it (or run .ci/run) to run this integration test`);
  return undefined;
}
