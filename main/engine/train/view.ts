/**
 * The training view of a model (TRAINING.md, "The design"): a copy of its graph with
 *   - static shapes for one (batch B, sequence length T), read off a probe run;
 *   - the batch as its only data input (input_ids [B, T]); attention mask (ones), position ids (0…T−1),
 *     token type ids (zeros), an empty KV-cache past and the merged-decoder switch become constants, so the
 *     view runs without cache (an encoder's view keeps its attention mask as a data input: ViewForm,
 *     encoder-view.ts);
 *   - shape arithmetic folded into constants, and the cache outputs dropped;
 *   - contrib ops decomposed into standard ops (decompose/);
 *   - half-precision weights widened to float32 master weights (float32-view.ts);
 *   - trainable weights as graph inputs, frozen ones left as initializers.
 * The loss head and the backward are appended to it by step-graph.ts.
 */
import * as ort from 'onnxruntime-node';
import { isWhittleError, WhittleError } from '../errors.ts';
import { DataType, isFloatDtype } from '../onnx/dtype.ts';
import type { GraphProto, ModelProto, OnnxModel, TensorProto, ValueInfoProto } from '../onnx/proto-types.ts';
import { makeTensor, readTensorFloat32 } from '../onnx/tensor-data.ts';
import type { ArchitectureMap } from '../rewrite/architecture.ts';
import type { MetaMap, TensorMeta } from './autodiff/types.ts';
import { decomposeContribOps } from './decompose/index.ts';
import { isHalf, widenToFloat32 } from './float32-view.ts';
import { dataDependent, foldStaticTensors, removeDeadNodes } from './fold.ts';
import { elementCountOf, int32Constant, int64Constant, valueInfo } from './graph-io.ts';
import { findParameters, type TrainableParameter } from './parameters.ts';
import { activationProfile, type ActivationProfile } from './memory.ts';
import { probeTensors } from './probe.ts';

export interface TrainingViewOptions {
  batch: number;
  length: number;
  /** Returns true for parameters that stay frozen (initializers, no gradient). */
  frozen: (p: TrainableParameter) => boolean;
  /** A view for inference only (a teacher): every weight stays an initializer and none is required to train. */
  inference?: boolean;
  /** Scratch folder for the probe. */
  scratchDir?: string;
  threads?: number;
}

export interface TrainingView {
  /** The forward graph (opset as the source, ≥ 17), static shapes, logits as its only output. */
  model: ModelProto;
  meta: MetaMap;
  inputIds: { name: string; dtype: number };
  batch: number;
  length: number;
  logits: string;
  vocab: number;
  /** Parameters trained (graph inputs, in order) and parameters kept frozen. */
  trainable: TrainableParameter[];
  frozen: TrainableParameter[];
  /** Float32 initial values of the trainable parameters (from the source, widened). */
  initial: Map<string, Float32Array>;
}

const MIN_OPSET = 17;

function elemType(v: ValueInfoProto): number | undefined {
  return v.type?.tensorType?.elemType;
}

function dimsOf(v: ValueInfoProto): (number | string | undefined)[] {
  return v.type?.tensorType?.shape?.dim.map((d) => (d.dimValue !== undefined ? Number(d.dimValue) : d.dimParam)) ?? [];
}

/**
 * Which graph inputs stay data inputs of the view (fed per batch) and which output it keeps. A decoder's
 * view feeds the tokens only; an encoder's (encoder-view.ts) also feeds its attention mask.
 */
export interface ViewForm {
  dataInputs: string[];
  /** Picks the output the view keeps (the logits). */
  output: (graph: GraphProto) => string;
}

