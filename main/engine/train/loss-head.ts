/**
 * Loss heads: nodes appended after the logits that compute the loss of a micro-batch and, fused in the
 * same pass, its gradient with respect to the logits — the seed the autodiff starts from. Heads report
 * the SUM of token losses and the number of counted tokens; the loop divides by the tokens of the whole
 * optimizer step, so the loss does not depend on how a step is split into micro-batches or padded.
 *
 * Distillation's heads (teacher logits as an extra input) plug in at the same seam.
 */
import { DataType, isFloatDtype } from '../onnx/dtype.ts';
import { intAttr, intsAttr, makeNode } from '../onnx/graph.ts';
import type { ModelProto, NodeProto, TensorProto, ValueInfoProto } from '../onnx/proto-types.ts';
import { makeTensor } from '../onnx/tensor-data.ts';
import type { MetaMap, TensorMeta } from './autodiff/types.ts';
import { int64Constant, valueInfo } from './graph-io.ts';

/** Where head nodes go, with the meta of what they create. */
export class NodeSink {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  private next = 0;
  readonly meta: MetaMap;
  readonly opset: number;
  private readonly prefix: string;

  constructor(meta: MetaMap, opset: number, prefix: string) {
    this.meta = meta;
    this.opset = opset;
    this.prefix = prefix;
  }

  /** Appends a node with one output and returns the output's name. */
  op(opType: string, inputs: string[], out: TensorMeta, attributes = [] as ReturnType<typeof intAttr>[]): string {
    const name = `${this.prefix}${opType}_${this.next++}`;
    this.nodes.push(makeNode({ opType, inputs, outputs: [name], name, attributes }));
    this.meta.set(name, out);
    return name;
  }

  int64(shape: number[], values: number[]): string {
    const name = `${this.prefix}const_${this.next++}`;
    this.initializers.push(int64Constant(name, shape, values));
    this.meta.set(name, { dtype: DataType.int64, shape });
    return name;
  }

  float(value: number, dtype: number): string {
    const name = `${this.prefix}const_${this.next++}`;
    const data = dtype === DataType.float64 ? Float64Array.of(value) : Float32Array.of(value);
    this.initializers.push(makeTensor(name, dtype, [], new Uint8Array(data.buffer)));
    this.meta.set(name, { dtype, shape: [] });
    return name;
  }

  /** A reduction over `axes` in the form the opset wants (axes as an input from opset 18; ReduceSum from 13). */
  reduce(op: 'ReduceSum' | 'ReduceMax' | 'ReduceLogSumExp' | 'ReduceMean', x: string, axes: number[] | null, keepdims: boolean, out: TensorMeta): string {
    const keep = intAttr('keepdims', keepdims ? 1 : 0);
    if (axes === null) return this.op(op, [x], out, [keep]);
    if (op === 'ReduceSum' || this.opset >= 18) return this.op(op, [x, this.int64([axes.length], axes)], out, [keep]);
    return this.op(op, [x], out, [keep, intsAttr('axes', axes)]);
  }
}

export interface LossOutputs {
  /** Σ token losses of the micro-batch (scalar). */
  lossSum: string;
  /** Tokens counted (scalar, float). */
  tokenCount: string;
  /** ∂ lossSum / ∂ logits, same shape as the logits. */
  gradLogits: string;
  /** Further gradients the head computes itself (e.g. hidden-state matching): ∂ lossSum / ∂ tensor. */
  seeds?: { tensor: string; grad: string }[];
  /** Scalar sums reported per step beside the loss (e.g. 'kl', 'ce', 'agree'), each over the counted tokens. */
  parts?: Record<string, string>;
}

export interface LossHead {
  /** Graph inputs the head adds (labels, teacher signal), fed per micro-batch by the objective. */
  readonly inputs: ValueInfoProto[];
  build(sink: NodeSink, logits: string): LossOutputs;
}

/** The name of the labels input: next-token ids [B, T], −1 where a position is not counted (padding). */
export const LABELS = 'labels';

/**
 * Next-token cross-entropy with padding ignored, for logits z [B, T, V] and labels y [B, T]:
 *   loss = −Σ_valid log softmax(z)_y            ∂z = (softmax(z) − onehot(y)) on valid rows, 0 elsewhere
 * With N = B·T rows, the [N, V] work is one LogSoftmax, one Exp, one Mul by the row mask and one
 * ScatterElements (onnxruntime's LogSoftmax is a fused row kernel; a ReduceLogSumExp + broadcast Sub is
 * several times slower on a 32,000-word vocabulary).
 */
export function crossEntropyHead(batch: number, length: number, vocab: number): LossHead {
  const labelsMeta: TensorMeta = { dtype: DataType.int64, shape: [batch, length] };
  return {
    inputs: [valueInfo(LABELS, labelsMeta)],
    build(sink, logits) {
      sink.meta.set(LABELS, labelsMeta);
      const dtype = sink.meta.get(logits)?.dtype ?? DataType.float32;
      if (!isFloatDtype(dtype)) throw new Error(`logits are not float (${dtype})`);
      const n = batch * length;
      const rows: TensorMeta = { dtype, shape: [n, vocab] };
      const col: TensorMeta = { dtype, shape: [n, 1] };
      const scalar: TensorMeta = { dtype, shape: [] };
      const intCol: TensorMeta = { dtype: DataType.int64, shape: [n, 1] };

      const z = sink.op('Reshape', [logits, sink.int64([2], [n, vocab])], rows);
      const y = sink.op('Reshape', [LABELS, sink.int64([2], [n, 1])], intCol);
      const valid = sink.op('Greater', [y, sink.int64([], [-1])], { dtype: DataType.bool, shape: [n, 1] });
      const validF = sink.op('Cast', [valid], col, [intAttr('to', dtype)]);
      const yc = sink.op('Where', [valid, y, sink.int64([], [0])], intCol); // padding reads column 0, then counts 0
      const logp = sink.op('LogSoftmax', [z], rows, [intAttr('axis', 1)]);
      const logpY = sink.op('GatherElements', [logp, yc], col, [intAttr('axis', 1)]);
      const counted = sink.op('Mul', [logpY, validF], col);
      const lossSum = sink.op('Neg', [sink.reduce('ReduceSum', counted, null, false, scalar)], scalar);
      const tokenCount = sink.reduce('ReduceSum', validF, null, false, scalar);

      const p = sink.op('Mul', [sink.op('Exp', [logp], rows), validF], rows);
      const update = sink.op('Sub', [sink.op('Mul', [sink.op('Exp', [logpY], col), validF], col), validF], col);
      const dz = sink.op('ScatterElements', [p, yc, update], rows, [intAttr('axis', 1)]);
      const gradLogits = sink.op('Reshape', [dz, sink.int64([3], [batch, length, vocab])], { dtype, shape: [batch, length, vocab] });
      return { lossSum, tokenCount, gradLogits };
    },
  };
}

/** The default-domain opset of a model. */
export function defaultOpset(model: ModelProto): number {
  const o = model.opsetImport.find((x) => (x.domain ?? '') === '' || x.domain === 'ai.onnx');
  return Number(o?.version ?? 17);
}
