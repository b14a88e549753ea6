/**
 * The recipe steps `{ type: 'prune', method: 'magnitude' | 'wanda' | 'sparsegpt' }`: unstructured.ts into
 * the step's output folder, delivered under its partial name for the runner to commit, with the sparsity
 * of every weight and block in the details.
 */
import { PRUNE_MAGNITUDE, PRUNE_SPARSEGPT, PRUNE_WANDA } from '../../../preload/methods.ts';
import type { PruneMagnitudeStep, PruneSparseGptStep, PruneWandaStep, Recipe } from '../../../preload/recipe.ts';
import type { JobContext } from '../job-context.ts';
import type { StepInput, StepOutput, StepRunner } from '../pipeline/step.ts';
import { folderStepOutput, stepOutputDir } from '../quantize/step.ts';
import { pruneUnstructured, type UnstructuredPruneStep } from './unstructured.ts';

/** What the details say about unstructured zeros on every pruning result. */
export const UNSTRUCTURED_ZEROS_NOTE = 'Unstructured zeros do not shrink the ONNX file (a zero takes as many bytes as any weight) and do not speed up '
  + "onnxruntime's CPU kernels, which multiply dense matrices; the compressed size (bytes_compressed) shows what the zeros are worth on disk.";
const JOINT_NOTE = 'The kept weights are quantized in the same sweep (MatMulNBits): the file shrinks by the quantization, not by the zeros.';

async function runPrune(input: StepInput<UnstructuredPruneStep>, ctx: JobContext): Promise<StepOutput> {
  const { recipe, step } = input;
  const r = await pruneUnstructured(input.modelPath, step, stepOutputDir(input, ctx), ctx, { recipe: recipe as Recipe, deliver: 'partial' });
  const joint = step.method === 'sparsegpt' ? (step.quantize ?? null) : null;
  return folderStepOutput(r, {
    method: step.method,
    sparsity: r.sparsity,
    pattern: r.pattern,
    scope: step.method === 'magnitude' ? step.scope : 'layer',
    allocation: step.allocation,
    achievedSparsity: r.achievedSparsity,
    prunedParams: r.prunedParams,
    zeros: r.zeros,
    pruned: r.weights.length,
    prunedWeights: r.weights,
    blocks: r.blocks,
    skipped: r.skipped.map((s) => ({ name: s.name, reason: s.reason })),
    ...(step.calibration ? { calibration: step.calibration } : {}),
    ...(step.method !== 'magnitude' ? { sequential: step.sequential } : {}),
    ...(step.method === 'sparsegpt' ? { quantize: joint, percdamp: step.percdamp, columnBlock: step.columnBlock, maskBlock: step.maskBlock } : {}),
    notes: joint ? [UNSTRUCTURED_ZEROS_NOTE, JOINT_NOTE] : [UNSTRUCTURED_ZEROS_NOTE],
    warnings: r.warnings,
  });
}

export const pruneMagnitudeStep: StepRunner<PruneMagnitudeStep> = { description: PRUNE_MAGNITUDE, run: runPrune };
export const pruneWandaStep: StepRunner<PruneWandaStep> = { description: PRUNE_WANDA, run: runPrune };
export const pruneSparseGptStep: StepRunner<PruneSparseGptStep> = { description: PRUNE_SPARSEGPT, run: runPrune };
