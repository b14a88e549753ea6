/**
 * The teacher: a model's inference view (static B × T, every weight an initializer, logits its only
 * output) in an onnxruntime session, whose logits [B, T, V] are fed straight to the student's KD head.
 * For the top-k cache the same view gets a tail, in the graph, that returns per position the k largest
 * log-probabilities at temperature T, their ids, and the log of the remaining mass.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { WhittleError } from '../errors.ts';
import { DataType } from '../onnx/dtype.ts';
import { intAttr } from '../onnx/graph.ts';
import type { ModelProto } from '../onnx/proto-types.ts';
import { readModel } from '../onnx/reader.ts';
import { writeModel } from '../onnx/writer.ts';
import { mapArchitecture } from '../rewrite/architecture.ts';
import { valueInfo } from '../train/graph-io.ts';
import { defaultOpset, NodeSink } from '../train/loss-head.ts';
import { TRAINING_GRAPH_OPTIMIZATION, type Batch } from '../train/session.ts';
import { buildTrainingView, type TrainingView } from '../train/view.ts';

export interface TeacherOptions {
  batch: number;
  length: number;
  /** Where the teacher's graphs are written (removed by close()). */
  scratchDir: string;
  threads?: number;
}

/** The k most likely ids per position and their log-probabilities at temperature T, [B, T, K], and the rest's log-mass [B, T, 1]. */
export interface TopkRows {
  ids: BigInt64Array;
  logp: Float32Array;
  rest: Float32Array;
}

export interface Teacher {
  readonly modelPath: string;
  readonly view: TrainingView;
  /** Teacher logits [B, T, V] (float32) of a batch. */
  logits(batch: Batch): Promise<ort.Tensor>;
  /** The top-k rows of a batch at `temperature` (ids sorted, most likely first). */
  topk(batch: Batch, k: number, temperature: number): Promise<TopkRows>;
  close(): Promise<void>;
}

const SESSION_OPTIONS: ort.InferenceSession.SessionOptions = {
  graphOptimizationLevel: TRAINING_GRAPH_OPTIMIZATION, executionMode: 'sequential', enableMemPattern: true, enableCpuMemArena: true,
};

async function openSession(model: ModelProto, dir: string, threads?: number): Promise<ort.InferenceSession> {
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, 'model.onnx');
  await writeModel(model, file, { externalData: 'auto', threshold: 1024, dataFileName: 'model.onnx.data' });
  try {
    return await ort.InferenceSession.create(file, { ...SESSION_OPTIONS, ...(threads ? { intraOpNumThreads: threads } : {}) });
  } catch (e) {
    const message = (e as Error).message ?? String(e);
    throw new WhittleError('INTERNAL', `onnxruntime could not load the teacher's graph: ${message.split('\n')[0]}`, { onnxruntime: message }, { cause: e });
  }
}

/**
 * The view's graph with a top-k tail: log p = logsoftmax(logits / T) [B, T, V], TopK → values, indices
 * [B, T, K]; rest = log(max(1 − Σ_k exp(values), 0)) summed in float64 [B, T, 1] (−∞ where the k ids hold
 * all the mass; the head floors it).
 */
function topkModel(view: TrainingView, k: number, temperature: number): { model: ModelProto; outputs: [string, string, string] } {
  const src = view.model.graph;
  if (!src) throw new WhittleError('INTERNAL', 'The teacher view has no graph.');
  const meta = new Map(view.meta);
  const sink = new NodeSink(meta, defaultOpset(view.model), 'topk/');
  const { batch: B, length: T, vocab: V } = view;
  const f = DataType.float32;
  const full = { dtype: f, shape: [B, T, V] };
  const kShape = [B, T, k];
  const scaled = temperature === 1 ? view.logits : sink.op('Mul', [view.logits, sink.float(1 / temperature, f)], full);
  const logp = sink.op('LogSoftmax', [scaled], full, [intAttr('axis', -1)]);
  const top = 'topk/values';
  const ids = 'topk/ids';
  sink.nodes.push({ input: [logp, sink.int64([1], [k])], output: [top, ids], opType: 'TopK', name: 'topk/TopK', attribute: [intAttr('axis', -1), intAttr('largest', 1), intAttr('sorted', 1)], metadataProps: [], deviceConfigurations: [] });
  meta.set(top, { dtype: f, shape: kShape });
  meta.set(ids, { dtype: DataType.int64, shape: kShape });
  const d = DataType.float64;
  const mass = sink.reduce('ReduceSum', sink.op('Exp', [sink.op('Cast', [top], { dtype: d, shape: kShape }, [intAttr('to', d)])], { dtype: d, shape: kShape }), [2], true, { dtype: d, shape: [B, T, 1] });
  const restMass = sink.op('Max', [sink.op('Sub', [sink.float(1, d), mass], { dtype: d, shape: [B, T, 1] }), sink.float(0, d)], { dtype: d, shape: [B, T, 1] });
  const rest = sink.op('Cast', [sink.op('Log', [restMass], { dtype: d, shape: [B, T, 1] })], { dtype: f, shape: [B, T, 1] }, [intAttr('to', f)]);
  const graph = {
    ...src,
    node: [...src.node, ...sink.nodes],
    initializer: [...src.initializer, ...sink.initializers],
    output: [valueInfo(ids, { dtype: DataType.int64, shape: kShape }), valueInfo(top, { dtype: f, shape: kShape }), valueInfo(rest, { dtype: f, shape: [B, T, 1] })],
  };
  return { model: { ...view.model, graph }, outputs: [ids, top, rest] };
}

