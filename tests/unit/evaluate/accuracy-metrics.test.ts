/**
 * Accuracy, per-class precision / recall / F1, macro-F1 and the confusion matrix against an example
 * worked by hand.
 */
import { describe, expect, it } from 'vitest';
import { classificationMetrics } from '../../../main/engine/evaluate/accuracy.ts';

//            index: 0  1  2  3  4  5  6  7  8  9
const labels =      [0, 0, 0, 1, 1, 2, 2, 2, 2, 0];
const predicted =   [0, 1, 0, 1, 2, 2, 2, 0, 2, 0];

describe('classification metrics', () => {
  it('match the hand-worked example', () => {
    const m = classificationMetrics(labels, predicted, 3);
    // Rows are the true class, columns the prediction.
    expect(m.confusion).toEqual([[3, 1, 0], [0, 1, 1], [1, 0, 3]]);
    expect(m.accuracy).toBeCloseTo(7 / 10, 12);
    // class 0: tp 3, predicted 0 four times (3 + 1 from class 2), support 4 → P = R = F1 = 0.75
    // class 1: tp 1, predicted 1 twice, support 2 → 0.5; class 2: tp 3, predicted 4 times, support 4 → 0.75
    const expected = [[0.75, 0.75, 0.75, 4], [0.5, 0.5, 0.5, 2], [0.75, 0.75, 0.75, 4]];
    m.perClass.forEach((c, i) => {
      expect(c.precision, `precision ${i}`).toBeCloseTo(expected[i][0], 12);
      expect(c.recall, `recall ${i}`).toBeCloseTo(expected[i][1], 12);
      expect(c.f1, `f1 ${i}`).toBeCloseTo(expected[i][2], 12);
      expect(c.support).toBe(expected[i][3]);
    });
    expect(m.macroF1).toBeCloseTo((0.75 + 0.5 + 0.75) / 3, 12);
  });

  it('precision and recall differ: F1 is their harmonic mean', () => {
    // class 1 predicted 3 times, right once (P = 1/3); 2 true, found once (R = 1/2) → F1 = 2·(1/6)/(5/6) = 0.4
    const m = classificationMetrics([0, 0, 0, 1, 1], [1, 1, 0, 1, 0], 2);
    expect(m.perClass[1].precision).toBeCloseTo(1 / 3, 12);
    expect(m.perClass[1].recall).toBeCloseTo(1 / 2, 12);
    expect(m.perClass[1].f1).toBeCloseTo(0.4, 12);
    // class 0: P = 1/2, R = 1/3 → F1 0.4 as well
    expect(m.perClass[0].f1).toBeCloseTo(0.4, 12);
    expect(m.accuracy).toBeCloseTo(2 / 5, 12);
  });

  it('a class never seen nor predicted counts 0 in the macro average (zero_division = 0)', () => {
    const m = classificationMetrics(labels, predicted, 4);
    expect(m.perClass[3]).toEqual({ precision: 0, recall: 0, f1: 0, support: 0 });
    expect(m.macroF1).toBeCloseTo(2 / 4, 12);
  });
});
