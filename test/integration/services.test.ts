import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { Redis } from 'ioredis';
import { serviceUrl } from '../helpers/services.js';

test('Postgres is reachable through DATABASE_URL', async (t) => {
  const url = serviceUrl(t, 'DATABASE_URL');
  if (url === undefined) return;
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: number }>('SELECT 1 + 1 AS n');
    assert.equal(rows[0]?.n, 2);
  } finally {
    await client.end();
  }
});

test('Redis is reachable through REDIS_URL', async (t) => {
  const url = serviceUrl(t, 'REDIS_URL');
  if (url === undefined) return;
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  try {
    const key = `sluice:test:${process.pid}:${Date.now()}`;
    await redis.set(key, 'ok', 'PX', 5000);
    assert.equal(await redis.get(key), 'ok');
    await redis.del(key);
  } finally {
    redis.disconnect();
  }
});
