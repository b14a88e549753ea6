/**
 * What a backward rule sees and returns. A rule is `(ctx, node, gy) → gx`: `gy[i]` is the name of
 * ∂L/∂(output i) (null when no gradient reaches that output), `gx[j]` the name of ∂L/∂(input j) to add
 * to that input's gradient (null where there is none, or where `ctx.needs(j)` is false).
 */
import { WhittleError } from '../../../errors.ts';
import type { NodeProto } from '../../../onnx/proto-types.ts';
import type { GradBuilder } from '../builder.ts';

export interface RuleContext {
  b: GradBuilder;
  /** Whether the gradient of input `i` is wanted (it lies on a path from a trainable tensor). */
  needs(i: number): boolean;
}

export type Grad = string | null;
export type Rule = (ctx: RuleContext, node: NodeProto, gy: Grad[]) => Grad[];

/** The one gradient of a single-output op (rules run only when some output gradient exists). */
export function onlyGrad(node: NodeProto, gy: Grad[]): string {
  const g = gy[0];
  if (g === null || g === undefined) throw new WhittleError('INTERNAL', `Autodiff: node '${node.name ?? node.opType}' has no output gradient.`);
  return g;
}

/** The constant values of input `i` of `node`, or an UNSUPPORTED_MODEL error saying why they are needed. */
export function constantInput(ctx: RuleContext, node: NodeProto, i: number, what: string): number[] {
  const name = node.input[i];
  const v = name ? ctx.b.constantValues(name) : undefined;
  if (v === undefined) {
    throw new WhittleError('UNSUPPORTED_MODEL', `The ${what} of ${node.opType} node '${node.name ?? ''}' is computed at run time; training needs it as a constant (an initializer or Constant node). Fold the graph's shape arithmetic to constants first.`,
      { op: node.opType, node: node.name, input: name });
  }
  return v;
}

/** Input `i`'s name when present ('' and missing optional inputs give undefined). */
export function inputAt(node: NodeProto, i: number): string | undefined {
  const s = node.input[i];
  return s === undefined || s === '' ? undefined : s;
}
