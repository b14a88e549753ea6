/**
 * Training data names the sequences of its batches (for signals stored per sequence, like a teacher's
 * top-k cache): every row of batchAt and inOrder says which sequence it holds, batchOfSequences(ids) gives
 * the same rows, and the fingerprint tells texts and sequence lengths apart.
 */
import { describe, expect, it } from 'vitest';
import { TrainingData } from '../../../main/engine/train/data.ts';

/** Token i is i: a row's first input tells which sequence it is (k = id / T). */
const counting = (n: number): Int32Array => Int32Array.from({ length: n }, (_, i) => i);

describe('sequences of a batch', () => {
  const T = 4, B = 3;
  const data = TrainingData.fromTokens(counting(30), { batch: B, length: T, seed: 9 });

  it('batchAt and inOrder name the sequence of every row, and batchOfSequences rebuilds the same rows', () => {
    let position = data.start();
    for (let i = 0; i < 7; i++) {
      const { batch, next } = data.batchAt(position);
      position = next;
      expect(batch.source).toBe(data.fingerprint);
      for (let row = 0; row < B; row++) expect(Number(batch.inputIds[row * T]) / T).toBe(batch.sequences![row]);
      const again = data.batchOfSequences(batch.sequences!);
      expect(again.inputIds).toEqual(batch.inputIds);
      expect(again.labels).toEqual(batch.labels);
    }
    const order = [...data.inOrder()].flatMap((b) => Array.from(b.sequences!));
    // S = ⌈29 / 4⌉ = 8 sequences in text order, the last batch's missing row −1.
    expect(order).toEqual([0, 1, 2, 3, 4, 5, 6, 7, -1]);
  });

  it('an empty row has labels −1 only; ids outside the text are refused', () => {
    const b = data.batchOfSequences([7]);
    expect(Array.from(b.sequences!)).toEqual([7, -1, -1]);
    expect(Array.from(b.labels.subarray(T)).every((v) => v === -1n)).toBe(true);
    expect(() => data.batchOfSequences([8])).toThrow(/not one of the text's 8 sequences/);
    expect(() => data.batchOfSequences([0, 1, 2, 3])).toThrow(/holds 3 sequences/);
  });

  it('the fingerprint follows the tokens and the sequence length, not the batch or seed', () => {
    const same = TrainingData.fromTokens(counting(30), { batch: 2, length: T, seed: 1 });
    const otherLength = TrainingData.fromTokens(counting(30), { batch: B, length: 5, seed: 9 });
    const otherText = TrainingData.fromTokens(counting(31), { batch: B, length: T, seed: 9 });
    expect(same.fingerprint).toBe(data.fingerprint);
    expect(otherLength.fingerprint).not.toBe(data.fingerprint);
    expect(otherText.fingerprint).not.toBe(data.fingerprint);
  });
});
