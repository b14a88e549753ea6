/**
 * Runs one recipe: checks every input before any work, runs the steps in order (each may write a new
 * model), then evaluates. When no step wrote a new model (no steps, or only analyses such as sensitivity)
 * the recipe's model is evaluated as subject 'model'. Otherwise the original and the final result are compared (TECHNIQUES.md §4) as subjects 'original' and 'result':
 * both decoders open at once, the same perplexity batches through both in lockstep (both perplexities,
 * KL(original ‖ result), top-1 agreement), the speed of both timed interleaved in this job (never taken
 * from an earlier evaluation), the footprint of each, and greedy generations from the
 * same prompts side by side. The metrics are then written into the output folder's whittle.json.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Artefact, Metric } from '../../../preload/contract.ts';
import { compresses, describeStep, measuresCompressedSize } from '../../../preload/methods.ts';
import { DEFAULT_MAX_NEW_TOKENS, DEFAULT_SAMPLE_PROMPTS, Recipe } from '../../../preload/recipe.ts';
import { readTextFile } from '../data/text-file.ts';
import type { LabelledData } from '../data/labelled.ts';
import { checkTokenizerFitsModel, loadTokenizer, type TextTokenizer } from '../data/tokenizer.ts';
import { throwIfAborted, WhittleError } from '../errors.ts';
import { evaluateAccuracy } from '../evaluate/accuracy.ts';
import { accuracyDetails, accuracyExamples, accuracyMetrics, checkClassifierFor, classifierCheck, promptSettingsOf, scoresByPrompts } from '../evaluate/accuracy-section.ts';
import { evaluatePromptAccuracy, promptPlan, type PromptPlan } from '../evaluate/prompt-accuracy.ts';
import { agreementMetrics, compareOnText } from '../evaluate/agreement.ts';
import { createSession, openDecoder, type Decoder } from '../evaluate/decoder-session.ts';
import { footprintMetrics, measureFootprint, type InspectModel } from '../evaluate/footprint.ts';
import { generate, type Generation } from '../evaluate/generate.ts';
import { modelIdentity } from '../evaluate/model-identity.ts';
import { evaluatePerplexity, perplexityMetrics, type PerplexityResult } from '../evaluate/perplexity.ts';
import { measureSpeedInterleaved, speedMetrics, type SpeedSubject } from '../evaluate/speed.ts';
import type { JobContext } from '../job-context.ts';
import { checkModelSupported, detectGraphKind } from '../model/layout.ts';
import { readModel } from '../onnx/reader.ts';
import { MANIFEST_FILE, readManifest, updateManifest } from '../rewrite/manifest.ts';
import type { PartialFolder } from '../rewrite/output-folder.ts';
import { defaultSteps, stepRunnerFor, type StepRegistry } from './registry.ts';
import { checkStepDetails } from './step.ts';

export interface RecipeResult {
  metrics: Metric[];
  artefacts: Artefact[];
  details: Record<string, unknown>;
}

export interface RunRecipeOptions {
  /** Step implementations; the built-in registry by default. */
  steps?: StepRegistry;
  /** Model inspection used for the footprint; by default the graph is read by the footprint itself. */
  inspect?: InspectModel;
}

/** What every evaluated model is measured on, loaded once. */
interface EvaluationInputs {
  recipe: Recipe;
  tokenizer: TextTokenizer | null;
  text: string | null;
  threads: number;
  samples: SamplePlan | null;
  accuracy: AccuracyPlan | null;
}

/** The held-out examples of the accuracy section, and whether the original is a classifier to score. */
interface AccuracyPlan {
  data: LabelledData;
  maxLength: number;
  /** False when the original is an encoder without class logits that a classify step gives a head. */
  original: boolean;
  /** A decoder's labelled prompts (checked against the classes and tokenizer); null for an encoder classifier. */
  prompt: PromptPlan | null;
}

interface SamplePlan {
  prompts: readonly string[];
  maxNewTokens: number;
  /** True when the recipe named no prompts and the defaults are used. */
  defaulted: boolean;
}

function parseRecipe(input: Recipe): Recipe {
  const parsed = Recipe.safeParse(input);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
    throw new WhittleError('INVALID_INPUT', `The recipe is not valid: ${issues.map((i) => `${i.path || '(recipe)'}: ${i.message}`).join('; ')}`, { issues });
  }
  return parsed.data;
}

