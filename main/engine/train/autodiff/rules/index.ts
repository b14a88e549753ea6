/**
 * The rule registry: op type (default ONNX domain) → backward rule, and the ops that never carry a
 * gradient (their outputs are integer, boolean, or constants of the graph's shape arithmetic).
 */
import { div, add, cast, erf, exp, log, maxMin, mul, neg, pow, reciprocal, relu, sigmoid, sqrt, sub, sum, tanh, where } from './elementwise.ts';
import { gather, gatherElements } from './gather.ts';
import { gemmRule, matMul } from './matmul.ts';
import { layerNormalization } from './norm.ts';
import { reduceMean, reduceSum } from './reduce.ts';
import type { Rule } from './rule.ts';
import { concat, expand, pad, reshapeBack, slice, split, tile, transpose } from './shape.ts';
import { clip, dequantizeLinear, quantizeLinear } from './quantize.ts';
import { logSoftmax, softmax } from './softmax.ts';

export type { Grad, Rule, RuleContext } from './rule.ts';

export const RULES: ReadonlyMap<string, Rule> = new Map<string, Rule>([
  ['Add', add], ['Sub', sub], ['Mul', mul], ['Div', div], ['Sum', sum], ['Max', maxMin], ['Min', maxMin], ['Where', where],
  ['Neg', neg], ['Exp', exp], ['Log', log], ['Sqrt', sqrt], ['Reciprocal', reciprocal], ['Pow', pow],
  ['Tanh', tanh], ['Sigmoid', sigmoid], ['Relu', relu], ['Erf', erf], ['Cast', cast],
  ['MatMul', matMul], ['Gemm', gemmRule],
  ['Softmax', softmax], ['LogSoftmax', logSoftmax], ['LayerNormalization', layerNormalization],
  ['Gather', gather], ['GatherElements', gatherElements],
  ['Reshape', reshapeBack], ['Squeeze', reshapeBack], ['Unsqueeze', reshapeBack], ['Flatten', reshapeBack], ['Identity', reshapeBack],
  ['Transpose', transpose], ['Slice', slice], ['Concat', concat], ['Split', split], ['Expand', expand], ['Tile', tile], ['Pad', pad],
  ['ReduceSum', reduceSum], ['ReduceMean', reduceMean],
  ['QuantizeLinear', quantizeLinear], ['DequantizeLinear', dequantizeLinear], ['Clip', clip],
]);

/** Ops whose gradient reaches only some of their inputs (by index); the others are never followed back. */
export const GRADIENT_INPUTS: ReadonlyMap<string, readonly number[]> = new Map([
  ['QuantizeLinear', [0]], ['DequantizeLinear', [0]], ['Clip', [0]],
]);

/** Ops whose integer outputs carry a straight-through gradient (fake quantization, quantize.ts). */
export const STRAIGHT_THROUGH: ReadonlySet<string> = new Set(['QuantizeLinear']);
/** Ops whose integer output carries the straight-through gradient when their first input does (a Clip to a narrower grid). */
export const STRAIGHT_THROUGH_PASS: ReadonlySet<string> = new Set(['Clip']);

/** Ops whose outputs carry no gradient whatever their inputs. */
export const NON_DIFFERENTIABLE: ReadonlySet<string> = new Set([
  'Shape', 'Size', 'Range', 'Equal', 'Less', 'LessOrEqual', 'Greater', 'GreaterOrEqual', 'Not', 'And', 'Or', 'Xor',
  'ConstantOfShape', 'Constant', 'NonZero', 'ArgMax', 'ArgMin', 'IsNaN', 'IsInf', 'Sign', 'Floor', 'Ceil', 'Round',
  'EyeLike', 'OneHot', 'RandomNormal', 'RandomUniform', 'RandomNormalLike', 'RandomUniformLike', 'Bernoulli', 'Multinomial',
  'BitShift',
]);
