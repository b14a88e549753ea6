/**
 * Hidden-state matching (TinyBERT/DistilBERT-style): besides the KD loss on the logits, the output of each
 * student block is pulled towards the output of its teacher block,
 *   hiddenSum = c · Σ_j Σ_{counted t} Σ_d (h_s[j] − h_t[map(j)])²        c = β / (D · L_s)
 *   ∂hiddenSum / ∂h_s[j] = 2c · (h_s[j] − h_t[map(j)]) on counted positions, 0 elsewhere
 * with h [B, T, D] a block's output (the residual stream after it), L_s the student's blocks and β the
 * weight. map(j): the teacher block the student block was copied from (a student of kept blocks), or
 * the uniform map round((j + 1) · L_t / L_s) − 1 for a student of its own.
 * The teacher's logits and hidden states come from one teacher session per step.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { WhittleError } from '../errors.ts';
import { DataType } from '../onnx/dtype.ts';
import { intAttr } from '../onnx/graph.ts';
import type { GraphProto, OnnxModel } from '../onnx/proto-types.ts';
import { readModel } from '../onnx/reader.ts';
import { writeModel } from '../onnx/writer.ts';
import { mapArchitecture, type ArchitectureMap } from '../rewrite/architecture.ts';
import type { TensorMeta } from '../train/autodiff/types.ts';
import { valueInfo } from '../train/graph-io.ts';
import { LABELS } from '../train/loss-head.ts';
import type { TrainObjective } from '../train/objective.ts';
import { TRAINING_GRAPH_OPTIMIZATION, type Batch } from '../train/session.ts';
import { buildTrainingView, type TrainingView } from '../train/view.ts';
import { distillationHead, TEACHER_LOGITS } from './kd-head.ts';

/** The output of every block: the next block's residual input, and for the last block its MLP join's sum. */
export function blockOutputs(arch: ArchitectureMap, graph: GraphProto, label: string): string[] {
  const byName = new Map(graph.node.map((n) => [n.name ?? '', n]));
  return arch.blocks.map((b, j) => {
    const next = arch.blocks[j + 1]?.residual.input;
    if (next) return next;
    const join = b.residual.mlpJoin ? byName.get(b.residual.mlpJoin) : undefined;
    const out = join?.opType === 'Add' ? join.output[0] : join?.opType?.startsWith('Skip') ? join.output[3] : undefined;
    if (!out) throw new WhittleError('UNSUPPORTED_MODEL', `Whittle could not find where block ${j} of the ${label} ends (its residual join), so it cannot match hidden states; distil without hidden-state matching.`);
    return out;
  });
}

/** Student block j → the teacher block it learns from. */
export function blockMap(studentBlocks: number, teacherBlocks: number, kept: readonly number[] | null): number[] {
  if (kept) return [...kept].sort((a, b) => a - b);
  return Array.from({ length: studentBlocks }, (_, j) => Math.max(0, Math.round(((j + 1) * teacherBlocks) / studentBlocks) - 1));
}

const hiddenInput = (j: number): string => `teacher_hidden_${j}`;

export interface HiddenObjectiveOptions {
  teacherPath: string;
  studentPath: string;
  /** Teacher blocks the student's blocks were copied from, in order (null: a student of its own). */
  kept: readonly number[] | null;
  temperature: number;
  alpha: number;
  reverse: boolean;
  /** β, the weight of the hidden-state term. */
  weight: number;
  scratchDir: string;
}

