// Entry point: `npx tsx examples/fastify-service/main.ts` (PORT, HOST, DATABASE_URL,
// UPSTREAM_URL and LOG_LEVEL from the environment). Without DATABASE_URL it runs on an
// in-memory PGlite; without UPSTREAM_URL it starts its own stand-in upstream.
import { migrate, openDb } from './db.js';
import { buildService, serve } from './server.js';
import { startFakeUpstream } from './upstream.js';

const env = process.env;
const db = await openDb(env['DATABASE_URL']);
await migrate(db);
const fake = env['UPSTREAM_URL'] ? undefined : await startFakeUpstream();
const service = buildService({
  db,
  upstreamUrl: env['UPSTREAM_URL'] || (fake?.url as string),
  logger: { level: env['LOG_LEVEL'] ?? 'info' },
});
const { url, closed } = await serve(service, {
  port: Number(env['PORT'] ?? 3000),
  host: env['HOST'] ?? '127.0.0.1',
});
console.log(JSON.stringify({ listening: url }));

const code = await closed;
await fake?.close();
console.log(JSON.stringify({ stopped: code, stats: service.stats() }));
process.exit(code);
