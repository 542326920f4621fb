import assert from 'node:assert/strict';
import { after, it } from 'node:test';
import { closeSharedDb } from '../../scenarios/harness/db.js';
import { SIZE_ENV } from '../../scenarios/harness/size.js';

after(() => closeSharedDb());

it('003 event-batching (quick): one INSERT per batch, every event stored once, nothing lost at shutdown', async () => {
  // The scenario reads its size at module load.
  process.env[SIZE_ENV] = 'quick';
  const { default: scenario } = await import('../../scenarios/003-events.js');
  const result = await scenario.run({ progress: () => undefined, signal: new AbortController().signal });
  assert.equal(result.ok, true, `${result.invariant}\n${JSON.stringify(result)}`);
  const { naive, sluice } = result;
  assert.equal(naive['queries'], 200);
  assert.equal(naive['rows'], '200/200');
  assert.equal(sluice['rows'], '200/200');
  // One INSERT per batch: at most one per 50 events plus the time-flushed partial batches.
  assert.equal(sluice['queries'], sluice['batches']);
  assert.ok(Number(sluice['queries']) < 200 / 10, `queries ${String(sluice['queries'])}`);
  // Shutdown found events in the subscription buffer or the writer, and lost none of them.
  assert.ok(Number(sluice['inBufferAtClose']) + Number(sluice['inWriterAtClose']) > 0);
  assert.match(result.invariant, /^every one of 200 events stored exactly once \(200 rows, 200 distinct ids/);
});
