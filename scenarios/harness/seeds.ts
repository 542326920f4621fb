/**
 * The five seed reports (`/work/shared/seeds/`, summarised in docs/scenarios.md): each scenario
 * replays a workload from one. Short names, for the runner's legend.
 */
export const SEEDS: Readonly<Record<string, string>> = {
  '000': 'knowledge agent (second-brain service)',
  '001': 'multi-agent API (FastAPI + Postgres)',
  '002': 'agent-pool orchestrator',
  '003': 'validation engine (FUSE-backed)',
  '004': 'agent orchestrator',
};
