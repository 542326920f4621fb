/** Measured numbers of one side (naive or sluice), e.g. `{ ms: 131.2, maxInFlight: 3 }`. */
export type Measures = Record<string, number | string>;

/** What a scenario measured: naive vs sluice, the ratio, and the invariant it checked. */
export interface ScenarioResult {
  readonly naive: Measures;
  readonly sluice: Measures;
  /** naive ÷ sluice of the headline measure (time, or what was kept); > 1 means sluice is better. */
  readonly ratio: number;
  /** The invariant, stated with the measured numbers. */
  readonly invariant: string;
  /** Computed from measurements, never hard-coded. */
  readonly ok: boolean;
}

/** What the runner hands to a scenario. */
export interface ScenarioContext {
  /** Reports how far the scenario is (`done` of `total`, in the phase `note`); shown on a TTY. Cheap. */
  progress(done: number, total: number, note?: string): void;
  /** Aborted when the scenario overruns the runner's time limit. */
  readonly signal: AbortSignal;
}

/**
 * One workload from a seed report, replayed naive and with sluice. A file
 * `scenarios/<seed>-<topic>.ts` exports one as default (or an array of them); `npm start` finds it.
 */
export interface Scenario {
  /** The seed report it replays: `'000'`…`'004'`. */
  readonly seed: string;
  /** Unique, kebab-case: what `npm start -- <name>` matches. */
  readonly name: string;
  /** The workload, in one line. */
  readonly workload: string;
  run(ctx: ScenarioContext): Promise<ScenarioResult>;
}
