/**
 * What a Llama-family ONNX decoder becomes in GGUF (llama.cpp's "llama" architecture): hyperparameters
 * read from the architecture map and the graph (config.json beside the model, when present, for what the
 * graph cannot say), and each weight's GGUF tensor with where its values come from.
 *
 * Tensor names (llama.cpp's LLM_TENSOR names): token_embd, blk.N.{attn_norm, attn_q, attn_k, attn_v,
 * attn_output, ffn_norm, ffn_gate, ffn_up, ffn_down}, output_norm, output (absent when tied).
 *
 * Layout: ONNX MatMul weights are W [K, N] (y = x·W); a GGUF matrix holds the N output rows of K values,
 * dims (ne0, ne1) = (K, N), so float weights are transposed and a MatMulNBits weight (already stored per
 * output row) is not. Rotary: llama.cpp's llama architecture rotates adjacent pairs (x[2i], x[2i+1]).
 * A graph that rotates halves (x[i], x[i + d/2]; Hugging Face's rotate_half) gets its q and k rows
 * regrouped per head from halves to pairs, as llama.cpp's convert_hf_to_gguf.py does:
 *   GGUF row h·d + 2i + j  ←  ONNX output feature h·d + j·d/2 + i      (i < d/2, j ∈ {0, 1})
 * A graph that already rotates pairs (llama2.c exports such as stories260K) keeps its order.
 *
 * A 4-bit com.microsoft.MatMulNBits model is mapped through a float view of its graph: each MatMulNBits
 * node stands in as a MatMul of a [K, N] placeholder so the architecture map can name its role.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { WhittleError } from '../errors.ts';
import { attrFloat, attrInt, initializerMap } from '../onnx/graph.ts';
import type { GraphProto, NodeProto, OnnxModel, TensorProto } from '../onnx/proto-types.ts';
import { DataType } from '../onnx/dtype.ts';
import { readTensorBytes, readTensorFloat32 } from '../onnx/tensor-data.ts';
import { mapArchitecture, type ArchitectureMap } from '../rewrite/architecture.ts';
import { GraphView, isOp, MS_DOMAIN } from '../rewrite/architecture-graph.ts';
import type { NBitsWeight } from './gguf-quant.ts';

export interface LlamaHyperparameters {
  contextLength: number;
  embeddingLength: number;
  blockCount: number;
  feedForwardLength: number;
  headCount: number;
  headCountKv: number;
  headSize: number;
  ropeFreqBase: number;
  rmsEpsilon: number;
  vocabSize: number;
  /** Whether the graph rotates halves (q/k rows are regrouped into pairs for llama.cpp). */
  rotaryHalves: boolean;
  /** How each value was found (graph, config.json, default), for the export's notes. */
  sources: Record<string, string>;
}

/** Where a GGUF matrix's values come from. */
export type WeightSource =
  | { kind: 'float'; tensor: TensorProto; /** stored [K, N] (needs a transpose to rows of K) */ transpose: boolean }
  | { kind: 'nbits'; node: NodeProto; inits: Map<string, TensorProto> };

export interface LlamaTensorPlan {
  name: string;
  /** GGUF dims, ne0 first: [K, N] for a matrix, [n] for a norm. */
  dims: number[];
  source: WeightSource;
  /** Regroup rows per head from halves to pairs (q and k of a rotate-half graph): head count and size. */
  regroup: { heads: number; headSize: number } | null;
  /** A norm scale or other 1-D tensor (always written as F32). */
  vector: boolean;
}

export interface LlamaPlan {
  hp: LlamaHyperparameters;
  tensors: LlamaTensorPlan[];
  /** The graph holds MatMulNBits weights. */
  quantized: boolean;
  /** Bits of its MatMulNBits weights (each distinct value). */
  nbitsBits: number[];
  map: ArchitectureMap;
}

const PLACEHOLDER = '\u0000nbits:';

/** The graph with each MatMulNBits node replaced by MatMul(A, [K, N] float placeholder). */
function floatView(graph: GraphProto): { graph: GraphProto; nbits: Map<string, NodeProto> } {
  const nbits = new Map<string, NodeProto>();
  const extra: TensorProto[] = [];
  const nodes = graph.node.map((n) => {
    if (!(isOp(n, 'MatMulNBits') && n.domain === MS_DOMAIN)) return n;
    const name = `${PLACEHOLDER}${n.name || n.output[0]}`;
    nbits.set(name, n);
    extra.push({ name, dims: [attrInt(n, 'K', 0), attrInt(n, 'N', 0)], dataType: DataType.float32 } as TensorProto);
    return { ...n, opType: 'MatMul', domain: '', input: [n.input[0], name], attribute: [] } as NodeProto;
  });
  if (nbits.size === 0) return { graph, nbits };
  return { graph: { ...graph, node: nodes, initializer: [...graph.initializer, ...extra] }, nbits };
}

