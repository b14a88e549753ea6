/**
 * Fine-tuning and distilling an encoder classifier on labelled text: the encoder's training view
 * (encoder-view.ts) → the train-step graph with a classification head (classification-head.ts) →
 * StepSession → AdamW, on the same schedule, optimizer, session and write-back as trainModel. It stands
 * beside trainModel rather than inside it because its batches are labelled examples (ids, attention mask,
 * one label per row), not packed text.
 *
 * Data order: epoch e visits every training example once in a Fisher–Yates permutation drawn from
 * mulberry32(seed + e); the permutations form one stream and step s takes the next B examples of it,
 * so a step never holds padding rows. Every example is cut or padded to `length` tokens.
 * The loss of a step is the mean over its B examples; `correct` counts the step's right answers.
 * With a teacher the head is classificationKdHead and the teacher's class logits come from an
 * onnxruntime session on the teacher model in the same step.
 *
 * Checkpoints (checkpoint.ts) hold the weights, AdamW's state, the stream's position and the curve; a
 * cancelled run writes one where it stopped, and a resumed run (same model, data and settings) ends
 * with the weights an uninterrupted run would have.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import type { Recipe } from '../../../preload/recipe.ts';
import { mulberry32 } from '../calibrate/prng.ts';
import { encodeBatch, encoderTokens, type EncodedBatch, type LabelledData, type LabelledExample } from '../data/labelled.ts';
import { loadTokenizer } from '../data/tokenizer.ts';
import { WhittleError, throwIfAborted } from '../errors.ts';
import type { JobContext } from '../job-context.ts';
import { modelIdentity } from '../evaluate/model-identity.ts';
import { readModel } from '../onnx/reader.ts';
import { checkOutputDir } from '../rewrite/output-folder.ts';
import type { WrittenFolder } from '../rewrite/write-folder.ts';
import { mapArchitecture } from '../rewrite/architecture.ts';
import { assertResumable, readLatestCheckpoint, writeCheckpoint, type CheckpointState } from './checkpoint.ts';
import { classificationHead, classificationKdHead, TEACHER_LOGITS } from './classification-head.ts';
import { ATTENTION_MASK, buildEncoderView, withClassificationHead } from './encoder-view.ts';
import type { DataPosition } from './data.ts';
import { AdamW } from './optimizer.ts';
import { freezeMatcher } from './parameters.ts';
import { learningRateAt } from './schedule.ts';
import { StepSession } from './session.ts';
import { compileTrainStep } from './step-graph.ts';
import { checkTrainConfig } from './train-model.ts';
import type { TrainPoint } from './types.ts';
import { parameterCount, profileActivations } from './view.ts';
import { availableMemory, estimatePeakBytes, suggestShape } from './memory.ts';
import { writeTrainedModel } from './write-back.ts';

export interface ClassifierTrainConfig {
  steps?: number;
  epochs?: number;
  batch: number;
  /** Tokens per example, [CLS] and [SEP] included. */
  length: number;
  lr: number;
  warmupSteps: number;
  minLrRatio: number;
  weightDecay: number;
  clipNorm: number;
  /** Roles or weight-name patterns kept frozen (parameters.ts). */
  freeze: string[];
  seed: number;
}

export interface ClassifierDistillation {
  /** The teacher: an encoder with class logits [batch, classes] over the same classes and tokenizer. */
  modelPath: string;
  /** Softmax temperature T (default 2). */
  temperature: number;
  /** Weight α of the soft term (default 0.5). */
  alpha: number;
}

export interface ClassifierTrainRequest {
  modelPath: string;
  tokenizerPath: string;
  train: LabelledData;
  outDir: string;
  deliver?: 'final' | 'partial';
  recipe?: Recipe;
  config: ClassifierTrainConfig;
  teacher?: ClassifierDistillation;
  /** Seed of a classification head added to a hidden-state export (withClassificationHead). */
  headSeed?: number;
  onPoint?: (p: TrainPoint) => void;
  /** Where checkpoints go; with `checkpointEvery` > 0 one is written every that many steps, and on cancel. */
  checkpointDir?: string;
  checkpointEvery?: number;
  /** Continue from the latest checkpoint in `checkpointDir`. */
  resume?: boolean;
}

export interface ClassifierTrainDetails {
  steps: number;
  examples: number;
  classes: string[];
  trainableParameters: number;
  frozenParameters: number;
  firstLoss: number;
  finalLoss: number;
  /** Share of right answers over the last epoch's worth of steps (at most the whole run). */
  trainAccuracy: number;
  /** Whether a classification head was added to a hidden-state export. */
  headAdded: boolean;
  seconds: number;
  /** The step the run resumed after, when it continued a checkpoint. */
  resumedFromStep?: number;
  curve: TrainPoint[];
}

