/**
 * The ONNX decoder graph of a Llama-family model (Llama, Mistral, Qwen2, Qwen3), in standard ops (opset 17)
 * and the Hugging Face cache layout. Weights are declared here (name, shape, where they come from) and
 * written by the importer; the graph computes exactly Transformers' LlamaForCausalLM forward:
 *
 *   x = embed[input_ids]                                             [B, S, H]
 *   per layer:  h = rms(x)·w_in;  q,k,v = h·Wqᵀ(+b), h·Wkᵀ(+b), h·Wvᵀ(+b)   heads: [B, nh|nkv, S, D]
 *               (qwen3: q, k ← rms over D · q_norm / k_norm)
 *               q, k ← q·cos + rotate_half(q)·sin  (cos/sin from position_ids · inv_freq, [B, 1, S, D])
 *               k, v ← concat(past, k|v) on the time axis → present          [B, nkv, T, D]
 *               k, v repeated nh/nkv times (GQA) → [B, nh, T, D]
 *               a = softmax(q·kᵀ/√D + mask)·v → [B, S, nh·D] · Woᵀ(+b);  x += a
 *               h = rms(x)·w_post;  x += (silu(h·Wgᵀ) ⊙ h·Wuᵀ)·Wdᵀ
 *   logits = rms(x)·w_final · Wlmᵀ (Wlm = embed when tied)             [B, S, V]
 *
 * mask [B, 1, S, T]: a key is hidden when it is after the query (k > P + s), padding (attention_mask 0), or
 * with a sliding window W, when k ≤ q − W. Linear weights are stored transposed ([in, out]) so each
 * projection is one MatMul.
 */
import { DataType } from '../onnx/dtype.ts';
import { intAttr, intsAttr } from '../onnx/graph.ts';
import type { GraphProto, ValueInfoProto } from '../onnx/proto-types.ts';
import { makeTensor } from '../onnx/tensor-data.ts';
import { Builder, valueInfo, type DeclaredWeight } from './graph-builder.ts';
import { ropeInverseFrequencies, type LlamaConfig } from './hf-config.ts';

export type { DeclaredWeight } from './graph-builder.ts';

export interface LlamaGraphOptions {
  dtype: 'fp32' | 'fp16';
  cache: boolean;
}

export interface LlamaGraph {
  graph: GraphProto;
  weights: DeclaredWeight[];
}

