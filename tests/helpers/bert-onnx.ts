/**
 * Tiny BERT-style encoders written with Whittle's own ONNX builders, in the layout of a Hugging Face
 * export: inputs input_ids, attention_mask, token_type_ids [batch, sequence] (int64); word + position +
 * token-type embeddings, LayerNorm; L post-norm blocks (self-attention with the additive mask
 * (1 − mask)·−10000, Gelu feed-forward); then either the hidden state `last_hidden_state` [batch, sequence, D]
 * (a feature-extraction export) or class logits `logits` [batch, C] from the masked mean of the hidden
 * state through a Linear [D, C] (a sequence-classification export).
 *
 * Weights are named like the Hugging Face checkpoint (bert.encoder.layer.{l}.attention.self.query.weight …),
 * stored [in, out] so MatMul takes them as they are. `blocksOf` keeps a subset of the blocks (a
 * DistilBERT-style student initialised from its teacher).
 */
import { mulberry32 } from '../../main/engine/calibrate/prng.ts';
import { DataType } from '../../main/engine/onnx/dtype.ts';
import { floatAttr, intAttr, intsAttr, makeNode } from '../../main/engine/onnx/graph.ts';
import type { ModelProto, NodeProto, TensorProto, ValueInfoProto } from '../../main/engine/onnx/proto-types.ts';
import { makeTensor } from '../../main/engine/onnx/tensor-data.ts';

export interface BertShape {
  /** Rows of the word-embedding table. */
  vocab: number;
  /**
   * A trimmed vocabulary: row of each tokenizer id (the model reads Gather(rowOf, input_ids) from its
   * table of `vocab` rows; ids outside the trimmed set share row 0). Without it, rows are the ids.
   */
  rowOf?: Int32Array;
  dim: number;
  heads: number;
  hidden: number;
  layers: number;
  maxPositions: number;
  classes: number;
}

/**
 * The trimmed vocabulary of `texts` under `encode`: row 0 for every id not seen (and [PAD]), then one row
 * per distinct id in order of first appearance, `special` ids ([CLS], [SEP]) first.
 */
export function trimmedVocabulary(texts: string[], encode: (t: string) => number[], tokenizerVocab: number, special: number[]): { rowOf: Int32Array; rows: number } {
  const rowOf = new Int32Array(tokenizerVocab);
  let rows = 1;
  const add = (id: number): void => { if (rowOf[id] === 0) rowOf[id] = rows++; };
  special.forEach(add);
  for (const t of texts) encode(t).forEach(add);
  return { rowOf, rows };
}

/** Every weight by name, float32. */
export type BertWeights = Map<string, { dims: number[]; data: Float32Array }>;

const layerName = (l: number, rest: string): string => `bert.encoder.layer.${l}.${rest}`;

function normals(count: number, std: number, next: () => number): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - next())) * std;
    const a = 2 * Math.PI * next();
    out[i] = r * Math.cos(a);
    if (i + 1 < count) out[i + 1] = r * Math.sin(a);
  }
  return out;
}

/** BERT's init: normal(0, 0.02) matrices and embeddings, zero biases, LayerNorm gains 1. */
export function randomBertWeights(s: BertShape, seed: number): BertWeights {
  const next = mulberry32(seed).next;
  const w: BertWeights = new Map();
  const put = (name: string, dims: number[], data?: Float32Array): void => {
    w.set(name, { dims, data: data ?? normals(dims.reduce((a, b) => a * b, 1), 0.02, next) });
  };
  const zeros = (n: number): Float32Array => new Float32Array(n);
  const ones = (n: number): Float32Array => new Float32Array(n).fill(1);
  const D = s.dim;
  put('bert.embeddings.word_embeddings.weight', [s.vocab, D]);
  put('bert.embeddings.position_embeddings.weight', [s.maxPositions, D]);
  put('bert.embeddings.token_type_embeddings.weight', [2, D]);
  put('bert.embeddings.LayerNorm.weight', [D], ones(D));
  put('bert.embeddings.LayerNorm.bias', [D], zeros(D));
  for (let l = 0; l < s.layers; l++) {
    for (const p of ['attention.self.query', 'attention.self.key', 'attention.self.value', 'attention.output.dense']) {
      put(layerName(l, `${p}.weight`), [D, D]);
      put(layerName(l, `${p}.bias`), [D], zeros(D));
    }
    put(layerName(l, 'attention.output.LayerNorm.weight'), [D], ones(D));
    put(layerName(l, 'attention.output.LayerNorm.bias'), [D], zeros(D));
    put(layerName(l, 'intermediate.dense.weight'), [D, s.hidden]);
    put(layerName(l, 'intermediate.dense.bias'), [s.hidden], zeros(s.hidden));
    put(layerName(l, 'output.dense.weight'), [s.hidden, D]);
    put(layerName(l, 'output.dense.bias'), [D], zeros(D));
    put(layerName(l, 'output.LayerNorm.weight'), [D], ones(D));
    put(layerName(l, 'output.LayerNorm.bias'), [D], zeros(D));
  }
  put('classifier.weight', [D, s.classes]);
  put('classifier.bias', [s.classes], zeros(s.classes));
  return w;
}