/** The recipe's prompts; for a comparison without any, the default prompts (when there is a tokenizer). */
function samplePlan(r: Recipe): SamplePlan | null {
  if (r.evaluation.samples) return { ...r.evaluation.samples, defaulted: false };
  if (compresses(r) && r.tokenizer) return { prompts: DEFAULT_SAMPLE_PROMPTS, maxNewTokens: DEFAULT_MAX_NEW_TOKENS, defaulted: true };
  return null;
}

const needsDecoder = (r: Recipe, samples: SamplePlan | null): boolean => Boolean(r.evaluation.perplexity || r.evaluation.speed || samples);
/** After preparation (default generations may have been dropped there). */
const decodersNeeded = (inputs: EvaluationInputs): boolean => Boolean(inputs.recipe.evaluation.perplexity || inputs.recipe.evaluation.speed || inputs.samples);

/** Checks everything a recipe names before any work; returns what evaluation needs and the open decoder. */
async function prepare(recipe: Recipe, registry: StepRegistry, ctx: JobContext): Promise<{ inputs: EvaluationInputs; decoder: Decoder | null }> {
  recipe.steps.forEach((step, i) => stepRunnerFor(registry, step, i));
  // A state input that is not a key/value cache (a convolution state, …) cannot be fed: refused first.
  // A model that cannot be read at all is reported below, by the session that opens it.
  const graph = await readModel(recipe.model.path).catch(() => null);
  if (graph) checkModelSupported(graph);
  const needsTokenizer = recipe.steps.findIndex((s) => describeStep(s).needs.tokenizer);
  if (needsTokenizer >= 0 && !recipe.tokenizer) {
    const title = describeStep(recipe.steps[needsTokenizer]).title;
    throw new WhittleError('INVALID_INPUT', `Step ${needsTokenizer + 1} of the recipe (${title}) reads text, which needs a tokenizer. Add the model's tokenizer.json to the recipe.`);
  }
  const evaluation = recipe.evaluation;
  const encoder = graph !== null && detectGraphKind(graph) === 'encoder';
  // An encoder generates nothing: the default generations of a comparison are left out.
  const planned = samplePlan(recipe);
  const samples = encoder && planned?.defaulted ? null : planned;
  const wantsTokenizer = Boolean(evaluation.perplexity || samples || evaluation.accuracy);
  if (wantsTokenizer && !recipe.tokenizer) {
    const what = evaluation.perplexity ? 'perplexity' : evaluation.accuracy ? 'accuracy' : 'samples';
    throw new WhittleError('INVALID_INPUT', `The recipe asks for ${what}, which needs a tokenizer. Add the model's tokenizer.json to the recipe.`);
  }
  const threads = evaluation.speed?.threads ?? 0;
  // The recipe's tokenizer goes into the output even when no evaluation reads it: a broken one fails now.
  const given = recipe.tokenizer ? await loadTokenizer(recipe.tokenizer.path) : null;
  const accuracy = evaluation.accuracy && graph ? await accuracyPlan(recipe, graph, given, ctx) : null;

  ctx.progress({ phase: 'load', done: 0, total: 1, message: path.basename(recipe.model.path) });
  let decoder: Decoder | null = null;
  if (needsDecoder(recipe, samples)) {
    decoder = await openDecoder(recipe.model.path, { threads });
  } else {
    await (await createSession(recipe.model.path, threads)).release();
  }
  try {
    let tokenizer: TextTokenizer | null = null;
    let plan = samples;
    if (wantsTokenizer && given) {
      try {
        tokenizer = given;
        if (decoder) checkTokenizerFitsModel(tokenizer, decoder.vocabSize);
      } catch (e) {
        // Only the default generations wanted it: they are left out rather than failing the job.
        if (evaluation.perplexity || !samples?.defaulted) throw e;
        ctx.log('warn', `No sample generations: ${(e as Error).message}`);
        tokenizer = null;
        plan = null;
      }
    }
    const text = evaluation.perplexity ? await readTextFile(evaluation.perplexity.text) : null;
    ctx.progress({ phase: 'load', done: 1, total: 1 });
    return { inputs: { recipe, tokenizer, text, threads, samples: plan, accuracy }, decoder };
  } catch (e) {
    await decoder?.release();
    throw e;
  }
}

