/**
 * The storage encoding of postings: blocks of consecutive postings as compact JSON.
 */
import type { Posting } from '../core/state.js';

export const POSTINGS_PER_BLOCK = 10_000;

export interface PostingBlock {
  readonly firstSeq: number;
  readonly lastSeq: number;
  readonly data: string;
}

/** Splits postings (in seq order) into encoded blocks. */
export function encodePostingBlocks(postings: readonly Posting[]): PostingBlock[] {
  const blocks: PostingBlock[] = [];
  for (let from = 0; from < postings.length; from += POSTINGS_PER_BLOCK) {
    const block = postings.slice(from, from + POSTINGS_PER_BLOCK);
    blocks.push({ firstSeq: block[0].seq, lastSeq: block[block.length - 1].seq, data: encodePostings(block) });
  }
  return blocks;
}

/**
 * A block of postings as compact JSON: repeated strings (assets, rules, counterpart accounts, fan
 * account suffixes) in dictionaries, and per posting [seq, eventId, ts, asset#, fan, signed amount,
 * rule#, counterpart#, suffix#?]. The fan's account (`fan:<fan>` + suffix, suffix "" when omitted)
 * is the target of a positive amount and the source of a negative one; a counterpart of the same
 * fan is written `~<suffix>`.
 */
export function encodePostings(block: readonly Posting[]): string {
  const dictionaries = { assets: [] as string[], rules: [] as string[], counterparts: [] as string[], suffixes: [''] as string[] };
  const indexOf = (list: string[], value: string) => {
    let index = list.indexOf(value);
    if (index === -1) index = list.push(value) - 1;
    return index;
  };
  const rows = block.map((p) => {
    const prefix = `fan:${p.fan}`;
    // The fan's side: the target when it is one of the fan's accounts, else the source.
    const incoming = p.target === prefix || p.target.startsWith(`${prefix}:`);
    const own = incoming ? p.target : p.source;
    if (own !== prefix && !own.startsWith(`${prefix}:`)) throw new Error(`invariant: posting ${p.seq} moves no account of fan ${p.fan}`);
    const other = incoming ? p.source : p.target;
    const counterpart = other === prefix || other.startsWith(`${prefix}:`) ? `~${other.slice(prefix.length)}` : other;
    const suffix = indexOf(dictionaries.suffixes, own.slice(prefix.length));
    const row: (string | number)[] = [p.seq, p.eventId, p.ts, indexOf(dictionaries.assets, p.asset), p.fan, incoming ? p.amount : -p.amount, indexOf(dictionaries.rules, p.rule), indexOf(dictionaries.counterparts, counterpart)];
    if (suffix !== 0) row.push(suffix);
    return row;
  });
  return JSON.stringify({ ...dictionaries, rows });
}

export function* decodePostings(text: string, programVersion: string): Generator<Posting> {
  const block = JSON.parse(text) as { assets: string[]; rules: string[]; counterparts: string[]; suffixes?: string[]; rows: [number, string, number, number, string, number, number, number, number?][] };
  const suffixes = block.suffixes ?? [''];
  for (const [seq, eventId, ts, asset, fan, signed, rule, counterpart, suffix = 0] of block.rows) {
    const prefix = `fan:${fan}`;
    const account = prefix + suffixes[suffix];
    const stored = block.counterparts[counterpart];
    const other = stored.startsWith('~') ? prefix + stored.slice(1) : stored;
    yield {
      seq, eventId, ts, asset: block.assets[asset] as Posting['asset'], fan, amount: Math.abs(signed), rule: block.rules[rule], programVersion,
      source: signed > 0 ? other : account,
      target: signed > 0 ? account : other,
    };
  }
}
