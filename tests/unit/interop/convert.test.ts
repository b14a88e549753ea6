// Weight conversion for the importer: every source dtype into float32 and float16, with and without the
// transpose, against element-by-element references (halfToFloat / floatToHalf / bfloat16 bits).
import { describe, expect, it } from 'vitest';
import { convertTensor } from '../../../main/engine/interop/convert.ts';
import { float32ToBfloat16 } from '../../../main/engine/interop/safetensors-writer.ts';
import { floatToHalf, halfToFloat } from '../../../main/engine/onnx/tensor-data.ts';

const ROWS = 37, COLS = 70; // not multiples of the 32 × 32 tiles
const values = Float32Array.from({ length: ROWS * COLS }, (_, i) => Math.sin(i * 0.37) * 10 ** ((i % 9) - 4) * (i % 5 === 0 ? -1 : 1));
const bytes = (a: Float32Array | Uint16Array): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

const sources = {
  F32: { raw: bytes(values), value: (i: number) => values[i] },
  F16: (() => { const h = Uint16Array.from(values, (v) => floatToHalf(v)); return { raw: bytes(h), value: (i: number) => halfToFloat(h[i]) }; })(),
  BF16: (() => { const b = float32ToBfloat16(values); return { raw: bytes(b), value: (i: number) => new Float32Array(new Uint32Array([b[i] << 16]).buffer)[0] }; })(),
} as const;

describe('convertTensor', () => {
  for (const [src, s] of Object.entries(sources) as [keyof typeof sources, (typeof sources)[keyof typeof sources]][]) {
    for (const transpose of [false, true]) {
      it(`${src} → fp32 and fp16${transpose ? ', transposed' : ''}`, () => {
        const at = (r: number, c: number): number => (transpose ? s.value(c * COLS + r) : s.value(r * COLS + c));
        const outRows = transpose ? COLS : ROWS, outCols = transpose ? ROWS : COLS;
        const f32 = new Float32Array(convertTensor(s.raw, src, 'fp32', ROWS, COLS, transpose).slice().buffer);
        const f16 = new Uint16Array(convertTensor(s.raw, src, 'fp16', ROWS, COLS, transpose).slice().buffer);
        for (let r = 0; r < outRows; r++) {
          for (let c = 0; c < outCols; c++) {
            expect(f32[r * outCols + c]).toBe(Math.fround(at(r, c)));
            expect(f16[r * outCols + c]).toBe(floatToHalf(at(r, c)));
          }
        }
      });
    }
  }

  it('a tensor converted in runs of rows joins to the tensor converted whole', () => {
    const whole = convertTensor(sources.BF16.raw, 'BF16', 'fp32', ROWS, COLS, false);
    const parts = [0, 10, 25, ROWS].slice(1).map((end, i, a) => {
      const start = i === 0 ? 0 : a[i - 1];
      return convertTensor(sources.BF16.raw.subarray(start * COLS * 2, end * COLS * 2), 'BF16', 'fp32', end - start, COLS, false);
    });
    expect(Buffer.concat(parts).equals(Buffer.from(whole))).toBe(true);
  });
});
