/**
 * The recipe step `{ type: 'quantize', method: 'rtn' }`: weight-only RTN into an output folder
 * (recipe.output.dir, or `<workDir>/output`; `<workDir>/step-<n>` when later steps follow), delivered
 * under its partial name for the runner to commit.
 */
import path from 'node:path';
import { RTN } from '../../../preload/methods.ts';
import type { QuantizeRtnStep } from '../../../preload/recipe.ts';
import type { JobContext } from '../job-context.ts';
import type { StepInput, StepOutput, StepRunner } from '../pipeline/step.ts';
import { DATA_FILE, MODEL_FILE } from '../rewrite/output-folder.ts';
import type { WrittenFolder } from '../rewrite/write-folder.ts';
import { quantizeWeightOnly } from './weight-only.ts';

/** Where a step writes: the last step delivers to the recipe's output folder, an earlier one an intermediate model. */
export function stepOutputDir(input: StepInput, ctx: JobContext): string {
  const last = input.index === input.recipe.steps.length - 1;
  return path.resolve(last ? (input.recipe.output?.dir ?? path.join(ctx.workDir, 'output')) : path.join(ctx.workDir, `step-${input.index + 1}`));
}

/**
 * A quantization step's output: the folder and model artefacts, and the method's details plus the sizes.
 * The folder is still under its partial name (`pending`): the runner commits it when the job succeeds.
 */
export function folderStepOutput(r: WrittenFolder, details: Record<string, unknown>): StepOutput {
  const modelBytes = r.files.filter((f) => f.name === MODEL_FILE || f.name === DATA_FILE).reduce((a, f) => a + f.bytes, 0);
  return {
    modelPath: r.modelPath,
    artefacts: [
      { kind: 'folder', path: r.outDir, bytes: r.bytes },
      { kind: 'model', path: r.modelPath, bytes: modelBytes },
    ],
    details: { ...details, outputDir: r.outDir, outputBytes: r.bytes, modelBytes },
    pending: r.pending,
  };
}

export const quantizeRtnStep: StepRunner<QuantizeRtnStep> = {
  description: RTN,
  async run(input: StepInput<QuantizeRtnStep>, ctx: JobContext): Promise<StepOutput> {
    const { recipe, step } = input;
    const outDir = stepOutputDir(input, ctx);
    const r = await quantizeWeightOnly(input.modelPath, step, outDir, ctx, { recipe, deliver: 'partial' });
    return folderStepOutput(r, {
      method: 'rtn',
      format: r.format,
      bits: r.bits,
      blockSize: r.blockSize,
      symmetric: step.symmetric,
      accuracyLevel: step.accuracyLevel,
      quantized: r.quantized.length,
      quantizedWeights: r.quantized.map((w) => ({ name: w.name, shape: w.shape, bits: w.bits, sqError: w.sqError })),
      overrides: step.overrides,
      skipped: r.skipped.map((s) => ({ name: s.name, reason: s.reason })),
      warnings: r.warnings,
      sqError: r.sqError,
    });
  },
};
