/**
 * Sequential calibration: compress a model level by level, each level calibrated on the outputs of the
 * levels before it *as already compressed* (segments.ts explains levels and segments; GPTQ arXiv
 * 2210.17323 and SparseGPT arXiv 2301.00774 call it "true-sequential").
 *
 *   1. cheap checks first (validate.ts), then the N calibration sequences are sampled (batch B × L);
 *   2. segment −1 (embedding …) runs on every batch; its outputs are the inputs of level 0's weights and
 *      the residual stream;
 *   3. for ℓ = 0, 1, …: the statistics of level ℓ's inputs (accumulated while the previous segment ran)
 *      go to `compress`, which returns the level's new weights; segment ℓ then runs on every batch with
 *      those weights fed in place of the originals, producing level ℓ+1's inputs and the boundary tensors
 *      later segments read. A boundary tensor is dropped after its last reader has run.
 * Each segment is a small ONNX model written into a scratch folder (weights hard-linked from the source)
 * and run by its own onnxruntime session; compressed weights are graph inputs of the segment that uses
 * them. Memory: the boundary tensors in flight (N × L × width each, typically the residual stream plus
 * one or two values inside a block), one level's statistics and that level's new weights.
 */
import * as ort from 'onnxruntime-node';
import type { z } from 'zod';
import type { CalibrationConfig } from '../../../preload/recipe.ts';
import { throwIfAborted, WhittleError } from '../errors.ts';
import { asFeed, createSession, float16Feed } from '../evaluate/decoder-session.ts';
import { halfToFloat32 } from '../evaluate/fp16.ts';
import type { JobContext } from '../job-context.ts';
import { cacheShape, detectDecoderLayout, type DecoderLayout } from '../model/layout.ts';
import { DataType } from '../onnx/dtype.ts';
import { initializerMap, makeNode } from '../onnx/graph.ts';
import type { GraphProto, ModelProto, NodeProto, OnnxModel, TensorProto, ValueInfoProto } from '../onnx/proto-types.ts';
import { hessianKernel, TensorAccumulator, type AccumulatorKind, type TensorStats } from './accumulators.ts';
import { ScratchModels } from './capture-plan.ts';
import { DEFAULT_HISTOGRAM_BINS } from './collect.ts';
import { sampleCalibration } from './sampling.ts';
import { planSegments, type Segment, type SegmentTarget } from './segments.ts';
import { validateCalibration } from './validate.ts';

/** A new value for a target weight, in its stored layout and type (Float32Array, or Uint16Array fp16 bits). */
export type WeightValue = Float32Array | Uint16Array;

export interface Level<T extends SegmentTarget> {
  /** From 0, in dependency order. */
  index: number;
  /** Levels in all. */
  count: number;
  targets: T[];
  /** Statistics of each target's input activation, by weight name (weights reading one activation share them). */
  stats: Map<string, TensorStats>;
}

export interface SequentialRequest<T extends SegmentTarget> {
  model: OnnxModel;
  targets: readonly T[];
  accumulators: AccumulatorKind[];
  calibration: z.input<typeof CalibrationConfig>;
  tokenizerPath: string;
  /** Compresses one level; returns the new value of each of its weights (a weight left out keeps its value). */
  compress(level: Level<T>): Promise<Map<string, WeightValue>>;
  /** For messages (e.g. 'GPTQ'). */
  what?: string;
  /** Sequences per onnxruntime run (default 1). */
  batchSize?: number;
  /** Intra-op threads for onnxruntime; 0 = its default. */
  threads?: number;
  histogramBins?: number;
}

export interface SequentialSummary {
  levels: number;
  segments: number;
  samples: number;
  length: number;
  /** The largest number of bytes the boundary tensors held at once. */
  peakBoundaryBytes: number;
}

const PHASE = 'calibrate';

const ORT_TYPES: Record<number, ort.Tensor.Type> = {
  [DataType.float32]: 'float32', [DataType.float16]: 'float16', [DataType.int64]: 'int64', [DataType.int32]: 'int32', [DataType.bool]: 'bool',
};
const ONNX_TYPES = new Map<string, number>(Object.entries(ORT_TYPES).map(([k, v]) => [v, Number(k)]));

function intTensor(dtype: string, values: ArrayLike<number>, dims: number[]): ort.Tensor {
  if (dtype === 'int32') return new ort.Tensor('int32', Int32Array.from(values), dims);
  if (dtype !== 'int64') throw new WhittleError('UNSUPPORTED_MODEL', `An integer input of type ${dtype} cannot be fed; Whittle feeds int32 or int64 ids.`);
  const data = new BigInt64Array(values.length);
  for (let i = 0; i < values.length; i++) data[i] = BigInt(values[i]);
  return new ort.Tensor('int64', data, dims);
}

