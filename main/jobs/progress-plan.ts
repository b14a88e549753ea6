/**
 * What a job will do, as the segments of one progress bar: the phases the engine reports, in order, each
 * with its expected cost read from the recipe. Costs are in one unit throughout, "one token through the
 * model in a batched forward pass", so that their shares of the job are comparable before anything has
 * been timed. Loading, quantizing and writing a model take time in proportion to its size, as does a
 * forward pass, so in this unit they are constants:
 *
 *   load                 LOAD
 *   calibrate            N sequences × L tokens × 3 (the captured activations feed Hessians or histograms)
 *   quantize / convert   QUANTIZE (GPTQ: twice that, for the sweep over each Hessian)
 *   write                WRITE
 *   evaluate:compare     tokens scored × 3 (two models in lockstep, and the KL / agreement)
 *   evaluate:perplexity  tokens scored
 *   evaluate:speed       models × (repeats + 1) × (P + D × STEP): a one-token decoding step costs STEP
 *                        batched tokens (the per-call overhead dominates it)
 *   evaluate:samples     models × prompts × new tokens × STEP
 *   sensitivity          CANDIDATES × samples × L
 *   compile              LOAD (the training graph built from the model)
 *   train                steps × accumulate × B × T × 3 (forward, backward, update); with epochs instead of
 *                        steps: epochs × EPOCH_TOKENS × 3 (the text is only tokenized by the engine)
 *   train (distill)      the same tokens × 4 (the teacher's forward pass beside the student's training)
 *   teacher              EPOCH_TOKENS: the teacher's top-k cache, one forward pass over the text
 * Tokens scored: N windows of L tokens (documents: ~¾ L each, as documents are often shorter than the
 * window), at most the text's bytes / 4. The constants come from recorded jobs (tests/unit/jobs/recorded);
 * the estimator corrects them with the rates it observes, so only their proportions matter.
 */
import { compresses } from '../../preload/methods.ts';
import { DEFAULT_MAX_NEW_TOKENS, DEFAULT_SAMPLE_PROMPTS, type Recipe, type Step } from '../../preload/recipe.ts';

export interface PlanSegment {
  /** The engine's phase name this segment stands for. */
  phase: string;
  /** Expected cost (see the header), > 0. */
  cost: number;
}

export interface PlanFacts {
  /** Bytes of the perplexity text, when known. */
  textBytes: number | null;
}

const LOAD = 3000;
const QUANTIZE = 1000;
const WRITE = 500;
const FOOTPRINT = 500;
const STEP = 25;
const CANDIDATES = 50;
const BYTES_PER_TOKEN = 4;

/** Tokens of one pass over a training text, before the engine has counted them. */
const EPOCH_TOKENS = 200_000;

function stepSegments(step: Step): PlanSegment[] {
  if (step.type === 'train') {
    const tokens = step.steps !== undefined ? step.steps * step.accumulate * step.batch * step.length : (step.epochs ?? 1) * EPOCH_TOKENS;
    return [{ phase: 'compile', cost: LOAD }, { phase: 'train', cost: 3 * tokens }, { phase: 'write', cost: WRITE }];
  }
  if (step.type === 'distill') {
    const s = step.schedule;
    const tokens = s.steps !== undefined ? s.steps * s.accumulate * step.data.batch * step.data.length : (s.epochs ?? 1) * EPOCH_TOKENS;
    // A top-k cache runs the teacher once over the whole text before training.
    const cache: PlanSegment[] = step.teacherSignal.kind === 'topk' ? [{ phase: 'teacher', cost: EPOCH_TOKENS }] : [];
    return [...cache, { phase: 'compile', cost: 2 * LOAD }, { phase: 'train', cost: 4 * tokens }, { phase: 'write', cost: WRITE }];
  }
  if (step.type === 'sensitivity') {
    const c = step.calibration;
    return [
      { phase: 'calibrate', cost: c.samples * c.length * 3 },
      { phase: 'quantize', cost: QUANTIZE },
      { phase: 'sensitivity', cost: CANDIDATES * step.samples * c.length },
    ];
  }
  if (step.type === 'prune') {
    const c = step.calibration;
    const calibrate: PlanSegment[] = c ? [{ phase: 'calibrate', cost: c.samples * c.length * 3 }] : [];
    return [...calibrate, { phase: 'prune', cost: step.method === 'sparsegpt' ? 2 * QUANTIZE : QUANTIZE }, { phase: 'write', cost: WRITE }];
  }
  switch (step.method) {
    case 'fp16':
      return [{ phase: 'convert', cost: QUANTIZE }, { phase: 'write', cost: WRITE }];
    case 'rtn':
    case 'int8-dynamic':
      return [{ phase: 'quantize', cost: QUANTIZE }, { phase: 'write', cost: WRITE }];
    case 'gptq':
      return [{ phase: 'calibrate', cost: step.calibration.samples * step.calibration.length * 3 }, { phase: 'quantize', cost: 2 * QUANTIZE }, { phase: 'write', cost: WRITE }];
    case 'int8-static':
      return [{ phase: 'calibrate', cost: step.calibration.samples * step.calibration.length * 3 }, { phase: 'quantize', cost: QUANTIZE }, { phase: 'write', cost: WRITE }];
    case 'qat': {
      // KD-QAT: a distillation of the model from its own float weights (teacher and student sessions).
      const qatTokens = step.steps !== undefined ? step.steps * step.accumulate * step.batch * step.length : (step.epochs ?? 1) * EPOCH_TOKENS;
      return [{ phase: 'compile', cost: 2 * LOAD }, { phase: 'train', cost: 4 * qatTokens }, { phase: 'write', cost: WRITE }];
    }
  }
}

/** The segments of a job running `recipe`, in the order the engine reports them. */
export function progressPlan(recipe: Recipe, facts: PlanFacts): PlanSegment[] {
  const plan: PlanSegment[] = [{ phase: 'load', cost: LOAD }];
  for (const step of recipe.steps) plan.push(...stepSegments(step));

  const evaluation = recipe.evaluation;
  const comparison = compresses(recipe);
  const models = comparison ? 2 : 1;
  if (evaluation.perplexity) {
    const p = evaluation.perplexity;
    const perWindow = p.protocol === 'documents' ? 0.75 * p.window : p.window;
    const inText = facts.textBytes !== null ? facts.textBytes / BYTES_PER_TOKEN : Number.POSITIVE_INFINITY;
    const tokens = Math.max(1, Math.min(p.maxSamples * perWindow, inText));
    plan.push(comparison ? { phase: 'evaluate:compare', cost: 3 * tokens } : { phase: 'evaluate:perplexity', cost: tokens });
  }
  if (evaluation.speed) {
    const s = evaluation.speed;
    plan.push({ phase: 'evaluate:speed', cost: models * (s.repeats + 1) * (s.promptTokens + s.decodeTokens * STEP) });
  }
  // About one forward pass of ~64 tokens per held-out example (the file's size is not known here).
  if (evaluation.accuracy) plan.push({ phase: 'evaluate:accuracy', cost: models * 64 * 200 });
  if (evaluation.footprint) plan.push({ phase: 'evaluate:footprint', cost: FOOTPRINT });
  const samples = evaluation.samples ?? (comparison && recipe.tokenizer ? { prompts: DEFAULT_SAMPLE_PROMPTS, maxNewTokens: DEFAULT_MAX_NEW_TOKENS } : null);
  if (samples) plan.push({ phase: 'evaluate:samples', cost: models * samples.prompts.length * samples.maxNewTokens * STEP });
  return plan;
}
