/**
 * Whether the rows of one onnxruntime run can influence each other's logits, which decides how
 * evaluation may batch samples (perplexity.ts, agreement.ts).
 *
 * A causal decoder's logits at a real position only see earlier positions of the same row, so right
 * padding and the other rows of a batch change nothing — unless an operator computes a statistic over
 * the whole activation tensor. Dynamic activation quantization does: the scale and zero point of
 *   DynamicQuantizeLinear         (ai.onnx)        one (min, max) over the whole tensor [batch, seq, hidden]
 *   DynamicQuantizeMatMul         (com.microsoft)  the same, fused with the MatMul
 *   MatMulIntegerToFloat          (com.microsoft)  consumes such a per-tensor quantized A
 *   DynamicQuantizeLSTM, QAttention (com.microsoft) quantize their input per tensor as well
 * come from every row of the batch, padding included, so a batch of 16 scores a sample differently from
 * a batch of 1. Such graphs are evaluated one sample per run.
 *
 * MatMulNBits with accuracy_level 4 also quantizes its activations to int8 on the fly, but onnxruntime's
 * MLAS kernel (QuantizeARow_CompInt8, sqnbitgemm) takes one scale per block of BlkLen values of one row
 * of A, so rows stay independent and it batches like a float graph (pinned by
 * tests/integration/evaluate-batch-invariance.test.ts).
 */
import { allNodes } from '../onnx/graph.ts';
import { readModel } from '../onnx/reader.ts';
import type { ModelProto } from '../onnx/proto-types.ts';

/** Operators whose activation quantization spans the whole tensor, i.e. every row of a batch. */
export const ROW_COUPLING_OPS: readonly string[] = [
  'DynamicQuantizeLinear', 'DynamicQuantizeMatMul', 'MatMulIntegerToFloat', 'DynamicQuantizeLSTM', 'QAttention',
];

export interface RowCoupling {
  /** True when samples may share a run (padded to the longest) without changing any sample's logits. */
  independentRows: boolean;
  /** The row-coupling operators found, with their counts (empty when rows are independent). */
  ops: Record<string, number>;
}

export function rowCouplingOf(proto: ModelProto): RowCoupling {
  const ops: Record<string, number> = {};
  for (const { node } of allNodes(proto)) {
    const op = node.opType ?? '';
    if (ROW_COUPLING_OPS.includes(op)) ops[op] = (ops[op] ?? 0) + 1;
  }
  return { independentRows: Object.keys(ops).length === 0, ops };
}

/** Reads the graph (not the weights) of `modelPath`. */
export async function rowCouplingOfFile(modelPath: string): Promise<RowCoupling> {
  return rowCouplingOf((await readModel(modelPath)).proto);
}

/** One line for a result's details: how samples were batched and why. */
export function describeBatching(coupling: RowCoupling, batchSize: number): string {
  if (coupling.independentRows) return `up to ${batchSize} samples per run, right-padded (rows cannot influence each other)`;
  const ops = Object.entries(coupling.ops).map(([op, n]) => `${op} ×${n}`).join(', ');
  return `one sample per run: the graph quantizes activations over the whole tensor (${ops}), so other rows and padding would change the result`;
}