export interface ClassifierTrainResult {
  folder: WrittenFolder;
  details: ClassifierTrainDetails;
}

const MEMORY_PROBE_LENGTH = 16;
/** Share of the available memory a run may plan to use. */
const MEMORY_HEADROOM = 0.8;

/** The endless seeded stream of example indices (see the header). */
export class ExampleStream {
  private readonly n: number;
  private readonly seed: number;
  private epoch = 0;
  private order: number[];
  private at = 0;

  constructor(n: number, seed: number, from?: DataPosition) {
    this.n = n;
    this.seed = seed;
    if (from && (from.sequences !== n || from.seed !== seed || !(from.index >= 0 && from.index < n))) {
      throw new WhittleError('INVALID_INPUT', `The checkpoint was written for ${from.sequences} training examples with seed ${from.seed}; this run has ${n} with seed ${seed}. Resume with the same data and settings, or start again.`);
    }
    this.order = this.shuffle(from?.epoch ?? 0);
    this.at = from?.index ?? 0;
  }

  /** The next slot of the stream (for a checkpoint). */
  position(): DataPosition {
    return { seed: this.seed, epoch: this.epoch, index: this.at, sequences: this.n };
  }

  next(count: number): number[] {
    const out: number[] = [];
    while (out.length < count) {
      out.push(this.order[this.at++]);
      if (this.at >= this.n) { this.order = this.shuffle(this.epoch + 1); this.at = 0; }
    }
    return out;
  }

  private shuffle(epoch: number): number[] {
    this.epoch = epoch;
    const rand = mulberry32((this.seed + epoch) >>> 0);
    const order = Array.from({ length: this.n }, (_, i) => i);
    for (let i = this.n - 1; i > 0; i--) {
      const j = rand.below(i + 1);
      [order[i], order[j]] = [order[j], order[i]];
    }
    return order;
  }
}

/** Class logits of an encoder classifier for a batch, from an onnxruntime session (teacher or evaluation). */
export async function classLogits(session: ort.InferenceSession, batch: EncodedBatch): Promise<Float32Array> {
  const dims = [batch.batch, batch.length];
  const feeds: Record<string, ort.Tensor> = {};
  for (const name of session.inputNames) {
    if (name === 'input_ids') feeds[name] = new ort.Tensor('int64', batch.inputIds, dims);
    else if (name === ATTENTION_MASK) feeds[name] = new ort.Tensor('int64', batch.attentionMask, dims);
    else if (name === 'token_type_ids') feeds[name] = new ort.Tensor('int64', new BigInt64Array(batch.inputIds.length), dims);
    else throw new WhittleError('UNSUPPORTED_MODEL', `Whittle does not know how to feed the encoder input '${name}'; it feeds input_ids, attention_mask and token_type_ids.`, { input: name });
  }
  const out = await session.run(feeds);
  const name = session.outputNames.includes('logits') ? 'logits' : session.outputNames[0];
  const t = out[name];
  if (t.dims.length !== 2 || t.dims[0] !== batch.batch) throw new WhittleError('UNSUPPORTED_MODEL', `The encoder's output ${name} is [${t.dims.join(', ')}], not class logits [batch, classes].`);
  return t.data as Float32Array;
}

