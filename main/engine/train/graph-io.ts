/**
 * Small pieces every part of the training compiler uses: typed value infos for graph inputs and outputs,
 * and constant tensors for feeds that never change between batches.
 */
import type { TensorProto, ValueInfoProto } from '../onnx/proto-types.ts';
import { makeTensor } from '../onnx/tensor-data.ts';
import { DataType } from '../onnx/dtype.ts';
import type { TensorMeta } from './autodiff/types.ts';

export function valueInfo(name: string, meta: TensorMeta): ValueInfoProto {
  return {
    name,
    type: { tensorType: { elemType: meta.dtype, shape: { dim: meta.shape.map((d) => ({ dimValue: d })) } } },
    metadataProps: [],
  };
}

/** An int64 constant of the given shape. */
export function int64Constant(name: string, shape: number[], values: ArrayLike<number>): TensorProto {
  const data = new BigInt64Array(values.length);
  for (let i = 0; i < values.length; i++) data[i] = BigInt(values[i]);
  return makeTensor(name, DataType.int64, shape, data);
}

/** An int32 constant of the given shape. */
export function int32Constant(name: string, shape: number[], values: ArrayLike<number>): TensorProto {
  return makeTensor(name, DataType.int32, shape, Int32Array.from(values));
}

export function elementCountOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}
