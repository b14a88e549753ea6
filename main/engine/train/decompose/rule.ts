/**
 * The shape of one decomposition: a contrib node in, standard nodes out (emitted into the builder). A
 * rule returns, for each output of the node, the tensor that now stands for it ('' where the output is
 * not produced); the walker renames those tensors to the node's own output names. A rule throws
 * NotDecomposable for a form of its op it does not handle, and the node stays as it was.
 */
import type { NodeProto } from '../../onnx/proto-types.ts';
import { NotDecomposable, type DecomposeBuilder } from './builder.ts';

export type Decomposition = (node: NodeProto, b: DecomposeBuilder) => string[];

/** The node's i-th input, or '' when it is absent. */
export function inputOf(node: NodeProto, i: number): string {
  return node.input[i] ?? '';
}

/** The node's i-th output, or '' when it is absent. */
export function outputOf(node: NodeProto, i: number): string {
  return node.output[i] ?? '';
}

/** Refuses the node unless `ok`. */
export function refuseUnless(ok: boolean, why: string): void {
  if (!ok) throw new NotDecomposable(why);
}
