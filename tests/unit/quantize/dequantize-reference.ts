/**
 * A plain dequantizer for the MatMulNBits layout in TypeScript, independent of the native kernels: the
 * tests read quantized weights back from written files and check them against it.
 *   w[k, n] = (q[n, k] − zp[n, k / blockSize]) · scale[n, k / blockSize], zp = 2^(bits−1) when absent
 */
import type { BlockwiseQuantized } from '../../../main/engine/quantize/layout.ts';

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
