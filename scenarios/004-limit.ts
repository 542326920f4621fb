// Seed 004 (agent orchestrator): duplicate detection O(n²) → O(n), and the concurrent
// registration race on a registry record (read-modify-write through the loopback server).
import { KeyedMutex } from '../src/limit/index.js';
import { withLoopLag } from './harness/lag.js';
import { LoopbackServer } from './harness/server.js';
import { sized } from './harness/size.js';
import { round, timed } from './harness/stats.js';
import type { Scenario } from './harness/types.js';
import { timeHeadline } from './harness/headline.js';

interface DiscoveredAgent {
  readonly id: string;
  readonly source: string;
}

const AGENTS = sized(50_000, 20_000);
const DISTINCT = AGENTS / 2;

const duplicates: Scenario = {
  seed: '004',
  name: 'duplicate-detection',
  api: null,
  pattern: 'a Set of seen ids: O(n) instead of O(n²)',
  workload: `${AGENTS / 1000}k discovered agents (${DISTINCT / 1000}k distinct, found by 2 sources): list-membership dedup O(n²) vs Set O(n)`,
  async run(ctx) {
    const agents: DiscoveredAgent[] = Array.from({ length: AGENTS }, (_, i) => ({
      id: `agent-${(i * 7919) % DISTINCT}`,
      source: i < DISTINCT ? 'registry' : 'filesystem',
    }));
    // Naive, as in the report: `if agent not in discovered: discovered.append(agent)`.
    const naive = await withLoopLag(() =>
      timed(() => {
        const discovered: DiscoveredAgent[] = [];
        for (let i = 0; i < agents.length; i++) {
          const a = agents[i]!;
          if (!discovered.some((d) => d.id === a.id)) discovered.push(a);
          if (i % 2000 === 0) ctx.progress(i, AGENTS, 'naive');
        }
        return discovered;
      }),
    );
    ctx.progress(0, 1, 'sluice');
    const fast = await withLoopLag(() =>
      timed(() => {
        const seen = new Set<string>();
        const discovered: DiscoveredAgent[] = [];
        for (const a of agents) {
          if (seen.has(a.id)) continue;
          seen.add(a.id);
          discovered.push(a);
        }
        return discovered;
      }),
    );
    const a = naive.value.value;
    const b = fast.value.value;
    const same = a.length === b.length && a.every((x, i) => x === b[i]);
    const ratio = naive.value.ms / fast.value.ms;
    return {
      naive: { ms: round(naive.value.ms), unique: a.length, loopBlockedMs: round(naive.lag.max) },
      sluice: { ms: round(fast.value.ms, 2), unique: b.length, loopBlockedMs: round(fast.lag.max) },
      headline: timeHeadline(round(naive.value.ms), round(fast.value.ms, 2)),
      invariant: `same ${b.length} unique agents in the same order; event loop blocked ${round(naive.lag.max)} → ${round(fast.lag.max)} ms`,
      ok: same && b.length === DISTINCT && ratio > 10,
    };
  },
};

const REGISTRIES = 4;
const PER_REGISTRY = 15;
const RW_MS = 5;

const registrationRace: Scenario = {
  seed: '004',
  name: 'registration-race',
  api: 'KeyedMutex',
  workload: `${REGISTRIES * PER_REGISTRY} concurrent registrations into ${REGISTRIES} registry records (GET ${RW_MS} ms, modify, PUT ${RW_MS} ms): no lock vs KeyedMutex per record`,
  async run(ctx) {
    const server = new LoopbackServer();
    const keys = (phase: string) => Array.from({ length: REGISTRIES }, (_, k) => `${phase}-registry-${k}`);
    for (const key of [...keys('naive'), ...keys('sluice')]) server.route(`/kv/${key}`, { latencyMs: RW_MS });
    await server.start();
    try {
      const registrations = (phase: string) =>
        keys(phase).flatMap((key) =>
          Array.from({ length: PER_REGISTRY }, (_, i) => ({ key, agent: `${key}/agent-${i}` })),
        );
      const total = REGISTRIES * PER_REGISTRY;
      let done = 0;
      // The read-modify-write of the report: read the record, add the agent, write it back.
      const register = async ({ key, agent }: { key: string; agent: string }, phase: string) => {
        const current = await server.client.get(`/kv/${key}`);
        const agents = current === '' ? [] : (JSON.parse(current) as string[]);
        agents.push(agent);
        await server.client.put(`/kv/${key}`, JSON.stringify(agents));
        ctx.progress(++done, total, phase);
      };
      const count = (phase: string) =>
        keys(phase).reduce((n, key) => n + (JSON.parse(server.kv.get(key) ?? '[]') as string[]).length, 0);

      const naive = await timed(() => Promise.all(registrations('naive').map((r) => register(r, 'naive'))));
      const naiveKept = count('naive');
      server.resetCounters();
      done = 0;

      const locks = new KeyedMutex<string>();
      const locked = await timed(() =>
        Promise.all(registrations('sluice').map((r) => locks.run(r.key, () => register(r, 'sluice')))),
      );
      const kept = count('sluice');
      // Per record, one request at a time at the server; across records, they ran in parallel.
      const perKey = Math.max(...keys('sluice').map((key) => server.routeStats(`/kv/${key}`).maxInFlight));
      const across = server.maxInFlight;
      return {
        naive: { ms: round(naive.ms), registered: naiveKept, lostUpdates: total - naiveKept },
        sluice: { ms: round(locked.ms), registered: kept, lostUpdates: total - kept, maxInFlight: across },
        headline: {
          measure: 'lost',
          of: total,
          naive: total - naiveKept,
          sluice: total - kept,
          better: 'lower',
        },
        invariant: `final count ${kept} == ${total} registrations (naive lost ${total - naiveKept}); in flight per record ${perKey}, across records ${across}; lock keys left ${locks.stats.keys}`,
        ok: kept === total && naiveKept < total && perKey === 1 && across > 1 && locks.stats.keys === 0,
      };
    } finally {
      await server.close();
    }
  },
};

export default [duplicates, registrationRace];