/** Fine-tunes (or, with `teacher`, distils) an encoder classifier on labelled examples (see the header). */
export async function trainClassifier(req: ClassifierTrainRequest, ctx: JobContext): Promise<ClassifierTrainResult> {
  const started = performance.now();
  const c = req.config;
  checkTrainConfig({ ...c, textPath: '', tokenizerPath: req.tokenizerPath, accumulate: 1, keepSparsity: false, evalEvery: 0, checkpointEvery: 0 });
  const classes = req.train.classes.length;
  const examples = req.train.examples;
  if (examples.length < c.batch) throw new WhittleError('INVALID_INPUT', `The training data holds ${examples.length} examples, fewer than one batch of ${c.batch}. Use a smaller batch or more examples.`, { examples: examples.length, batch: c.batch });
  if (req.teacher) {
    const { temperature, alpha } = req.teacher;
    if (!(temperature > 0) || !Number.isFinite(temperature)) throw new WhittleError('INVALID_INPUT', `The distillation temperature must be above 0 (got ${temperature}); 2 is the usual choice.`);
    if (!(alpha >= 0 && alpha <= 1)) throw new WhittleError('INVALID_INPUT', `The distillation weight α must lie in [0, 1] (got ${alpha}).`);
  }
  await checkOutputDir(req.outDir);
  if (req.resume && !req.checkpointDir) throw new WhittleError('INVALID_INPUT', 'Resuming needs the folder of the checkpoints (checkpointDir).');
  const every = req.checkpointEvery ?? 0;
  if (!Number.isInteger(every) || every < 0) throw new WhittleError('INVALID_INPUT', `Checkpoints are written every whole number of steps, 0 for none (got ${every}).`);
  const fingerprint = (await modelIdentity(req.modelPath)).contentSha256;
  const configFingerprint = createHash('sha256').update(JSON.stringify({
    data: path.resolve(req.train.path), lines: req.train.examples.map((e) => e.line), classes: req.train.classes, tokenizer: path.resolve(req.tokenizerPath),
    config: c, teacher: req.teacher ? { ...req.teacher, modelPath: path.resolve(req.teacher.modelPath) } : null, headSeed: req.headSeed ?? null,
  })).digest('hex');
  let resumeFrom: CheckpointState | null = null;
  if (req.resume && req.checkpointDir) {
    resumeFrom = await readLatestCheckpoint(req.checkpointDir);
    if (!resumeFrom) throw new WhittleError('NOT_FOUND', `There is no checkpoint to resume from in ${req.checkpointDir}. Start the training again instead.`, { dir: req.checkpointDir });
    assertResumable(resumeFrom, fingerprint, configFingerprint);
  }
  const tokenizer = await loadTokenizer(req.tokenizerPath);
  const tokens = encoderTokens(tokenizer);
  const read = await readModel(req.modelPath);
  const source = withClassificationHead(read, classes, req.headSeed ?? c.seed);
  const arch = mapArchitecture(source);
  const frozenRule = freezeMatcher(c.freeze);

  const scratch = path.join(ctx.workDir, `.train-graphs-${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(scratch, { recursive: true });
  let teacher: ort.InferenceSession | null = null;
  try {
    // Memory, from a small probe, before anything the size of the run is built (every weight counted as trainable).
    const { profile, weights: weightCount } = await profileActivations(source, Math.min(MEMORY_PROBE_LENGTH, c.length), { scratchDir: scratch });
    const budget = (await availableMemory()) * MEMORY_HEADROOM;
    const need = estimatePeakBytes(profile, c.batch, c.length, weightCount, 0);
    if (need > budget) {
      const fit = suggestShape(profile, c.batch, c.length, weightCount, 0, budget);
      const gib = (b: number): string => `${(b / 2 ** 30).toFixed(1)} GiB`;
      throw new WhittleError('OUT_OF_MEMORY', `Training with batch ${c.batch} × length ${c.length} needs about ${gib(need)} of memory; about ${gib(budget)} is free. `
        + (fit ? `Batch ${fit.batch} × length ${fit.length} would fit.` : 'Even batch 1 at a short length would not fit: free memory or use a machine with more.'),
      { needBytes: need, availableBytes: budget, suggestion: fit });
    }
    ctx.progress({ phase: 'compile', done: 0, total: 1, message: 'building the training graph' });
    const view = await buildEncoderView(source, arch, { batch: c.batch, length: c.length, frozen: (p) => frozenRule(p), scratchDir: scratch });
    if (view.classes !== classes) throw new WhittleError('INVALID_INPUT', `The model classifies into ${view.classes} classes but the labelled data has ${classes}.`);
    const head = req.teacher
      ? classificationKdHead({ batch: c.batch, classes, temperature: req.teacher.temperature, alpha: req.teacher.alpha })
      : classificationHead({ batch: c.batch, classes });
    const stepGraph = compileTrainStep(view, head);
    if (req.teacher) teacher = await ort.InferenceSession.create(req.teacher.modelPath);

    const weights = view.trainable.map((p) => view.initial.get(p.name) ?? new Float32Array(0));
    const optimizer = new AdamW(view.trainable.map((p, i) => ({ name: p.name, weights: weights[i], decay: p.decay })), { weightDecay: c.weightDecay });
    const stepsPerEpoch = Math.max(1, Math.floor(examples.length / c.batch));
    const totalSteps = c.steps ?? Math.max(1, Math.round((c.epochs ?? 1) * stepsPerEpoch));
    let curve: TrainPoint[] = [];
    let startStep = 0;
    if (resumeFrom) {
      const saved = new Map(resumeFrom.parameters.map((p) => [p.name, p]));
      for (const [i, p] of view.trainable.entries()) {
        const w = saved.get(p.name);
        if (!w || w.weights.length !== weights[i].length) throw new WhittleError('INVALID_INPUT', `The checkpoint in ${req.checkpointDir} does not hold ${p.name} as this run trains it. Start the training again.`);
        weights[i].set(w.weights);
      }
      optimizer.load(resumeFrom.optimizer);
      curve = resumeFrom.curve;
      startStep = resumeFrom.step;
    }
    const stream = new ExampleStream(examples.length, c.seed, resumeFrom?.position);
    const checkpoint = async (step: number): Promise<void> => {
      if (!req.checkpointDir) return;
      await writeCheckpoint(req.checkpointDir, {
        modelFingerprint: fingerprint, configFingerprint, step, position: stream.position(), curve,
        parameters: view.trainable.map((p, i) => ({ name: p.name, dims: p.dims, weights: weights[i] })),
        optimizer: optimizer.state(),
      });
    };
    const session = await StepSession.open(stepGraph, view.trainable, weights, [c.batch, c.length], path.join(scratch, 'train'));
    const recent: { correct: number; count: number }[] = [];
    let tokensDone = 0, trainSeconds = 0, lastCheckpoint = startStep;
    try {
      for (let step = startStep + 1; step <= totalSteps; step++) {
        if (ctx.signal.aborted) {
          if (step - 1 > lastCheckpoint) await checkpoint(step - 1);
          throwIfAborted(ctx.signal);
        }
        const t0 = performance.now();
        const picked: LabelledExample[] = stream.next(c.batch).map((i) => examples[i]);
        const batch = encodeBatch(picked, tokenizer, tokens, c.length);
        const extra: Record<string, ort.Tensor> = {};
        if (view.masked) extra[ATTENTION_MASK] = new ort.Tensor('int64', batch.attentionMask, [c.batch, c.length]);
        if (teacher) extra[TEACHER_LOGITS] = new ort.Tensor('float32', await classLogits(teacher, batch), [c.batch, classes]);
        const r = await session.run({ inputIds: batch.inputIds, labels: batch.labels, labelShape: [c.batch] }, extra);
        const lr = learningRateAt(step - 1, { lr: c.lr, warmupSteps: c.warmupSteps, totalSteps, minLrRatio: c.minLrRatio });
        const { gradNorm, applied } = await optimizer.step(r.grads, { lr, gradScale: 1 / r.tokenCount, clipNorm: c.clipNorm });
        if (!applied) {
          throw new WhittleError('INVALID_INPUT', `Training diverged at step ${step}: the gradients are not finite (loss ${(r.lossSum / r.tokenCount).toFixed(4)}). Lower the learning rate (now ${c.lr}) or clip the gradient norm.`, { step });
        }
        let real = 0;
        for (const m of batch.attentionMask) real += Number(m);
        tokensDone += real;
        trainSeconds += (performance.now() - t0) / 1000;
        recent.push({ correct: r.parts.correct ?? 0, count: r.tokenCount });
        if (recent.length > stepsPerEpoch) recent.shift();
        const tokensPerSecond = tokensDone / trainSeconds;
        const point: TrainPoint = {
          step, totalSteps, loss: r.lossSum / r.tokenCount, lr, gradNorm, tokensPerSecond,
          etaSeconds: (totalSteps - step) * (trainSeconds / (step - startStep)),
          parts: Object.fromEntries(Object.entries(r.parts).map(([k, v]) => [k, v / r.tokenCount])),
        };
        curve = [...curve.filter((p) => p.step < step), point];
        req.onPoint?.(point);
        ctx.progress({ phase: 'train', done: step, total: totalSteps, message: `loss ${point.loss.toFixed(4)}` });
        if (every > 0 && step % every === 0 && step < totalSteps) {
          await checkpoint(step);
          lastCheckpoint = step;
        }
      }
      if (ctx.signal.aborted) {
        if (totalSteps > lastCheckpoint) await checkpoint(totalSteps);
        throwIfAborted(ctx.signal);
      }
    } finally {
      await session.close();
    }

    ctx.progress({ phase: 'write', done: 0, total: 1, message: 'writing the trained model' });
    const folder = await writeTrainedModel(source, view.trainable, weights, req.outDir, ctx, { type: req.teacher ? 'distill' : 'train' }, { recipe: req.recipe, tokenizerPath: req.tokenizerPath, deliver: req.deliver ?? 'final' });
    const right = recent.reduce((a, x) => a + x.correct, 0), seen = recent.reduce((a, x) => a + x.count, 0);
    return {
      folder,
      details: {
        steps: totalSteps,
        examples: examples.length,
        classes: req.train.classes,
        trainableParameters: parameterCount(view.trainable),
        frozenParameters: parameterCount(view.frozen),
        firstLoss: curve[0]?.loss ?? Number.NaN,
        finalLoss: curve.at(-1)?.loss ?? Number.NaN,
        trainAccuracy: seen > 0 ? right / seen : Number.NaN,
        headAdded: source !== read,
        seconds: (performance.now() - started) / 1000,
        ...(resumeFrom ? { resumedFromStep: resumeFrom.step } : {}),
        curve,
      },
    };
  } finally {
    await teacher?.release();
    await rm(scratch, { recursive: true, force: true });
  }
}