/**
 * The accuracy section's examples, read and checked before any work, and whether the original is scored:
 * a decoder by labelled prompts (its template and verbalizers checked now); an encoder without class
 * logits only after a classify step gave it a head.
 */
async function accuracyPlan(recipe: Recipe, graph: Awaited<ReturnType<typeof readModel>>, tokenizer: TextTokenizer | null, ctx: JobContext): Promise<AccuracyPlan> {
  const config = recipe.evaluation.accuracy!;
  const data = await accuracyExamples(config, ctx.signal);
  if (scoresByPrompts(graph)) {
    if (!tokenizer) throw new WhittleError('INVALID_INPUT', "The recipe asks for accuracy, which needs a tokenizer. Add the model's tokenizer.json to the recipe.");
    return { data, maxLength: config.maxLength, original: true, prompt: promptPlan(promptSettingsOf(config), data.classes, tokenizer) };
  }
  const check = classifierCheck(graph);
  const classifies = recipe.steps.some((s) => s.type === 'train' && s.objective === 'classify');
  if (check.ok || !classifies || detectGraphKind(graph) !== 'encoder') {
    checkClassifierFor(graph, data);
    return { data, maxLength: config.maxLength, original: true, prompt: null };
  }
  ctx.log('info', `the original has no class logits; accuracy is measured on the result only (${check.reason})`);
  return { data, maxLength: config.maxLength, original: false, prompt: null };
}

/** Accuracy and macro-F1 of one model on the held-out examples. */
async function accuracyOf(modelPath: string, subject: string, inputs: EvaluationInputs, ctx: JobContext): Promise<{ metrics: Metric[]; details: Record<string, unknown> }> {
  const plan = inputs.accuracy!;
  throwIfAborted(ctx.signal);
  if (plan.prompt) return promptAccuracyOf(modelPath, subject, plan.prompt, inputs, ctx);
  if (subject !== 'original') checkClassifierFor(await readModel(modelPath), plan.data);
  ctx.log('info', `${subject}: accuracy on ${plan.data.examples.length} held-out examples of ${path.basename(plan.data.path)} (${plan.data.classes.length} classes)`);
  const r = await evaluateAccuracy(modelPath, plan.data, { tokenizerPath: inputs.tokenizer!.path, maxLength: plan.maxLength, ...(inputs.threads ? { threads: inputs.threads } : {}) });
  ctx.log('info', `${subject}: accuracy ${(100 * r.accuracy).toFixed(2)} %, macro-F1 ${r.macroF1.toFixed(4)} over ${r.count} examples`);
  return { metrics: accuracyMetrics(r, subject), details: accuracyDetails(r, plan.data) };
}

/** Accuracy and macro-F1 of a decoder on the held-out examples as labelled prompts (prompt-accuracy.ts). */
async function promptAccuracyOf(modelPath: string, subject: string, prompt: PromptPlan, inputs: EvaluationInputs, ctx: JobContext): Promise<{ metrics: Metric[]; details: Record<string, unknown> }> {
  const plan = inputs.accuracy!;
  const tokenizer = inputs.tokenizer!;
  ctx.log('info', `${subject}: accuracy on ${plan.data.examples.length} held-out examples of ${path.basename(plan.data.path)} as prompts ${JSON.stringify(prompt.template)}, answers ${prompt.verbalizers.map((v) => JSON.stringify(v)).join(' / ')}${prompt.lengthNormalize ? ' (per token)' : ''}`);
  const decoder = await openDecoder(modelPath, { threads: inputs.threads });
  try {
    checkTokenizerFitsModel(tokenizer, decoder.vocabSize);
    const r = await evaluatePromptAccuracy(decoder, tokenizer, plan.data, prompt, { maxLength: plan.maxLength, signal: ctx.signal });
    ctx.log('info', `${subject}: accuracy ${(100 * r.accuracy).toFixed(2)} %, macro-F1 ${r.macroF1.toFixed(4)} over ${r.count} examples`);
    return { metrics: accuracyMetrics(r, subject), details: accuracyDetails(r, plan.data) };
  } finally {
    await decoder.release();
  }
}

