/** The warmup + cosine learning-rate schedule: its end points, shape, and refusals. */
import { describe, expect, it } from 'vitest';
import { learningRateAt } from '../../../main/engine/train/schedule.ts';

const options = { lr: 1e-3, warmupSteps: 10, totalSteps: 110, minLrRatio: 0.1 };

describe('learningRateAt', () => {
  it('warms up linearly from lr / warmup to lr', () => {
    expect(learningRateAt(0, options)).toBeCloseTo(1e-4, 15);
    expect(learningRateAt(4, options)).toBeCloseTo(5e-4, 15);
    expect(learningRateAt(9, options)).toBeCloseTo(1e-3, 15);
    for (let s = 1; s < 10; s++) expect(learningRateAt(s, options) - learningRateAt(s - 1, options)).toBeCloseTo(1e-4, 15);
  });

  it('decays along a cosine from lr to lr · minLrRatio at totalSteps', () => {
    expect(learningRateAt(10, options)).toBeCloseTo(1e-3, 15);
    // Half way through the decay the rate is half way between the peak and the floor.
    expect(learningRateAt(60, options)).toBeCloseTo((1e-3 + 1e-4) / 2, 15);
    expect(learningRateAt(110, options)).toBeCloseTo(1e-4, 15);
    expect(learningRateAt(500, options)).toBeCloseTo(1e-4, 15);
    // A quarter of the way: lr_min + (lr − lr_min)·½(1 + cos(π/4)).
    expect(learningRateAt(35, options)).toBeCloseTo(1e-4 + 9e-4 * 0.5 * (1 + Math.SQRT1_2), 15);
    for (let s = 11; s <= 110; s++) expect(learningRateAt(s, options)).toBeLessThan(learningRateAt(s - 1, options));
  });

  it('without warmup starts at the peak; with a zero floor ends at 0', () => {
    const plain = { lr: 2e-4, warmupSteps: 0, totalSteps: 50, minLrRatio: 0 };
    expect(learningRateAt(0, plain)).toBe(2e-4);
    expect(learningRateAt(50, plain)).toBeCloseTo(0, 18);
  });

  it('with a warmup as long as the run, reaches the peak at the last step', () => {
    const allWarmup = { lr: 1e-3, warmupSteps: 20, totalSteps: 20, minLrRatio: 0.1 };
    expect(learningRateAt(19, allWarmup)).toBeCloseTo(1e-3, 15);
    expect(learningRateAt(20, allWarmup)).toBeCloseTo(1e-4, 15);
  });

  it('refuses steps and settings that are out of range', () => {
    expect(() => learningRateAt(-1, options)).toThrow(/whole number ≥ 0/);
    expect(() => learningRateAt(1.5, options)).toThrow(/whole number ≥ 0/);
    expect(() => learningRateAt(0, { ...options, lr: 0 })).toThrow(/above 0/);
    expect(() => learningRateAt(0, { ...options, minLrRatio: 1.5 })).toThrow(/\[0, 1\]/);
    expect(() => learningRateAt(0, { ...options, totalSteps: 0 })).toThrow(/total number of steps/);
  });
});
