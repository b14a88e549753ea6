/**
 * Bytes a weight-only quantization will produce, from shapes alone (for the wizard, before running).
 *
 * Per quantized weight [K, N] with kBlocks = ceil(K / blockSize), scale width s bytes (4 for fp32
 * models, 2 for fp16) and b bits:
 *   MatMulNBits: codes N·kBlocks·blockSize·b/8 (K padded to whole blocks) + scales N·kBlocks·s
 *                + zero points N·ceil(kBlocks·b/8) when asymmetric
 *   QDQ:         codes ceil(K·N·b/8) (no padding) + scales kBlocks·N·s + zero points ceil(kBlocks·N·b/8)
 * Each new tensor of 1 KiB or more goes to external data at a 4 KiB-aligned offset, so its size is
 * rounded up to 4 KiB (what matters for small models; negligible for large ones). Padding of the
 * tensors copied through unchanged is not re-estimated.
 */
import type { ModelInspection, QuantizableWeight } from '../../../preload/contract.ts';
import type { QuantizeRtnStep } from '../../../preload/recipe.ts';
import { EMBEDDING_REASON, stepBlocker } from '../rewrite/eligibility.ts';

export interface WeightEstimate {
  name: string;
  op: string;
  shape: number[];
  dtype: string;
  status: 'quantized' | 'skipped';
  reason?: string;
  bytesBefore: number;
  bytesAfter: number;
}

export interface SizeEstimate {
  bytesBefore: number;
  bytesAfter: number;
  perWeight: WeightEstimate[];
}

const FLOAT_BYTES: Record<string, number> = { float32: 4, float16: 2, bfloat16: 2, float64: 8 };

/** Bytes of one [K, N] weight after quantization (see the header for the formulas). */
export function quantizedWeightBytes(k: number, n: number, dtype: string, step: Pick<QuantizeRtnStep, 'bits' | 'blockSize' | 'symmetric' | 'format'>): number {
  return quantizedTensorBytes(k, n, dtype, step).reduce((a, b) => a + b, 0);
}

/** Sizes of the new tensors of one weight: codes, scales[, zero points]. */
export function quantizedTensorBytes(k: number, n: number, dtype: string, step: Pick<QuantizeRtnStep, 'bits' | 'blockSize' | 'symmetric' | 'format'>): number[] {
  const kBlocks = Math.ceil(k / step.blockSize);
  const scaleBytes = dtype === 'float16' ? 2 : 4;
  const sizes = step.format === 'qdq'
    ? [Math.ceil((k * n * step.bits) / 8), kBlocks * n * scaleBytes, step.symmetric ? 0 : Math.ceil((kBlocks * n * step.bits) / 8)]
    : [(n * kBlocks * step.blockSize * step.bits) / 8, n * kBlocks * scaleBytes, step.symmetric ? 0 : n * Math.ceil((kBlocks * step.bits) / 8)];
  return sizes.filter((b) => b > 0);
}

const EXTERNAL_THRESHOLD = 1024, ALIGNMENT = 4096;
const onDisk = (bytes: number): number => (bytes >= EXTERNAL_THRESHOLD ? Math.ceil(bytes / ALIGNMENT) * ALIGNMENT : bytes);

/**
 * Why a weight stays in float under this step: the inspection's reason (the same decision the rewrite
 * makes, rewrite/eligibility.ts), then the step's own (keep patterns, K below one block: stepBlocker).
 * Hand-made inspections without K get the dtype/rank checks here.
 */
function skipReason(w: QuantizableWeight, step: QuantizeRtnStep, keep: RegExp[]): string | undefined {
  if (w.skipReason) return w.skipReason;
  if (w.op === 'Gather') return EMBEDDING_REASON;
  if (w.k === undefined) {
    if (w.dtype !== 'float32' && w.dtype !== 'float16') return `weight type ${w.dtype} is not supported`;
    if (w.shape.length !== 2) return `${w.shape.length}-D weight (batched MatMul); only 2-D weights are quantized`;
  }
  return stepBlocker({ name: w.name, k: w.k ?? w.shape[0] }, { blockSize: step.blockSize, keep }) ?? undefined;
}

/** Size before and after, from an inspection (K and N from the inspection, Gemm transB included). */
export function estimateQuantizedSize(inspection: ModelInspection, step: QuantizeRtnStep): SizeEstimate {
  const keep = step.keep.map((p) => new RegExp(p));
  const perWeight: WeightEstimate[] = [];
  let saved = 0;
  const seen = new Set<string>();
  for (const w of inspection.quantizable) {
    if (seen.has(w.name)) continue;
    seen.add(w.name);
    const elements = w.shape.reduce((a, b) => a * b, 1);
    const before = elements * (FLOAT_BYTES[w.dtype] ?? 0);
    const reason = skipReason(w, step, keep);
    if (reason) {
      perWeight.push({ name: w.name, op: w.op, shape: w.shape, dtype: w.dtype, status: 'skipped', reason, bytesBefore: before, bytesAfter: before });
      continue;
    }
    const after = quantizedTensorBytes(w.k ?? w.shape[0], w.n ?? w.shape[1], w.dtype, step).reduce((a, b) => a + onDisk(b), 0);
    saved += before - after;
    perWeight.push({ name: w.name, op: w.op, shape: w.shape, dtype: w.dtype, status: 'quantized', bytesBefore: before, bytesAfter: after });
  }
  return { bytesBefore: inspection.bytesOnDisk, bytesAfter: Math.max(0, inspection.bytesOnDisk - saved), perWeight };
}