const decoderFacts = (d: Decoder): Record<string, unknown> => ({ layout: d.layout.kind, vocabSize: d.vocabSize, cacheTensors: d.layout.cache.length });

function perplexityDetails(result: PerplexityResult, textPath: string): Record<string, unknown> {
  return { ...result.details, text: textPath, perplexity: result.perplexity, sampleNll: result.sampleNll, sampleTokens: result.sampleTokens };
}

/**
 * Speed of one model, or of the original and the result timed interleaved in this job (speed.ts): a
 * comparison's speeds are always measured here and now, side by side, never taken from an earlier run.
 */
async function speedOf(subjects: readonly SpeedSubject[], inputs: EvaluationInputs, ctx: JobContext): Promise<{ metrics: Metric[]; details: Record<string, unknown>[] }> {
  const config = inputs.recipe.evaluation.speed!;
  throwIfAborted(ctx.signal);
  const { tokenizer, text } = inputs;
  const prompt = tokenizer && text !== null ? tokenizer.encode(text.slice(0, 64 * config.promptTokens)) : undefined;
  const names = subjects.map((s) => s.name).join(' and ');
  ctx.log('info', `${names}: speed, ${subjects.length > 1 ? 'interleaved, ' : ''}one warm-up then ${config.repeats} timed run(s) each (P = ${config.promptTokens}, D = ${config.decodeTokens})`);
  const { results, order } = await measureSpeedInterleaved(subjects, config, ctx, prompt);
  const metrics: Metric[] = [];
  const details = results.map((speed, i) => {
    const subject = subjects[i].name;
    metrics.push(...speedMetrics(speed, subject));
    ctx.log('info', `${subject}: prefill ${speed.prefillMs.toFixed(2)} ms (${speed.prefill.min.toFixed(2)}–${speed.prefill.max.toFixed(2)}), `
      + `decode ${speed.decodeTokensPerS.toFixed(1)} tokens/s (${speed.decode.min.toFixed(1)}–${speed.decode.max.toFixed(1)}), `
      + `median of ${speed.repeats}, ${speed.threads} thread(s), ${speed.provider}`);
    return {
      ...speed,
      order,
      note: speed.decodeMode === 're-forward' ? 'The graph has no KV cache: each decoded token re-runs the whole sequence.' : 'Decoding feeds the KV cache back (present → past).',
    };
  });
  return { metrics, details };
}


async function footprintOf(modelPath: string, subject: string, ctx: JobContext, options: RunRecipeOptions, compressed = false): Promise<{ metrics: Metric[]; details: Record<string, unknown> }> {
  throwIfAborted(ctx.signal);
  const footprint = await measureFootprint(modelPath, { inspect: options.inspect, compressed });
  return { metrics: footprintMetrics(footprint, subject), details: { ...footprint } };
}

async function generateAll(decoder: Decoder, tokenizer: TextTokenizer, plan: SamplePlan, ctx: JobContext, progress: { done: number; total: number }): Promise<Generation[]> {
  const out: Generation[] = [];
  for (const prompt of plan.prompts) {
    throwIfAborted(ctx.signal);
    ctx.progress({ phase: 'evaluate:samples', done: progress.done, total: progress.total });
    out.push(await generate(decoder, tokenizer, prompt, plan.maxNewTokens, ctx.signal));
    progress.done++;
  }
  ctx.progress({ phase: 'evaluate:samples', done: progress.done, total: progress.total });
  return out;
}

