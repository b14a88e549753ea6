/**
 * The recipe step `{ type: 'train', objective: 'lm', … }` (objective 'classify' is classify-step.ts): maps the step to a TrainConfig, runs
 * trainModel into the step's output folder (delivered under its partial name for the runner to commit),
 * streams every training point as a 'train' series point, and reports the whole curve in the details.
 *
 * Checkpoints live in checkpoint-home.ts's folder, outside the output folder, so they survive a cancelled
 * or interrupted job. Beside them the step keeps `curve.jsonl` (one point per line), so a resumed run
 * shows and reports the curve from step 1 whatever the checkpoints hold. They are removed once the job
 * has committed its output (the last act of a successful job).
 */
import path from 'node:path';
import { TRAIN } from '../../../preload/methods.ts';
import { defaultWarmupSteps, type Recipe, type TrainStep } from '../../../preload/recipe.ts';
import { WhittleError } from '../errors.ts';
import type { JobContext } from '../job-context.ts';
import type { StepInput, StepOutput, StepRunner } from '../pipeline/step.ts';
import { folderStepOutput, stepOutputDir } from '../quantize/step.ts';
import { checkpointFolder } from './checkpoint-home.ts';
import { curveRecorder, mergeCurves, removeCheckpointsOnCommit } from './curve-record.ts';
import { runClassify } from './classify-step.ts';
import { TrainingData } from './data.ts';
import { trainModel } from './train-model.ts';
import type { TrainConfig } from './types.ts';

/**
 * Optimizer steps of `epochs` passes over the text, as the engine's data stream counts them (the default
 * warmup is a share of the run, so it needs the count before the run starts).
 */
async function stepsOfEpochs(step: TrainStep & { text: string }, tokenizerPath: string, signal: AbortSignal): Promise<number> {
  const data = await TrainingData.load({ textPath: step.text, tokenizerPath, batch: step.batch, length: step.length, seed: step.seed, signal });
  return data.stepsForEpochs(step.epochs ?? 1, step.accumulate);
}

/** The engine's configuration of a recipe's train step (warmup resolved). */
export async function trainConfigOf(step: TrainStep, recipe: Pick<Recipe, 'tokenizer'>, signal: AbortSignal): Promise<TrainConfig> {
  if (!recipe.tokenizer) {
    throw new WhittleError('INVALID_INPUT', "Fine-tuning reads text, which needs the model's tokenizer. Add the model's tokenizer.json to the recipe.");
  }
  const text = step.text;
  if (text === undefined) throw new WhittleError('INVALID_INPUT', 'Next-token fine-tuning needs the training text: add text to the train step.');
  let warmupSteps = step.warmup;
  if (warmupSteps === undefined) {
    const total = step.steps ?? await stepsOfEpochs({ ...step, text }, recipe.tokenizer.path, signal);
    warmupSteps = defaultWarmupSteps(total);
  }
  return {
    textPath: path.resolve(text),
    tokenizerPath: path.resolve(recipe.tokenizer.path),
    ...(step.steps !== undefined ? { steps: step.steps } : {}),
    ...(step.epochs !== undefined ? { epochs: step.epochs } : {}),
    batch: step.batch,
    length: step.length,
    accumulate: step.accumulate,
    lr: step.lr,
    warmupSteps,
    minLrRatio: step.minLrRatio,
    weightDecay: step.weightDecay,
    clipNorm: step.clipNorm,
    freeze: step.freeze,
    keepSparsity: step.keepSparsity,
    ...(step.evalText !== undefined ? { evalTextPath: path.resolve(step.evalText) } : {}),
    evalEvery: step.evalEvery,
    seed: step.seed,
    checkpointEvery: step.checkpointEvery,
  };
}

async function runTrain(input: StepInput<TrainStep>, ctx: JobContext): Promise<StepOutput> {
  if (input.step.objective === 'classify') return runClassify(input, ctx);
  const { step, recipe } = input;
  const config = await trainConfigOf(step, recipe, ctx.signal);
  const checkpointDir = checkpointFolder(step, input.index, ctx.workDir);
  const resume = step.resume !== undefined;
  const { earlier, onPoint, flush } = await curveRecorder(checkpointDir, resume, ctx);

  ctx.log('info', `training: ${step.steps !== undefined ? `${step.steps} steps` : `${step.epochs} epoch(s)`}, B = ${config.batch}, T = ${config.length}, lr ${config.lr}, warmup ${config.warmupSteps}; checkpoints in ${checkpointDir}${resume ? ' (resuming)' : ''}`);
  let r;
  try {
    r = await trainModel({
      modelPath: input.modelPath, outDir: stepOutputDir(input, ctx), deliver: 'partial', recipe: recipe as Recipe,
      checkpointDir, resume, config, onPoint,
    }, ctx);
  } finally {
    await flush();
  }

  const curve = mergeCurves(earlier, r.details.curve);
  const output = folderStepOutput(r.folder, {
    objective: step.objective,
    ...r.details,
    ...(step.resume?.experiment !== undefined ? { resumedFromExperiment: step.resume.experiment } : {}),
    checkpointDir,
    config: { batch: config.batch, length: config.length, accumulate: config.accumulate, lr: config.lr, warmupSteps: config.warmupSteps, freeze: config.freeze },
    curve,
  });
  return removeCheckpointsOnCommit(output, checkpointDir, ctx);
}

export const trainStep: StepRunner<TrainStep> = { description: TRAIN, run: runTrain };
