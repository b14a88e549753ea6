import { expect } from 'vitest';

/** The largest |a[i] − b[i]| of two arrays of the same length (the test fails when the lengths differ). */
export function maxDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
