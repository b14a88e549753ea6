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
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import type { Recipe } from '../../../preload/recipe.ts';
import { mulberry32 } from '../calibrate/prng.ts';
import { encodeBatch, encoderTokens, type EncodedBatch, type LabelledData, type LabelledExample } from '../data/labelled.ts';
import { loadTokenizer } from '../data/tokenizer.ts';
import { WhittleError, throwIfAborted } from '../errors.ts';
import type { JobContext } from '../job-context.ts';
import { readModel } from '../onnx/reader.ts';
import { checkOutputDir } from '../rewrite/output-folder.ts';
import type { WrittenFolder } from '../rewrite/write-folder.ts';
import { mapArchitecture } from '../rewrite/architecture.ts';
import { classificationHead, classificationKdHead, TEACHER_LOGITS } from './classification-head.ts';
import { ATTENTION_MASK, buildEncoderView, withClassificationHead } from './encoder-view.ts';
import { AdamW } from './optimizer.ts';
import { freezeMatcher } from './parameters.ts';
import { learningRateAt } from './schedule.ts';
import { StepSession } from './session.ts';
import { compileTrainStep } from './step-graph.ts';
import { checkTrainConfig } from './train-model.ts';
import type { TrainPoint } from './types.ts';
import { parameterCount } from './view.ts';
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
  curve: TrainPoint[];
}

export interface ClassifierTrainResult {
  folder: WrittenFolder;
  details: ClassifierTrainDetails;
}

/** The endless seeded stream of example indices (see the header). */
export class ExampleStream {
  private readonly n: number;
  private readonly seed: number;
  private epoch = -1;
  private order: number[] = [];
  private at = 0;

  constructor(n: number, seed: number) {
    this.n = n;
    this.seed = seed;
  }

  next(count: number): number[] {
    const out: number[] = [];
    while (out.length < count) {
      if (this.at >= this.order.length) this.shuffle();
      out.push(this.order[this.at++]);
    }
    return out;
  }

  private shuffle(): void {
    this.epoch++;
    const rand = mulberry32((this.seed + this.epoch) >>> 0);
    this.order = Array.from({ length: this.n }, (_, i) => i);
    for (let i = this.n - 1; i > 0; i--) {
      const j = rand.below(i + 1);
      [this.order[i], this.order[j]] = [this.order[j], this.order[i]];
    }
    this.at = 0;
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
    const stream = new ExampleStream(examples.length, c.seed);
    const session = await StepSession.open(stepGraph, view.trainable, weights, [c.batch, c.length], path.join(scratch, 'train'));
    const curve: TrainPoint[] = [];
    const recent: { correct: number; count: number }[] = [];
    let tokensDone = 0, trainSeconds = 0;
    try {
      for (let step = 1; step <= totalSteps; step++) {
        throwIfAborted(ctx.signal);
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
          etaSeconds: (totalSteps - step) * (trainSeconds / step),
          parts: Object.fromEntries(Object.entries(r.parts).map(([k, v]) => [k, v / r.tokenCount])),
        };
        curve.push(point);
        req.onPoint?.(point);
        ctx.progress({ phase: 'train', done: step, total: totalSteps, message: `loss ${point.loss.toFixed(4)}` });
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
        curve,
      },
    };
  } finally {
    await teacher?.release();
    await rm(scratch, { recursive: true, force: true });
  }
}
