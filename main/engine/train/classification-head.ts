/**
 * Loss heads for sequence classification: class logits z [B, C], labels y [B] (int64 class ids).
 *
 * classificationHead — cross-entropy, summed over the batch's examples:
 *   loss = −Σ_b log softmax(z_b)_{y_b}               ∂z = softmax(z) − onehot(y)
 * classificationKdHead — distillation from teacher logits u [B, C] (an input fed per batch):
 *   loss = α · T² · Σ_b KL(softmax(u_b / T) ‖ softmax(z_b / T)) + (1 − α) · CE(z, y)
 *   ∂z   = α · T · (softmax(z / T) − softmax(u / T)) + (1 − α) · (softmax(z) − onehot(y))
 * (Hinton et al. 2015: the T² keeps the soft term's gradient on the scale of the hard one.)
 *
 * Both count examples as the loop's "tokens" (tokenCount = B) and report `correct` (argmax z = y) beside
 * the loss; the KD head also reports its `kl` and `ce` sums.
 */
import { DataType } from '../onnx/dtype.ts';
import { intAttr } from '../onnx/graph.ts';
import type { TensorMeta } from './autodiff/types.ts';
import { valueInfo } from './graph-io.ts';
import { LABELS, type LossHead, type NodeSink } from './loss-head.ts';

/** The name of the teacher's class logits input of the KD head. */
export const TEACHER_LOGITS = 'teacher_logits';

const F32 = DataType.float32;

interface CrossEntropyParts { lossSum: string; grad: string; y: string }

/** Σ −log softmax(z)_y and softmax(z) − onehot(y), both [B, C] work. */
function crossEntropy(sink: NodeSink, z: string, batch: number, classes: number): CrossEntropyParts {
  const rows: TensorMeta = { dtype: F32, shape: [batch, classes] };
  const col: TensorMeta = { dtype: F32, shape: [batch, 1] };
  const y = sink.op('Reshape', [LABELS, sink.int64([2], [batch, 1])], { dtype: DataType.int64, shape: [batch, 1] });
  const logp = sink.op('LogSoftmax', [z], rows, [intAttr('axis', 1)]);
  const logpY = sink.op('GatherElements', [logp, y], col, [intAttr('axis', 1)]);
  const lossSum = sink.op('Neg', [sink.reduce('ReduceSum', logpY, null, false, { dtype: F32, shape: [] })], { dtype: F32, shape: [] });
  // softmax − onehot: the softmax with p_y − 1 scattered into the label's column.
  const update = sink.op('Sub', [sink.op('Exp', [logpY], col), sink.float(1, F32)], col);
  const grad = sink.op('ScatterElements', [sink.op('Exp', [logp], rows), y, update], rows, [intAttr('axis', 1)]);
  return { lossSum, grad, y };
}

/** Σ_b [argmax z_b = y_b] as a float scalar. */
function correctCount(sink: NodeSink, z: string, y: string, batch: number): string {
  const predicted = sink.op('ArgMax', [z], { dtype: DataType.int64, shape: [batch, 1] }, [intAttr('axis', 1), intAttr('keepdims', 1)]);
  const hit = sink.op('Cast', [sink.op('Equal', [predicted, y], { dtype: DataType.bool, shape: [batch, 1] })], { dtype: F32, shape: [batch, 1] }, [intAttr('to', F32)]);
  return sink.reduce('ReduceSum', hit, null, false, { dtype: F32, shape: [] });
}

function labelsInput(batch: number): { meta: TensorMeta; info: ReturnType<typeof valueInfo> } {
  const meta: TensorMeta = { dtype: DataType.int64, shape: [batch] };
  return { meta, info: valueInfo(LABELS, meta) };
}

/** Cross-entropy on class logits [B, C] with labels [B]. */
export function classificationHead(shape: { batch: number; classes: number }): LossHead {
  const { batch, classes } = shape;
  const labels = labelsInput(batch);
  return {
    inputs: [labels.info],
    build(sink, logits) {
      sink.meta.set(LABELS, labels.meta);
      const { lossSum, grad, y } = crossEntropy(sink, logits, batch, classes);
      return { lossSum, tokenCount: sink.float(batch, F32), gradLogits: grad, parts: { correct: correctCount(sink, logits, y, batch) } };
    },
  };
}

export interface ClassificationKdOptions {
  batch: number;
  classes: number;
  /** Softmax temperature T > 0 of both distributions in the soft term. */
  temperature: number;
  /** Weight α ∈ [0, 1] of the soft term; 1 − α goes to the hard labels. */
  alpha: number;
}

/** Distillation on class logits: teacher logits [B, C] as the input `teacher_logits` (see the header). */
export function classificationKdHead(options: ClassificationKdOptions): LossHead {
  const { batch, classes, temperature: t, alpha } = options;
  const labels = labelsInput(batch);
  const teacherMeta: TensorMeta = { dtype: F32, shape: [batch, classes] };
  return {
    inputs: [labels.info, valueInfo(TEACHER_LOGITS, teacherMeta)],
    build(sink, logits) {
      sink.meta.set(LABELS, labels.meta);
      sink.meta.set(TEACHER_LOGITS, teacherMeta);
      const rows: TensorMeta = { dtype: F32, shape: [batch, classes] };
      const scalar: TensorMeta = { dtype: F32, shape: [] };
      const invT = sink.float(1 / t, F32);
      const logq = sink.op('LogSoftmax', [sink.op('Mul', [logits, invT], rows)], rows, [intAttr('axis', 1)]); // student at T
      const logpT = sink.op('LogSoftmax', [sink.op('Mul', [TEACHER_LOGITS, invT], rows)], rows, [intAttr('axis', 1)]); // teacher at T
      const pT = sink.op('Exp', [logpT], rows);
      // KL(p ‖ q) = Σ p (log p − log q), summed over classes and examples.
      const kl = sink.reduce('ReduceSum', sink.op('Mul', [pT, sink.op('Sub', [logpT, logq], rows)], rows), null, false, scalar);
      const ce = crossEntropy(sink, logits, batch, classes);
      const lossSum = sink.op('Add', [
        sink.op('Mul', [kl, sink.float(alpha * t * t, F32)], scalar),
        sink.op('Mul', [ce.lossSum, sink.float(1 - alpha, F32)], scalar),
      ], scalar);
      const softGrad = sink.op('Mul', [sink.op('Sub', [sink.op('Exp', [logq], rows), pT], rows), sink.float(alpha * t, F32)], rows);
      const hardGrad = sink.op('Mul', [ce.grad, sink.float(1 - alpha, F32)], rows);
      const gradLogits = sink.op('Add', [softGrad, hardGrad], rows);
      return { lossSum, tokenCount: sink.float(batch, F32), gradLogits, parts: { kl, ce: ce.lossSum, correct: correctCount(sink, logits, ce.y, batch) } };
    },
  };
}
