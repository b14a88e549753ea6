/**
 * Blocked DequantizeLinear needs the default domain at opset 21 and int4 needs IR version 10.
 * Raising a model's opset is safe only where the ops it uses kept their meaning; between 13 and 21 the
 * breaking changes that matter for language models are:
 *   - opset 18: Reduce{Mean,Max,Min,Prod,L1,L2,LogSum,LogSumExp,SumSquare} take `axes` as an input
 *     instead of an attribute → rewritten here (attribute → int64 initializer input);
 *   - opset 20: DFT (axis → input) and GridSample (mode names), opset 21: GroupNormalization
 *     (scale/bias per channel) → refused with UNSUPPORTED_MODEL.
 * Opsets below 13 are refused (too many changes to adapt blindly).
 */
import { WhittleError } from '../errors.ts';
import { DataType } from '../onnx/dtype.ts';
import type { GraphProto, ModelProto, NodeProto, TensorProto } from '../onnx/proto-types.ts';

export const QDQ_OPSET = 21;
export const QDQ_IR_VERSION = 10;

const REDUCE_AXES_TO_INPUT = new Set(['ReduceMean', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceL1', 'ReduceL2', 'ReduceLogSum', 'ReduceLogSumExp', 'ReduceSumSquare']);
const BREAKING: { op: string; before: number }[] = [
  { op: 'DFT', before: 20 }, { op: 'GridSample', before: 20 }, { op: 'GroupNormalization', before: 21 },
];

const isDefaultDomain = (d: string | undefined): boolean => !d || d === 'ai.onnx';

function* allGraphs(g: GraphProto): Generator<GraphProto> {
  yield g;
  for (const n of g.node) for (const a of n.attribute) for (const sub of [a.g, ...a.graphs]) if (sub) yield* allGraphs(sub);
}

/** The model's default-domain opset version (0 when absent). */
export function defaultOpset(model: ModelProto): number {
  const entry = model.opsetImport.find((o) => isDefaultDomain(o.domain));
  return entry ? Number(entry.version ?? 0) : 0;
}

/**
 * Makes the model valid at opset 21 / IR 10 for blocked DequantizeLinear, adapting Reduce* nodes.
 * `uniqueName` reserves names for the new axes initializers. Returns the number of nodes adapted.
 */
export function prepareForBlockedDequantize(model: ModelProto, uniqueName: (base: string) => string): number {
  const graph = model.graph;
  if (!graph) return 0;
  const from = defaultOpset(model);
  if (from >= QDQ_OPSET) {
    if (Number(model.irVersion ?? 0) < QDQ_IR_VERSION) model.irVersion = QDQ_IR_VERSION;
    return 0;
  }
  if (from < 13) {
    throw new WhittleError('UNSUPPORTED_MODEL', `The QDQ format needs opset 21 and this model uses opset ${from}; Whittle raises opsets from 13 upwards only. Use the MatMulNBits format instead.`, { opset: from });
  }
  const blocking = new Set<string>();
  for (const g of allGraphs(graph)) {
    for (const n of g.node) {
      if (!isDefaultDomain(n.domain)) continue;
      for (const b of BREAKING) if (n.opType === b.op && from < b.before) blocking.add(b.op);
    }
  }
  if (blocking.size > 0) {
    throw new WhittleError('UNSUPPORTED_MODEL', `The QDQ format needs opset 21, and this opset-${from} model uses ${[...blocking].join(', ')}, whose meaning changed since. Use the MatMulNBits format instead.`, { opset: from, ops: [...blocking] });
  }
  let adapted = 0;
  if (from < 18) {
    for (const g of allGraphs(graph)) {
      const added: TensorProto[] = [];
      for (const n of g.node) if (isDefaultDomain(n.domain) && REDUCE_AXES_TO_INPUT.has(n.opType ?? '')) adapted += axesToInput(n, added, uniqueName);
      g.initializer.push(...added);
    }
  }
  const entry = model.opsetImport.find((o) => isDefaultDomain(o.domain));
  if (entry) entry.version = QDQ_OPSET;
  else model.opsetImport.push({ domain: '', version: QDQ_OPSET });
  if (Number(model.irVersion ?? 0) < QDQ_IR_VERSION) model.irVersion = QDQ_IR_VERSION;
  return adapted;
}

/** Reduce*(data; axes=[…]) → Reduce*(data, axes_initializer). */
function axesToInput(node: NodeProto, added: TensorProto[], uniqueName: (base: string) => string): number {
  const i = node.attribute.findIndex((a) => a.name === 'axes');
  if (i < 0) return 0;
  const axes = node.attribute[i].ints.map((v) => BigInt(v));
  node.attribute.splice(i, 1);
  const name = uniqueName(`${node.name || node.output[0]}_axes`);
  const data = BigInt64Array.from(axes);
  added.push({ name, dataType: DataType.int64, dims: [axes.length], data: { kind: 'bytes', bytes: new Uint8Array(data.buffer) }, stringData: [], externalData: [], metadataProps: [] });
  node.input = [node.input[0], name];
  return 1;
}
