/** The arithmetic of INT8 static quantization: rounding, activation scale / zero point, symmetric per-channel weights. */
import { describe, expect, it } from 'vitest';
import { activationParams, quantizeInt8Symmetric, roundHalfEven } from '../../../main/engine/quantize/int8-static.ts';

describe('int8 math', () => {
  it('round half to even, activation parameters, symmetric per-channel weights', () => {
    expect([0.5, 1.5, 2.5, -0.5, -1.5, 2.4, -2.6].map(roundHalfEven)).toEqual([0, 2, 2, -0, -2, 2, -3]);
    expect(activationParams(-1, 3, 'uint8')).toEqual({ scale: 4 / 255, zeroPoint: 64 });
    expect(activationParams(0.5, 2, 'uint8')).toEqual({ scale: 2 / 255, zeroPoint: 0 }); // widened to contain 0
    expect(activationParams(-2, 1, 'int8')).toEqual({ scale: 2 / 127, zeroPoint: 0 });
    // [2, 3] weight, channels = columns (axis 1)
    const w = Float32Array.of(1, -0.5, 0.25, -2, 0.5, 0);
    const q = quantizeInt8Symmetric(w, 2, 3, 1);
    expect(Array.from(q.scales)).toEqual([2 / 127, 0.5 / 127, 0.25 / 127].map(Math.fround));
    expect(Array.from(q.q)).toEqual([64, -127, 127, -127, 127, 0]);
    const rows = quantizeInt8Symmetric(w, 2, 3, 0);
    expect(Array.from(rows.scales)).toEqual([1 / 127, 2 / 127].map(Math.fround));
    expect(Array.from(rows.q)).toEqual([127, -64, 32, -127, 32, 0]);
  });
});

describe('edge cases', () => {
  it('an all-zero channel gets scale 1 and codes 0; NaN weights and ranges are refused', () => {
    const q = quantizeInt8Symmetric(Float32Array.of(0, 1, 0, -1), 2, 2, 1);
    expect(Array.from(q.scales)).toEqual([1, Math.fround(1 / 127)]);
    expect(Array.from(q.q)).toEqual([0, 127, 0, -127]);
    expect(q.sqError).toBeLessThan(1e-12); // the float32 scale times 127 is 1 up to rounding
    expect(() => quantizeInt8Symmetric(Float32Array.of(NaN, 1), 1, 2, null)).toThrow(/NaN or infinite/);
    expect(() => activationParams(NaN, 1, 'uint8')).toThrow(/not finite/);
    expect(activationParams(0, 0, 'uint8')).toEqual({ scale: 1, zeroPoint: 0 });
  });

  it('a per-tensor weight has one scale for all', () => {
    const q = quantizeInt8Symmetric(Float32Array.of(0.5, -1, 0.25, 2), 2, 2, null);
    expect(Array.from(q.scales)).toEqual([Math.fround(2 / 127)]);
    expect(Array.from(q.q)).toEqual([32, -64, 16, 127]);
  });
});
