/**
 * Training data: the token stream of a real text and tokenizer (BOS per paragraph), the packing into
 * sequences of T + 1 tokens with a padded tail, the seeded order (every sequence once per epoch, the same
 * for the same seed), resume from a JSON position equal to an uninterrupted run, and the refusals.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readTextFile, splitDocuments } from '../../../main/engine/data/text-file.ts';
import { loadTokenizer } from '../../../main/engine/data/tokenizer.ts';
import { stepsForEpochs, TrainingData, type DataPosition, type TrainBatch } from '../../../main/engine/train/data.ts';
import { STORIES, tempDir } from '../../helpers/fixtures.ts';

const tmp = tempDir('whittle-train-data-');
afterAll(() => tmp.cleanup());

/** A stream whose token i is i: a row's first input tells which sequence it is (k = id / T). */
const counting = (n: number): Int32Array => Int32Array.from({ length: n }, (_, i) => i);

function rows(batch: TrainBatch, T: number): { inputs: number[]; labels: number[] }[] {
  const out = [];
  for (let r = 0; r < batch.inputIds.length / T; r++) {
    out.push({
      inputs: Array.from(batch.inputIds.subarray(r * T, (r + 1) * T), Number),
      labels: Array.from(batch.labels.subarray(r * T, (r + 1) * T), Number),
    });
  }
  return out;
}

function run(data: TrainingData, from: DataPosition, batches: number): { batches: TrainBatch[]; position: DataPosition } {
  const out: TrainBatch[] = [];
  let position = from;
  for (let i = 0; i < batches; i++) {
    const { batch, next } = data.batchAt(position);
    out.push(batch);
    position = next;
  }
  return { batches: out, position };
}

describe('TrainingData from a text file', () => {
  it('tokenizes each paragraph with BOS first and packs the stream into overlapping T + 1 windows', async () => {
    const text = splitDocuments(await readTextFile(STORIES.text)).slice(0, 40).join('\n\n');
    const file = path.join(tmp.dir, 'stories-40.txt');
    await writeFile(file, text, 'utf8');
    const tokenizer = await loadTokenizer(STORIES.tokenizer);
    const expected = splitDocuments(text).flatMap((d) => tokenizer.encode(d, { addBos: true }));
    expect(expected.filter((id) => id === tokenizer.bosId).length).toBe(40);

    const T = 64;
    const data = await TrainingData.load({ textPath: file, tokenizerPath: STORIES.tokenizer, batch: 4, length: T, seed: 1 });
    expect(data.tokens).toBe(expected.length);
    expect(data.sequences).toBe(Math.ceil((expected.length - 1) / T));

    // In text order, sequence k's inputs are stream[kT .. kT+T) and its labels stream[kT+1 .. kT+T].
    const inOrder = [...data.inOrder()].flatMap((b) => rows(b, T));
    expect(inOrder.length).toBe(data.batchesPerEpoch * 4);
    for (let k = 0; k < data.sequences; k++) {
      const { inputs, labels } = inOrder[k];
      const real = Math.min(T, expected.length - 1 - k * T);
      expect(inputs.slice(0, real)).toEqual(expected.slice(k * T, k * T + real));
      expect(labels.slice(0, real)).toEqual(expected.slice(k * T + 1, k * T + real + 1));
      expect(labels.slice(real)).toEqual(new Array(T - real).fill(-1));
    }
    // Rows past the last sequence count nothing.
    for (const row of inOrder.slice(data.sequences)) expect(row.labels.every((l) => l === -1)).toBe(true);
  });

  it('refuses a text too short for one batch, saying how many tokens it has and needs', async () => {
    const file = path.join(tmp.dir, 'short.txt');
    await writeFile(file, 'Once upon a time there was a cat.\n\nThe cat sat.', 'utf8');
    const load = TrainingData.load({ textPath: file, tokenizerPath: STORIES.tokenizer, batch: 2, length: 16, seed: 0 });
    await expect(load).rejects.toMatchObject({ code: 'INVALID_INPUT', message: expect.stringMatching(/^The training text short\.txt has \d+ tokens, but one batch of 2 sequences of 16 tokens needs at least 33/) as unknown });
    const heldOut = TrainingData.load({ textPath: file, tokenizerPath: STORIES.tokenizer, batch: 2, length: 16, seed: 0, purpose: 'held-out' });
    await expect(heldOut).rejects.toThrow(/^The held-out text short\.txt has/);
  });
});

