/**
 * What calibration captures, and the model that captures it.
 *
 * A quantization/pruning target is a MatMul/Gemm weight W [K, N] (planTargets); the statistic it needs is
 * about its input activation X [..., K] — flattened to [tokens, K], d = K. Weights reading the same
 * activation (q, k and v after one norm; gate and up) share one accumulator.
 *
 * The capture model is the original graph with those activations added as graph outputs (an Identity
 * copy when the activation is itself a graph input), written to a scratch folder. The weights are not
 * copied: each file the original tensors live in (the external data file, or the .onnx itself for large
 * raw_data) is hard-linked into the scratch folder and the new .onnx points into it at the original
 * offsets. onnxruntime refuses external data reached through a symbolic link outside the model's folder,
 * so where a hard link is impossible (another file system) the model is written out in full instead.
 */
import { randomBytes } from 'node:crypto';
import { link, mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { WhittleError } from '../errors.ts';
import { DataType, dtypeName } from '../onnx/dtype.ts';
import { encodeModel, type ExternalPlacement } from '../onnx/encode.ts';
import { allTensors, attrInt, initializerMap, makeNode, NameScope, producerMap } from '../onnx/graph.ts';
import type { GraphProto, ModelProto, NodeProto, OnnxModel, TensorProto } from '../onnx/proto-types.ts';
import { writeModel } from '../onnx/writer.ts';

export type ActivationDtype = 'float32' | 'float16';

export interface ActivationInput {
  /** Name of the activation tensor (the MatMul/Gemm A input). */
  tensor: string;
  /** Its last dimension: K of the weights it feeds. */
  d: number;
  /** The weights (initializer names) it feeds, in graph order. */
  weights: string[];
  dtype: ActivationDtype;
}

/** A target as planTargets gives it, or just the MatMul/Gemm node. */
export type CaptureTarget = TargetRecord | NodeProto;
interface TargetRecord { node: NodeProto; weight: string; k: number }

const isTargetRecord = (t: CaptureTarget): t is TargetRecord => 'node' in t && 'k' in t;

const protoOf = (m: ModelProto | OnnxModel): ModelProto => ('proto' in m ? m.proto : m);

function mainGraph(model: ModelProto): GraphProto {
  if (!model.graph) throw new WhittleError('MODEL_PARSE', 'The model has no graph.');
  return model.graph;
}

const FLOAT_TYPES = new Map<number, ActivationDtype>([[DataType.float32, 'float32'], [DataType.float16, 'float16']]);

function describeNode(n: NodeProto): string {
  return n.name || `${n.opType ?? '?'}(${n.output[0] ?? ''})`;
}

/** K and the weight's name for a bare MatMul/Gemm node with a constant 2-D float weight. */
function fromNode(node: NodeProto, inits: Map<string, TensorProto>): { weight: string; k: number } {
  const op = node.opType;
  if ((op !== 'MatMul' && op !== 'Gemm') || (node.domain ?? '') !== '') {
    throw new WhittleError('INVALID_INPUT', `Node ${describeNode(node)} is a ${op}; calibration captures the inputs of MatMul and Gemm nodes.`);
  }
  if (op === 'Gemm' && attrInt(node, 'transA', 0) !== 0) {
    throw new WhittleError('INVALID_INPUT', `Gemm ${describeNode(node)} has transA = 1; its input rows are not tokens.`);
  }
  const w = inits.get(node.input[1] ?? '');
  if (!w || w.dims.length !== 2) {
    throw new WhittleError('INVALID_INPUT', `${op} ${describeNode(node)} has no constant 2-D weight; calibration needs one to know the input width.`);
  }
  const dims = w.dims.map(Number);
  const transB = op === 'Gemm' && attrInt(node, 'transB', 0) !== 0;
  return { weight: w.name ?? '', k: transB ? dims[1] : dims[0] };
}

/** The element type of `name` as the graph declares it, or undefined. */
function declaredType(graph: GraphProto, name: string): number | undefined {
  for (const v of [...graph.valueInfo, ...graph.input, ...graph.output]) {
    if (v.name === name) return v.type?.tensorType?.elemType;
  }
  return undefined;
}

/**
 * The distinct activations feeding `targets`, in graph order, with d = K of the weights they feed.
 * Throws INVALID_INPUT when two weights on one activation disagree about K (a malformed graph).
 */
export function activationInputsFor(model: ModelProto | OnnxModel, targets: readonly CaptureTarget[]): ActivationInput[] {
  const graph = mainGraph(protoOf(model));
  const inits = initializerMap(graph);
  const order = new Map(graph.node.map((n, i) => [n, i]));
  const rows = targets.map((t) => {
    const { node, weight, k } = isTargetRecord(t) ? t : { node: t, ...fromNode(t, inits) };
    return { node, weight, k, at: order.get(node) ?? Number.MAX_SAFE_INTEGER };
  }).sort((a, b) => a.at - b.at);

  const byTensor = new Map<string, ActivationInput>();
  for (const { node, weight, k } of rows) {
    const tensor = node.input[0] ?? '';
    if (tensor === '') throw new WhittleError('INVALID_INPUT', `Node ${describeNode(node)} has no input activation.`);
    const elem = declaredType(graph, tensor) ?? inits.get(weight)?.dataType;
    const dtype = FLOAT_TYPES.get(elem ?? -1);
    if (!dtype) {
      throw new WhittleError('UNSUPPORTED_MODEL', `The input '${tensor}' of ${describeNode(node)} is ${dtypeName(elem)}; calibration reads float32 or float16 activations.`, { tensor });
    }
    const seen = byTensor.get(tensor);
    if (seen) {
      if (seen.d !== k) throw new WhittleError('INVALID_INPUT', `Activation '${tensor}' feeds weights with different K (${seen.weights[0]}: ${seen.d}, ${weight}: ${k}).`, { tensor });
      seen.weights.push(weight);
    } else {
      byTensor.set(tensor, { tensor, d: k, weights: [weight], dtype });
    }
  }
  return [...byTensor.values()];
}

/**
 * Adds `tensors` as outputs of the main graph (in place) and returns tensor → output name. A tensor that
 * already is a graph output is fetched as it is; a graph input or initializer is copied by an Identity.
 * Throws INVALID_INPUT for a name nothing in the main graph defines.
 */
export function addCaptureOutputs(model: ModelProto, tensors: readonly { tensor: string; dtype?: ActivationDtype }[]): Map<string, string> {
  const graph = mainGraph(model);
  const producers = producerMap(graph);
  const inputs = new Set(graph.input.map((v) => v.name ?? ''));
  const inits = initializerMap(graph);
  const outputs = new Set(graph.output.map((v) => v.name ?? ''));
  const names = NameScope.fromModel(model);
  const result = new Map<string, string>();
  for (const { tensor, dtype } of tensors) {
    if (result.has(tensor)) continue;
    if (outputs.has(tensor)) { result.set(tensor, tensor); continue; }
    const elemType = dtype === 'float16' ? DataType.float16 : dtype === 'float32' ? DataType.float32 : declaredType(graph, tensor);
    const type = elemType !== undefined ? { tensorType: { elemType } } : undefined;
    let out = tensor;
    if (!producers.has(tensor)) {
      if (!inputs.has(tensor) && !inits.has(tensor)) {
        throw new WhittleError('INVALID_INPUT', `The model's main graph has no tensor named '${tensor}' to calibrate.`, { tensor });
      }
      out = names.fresh(`${tensor}_whittle_capture`);
      graph.node.push(makeNode({ opType: 'Identity', inputs: [tensor], outputs: [out], name: names.fresh(`${tensor}_whittle_capture_node`) }));
    }
    graph.output.push({ name: out, ...(type ? { type } : {}), metadataProps: [] });
    outputs.add(out);
    result.set(tensor, out);
  }
  return result;
}

export interface CaptureModelFiles {
  dir: string;
  modelPath: string;
  /** 'linked': weights hard-linked from the original files; 'copied': written out in full. */
  mode: 'linked' | 'copied';
  remove(): Promise<void>;
}

/**
 * A scratch folder for models derived from one source model (capture models, calibration segments):
 * the files the source's tensors live in are hard-linked into it once, and every model written there
 * points into them at the original offsets (see the header). Where a hard link is impossible each model
 * is written out in full instead. `remove()` deletes the folder.
 */
export class ScratchModels {
  readonly dir: string;
  readonly mode: 'linked' | 'copied';
  private readonly sources: Map<string, string>;
  private written = 0;

  private constructor(dir: string, mode: 'linked' | 'copied', sources: Map<string, string>) {
    this.dir = dir;
    this.mode = mode;
    this.sources = sources;
  }

  static async create(model: OnnxModel, parentDir: string): Promise<ScratchModels> {
    const dir = path.join(parentDir, `.calibration-${randomBytes(6).toString('hex')}`);
    await mkdir(dir, { recursive: true });
    try {
      const sources = new Map<string, string>();
      for (const t of allTensors(model.proto)) {
        if (t.data?.kind === 'file' && !sources.has(t.data.path)) sources.set(t.data.path, `source-${sources.size}.bin`);
      }
      for (const [src, name] of sources) {
        try {
          await link(src, path.join(dir, name));
        } catch {
          await rm(dir, { recursive: true, force: true });
          await mkdir(dir, { recursive: true });
          return new ScratchModels(dir, 'copied', new Map());
        }
      }
      return new ScratchModels(dir, 'linked', sources);
    } catch (e) {
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
      throw e;
    }
  }

  /** Writes `proto` (its tensors referencing the source's files) as `<name>.onnx` in the folder; returns its path. */
  async write(proto: ModelProto, name = `model-${this.written}`, signal?: AbortSignal): Promise<string> {
    this.written++;
    const modelPath = path.join(this.dir, `${name}.onnx`);
    if (this.mode === 'linked') {
      const placement = (t: TensorProto): ExternalPlacement | null => {
        const d = t.data;
        const location = d?.kind === 'file' ? this.sources.get(d.path) : undefined;
        return d?.kind === 'file' && location ? { location, offset: d.offset, length: d.length } : null;
      };
      await writeFile(modelPath, encodeModel(proto, { placement }).toBytes());
    } else {
      await writeModel(proto, modelPath, { externalData: 'auto', dataFileName: `${name}.onnx.data`, signal });
    }
    return modelPath;
  }

  remove(): Promise<void> {
    return rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * Writes `model` (read by readModel: tensors are references into its files) into a new scratch folder
 * under `parentDir` (see the header). The folder is removed by `remove()`, and on any error here.
 */
export async function writeCaptureModel(model: OnnxModel, parentDir: string, signal?: AbortSignal): Promise<CaptureModelFiles> {
  const scratch = await ScratchModels.create(model, parentDir);
  const remove = (): Promise<void> => scratch.remove();
  try {
    const modelPath = await scratch.write(model.proto, 'model', signal);
    return { dir: scratch.dir, modelPath, mode: scratch.mode, remove };
  } catch (e) {
    await remove().catch(() => undefined);
    throw e;
  }
}
