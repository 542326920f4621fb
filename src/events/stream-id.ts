import { InvalidInputError } from '../errors.js';
import * as v from '../internal/validate.js';

/**
 * Stream ids (`'<ms>-<seq>'`, compared numerically by `ms`, then `seq`), parsed into two safe
 * integers. Internal to `sluice/events`: the transports and the bus share it.
 */
export interface StreamId {
  readonly ms: number;
  readonly seq: number;
}

const ID = /^(\d{1,16})(?:-(\d{1,16}))?$/;

/**
 * Parses a cursor: `'<ms>-<seq>'` or `'<ms>'` (`seq` 0). Returns an {@link InvalidInputError}
 * for anything else (so a promise-returning caller can reject with it).
 */
export function parseStreamId(name: string, id: unknown): StreamId | InvalidInputError {
  const match = typeof id === 'string' ? ID.exec(id) : null;
  if (match !== null) {
    const ms = Number(match[1]);
    const seq = match[2] === undefined ? 0 : Number(match[2]);
    if (Number.isSafeInteger(ms) && Number.isSafeInteger(seq)) return { ms, seq };
  }
  return v.invalidInput(name, "a stream id ('<ms>-<seq>' or '<ms>', e.g. '0-0')", id);
}

/** Negative when `a` is before `b`, 0 when equal, positive after. */
export function compareStreamIds(a: StreamId, b: StreamId): number {
  return a.ms - b.ms || a.seq - b.seq;
}

/** The canonical text of an id. */
export function formatStreamId(id: StreamId): string {
  return `${id.ms}-${id.seq}`;
}
