/**
 * float16 / bfloat16 models train in float32: every half-precision initializer becomes float32 (the
 * master weights), Cast-to-half becomes Cast-to-float32, and half constants inside nodes are widened.
 * The trained weights are narrowed back to the source's own dtype when the result is written
 * (write-back.ts), so the output keeps the input's layout.
 */
import { DataType } from '../onnx/dtype.ts';
import type { AttributeProto, GraphProto, TensorProto, ValueInfoProto } from '../onnx/proto-types.ts';
import { bytesToFloat32, elementCount, makeTensor, readTensorBytes } from '../onnx/tensor-data.ts';

const HALF = new Set<number>([DataType.float16, DataType.bfloat16]);

export const isHalf = (dtype: number | undefined): boolean => dtype !== undefined && HALF.has(dtype);

async function widenTensor(t: TensorProto): Promise<TensorProto> {
  if (!isHalf(t.dataType)) return t;
  const count = elementCount(t.dims);
  const values = bytesToFloat32(await readTensorBytes(t), t.dataType, count);
  return makeTensor(t.name ?? '', DataType.float32, t.dims.map(Number), values);
}

function widenValueInfo(v: ValueInfoProto): ValueInfoProto {
  const tt = v.type?.tensorType;
  if (!tt || !isHalf(tt.elemType)) return v;
  return { ...v, type: { ...v.type, tensorType: { ...tt, elemType: DataType.float32 } } };
}

async function widenAttribute(a: AttributeProto): Promise<AttributeProto> {
  if (a.name === 'to' && a.i !== undefined && isHalf(Number(a.i))) return { ...a, i: DataType.float32 };
  if (a.t && isHalf(a.t.dataType)) return { ...a, t: await widenTensor(a.t) };
  return a;
}

/** Widens `graph` in place (node objects are replaced, never mutated). Returns how many tensors were widened. */
export async function widenToFloat32(graph: GraphProto): Promise<number> {
  let widened = 0;
  graph.initializer = await Promise.all(graph.initializer.map(async (t) => {
    if (!isHalf(t.dataType)) return t;
    widened++;
    return widenTensor(t);
  }));
  graph.input = graph.input.map(widenValueInfo);
  graph.output = graph.output.map(widenValueInfo);
  graph.valueInfo = graph.valueInfo.map(widenValueInfo);
  graph.node = await Promise.all(graph.node.map(async (n) => {
    const attribute = await Promise.all(n.attribute.map(widenAttribute));
    return attribute.every((a, i) => a === n.attribute[i]) ? n : { ...n, attribute };
  }));
  return widened;
}