/** Constant feeds that stand in for everything but the data inputs: how the view runs without cache. */
function constantInputs(graph: GraphProto, batch: number, length: number, dataInputs: ReadonlySet<string>): { ids: ValueInfoProto; constants: TensorProto[] } {
  const ids = graph.input.find((v) => v.name === 'input_ids');
  if (!ids) throw new WhittleError('UNSUPPORTED_MODEL', `Whittle trains decoders that take input_ids; this model's inputs are ${graph.input.map((v) => v.name).join(', ')}.`);
  const constants: TensorProto[] = [];
  const initNames = new Set(graph.initializer.map((t) => t.name));
  for (const v of graph.input) {
    const name = v.name ?? '';
    if (name === 'input_ids' || dataInputs.has(name) || initNames.has(name)) continue;
    const type = elemType(v);
    const intConst = (shape: number[], values: number[]): TensorProto => (type === DataType.int32 ? int32Constant(name, shape, values) : int64Constant(name, shape, values));
    if (name === 'attention_mask') {
      constants.push(intConst([batch, length], new Array<number>(batch * length).fill(1)));
    } else if (name === 'token_type_ids') {
      constants.push(intConst([batch, length], new Array<number>(batch * length).fill(0)));
    } else if (name === 'position_ids') {
      const pos: number[] = [];
      for (let b = 0; b < batch; b++) for (let t = 0; t < length; t++) pos.push(t);
      constants.push(intConst([batch, length], pos));
    } else if (name === 'use_cache_branch') {
      constants.push(makeTensor(name, DataType.bool, [1], Uint8Array.of(0)));
    } else if (/^past/i.test(name) && type !== undefined && isFloatDtype(type)) {
      // Empty past: [batch, kv heads, 0, head size] (or combined [2, batch, heads, 0, head size]).
      const dims = dimsOf(v);
      const firstSymbolic = dims.findIndex((d) => typeof d !== 'number');
      const shape = dims.map((d, i) => (typeof d === 'number' ? d : i === firstSymbolic ? batch : 0));
      constants.push(makeTensor(name, isHalf(type) ? DataType.float32 : type, shape, new Uint8Array(0)));
    } else {
      throw new WhittleError('UNSUPPORTED_MODEL', `Whittle does not know how to feed the input '${name}' while training; it feeds input_ids, attention_mask, position_ids and KV-cache past inputs.`, { input: name });
    }
  }
  return { ids, constants };
}

/** The graph's logits: the output named 'logits', or the one 3-D float output that is not a cache. */
function logitsOutput(graph: GraphProto): string {
  const named = graph.output.find((o) => o.name === 'logits');
  if (named) return 'logits';
  const candidates = graph.output.filter((o) => !/^present/i.test(o.name ?? '') && dimsOf(o).length === 3);
  if (candidates.length !== 1) throw new WhittleError('UNSUPPORTED_MODEL', 'Whittle could not find the logits output of this model (an output named logits, or a single 3-D output besides the cache).');
  return candidates[0].name ?? '';
}

/** A probe feed of ones (tokens, or a mask with every position attended). */
function idsFeed(dtype: number, batch: number, length: number): ort.Tensor {
  const n = batch * length;
  return dtype === DataType.int32 ? new ort.Tensor('int32', new Int32Array(n).fill(1), [batch, length]) : new ort.Tensor('int64', new BigInt64Array(n).fill(1n), [batch, length]);
}

interface ProbedView {
  model: ModelProto;
  graph: GraphProto;
  meta: MetaMap;
  idsType: number;
  /** Element types of the data inputs. */
  dataTypes: Map<string, number>;
  logits: string;
  sourceDtypes: Map<string, number>;
}

/** Steps 1–3 of the view: constants for all but the tokens, float32, static shapes and folded shape arithmetic. */
const DECODER_FORM: ViewForm = { dataInputs: ['input_ids'], output: logitsOutput };

async function probedView(source: OnnxModel, batch: number, length: number, options: { scratchDir?: string; threads?: number }, form: ViewForm = DECODER_FORM): Promise<ProbedView> {
  const src = source.proto;
  if (!src.graph) throw new WhittleError('MODEL_PARSE', 'The model has no graph.');
  const graph: GraphProto = { ...src.graph, node: [...src.graph.node], initializer: [...src.graph.initializer], input: [...src.graph.input], output: [...src.graph.output], valueInfo: [] };
  const sourceDtypes = new Map(src.graph.initializer.map((t) => [t.name ?? '', t.dataType ?? DataType.float32]));
  const opsetImport = src.opsetImport.map((o) => ((o.domain ?? '') === '' && Number(o.version ?? 0) < MIN_OPSET ? { ...o, version: MIN_OPSET } : o));
  const model: ModelProto = { ...src, opsetImport, graph };

  // 1. Only the tokens stay an input; logits the only output.
  const { ids, constants } = constantInputs(graph, batch, length, new Set(form.dataInputs));
  const constantNames = new Set(constants.map((t) => t.name));
  graph.input = graph.input.filter((v) => !constantNames.has(v.name ?? ''));
  graph.initializer.push(...constants);
  const logits = form.output(graph);
  graph.output = graph.output.filter((o) => o.name === logits);
  removeDeadNodes(graph);

  // 2. float32 everywhere.
  await widenToFloat32(graph);

  // 3. Static shapes and the values of shape arithmetic, from one probe run.
  const idsType = elemType(ids) ?? DataType.int64;
  const dataTypes = new Map<string, number>();
  const feeds: Record<string, ort.Tensor> = {};
  for (const name of form.dataInputs) {
    const v = graph.input.find((x) => x.name === name);
    if (!v) throw new WhittleError('UNSUPPORTED_MODEL', `This model has no input '${name}'; its inputs are ${graph.input.map((x) => x.name).join(', ')}.`, { input: name });
    const type = elemType(v) ?? DataType.int64;
    dataTypes.set(name, type);
    feeds[name] = idsFeed(type, batch, length);
  }
  let probe;
  try {
    // One run fetches every tensor: the caller has checked that the run's activations fit in memory
    // (memory.ts), and a probe split into many runs repeats the whole forward for each.
    probe = await probeTensors(model, feeds, { scratchDir: options.scratchDir, threads: options.threads, maxBytesPerRun: Number.POSITIVE_INFINITY });
  } catch (e) {
    if (!isWhittleError(e) || e.code !== 'MODEL_PARSE') throw e;
    throw new WhittleError('INVALID_INPUT', `The model does not run on batches of ${batch} × ${length} tokens (${e.message}). Use a shorter length: many models accept at most as many positions as their position or rotary tables hold.`, { batch, length }, { cause: e });
  }
  const meta = probe.meta;
  foldStaticTensors(graph, meta, probe.values, form.dataInputs);
  return { model, graph, meta, idsType, dataTypes, logits, sourceDtypes };
}