/** One model on its own (a recipe without steps): subject 'model'. */
async function evaluateModel(modelPath: string, subject: string, inputs: EvaluationInputs, ctx: JobContext, options: RunRecipeOptions, open: Decoder | null): Promise<{ metrics: Metric[]; details: Record<string, unknown> }> {
  const { recipe, tokenizer, text } = inputs;
  const evaluation = recipe.evaluation;
  const metrics: Metric[] = [];
  const details: Record<string, unknown> = { modelPath };
  let decoder = open;
  if (!decoder && decodersNeeded(inputs)) {
    decoder = await openDecoder(modelPath, { threads: inputs.threads });
    if (tokenizer) checkTokenizerFitsModel(tokenizer, decoder.vocabSize);
  }
  try {
    if (decoder) details.decoder = decoderFacts(decoder);

    if (evaluation.perplexity && decoder && tokenizer && text !== null) {
      ctx.log('info', `${subject}: perplexity (${evaluation.perplexity.protocol}, L = ${evaluation.perplexity.window}, N = ${evaluation.perplexity.maxSamples})`);
      const result = await evaluatePerplexity(decoder, tokenizer, text, evaluation.perplexity, ctx);
      metrics.push(...perplexityMetrics(result, subject));
      details.perplexity = perplexityDetails(result, evaluation.perplexity.text);
      ctx.log('info', `${subject}: perplexity ${result.perplexity.toFixed(4)} over ${result.predictedTokens} tokens`);
    }

    if (inputs.accuracy) {
      ctx.progress({ phase: 'evaluate:accuracy', done: 0, total: 1 });
      const a = await accuracyOf(modelPath, subject, inputs, ctx);
      metrics.push(...a.metrics);
      details.accuracy = a.details;
      ctx.progress({ phase: 'evaluate:accuracy', done: 1, total: 1 });
    }

    if (evaluation.speed && decoder) {
      const speed = await speedOf([{ name: subject, decoder }], inputs, ctx);
      metrics.push(...speed.metrics);
      details.speed = speed.details[0];
    }

    if (evaluation.footprint) {
      ctx.progress({ phase: 'evaluate:footprint', done: 0, total: 1 });
      const footprint = await footprintOf(modelPath, subject, ctx, options);
      metrics.push(...footprint.metrics);
      details.footprint = footprint.details;
      ctx.progress({ phase: 'evaluate:footprint', done: 1, total: 1 });
    }

    if (inputs.samples && decoder && tokenizer) {
      const samples = await generateAll(decoder, tokenizer, inputs.samples, ctx, { done: 0, total: inputs.samples.prompts.length });
      details.samples = samples.map((s) => ({ prompt: s.prompt, completion: s.completion, text: s.text, newTokens: s.newTokens.length, stoppedAtEos: s.stoppedAtEos }));
    }
  } finally {
    await decoder?.release();
  }
  return { metrics, details };
}

