/**
 * Feeds for a fresh-sequence run of a decoder graph at a chosen batch B and length T, built from the
 * graph's declared inputs: input_ids (pseudo-random ids below `vocab`), attention_mask (ones),
 * position_ids (0 … T−1), and empty past caches (the past axis 0). Symbolic dims are resolved by name:
 * *past* → 0, *batch* → B, *total* or *seq* → T.
 */
import * as ort from 'onnxruntime-node';
import { DataType } from '../../main/engine/onnx/dtype.ts';
import { toNumber } from '../../main/engine/onnx/graph.ts';
import type { ModelProto } from '../../main/engine/onnx/proto-types.ts';

function resolveDim(param: string | undefined, value: number, b: number, t: number): number {
  if (param === undefined) return value;
  const p = param.toLowerCase();
  if (p.includes('past')) return 0;
  if (p.includes('batch')) return b;
  if (p.includes('total') || p.includes('seq')) return t;
  throw new Error(`No rule for the symbolic dim '${param}'.`);
}

function intTensor(dtype: number, values: number[], dims: number[]): ort.Tensor {
  return dtype === DataType.int32
    ? new ort.Tensor('int32', Int32Array.from(values), dims)
    : new ort.Tensor('int64', BigInt64Array.from(values, (v) => BigInt(v)), dims);
}

export function decoderFeeds(model: ModelProto, b: number, t: number, vocab: number, seed = 1): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  const inits = new Set(model.graph!.initializer.map((x) => x.name));
  let state = seed;
  const next = (): number => { state = (state * 1103515245 + 12345) % 2147483648; return state; };
  for (const v of model.graph!.input) {
    const name = v.name ?? '';
    if (inits.has(name)) continue;
    const tt = v.type!.tensorType!;
    const dims = tt.shape!.dim.map((d) => resolveDim(d.dimParam, toNumber(d.dimValue), b, t));
    const count = dims.reduce((a, c) => a * c, 1);
    const dtype = tt.elemType ?? 0;
    if (name === 'input_ids') feeds[name] = intTensor(dtype, Array.from({ length: count }, () => next() % vocab), dims);
    else if (name === 'attention_mask') feeds[name] = intTensor(dtype, new Array<number>(count).fill(1), dims);
    else if (name === 'position_ids') feeds[name] = intTensor(dtype, Array.from({ length: count }, (_, i) => i % dims[dims.length - 1]), dims);
    else if (dtype === DataType.float16) feeds[name] = new ort.Tensor('float16', new Uint16Array(count), dims);
    else if (dtype === DataType.float32) feeds[name] = new ort.Tensor('float32', new Float32Array(count), dims);
    else throw new Error(`No rule to feed the input '${name}'.`);
  }
  return feeds;
}
