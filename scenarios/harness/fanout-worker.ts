// One worker process of the `event-fanout` scenario (started by harness/fanout-cluster.ts with
// `fork()`): a FanoutNode on an EventBus over a RedisStreamTransport on the stream
// $SLUICE_FANOUT_STREAM at $REDIS_URL (kind `bus`), or on a plain EventEmitter (kind `emitter`,
// the report's per-process bus).
//
//   node --import tsx fanout-worker.ts <bus|emitter> <name> <journal> <claimAfterMs>
//
// Every event its indexer finishes is appended to <journal> synchronously, so the record
// survives SIGKILL. Parent → worker requests `{ req, op, ... }` are answered `{ req, ... }`;
// the worker also sends `{ ready: true }` once connected and `{ started: id }` when its slow
// indexer starts an event. It exits when the parent disconnects.
import { appendFileSync } from 'node:fs';
import { RedisStreamTransport } from '../../src/events/redis/index.js';
import { FanoutNode, busCarrier, emitterCarrier, type Carrier } from './fanout-node.js';

/** What the parent asks (each request also carries `req`, echoed in the reply). */
export type WorkerAsk =
  | {
      readonly op: 'emit';
      readonly phase: number;
      readonly count: number;
      readonly intervalMs: number;
      readonly burst: number;
    }
  | { readonly op: 'delay'; readonly ms: number }
  | { readonly op: 'seen' }
  | { readonly op: 'close' };

export type WorkerRequest = WorkerAsk & { readonly req: number };

export interface WorkerReply {
  readonly req: number;
  readonly sent?: number;
  readonly seen?: string[];
  readonly error?: string;
}

const [kind = 'bus', name = 'a', journal = '', claimAfter = '300'] = process.argv.slice(2);
let transport: RedisStreamTransport | undefined;
let carrier: Carrier;
if (kind === 'bus') {
  const url = process.env['REDIS_URL'];
  const stream = process.env['SLUICE_FANOUT_STREAM'];
  if (url === undefined || url === '' || stream === undefined)
    throw new Error('REDIS_URL and SLUICE_FANOUT_STREAM are required');
  transport = await RedisStreamTransport.connect(url, { driver: 'ioredis', stream, connectTimeout: 3000 });
  carrier = busCarrier(transport, `worker ${name}`, Number(claimAfter), `fanout-${name}`);
} else carrier = emitterCarrier();

const node = new FanoutNode(name, carrier, {
  started: (id) => process.send?.({ started: id }),
  handled: (id) => appendFileSync(journal, `${id}\n`),
});

async function answer(m: WorkerRequest): Promise<Omit<WorkerReply, 'req'>> {
  switch (m.op) {
    case 'emit':
      return { sent: await node.emit(m.phase, m.count, m.intervalMs, m.burst) };
    case 'delay':
      node.setDelay(m.ms);
      return {};
    case 'seen':
      return { seen: node.seen };
    case 'close':
      await node.close(AbortSignal.timeout(5000));
      await transport?.close();
      return {};
  }
}

process.on('message', (m: WorkerRequest) => {
  answer(m).then(
    (reply) => process.send?.({ req: m.req, ...reply }),
    (error: unknown) => process.send?.({ req: m.req, error: String(error) }),
  );
});
process.on('disconnect', () => {
  void transport?.close();
  process.exit(0);
});
process.send?.({ ready: true });