async function readConfig(modelPath: string): Promise<Record<string, unknown>> {
  try {
    return JSON.parse(await readFile(path.join(path.dirname(modelPath), 'config.json'), 'utf8')) as Record<string, unknown>;
  } catch {
    return {};
  }
}

/** Whether the rotary after the q projection rotates halves (true) or adjacent pairs (false). */
function rotatesHalves(view: GraphView, qOutput: string): boolean | null {
  const queue: { v: string; depth: number; reshapeLast: number | null }[] = [{ v: qOutput, depth: 0, reshapeLast: null }];
  const seen = new Set<string>();
  while (queue.length) {
    const { v, depth, reshapeLast } = queue.shift()!;
    if (seen.has(v) || depth > 6) continue;
    seen.add(v);
    for (const r of view.readers(v)) {
      if (isOp(r, 'RotaryEmbedding')) return attrInt(r, 'interleaved', 0) === 0;
      if (isOp(r, 'Split')) {
        // Split of a trailing axis of 2 (…, d/2, 2) → pairs; of the head dimension in halves → halves.
        if (reshapeLast === 2) return false;
        return true;
      }
      if (isOp(r, 'Slice')) return true;
      if (isOp(r, 'Reshape')) {
        const shape = view.intValues(r.input[1]);
        queue.push({ v: r.output[0], depth: depth + 1, reshapeLast: shape ? shape[shape.length - 1] : null });
      } else if (isOp(r, 'Transpose', 'Cast', 'Identity', 'Add')) {
        queue.push({ v: r.output[0], depth: depth + 1, reshapeLast });
      }
    }
  }
  return null;
}

/** RMSNorm epsilon: a fused norm's attribute, or the scalar added to the mean square in a decomposed one. */
async function rmsEpsilon(view: GraphView, label: string): Promise<number | null> {
  const node = view.graph.node.find((n) => n.name === label || `${n.opType ?? '?'}(${n.output[0] ?? ''})` === label);
  if (!node) return null;
  if (node.opType?.includes('LayerNormalization')) return attrFloat(node, 'epsilon', 1e-5);
  const seen = new Set<NodeProto>();
  const queue: { n: NodeProto; depth: number }[] = [{ n: node, depth: 0 }];
  while (queue.length) {
    const { n, depth } = queue.shift()!;
    if (seen.has(n) || depth > 6) continue;
    seen.add(n);
    if (isOp(n, 'Add')) {
      for (const x of n.input) {
        const t = view.inits.get(x);
        if (t && t.dims.length <= 1 && (t.dims.length === 0 || Number(t.dims[0]) === 1)) {
          const v = (await readTensorFloat32(t))[0];
          if (v > 0 && v < 1e-2) return v;
        }
      }
    }
    for (const x of n.input) { const p = view.producer(x); if (p) queue.push({ n: p, depth: depth + 1 }); }
  }
  return null;
}

/** Rotary base and table length from cos/sin tables [P, d/2] (or [P, d]): angle of position 1, pair 1 = base^(−2/d). */
async function ropeFromTables(inits: Map<string, TensorProto>, headSize: number): Promise<{ base: number; positions: number } | null> {
  const candidates = [...inits.values()].filter((t) => t.dims.length === 2 && (Number(t.dims[1]) === headSize / 2 || Number(t.dims[1]) === headSize) && Number(t.dims[0]) > 1 && (t.dataType === DataType.float32 || t.dataType === DataType.float16));
  let cos: Float32Array | null = null;
  let sin: Float32Array | null = null;
  let width = 0;
  let positions = 0;
  for (const t of candidates) {
    const v = await readTensorFloat32(t);
    const w = Number(t.dims[1]);
    const row0 = v.subarray(0, w);
    if (!cos && row0.every((x) => Math.abs(x - 1) < 1e-6) && Math.abs(v[w] - Math.cos(1)) < 1e-3) { cos = v; width = w; positions = Number(t.dims[0]); }
    else if (!sin && row0.every((x) => Math.abs(x) < 1e-6) && Math.abs(v[w] - Math.sin(1)) < 1e-3) sin = v;
  }
  if (!cos || !sin || headSize < 4) return null;
  // Column of pair 1: width d/2 → column 1; width d → column 1 (halves, repeated) or 2 (pairs, duplicated).
  const col = width === headSize / 2 ? 1 : Math.abs(cos[width + 1] - cos[width]) < 1e-7 ? 2 : 1;
  const angle = Math.atan2(sin[width + col], cos[width + col]);
  if (!(angle > 0)) return null;
  return { base: Math.exp((-Math.log(angle) * headSize) / 2), positions };
}

