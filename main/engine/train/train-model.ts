/**
 * One training run: training view → train-step graph → onnxruntime session → native AdamW, with
 * checkpoints and resume, the trained weights written back into the input's own layout.
 *
 * Order of work: everything that can be refused is checked before the first step (settings, text long
 * enough for one batch, memory estimate, ops without a gradient rule, a checkpoint of another model).
 * The loss of an optimizer step is the mean over its counted tokens: the graph returns Σ token losses and
 * their count per micro-batch, gradients are summed over micro-batches and scaled by 1/tokens.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { WhittleError, throwIfAborted } from '../errors.ts';
import type { JobContext } from '../job-context.ts';
import { readModel } from '../onnx/reader.ts';
import { mapArchitecture } from '../rewrite/architecture.ts';
import { modelIdentity } from '../evaluate/model-identity.ts';
import { addInto } from '../native/optimizer.ts';
import { assertResumable, readLatestCheckpoint, writeCheckpoint, type CheckpointState } from './checkpoint.ts';
import { TrainingData } from './data.ts';
import { languageModelling } from './objective.ts';
import { availableMemory, estimatePeakBytes, suggestShape } from './memory.ts';
import { AdamW, zeroMask } from './optimizer.ts';
import { freezeMatcher, FREEZE_ROLES } from './parameters.ts';
import { learningRateAt } from './schedule.ts';
import { StepSession, type Batch } from './session.ts';
import { compileEvalStep, compileTrainStep } from './step-graph.ts';
import type { TrainConfig, TrainPoint, TrainRequest, TrainResult, TrainTiming } from './types.ts';
import { buildTrainingView, parameterCount, profileActivations } from './view.ts';
import { writeTrainedModel } from './write-back.ts';

/** Settings checks that need nothing but the settings. */
export function checkTrainConfig(c: TrainConfig): void {
  const bad = (what: string): never => { throw new WhittleError('INVALID_INPUT', what); };
  if (!(c.lr > 0) || !Number.isFinite(c.lr)) bad(`The learning rate must be a number above 0 (got ${c.lr}). Typical fine-tuning rates are 1e-5 to 1e-3.`);
  if ((c.steps === undefined) === (c.epochs === undefined)) bad('Give either a number of steps or a number of epochs (exactly one).');
  if (c.steps !== undefined && (!Number.isInteger(c.steps) || c.steps < 1)) bad(`Steps must be a whole number of at least 1 (got ${c.steps}).`);
  if (c.epochs !== undefined && !(c.epochs > 0)) bad(`Epochs must be above 0 (got ${c.epochs}).`);
  if (!Number.isInteger(c.batch) || c.batch < 1) bad(`The batch must be a whole number of at least 1 (got ${c.batch}).`);
  if (!Number.isInteger(c.length) || c.length < 2) bad(`The sequence length must be a whole number of at least 2 (got ${c.length}).`);
  if (!Number.isInteger(c.accumulate) || c.accumulate < 1) bad(`Gradient accumulation must be a whole number of at least 1 (got ${c.accumulate}).`);
  if (!(c.weightDecay >= 0)) bad(`Weight decay must be 0 or more (got ${c.weightDecay}).`);
  if (!(c.clipNorm >= 0)) bad(`The gradient clipping norm must be 0 (off) or more (got ${c.clipNorm}).`);
  if (!(c.minLrRatio >= 0 && c.minLrRatio <= 1)) bad(`The final learning-rate ratio must lie in [0, 1] (got ${c.minLrRatio}).`);
  if (!Number.isInteger(c.warmupSteps) || c.warmupSteps < 0) bad(`Warmup must be a whole number of steps, 0 or more (got ${c.warmupSteps}).`);
  for (const f of c.freeze) {
    if (!/[*?._/]/.test(f) && !(FREEZE_ROLES as readonly string[]).includes(f) && !/\d/.test(f)) {
      bad(`'${f}' is neither a role (${FREEZE_ROLES.join(', ')}) nor a weight-name pattern (use * and ?, e.g. '*.o_proj.*').`);
    }
  }
}

