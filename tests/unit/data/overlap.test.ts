// Evaluation text inside the training text: the paragraphs both hold, found before any training starts.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MIN_PARAGRAPH_CHARS, overlapWarning, paragraphHash, textOverlap } from '../../../main/engine/data/overlap.ts';
import { readTextFile, splitDocuments } from '../../../main/engine/data/text-file.ts';
import { STORIES, tempDir } from '../../helpers/fixtures.ts';

const scratch = tempDir('whittle-overlap-');
afterAll(() => scratch.cleanup());
const write = (name: string, text: string): string => {
  const p = path.join(scratch.dir, name);
  writeFileSync(p, text);
  return p;
};

describe('text overlap', () => {
  it('finds no overlap between the first and the last paragraphs of the sample, and no warning', async () => {
    const docs = splitDocuments(await readTextFile(STORIES.text));
    const train = write('train.txt', docs.slice(400).join('\n\n'));
    const held = write('eval.txt', docs.slice(0, 400).join('\n\n'));
    const o = await textOverlap(train, held);
    expect(o.evalParagraphs).toBeGreaterThan(300);
    expect(o.shared).toBe(0);
    expect(overlapWarning(o, train, held)).toBeNull();
  });

  it('counts the held-out paragraphs the training text also holds, whitespace aside, and says how many in the warning', async () => {
    const docs = splitDocuments(await readTextFile(STORIES.text)).filter((d) => d.length >= MIN_PARAGRAPH_CHARS);
    const held = write('eval2.txt', docs.slice(0, 20).join('\n\n'));
    // Five of the twenty, one of them with its lines re-wrapped, among other paragraphs.
    const rewrapped = docs[3].replace(/ /g, '\n');
    const train = write('train2.txt', [...docs.slice(100, 150), docs[0], docs[1], docs[2], rewrapped, docs[19]].join('\r\n\r\n'));
    const o = await textOverlap(train, held);
    expect(o).toMatchObject({ evalParagraphs: 20, shared: 5, fraction: 0.25, sameFile: false });
    expect(o.examples).toHaveLength(3);
    expect(o.examples[0]).toBe(docs[0].replace(/\s+/g, ' ').slice(0, docs[0].length > 80 ? 79 : undefined) + (docs[0].length > 80 ? '…' : ''));
    const w = overlapWarning(o, train, held);
    expect(w).toContain('5 of the 20 paragraphs');
    expect(w).toContain('25.0 %');
  });

  it('leaves short paragraphs out, and names the same file as a warning even before reading it', async () => {
    const a = write('short.txt', 'The end.\n\nThe end.\n\nOnce upon a time there was a cat who liked to sleep in the sun.');
    const b = write('short2.txt', 'The end.\n\nA different story entirely, about a dog who ran very fast.');
    const o = await textOverlap(a, b);
    expect(o).toMatchObject({ evalParagraphs: 1, shared: 0 });
    const same = await textOverlap(a, a);
    expect(same.sameFile).toBe(true);
    expect(same.shared).toBe(1);
    expect(overlapWarning(same, a, a)).toMatch(/is the training text/);
  });

  it('hashes distinct paragraphs apart', () => {
    const docs = ['a'.repeat(40), `${'a'.repeat(39)}b`, `b${'a'.repeat(39)}`];
    expect(new Set(docs.map(paragraphHash)).size).toBe(3);
    expect(Number.isSafeInteger(paragraphHash(docs[0]))).toBe(true);
  });
});
