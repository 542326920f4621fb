import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { createServer } from 'node:http';
import { describe, it } from 'node:test';
import { shutdownUnderLoad } from '../../scenarios/harness/shutdown-load.js';
import { captureReports } from '../helpers/async.js';
import { onShutdown, Supervisor, type ShutdownEvent } from '../../src/tasks/index.js';

const listening = (server: ReturnType<typeof createServer>) =>
  new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));

describe('onShutdown in process (exit: false, trigger)', () => {
  it('drains servers first, then closes the rest last-created-first, logging each; exit code 0', async () => {
    const order: string[] = [];
    const events: ShutdownEvent[] = [];
    const published: unknown[] = [];
    const onMessage = (m: unknown) => published.push(m);
    subscribe('sluice:tasks:shutdown', onMessage);
    const server = createServer((_req, res) => res.end('ok'));
    await listening(server);
    server.on('close', () => order.push('server'));
    const sup = new Supervisor({ name: 'jobs' });
    sup.background(() => new Promise((resolve) => setTimeout(resolve, 20)).then(() => order.push('write')));
    const db = { close: async () => void order.push('db') };
    const cache = { [Symbol.asyncDispose]: async () => void order.push('cache') };
    const handle = onShutdown([db, sup, cache, server], {
      exit: false,
      signals: [],
      log: (e) => events.push(e),
    });
    const result = await handle.trigger('SIGTERM');
    unsubscribe('sluice:tasks:shutdown', onMessage);
    assert.deepEqual(order, ['server', 'cache', 'write', 'db']);
    assert.equal(result.exitCode, 0);
    assert.equal(result.timedOut, false);
    assert.deepEqual(
      result.closed.map((c) => c.name.replace(/:\d+#/, '#')),
      ['server#3', 'resource#2', 'jobs', 'resource#0'],
    );
    assert.deepEqual(
      events.map((e) => e.event),
      ['signal', 'closed', 'closed', 'closed', 'closed', 'done'],
    );
    const supStep = events.find((e) => e.event === 'closed' && e.name === 'jobs');
    assert.ok(supStep?.event === 'closed' && supStep.report?.timedOut === false);
    assert.equal(published.length, events.length);
    assert.equal(await handle.done, result);
  });

  it('deadline: a resource that never closes → exit code 1, pending named, within the deadline', async () => {
    const sup = new Supervisor({ name: 'stuck' });
    sup.spawn('ignores-signal', () => new Promise(() => undefined));
    const hang = { name: 'pool', close: () => new Promise(() => undefined) };
    const handle = onShutdown([hang, sup], { exit: false, signals: [], deadlineMs: 60 });
    const start = performance.now();
    const result = await handle.trigger();
    const took = performance.now() - start;
    assert.ok(took < 400, `took ${took} ms`);
    assert.equal(result.exitCode, 1);
    assert.equal(result.timedOut, true);
    // The supervisor closes first with the time left as its deadline; whichever of its timer and
    // onShutdown's fires first, the step still running at the deadline is the one named pending.
    if (result.closed.length === 0) assert.deepEqual(result.pending, ['stuck']);
    else {
      assert.deepEqual(result.pending, ['pool#0']);
      assert.equal(result.closed[0]?.name, 'stuck');
      assert.equal(result.closed[0]?.ok, false, 'a supervisor that timed out is a failed step');
    }
  });

  it('a failing close is reported and the rest still close; exit code 1', async () => {
    const closed: string[] = [];
    const bad = { close: () => Promise.reject(new Error('refused')) };
    const good = { close: () => void closed.push('good') };
    const result = await onShutdown([good, bad], { exit: false, signals: [] }).trigger();
    assert.deepEqual(closed, ['good']);
    assert.equal(result.exitCode, 1);
    assert.equal((result.closed[0]?.error as Error).message, 'refused');
  });

  it('a second signal forces the end at once (exit code 1); a real signal triggers it; dispose removes listeners', async () => {
    const hang = { close: () => new Promise(() => undefined) };
    const before = process.listenerCount('SIGUSR2');
    const handle = onShutdown([hang], { exit: false, signals: ['SIGUSR2'], deadlineMs: 10_000 });
    assert.equal(process.listenerCount('SIGUSR2'), before + 1);
    process.kill(process.pid, 'SIGUSR2');
    await new Promise((resolve) => setTimeout(resolve, 20));
    process.kill(process.pid, 'SIGUSR2');
    const result = await handle.done;
    assert.equal(result.forced, true);
    assert.equal(result.exitCode, 1);
    assert.equal(result.signal, 'SIGUSR2');
    assert.equal(process.listenerCount('SIGUSR2'), before, 'removed once done (exit: false)');
    const other = onShutdown([], { exit: false, signals: ['SIGUSR2'] });
    other[Symbol.dispose]();
    assert.equal(process.listenerCount('SIGUSR2'), before);
  });

  it('a logger that throws or rejects is reported and never breaks the shutdown', async () => {
    const { reports, stop } = captureReports('sluice:tasks:error');
    try {
      let closed = 0;
      const handle = onShutdown([{ close: () => void closed++ }, { close: () => void closed++ }], {
        exit: false,
        signals: [],
        log: async (e) => {
          await Promise.resolve();
          throw new Error(`log sink down at ${e.event}`);
        },
      });
      const result = await handle.trigger();
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(result.exitCode, 0);
      assert.equal(closed, 2);
      assert.ok(reports.length >= 3, `${reports.length} reports`);
      assert.ok(reports.every((r) => r.where === 'log'));
      const sync = onShutdown([{ close: () => undefined }], {
        exit: false,
        signals: [],
        log: () => {
          throw new Error('sync log failure');
        },
      });
      assert.equal((await sync.trigger()).exitCode, 0);
    } finally {
      stop();
    }
  });

  it('servers that share an address-less name are tracked apart: the deadline names the one still closing', async () => {
    const slow = createServer((_req, res) => void setTimeout(() => res.end('late'), 2000).unref());
    const quick = createServer((_req, res) => res.end('ok'));
    const handle = onShutdown([slow, quick], { exit: false, signals: [], deadlineMs: 200 });
    await listening(slow);
    await listening(quick);
    const port = (slow.address() as { port: number }).port;
    const inFlight = fetch(`http://127.0.0.1:${port}/`).then(
      (r) => r.text(),
      () => 'reset',
    );
    await new Promise((resolve) => setTimeout(resolve, 50));
    const result = await handle.trigger();
    assert.equal(result.timedOut, true);
    assert.deepEqual(
      result.pending.map((n) => n.replace(/:\d+#/, '#')),
      ['server#0'],
    );
    await inFlight;
  });

  it('validates its arguments', () => {
    assert.throws(() => onShutdown([{}] as never), /`resources\[0\]` to be a server, a Supervisor/);
    assert.throws(() => onShutdown([], { deadlineMs: -1 }), RangeError);
    assert.throws(() => onShutdown('x' as never), TypeError);
  });
});

describe('onShutdown in a real child process under loopback load', () => {
  it('SIGTERM mid-load: every accepted request answered, every background write done, exit 0 within the deadline', async () => {
    const r = await shutdownUnderLoad({ mode: 'graceful', deadlineMs: 3000, sigtermAfter: 100 });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.ok(r.arrived >= 100);
    assert.equal(r.unanswered, 0, 'every received request was answered');
    assert.equal(r.lostWrites, 0, 'every background write finished');
    assert.equal(r.writes, r.arrived);
    assert.ok(r.exitMs < 3000, `exit took ${r.exitMs} ms`);
    assert.deepEqual(
      r.events.map((e) => e['event']),
      ['signal', 'closed', 'closed', 'done'],
    );
  });

  it('deadline exceeded (writes that never finish): exit 1 with the report, at the deadline', async () => {
    const r = await shutdownUnderLoad({ mode: 'graceful', deadlineMs: 400, writeMs: -1, sigtermAfter: 50 });
    assert.equal(r.exitCode, 1);
    assert.ok(r.exitMs >= 380 && r.exitMs < 2000, `exit took ${r.exitMs} ms`);
    // Either onShutdown's deadline fired while the supervisor was closing, or the supervisor's
    // own deadline (the time left) fired first and its report names the unfinished writes.
    const deadline = r.events.find((e) => e['event'] === 'deadline');
    const step = r.events.find((e) => e['event'] === 'closed' && e['name'] === 'writes');
    const unfinished = (step?.['report'] as { unfinished: { name: string }[] } | undefined)?.unfinished;
    assert.ok(
      (deadline?.['pending'] as string[] | undefined)?.includes('writes') === true ||
        (unfinished !== undefined && unfinished.length > 0 && unfinished[0]!.name.startsWith('write-')),
      JSON.stringify(r.events),
    );
    const done = r.events.find((e) => e['event'] === 'done')?.['result'] as { timedOut: boolean };
    assert.equal(done.timedOut, true);
  });

  it('a second SIGTERM forces exit 1 at once', async () => {
    const r = await shutdownUnderLoad({
      mode: 'graceful',
      deadlineMs: 10_000,
      writeMs: -1,
      sigtermAfter: 50,
      secondSignalMs: 150,
    });
    assert.equal(r.exitCode, 1);
    assert.ok(r.exitMs < 1500, `exit took ${r.exitMs} ms`);
    assert.ok(r.events.some((e) => e['event'] === 'forced'));
  });
});
