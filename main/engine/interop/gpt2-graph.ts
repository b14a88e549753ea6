/**
 * The ONNX decoder graph of a GPT-2 model in standard ops (opset 17) and the Hugging Face cache layout,
 * computing Transformers' GPT2LMHeadModel forward:
 *
 *   x = wte[input_ids] + wpe[position_ids]                               [B, S, E]
 *   per layer:  h = LN(x; ln_1);  q | k | v = h · c_attn (Conv1D, [E, 3E]) + b        heads: [B, nh, S, d]
 *               k, v ← concat(past, k|v) on the time axis → present                    [B, nh, T, d]
 *               a = softmax(q·kᵀ/√d + mask)·v → [B, S, E] · c_proj + b;  x += a
 *               h = LN(x; ln_2);  x += gelu(h · c_fc + b) · c_proj + b
 *   logits = LN(x; ln_f) · wteᵀ (or lm_head)                               [B, S, V]
 *
 * gelu_new is 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))); gelu is 0.5·x·(1 + erf(x/√2)). Conv1D weights
 * are already [in, out], so they are stored as they come; only an untied lm_head ([V, E]) is transposed.
 */
import { DataType } from '../onnx/dtype.ts';
import { floatAttr, intAttr, intsAttr } from '../onnx/graph.ts';
import type { GraphProto, ValueInfoProto } from '../onnx/proto-types.ts';
import { blockScalars, Builder, geluOps, valueInfo, weightList, type DeclaredWeight } from './graph-builder.ts';
import type { Gpt2Config } from './hf-config.ts';

export interface Gpt2GraphOptions {
  dtype: 'fp32' | 'fp16';
  cache: boolean;
  /** 'transformer.' when the checkpoint's names carry GPT2LMHeadModel's prefix, else ''. */
  prefix: string;
}

