import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { RedisStreamTransport, ioredisClient, nodeRedisClient } from '../../src/events/redis/index.js';
import { eventTransportContract, type TransportFixture } from '../contract/event-transport.suite.js';
import { serviceUrl } from '../helpers/services.js';

const url = process.env['REDIS_URL'];
let streams = 0;
const uniqueStream = (driver: string): string =>
  `sluice:test:events:${process.pid}:${Date.now()}:${driver}:${++streams}`;

/** Two transports ("processes") on one fresh stream, each on its own connections. */
async function redisFixture(
  redisUrl: string,
  driver: 'ioredis' | 'redis',
  maxLength: number,
): Promise<TransportFixture> {
  const stream = uniqueStream(driver);
  const a = await RedisStreamTransport.connect(redisUrl, { driver, stream, maxLength });
  const b = await RedisStreamTransport.connect(redisUrl, { driver, stream, maxLength });
  return {
    a,
    b,
    close: async () => {
      await Promise.all([a.close(), b.close()]);
      const inspect = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
      await inspect.del(stream);
      inspect.disconnect();
    },
  };
}

if (url === undefined || url === '') {
  test('RedisStreamTransport: EventTransport contract against REDIS_URL', (t) => {
    serviceUrl(t, 'REDIS_URL');
  });
} else {
  // MAXLEN ~ trims whole stream nodes (stream-node-max-entries, 100 by default).
  for (const driver of ['ioredis', 'redis'] as const) {
    eventTransportContract(
      `RedisStreamTransport (${driver}): EventTransport contract`,
      ({ maxLength }) => redisFixture(url, driver, maxLength),
      { trimSlack: 100 },
    );
  }
}

/** A raw client and a fresh stream key for the tests below; `done` deletes the key. */
async function raw(redisUrl: string): Promise<{ redis: Redis; stream: string; done: () => Promise<void> }> {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  const stream = uniqueStream('raw');
  return {
    redis,
    stream,
    done: async () => {
      await redis.del(stream);
      redis.disconnect();
    },
  };
}

test('RedisStreamTransport: an entry that cannot be decoded is returned with error set; the cursor moves past it', async (t) => {
  const redisUrl = serviceUrl(t, 'REDIS_URL');
  if (redisUrl === undefined) return;
  const { redis, stream, done } = await raw(redisUrl);
  const transport = await RedisStreamTransport.connect(redisUrl, { driver: 'ioredis', stream });
  try {
    await transport.createGroup('g', '0');
    const good = await transport.append([{ type: 'ok', payload: { a: 1 } }]);
    const notJson = (await redis.xadd(stream, '*', 't', 'bad', 'd', '{nope')) as string;
    const noFields = (await redis.xadd(stream, '*', 'other', 'x')) as string;
    const last = await transport.append([{ type: 'ok', payload: 2 }]);
    const entries = await transport.read('0-0', { count: 10, blockMs: 0 });
    assert.deepEqual(
      entries.map((e) => e.id),
      [good[0], notJson, noFields, last[0]],
    );
    assert.equal(entries[0]?.error, undefined);
    assert.equal(entries[1]?.type, 'bad');
    assert.equal(entries[1]?.payload, undefined);
    assert.equal((entries[1]?.error as { code?: string }).code, 'SLUICE_INVALID_INPUT');
    assert.ok((entries[1]?.error as Error).cause instanceof SyntaxError);
    assert.equal(entries[2]?.type, '');
    assert.ok(entries[2]?.error instanceof Error);
    const grouped = await transport.readGroup('g', 'c', { count: 10, blockMs: 0 });
    assert.deepEqual(
      grouped.map((e) => e.error === undefined),
      [true, false, false, true],
    );
    await transport.ack(
      'g',
      grouped.map((e) => e.id),
    );
  } finally {
    await transport.close();
    await done();
  }
});

