/**
 * The static-shape probe: run a model once in onnxruntime with every node output of its main graph
 * exposed as a graph output, and read back the dtype and shape of every tensor (graph inputs,
 * initializers, node outputs) for one concrete feed, e.g. input_ids [B, T] and empty past [B, h, 0, d].
 *
 * The training view compiles one graph per (B, T); this probe is where its static shapes come from.
 * Small non-float tensors (the Shape → Gather → Concat → Reshape arithmetic, masks, position ids) are
 * returned with their values so the view can fold them into constants.
 *
 * The probed model is a copy (the caller's ModelProto is not touched) written to a scratch folder whose
 * weights are hard-linked from the source files where possible (calibrate/capture-plan.ts). Graph
 * optimizations are disabled so that no node output is fused away. The added graph outputs carry no
 * type: onnxruntime infers it. Outputs are fetched in groups that bound the memory one run holds
 * (ProbeOptions.maxBytesPerRun); a small model takes one or two runs.
 */
import os from 'node:os';
import * as ort from 'onnxruntime-node';
import { ScratchModels } from '../calibrate/capture-plan.ts';
import { WhittleError } from '../errors.ts';
import { byteSize, DataType, dtypeId, dtypeName, isFloatDtype } from '../onnx/dtype.ts';
import { toNumber } from '../onnx/graph.ts';
import type { GraphProto, ModelProto, TensorProto, ValueInfoProto } from '../onnx/proto-types.ts';
import { elementCount, readTensorBytes } from '../onnx/tensor-data.ts';
import type { MetaMap, TensorMeta } from './autodiff/types.ts';

/** Element storage of a probed value, as onnxruntime-node returns it (bool as Uint8Array, float16 as Uint16Array bits). */
export type ProbedData =
  | Float32Array | Float64Array | Uint16Array | Int8Array | Uint8Array | Int16Array | Int32Array | Uint32Array
  | BigInt64Array | BigUint64Array;

export interface ProbedValue {
  dtype: number;
  shape: number[];
  data: ProbedData;
}

export interface ProbeOptions {
  /** Which tensors to return values of; default: non-float tensors of at most `maxValueElements` elements. */
  keepValuesOf?: (name: string, meta: TensorMeta) => boolean;
  /** Size limit of the default value filter (elements). Default 4096. */
  maxValueElements?: number;
  /** Folder under which the scratch model is written (removed afterwards). Default: the OS temp folder. */
  scratchDir?: string;
  /**
   * Bytes of fetched tensors one run may hold at once (default 512 MiB): the node outputs are fetched in
   * groups sized by the largest tensor seen so far, one forward run per group, so a large model at a
   * large (B, T) is probed without holding every activation at once.
   */
  maxBytesPerRun?: number;
  /** onnxruntime intra-op threads; 0 = its default. */
  threads?: number;
}

export interface ProbeResult {
  /** dtype and static shape of every tensor of the main graph: inputs, initializers, node outputs. */
  meta: MetaMap;
  /** Values of the tensors selected by `keepValuesOf` (by default: small non-float tensors). */
  values: Map<string, ProbedValue>;
}

export const DEFAULT_MAX_VALUE_ELEMENTS = 4096;
export const DEFAULT_MAX_BYTES_PER_RUN = 512 * 2 ** 20;
/** Outputs fetched by the first run, before any tensor size is known. */
const FIRST_GROUP = 64;

function mainGraph(model: ModelProto): GraphProto {
  if (!model.graph) throw new WhittleError('MODEL_PARSE', 'The model has no graph.');
  return model.graph;
}

function outputWithoutType(name: string): ValueInfoProto {
  return { name, metadataProps: [] };
}

/** The model with every named node output of its main graph also a graph output (a shallow copy). */
function exposeAllOutputs(model: ModelProto): { probeModel: ModelProto; fetched: string[] } {
  const graph = mainGraph(model);
  const outputs = new Set(graph.output.map((v) => v.name ?? ''));
  const extra: ValueInfoProto[] = [];
  for (const n of graph.node) {
    for (const o of n.output) {
      if (o === '' || outputs.has(o)) continue;
      outputs.add(o);
      extra.push(outputWithoutType(o));
    }
  }
  const probeGraph: GraphProto = { ...graph, output: [...graph.output, ...extra] };
  return { probeModel: { ...model, graph: probeGraph }, fetched: [...outputs].filter((n) => n !== '') };
}

/** The ONNX DataType id of an onnxruntime tensor type name ('float32', 'int64', 'bool', …). */
function dtypeOfOrt(type: string, name: string): number {
  try {
    return dtypeId(type);
  } catch {
    throw new WhittleError('UNSUPPORTED_MODEL', `Tensor '${name}' has the onnxruntime type '${type}', which training cannot use.`, { tensor: name, type });
  }
}

/** Little-endian element bytes → the typed array onnxruntime-node would use for that dtype. */
export function typedFromBytes(bytes: Uint8Array, dtype: number, count: number): ProbedData {
  const copy = bytes.slice().buffer;
  switch (dtype) {
    case DataType.float32: return new Float32Array(copy, 0, count);
    case DataType.float64: return new Float64Array(copy, 0, count);
    case DataType.float16:
    case DataType.bfloat16:
    case DataType.uint16: return new Uint16Array(copy, 0, count);
    case DataType.int8: return new Int8Array(copy, 0, count);
    case DataType.uint8:
    case DataType.bool: return new Uint8Array(copy, 0, count);
    case DataType.int16: return new Int16Array(copy, 0, count);
    case DataType.int32: return new Int32Array(copy, 0, count);
    case DataType.uint32: return new Uint32Array(copy, 0, count);
    case DataType.int64: return new BigInt64Array(copy, 0, count);
    case DataType.uint64: return new BigUint64Array(copy, 0, count);
    default:
      throw new WhittleError('UNSUPPORTED_MODEL', `Tensors of type ${dtypeName(dtype)} cannot be read as values.`, { dtype });
  }
}

