/**
 * Labelled data: the SST-2 and SpamAssassin fixtures, CSV with quoted fields, column detection and
 * naming, class order, the seeded split, padded encoder batches, and every bad input refused with
 * INVALID_INPUT and a message that says what to do.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeBatch, encoderTokens, readLabelled, splitLabelled, type LabelledData } from '../../../main/engine/data/labelled.ts';
import { loadTokenizer } from '../../../main/engine/data/tokenizer.ts';
import { isWhittleError } from '../../../main/engine/errors.ts';
import { fixture, tempDir } from '../../helpers/fixtures.ts';

const SST2 = fixture('text', 'sst2-glue-dev.tsv');
const SPAM = fixture('text', 'spam-assassin-1000.jsonl');
const BERT_TOKENIZER = fixture('tokenizers', 'all-MiniLM-L6-v2', 'tokenizer.json');

const tmp = tempDir('whittle-labelled-');
afterAll(() => tmp.cleanup());

function file(name: string, text: string): string {
  const p = path.join(tmp.dir, name);
  writeFileSync(p, text);
  return p;
}

async function refusal(work: Promise<unknown>): Promise<{ code: string; message: string; details?: Record<string, unknown> }> {
  try {
    await work;
  } catch (e) {
    if (isWhittleError(e)) return { code: e.code, message: e.message, details: e.details };
    throw e;
  }
  throw new Error('expected a refusal');
}

describe('reading labelled data', () => {
  it('reads SST-2 dev (TSV): 872 sentences, columns found, integer labels in numeric order', async () => {
    const d = await readLabelled(SST2);
    expect(d.format).toBe('tsv');
    expect([d.textColumn, d.labelColumn]).toEqual(['sentence', 'label']);
    expect(d.examples.length).toBe(872);
    expect(d.classes).toEqual(['0', '1']);
    expect(d.examples[0]).toEqual({ text: "it 's a charming and often affecting journey .", label: 1, line: 2 });
    expect(d.examples[1].label).toBe(0);
    const positives = d.examples.filter((e) => e.label === 1).length;
    expect(positives).toBeGreaterThan(400);
    expect(positives).toBeLessThan(472);
  });

  it('reads SpamAssassin (JSONL): string labels in order of first appearance, extra fields ignored', async () => {
    const d = await readLabelled(SPAM);
    expect(d.format).toBe('jsonl');
    expect([d.textColumn, d.labelColumn]).toEqual(['text', 'label']);
    expect(d.examples.length).toBe(1000);
    expect(d.classes).toEqual(['ham', 'spam']);
    expect(d.examples.filter((e) => e.label === 1).length).toBe(500);
    expect(d.examples[999].line).toBe(1000);
  });

  it('reads CSV with quoted fields (delimiters, escaped quotes and newlines inside), named columns, and numeric class order', async () => {
    const p = file('q.csv', 'id,review,stars\r\n1,"good, really ""good""",10\n2,"two\nlines",2\n3,plain,1\n');
    const d = await readLabelled(p, { textColumn: 'review', labelColumn: 'stars' });
    expect(d.examples.map((e) => e.text)).toEqual(['good, really "good"', 'two\nlines', 'plain']);
    expect(d.classes).toEqual(['1', '2', '10']);
    expect(d.examples.map((e) => e.label)).toEqual([2, 1, 0]);
    expect(d.examples.map((e) => e.line)).toEqual([2, 3, 5]);
  });

  it('maps a held-out file with the training classes', async () => {
    const train = await readLabelled(file('a.jsonl', '{"text":"x","label":"pos"}\n{"text":"y","label":"neg"}\n'));
    const heldOut = await readLabelled(file('b.jsonl', '{"text":"z","label":"neg"}\n'), { classes: train.classes });
    expect(train.classes).toEqual(['pos', 'neg']);
    expect(heldOut.examples[0].label).toBe(1);
    const bad = await refusal(readLabelled(file('c.jsonl', '{"text":"z","label":"meh"}\n'), { classes: train.classes }));
    expect(bad.code).toBe('INVALID_INPUT');
    expect(bad.message).toMatch(/line 1 .*'meh'.*not one of the training classes \(pos, neg\)/);
  });

  it('splits with a seed: disjoint, complete, the same for the same seed and different for another', async () => {
    const d = await readLabelled(SST2);
    const a = splitLabelled(d, 0.25, 7);
    const b = splitLabelled(d, 0.25, 7);
    const c = splitLabelled(d, 0.25, 8);
    expect(a.test.examples.length).toBe(218);
    expect(a.train.examples.length).toBe(654);
    const lines = (x: LabelledData): number[] => x.examples.map((e) => e.line);
    const trainLines = new Set(lines(a.train));
    expect(lines(a.test).some((l) => trainLines.has(l))).toBe(false);
    expect(new Set([...lines(a.train), ...lines(a.test)]).size).toBe(872);
    expect(lines(b.test)).toEqual(lines(a.test));
    expect(lines(c.test)).not.toEqual(lines(a.test));
    expect(() => splitLabelled(d, 872, 1)).toThrow(/leaves no examples/);
  });

  it('encodes padded batches: [CLS] tokens [SEP], cut to the length with [SEP] kept, mask 0 on padding', async () => {
    const tok = await loadTokenizer(BERT_TOKENIZER);
    const t = encoderTokens(tok);
    expect(t).toEqual({ cls: 101, sep: 102, pad: 0 });
    const ex = [{ text: 'a charming journey', label: 1, line: 2 }, { text: 'bleak', label: 0, line: 3 }];
    const longest = encodeBatch(ex, tok, t, 'longest');
    const body = tok.encode('a charming journey', { addBos: false });
    expect(longest.length).toBe(body.length + 2);
    expect(Array.from(longest.inputIds.subarray(0, longest.length), Number)).toEqual([101, ...body, 102]);
    const second = Array.from(longest.attentionMask.subarray(longest.length), Number);
    expect(second.filter((m) => m === 1).length).toBe(tok.encode('bleak', { addBos: false }).length + 2);
    expect(Array.from(longest.labels, Number)).toEqual([1, 0]);
    const cut = encodeBatch(ex, tok, t, 3, 4);
    expect(Array.from(cut.inputIds.subarray(0, 3), Number)).toEqual([101, body[0], 102]);
    expect(cut.batch).toBe(4);
    expect(cut.rows).toBe(2);
    expect(Array.from(cut.attentionMask.subarray(6), Number)).toEqual(new Array<number>(6).fill(0));
  });
});

describe('bad labelled data is refused before work', () => {
  it('a column that is not there, listing the columns found', async () => {
    const r = await refusal(readLabelled(SST2, { labelColumn: 'sentiment' }));
    expect(r.code).toBe('INVALID_INPUT');
    expect(r.message).toContain("no column 'sentiment'");
    expect(r.message).toContain("'sentence', 'label'");
    const undetected = await refusal(readLabelled(file('cols.tsv', 'body\ttag\nx\t1\n')));
    expect(undetected.message).toMatch(/no text column .*its columns are 'body', 'tag'/);
  });

  it('one class only', async () => {
    const r = await refusal(readLabelled(file('one.tsv', 'text\tlabel\ngood\t1\nfine\t1\n')));
    expect(r.code).toBe('INVALID_INPUT');
    expect(r.message).toMatch(/Every row of one.tsv has the label '1'.*at least two classes/);
  });

  it('an empty file, and a header without rows', async () => {
    for (const name of ['empty.tsv', 'empty.jsonl', 'empty.csv']) {
      const r = await refusal(readLabelled(file(name, '')));
      expect(r.code, name).toBe('INVALID_INPUT');
      expect(r.message, name).toContain(`${name} is empty`);
    }
    expect((await refusal(readLabelled(file('header.tsv', 'text\tlabel\n')))).message).toContain('no rows');
  });

  it('a row without a label, by its line', async () => {
    const tsv = await refusal(readLabelled(file('gap.tsv', 'text\tlabel\ngood\t1\nbad\t\nfine\t0\n')));
    expect(tsv.code).toBe('INVALID_INPUT');
    expect(tsv.message).toMatch(/line 3 of gap.tsv has no label in column 'label'/);
    expect(tsv.details?.line).toBe(3);
    const jsonl = await refusal(readLabelled(file('gap.jsonl', '{"text":"a","label":0}\n{"text":"b"}\n')));
    expect(jsonl.message).toMatch(/line 2 of gap.jsonl has no label/);
  });

  it('broken rows: JSON that is not an object, an unclosed quote, an unknown extension', async () => {
    expect((await refusal(readLabelled(file('bad.jsonl', '{"text":"a","label":0}\nnot json\n')))).message).toMatch(/Line 2 of bad.jsonl is not JSON/);
    expect((await refusal(readLabelled(file('open.csv', 'text,label\n"never closed,1\n')))).message).toMatch(/opened on line 2 is never closed/);
    expect((await refusal(readLabelled(file('data.xlsx', 'x')))).message).toMatch(/name it .tsv, .csv or .jsonl/);
  });
});
