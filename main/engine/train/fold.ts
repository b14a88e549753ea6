/**
 * With static shapes, shape arithmetic (Shape → Gather → Concat → Reshape chains, position ranges, masks
 * built from sizes) has one value for the whole run. Those integer/bool tensors become constants; nodes
 * that only computed them disappear, leaving the float dataflow the autodiff works on.
 */
import type { GraphProto, NodeProto, TensorProto } from '../onnx/proto-types.ts';
import { isFloatDtype } from '../onnx/dtype.ts';
import { makeTensor } from '../onnx/tensor-data.ts';
import type { MetaMap } from './autodiff/types.ts';

export interface KnownValue {
  dtype: number;
  shape: number[];
  data: ArrayBufferView;
}

/**
 * Tensors whose values change with the batch: everything downstream of `dataInputs`, except what only
 * depends on their shapes (Shape/Size outputs are static here).
 */
export function dataDependent(graph: GraphProto, dataInputs: Iterable<string>): Set<string> {
  const dependent = new Set(dataInputs);
  for (const n of graph.node) {
    if (n.opType === 'Shape' || n.opType === 'Size') continue;
    if (n.input.some((i) => i !== '' && dependent.has(i))) for (const o of n.output) if (o !== '') dependent.add(o);
  }
  return dependent;
}

/** Removes nodes none of whose outputs reach a graph output. */
export function removeDeadNodes(graph: GraphProto): number {
  const needed = new Set(graph.output.map((o) => o.name ?? ''));
  const kept: NodeProto[] = [];
  for (let i = graph.node.length - 1; i >= 0; i--) {
    const n = graph.node[i];
    if (!n.output.some((o) => o !== '' && needed.has(o))) continue;
    kept.push(n);
    for (const inp of n.input) if (inp !== '') needed.add(inp);
  }
  const removed = graph.node.length - kept.length;
  graph.node = kept.reverse();
  graph.initializer = graph.initializer.filter((t) => needed.has(t.name ?? ''));
  return removed;
}

/**
 * Turns every non-float tensor that does not depend on the batch and whose value the probe returned into
 * an initializer, then drops the nodes that no longer feed anything. Returns how many tensors were folded.
 */
export function foldStaticTensors(graph: GraphProto, meta: MetaMap, values: Map<string, KnownValue>, dataInputs: Iterable<string>): number {
  const dependent = dataDependent(graph, dataInputs);
  const constant = new Set<string>(graph.initializer.map((t) => t.name ?? ''));
  const folded: TensorProto[] = [];
  for (const n of graph.node) {
    for (const o of n.output) {
      if (o === '' || dependent.has(o) || constant.has(o)) continue;
      const m = meta.get(o);
      const v = values.get(o);
      if (!m || !v || isFloatDtype(m.dtype)) continue;
      folded.push(makeTensor(o, v.dtype, v.shape, new Uint8Array(v.data.buffer, v.data.byteOffset, v.data.byteLength)));
      constant.add(o);
    }
  }
  if (folded.length === 0) return 0;
  // A folded tensor is no longer produced by its node; a node all of whose outputs are folded goes.
  graph.node = graph.node.filter((n) => !n.output.every((o) => o === '' || constant.has(o)));
  const producedElsewhere = new Set(graph.node.flatMap((n) => n.output));
  graph.initializer.push(...folded.filter((t) => !producedElsewhere.has(t.name ?? '')));
  removeDeadNodes(graph);
  return folded.length;
}