/**
 * The activation profile of one forward at (1, `length`), for the memory estimate (memory.ts), and the
 * float weights' element count (an upper bound of what will train).
 */
export async function profileActivations(source: OnnxModel, length: number, options: { scratchDir?: string; threads?: number } = {}): Promise<{ profile: ActivationProfile; weights: number }> {
  const { graph, meta } = await probedView(source, 1, length, options);
  let weights = 0;
  for (const t of graph.initializer) {
    const m = meta.get(t.name ?? '');
    if (m && isFloatDtype(m.dtype)) weights += elementCountOf(m.shape);
  }
  return { profile: activationProfile(meta, graph.node.flatMap((n) => n.output), length), weights };
}

/** Builds the training view of `source` for (batch, length). */
export async function buildTrainingView(source: OnnxModel, arch: ArchitectureMap, options: TrainingViewOptions): Promise<TrainingView> {
  const view = await buildViewOfForm(source, arch, options, DECODER_FORM);
  const logitsMeta = view.meta.get(view.logits);
  if (!logitsMeta || logitsMeta.shape.length !== 3) throw new WhittleError('UNSUPPORTED_MODEL', `The logits of this model are not [batch, sequence, vocabulary] (probe: [${logitsMeta?.shape.join(', ') ?? '?'}]).`);
  return view;
}

/**
 * The view for a given form (data inputs and output): steps 1–5 of the header. `vocab` is the last
 * dimension of the kept output (classes, for a classifier's [B, C] logits).
 */
export async function buildViewOfForm(source: OnnxModel, arch: ArchitectureMap, options: TrainingViewOptions, form: ViewForm): Promise<TrainingView> {
  const { batch, length } = options;
  const { model, graph, meta, idsType, dataTypes, logits, sourceDtypes } = await probedView(source, batch, length, options, form);

  // 4. Standard ops only.
  decomposeContribOps(model, meta);
  removeDeadNodes(graph);

  // 5. Parameters: trainable ones become inputs.
  const dependent = dataDependent(graph, form.dataInputs);
  const params = findParameters(graph, dependent, arch, sourceDtypes);
  const trainable = options.inference ? [] : params.filter((p) => !options.frozen(p));
  const frozen = options.inference ? params : params.filter((p) => options.frozen(p));
  if (trainable.length === 0 && !options.inference) throw new WhittleError('INVALID_INPUT', 'Every weight of the model is frozen: nothing would be trained. Freeze fewer roles or patterns.');
  const trainableNames = new Set(trainable.map((p) => p.name));
  const initial = new Map<string, Float32Array>();
  const kept: TensorProto[] = [];
  for (const t of graph.initializer) {
    if (!trainableNames.has(t.name ?? '')) { kept.push(t); continue; }
    initial.set(t.name ?? '', await readTensorFloat32(t));
  }
  graph.initializer = kept;
  for (const p of trainable) graph.input.push(valueInfo(p.name, { dtype: DataType.float32, shape: p.dims }));
  for (const [name, dtype] of dataTypes) {
    const dataMeta: TensorMeta = { dtype, shape: [batch, length] };
    graph.input = graph.input.map((v) => (v.name === name ? valueInfo(name, dataMeta) : v));
    meta.set(name, dataMeta);
  }
  const logitsMeta = meta.get(logits);
  if (!logitsMeta || logitsMeta.shape.length < 2) throw new WhittleError('UNSUPPORTED_MODEL', `The output ${logits} of this model has no static shape after the probe.`);
  graph.output = [valueInfo(logits, logitsMeta)];
  return { model, meta, inputIds: { name: 'input_ids', dtype: idsType }, batch, length, logits, vocab: logitsMeta.shape[logitsMeta.shape.length - 1], trainable, frozen, initial };
}

/** Total elements of a parameter list. */
export function parameterCount(params: TrainableParameter[]): number {
  return params.reduce((a, p) => a + elementCountOf(p.dims), 0);
}