/** Builds the decoder graph and the list of weights it reads (see the header). */
export function buildLlamaGraph(c: LlamaConfig, opts: LlamaGraphOptions, tied: boolean): LlamaGraph {
  const elem = opts.dtype === 'fp16' ? DataType.float16 : DataType.float32;
  const b = new Builder(elem);
  const weights: DeclaredWeight[] = [];
  const H = c.hiddenSize, D = c.headDim, NH = c.heads, NKV = c.kvHeads;
  const weight = (source: string, dims: number[], transpose = false): string => {
    const name = transpose ? `${source}_t` : source;
    weights.push({ name, dims, source, transpose });
    return name;
  };

  // Constants.
  const eps = b.floats('rms_eps', [c.rmsNormEps], []);
  const one = b.floats('one', [1], []);
  const scale = b.floats('attn_scale', [1 / Math.sqrt(D)], []);
  const zero = b.floats('zero', [0], []);
  const minValue = b.floats('mask_min', [opts.dtype === 'fp16' ? -65504 : -3.4028234663852886e38], []);
  const invFreq = 'rope_inv_freq';
  b.consts.push(makeTensor(invFreq, DataType.float32, [D / 2], ropeInverseFrequencies(c)));
  const axisLast = b.ints('axis_last', [-1]);
  const axis0 = b.ints('axis_0', [0]);
  const axis1 = b.ints('axis_1', [1]);
  const axes01 = b.ints('axes_0_1', [0, 1]);
  const axes12 = b.ints('axes_1_2', [1, 2]);
  const splitHalf = b.ints('rope_split', [D / 2, D / 2]);
  const qShape = b.ints('q_shape', [0, 0, NH, D]);
  const kvShape = b.ints('kv_shape', [0, 0, NKV, D]);
  const ctxShape = b.ints('ctx_shape', [0, 0, NH * D]);
  const rep = NH / NKV;
  const repShape = b.ints('gqa_expand', [1, 1, rep, 1, 1]);
  const repMerge = b.ints('gqa_merge', [0, NH, -1, D]);
  const i0 = b.ints('i0', [0], true);
  const i1 = b.ints('i1', [1], true);

  // cos/sin [B, 1, S, D] from position_ids: freqs = pos · inv_freq, doubled (rotate_half layout).
  const pos = b.one('Cast', ['position_ids'], [intAttr('to', DataType.float32)]);
  const freqs = b.one('Mul', [b.one('Unsqueeze', [pos, axisLast]), invFreq]);
  const angles = b.one('Concat', [freqs, freqs], [intAttr('axis', -1)]);
  const toElem = (v: string): string => (elem === DataType.float32 ? v : b.one('Cast', [v], [intAttr('to', elem)]));
  const cos = toElem(b.one('Unsqueeze', [b.one('Cos', [angles]), axis1]));
  const sin = toElem(b.one('Unsqueeze', [b.one('Sin', [angles]), axis1]));

  // Additive mask [B, 1, S, T].
  const idsShape = b.one('Shape', ['input_ids']);
  const maskShape = b.one('Shape', ['attention_mask']);
  const S = b.one('Gather', [idsShape, i1], [intAttr('axis', 0)]);
  const T = b.one('Gather', [maskShape, i1], [intAttr('axis', 0)]);
  const P = b.one('Sub', [T, S]);
  const qpos = b.one('Range', [P, T, i1]);
  const kpos = b.one('Range', [i0, T, i1]);
  const qcol = b.one('Unsqueeze', [qpos, axis1]); // [S, 1]
  const krow = b.one('Unsqueeze', [kpos, axis0]); // [1, T]
  let hidden = b.one('Greater', [krow, qcol]); // [S, T]
  if (c.slidingWindow !== null) {
    const window = b.ints('sliding_window', [c.slidingWindow], true);
    hidden = b.one('Or', [hidden, b.one('LessOrEqual', [krow, b.one('Sub', [qcol, window])])]);
  }
  const pad = b.one('Unsqueeze', [b.one('Equal', ['attention_mask', b.ints('i0_64', [0], true)]), axes12]); // [B, 1, 1, T]
  const maskBias = b.one('Where', [b.one('Or', [b.one('Unsqueeze', [hidden, axes01]), pad]), minValue, zero]);

  // In a float16 graph the norm statistics and the softmax run in float32, as Transformers upcasts them:
  // x² overflows float16 once |x| > 256, which real models' residual streams reach.
  const wide = elem === DataType.float16;
  const eps32 = wide ? 'rms_eps_f32' : eps, one32 = wide ? 'one_f32' : one;
  if (wide) b.consts.push(makeTensor(eps32, DataType.float32, [], Float32Array.of(c.rmsNormEps)), makeTensor(one32, DataType.float32, [], Float32Array.of(1)));
  const toF32 = (v: string): string => (wide ? b.one('Cast', [v], [intAttr('to', DataType.float32)]) : v);
  const fromF32 = (v: string): string => (wide ? b.one('Cast', [v], [intAttr('to', elem)]) : v);
  const rms = (x: string, w: string): string => {
    const xf = toF32(x);
    const ms = b.one('ReduceMean', [b.one('Mul', [xf, xf])], [intsAttr('axes', [-1]), intAttr('keepdims', 1)]);
    const inv = b.one('Div', [one32, b.one('Sqrt', [b.one('Add', [ms, eps32])])]);
    return b.one('Mul', [fromF32(b.one('Mul', [xf, inv])), w]);
  };
  const linear = (x: string, source: string, inF: number, outF: number, bias: boolean): string => {
    const y = b.one('MatMul', [x, weight(`${source}.weight`, [inF, outF], true)]);
    return bias ? b.one('Add', [y, weight(`${source}.bias`, [outF])]) : y;
  };
  const rope = (x: string): string => {
    const [x1, x2] = b.op('Split', [x, splitHalf], [intAttr('axis', -1)], 2);
    const rotated = b.one('Concat', [b.one('Neg', [x2]), x1], [intAttr('axis', -1)]);
    return b.one('Add', [b.one('Mul', [x, cos]), b.one('Mul', [rotated, sin])]);
  };
  const repeatKv = (x: string): string => (rep === 1 ? x : b.one('Reshape', [b.one('Expand', [b.one('Unsqueeze', [x, b.ints(`${x}_axis2`, [2])]), repShape]), repMerge]));

  const inputs: ValueInfoProto[] = [
    valueInfo('input_ids', DataType.int64, ['batch_size', 'sequence_length']),
    valueInfo('attention_mask', DataType.int64, ['batch_size', 'total_sequence_length']),
    valueInfo('position_ids', DataType.int64, ['batch_size', 'sequence_length']),
  ];
  const outputs: ValueInfoProto[] = [valueInfo('logits', elem, ['batch_size', 'sequence_length', c.vocabSize])];

  const embed = weight('model.embed_tokens.weight', [c.vocabSize, H]);
  let x = b.one('Gather', [embed, 'input_ids'], [intAttr('axis', 0)]);
  for (let l = 0; l < c.layers; l++) {
    const p = `model.layers.${l}`;
    const h = rms(x, weight(`${p}.input_layernorm.weight`, [H]));
    const heads = (v: string, shape: string, norm: string | null): string => {
      let r = b.one('Reshape', [v, shape]); // [B, S, n, D]
      if (norm) r = rms(r, weight(norm, [D]));
      return b.one('Transpose', [r], [intsAttr('perm', [0, 2, 1, 3])]); // [B, n, S, D]
    };
    const q = rope(heads(linear(h, `${p}.self_attn.q_proj`, H, NH * D, c.qkvBias), qShape, c.qkNorm ? `${p}.self_attn.q_norm.weight` : null));
    let k = rope(heads(linear(h, `${p}.self_attn.k_proj`, H, NKV * D, c.qkvBias), kvShape, c.qkNorm ? `${p}.self_attn.k_norm.weight` : null));
    let v = heads(linear(h, `${p}.self_attn.v_proj`, H, NKV * D, c.qkvBias), kvShape, null);
    if (opts.cache) {
      for (const kind of ['key', 'value'] as const) inputs.push(valueInfo(`past_key_values.${l}.${kind}`, elem, ['batch_size', NKV, 'past_sequence_length', D]));
      for (const kind of ['key', 'value'] as const) outputs.push(valueInfo(`present.${l}.${kind}`, elem, ['batch_size', NKV, 'total_sequence_length', D]));
      k = b.one('Concat', [`past_key_values.${l}.key`, k], [intAttr('axis', 2)], `present_${l}_key`);
      v = b.one('Concat', [`past_key_values.${l}.value`, v], [intAttr('axis', 2)], `present_${l}_value`);
      b.nodes[b.nodes.length - 2].output[0] = `present.${l}.key`;
      b.nodes[b.nodes.length - 1].output[0] = `present.${l}.value`;
      k = `present.${l}.key`;
      v = `present.${l}.value`;
    }
    const kT = b.one('Transpose', [repeatKv(k)], [intsAttr('perm', [0, 1, 3, 2])]); // [B, nh, D, T]
    const scores = b.one('Add', [b.one('Mul', [b.one('MatMul', [q, kT]), scale]), maskBias]); // [B, nh, S, T]
    const probs = fromF32(b.one('Softmax', [toF32(scores)], [intAttr('axis', -1)]));
    const ctx = b.one('Reshape', [b.one('Transpose', [b.one('MatMul', [probs, repeatKv(v)])], [intsAttr('perm', [0, 2, 1, 3])]), ctxShape]);
    x = b.one('Add', [x, linear(ctx, `${p}.self_attn.o_proj`, NH * D, H, c.oBias)]);

    const h2 = rms(x, weight(`${p}.post_attention_layernorm.weight`, [H]));
    const gate = linear(h2, `${p}.mlp.gate_proj`, H, c.intermediateSize, false);
    const silu = b.one('Mul', [gate, b.one('Sigmoid', [gate])]);
    const up = linear(h2, `${p}.mlp.up_proj`, H, c.intermediateSize, false);
    x = b.one('Add', [x, linear(b.one('Mul', [silu, up]), `${p}.mlp.down_proj`, c.intermediateSize, H, false)]);
  }
  const final = rms(x, weight('model.norm.weight', [H]));
  const head = tied ? b.one('Transpose', [embed], [intsAttr('perm', [1, 0])]) : weight('lm_head.weight', [H, c.vocabSize], true);
  b.op('MatMul', [final, head], [], 1, 'lm_head');
  b.nodes[b.nodes.length - 1].output[0] = 'logits';

  const graph: GraphProto = {
    name: `${c.modelType}_decoder`,
    node: b.nodes,
    initializer: b.consts,
    sparseInitializer: [],
    input: inputs,
    output: outputs,
    valueInfo: [],
    quantizationAnnotation: [],
    metadataProps: [],
  };
  return { graph, weights };
}
