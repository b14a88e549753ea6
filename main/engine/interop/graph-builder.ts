/**
 * A small builder for the importers' graphs: nodes with predictable names (`<Op>_<n>`, output
 * `<Op>_<n>_out`), int64 and float constants, and the weights a graph reads, declared with where their
 * values come from (the importer writes them).
 */
import { DataType } from '../onnx/dtype.ts';
import { makeNode } from '../onnx/graph.ts';
import type { AttributeProto, NodeProto, TensorProto, ValueInfoProto } from '../onnx/proto-types.ts';
import { floatToHalf, makeTensor } from '../onnx/tensor-data.ts';

/** A weight the graph reads: its ONNX name and shape, the source tensor and whether it is transposed. */
export interface DeclaredWeight {
  name: string;
  dims: number[];
  source: string;
  transpose: boolean;
}

export function valueInfo(name: string, elemType: number, dims: (number | string)[]): ValueInfoProto {
  return {
    name,
    type: { tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
    metadataProps: [],
  };
}

export class Builder {
  readonly nodes: NodeProto[] = [];
  readonly consts: TensorProto[] = [];
  private n = 0;
  private readonly elem: number;
  constructor(elem: number) {
    this.elem = elem;
  }

  op(opType: string, inputs: string[], attrs: AttributeProto[] = [], outputs = 1, name?: string): string[] {
    const base = name ?? `${opType}_${this.n++}`;
    const outs = Array.from({ length: outputs }, (_, i) => (outputs === 1 ? `${base}_out` : `${base}_out${i}`));
    this.nodes.push(makeNode({ opType, inputs, outputs: outs, name: base, attributes: attrs }));
    return outs;
  }

  one(opType: string, inputs: string[], attrs: AttributeProto[] = [], name?: string): string {
    return this.op(opType, inputs, attrs, 1, name)[0];
  }

  ints(name: string, values: number[], scalar = false): string {
    this.consts.push(makeTensor(name, DataType.int64, scalar ? [] : [values.length], BigInt64Array.from(values, (v) => BigInt(v))));
    return name;
  }

  /** A float constant in the graph's dtype. */
  floats(name: string, values: number[] | Float32Array, dims: number[]): string {
    const data = this.elem === DataType.float16 ? Uint16Array.from(values, (v) => floatToHalf(v)) : Float32Array.from(values);
    this.consts.push(makeTensor(name, this.elem, dims, data));
    return name;
  }
}


/** The weights a graph reads, listed as the graph declares them; `weight` returns the name the graph uses (`<source>_t` when transposed). */
export function weightList(): { weights: DeclaredWeight[]; weight: (source: string, dims: number[], transpose?: boolean) => string } {
  const weights: DeclaredWeight[] = [];
  const weight = (source: string, dims: number[], transpose = false): string => {
    const name = transpose ? `${source}_t` : source;
    weights.push({ name, dims, source, transpose });
    return name;
  };
  return { weights, weight };
}

/** The scalar constants of GPT-2/BERT-style blocks, in the graph's dtype: 1/√d, 0, the dtype's lowest value (the mask's fill), 0.5 and 1. */
export function blockScalars(b: Builder, headDim: number, dtype: 'fp32' | 'fp16'): { scale: string; zero: string; minValue: string; half: string; one: string } {
  return {
    scale: b.floats('attn_scale', [1 / Math.sqrt(headDim)], []),
    zero: b.floats('zero', [0], []),
    minValue: b.floats('mask_min', [dtype === 'fp16' ? -65504 : -3.4028234663852886e38], []),
    half: b.floats('half', [0.5], []),
    one: b.floats('one', [1], []),
  };
}

/**
 * gelu on x (any shape): 'gelu' is 0.5·x·(1 + erf(x/√2)); 'gelu_tanh' is 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
 * `half` and `one` are the graph's 0.5 and 1 constants.
 */
export function geluOps(b: Builder, x: string, activation: 'gelu' | 'gelu_tanh', half: string, one: string): string {
  if (activation === 'gelu') {
    const erf = b.one('Erf', [b.one('Mul', [x, b.floats('inv_sqrt2', [Math.SQRT1_2], [])])]);
    return b.one('Mul', [b.one('Mul', [x, half]), b.one('Add', [erf, one])]);
  }
  const cube = b.one('Mul', [b.one('Mul', [x, x]), x]);
  const inner = b.one('Mul', [b.one('Add', [x, b.one('Mul', [cube, b.floats('gelu_c', [0.044715], [])])]), b.floats('gelu_k', [Math.sqrt(2 / Math.PI)], [])]);
  return b.one('Mul', [b.one('Mul', [x, half]), b.one('Add', [b.one('Tanh', [inner]), one])]);
}
