/**
 * A decoder of real Llama shapes with random weights, for benchmarks (default ~0.5 B parameters at 8 layers):
 * input_ids → Gather(embed [32000, 2048]) → L × { RMSNorm → q/k/v [2048, 2048] → single-position attention
 * (softmax over one score = 1, so it is exactly v, but q and k stay live) → o [2048, 2048] → residual →
 * RMSNorm → SwiGLU gate/up [2048, 5632], down [5632, 2048] → residual } → RMSNorm → lm_head [2048, 32000]
 * → logits. External data, fp32. Tokens do not interact (no real attention), so any sequence length runs.
 */
import { rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { DataType } from '../../../main/engine/onnx/dtype.ts';
import { intAttr, intsAttr, makeNode } from '../../../main/engine/onnx/graph.ts';
import type { NodeProto, TensorProto } from '../../../main/engine/onnx/proto-types.ts';
import { makeTensor } from '../../../main/engine/onnx/tensor-data.ts';
import { writeModel } from '../../../main/engine/onnx/writer.ts';
import { buildModel, valueInfo } from '../../unit/quantize/build-model.ts';

export const LLAMA_SHAPES = { hidden: 2048, intermediate: 5632, vocab: 32000 } as const;

/** Writes uniform(−scale, scale) float32s to `fh` at `offset`, 4 MiB at a time (xorshift32). */
async function writeRandom(fh: Awaited<ReturnType<typeof open>>, offset: number, count: number, seed: number, scale: number): Promise<void> {
  let s = (seed * 2654435761) >>> 0 || 1;
  const chunk = new Float32Array(1 << 20);
  for (let done = 0; done < count; done += chunk.length) {
    const n = Math.min(chunk.length, count - done);
    for (let i = 0; i < n; i++) {
      s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
      chunk[i] = ((s / 2 ** 32) * 2 - 1) * scale;
    }
    await fh.write(new Uint8Array(chunk.buffer, 0, n * 4), 0, n * 4, offset + done * 4);
  }
}

/** Writes `dir`/model.onnx (+ model.onnx.data) with `layers` decoder layers. */
/**
 * `heads` > 0: real (unmasked) multi-head attention instead — q/k/v reshaped to [b, heads, s, d],
 * softmax(q·kᵀ/√d)·v, so tokens interact and the architecture map finds the heads.
 */
export async function generateLlamaModel(dir: string, layers: number, options: { heads?: number } = {}): Promise<{ model: string; params: number; largest: number }> {
  const { hidden: HIDDEN, intermediate: INTER, vocab: VOCAB } = LLAMA_SHAPES;
  const raw = path.join(dir, 'weights.raw');
  const fh = await open(raw, 'w');
  let offset = 0, seed = 1, params = 0, largest = 0;
  const initializers: TensorProto[] = [];
  const weight = async (name: string, dims: number[], scale: number): Promise<string> => {
    const count = dims[0] * dims[1];
    await writeRandom(fh, offset, count, seed++, scale);
    initializers.push({ name, dataType: DataType.float32, dims, data: { kind: 'file', path: raw, offset, length: count * 4 }, stringData: [], externalData: [], metadataProps: [] });
    offset += count * 4;
    params += count;
    largest = Math.max(largest, count * 4);
    return name;
  };
  const ones = makeTensor('norm_weight', DataType.float32, [HIDDEN], new Float32Array(HIDDEN).fill(1));
  initializers.push(ones, makeTensor('eps', DataType.float32, [], Float32Array.of(1e-5)), makeTensor('last_axis', DataType.int64, [1], BigInt64Array.of(-1n)));
  const heads = options.heads ?? 0;
  if (heads > 0) {
    initializers.push(
      makeTensor('heads_shape', DataType.int64, [4], BigInt64Array.of(0n, 0n, BigInt(heads), BigInt(HIDDEN / heads))),
      makeTensor('hidden_shape', DataType.int64, [3], BigInt64Array.of(0n, 0n, BigInt(HIDDEN))),
      makeTensor('attn_scale', DataType.float32, [], Float32Array.of(1 / Math.sqrt(HIDDEN / heads))),
    );
  }

  const nodes: NodeProto[] = [];
  let id = 0;
  const op = (opType: string, inputs: string[], attributes: ReturnType<typeof intAttr>[] = []): string => {
    const out = `t${id++}`;
    nodes.push(makeNode({ opType, inputs, outputs: [out], name: `${opType}_${id}`, attributes }));
    return out;
  };
  // RMSNorm: x / sqrt(mean(x²) + eps) · g
  const rmsNorm = (x: string): string => op('Mul', [op('Div', [x, op('Sqrt', [op('Add', [op('ReduceMean', [op('Mul', [x, x]), 'last_axis'], [intAttr('keepdims', 1)]), 'eps'])])]), 'norm_weight']);

  let x = op('Gather', [await weight('model.embed_tokens.weight', [VOCAB, HIDDEN], 1), 'input_ids']);
  for (let l = 0; l < layers; l++) {
    const p = `model.layers.${l}`;
    const h = rmsNorm(x);
    const q = op('MatMul', [h, await weight(`${p}.self_attn.q_proj.weight`, [HIDDEN, HIDDEN], 0.02)]);
    const k = op('MatMul', [h, await weight(`${p}.self_attn.k_proj.weight`, [HIDDEN, HIDDEN], 0.02)]);
    const v = op('MatMul', [h, await weight(`${p}.self_attn.v_proj.weight`, [HIDDEN, HIDDEN], 0.02)]);
    let attn: string;
    if (heads > 0) {
      const split = (t: string, perm: number[]): string => op('Transpose', [op('Reshape', [t, 'heads_shape'])], [intsAttr('perm', perm)]);
      const scores = op('Mul', [op('MatMul', [split(q, [0, 2, 1, 3]), split(k, [0, 2, 3, 1])]), 'attn_scale']);
      const ctx = op('MatMul', [op('Softmax', [scores], [intAttr('axis', -1)]), split(v, [0, 2, 1, 3])]);
      attn = op('Reshape', [op('Transpose', [ctx], [intsAttr('perm', [0, 2, 1, 3])]), 'hidden_shape']);
    } else {
      const probs = op('Softmax', [op('ReduceSum', [op('Mul', [q, k]), 'last_axis'], [intAttr('keepdims', 1)])], [intAttr('axis', -1)]);
      attn = op('Mul', [v, probs]);
    }
    const o = op('MatMul', [attn, await weight(`${p}.self_attn.o_proj.weight`, [HIDDEN, HIDDEN], 0.02)]);
    x = op('Add', [x, o]);
    const h2 = rmsNorm(x);
    const g = op('MatMul', [h2, await weight(`${p}.mlp.gate_proj.weight`, [HIDDEN, INTER], 0.02)]);
    const u = op('MatMul', [h2, await weight(`${p}.mlp.up_proj.weight`, [HIDDEN, INTER], 0.02)]);
    const act = op('Mul', [op('Mul', [g, op('Sigmoid', [g])]), u]);
    x = op('Add', [x, op('MatMul', [act, await weight(`${p}.mlp.down_proj.weight`, [INTER, HIDDEN], 0.02)])]);
  }
  op('MatMul', [rmsNorm(x), await weight('lm_head.weight', [HIDDEN, VOCAB], 0.02)]);
  nodes[nodes.length - 1].output = ['logits'];
  await fh.close();

  const model = path.join(dir, 'model.onnx');
  await writeModel(buildModel({
    nodes, initializers, opset: 21,
    inputs: [valueInfo('input_ids', DataType.int64, ['batch', 'seq'])],
    outputs: [valueInfo('logits', DataType.float32, ['batch', 'seq', VOCAB])],
  }), model, { externalData: 'auto' });
  rmSync(raw);
  return { model, params, largest };
}
