import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseEventFile } from '../src/app/event-file.js';
import { tempDir } from './store-helpers.js';

/** Every line the parser saw, accepted or rejected, as [line number, text], in file order. */
function linesSeen(path: string): [number, string][] {
  const seen: [number, string][] = [];
  for (const chunk of parseEventFile(path, 1000)) {
    for (const entry of chunk.entries) seen.push([entry.line as number, entry.body]);
    for (const reject of chunk.rejects) seen.push([reject.line, reject.raw]);
  }
  return seen.sort((a, b) => a[0] - b[0]);
}

/** The non-blank lines of a text with their numbers, as a plain split numbers them. */
function expectedLines(text: string): [number, string][] {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines.flatMap((line, index): [number, string][] => (line.trim() === '' ? [] : [[index + 1, line]]));
}

describe('reading an event file', () => {
  it('keeps every line and its number whole across read blocks, with multi-byte characters at the block edges', () => {
    const dir = tempDir();
    const path = join(dir, 'wide.ndjson');
    // About 10 MB: several 4 MB read blocks, with 2-, 3- and 4-byte characters at every offset.
    const pieces = ['é', '粉丝', '😀', 'a'];
    const lines: string[] = [];
    for (let index = 0; index < 60_000; index++) {
      const note = pieces[index % 4].repeat(1 + (index % 97));
      lines.push(
        index % 5 === 0
          ? JSON.stringify(`not an event ${note}`)
          : JSON.stringify({ id: `e${index}`, type: 'comment', fan: `f${index % 50}`, ts: 1_790_000_000_000 + index, props: { contentId: `c-${note}`.slice(0, 60) } }),
      );
      if (index % 1000 === 0) lines.push('');
    }
    const text = `${lines.join('\n')}\n`;
    writeFileSync(path, text);
    expect(Buffer.byteLength(text)).toBeGreaterThan(8 << 20);
    expect(linesSeen(path)).toEqual(expectedLines(text));
  });

  it('reads a line longer than a read block, a last line without a newline, and drops a leading byte order mark', () => {
    const dir = tempDir();
    const path = join(dir, 'long.ndjson');
    const long = JSON.stringify({ id: 'long', type: 'comment', fan: 'f', ts: 1_790_000_000_000, props: { contentId: 'x'.repeat(9 << 20) } });
    const last = JSON.stringify({ id: 'last', type: 'like', fan: 'f', ts: 1_790_000_000_001, props: { contentId: 'c' } });
    writeFileSync(path, `\uFEFF{"id":"first","type":"like","fan":"f","ts":1790000000000,"props":{"contentId":"c"}}\n${long}\n\n${last}`);
    const seen = linesSeen(path);
    expect(seen.map(([line]) => line)).toEqual([1, 2, 4]);
    expect(seen[0][1].startsWith('{"id":"first"')).toBe(true);
    expect(seen[1][1].length).toBe(long.length);
    expect(seen[2][1]).toBe(last);
  });

  it('numbers blank lines in a file of a few bytes like in any other, and turns invalid UTF-8 into U+FFFD', () => {
    const dir = tempDir();
    const tiny = join(dir, 'tiny.ndjson');
    writeFileSync(tiny, '\n\n');
    const chunks = [...parseEventFile(tiny, 10)];
    expect(chunks.at(-1)?.lines).toBe(2);
    const invalid = join(dir, 'invalid.ndjson');
    writeFileSync(invalid, Buffer.concat([Buffer.from('"a'), Buffer.from([0xff, 0xfe]), Buffer.from('b"\n')]));
    expect(linesSeen(invalid)).toEqual([[1, '"a\uFFFD\uFFFDb"']]);
  });
});