function need<T>(value: T | null | undefined, what: string): T {
  if (value === null || value === undefined) {
    throw new WhittleError('UNSUPPORTED_MODEL', `GGUF export could not find ${what} in this model's graph; it exports Llama-family decoders (Llama, Mistral, Qwen2, SmolLM, stories260K).`, { missing: what });
  }
  return value;
}

/** Reads the model's structure into the GGUF tensors and hyperparameters of llama.cpp's llama architecture. */
export async function planLlama(model: OnnxModel): Promise<LlamaPlan> {
  const graph = need(model.proto.graph, 'a graph');
  const { graph: viewGraph, nbits } = floatView(graph);
  const map = mapArchitecture(viewGraph);
  if (map.family !== 'llama') {
    throw new WhittleError('UNSUPPORTED_MODEL', `GGUF export needs a Llama-family decoder (RMSNorm, gated MLP); this model looks like ${map.family === 'unknown' ? 'an unrecognised architecture' : `a ${map.family} model`}.${map.issues.length ? ` ${map.issues.slice(0, 3).join(' ')}` : ''}`, { family: map.family, issues: map.issues });
  }
  const view = new GraphView(viewGraph);
  const inits = initializerMap(graph);
  const config = await readConfig(model.path);
  const sources: Record<string, string> = {};

  const embeddingName = need(map.embedding, 'the token embedding');
  const embedding = need(inits.get(embeddingName), `the embedding table ${embeddingName}`);
  const [vocabSize, dim] = embedding.dims.map(Number);
  const b0 = need(map.blocks[0], 'any transformer block');
  const heads = need(b0.attention.heads, 'the attention head count');
  const kvHeads = b0.attention.kvHeads ?? heads;
  const headSize = b0.attention.headSize ?? dim / heads;
  const ffn = need(b0.mlp.intermediate, 'the MLP width');

  const qProj = view.graph.node.find((n) => n.input[1] === b0.attention.q);
  const halves = qProj ? rotatesHalves(view, qProj.output[0]) : null;
  sources.rotary = halves === null ? 'not found in the graph: taken as halves (Hugging Face layout)' : `graph (${halves ? 'halves' : 'adjacent pairs'})`;

  let eps = await rmsEpsilon(view, b0.norms[0]?.node ?? '');
  sources.rmsEpsilon = 'graph';
  if (eps === null) {
    eps = typeof config.rms_norm_eps === 'number' ? config.rms_norm_eps : 1e-5;
    sources.rmsEpsilon = typeof config.rms_norm_eps === 'number' ? 'config.json' : 'default 1e-5';
  }
  const tables = await ropeFromTables(inits, headSize);
  let ropeBase = 10000;
  sources.ropeFreqBase = 'default 10000';
  if (typeof config.rope_theta === 'number') { ropeBase = config.rope_theta; sources.ropeFreqBase = 'config.json'; }
  else if (tables) { ropeBase = Math.round(tables.base * 1000) / 1000; sources.ropeFreqBase = 'rotary tables in the graph'; }
  let context = 2048;
  sources.contextLength = 'default 2048';
  if (typeof config.max_position_embeddings === 'number') { context = config.max_position_embeddings; sources.contextLength = 'config.json'; }
  else if (tables) { context = tables.positions; sources.contextLength = 'rotary table length'; }
  if (config.rope_scaling && typeof config.rope_scaling === 'object') {
    throw new WhittleError('UNSUPPORTED_MODEL', 'GGUF export does not write rotary scaling yet; this model\'s config.json sets rope_scaling.', { rope_scaling: config.rope_scaling });
  }

  const tensors: LlamaTensorPlan[] = [];
  const matrix = (name: string, weight: string | null, what: string, regroup: LlamaTensorPlan['regroup'] = null): void => {
    const w = need(weight, what);
    const node = nbits.get(w);
    if (node) {
      tensors.push({ name, dims: [attrInt(node, 'K', 0), attrInt(node, 'N', 0)], source: { kind: 'nbits', node, inits }, regroup, vector: false });
      return;
    }
    const t = need(inits.get(w), `the weight ${w}`);
    const proj = view.graph.node.map((n) => view.projection(n)).find((p) => p?.weight === w);
    const transposedStore = proj?.transposed ?? false; // stored [N, K] already
    const [r, c] = t.dims.map(Number);
    tensors.push({ name, dims: transposedStore ? [c, r] : [r, c], source: { kind: 'float', tensor: t, transpose: !transposedStore }, regroup, vector: false });
  };
  const vector = (name: string, weight: string | null, what: string): void => {
    const t = need(inits.get(need(weight, what)), what);
    tensors.push({ name, dims: [Number(t.dims[t.dims.length - 1])], source: { kind: 'float', tensor: t, transpose: false }, regroup: null, vector: true });
  };

  tensors.push({ name: 'token_embd.weight', dims: [dim, vocabSize], source: { kind: 'float', tensor: embedding, transpose: false }, regroup: null, vector: false });
  for (const b of map.blocks) {
    const a = b.attention;
    const m = b.mlp;
    if (a.qkv) throw new WhittleError('UNSUPPORTED_MODEL', 'GGUF export needs separate q, k and v projections; this model fuses them into one weight.', { weight: a.qkv });
    if (Object.values(a.biases).some((x) => x) || Object.values(m.biases).some((x) => x)) {
      throw new WhittleError('UNSUPPORTED_MODEL', 'GGUF export of the llama architecture has no projection biases; this model has some (Qwen2-style biases are not exported yet).', { block: b.index });
    }
    const attnNorm = b.norms.find((n) => n.at === 'attention');
    const mlpNorm = b.norms.find((n) => n.at === 'mlp');
    const p = `blk.${b.index}`;
    vector(`${p}.attn_norm.weight`, attnNorm?.weight ?? null, `block ${b.index}'s attention norm`);
    matrix(`${p}.attn_q.weight`, a.q, `block ${b.index}'s q projection`, halves === false ? null : { heads, headSize });
    matrix(`${p}.attn_k.weight`, a.k, `block ${b.index}'s k projection`, halves === false ? null : { heads: kvHeads, headSize });
    matrix(`${p}.attn_v.weight`, a.v, `block ${b.index}'s v projection`);
    matrix(`${p}.attn_output.weight`, a.o, `block ${b.index}'s output projection`);
    vector(`${p}.ffn_norm.weight`, mlpNorm?.weight ?? null, `block ${b.index}'s MLP norm`);
    matrix(`${p}.ffn_gate.weight`, m.gate, `block ${b.index}'s gate projection`);
    matrix(`${p}.ffn_up.weight`, m.up, `block ${b.index}'s up projection`);
    matrix(`${p}.ffn_down.weight`, m.down, `block ${b.index}'s down projection`);
  }
  vector('output_norm.weight', map.finalNorm?.weight ?? null, 'the final norm');
  if (!map.tiedEmbedding) matrix('output.weight', map.lmHead, 'the LM head');

  const nbitsBits = [...new Set([...nbits.values()].map((n) => attrInt(n, 'bits', 4)))];
  return {
    hp: {
      contextLength: context, embeddingLength: dim, blockCount: map.blocks.length, feedForwardLength: ffn, headCount: heads,
      headCountKv: kvHeads, headSize, ropeFreqBase: ropeBase, rmsEpsilon: eps, vocabSize, rotaryHalves: halves !== false, sources,
    },
    tensors,
    quantized: nbits.size > 0,
    nbitsBits,
    map,
  };
}

