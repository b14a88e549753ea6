/**
 * The recipe step `{ type: 'train', objective: 'classify', labels: { file, … }, teacher?: { … } }`: an
 * encoder classifier fine-tuned (trainClassifier) on the training split of labelled data, distilled from
 * a teacher classifier's logits when the step names one (classification distillation lives here, not in
 * the distill step, which distils decoders on text). The held-out split (labels.heldOut, labels.seed) is
 * never trained on; the result's accuracy on it is in the details. Checkpoints, the streamed curve and
 * resume work as the next-token train step's (step.ts).
 */
import path from 'node:path';
import { defaultWarmupSteps, type Recipe, type TrainStep } from '../../../preload/recipe.ts';
import { WhittleError } from '../errors.ts';
import { evaluateAccuracy } from '../evaluate/accuracy.ts';
import { accuracyDetails, labelledSplit } from '../evaluate/accuracy-section.ts';
import type { JobContext } from '../job-context.ts';
import { detectGraphKind } from '../model/layout.ts';
import { readModel } from '../onnx/reader.ts';
import type { StepInput, StepOutput } from '../pipeline/step.ts';
import { folderStepOutput, stepOutputDir } from '../quantize/step.ts';
import { checkpointFolder } from './checkpoint-home.ts';
import { curveRecorder, mergeCurves, removeCheckpointsOnCommit } from './curve-record.ts';
import { trainClassifier, type ClassifierTrainConfig } from './train-classifier.ts';

/** Refuses a model that is not an encoder (INVALID_INPUT): a decoder is fine-tuned on text. */
export async function checkEncoder(modelPath: string): Promise<void> {
  const kind = detectGraphKind(await readModel(modelPath));
  if (kind !== 'encoder') {
    throw new WhittleError('INVALID_INPUT', `Classification fine-tuning on labelled data needs an encoder (BERT-style, with an attention mask); ${path.basename(modelPath)} is ${kind.startsWith('decoder') ? 'a decoder' : 'not a model Whittle recognises as an encoder'}. Fine-tune a decoder on text instead (objective lm, --text).`, { model: modelPath, kind });
  }
}

export async function runClassify(input: StepInput<TrainStep>, ctx: JobContext): Promise<StepOutput> {
  const { step, recipe } = input;
  const labels = step.labels;
  if (!labels) throw new WhittleError('INVALID_INPUT', 'Classification fine-tuning needs labelled data: add labels.file to the train step.');
  if (!recipe.tokenizer) throw new WhittleError('INVALID_INPUT', "Classification fine-tuning reads text, which needs the encoder's tokenizer. Add its tokenizer.json to the recipe.");
  await checkEncoder(input.modelPath);
  const { train, test } = await labelledSplit(labels, ctx.signal);
  const tokenizerPath = path.resolve(recipe.tokenizer.path);

  const perEpoch = Math.max(1, Math.floor(train.examples.length / step.batch));
  const total = step.steps ?? Math.max(1, Math.round((step.epochs ?? 1) * perEpoch));
  const config: ClassifierTrainConfig = {
    ...(step.steps !== undefined ? { steps: step.steps } : {}),
    ...(step.epochs !== undefined ? { epochs: step.epochs } : {}),
    batch: step.batch, length: step.length, lr: step.lr, warmupSteps: step.warmup ?? defaultWarmupSteps(total),
    minLrRatio: step.minLrRatio, weightDecay: step.weightDecay, clipNorm: step.clipNorm, freeze: step.freeze, seed: step.seed,
  };
  const checkpointDir = checkpointFolder(step, input.index, ctx.workDir);
  const resume = step.resume !== undefined;
  const { earlier, onPoint, flush } = await curveRecorder(checkpointDir, resume, ctx);
  ctx.log('info', `classification: ${train.examples.length} training and ${test.examples.length} held-out examples of ${path.basename(train.path)}, ${train.classes.length} classes; `
    + `${step.steps !== undefined ? `${step.steps} steps` : `${step.epochs} epoch(s)`}, B = ${config.batch}, T = ${config.length}, lr ${config.lr}, warmup ${config.warmupSteps}`
    + `${step.teacher ? `; distilled from ${path.basename(step.teacher.model)} (T = ${step.teacher.temperature}, α = ${step.teacher.alpha})` : ''}`);

  let r;
  try {
    r = await trainClassifier({
      modelPath: input.modelPath, tokenizerPath, train, outDir: stepOutputDir(input, ctx), deliver: 'partial', recipe: recipe as Recipe, config,
      ...(step.teacher ? { teacher: { modelPath: path.resolve(step.teacher.model), temperature: step.teacher.temperature, alpha: step.teacher.alpha } } : {}),
      checkpointDir, checkpointEvery: step.checkpointEvery, resume, onPoint,
    }, ctx);
  } finally {
    await flush();
  }

  const heldOut = await evaluateAccuracy(r.folder.modelPath, test, { tokenizerPath, maxLength: step.length });
  ctx.log('info', `held-out accuracy of the result: ${(100 * heldOut.accuracy).toFixed(2)} %, macro-F1 ${heldOut.macroF1.toFixed(4)} (${heldOut.count} examples)`);
  const output = folderStepOutput(r.folder, {
    objective: step.objective,
    ...r.details,
    ...(step.resume?.experiment !== undefined ? { resumedFromExperiment: step.resume.experiment } : {}),
    checkpointDir,
    config: { batch: config.batch, length: config.length, lr: config.lr, warmupSteps: config.warmupSteps, freeze: config.freeze },
    labels: { file: train.path, textColumn: train.textColumn, labelColumn: train.labelColumn, heldOut: labels.heldOut, seed: labels.seed, trainExamples: train.examples.length, heldOutExamples: test.examples.length },
    heldOutAccuracy: accuracyDetails(heldOut, test),
    ...(step.teacher ? { teacher: { model: path.resolve(step.teacher.model), temperature: step.teacher.temperature, alpha: step.teacher.alpha } } : {}),
    curve: mergeCurves(earlier, r.details.curve),
  });
  return removeCheckpointsOnCommit(output, checkpointDir, ctx);
}
