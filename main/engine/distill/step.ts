/**
 * The recipe step `{ type: 'distill', teacher?, student, data, loss, teacherSignal, schedule, lora?, resume? }`:
 * checks the teacher, the student and the texts before any work (preflight.ts), maps the step to a
 * DistillRequest, runs distillModel into the step's output folder (delivered under its partial name for
 * the runner to commit), streams every point as a 'train' series point with its parts (KL, CE,
 * agreement), and reports the whole curve, the teacher, the student and the warnings in the details.
 *
 * The teacher defaults to the recipe's model (the original, whatever steps came before); a student
 * `{ from: 'input' }` is the model the step receives, so a distill step after a prune or quantize step
 * recovers the compressed model with the original as teacher. Checkpoints and the curve beside them live
 * where the train step keeps its own (checkpoint-home.ts), removed once the job has committed its output.
 */
import path from 'node:path';
import { DISTILL } from '../../../preload/methods.ts';
import type { DistillStep, Recipe, TrainStep } from '../../../preload/recipe.ts';
import { WhittleError } from '../errors.ts';
import type { JobContext } from '../job-context.ts';
import type { StepInput, StepOutput, StepRunner } from '../pipeline/step.ts';
import { folderStepOutput, stepOutputDir } from '../quantize/step.ts';
import { checkpointFolder } from '../train/checkpoint-home.ts';
import { curveRecorder, mergeCurves, removeCheckpointsOnCommit } from '../train/curve-record.ts';
import { trainConfigOf } from '../train/step.ts';
import type { TrainConfig } from '../train/types.ts';
import { distillModel } from './distill-model.ts';
import { preflightDistill, studentOf, teacherOf } from './preflight.ts';
import type { DistillRequest } from './types.ts';

/** The train step a distill step's data and schedule amount to (every float weight not frozen trained, pruning masks kept). */
export function trainStepOf(step: DistillStep): TrainStep {
  return {
    type: 'train', objective: 'lm', text: step.data.text, batch: step.data.batch, length: step.data.length, ...step.schedule,
    freeze: [...(step.freeze ?? [])], keepSparsity: true, ...(step.data.evalText !== undefined ? { evalText: step.data.evalText } : {}),
  };
}

/** The engine's training configuration of a distill step (warmup resolved). */
export async function distillConfigOf(step: DistillStep, recipe: Pick<Recipe, 'tokenizer'>, signal: AbortSignal): Promise<TrainConfig> {
  if (!recipe.tokenizer) {
    throw new WhittleError('INVALID_INPUT', "Distillation reads text, which needs the teacher's tokenizer. Add the model's tokenizer.json to the recipe.");
  }
  return trainConfigOf(trainStepOf(step), recipe, signal);
}

/** The request a distill step makes of the engine (`modelPath`: the model the step receives). */
export function distillRequestOf(step: DistillStep, input: { modelPath: string; recipe: Recipe }, config: TrainConfig, dirs: { outDir: string; checkpointDir: string }): DistillRequest {
  return {
    teacherPath: teacherOf(step, input.recipe),
    student: studentOf(step, input.modelPath),
    loss: { ...step.loss },
    signal: step.teacherSignal.kind === 'topk' ? { kind: 'topk', k: step.teacherSignal.k } : { kind: 'logits' },
    ...(step.lora ? { lora: { rank: step.lora.rank, alpha: step.lora.alpha, roles: [...step.lora.roles], dropout: step.lora.dropout } } : {}),
    ...(step.requantize ? { requantize: step.requantize.method === 'gptq' ? { method: 'gptq' as const, calibration: { ...step.requantize.calibration } } : { method: 'rtn' as const } } : {}),
    config,
    outDir: dirs.outDir,
    deliver: 'partial',
    recipe: input.recipe,
    checkpointDir: dirs.checkpointDir,
    resume: step.resume !== undefined,
  };
}

const unique = (xs: readonly string[]): string[] => [...new Set(xs)];

async function runDistill(input: StepInput<DistillStep>, ctx: JobContext): Promise<StepOutput> {
  const { step, recipe } = input;
  const config = await distillConfigOf(step, recipe, ctx.signal);
  const teacher = teacherOf(step, recipe);
  const student = studentOf(step, input.modelPath);
  const pre = await preflightDistill({
    teacher, student, tokenizer: config.tokenizerPath, text: config.textPath, evalTexts: [step.data.evalText, recipe.evaluation.perplexity?.text],
  }, ctx.signal);
  for (const w of pre.warnings) ctx.log('warn', w);

  const checkpointDir = checkpointFolder(step, input.index, ctx.workDir);
  const resume = step.resume !== undefined;
  const { earlier, onPoint, flush } = await curveRecorder(checkpointDir, resume, ctx);
  const request = { ...distillRequestOf(step, input, config, { outDir: stepOutputDir(input, ctx), checkpointDir }), onPoint };

  const who = student.kind === 'blocks' ? `blocks ${student.blocks.join(', ')} of ${path.basename(teacher)}` : path.basename(student.path);
  ctx.log('info', `distillation: teacher ${path.basename(teacher)}, student ${who}; T = ${step.loss.temperature}, α = ${step.loss.alpha}${step.loss.reverse ? ', reverse KL' : ''}; ${step.schedule.steps !== undefined ? `${step.schedule.steps} steps` : `${step.schedule.epochs} epoch(s)`}, B = ${config.batch}, T = ${config.length}, lr ${config.lr}; checkpoints in ${checkpointDir}${resume ? ' (resuming)' : ''}`);
  let r;
  try {
    r = await distillModel(request, ctx);
  } finally {
    await flush();
  }

  const curve = mergeCurves(earlier, r.details.curve);
  const output = folderStepOutput(r.folder, {
    objective: 'distill',
    ...r.details,
    ...(step.resume?.experiment !== undefined ? { resumedFromExperiment: step.resume.experiment } : {}),
    warnings: unique([...pre.warnings, ...r.details.warnings]),
    checkpointDir,
    config: { batch: config.batch, length: config.length, accumulate: config.accumulate, lr: config.lr, warmupSteps: config.warmupSteps, freeze: config.freeze },
    curve,
  });
  return removeCheckpointsOnCommit(output, checkpointDir, ctx);
}

export const distillStep: StepRunner<DistillStep> = { description: DISTILL, run: runDistill };
