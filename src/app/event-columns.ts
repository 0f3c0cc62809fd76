/**
 * Validated events packed as columns for another thread: typed arrays (handed over, not copied),
 * the ids and fans as one text with end offsets, and the props as one JSON array. Rebuilding the
 * events from it costs the receiving thread about a third of parsing and validating the lines
 * again, which is the point: the thread that runs the engine only runs the engine.
 */
import { CHANNELS, EVENT_TYPE_NAMES, type Channel, type EventType, type FanEvent } from '../core/events.js';

export interface EventColumns {
  readonly count: number;
  /** Every id, then every fan that is not null, one after another. */
  readonly text: string;
  /** Where each id ends in `text`. */
  readonly idEnds: Uint32Array;
  /** Where each fan ends in `text`, after the ids; -1 for an event without a fan. */
  readonly fanEnds: Int32Array;
  readonly ts: Float64Array;
  readonly amountMinor: Float64Array;
  readonly seqs: Float64Array;
  /** Index in EVENT_TYPE_NAMES. */
  readonly types: Uint8Array;
  /** Index in CHANNELS, NO_CHANNEL for null. */
  readonly channels: Uint8Array;
  /** The props objects as one JSON array. */
  readonly props: string;
}

const NO_CHANNEL = 255;
const TYPE_INDEX = new Map<string, number>(EVENT_TYPE_NAMES.map((name, index) => [name, index]));
const CHANNEL_INDEX = new Map<string, number>(CHANNELS.map((name, index) => [name, index]));

/** Packs events (with the log seq of each, or 0 when it has none yet). */
export function encodeEvents(events: readonly FanEvent[], seqs: ArrayLike<number> | null = null): EventColumns {
  const count = events.length;
  const idEnds = new Uint32Array(count);
  const fanEnds = new Int32Array(count);
  const ts = new Float64Array(count);
  const amountMinor = new Float64Array(count);
  const seqColumn = new Float64Array(count);
  const types = new Uint8Array(count);
  const channels = new Uint8Array(count);
  const props: string[] = new Array(count);
  const parts: string[] = new Array(count);
  const fans: string[] = [];
  let idsLength = 0;
  let fansLength = 0;
  for (let i = 0; i < count; i++) {
    const event = events[i];
    parts[i] = event.id;
    idsLength += event.id.length;
    idEnds[i] = idsLength;
    if (event.fan === null) fanEnds[i] = -1;
    else {
      fans.push(event.fan);
      fansLength += event.fan.length;
      fanEnds[i] = fansLength;
    }
    ts[i] = event.ts;
    amountMinor[i] = event.amountMinor;
    if (seqs) seqColumn[i] = seqs[i];
    types[i] = TYPE_INDEX.get(event.type) as number;
    channels[i] = event.channel === null ? NO_CHANNEL : (CHANNEL_INDEX.get(event.channel) as number);
    props[i] = JSON.stringify(event.props);
  }
  return { count, text: parts.join('') + fans.join(''), idEnds, fanEnds, ts, amountMinor, seqs: seqColumn, types, channels, props: `[${props.join(',')}]` };
}

/** The buffers to hand over with a postMessage of the columns. */
export function columnBuffers(columns: EventColumns): ArrayBuffer[] {
  return [columns.idEnds, columns.fanEnds, columns.ts, columns.amountMinor, columns.seqs, columns.types, columns.channels].map((array) => array.buffer as ArrayBuffer);
}

/**
 * Unpacks the events, in the shape validateEvent gives. `fanIds` keeps one string per fan across
 * calls: the world keeps a fan's id for good, and a piece of a larger text would keep that text.
 */
export function decodeEvents(columns: EventColumns, fanIds: Map<string, string>): FanEvent[] {
  const { count, text, idEnds, fanEnds, ts, amountMinor, types, channels } = columns;
  const props = JSON.parse(columns.props) as Record<string, unknown>[];
  const events: FanEvent[] = new Array(count);
  const idsLength = count === 0 ? 0 : idEnds[count - 1];
  let idStart = 0;
  let fanStart = idsLength;
  for (let i = 0; i < count; i++) {
    const id = text.slice(idStart, idEnds[i]);
    idStart = idEnds[i];
    let fan: string | null = null;
    if (fanEnds[i] !== -1) {
      const fanEnd = idsLength + fanEnds[i];
      const piece = text.slice(fanStart, fanEnd);
      fanStart = fanEnd;
      fan = fanIds.get(piece) ?? null;
      if (fan === null) {
        // A copy of its own (JSON.parse makes a new flat string).
        fan = JSON.parse(JSON.stringify(piece)) as string;
        fanIds.set(fan, fan);
      }
    }
    const channel = channels[i];
    events[i] = {
      id,
      type: EVENT_TYPE_NAMES[types[i]] as EventType,
      fan,
      ts: ts[i],
      channel: channel === NO_CHANNEL ? null : (CHANNELS[channel] as Channel),
      props: props[i],
      amountMinor: amountMinor[i],
    };
  }
  return events;
}

/**
 * Events per packed piece: small enough that a piece's texts stay below V8's large-object size
 * (they are short-lived and are then collected young, instead of piling up until a full
 * collection as large objects do), large enough that a piece costs little to send.
 */
export const EVENTS_PER_PIECE = 1024;

/** Packs events in pieces of EVENTS_PER_PIECE. */
export function encodePieces(events: readonly FanEvent[], seqs: readonly number[] | null = null): EventColumns[] {
  const pieces: EventColumns[] = [];
  for (let from = 0; from < events.length; from += EVENTS_PER_PIECE) {
    pieces.push(encodeEvents(events.slice(from, from + EVENTS_PER_PIECE), seqs ? seqs.slice(from, from + EVENTS_PER_PIECE) : null));
  }
  return pieces;
}

/** The buffers of every piece. */
export function pieceBuffers(pieces: readonly EventColumns[]): ArrayBuffer[] {
  return pieces.flatMap(columnBuffers);
}

/** Unpacks pieces into one list of events. */
export function decodePieces(pieces: readonly EventColumns[], fanIds: Map<string, string>): FanEvent[] {
  const events: FanEvent[] = [];
  for (const piece of pieces) for (const event of decodeEvents(piece, fanIds)) events.push(event);
  return events;
}

/** The seqs of every piece, in order. */
export function seqsOfPieces(pieces: readonly EventColumns[]): number[] {
  const seqs: number[] = [];
  for (const piece of pieces) for (let i = 0; i < piece.count; i++) seqs.push(piece.seqs[i]);
  return seqs;
}