/** The settings a resumed run must share with the run it continues (the data, the schedule, what trains). */
function settingsFingerprint(c: TrainConfig, totalSteps: number): string {
  const shaping = {
    text: path.resolve(c.textPath), tokenizer: path.resolve(c.tokenizerPath), batch: c.batch, length: c.length, accumulate: c.accumulate,
    totalSteps, lr: c.lr, warmupSteps: c.warmupSteps, minLrRatio: c.minLrRatio, weightDecay: c.weightDecay, clipNorm: c.clipNorm,
    freeze: [...c.freeze].sort(), keepSparsity: c.keepSparsity, seed: c.seed,
  };
  return createHash('sha256').update(JSON.stringify(shaping)).digest('hex');
}

const MEMORY_PROBE_LENGTH = 16;
/** Share of the available memory a run may plan to use. */
const MEMORY_HEADROOM = 0.8;

export async function trainModel(req: TrainRequest, ctx: JobContext): Promise<TrainResult> {
  const started = performance.now();
  const c = req.config;
  checkTrainConfig(c);
  freezeMatcher(c.freeze);

  const source = await readModel(req.modelPath);
  const arch = mapArchitecture(source);
  const identity = await modelIdentity(req.modelPath);
  const fingerprint = identity.contentSha256;

  const scratch = path.join(ctx.workDir, `.train-graphs-${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(scratch, { recursive: true });
  try {
    // Memory, from a small probe, before anything the size of the run is built (every weight counted as trainable).
    const { profile, weights: weightCount } = await profileActivations(source, Math.min(MEMORY_PROBE_LENGTH, c.length), { scratchDir: scratch });
    const budget = (await availableMemory()) * MEMORY_HEADROOM;
    const need = estimatePeakBytes(profile, c.batch, c.length, weightCount, 0);
    if (need > budget) {
      const fit = suggestShape(profile, c.batch, c.length, weightCount, 0, budget);
      const gib = (b: number): string => `${(b / 2 ** 30).toFixed(1)} GiB`;
      throw new WhittleError('OUT_OF_MEMORY', `Training with batch ${c.batch} × length ${c.length} needs about ${gib(need)} of memory; about ${gib(budget)} is free. `
        + (fit ? `Batch ${fit.batch} × length ${fit.length} would fit (use gradient accumulation to keep the effective batch).` : 'Even batch 1 at a short length would not fit: free memory or use a machine with more.'),
      { needBytes: need, availableBytes: budget, suggestion: fit });
    }
    ctx.progress({ phase: 'load', done: 0, total: 1, message: 'reading the text' });
    const data = await TrainingData.load({ textPath: c.textPath, tokenizerPath: c.tokenizerPath, batch: c.batch, length: c.length, seed: c.seed });
    const evalData = c.evalTextPath ? await TrainingData.load({ textPath: c.evalTextPath, tokenizerPath: c.tokenizerPath, batch: c.batch, length: c.length, seed: 0 }) : null;
    const totalSteps = c.steps ?? data.stepsForEpochs(c.epochs ?? 1, c.accumulate);
    const configFingerprint = settingsFingerprint(c, totalSteps);
    let resumeFrom: CheckpointState | null = null;
    if (req.resume) {
      resumeFrom = await readLatestCheckpoint(req.checkpointDir);
      if (!resumeFrom) throw new WhittleError('NOT_FOUND', `There is no checkpoint to resume from in ${req.checkpointDir}. Start the training again instead.`, { dir: req.checkpointDir });
      assertResumable(resumeFrom, fingerprint, configFingerprint);
    }
    const frozenRule = freezeMatcher(c.freeze);
    ctx.progress({ phase: 'compile', done: 0, total: 1, message: 'building the training graph' });
    const baseView = await buildTrainingView(source, arch, { batch: c.batch, length: c.length, frozen: (p) => frozenRule(p), scratchDir: scratch });
    const view = req.adapter ? await req.adapter.apply(baseView) : baseView;
    const trainable = parameterCount(view.trainable);
    const frozen = parameterCount(view.frozen);

    const objective = req.objective ?? languageModelling;
    const head = objective.head(view);
    const stepGraph = compileTrainStep(view, head);
    const evalGraph = evalData ? compileEvalStep(view, head) : null;

    const weights = view.trainable.map((p) => view.initial.get(p.name) ?? new Float32Array(0));
    const masks = view.trainable.map((_, i) => (c.keepSparsity ? zeroMask(weights[i]) : undefined));
    const optimizer = new AdamW(view.trainable.map((p, i) => ({ name: p.name, weights: weights[i], decay: p.decay, mask: masks[i] })), { weightDecay: c.weightDecay });
    let position = data.start();
    let curve: TrainPoint[] = [];
    let startStep = 0;
    if (resumeFrom) {
      const byName = new Map(resumeFrom.parameters.map((p) => [p.name, p]));
      for (const [i, p] of view.trainable.entries()) {
        const saved = byName.get(p.name);
        if (!saved || saved.weights.length !== weights[i].length) {
          throw new WhittleError('INVALID_INPUT', `The checkpoint in ${req.checkpointDir} does not hold ${p.name} as this run trains it: it was written with other frozen weights or another model. Start the training again.`);
        }
        weights[i].set(saved.weights);
      }
      optimizer.load(resumeFrom.optimizer);
      position = resumeFrom.position;
      curve = resumeFrom.curve;
      startStep = resumeFrom.step;
    }

    let session: StepSession | null = null;
    let evalSession: StepSession | null = null;
    try {
      await objective.prepare?.(view);
      session = await StepSession.open(stepGraph, view.trainable, weights, [c.batch, c.length], path.join(scratch, 'train'));
      evalSession = evalGraph ? await StepSession.open(evalGraph, view.trainable, weights, [c.batch, c.length], path.join(scratch, 'eval')) : null;
      const trainSession = session;
      const heldOutSession = evalSession;
      let lastEvalParts: Record<string, number> | undefined;
      const heldOutLoss = async (): Promise<number | undefined> => {
        if (!heldOutSession || !evalData) return undefined;
        let sum = 0, count = 0;
        const parts: Record<string, number> = {};
        for (const batch of evalData.inOrder()) {
          throwIfAborted(ctx.signal);
          const r = await heldOutSession.run(batch, { ...await objective.feeds?.(batch), ...req.adapter?.feeds?.(null) });
          sum += r.lossSum;
          count += r.tokenCount;
          for (const [k, v] of Object.entries(r.parts)) parts[k] = (parts[k] ?? 0) + v;
        }
        lastEvalParts = Object.keys(parts).length > 0 && count > 0 ? Object.fromEntries(Object.entries(parts).map(([k, v]) => [k, v / count])) : undefined;
        return count > 0 ? sum / count : undefined;
      };
      const checkpoint = async (step: number): Promise<void> => {
        await writeCheckpoint(req.checkpointDir, {
          modelFingerprint: fingerprint, configFingerprint, step, position, curve,
          parameters: view.trainable.map((p, i) => ({ name: p.name, dims: p.dims, weights: weights[i] })),
          optimizer: optimizer.state(),
        });
      };

      const evalLossBefore = startStep === 0 ? await heldOutLoss() : curve.find((p) => p.evalLoss !== undefined)?.evalLoss;
      const evalPartsBefore = startStep === 0 ? lastEvalParts : undefined;
      const tokensPerStep = c.batch * c.length * c.accumulate;
      const timing: TrainTiming = { data: 0, teacher: 0, session: 0, accumulate: 0, optimizer: 0, evaluate: 0, checkpoint: 0 };
      const timed = async <T>(part: keyof TrainTiming, work: () => Promise<T> | T): Promise<T> => {
        const t = performance.now();
        try { return await work(); } finally { timing[part] += (performance.now() - t) / 1000; }
      };
      let tokensDone = 0;
      let trainSeconds = 0;
      let lastCheckpoint = startStep;
      const accumulated = c.accumulate > 1 ? weights.map((w) => new Float32Array(w.length)) : null;
      for (let step = startStep + 1; step <= totalSteps; step++) {
        if (ctx.signal.aborted) {
          if (step - 1 > lastCheckpoint) await checkpoint(step - 1);
          throwIfAborted(ctx.signal);
        }
        const t0 = performance.now();
        let lossSum = 0, tokens = 0;
        const partSums: Record<string, number> = {};
        let grads: Float32Array[] = [];
        for (let a = 0; a < c.accumulate; a++) {
          const next = await timed('data', () => data.batchAt(position));
          const batch: Batch = next.batch;
          position = next.next;
          const extra = { ...await timed('teacher', async () => objective.feeds?.(batch)), ...req.adapter?.feeds?.({ step, micro: a }) };
          const r = await timed('session', () => trainSession.run(batch, extra));
          lossSum += r.lossSum;
          tokens += r.tokenCount;
          for (const [k, v] of Object.entries(r.parts)) partSums[k] = (partSums[k] ?? 0) + v;
          if (accumulated) {
            await timed('accumulate', async () => {
              if (a === 0) for (const [i, g] of r.grads.entries()) accumulated[i].set(g);
              else await addInto(accumulated, r.grads);
            });
            grads = accumulated;
          } else grads = r.grads;
        }
        const lr = learningRateAt(step - 1, { lr: c.lr, warmupSteps: c.warmupSteps, totalSteps, minLrRatio: c.minLrRatio });
        const { gradNorm, applied } = await timed('optimizer', () => optimizer.step(grads, { lr, gradScale: tokens > 0 ? 1 / tokens : 0, clipNorm: c.clipNorm }));
        if (!applied) {
          throw new WhittleError('INVALID_INPUT', `Training diverged at step ${step}: the gradients are not finite (loss ${(lossSum / Math.max(1, tokens)).toFixed(4)}). `
            + `Lower the learning rate (now ${c.lr}) or clip the gradient norm${lastCheckpoint > 0 ? `; the checkpoint of step ${lastCheckpoint} is kept` : ''}.`, { step, lastCheckpoint });
        }
        const seconds = (performance.now() - t0) / 1000;
        trainSeconds += seconds;
        tokensDone += tokensPerStep;
        const tokensPerSecond = tokensDone / trainSeconds;
        const point: TrainPoint = {
          step, totalSteps, loss: tokens > 0 ? lossSum / tokens : Number.NaN, lr, gradNorm, tokensPerSecond,
          etaSeconds: ((totalSteps - step) * tokensPerStep) / tokensPerSecond,
        };
        if (Object.keys(partSums).length > 0) point.parts = Object.fromEntries(Object.entries(partSums).map(([k, v]) => [k, tokens > 0 ? v / tokens : Number.NaN]));
        if (heldOutSession && (step % c.evalEvery === 0 || step === totalSteps)) point.evalLoss = await timed('evaluate', heldOutLoss);
        curve = [...curve.filter((p) => p.step < step), point];
        req.onPoint?.(point);
        ctx.progress({ phase: 'train', done: step, total: totalSteps, message: `loss ${point.loss.toFixed(4)}` });
        if (c.checkpointEvery > 0 && step % c.checkpointEvery === 0 && step < totalSteps) {
          await timed('checkpoint', () => checkpoint(step));
          lastCheckpoint = step;
        }
      }
      if (ctx.signal.aborted) {
        if (totalSteps > lastCheckpoint) await checkpoint(totalSteps);
        throwIfAborted(ctx.signal);
      }

      ctx.progress({ phase: 'write', done: 0, total: 1, message: 'writing the trained model' });
      const outputOptions = { recipe: req.recipe, tokenizerPath: c.tokenizerPath, deliver: req.deliver };
      const folder = req.adapter?.write
        ? await req.adapter.write(source, view, weights, req.outDir, ctx, { type: 'train' }, outputOptions)
        : await writeTrainedModel(source, view.trainable, weights, req.outDir, ctx, { type: 'train' }, outputOptions);
      const last = curve.at(-1);
      return {
        folder,
        details: {
          steps: totalSteps,
          tokens: totalSteps * tokensPerStep,
          trainableParameters: trainable,
          frozenParameters: frozen,
          firstLoss: curve[0]?.loss ?? Number.NaN,
          finalLoss: last?.loss ?? Number.NaN,
          ...(evalLossBefore !== undefined ? { evalLossBefore } : {}),
          ...(last?.evalLoss !== undefined ? { evalLossAfter: last.evalLoss } : {}),
          ...(evalPartsBefore ? { evalPartsBefore } : {}),
          ...(last?.evalLoss !== undefined && lastEvalParts ? { evalPartsAfter: lastEvalParts } : {}),
          tokensPerSecond: trainSeconds > 0 ? tokensDone / trainSeconds : 0,
          seconds: (performance.now() - started) / 1000,
          ...(resumeFrom ? { resumedFromStep: resumeFrom.step } : {}),
          checkpointDir: req.checkpointDir,
          curve,
          timing,
        },
      };
    } finally {
      await session?.close();
      await evalSession?.close();
      await objective.close?.();
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