/** A student's weights: the embeddings and classifier as they are, blocks `keep` renumbered 0, 1, …. */
export function blocksOf(weights: BertWeights, keep: number[]): BertWeights {
  const out: BertWeights = new Map();
  for (const [name, t] of weights) {
    const m = /^bert\.encoder\.layer\.(\d+)\.(.*)$/.exec(name);
    if (!m) { out.set(name, { dims: [...t.dims], data: t.data.slice() }); continue; }
    const at = keep.indexOf(Number(m[1]));
    if (at >= 0) out.set(layerName(at, m[2]), { dims: [...t.dims], data: t.data.slice() });
  }
  return out;
}

function info(name: string, elemType: number, shape: (number | string)[]): ValueInfoProto {
  return { name, type: { tensorType: { elemType, shape: { dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } }, metadataProps: [] };
}

/**
 * The ONNX model of `s` with `weights` (see the header); `output` picks the export. With `contrib`, the
 * graph is in the layout of onnxruntime's transformer optimizer: EmbedLayerNormalization (int32 ids and
 * mask, mask_index out), Attention on a packed [D, 3D] QKV weight with the mask_index, BiasGelu, and
 * SkipLayerNormalization with the projection's bias (com.microsoft ops); the same function as without.
 */
export function buildBertOnnx(s: BertShape, weights: BertWeights, output: 'logits' | 'hidden' = 'logits', options: { contrib?: boolean } = {}): ModelProto {
  const D = s.dim, NH = s.heads, DH = D / NH;
  const nodes: NodeProto[] = [];
  let k = 0;
  const node = (opType: string, inputs: string[], attributes: ReturnType<typeof intAttr>[] = [], out?: string, domain?: string): string => {
    const name = out ?? `${opType.toLowerCase()}_${k++}`;
    nodes.push(makeNode({ opType, inputs, outputs: [name], name, attributes, domain }));
    return name;
  };
  const ms = (opType: string, inputs: string[], attributes: ReturnType<typeof intAttr>[] = [], outputs = 1): string[] => {
    const names = Array.from({ length: outputs }, (_, i) => `${opType.toLowerCase()}_${k}_${i}`);
    nodes.push(makeNode({ opType, inputs, outputs: names, name: `${opType.toLowerCase()}_${k++}`, attributes, domain: 'com.microsoft' }));
    return names;
  };
  const inits: TensorProto[] = [];
  const packed = new Set<string>();
  if (options.contrib) {
    // QKV packed as [D, 3D] (columns q | k | v) and its bias [3D].
    for (let l = 0; l < s.layers; l++) {
      const part = (p: string, what: string): Float32Array => weights.get(layerName(l, `attention.self.${p}.${what}`))!.data;
      const w = new Float32Array(D * 3 * D), bias = new Float32Array(3 * D);
      ['query', 'key', 'value'].forEach((p, j) => {
        const pw = part(p, 'weight');
        for (let r = 0; r < D; r++) w.set(pw.subarray(r * D, (r + 1) * D), r * 3 * D + j * D);
        bias.set(part(p, 'bias'), j * D);
        packed.add(layerName(l, `attention.self.${p}.weight`)).add(layerName(l, `attention.self.${p}.bias`));
      });
      inits.push(makeTensor(layerName(l, 'attention.self.qkv.weight'), DataType.float32, [D, 3 * D], w));
      inits.push(makeTensor(layerName(l, 'attention.self.qkv.bias'), DataType.float32, [3 * D], bias));
    }
  }
  for (const [name, t] of weights) if (!packed.has(name)) inits.push(makeTensor(name, DataType.float32, t.dims, t.data));
  const i64 = (name: string, dims: number[], values: number[]): string => { inits.push(makeTensor(name, DataType.int64, dims, BigInt64Array.from(values.map(BigInt)))); return name; };
  const f32 = (name: string, v: number): string => { inits.push(makeTensor(name, DataType.float32, [], Float32Array.of(v))); return name; };
  i64('const.positions', [s.maxPositions], Array.from({ length: s.maxPositions }, (_, i) => i));
  i64('const.zero1', [1], [0]); i64('const.one1', [1], [1]); i64('const.axes12', [2], [1, 2]); i64('const.axis1', [1], [1]);
  i64('const.heads_shape', [4], [0, 0, NH, DH]); i64('const.merge_shape', [3], [0, 0, D]);
  f32('const.one', 1); f32('const.big_negative', -10000); f32('const.inv_sqrt_dh', 1 / Math.sqrt(DH)); f32('const.sqrt2', Math.SQRT2); f32('const.half', 0.5);

  const layerNorm = (x: string, prefix: string): string => node('LayerNormalization', [x, `${prefix}.weight`, `${prefix}.bias`], [intAttr('axis', -1), floatAttr('epsilon', 1e-12)]);
  const linear = (x: string, prefix: string): string => node('Add', [node('MatMul', [x, `${prefix}.weight`]), `${prefix}.bias`]);

  const maskF = node('Cast', ['attention_mask'], [intAttr('to', DataType.float32)]);
  const x = options.contrib ? contribEncoder() : standardEncoder();

  function contribEncoder(): string {
    const i32 = (t: string): string => node('Cast', [t], [intAttr('to', DataType.int32)]);
    const [emb, maskIndex] = ms('EmbedLayerNormalization', [
      i32(rowsOf()), i32('token_type_ids'), 'bert.embeddings.word_embeddings.weight', 'bert.embeddings.position_embeddings.weight',
      'bert.embeddings.token_type_embeddings.weight', 'bert.embeddings.LayerNorm.weight', 'bert.embeddings.LayerNorm.bias', i32('attention_mask'),
    ], [floatAttr('epsilon', 1e-12)], 2);
    let h = emb;
    for (let l = 0; l < s.layers; l++) {
      const [ctx] = ms('Attention', [h, layerName(l, 'attention.self.qkv.weight'), layerName(l, 'attention.self.qkv.bias'), maskIndex], [intAttr('num_heads', NH)]);
      const o = node('MatMul', [ctx, layerName(l, 'attention.output.dense.weight')]);
      const [h1] = ms('SkipLayerNormalization', [o, h, layerName(l, 'attention.output.LayerNorm.weight'), layerName(l, 'attention.output.LayerNorm.bias'), layerName(l, 'attention.output.dense.bias')], [floatAttr('epsilon', 1e-12)]);
      const [gelu] = ms('BiasGelu', [node('MatMul', [h1, layerName(l, 'intermediate.dense.weight')]), layerName(l, 'intermediate.dense.bias')]);
      const f = node('MatMul', [gelu, layerName(l, 'output.dense.weight')]);
      [h] = ms('SkipLayerNormalization', [f, h1, layerName(l, 'output.LayerNorm.weight'), layerName(l, 'output.LayerNorm.bias'), layerName(l, 'output.dense.bias')], [floatAttr('epsilon', 1e-12)]);
    }
    return h;
  }

  function rowsOf(): string {
    if (!s.rowOf) return 'input_ids';
    inits.push(makeTensor('const.row_of_token', DataType.int64, [s.rowOf.length], BigInt64Array.from(s.rowOf, (r) => BigInt(r))));
    return node('Gather', ['const.row_of_token', 'input_ids']);
  }

  function standardEncoder(): string {
    // Embeddings: positions 0…T−1 sliced from a constant range by the sequence length.
    const seqLen = node('Slice', [node('Shape', ['input_ids']), 'const.one1', node('Add', ['const.one1', 'const.one1'])]);
    const positions = node('Slice', ['const.positions', 'const.zero1', seqLen]);
    const words = node('Gather', ['bert.embeddings.word_embeddings.weight', rowsOf()]);
    const pos = node('Gather', ['bert.embeddings.position_embeddings.weight', positions]);
    const types = node('Gather', ['bert.embeddings.token_type_embeddings.weight', 'token_type_ids']);
    let x = layerNorm(node('Add', [node('Add', [words, pos]), types]), 'bert.embeddings.LayerNorm');

    // Additive mask [B, 1, 1, T].
    const maskAdd = node('Unsqueeze', [node('Mul', [node('Sub', ['const.one', maskF]), 'const.big_negative']), 'const.axes12']);

    for (let l = 0; l < s.layers; l++) {
      const split = (t: string, perm: number[]): string => node('Transpose', [node('Reshape', [t, 'const.heads_shape'])], [intsAttr('perm', perm)]);
      const q = split(linear(x, layerName(l, 'attention.self.query')), [0, 2, 1, 3]);
      const kT = split(linear(x, layerName(l, 'attention.self.key')), [0, 2, 3, 1]);
      const v = split(linear(x, layerName(l, 'attention.self.value')), [0, 2, 1, 3]);
      const scores = node('Add', [node('Mul', [node('MatMul', [q, kT]), 'const.inv_sqrt_dh']), maskAdd]);
      const ctx = node('MatMul', [node('Softmax', [scores], [intAttr('axis', -1)]), v]);
      const merged = node('Reshape', [node('Transpose', [ctx], [intsAttr('perm', [0, 2, 1, 3])]), 'const.merge_shape']);
      x = layerNorm(node('Add', [x, linear(merged, layerName(l, 'attention.output.dense'))]), layerName(l, 'attention.output.LayerNorm'));
      const h = linear(x, layerName(l, 'intermediate.dense'));
      // Gelu(h) = h · ½ · (1 + erf(h / √2))
      const gelu = node('Mul', [node('Mul', [h, node('Add', [node('Erf', [node('Div', [h, 'const.sqrt2'])]), 'const.one'])]), 'const.half']);
      x = layerNorm(node('Add', [x, linear(gelu, layerName(l, 'output.dense'))]), layerName(l, 'output.LayerNorm'));
    }
    return x;
  }

  const inputs = ['input_ids', 'attention_mask', 'token_type_ids'].map((n) => info(n, DataType.int64, ['batch_size', 'sequence_length']));
  let outputs: ValueInfoProto[];
  if (output === 'hidden') {
    nodes.push(makeNode({ opType: 'Identity', inputs: [x], outputs: ['last_hidden_state'], name: 'last_hidden_state' }));
    outputs = [info('last_hidden_state', DataType.float32, ['batch_size', 'sequence_length', D])];
  } else {
    // Masked mean over the tokens: Σ_t h_t · m_t / Σ_t m_t, then the classifier.
    const m3 = node('Unsqueeze', [maskF, i64('const.last_axis', [1], [2])]); // [B, T, 1]
    const summed = node('ReduceSum', [node('Mul', [x, m3]), 'const.axis1'], [intAttr('keepdims', 0)]);
    const count = node('ReduceSum', [m3, 'const.axis1'], [intAttr('keepdims', 0)]);
    const pooled = node('Div', [summed, count]);
    node('Add', [node('MatMul', [pooled, 'classifier.weight']), 'classifier.bias'], [], 'logits');
    outputs = [info('logits', DataType.float32, ['batch_size', s.classes])];
  }
  if (output === 'hidden') {
    // The classifier is not part of a feature-extraction export.
    for (let i = inits.length - 1; i >= 0; i--) if (inits[i].name?.startsWith('classifier.')) inits.splice(i, 1);
  }
  return {
    irVersion: 10,
    opsetImport: [{ domain: '', version: 18 }, ...(options.contrib ? [{ domain: 'com.microsoft', version: 1 }] : [])],
    producerName: 'whittle-tests',
    graph: { node: nodes, name: 'bert', initializer: inits, sparseInitializer: [], input: inputs, output: outputs, valueInfo: [], quantizationAnnotation: [], metadataProps: [] },
    metadataProps: [], trainingInfo: [], functions: [], configuration: [],
  };
}