/** An onnxruntime tensor's elements; float16 as Uint16Array bits whatever array type the runtime chose (Node 24 gives Float16Array). */
function ortData(t: ort.Tensor): ProbedData {
  const d = t.data as ArrayBufferView & { length: number };
  if (t.type === 'float16' && !(d instanceof Uint16Array)) return new Uint16Array(d.buffer, d.byteOffset, d.length);
  return d as ProbedData;
}

function initializerMeta(t: TensorProto): TensorMeta {
  return { dtype: t.dataType ?? DataType.undefined, shape: t.dims.map((d) => toNumber(d)) };
}

async function openProbeSession(modelPath: string, threads: number): Promise<ort.InferenceSession> {
  const options: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: 'disabled', executionMode: 'sequential' };
  if (threads > 0) options.intraOpNumThreads = threads;
  try {
    return await ort.InferenceSession.create(modelPath, options);
  } catch (e) {
    const message = (e as Error).message ?? String(e);
    throw new WhittleError('MODEL_PARSE', `onnxruntime could not load the model to measure its tensor shapes: ${message.split('\n')[0]}`, { onnxruntime: message }, { cause: e });
  }
}

/**
 * Runs `model` once on `feeds` and returns the dtype and static shape of every tensor of its main graph,
 * plus the values of the small non-float ones (see ProbeOptions). Feeds must name every graph input that
 * is not an initializer. Throws INVALID_INPUT for a missing feed, MODEL_PARSE when onnxruntime cannot load
 * or run the model.
 */
export async function probeTensors(model: ModelProto, feeds: Record<string, ort.Tensor>, options: ProbeOptions = {}): Promise<ProbeResult> {
  const graph = mainGraph(model);
  const maxElements = options.maxValueElements ?? DEFAULT_MAX_VALUE_ELEMENTS;
  const keep = options.keepValuesOf ?? ((_: string, m: TensorMeta) => !isFloatDtype(m.dtype) && m.dtype !== DataType.string && elementCount(m.shape) <= maxElements);

  const inits = new Map<string, TensorProto>();
  for (const t of graph.initializer) if (t.name) inits.set(t.name, t);
  const missing = graph.input.map((v) => v.name ?? '').filter((n) => n !== '' && !inits.has(n) && !(n in feeds));
  if (missing.length > 0) {
    throw new WhittleError('INVALID_INPUT', `The shape probe needs a value for every graph input; missing: ${missing.join(', ')}.`, { missing });
  }

  const meta: MetaMap = new Map();
  const values = new Map<string, ProbedValue>();
  const record = (name: string, m: TensorMeta): boolean => {
    meta.set(name, m);
    return keep(name, m);
  };

  for (const t of graph.initializer) {
    const name = t.name ?? '';
    if (name === '') continue;
    const m = initializerMeta(t);
    if (record(name, m)) {
      const count = elementCount(m.shape);
      values.set(name, { ...m, data: typedFromBytes(await readTensorBytes(t), m.dtype, count) });
    }
  }
  const graphInputs = new Set(graph.input.map((v) => v.name ?? ''));
  const sessionFeeds: Record<string, ort.Tensor> = {};
  for (const [name, tensor] of Object.entries(feeds)) {
    if (!graphInputs.has(name)) continue;
    sessionFeeds[name] = tensor;
    const m = { dtype: dtypeOfOrt(tensor.type, name), shape: [...tensor.dims] };
    if (record(name, m) && tensor.type !== 'string') values.set(name, { ...m, data: ortData(tensor) });
  }

  const { probeModel, fetched } = exposeAllOutputs(model);
  const scratch = await ScratchModels.create({ path: '', proto: probeModel, fileBytes: 0, externalDataFiles: [] }, options.scratchDir ?? os.tmpdir());
  try {
    const modelPath = await scratch.write(probeModel, 'probe');
    const session = await openProbeSession(modelPath, options.threads ?? 0);
    try {
      const budget = options.maxBytesPerRun ?? DEFAULT_MAX_BYTES_PER_RUN;
      let largest = 0;
      for (let at = 0; at < fetched.length;) {
        // Tensors fetched together stay alive together: size each group by the largest tensor seen so far.
        const count = largest === 0 ? FIRST_GROUP : Math.max(1, Math.floor(budget / largest));
        const group = fetched.slice(at, at + count);
        at += group.length;
        let results: ort.InferenceSession.OnnxValueMapType;
        try {
          results = await session.run(sessionFeeds, group);
        } catch (e) {
          const message = (e as Error).message ?? String(e);
          throw new WhittleError('MODEL_PARSE', `onnxruntime could not run the model to measure its tensor shapes: ${message.split('\n')[0]}`, { onnxruntime: message }, { cause: e });
        }
        for (const name of group) {
          const value = results[name];
          if (!(value instanceof ort.Tensor)) continue;
          const m = { dtype: dtypeOfOrt(value.type, name), shape: [...value.dims] };
          largest = Math.max(largest, byteSize(m.dtype, elementCount(m.shape)) || 0);
          if (record(name, m) && value.type !== 'string') values.set(name, { ...m, data: ortData(value) });
        }
      }
    } finally {
      await session.release();
    }
  } finally {
    await scratch.remove();
  }
  return { meta, values };
}