/** The original beside the result of the steps, on the same data (see the file header). */
async function compareModels(
  originalPath: string,
  resultPath: string,
  inputs: EvaluationInputs,
  ctx: JobContext,
  options: RunRecipeOptions,
  open: Decoder | null,
): Promise<{ metrics: Metric[]; details: Record<string, unknown> }> {
  const { recipe, tokenizer, text } = inputs;
  const evaluation = recipe.evaluation;
  const metrics: Metric[] = [];
  const original: Record<string, unknown> = { modelPath: originalPath };
  const result: Record<string, unknown> = { modelPath: resultPath };
  const details: Record<string, unknown> = { evaluation: { original, result } };

  let p = open;
  let q: Decoder | null = null;
  try {
    if (decodersNeeded(inputs)) {
      p ??= await openDecoder(originalPath, { threads: inputs.threads });
      q = await openDecoder(resultPath, { threads: inputs.threads });
      if (tokenizer) checkTokenizerFitsModel(tokenizer, q.vocabSize);
      original.decoder = decoderFacts(p);
      result.decoder = decoderFacts(q);
    }

    if (evaluation.perplexity && p && q && tokenizer && text !== null) {
      const config = evaluation.perplexity;
      ctx.log('info', `original and result in lockstep: perplexity, KL and top-1 agreement (${config.protocol}, L = ${config.window}, N = ${config.maxSamples})`);
      const c = await compareOnText(p, q, tokenizer, text, config, ctx);
      metrics.push(...perplexityMetrics(c.original, 'original'), ...perplexityMetrics(c.result, 'result'), ...agreementMetrics(c.agreement, 'result'));
      original.perplexity = perplexityDetails(c.original, config.text);
      result.perplexity = perplexityDetails(c.result, config.text);
      details.agreement = c.agreement.details;
      ctx.log('info', `perplexity ${c.original.perplexity.toFixed(4)} → ${c.result.perplexity.toFixed(4)}; KL ${c.agreement.klMean.toExponential(3)} nats/token; top-1 agreement ${(100 * c.agreement.top1).toFixed(2)} % over ${c.agreement.tokens} tokens`);
    }

    if (inputs.accuracy) {
      const plan = inputs.accuracy;
      ctx.progress({ phase: 'evaluate:accuracy', done: 0, total: 2 });
      if (plan.original) {
        const a = await accuracyOf(originalPath, 'original', inputs, ctx);
        metrics.push(...a.metrics);
        original.accuracy = a.details;
      }
      ctx.progress({ phase: 'evaluate:accuracy', done: 1, total: 2 });
      const b = await accuracyOf(resultPath, 'result', inputs, ctx);
      metrics.push(...b.metrics);
      result.accuracy = b.details;
      ctx.progress({ phase: 'evaluate:accuracy', done: 2, total: 2 });
    }

    if (evaluation.speed && p && q) {
      const s = await speedOf([{ name: 'original', decoder: p }, { name: 'result', decoder: q }], inputs, ctx);
      metrics.push(...s.metrics);
      [original.speed, result.speed] = s.details;
    }

    if (evaluation.footprint) {
      ctx.progress({ phase: 'evaluate:footprint', done: 0, total: 2 });
      const a = await footprintOf(originalPath, 'original', ctx, options, measuresCompressedSize(recipe));
      ctx.progress({ phase: 'evaluate:footprint', done: 1, total: 2 });
      const b = await footprintOf(resultPath, 'result', ctx, options, measuresCompressedSize(recipe));
      ctx.progress({ phase: 'evaluate:footprint', done: 2, total: 2 });
      metrics.push(...a.metrics, ...b.metrics);
      original.footprint = a.details;
      result.footprint = b.details;
    }

    if (inputs.samples && p && q && tokenizer) {
      const plan = inputs.samples;
      const progress = { done: 0, total: 2 * plan.prompts.length };
      const fromOriginal = await generateAll(p, tokenizer, plan, ctx, progress);
      const fromResult = await generateAll(q, tokenizer, plan, ctx, progress);
      details.samples = plan.prompts.map((prompt, i) => ({ prompt, original: fromOriginal[i].completion, result: fromResult[i].completion }));
      details.samplePrompts = { source: plan.defaulted ? 'default' : 'recipe', maxNewTokens: plan.maxNewTokens };
    }
  } finally {
    await p?.release();
    await q?.release();
  }

  return { metrics, details };
}

/** JSON has no NaN or infinity: such values are written as strings ("Infinity"). */
function manifestMetrics(metrics: readonly Metric[]): unknown[] {
  return metrics.map((m) => (Number.isFinite(m.value) ? m : { ...m, value: String(m.value) }));
}

export async function runRecipe(recipe: Recipe, ctx: JobContext, options: RunRecipeOptions = {}): Promise<RecipeResult> {
  const started = performance.now();
  const parsed = parseRecipe(recipe);
  const registry = options.steps ?? defaultSteps;
  const { inputs, decoder } = await prepare(parsed, registry, ctx);

  // Steps: each starts from the previous one's model.
  const artefacts: Artefact[] = [];
  const stepDetails: Record<string, unknown>[] = [];
  const originalPath = path.resolve(parsed.model.path);
  let modelPath = originalPath;
  // Folders the steps wrote under their partial names: committed at the very end, or discarded.
  const pending: PartialFolder[] = [];
  try {
    for (const [index, step] of parsed.steps.entries()) {
      throwIfAborted(ctx.signal);
      ctx.log('info', `step ${index + 1}/${parsed.steps.length}: ${step.type}`);
      const runner = stepRunnerFor(registry, step, index);
      const output = await runner.run({ modelPath, recipe: parsed, step, index }, ctx);
      checkStepDetails(runner, output, index);
      if (output.pending) pending.push(output.pending);
      artefacts.push(...output.artefacts);
      stepDetails.push({ type: step.type, input: modelPath, output: output.modelPath, ...output.details });
      modelPath = output.modelPath;
    }
  } catch (e) {
    await decoder?.release();
    await discardAll(pending);
    throw e;
  }

  let metrics: Metric[];
  const extra: Record<string, unknown> = {};
  try {
    metrics = await evaluateAndRecord(parsed, originalPath, modelPath, artefacts, inputs, decoder, extra, ctx, options);
    // The last act of a successful job: the folders get their final names.
    throwIfAborted(ctx.signal);
    await commitAll(pending, ctx);
  } catch (e) {
    await discardAll(pending);
    throw e;
  }
  const relocate = relocator(pending);

  return {
    metrics,
    artefacts: relocate(artefacts),
    details: {
      recipe: { name: parsed.name ?? null, steps: parsed.steps.length },
      model: originalPath,
      tokenizer: inputs.tokenizer ? { path: inputs.tokenizer.path, vocabSize: inputs.tokenizer.vocabSize, bosId: inputs.tokenizer.bosId, eosId: inputs.tokenizer.eosId } : null,
      settings: { threads: inputs.threads, evaluation: parsed.evaluation },
      steps: relocate(stepDetails),
      ...relocate(extra),
      seconds: (performance.now() - started) / 1000,
    },
  };
}