export async function hiddenDistillationObjective(o: HiddenObjectiveOptions): Promise<TrainObjective> {
  const student: OnnxModel = await readModel(o.studentPath);
  const teacherSource: OnnxModel = await readModel(o.teacherPath);
  const studentArch = mapArchitecture(student);
  const teacherArch = mapArchitecture(teacherSource);
  const studentHidden = blockOutputs(studentArch, student.proto.graph as GraphProto, 'student');
  const teacherHidden = blockOutputs(teacherArch, teacherSource.proto.graph as GraphProto, 'teacher');
  const map = blockMap(studentHidden.length, teacherHidden.length, o.kept);
  if (map.length !== studentHidden.length || map.some((t) => t < 0 || t >= teacherHidden.length)) {
    throw new WhittleError('INVALID_INPUT', `The student's ${studentHidden.length} blocks do not map onto the teacher's ${teacherHidden.length}.`);
  }
  let session: ort.InferenceSession | null = null;
  let teacherView: TrainingView | null = null;
  let dir: string | null = null;
  return {
    head(view) {
      const kd = distillationHead({ batch: view.batch, length: view.length, vocab: view.vocab, temperature: o.temperature, alpha: o.alpha, reverse: o.reverse, teacher: { kind: 'logits' } });
      const metas = studentHidden.map((h) => {
        const m = view.meta.get(h);
        if (!m || m.shape.length !== 3) throw new WhittleError('UNSUPPORTED_MODEL', `The student's block output ${h} is not a [batch, sequence, hidden] tensor in its training view.`);
        return m;
      });
      const width = metas[0].shape[2];
      return {
        inputs: [...kd.inputs, ...metas.map((m, j) => valueInfo(hiddenInput(j), m))],
        build(sink, logits) {
          for (const [j, m] of metas.entries()) sink.meta.set(hiddenInput(j), m);
          const out = kd.build(sink, logits);
          const dtype = metas[0].dtype;
          const [B, T] = [view.batch, view.length];
          const col: TensorMeta = { dtype, shape: [B, T, 1] };
          const scalar: TensorMeta = { dtype, shape: [] };
          const valid = sink.op('Greater', [sink.op('Reshape', [LABELS, sink.int64([3], [B, T, 1])], { dtype: DataType.int64, shape: [B, T, 1] }), sink.int64([], [-1])], { dtype: DataType.bool, shape: [B, T, 1] });
          const validF = sink.op('Cast', [valid], col, [intAttr('to', dtype)]);
          const c = o.weight / (width * studentHidden.length);
          let total: string | null = null;
          const seeds: { tensor: string; grad: string }[] = [];
          for (const [j, h] of studentHidden.entries()) {
            const m = metas[j];
            const diff = sink.op('Mul', [sink.op('Sub', [h, hiddenInput(j)], m), validF], m);
            const sq = sink.reduce('ReduceSum', sink.op('Mul', [diff, diff], m), null, false, scalar);
            total = total ? sink.op('Add', [total, sq], scalar) : sq;
            seeds.push({ tensor: h, grad: sink.op('Mul', [diff, sink.float(2 * c, dtype)], m) });
          }
          const hiddenSum = sink.op('Mul', [total ?? sink.float(0, dtype), sink.float(c, dtype)], scalar);
          return {
            ...out,
            lossSum: sink.op('Add', [out.lossSum, hiddenSum], scalar),
            seeds: [...(out.seeds ?? []), ...seeds],
            parts: { ...(out.parts ?? {}), hidden: hiddenSum },
          };
        },
      };
    },
    async prepare(view) {
      dir = path.join(o.scratchDir, `.hidden-teacher-${process.pid}-${randomBytes(4).toString('hex')}`);
      await mkdir(dir, { recursive: true });
      const tv = await buildTrainingView(teacherSource, teacherArch, { batch: view.batch, length: view.length, inference: true, frozen: () => true, scratchDir: dir });
      if (tv.vocab !== view.vocab) throw new WhittleError('INVALID_INPUT', `The teacher scores ${tv.vocab} words and the student ${view.vocab}: distillation needs one vocabulary.`);
      const graph = tv.model.graph as GraphProto;
      for (const [j, t] of map.entries()) {
        const tm = tv.meta.get(teacherHidden[t]);
        const sm = view.meta.get(studentHidden[j]);
        if (!tm || !sm || tm.shape.join() !== sm.shape.join()) {
          throw new WhittleError('INVALID_INPUT', `Hidden-state matching needs blocks of the same width: teacher block ${t} gives [${tm?.shape.join(', ') ?? '?'}], student block ${j} [${sm?.shape.join(', ') ?? '?'}].`);
        }
        if (!graph.output.some((v) => v.name === teacherHidden[t])) graph.output.push(valueInfo(teacherHidden[t], tm));
      }
      teacherView = tv;
      const file = path.join(dir, 'model.onnx');
      await writeModel(tv.model, file, { externalData: 'auto', threshold: 1024, dataFileName: 'model.onnx.data' });
      session = await ort.InferenceSession.create(file, { graphOptimizationLevel: TRAINING_GRAPH_OPTIMIZATION, executionMode: 'sequential' });
    },
    async feeds(batch: Batch) {
      if (!session || !teacherView) throw new WhittleError('INTERNAL', 'The hidden-state teacher was not prepared.');
      const dims = [teacherView.batch, teacherView.length];
      const ids = teacherView.inputIds.dtype === DataType.int32 ? new ort.Tensor('int32', Int32Array.from(batch.inputIds, Number), dims) : new ort.Tensor('int64', batch.inputIds, dims);
      const out = await session.run({ [teacherView.inputIds.name]: ids });
      const feeds: Record<string, ort.Tensor> = { [TEACHER_LOGITS]: out[teacherView.logits] };
      for (const [j, t] of map.entries()) feeds[hiddenInput(j)] = out[teacherHidden[t]];
      return feeds;
    },
    async close() {
      await session?.release();
      session = null;
      if (dir) await rm(dir, { recursive: true, force: true });
    },
  };
}
