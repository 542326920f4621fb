import { KeyedMutex } from '../src/limit/index.js';
import { LoopbackServer, round, timed } from './harness/server.js';
import type { Scenario } from './harness/types.js';

interface Agent {
  readonly id: string;
}

const duplicates: Scenario = {
  seed: '004',
  name: 'duplicate-detection',
  workload: '50k discovered agents (25k distinct): nested-loop dedup O(n²) vs Set O(n)',
  async run() {
    const n = 50_000;
    const agents: Agent[] = Array.from({ length: n }, (_, i) => ({ id: `agent-${(i * 7919) % (n / 2)}` }));
    const naive = await timed(async () => {
      const out: Agent[] = [];
      for (const a of agents) if (!out.some((b) => b.id === a.id)) out.push(a);
      return out;
    });
    const fast = await timed(async () => {
      const seen = new Set<string>();
      const out: Agent[] = [];
      for (const a of agents) {
        if (seen.has(a.id)) continue;
        seen.add(a.id);
        out.push(a);
      }
      return out;
    });
    const same =
      naive.value.length === fast.value.length && naive.value.every((a, i) => a.id === fast.value[i]?.id);
    return {
      naive: { ms: round(naive.ms), unique: naive.value.length },
      sluice: { ms: round(fast.ms, 2), unique: fast.value.length },
      ratio: round(naive.ms / fast.ms, 0),
      invariant: `same ${fast.value.length} unique agents in the same order`,
      ok: same && fast.value.length === n / 2 && fast.ms < naive.ms,
    };
  },
};

const registrationRace: Scenario = {
  seed: '004',
  name: 'registration-race',
  workload: '40 concurrent registrations into one registry record (GET, 5 ms, PUT): no lock vs KeyedMutex',
  async run() {
    const server = await new LoopbackServer().start();
    try {
      const n = 40;
      const register = async (key: string, agent: number) => {
        const current = await server.call(`/kv/${key}?ms=5`);
        const list = current === '' ? [] : current.split(',');
        list.push(`a${agent}`);
        await server.call(`/kv/${key}?ms=5`, 'PUT', list.join(','));
      };
      const count = async (key: string) =>
        (await server.call(`/kv/${key}`)).split(',').filter(Boolean).length;
      await Promise.all(Array.from({ length: n }, (_, i) => register('naive', i)));
      const lost = n - (await count('naive'));
      const locks = new KeyedMutex<string>();
      const locked = await timed(() =>
        Promise.all(Array.from({ length: n }, (_, i) => locks.run('locked', () => register('locked', i)))),
      );
      const kept = await count('locked');
      return {
        naive: { registered: n - lost, lostUpdates: lost },
        sluice: { registered: kept, lostUpdates: n - kept, ms: round(locked.ms) },
        ratio: round(lost, 0),
        invariant: `final count ${kept} == ${n} registrations; lock keys left: ${locks.stats.keys}`,
        ok: kept === n && lost > 0 && locks.stats.keys === 0,
      };
    } finally {
      await server.close();
    }
  },
};

export default [duplicates, registrationRace];