/** The graph inputs of a fresh sequence: ids, all-ones mask, positions 0..L−1, empty caches. */
function inputFeeds(layout: DecoderLayout, ids: ArrayLike<number>, batch: number, length: number): Map<string, ort.Tensor> {
  const feeds = new Map<string, ort.Tensor>();
  feeds.set(layout.inputIds.name, intTensor(layout.inputIds.dtype, ids, [batch, length]));
  if (layout.attentionMask) feeds.set(layout.attentionMask.name, intTensor(layout.attentionMask.dtype, new Array<number>(batch * length).fill(1), [batch, length]));
  if (layout.positionIds) {
    const pos = new Array<number>(batch * length);
    for (let b = 0; b < batch; b++) for (let t = 0; t < length; t++) pos[b * length + t] = t;
    feeds.set(layout.positionIds.name, intTensor(layout.positionIds.dtype, pos, [batch, length]));
  }
  for (const p of layout.past) {
    const dims = cacheShape(p, layout, batch, 0);
    feeds.set(p.name, p.dtype === 'float16' ? float16Feed(new Uint16Array(0), dims) : new ort.Tensor('float32', new Float32Array(0), dims));
  }
  for (const other of layout.otherInputs) {
    if (other.name === 'use_cache_branch') feeds.set(other.name, new ort.Tensor('bool', Uint8Array.of(0), [1]));
  }
  return feeds;
}

function asFloat32(t: ort.Tensor, name: string): Float32Array {
  if (t.type === 'float32') return t.data as Float32Array;
  if (t.type === 'float16') return halfToFloat32(t.data as unknown as ArrayLike<number>);
  throw new WhittleError('UNSUPPORTED_MODEL', `Activation '${name}' is ${t.type}; calibration reads float32 or float16 activations.`, { tensor: name });
}

const valueInfo = (name: string, elemType: number | undefined): ValueInfoProto =>
  ({ name, ...(elemType !== undefined ? { type: { tensorType: { elemType } } } : {}), metadataProps: [] });

function declaredTypes(graph: GraphProto): Map<string, number> {
  const m = new Map<string, number>();
  for (const v of [...graph.valueInfo, ...graph.input, ...graph.output]) {
    const t = v.type?.tensorType?.elemType;
    if (v.name && t !== undefined) m.set(v.name, t);
  }
  return m;
}

interface SegmentModelInput {
  segment: Segment;
  /** Element type of each boundary tensor, as it was produced. */
  boundaryTypes: Map<string, number>;
  /** Compressed weights fed as inputs. */
  fed: ReadonlySet<string>;
}

/** The ONNX model of one segment: its nodes, its inputs as graph inputs, its outputs as graph outputs. */
function segmentModel(source: ModelProto, s: SegmentModelInput): ModelProto {
  const graph = source.graph as GraphProto;
  const inits = initializerMap(graph);
  const declared = declaredTypes(graph);
  const sourceInputs = new Map(graph.input.map((v) => [v.name ?? '', v]));
  const { segment } = s;
  const inputs: ValueInfoProto[] = [
    ...segment.graphInputs.map((n) => sourceInputs.get(n) as ValueInfoProto),
    ...segment.boundaryInputs.map((n) => valueInfo(n, s.boundaryTypes.get(n))),
  ];
  const initializer: TensorProto[] = [];
  for (const name of segment.initializers) {
    const t = inits.get(name) as TensorProto;
    if (s.fed.has(name)) inputs.push({ name, type: { tensorType: { elemType: t.dataType, shape: { dim: t.dims.map((d) => ({ dimValue: d })) } } }, metadataProps: [] });
    else initializer.push(t);
  }
  const nodes: NodeProto[] = [...segment.nodes];
  const inputNames = new Set(inputs.map((v) => v.name));
  const outputs: ValueInfoProto[] = segment.outputs.map((name) => {
    if (!inputNames.has(name)) return valueInfo(name, declared.get(name));
    const copy = `${name}__segment_copy`;
    nodes.push(makeNode({ opType: 'Identity', inputs: [name], outputs: [copy], name: `${copy}_node` }));
    return valueInfo(copy, declared.get(name) ?? s.boundaryTypes.get(name));
  });
  const produced = new Set(nodes.flatMap((n) => n.output));
  return {
    ...source,
    graph: {
      ...graph,
      name: `segment_${segment.level + 1}`,
      node: nodes,
      initializer,
      sparseInitializer: [],
      input: inputs,
      output: outputs,
      valueInfo: graph.valueInfo.filter((v) => produced.has(v.name ?? '') && !segment.outputs.includes(v.name ?? '')),
      quantizationAnnotation: [],
    },
  };
}

