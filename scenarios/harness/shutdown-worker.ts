// A child process for the shutdown tests and the graceful-shutdown scenario: a loopback HTTP
// server whose every request does one background write through a Supervisor.
//
//   node --import tsx shutdown-worker.ts <journal> <mode> [deadlineMs] [requestMs] [writeMs]
//
// mode `graceful`: onShutdown([server, sup], { deadlineMs }); `naive`: process.exit(0) on
// SIGTERM, what a service without a shutdown path does. `writeMs` < 0: writes never finish.
// The journal (appended synchronously, so it survives any exit) gets `R <id>` when a request
// arrives and `W <id>` when its background write is done; the parent compares them with the
// answers it got. Prints `{"port":N}` once listening, and each shutdown event as a JSON line
// on stderr.
import { appendFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { onShutdown, Supervisor } from '../../src/tasks/index.js';

const [journal = '', mode = 'graceful', deadline = '3000', requestMs = '20', writeMs = '30'] =
  process.argv.slice(2);
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const forever = () => new Promise<void>(() => undefined);

const sup = new Supervisor({ name: 'writes' });
let next = 0;

const server = createServer((req, res) => {
  const id = next++;
  appendFileSync(journal, `R ${id}\n`);
  req.resume();
  void (async () => {
    await sleep(Number(requestMs));
    sup.background(
      async () => {
        const ms = Number(writeMs);
        if (ms < 0) await forever();
        else await sleep(ms);
        appendFileSync(journal, `W ${id}\n`);
      },
      { name: `write-${id}` },
    );
    res.writeHead(200, { 'content-type': 'text/plain' }).end(String(id));
  })();
});

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
});

if (mode === 'naive') {
  process.on('SIGTERM', () => process.exit(0));
} else {
  onShutdown([server, sup], {
    deadlineMs: Number(deadline),
    log: (event) =>
      process.stderr.write(
        `${JSON.stringify(event, (_k, v: unknown) => (v instanceof Error ? v.message : v))}\n`,
      ),
  });
}