/** A MatMulNBits node's weight, read from its initializers (scales as float32). */
export async function readNBits(node: NodeProto, inits: Map<string, TensorProto>): Promise<NBitsWeight> {
  const get = (i: number, what: string): TensorProto => {
    const t = node.input[i] ? inits.get(node.input[i]) : undefined;
    if (!t) throw new WhittleError('UNSUPPORTED_MODEL', `MatMulNBits node ${node.name ?? ''} has no constant ${what}; GGUF export needs stored weights.`, { node: node.name });
    return t;
  };
  const packed = await readTensorBytes(get(1, 'weight'));
  const scales = await readTensorFloat32(get(2, 'scales'));
  let zeroPoints: Uint8Array | null = null;
  if (node.input[3]) {
    const z = get(3, 'zero points');
    if (z.dataType !== DataType.uint8) {
      throw new WhittleError('UNSUPPORTED_MODEL', `MatMulNBits node ${node.name ?? ''} has ${z.dataType === DataType.float32 ? 'float' : 'non-uint8'} zero points; GGUF export reads packed uint8 zero points only.`, { node: node.name });
    }
    zeroPoints = await readTensorBytes(z);
  }
  if (node.input.length > 5 && node.input[5]) {
    throw new WhittleError('UNSUPPORTED_MODEL', `MatMulNBits node ${node.name ?? ''} has a bias; the llama architecture in GGUF has none.`, { node: node.name });
  }
  return { packed, scales, zeroPoints, k: attrInt(node, 'K', 0), n: attrInt(node, 'N', 0), bits: attrInt(node, 'bits', 4), blockSize: attrInt(node, 'block_size', 32) };
}