/** Output name of `tensor` in its segment model (an input passed through is copied under another name). */
const outputName = (segment: Segment, tensor: string): string =>
  segment.graphInputs.includes(tensor) || segment.boundaryInputs.includes(tensor) ? `${tensor}__segment_copy` : tensor;

function weightTensor(t: TensorProto, value: WeightValue): ort.Tensor {
  const dims = t.dims.map(Number);
  if (t.dataType === DataType.float16) {
    if (!(value instanceof Uint16Array)) throw new WhittleError('INTERNAL', `The new value of ${t.name} must be float16 bits.`);
    return float16Feed(value, dims);
  }
  if (!(value instanceof Float32Array)) throw new WhittleError('INTERNAL', `The new value of ${t.name} must be float32.`);
  return new ort.Tensor('float32', value, dims);
}

/**
 * Runs sequential calibration (see the file header), calling `compress` once per level in dependency
 * order. Checks the calibration inputs before any work; cancellation is checked between batches.
 */
export async function calibrateSequentially<T extends SegmentTarget>(req: SequentialRequest<T>, ctx: JobContext): Promise<SequentialSummary> {
  const what = req.what ?? 'Calibration';
  if (req.accumulators.length === 0) throw new WhittleError('INVALID_INPUT', 'Calibration needs at least one statistic to collect (hessian, minmax, histogram or l2).');
  const batchSize = req.batchSize ?? 1;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new WhittleError('INVALID_INPUT', `The calibration batch size must be a whole number ≥ 1; got ${batchSize}.`);
  const { model } = req;
  const graph = model.proto.graph;
  if (!graph) throw new WhittleError('MODEL_PARSE', `${model.path} has no graph.`);
  const prepared = await validateCalibration({ model, tokenizerPath: req.tokenizerPath, calibration: req.calibration, what });
  if (req.accumulators.includes('hessian')) hessianKernel();
  const layout = detectDecoderLayout(model);
  const unfed = layout.otherInputs.filter((i) => i.name !== 'use_cache_branch');
  if (unfed.length > 0) {
    throw new WhittleError('UNSUPPORTED_MODEL', `${what}: the model needs inputs Whittle does not know how to feed: ${unfed.map((i) => i.name).join(', ')}.`);
  }
  const plan = planSegments(graph, req.targets, [layout.inputIds.name]);
  const samples = sampleCalibration(prepared.text, prepared.tokenizer, prepared.options);
  const L = prepared.calibration.length;
  const batches: number[][][] = [];
  for (let i = 0; i < samples.length; i += batchSize) batches.push(samples.slice(i, i + batchSize));
  const levelCount = plan.levels.length;
  const inits = initializerMap(graph);
  ctx.log('info', `${what}: sequential calibration over ${levelCount} level(s) of weights (${plan.segments.length} graph segments), ${samples.length} × ${L} tokens`);
  throwIfAborted(ctx.signal);

  const scratch = await ScratchModels.create(model, ctx.workDir);
  if (scratch.mode === 'copied') ctx.log('warn', 'calibration: the model could not be hard-linked into the work folder (another file system?), so each segment is written in full');
  // Boundary tensors in flight: name → one tensor per batch.
  const boundary = new Map<string, ort.Tensor[]>();
  const boundaryTypes = new Map<string, number>();
  const compressed = new Map<string, WeightValue>();
  let boundaryBytes = 0;
  let peakBoundaryBytes = 0;
  const total = plan.segments.length * batches.length;
  let done = 0;
  // Statistics of the inputs of the level compressed next (gathered while the segment before it ran).
  let pendingStats = new Map<string, TensorStats>();
  const compressLevel = async (index: number): Promise<void> => {
    throwIfAborted(ctx.signal);
    const targets = plan.levels[index];
    const stats = new Map<string, TensorStats>();
    for (const t of targets) {
      const s = pendingStats.get(plan.activations.get(t.weight) as string);
      if (!s) throw new WhittleError('INTERNAL', `${what}: no statistics were collected for the input of ${t.weight}.`);
      stats.set(t.weight, s);
    }
    const values = await req.compress({ index, count: levelCount, targets, stats });
    for (const [name, v] of values) compressed.set(name, v);
  };
  try {
    for (let si = 0; si < plan.segments.length; si++) {
      const segment = plan.segments[si];
      // Level ℓ = segment.level is compressed before segment ℓ runs (its statistics came from segment ℓ−1).
      if (segment.level >= 0) await compressLevel(segment.level);
      throwIfAborted(ctx.signal);

      const next = plan.levels[segment.level + 1];
      const captures = new Map<string, TensorAccumulator>();
      for (const t of next) {
        const a = plan.activations.get(t.weight) as string;
        if (!captures.has(a)) captures.set(a, new TensorAccumulator(a, req.accumulators, req.histogramBins ?? DEFAULT_HISTOGRAM_BINS));
      }
      const fed = new Set(segment.initializers.filter((n) => compressed.has(n)));
      const proto = segmentModel(model.proto, { segment, boundaryTypes, fed });
      const modelPath = await scratch.write(proto, `segment-${si}`, ctx.signal);
      const session = await createSession(modelPath, req.threads ?? 0);
      try {
        const fetches = segment.outputs.map((o) => outputName(segment, o));
        const weightFeeds = new Map([...fed].map((n) => [n, weightTensor(inits.get(n) as TensorProto, compressed.get(n) as WeightValue)]));
        const produced = new Map<string, ort.Tensor[]>(segment.outputs.map((o) => [o, []]));
        for (const [b, rows] of batches.entries()) {
          throwIfAborted(ctx.signal);
          const ids = new Array<number>(rows.length * L);
          rows.forEach((r, i) => { for (let t = 0; t < L; t++) ids[i * L + t] = r[t]; });
          const all = inputFeeds(layout, ids, rows.length, L);
          const feeds: Record<string, ort.Tensor> = {};
          for (const n of segment.graphInputs) {
            const f = all.get(n);
            if (!f) throw new WhittleError('UNSUPPORTED_MODEL', `${what}: the model input '${n}' cannot be fed for calibration.`);
            feeds[n] = f;
          }
          for (const n of segment.boundaryInputs) feeds[n] = (boundary.get(n) as ort.Tensor[])[b];
          for (const [n, t] of weightFeeds) feeds[n] = t;
          let result: ort.InferenceSession.OnnxValueMapType;
          try {
            result = await session.run(feeds, fetches);
          } catch (e) {
            throw new WhittleError('UNSUPPORTED_MODEL', `${what}: onnxruntime failed to run part ${si + 1} of the model on the calibration text: ${((e as Error).message ?? String(e)).split('\n')[0]}`, { segment: si }, { cause: e });
          }
          for (const [o, list] of produced) {
            const t = asFeed(result[outputName(segment, o)] as ort.Tensor);
            list.push(t);
            const acc = captures.get(o);
            if (acc) await acc.add(asFloat32(t, o), t.dims.at(-1) ?? 0);
          }
          done++;
          ctx.progress({ phase: PHASE, done, total, message: `level ${segment.level + 1} of ${levelCount}` });
        }
        // The segment's outputs join the boundary; its inputs that no later segment reads are dropped.
        for (const [o, list] of produced) {
          boundary.set(o, list);
          boundaryBytes += bytesOf(list);
          const type = ONNX_TYPES.get(list[0]?.type ?? '');
          if (type !== undefined) boundaryTypes.set(o, type);
        }
        peakBoundaryBytes = Math.max(peakBoundaryBytes, boundaryBytes);
        for (const n of segment.boundaryInputs) {
          if ((plan.lastUse.get(n) ?? -1) <= si) {
            boundaryBytes -= bytesOf(boundary.get(n) ?? []);
            boundary.delete(n);
          }
        }
        for (const n of fed) if (!plan.segments.slice(si + 1).some((s) => s.initializers.includes(n))) compressed.delete(n);
      } finally {
        await session.release().catch(() => undefined);
      }
      pendingStats = new Map([...captures].map(([a, acc]) => [a, acc.result()]));
    }
    if (levelCount > 0) await compressLevel(levelCount - 1);
  } finally {
    boundary.clear();
    await scratch.remove().catch(() => undefined);
  }
  return { levels: levelCount, segments: plan.segments.length, samples: samples.length, length: L, peakBoundaryBytes };

}

function bytesOf(list: readonly ort.Tensor[]): number {
  return list.reduce((a, t) => a + ((t.data as ArrayBufferView).byteLength ?? 0), 0);
}
