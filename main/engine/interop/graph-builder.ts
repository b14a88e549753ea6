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