/**
 * Evaluates the result (or the model alone) and writes the metrics into the delivered folder's
 * whittle.json, while that folder still has its partial name. Returns the metrics; details go to `extra`.
 */
async function evaluateAndRecord(
  parsed: Recipe, originalPath: string, modelPath: string, artefacts: readonly Artefact[], inputs: EvaluationInputs, decoder: Decoder | null,
  extra: Record<string, unknown>, ctx: JobContext, options: RunRecipeOptions,
): Promise<Metric[]> {
  throwIfAborted(ctx.signal);
  let metrics: Metric[];
  if (modelPath === originalPath) {
    // No steps, or only analyses: the model as it is.
    const { metrics: m, details } = await evaluateModel(modelPath, 'model', inputs, ctx, options, decoder);
    metrics = m;
    extra.evaluation = { model: details };
  } else {
    const { metrics: m, details } = await compareModels(originalPath, modelPath, inputs, ctx, options, decoder);
    metrics = m;
    Object.assign(extra, details);
    const identity = await modelIdentity(modelPath);
    extra.result = { path: identity.path, sha256: identity.sha256, contentSha256: identity.contentSha256 };

    // The output folder's whittle.json gets the numbers (never an input folder that happens to have one).
    const outDir = path.dirname(modelPath);
    const delivered = artefacts.some((a) => a.kind === 'folder' && path.resolve(a.path) === outDir);
    if (delivered && existsSync(path.join(outDir, MANIFEST_FILE))) {
      await updateManifest(outDir, {
        metrics: manifestMetrics(metrics),
        evaluation: {
          created: new Date().toISOString(),
          original: originalPath,
          settings: parsed.evaluation,
          agreement: extra.agreement ? { klMean: (extra.agreement as { klMean: number }).klMean, top1Agreement: (extra.agreement as { top1Agreement: number }).top1Agreement } : null,
          samples: extra.samples ?? null,
        },
      });
      ctx.log('info', `metrics written to ${MANIFEST_FILE}`);
    }
  }
  return metrics;
}

/** Commits the steps' folders in order (the delivered one last); a later step's source path follows its input's rename. */
async function commitAll(pending: readonly PartialFolder[], ctx: JobContext): Promise<void> {
  const relocate = relocator(pending);
  for (const folder of pending) {
    const manifest = path.join(folder.dir, MANIFEST_FILE);
    if (!existsSync(manifest)) continue;
    const { source } = await readManifest(folder.dir);
    const moved = relocate(source.path);
    if (moved !== source.path) await updateManifest(folder.dir, { source: { path: moved } });
  }
  for (const folder of pending) {
    await folder.commit();
    ctx.log('info', `output written to ${folder.finalDir}`);
  }
}

async function discardAll(pending: readonly PartialFolder[]): Promise<void> {
  for (const folder of pending) await folder.discard().catch(() => {});
}

/** Rewrites every path into a partial folder (in strings, arrays and plain objects) to the folder's final name. */
function relocator(pending: readonly PartialFolder[]): <T>(value: T) => T {
  const move = (text: string): string => {
    for (const f of pending) {
      if (text === f.dir || text.startsWith(f.dir + path.sep)) return f.finalDir + text.slice(f.dir.length);
    }
    return text;
  };
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return move(v);
    if (Array.isArray(v)) return v.map(walk);
    if (v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    }
    return v;
  };
  return <T>(value: T): T => (pending.length === 0 ? value : walk(value) as T);
}
