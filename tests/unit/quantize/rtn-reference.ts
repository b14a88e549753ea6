/**
 * A plain round-to-nearest blockwise quantizer in TypeScript, independent of the native kernels, used by
 * the tests to check layouts against onnxruntime and to cross-check the native quantizer's contract.
 *
 * W [K, N] row-major; per column n and block b of `blockSize` rows (the last block may be partial):
 *   asymmetric: lo = min(0, min x), hi = max(0, max x), scale = (hi − lo) / (2^bits − 1),
 *               zp = clamp(round(−lo / scale)), q = clamp(round(x / scale) + zp)
 *   symmetric:  scale = max|x| / 2^(bits−1) (sign of the extreme kept), zp = 2^(bits−1), q = clamp(round(x / scale) + zp)
 * Output in the MatMulNBits layout (see main/engine/quantize/layout.ts).
 */
import type { BlockwiseQuantized } from '../../../main/engine/quantize/layout.ts';

export function quantizeReference(w: Float32Array, K: number, N: number, bits: number, blockSize: number, symmetric: boolean): BlockwiseQuantized & { sqError: number } {
  const kBlocks = Math.ceil(K / blockSize);
  const blob = (blockSize * bits) / 8;
  const maxq = (1 << bits) - 1;
  const perByte = 8 / bits;
  const packed = new Uint8Array(N * kBlocks * blob);
  const scales = new Float32Array(N * kBlocks);
  const zpRow = Math.ceil((kBlocks * bits) / 8);
  const zeroPoints = symmetric ? null : new Uint8Array(N * zpRow);
  let sqError = 0;
  for (let n = 0; n < N; n++) {
    for (let b = 0; b < kBlocks; b++) {
      const k0 = b * blockSize, k1 = Math.min(K, k0 + blockSize);
      let scale: number, zp: number;
      if (symmetric) {
        let amax = 0;
        for (let k = k0; k < k1; k++) amax = Math.max(amax, Math.abs(w[k * N + n]));
        scale = Math.fround(amax / (1 << (bits - 1)));
        zp = 1 << (bits - 1);
      } else {
        let lo = 0, hi = 0;
        for (let k = k0; k < k1; k++) { lo = Math.min(lo, w[k * N + n]); hi = Math.max(hi, w[k * N + n]); }
        scale = Math.fround((hi - lo) / maxq);
        zp = scale === 0 ? 0 : Math.min(maxq, Math.max(0, Math.round(-lo / scale)));
      }
      scales[n * kBlocks + b] = scale;
      if (zeroPoints) zeroPoints[n * zpRow + Math.floor(b / perByte)] |= zp << ((b % perByte) * bits);
      const inv = scale === 0 ? 0 : 1 / scale;
      for (let k = k0; k < k1; k++) {
        const x = w[k * N + n];
        const q = Math.min(maxq, Math.max(0, Math.round(x * inv) + zp));
        const kk = k - k0;
        packed[n * kBlocks * blob + b * blob + Math.floor(kk / perByte)] |= q << ((kk % perByte) * bits);
        const d = (q - zp) * scale - x;
        sqError += d * d;
      }
      // padding rows of a partial last block hold the zero point (dequantize to 0)
      for (let kk = k1 - k0; kk < blockSize; kk++) packed[n * kBlocks * blob + b * blob + Math.floor(kk / perByte)] |= zp << ((kk % perByte) * bits);
    }
  }
  return { packed, scales, zeroPoints, k: K, n: N, bits, blockSize, kBlocks, sqError };
}

/** W' [K, N] = dequant(q), from the MatMulNBits layout. */
export function dequantizeReference(q: BlockwiseQuantized): Float32Array {
  const { k: K, n: N, bits, blockSize, kBlocks } = q;
  const blob = (blockSize * bits) / 8;
  const perByte = 8 / bits;
  const mask = (1 << bits) - 1;
  const zpRow = Math.ceil((kBlocks * bits) / 8);
  const out = new Float32Array(K * N);
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) {
      const b = Math.floor(k / blockSize), kk = k % blockSize;
      const code = (q.packed[n * kBlocks * blob + b * blob + Math.floor(kk / perByte)] >> ((kk % perByte) * bits)) & mask;
      const zp = q.zeroPoints ? (q.zeroPoints[n * zpRow + Math.floor(b / perByte)] >> ((b % perByte) * bits)) & mask : 1 << (bits - 1);
      out[k * N + n] = (code - zp) * q.scales[n * kBlocks + b];
    }
  }
  return out;
}