test('RedisStreamTransport: your own clients (ioredisClient, nodeRedisClient) stay open; a blockConnection of yours is shared in turn', async (t) => {
  const redisUrl = serviceUrl(t, 'REDIS_URL');
  if (redisUrl === undefined) return;
  const { stream, done } = await raw(redisUrl);
  const io = new Redis(redisUrl);
  const ioBlocking = new Redis(redisUrl);
  const node = await createClient({ url: redisUrl }).connect();
  try {
    const writer = new RedisStreamTransport({ client: nodeRedisClient(node), stream, maxLength: 100 });
    const reader = new RedisStreamTransport({
      client: ioredisClient(io),
      blockConnection: ioredisClient(ioBlocking),
      stream,
    });
    const cursor = await reader.lastId();
    // One blocking connection: the second read waits for the first to return.
    const first = reader.read(cursor, { count: 10, blockMs: 3000 });
    const second = reader.read(cursor, { count: 10, blockMs: 3000 });
    const ids = await writer.append([
      { type: 'a', payload: 1 },
      { type: 'b', payload: undefined },
    ]);
    assert.deepEqual(
      (await first).map((e) => e.id),
      ids,
    );
    const fromSecond = await second;
    assert.deepEqual(
      fromSecond.map((e) => e.id),
      ids,
    );
    assert.equal(fromSecond[1]?.payload, undefined, 'undefined round-trips');
    // An aborted read releases your connection when its reply comes (after blockMs).
    const controller = new AbortController();
    const aborted = reader.read(ids[1] as string, { count: 1, blockMs: 200, signal: controller.signal });
    controller.abort(new Error('stop'));
    await assert.rejects(aborted, /stop/);
    const started = performance.now();
    assert.deepEqual(await reader.read(ids[1] as string, { count: 1, blockMs: 100 }), []);
    assert.ok(performance.now() - started >= 150, 'waited for the aborted read to return the connection');
    await Promise.all([writer.close(), reader.close()]);
    assert.equal(await io.ping(), 'PONG', 'your client is still open');
    assert.equal(await ioBlocking.ping(), 'PONG');
    assert.equal(await node.ping(), 'PONG');
  } finally {
    io.disconnect();
    ioBlocking.disconnect();
    await node.close();
    await done();
  }
});

test('RedisStreamTransport: a batch is appended atomically (its ids contiguous); codec errors reject the append', async (t) => {
  const redisUrl = serviceUrl(t, 'REDIS_URL');
  if (redisUrl === undefined) return;
  const { stream, done } = await raw(redisUrl);
  const a = await RedisStreamTransport.connect(redisUrl, { driver: 'ioredis', stream });
  const b = await RedisStreamTransport.connect(redisUrl, { driver: 'redis', stream });
  try {
    const batch = (tag: string) => Array.from({ length: 10 }, (_, i) => ({ type: tag, payload: i }));
    const batches = await Promise.all(
      Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? a : b).append(batch(`b${i}`))),
    );
    const order = (await a.read('0-0', { count: 1000, blockMs: 0 })).map((e) => e.id);
    for (const ids of batches) {
      const at = order.indexOf(ids[0] as string);
      assert.deepEqual(order.slice(at, at + 10), ids, 'contiguous');
    }
    await assert.rejects(a.append([{ type: 'x', payload: 10n }]), TypeError);
    const broken = new RedisStreamTransport({
      client: ioredisClient(new Redis(redisUrl, { lazyConnect: true })),
      stream,
      codec: { encode: () => 42 as unknown as string, decode: (s) => s },
    });
    await assert.rejects(broken.append([{ type: 'x', payload: 1 }]), { code: 'SLUICE_INVALID_INPUT' });
    assert.throws(() => new RedisStreamTransport({ client: {} as never, stream }), TypeError);
    assert.throws(
      () => new RedisStreamTransport({ client: ioredisClient(new Redis({ lazyConnect: true })), stream: '' }),
      RangeError,
    );
  } finally {
    await Promise.all([a.close(), b.close()]);
    await done();
  }
});
