/**
 * The recipe step `{ type: 'quantize', method: 'qat', bits, blockSize, symmetric, freezeRoles, text, … }`:
 * KD-QAT (arXiv 2403.18159). The step's input model is both the teacher (its float weights) and the
 * student, which is trained through fake quantization on MatMulNBits' grid with the distillation loss
 * α · KL(teacher_T ‖ student_T) · T² + (1 − α) · CE, then exported as MatMulNBits (accuracy level 0).
 * `freezeRoles` ['o', 'v'] is ov-freeze: those projections keep their float values while training and are
 * quantized only at export.
 *
 * Runs as the distill step does (distill/step.ts): distillModel into the step's output folder, delivered
 * under its partial name for the runner to commit; every point streamed as a 'train' series point and
 * kept beside the checkpoints (removed once the job has committed its output).
 */
import path from 'node:path';
import { QAT } from '../../../preload/methods.ts';
import type { QuantizeQatStep, TrainStep } from '../../../preload/recipe.ts';
import { distillModel } from '../distill/distill-model.ts';
import { preflightDistill } from '../distill/preflight.ts';
import type { DistillRequest } from '../distill/types.ts';
import { WhittleError } from '../errors.ts';
import type { JobContext } from '../job-context.ts';
import { readModel } from '../onnx/reader.ts';
import type { StepInput, StepOutput, StepRunner } from '../pipeline/step.ts';
import { checkpointFolder } from '../train/checkpoint-home.ts';
import { curveRecorder, mergeCurves, removeCheckpointsOnCommit } from '../train/curve-record.ts';
import { trainConfigOf } from '../train/step.ts';
import type { TrainConfig } from '../train/types.ts';
import { folderStepOutput, stepOutputDir } from './step.ts';

/** MatMulNBits' accuracy level of KD-QAT's export (the RTN writer's, unset). */
const QAT_ACCURACY_LEVEL = 0;

/** The train step a KD-QAT step's text and schedule amount to (every float weight trained, zeros kept). */
export function qatTrainStepOf(step: QuantizeQatStep): TrainStep {
  return {
    type: 'train', objective: 'lm', text: step.text, batch: step.batch, length: step.length,
    ...(step.steps !== undefined ? { steps: step.steps } : {}),
    ...(step.epochs !== undefined ? { epochs: step.epochs } : {}),
    ...(step.warmup !== undefined ? { warmup: step.warmup } : {}),
    accumulate: step.accumulate, lr: step.lr, minLrRatio: step.minLrRatio, weightDecay: step.weightDecay, clipNorm: step.clipNorm,
    evalEvery: step.evalEvery, seed: step.seed, checkpointEvery: step.checkpointEvery,
    freeze: [], keepSparsity: true, ...(step.evalText !== undefined ? { evalText: step.evalText } : {}),
  };
}

/** The request a KD-QAT step makes of the engine: teacher and student are both `modelPath`, the model the step receives. */
export function qatRequestOf(step: QuantizeQatStep, input: Pick<StepInput, 'modelPath' | 'recipe'>, config: TrainConfig, dirs: { outDir: string; checkpointDir: string }): DistillRequest {
  return {
    teacherPath: input.modelPath,
    student: { kind: 'model', path: input.modelPath },
    loss: { temperature: step.temperature, alpha: step.alpha, reverse: false, hidden: 0 },
    signal: { kind: 'logits' },
    qat: { bits: step.bits, blockSize: step.blockSize, symmetric: step.symmetric, freezeRoles: [...step.freezeRoles] },
    config,
    outDir: dirs.outDir,
    deliver: 'partial',
    recipe: input.recipe,
    checkpointDir: dirs.checkpointDir,
    resume: step.resume !== undefined,
  };
}

const unique = (xs: readonly string[]): string[] => [...new Set(xs)];

async function runQat(input: StepInput<QuantizeQatStep>, ctx: JobContext): Promise<StepOutput> {
  const { step, recipe } = input;
  if (!recipe.tokenizer) {
    throw new WhittleError('INVALID_INPUT', "KD-QAT trains on text, which needs the model's tokenizer. Add the model's tokenizer.json to the recipe.");
  }
  const config = await trainConfigOf(qatTrainStepOf(step), recipe, ctx.signal);
  const pre = await preflightDistill({
    teacher: input.modelPath, student: { kind: 'model', path: input.modelPath }, tokenizer: config.tokenizerPath, text: config.textPath,
    evalTexts: [step.evalText, recipe.evaluation.perplexity?.text],
  }, ctx.signal);
  for (const w of pre.warnings) ctx.log('warn', w);

  const checkpointDir = checkpointFolder(step, input.index, ctx.workDir);
  const resume = step.resume !== undefined;
  const { earlier, onPoint, flush } = await curveRecorder(checkpointDir, resume, ctx);
  const request = { ...qatRequestOf(step, input, config, { outDir: stepOutputDir(input, ctx), checkpointDir }), onPoint };

  const frozen = step.freezeRoles.length > 0 ? `, ${step.freezeRoles.join(', ')} kept in float while training` : '';
  ctx.log('info', `KD-QAT: ${path.basename(input.modelPath)} to ${step.bits}-bit, block ${step.blockSize}, ${step.symmetric ? 'symmetric' : 'asymmetric'}${frozen}; T = ${step.temperature}, α = ${step.alpha}; ${step.steps !== undefined ? `${step.steps} steps` : `${step.epochs} epoch(s)`}, B = ${config.batch}, T = ${config.length}, lr ${config.lr}; checkpoints in ${checkpointDir}${resume ? ' (resuming)' : ''}`);
  let r;
  try {
    r = await distillModel(request, ctx);
  } finally {
    await flush();
  }

  const quantized = ((await readModel(r.folder.modelPath)).proto.graph?.node ?? []).filter((n) => n.opType === 'MatMulNBits').length;
  const { teacher: _teacher, student: _student, signal: _signal, loss: _loss, ...run } = r.details;
  const output = folderStepOutput(r.folder, {
    method: 'qat',
    ...run,
    bits: step.bits,
    blockSize: step.blockSize,
    symmetric: step.symmetric,
    accuracyLevel: QAT_ACCURACY_LEVEL,
    freezeRoles: [...step.freezeRoles],
    quantized,
    loss: { temperature: step.temperature, alpha: step.alpha },
    ...(step.resume?.experiment !== undefined ? { resumedFromExperiment: step.resume.experiment } : {}),
    warnings: unique([...pre.warnings, ...r.details.warnings]),
    checkpointDir,
    config: { batch: config.batch, length: config.length, accumulate: config.accumulate, lr: config.lr, warmupSteps: config.warmupSteps, freeze: [...step.freezeRoles] },
    curve: mergeCurves(earlier, r.details.curve),
  });
  return removeCheckpointsOnCommit(output, checkpointDir, ctx);
}

export const quantizeQatStep: StepRunner<QuantizeQatStep> = { description: QAT, run: runQat };