function idsFeed(view: TrainingView, batch: Batch): ort.Tensor {
  const dims = [view.batch, view.length];
  if (batch.inputIds.length !== view.batch * view.length) {
    throw new WhittleError('INTERNAL', `The teacher runs batches of ${view.batch} × ${view.length} tokens; this one has ${batch.inputIds.length}.`);
  }
  return view.inputIds.dtype === DataType.int32 ? new ort.Tensor('int32', Int32Array.from(batch.inputIds, Number), dims) : new ort.Tensor('int64', batch.inputIds, dims);
}

/** Opens the teacher at `modelPath` for batches of `batch` × `length` tokens. */
export async function openTeacher(modelPath: string, options: TeacherOptions): Promise<Teacher> {
  const source = await readModel(modelPath);
  const dir = path.join(options.scratchDir, `.teacher-${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(dir, { recursive: true });
  try {
    const view = await buildTrainingView(source, mapArchitecture(source), { batch: options.batch, length: options.length, inference: true, frozen: () => true, scratchDir: dir, threads: options.threads });
    const session = await openSession(view.model, path.join(dir, 'logits'), options.threads);
    let topkSession: { k: number; temperature: number; session: ort.InferenceSession; outputs: [string, string, string] } | null = null;
    return {
      modelPath,
      view,
      async logits(batch) {
        const out = await session.run({ [view.inputIds.name]: idsFeed(view, batch) });
        return out[view.logits];
      },
      async topk(batch, k, temperature) {
        if (!topkSession || topkSession.k !== k || topkSession.temperature !== temperature) {
          await topkSession?.session.release();
          const { model, outputs } = topkModel(view, k, temperature);
          topkSession = { k, temperature, outputs, session: await openSession(model, path.join(dir, 'topk'), options.threads) };
        }
        const out = await topkSession.session.run({ [view.inputIds.name]: idsFeed(view, batch) });
        const [ids, logp, rest] = topkSession.outputs;
        return { ids: out[ids].data as BigInt64Array, logp: out[logp].data as Float32Array, rest: out[rest].data as Float32Array };
      },
      async close() {
        await session.release();
        await topkSession?.session.release();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}

/** Teacher and student must score the same words: the same vocabulary size (their logits' last axis). */
export function assertSameVocabulary(teacher: Pick<TrainingView, 'vocab'>, student: Pick<TrainingView, 'vocab'>): void {
  if (teacher.vocab !== student.vocab) {
    throw new WhittleError('INVALID_INPUT', `The teacher scores ${teacher.vocab} words but the student ${student.vocab}: distillation compares their distributions word by word, `
      + 'so both must use the same tokenizer and vocabulary. Choose a teacher and student of the same model family.', { teacherVocab: teacher.vocab, studentVocab: student.vocab });
  }
}

/** When both tokenizer files are known, they must be the same file content. */
export async function assertSameTokenizer(teacherTokenizer: string, studentTokenizer: string): Promise<void> {
  if (path.resolve(teacherTokenizer) === path.resolve(studentTokenizer)) return;
  const [a, b] = await Promise.all([readFile(teacherTokenizer), readFile(studentTokenizer)]);
  if (!a.equals(b)) {
    throw new WhittleError('INVALID_INPUT', `The teacher's tokenizer (${teacherTokenizer}) differs from the student's (${studentTokenizer}): the same ids would mean different words. `
      + 'Distil between models that share one tokenizer.', { teacherTokenizer, studentTokenizer });
  }
}
