/** Measured numbers of one side (naive or sluice), e.g. `{ ms: 131.2, maxInFlight: 3 }`. */
export type Measures = Record<string, number | string>;

/**
 * The one comparison a scenario leads with, naive vs sluice, from which the runner writes the
 * headline text: `100× fewer loads (100 → 1)`, `3.3× faster (133.8 → 39.2 ms)`,
 * `0 of 60 lost vs 53`, `retained heap 180.3 → 0 MiB`. Both numbers are measured.
 */
export interface Headline {
  /**
   * What is compared, as a plural noun: `'loads'`, `'queries'`, `'lost'`. `'time'` (in ms) reads
   * as faster/slower.
   */
  readonly measure: string;
  readonly naive: number;
  readonly sluice: number;
  /** Which way is better for this measure. */
  readonly better: 'lower' | 'higher';
  /** The unit of `naive` and `sluice` (`'ms'`, `'MiB'`, `'µs'`); none for counts. */
  readonly unit?: string;
  /** The total the counts are out of: renders `<sluice> of <of> <measure> vs <naive>`, no ratio. */
  readonly of?: number;
  /**
   * `'change'` renders `<measure> <naive> → <sluice> <unit>` with no ratio: for a measure whose
   * quotient means nothing (a heap reading at the GC noise floor). Default `'ratio'`.
   */
  readonly form?: 'ratio' | 'change';
}

/** What a scenario measured: naive vs sluice, the headline comparison, and the invariant it checked. */
export interface ScenarioResult {
  readonly naive: Measures;
  readonly sluice: Measures;
  /** The comparison to lead with; the runner derives the ratio and the text from it. */
  readonly headline?: Headline;
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
  /** The seed report it replays: `'000'`…`'004'` (see `SEEDS` in harness/seeds.ts). */
  readonly seed: string;
  /** Unique, kebab-case: what `npm start -- <name>` matches. */
  readonly name: string;
  /** The workload, in one line. */
  readonly workload: string;
  /**
   * The sluice API the fix relies on, e.g. `'Cache.getOrLoad'`; `null` when the fix is a pattern
   * that needs no sluice API (then `pattern` says what it is, and the runner says so).
   */
  readonly api: string | null;
  /** With `api: null`, the fix in a few words, e.g. `'a Set: O(n) instead of O(n²)'`. */
  readonly pattern?: string;
  run(ctx: ScenarioContext): Promise<ScenarioResult>;
}
