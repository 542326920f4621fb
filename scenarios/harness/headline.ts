import type { Headline } from './types.js';

/** A number for display: integers stay; 1 decimal from 10, none from 1000, else 2–3. */
export function num(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  if (Number.isInteger(n)) return String(n);
  const abs = Math.abs(n);
  const digits = abs >= 1000 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3;
  return String(Number(n.toFixed(digits)));
}

/** A ratio for display: `100×`, `14×`, `3.3×`. */
function times(r: number): string {
  return `${r >= 20 ? Math.round(r) : Number(r.toFixed(1))}×`;
}

/**
 * How many times better sluice is on the headline measure (above 1: better, below 1: worse);
 * `null` when there is no meaningful quotient: the `of` and `change` forms, a zero, or no headline.
 */
export function headlineRatio(h: Headline | undefined): number | null {
  const r = rawRatio(h);
  return r === null ? null : Number(r.toFixed(2));
}

function rawRatio(h: Headline | undefined): number | null {
  if (h === undefined || h.of !== undefined || h.form === 'change') return null;
  const [top, bottom] = h.better === 'lower' ? [h.naive, h.sluice] : [h.sluice, h.naive];
  const r = top / bottom;
  return Number.isFinite(r) && r > 0 ? r : null;
}

/**
 * The headline as text, its measure and direction named: `100× fewer loads (100 → 1)`,
 * `3.3× faster (133.8 → 39.2 ms)`, `0 of 60 lost vs 53`, `retained heap 180.3 → 0 MiB`;
 * `''` without a headline.
 */
export function headlineText(h: Headline | undefined): string {
  if (h === undefined) return '';
  const unit = h.unit === undefined ? '' : ` ${h.unit}`;
  if (h.of !== undefined) return `${num(h.sluice)} of ${num(h.of)} ${h.measure} vs ${num(h.naive)}`;
  const change = `${num(h.naive)} → ${num(h.sluice)}${unit}`;
  const r = rawRatio(h);
  if (r === null) return `${h.measure} ${change}`;
  const better = r >= 1;
  const factor = times(better ? r : 1 / r);
  let phrase: string;
  if (h.measure === 'time') phrase = better ? 'faster' : 'slower';
  else {
    // "fewer loads", "lower p99 lookup", "more concurrency", "higher hit ratio".
    const lowerWord = h.unit === undefined ? 'fewer' : 'lower';
    const higherWord = h.unit === undefined ? 'more' : 'higher';
    const goesDown = (h.better === 'lower') === better;
    phrase = `${goesDown ? lowerWord : higherWord} ${h.measure}`;
  }
  return `${factor} ${phrase} (${change})`;
}

/** The headline of a scenario measured in wall time: lower is better, in ms. */
export function timeHeadline(naiveMs: number, sluiceMs: number): Headline {
  return { measure: 'time', unit: 'ms', naive: naiveMs, sluice: sluiceMs, better: 'lower' };
}
