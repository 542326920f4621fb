/** What a scenario measured: naive vs sluice, the ratio, and the invariant it checked. */
export interface ScenarioResult {
  readonly naive: Record<string, number | string>;
  readonly sluice: Record<string, number | string>;
  /** naive ÷ sluice of the headline measure (e.g. time), > 1 means sluice is better. */
  readonly ratio: number;
  /** The invariant, stated with the measured numbers. */
  readonly invariant: string;
  /** Computed from measurements, never hard-coded. */
  readonly ok: boolean;
}

export interface Scenario {
  readonly seed: string;
  readonly name: string;
  /** The workload, in one line. */
  readonly workload: string;
  run(): Promise<ScenarioResult>;
}