export function buildGpt2Graph(c: Gpt2Config, opts: Gpt2GraphOptions, tied: boolean): { graph: GraphProto; weights: DeclaredWeight[] } {
  const elem = opts.dtype === 'fp16' ? DataType.float16 : DataType.float32;
  const b = new Builder(elem);
  const { weights, weight } = weightList();
  const E = c.hiddenSize, NH = c.heads, D = E / NH, P = opts.prefix;

  const { scale, zero, minValue, half, one } = blockScalars(b, D, opts.dtype);
  const axis0 = b.ints('axis_0', [0]);
  const axis1 = b.ints('axis_1', [1]);
  const axes01 = b.ints('axes_0_1', [0, 1]);
  const axes12 = b.ints('axes_1_2', [1, 2]);
  const qkvSplit = b.ints('qkv_split', [E, E, E]);
  const headShape = b.ints('head_shape', [0, 0, NH, D]);
  const ctxShape = b.ints('ctx_shape', [0, 0, E]);
  const i0 = b.ints('i0', [0], true);
  const i1 = b.ints('i1', [1], true);

  // Additive mask [B, 1, S, T] (as in llama-graph.ts): keys after the query, or padding, are hidden.
  const S = b.one('Gather', [b.one('Shape', ['input_ids']), i1], [intAttr('axis', 0)]);
  const T = b.one('Gather', [b.one('Shape', ['attention_mask']), i1], [intAttr('axis', 0)]);
  const qcol = b.one('Unsqueeze', [b.one('Range', [b.one('Sub', [T, S]), T, i1]), axis1]);
  const krow = b.one('Unsqueeze', [b.one('Range', [i0, T, i1]), axis0]);
  const pad = b.one('Unsqueeze', [b.one('Equal', ['attention_mask', b.ints('i0_64', [0], true)]), axes12]);
  const maskBias = b.one('Where', [b.one('Or', [b.one('Unsqueeze', [b.one('Greater', [krow, qcol]), axes01]), pad]), minValue, zero]);

  const ln = (x: string, name: string): string => b.one('LayerNormalization', [x, weight(`${name}.weight`, [E]), weight(`${name}.bias`, [E])], [intAttr('axis', -1), floatAttr('epsilon', c.layerNormEps)]);
  const conv1d = (x: string, name: string, inF: number, outF: number): string => b.one('Add', [b.one('MatMul', [x, weight(`${name}.weight`, [inF, outF])]), weight(`${name}.bias`, [outF])]);
  const gelu = (x: string): string => geluOps(b, x, c.activation, half, one);

  const inputs: ValueInfoProto[] = [
    valueInfo('input_ids', DataType.int64, ['batch_size', 'sequence_length']),
    valueInfo('attention_mask', DataType.int64, ['batch_size', 'total_sequence_length']),
    valueInfo('position_ids', DataType.int64, ['batch_size', 'sequence_length']),
  ];
  const outputs: ValueInfoProto[] = [valueInfo('logits', elem, ['batch_size', 'sequence_length', c.vocabSize])];

  const wte = weight(`${P}wte.weight`, [c.vocabSize, E]);
  let x = b.one('Add', [b.one('Gather', [wte, 'input_ids'], [intAttr('axis', 0)]), b.one('Gather', [weight(`${P}wpe.weight`, [c.positions, E]), 'position_ids'], [intAttr('axis', 0)])]);
  for (let l = 0; l < c.layers; l++) {
    const p = `${P}h.${l}`;
    const qkv = conv1d(ln(x, `${p}.ln_1`), `${p}.attn.c_attn`, E, 3 * E);
    const [q0, k0, v0] = b.op('Split', [qkv, qkvSplit], [intAttr('axis', -1)], 3);
    const heads = (v: string): string => b.one('Transpose', [b.one('Reshape', [v, headShape])], [intsAttr('perm', [0, 2, 1, 3])]);
    const q = heads(q0);
    let k = heads(k0), v = heads(v0);
    if (opts.cache) {
      for (const kind of ['key', 'value'] as const) inputs.push(valueInfo(`past_key_values.${l}.${kind}`, elem, ['batch_size', NH, 'past_sequence_length', D]));
      for (const kind of ['key', 'value'] as const) outputs.push(valueInfo(`present.${l}.${kind}`, elem, ['batch_size', NH, 'total_sequence_length', D]));
      b.op('Concat', [`past_key_values.${l}.key`, k], [intAttr('axis', 2)], 1, `present_${l}_key`);
      b.nodes[b.nodes.length - 1].output[0] = `present.${l}.key`;
      b.op('Concat', [`past_key_values.${l}.value`, v], [intAttr('axis', 2)], 1, `present_${l}_value`);
      b.nodes[b.nodes.length - 1].output[0] = `present.${l}.value`;
      k = `present.${l}.key`;
      v = `present.${l}.value`;
    }
    const scores = b.one('Add', [b.one('Mul', [b.one('MatMul', [q, b.one('Transpose', [k], [intsAttr('perm', [0, 1, 3, 2])])]), scale]), maskBias]);
    const probs = b.one('Softmax', [scores], [intAttr('axis', -1)]);
    const ctx = b.one('Reshape', [b.one('Transpose', [b.one('MatMul', [probs, v])], [intsAttr('perm', [0, 2, 1, 3])]), ctxShape]);
    x = b.one('Add', [x, conv1d(ctx, `${p}.attn.c_proj`, E, E)]);
    const h = ln(x, `${p}.ln_2`);
    x = b.one('Add', [x, conv1d(gelu(conv1d(h, `${p}.mlp.c_fc`, E, c.inner)), `${p}.mlp.c_proj`, c.inner, E)]);
  }
  const final = ln(x, `${P}ln_f`);
  const head = tied ? b.one('Transpose', [wte], [intsAttr('perm', [1, 0])]) : weight('lm_head.weight', [E, c.vocabSize], true);
  b.op('MatMul', [final, head], [], 1, 'lm_head');
  b.nodes[b.nodes.length - 1].output[0] = 'logits';

  const graph: GraphProto = {
    name: 'gpt2_decoder', node: b.nodes, initializer: b.consts, sparseInitializer: [], input: inputs, output: outputs,
    valueInfo: [], quantizationAnnotation: [], metadataProps: [],
  };
  return { graph, weights };
}
