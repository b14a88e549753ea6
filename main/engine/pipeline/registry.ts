/**
 * The step registry: recipe step type → the code that runs it (ARCHITECTURE seam 6).
 * The runner chains steps in recipe order and evaluates the original beside the final result.
 */
import { stepKey, type StepKey } from '../../../preload/methods.ts';
import type { Step } from '../../../preload/recipe.ts';
import { distillStep } from '../distill/step.ts';
import { WhittleError } from '../errors.ts';
import { pruneStructuredStep } from '../prune/structured-step.ts';
import { pruneMagnitudeStep, pruneSparseGptStep, pruneWandaStep } from '../prune/step.ts';
import { quantizeFp16Step } from '../quantize/fp16.ts';
import { quantizeGptqStep } from '../quantize/gptq.ts';
import { quantizeInt8DynamicStep } from '../quantize/int8-dynamic.ts';
import { quantizeInt8StaticStep } from '../quantize/int8-static.ts';
import { quantizeQatStep } from '../quantize/qat-step.ts';
import { sensitivityStep } from '../quantize/sensitivity.ts';
import { quantizeRtnStep } from '../quantize/step.ts';
import { trainStep } from '../train/step.ts';
import type { StepRunner } from './step.ts';

export { stepKey, type StepKey };
type StepOfKey<K extends StepKey> = K extends `${infer T}:${infer M}` ? Extract<Step, { type: T; method: M }> : Extract<Step, { type: K }>;

export type StepRegistry = { [K in StepKey]?: StepRunner<StepOfKey<K>> };

/** The steps this build of Whittle can run: one runner per description in preload/methods.ts (a unit test checks both ways). */
export const defaultSteps: StepRegistry = {
  'quantize:rtn': quantizeRtnStep,
  'quantize:gptq': quantizeGptqStep,
  'quantize:fp16': quantizeFp16Step,
  'quantize:int8-dynamic': quantizeInt8DynamicStep,
  'quantize:int8-static': quantizeInt8StaticStep,
  'quantize:qat': quantizeQatStep,
  'prune:magnitude': pruneMagnitudeStep,
  'prune:wanda': pruneWandaStep,
  'prune:sparsegpt': pruneSparseGptStep,
  'prune:structured': pruneStructuredStep,
  sensitivity: sensitivityStep,
  train: trainStep,
  distill: distillStep,
};

export function stepRunnerFor(registry: StepRegistry, step: Step, index: number): StepRunner {
  const runner = registry[stepKey(step)] as StepRunner | undefined;
  if (!runner) {
    const method = 'method' in step ? ` (${step.method})` : '';
    throw new WhittleError(
      'INVALID_INPUT',
      `Step ${index + 1} of the recipe is a ${step.type}${method} step, which this version of Whittle cannot run yet. Remove the step to evaluate the model as it is.`,
      { step: index, type: step.type },
    );
  }
  return runner;
}