describe('TrainingData order', () => {
  const T = 8;
  const B = 3;
  // 78 tokens → 77 labels → ⌈77 / 8⌉ = 10 sequences (the last one 3 labels short), 3 per batch: epochs end mid-batch.
  const data = TrainingData.fromTokens(counting(78), { batch: B, length: T, seed: 42 });

  it('pads a short last sequence with ignored labels', () => {
    expect(data.sequences).toBe(10);
    expect(data.paddedLabels).toBe(3);
    const last = rows([...data.inOrder()][3], T)[0];
    expect(last.inputs).toEqual([72, 73, 74, 75, 76, 77, 0, 0]);
    expect(last.labels).toEqual([73, 74, 75, 76, 77, -1, -1, -1]);
  });

  it('visits every sequence once per epoch in a seeded order, running over into the next epoch', () => {
    const { batches } = run(data, data.start(), 10); // 30 rows = 3 epochs
    const ids = batches.flatMap((b) => rows(b, T)).map((r) => r.inputs[0] / T);
    for (let e = 0; e < 3; e++) expect([...ids.slice(10 * e, 10 * e + 10)].sort((a, b) => a - b)).toEqual([...Array(10).keys()]);
    expect(ids.slice(0, 10)).not.toEqual([...Array(10).keys()]);  // shuffled
    expect(ids.slice(0, 10)).not.toEqual(ids.slice(10, 20));        // a new order each epoch

    const again = run(TrainingData.fromTokens(counting(78), { batch: B, length: T, seed: 42 }), data.start(), 10).batches;
    expect(again).toEqual(batches);
    const other = run(TrainingData.fromTokens(counting(78), { batch: B, length: T, seed: 43 }), TrainingData.fromTokens(counting(78), { batch: B, length: T, seed: 43 }).start(), 10).batches;
    expect(other).not.toEqual(batches);
  });

  it('resumes from a JSON position exactly where an uninterrupted run goes', () => {
    const straight = run(data, data.start(), 9);
    const first = run(data, data.start(), 4);
    const saved = JSON.parse(JSON.stringify(first.position)) as DataPosition;
    expect(saved).toEqual({ seed: 42, epoch: 1, index: 2, sequences: 10 });
    const fresh = TrainingData.fromTokens(counting(78), { batch: B, length: T, seed: 42 });
    const rest = run(fresh, saved, 5);
    expect([...first.batches, ...rest.batches]).toEqual(straight.batches);
    expect(rest.position).toEqual(straight.position);
  });

  it('refuses a position written for another text', () => {
    const other = TrainingData.fromTokens(counting(200), { batch: B, length: T, seed: 42 });
    expect(() => other.batchAt(data.start())).toThrow(/belongs to a text of 10 sequences, but this text has 25/);
    expect(() => data.batchAt({ ...data.start(), index: 10 })).toThrow(/past the 10 sequences/);
  });

  it('counts the steps of a number of epochs', () => {
    expect(data.stepsForEpochs(1, 1)).toBe(4);
    expect(data.stepsForEpochs(3, 2)).toBe(5);
    expect(stepsForEpochs(0.1, { sequences: 10, batch: 3, accumulate: 1 })).toBe(1);
    expect(() => data.stepsForEpochs(0, 1)).toThrow(/above 0/);
  });

  it('refuses a stream too short for one batch', () => {
    expect(() => TrainingData.fromTokens(counting(24), { batch: B, length: T, seed: 0 })).toThrow(/has 24 tokens, but one batch of 3 sequences of 8 tokens needs at least 25/);
    expect(TrainingData.fromTokens(counting(25), { batch: B, length: T, seed: 0 }).sequences).toBe(3);
  });
});
