/**
 * The ONNX graph of a BERT-style encoder in standard ops (opset 17), as Transformers' BertModel computes it
 * (post-norm blocks):
 *
 *   x = LN(word[input_ids] + position[0…S−1] + token_type[token_type_ids]; embeddings.LayerNorm)   [B, S, H]
 *   per layer:  q, k, v = x·Wᵀ + b → heads [B, nh, S, d];  a = softmax(q·kᵀ/√d + mask)·v → [B, S, H]
 *               x = LN(x + a·Woᵀ + bo; attention.output.LayerNorm)
 *               x = LN(x + gelu(x·Wiᵀ + bi)·Wo2ᵀ + bo2; output.LayerNorm)
 *   last_hidden_state = x;  pooler_output = tanh(x[:, 0]·Wpᵀ + bp) (when the checkpoint has a pooler);
 *   logits = pooler_output·Wcᵀ + bc (when it has a sequence classifier)                           [B, C]
 *
 * mask [B, 1, 1, S]: padding keys (attention_mask 0) get the dtype's lowest value.
 */
import { DataType } from '../onnx/dtype.ts';
import { floatAttr, intAttr, intsAttr } from '../onnx/graph.ts';
import type { GraphProto, ValueInfoProto } from '../onnx/proto-types.ts';
import { blockScalars, Builder, geluOps, valueInfo, weightList, type DeclaredWeight } from './graph-builder.ts';
import type { BertConfig } from './hf-config.ts';

export interface BertGraphOptions {
  dtype: 'fp32' | 'fp16';
  /** 'bert.' when the names carry BertFor…'s prefix, else ''. */
  prefix: string;
  pooler: boolean;
  /** Rows of the sequence classifier (num_labels), or null. */
  classes: number | null;
}

export function buildBertGraph(c: BertConfig, opts: BertGraphOptions): { graph: GraphProto; weights: DeclaredWeight[] } {
  const elem = opts.dtype === 'fp16' ? DataType.float16 : DataType.float32;
  const b = new Builder(elem);
  const { weights, weight } = weightList();
  const H = c.hiddenSize, NH = c.heads, D = H / NH, P = opts.prefix;
  const { scale, zero, minValue, half, one } = blockScalars(b, D, opts.dtype);
  const headShape = b.ints('head_shape', [0, 0, NH, D]);
  const ctxShape = b.ints('ctx_shape', [0, 0, H]);
  const i0 = b.ints('i0', [0], true);
  const i1 = b.ints('i1', [1], true);

  const ln = (x: string, name: string): string => b.one('LayerNormalization', [x, weight(`${name}.weight`, [H]), weight(`${name}.bias`, [H])], [intAttr('axis', -1), floatAttr('epsilon', c.layerNormEps)]);
  const linear = (x: string, name: string, inF: number, outF: number): string => b.one('Add', [b.one('MatMul', [x, weight(`${name}.weight`, [inF, outF], true)]), weight(`${name}.bias`, [outF])]);
  const gelu = (x: string): string => geluOps(b, x, c.activation, half, one);

  const inputs: ValueInfoProto[] = [
    valueInfo('input_ids', DataType.int64, ['batch_size', 'sequence_length']),
    valueInfo('attention_mask', DataType.int64, ['batch_size', 'sequence_length']),
    valueInfo('token_type_ids', DataType.int64, ['batch_size', 'sequence_length']),
  ];
  const outputs: ValueInfoProto[] = [valueInfo('last_hidden_state', elem, ['batch_size', 'sequence_length', H])];

  const S = b.one('Gather', [b.one('Shape', ['input_ids']), i1], [intAttr('axis', 0)]);
  const positions = b.one('Range', [i0, S, i1]);
  const e = `${P}embeddings`;
  const sum = b.one('Add', [
    b.one('Add', [b.one('Gather', [weight(`${e}.word_embeddings.weight`, [c.vocabSize, H]), 'input_ids'], [intAttr('axis', 0)]), b.one('Gather', [weight(`${e}.position_embeddings.weight`, [c.positions, H]), positions], [intAttr('axis', 0)])]),
    b.one('Gather', [weight(`${e}.token_type_embeddings.weight`, [c.typeVocabSize, H]), 'token_type_ids'], [intAttr('axis', 0)]),
  ]);
  let x = ln(sum, `${e}.LayerNorm`);
  const pad = b.one('Unsqueeze', [b.one('Equal', ['attention_mask', b.ints('i0_64', [0], true)]), b.ints('axes_1_2', [1, 2])]); // [B, 1, 1, S]
  const maskBias = b.one('Where', [pad, minValue, zero]);

  for (let l = 0; l < c.layers; l++) {
    const p = `${P}encoder.layer.${l}`;
    const heads = (v: string): string => b.one('Transpose', [b.one('Reshape', [v, headShape])], [intsAttr('perm', [0, 2, 1, 3])]);
    const q = heads(linear(x, `${p}.attention.self.query`, H, H));
    const k = heads(linear(x, `${p}.attention.self.key`, H, H));
    const v = heads(linear(x, `${p}.attention.self.value`, H, H));
    const scores = b.one('Add', [b.one('Mul', [b.one('MatMul', [q, b.one('Transpose', [k], [intsAttr('perm', [0, 1, 3, 2])])]), scale]), maskBias]);
    const ctx = b.one('Reshape', [b.one('Transpose', [b.one('MatMul', [b.one('Softmax', [scores], [intAttr('axis', -1)]), v])], [intsAttr('perm', [0, 2, 1, 3])]), ctxShape]);
    x = ln(b.one('Add', [x, linear(ctx, `${p}.attention.output.dense`, H, H)]), `${p}.attention.output.LayerNorm`);
    const inner = gelu(linear(x, `${p}.intermediate.dense`, H, c.intermediateSize));
    x = ln(b.one('Add', [x, linear(inner, `${p}.output.dense`, c.intermediateSize, H)]), `${p}.output.LayerNorm`);
  }
  b.op('Identity', [x], [], 1, 'last_hidden_state');
  b.nodes[b.nodes.length - 1].output[0] = 'last_hidden_state';
  if (opts.pooler) {
    const first = b.one('Gather', ['last_hidden_state', i0], [intAttr('axis', 1)]); // the first token's state [B, H]
    const pooled = b.one('Tanh', [linear(first, `${P}pooler.dense`, H, H)]);
    b.op('Identity', [pooled], [], 1, 'pooler_output');
    b.nodes[b.nodes.length - 1].output[0] = 'pooler_output';
    outputs.push(valueInfo('pooler_output', elem, ['batch_size', H]));
    if (opts.classes !== null) {
      b.op('Identity', [linear('pooler_output', 'classifier', H, opts.classes)], [], 1, 'logits');
      b.nodes[b.nodes.length - 1].output[0] = 'logits';
      outputs.push(valueInfo('logits', elem, ['batch_size', opts.classes]));
    }
  }
  const graph: GraphProto = {
    name: 'bert_encoder', node: b.nodes, initializer: b.consts, sparseInitializer: [], input: inputs, output: outputs,
    valueInfo: [], quantizationAnnotation: [], metadataProps: [],
  };
  return { graph, weights };
}
