/**
 * Runs one recipe: checks every input before any work, runs the steps in order (each may write a new
 * model), then evaluates. Without steps the recipe's model is evaluated as subject 'model'; with steps the
 * original and the final result are evaluated on the same data as subjects 'original' and 'result'.
 */
import path from 'node:path';
import type { Artefact, Metric } from '../../../preload/contract.ts';
import { Recipe } from '../../../preload/recipe.ts';
import { readTextFile } from '../data/text-file.ts';
import { checkTokenizerFitsModel, loadTokenizer, type TextTokenizer } from '../data/tokenizer.ts';
import { throwIfAborted, WhittleError } from '../errors.ts';
import { createSession, openDecoder, type Decoder } from '../evaluate/decoder-session.ts';
import { footprintMetrics, measureFootprint, type InspectModel } from '../evaluate/footprint.ts';
import { generate, type Generation } from '../evaluate/generate.ts';
import { evaluatePerplexity, perplexityMetrics } from '../evaluate/perplexity.ts';
import { measureSpeed, speedMetrics } from '../evaluate/speed.ts';
import type { JobContext } from '../job-context.ts';
import { defaultSteps, stepRunnerFor, type StepRegistry } from './steps.ts';

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
}

function parseRecipe(input: Recipe): Recipe {
  const parsed = Recipe.safeParse(input);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
    throw new WhittleError('INVALID_INPUT', `The recipe is not valid: ${issues.map((i) => `${i.path || '(recipe)'}: ${i.message}`).join('; ')}`, { issues });
  }
  return parsed.data;
}

const needsDecoder = (r: Recipe): boolean => Boolean(r.evaluation.perplexity || r.evaluation.speed || r.evaluation.samples);

/** Checks everything a recipe names before any work; returns what evaluation needs and the open decoder. */
async function prepare(recipe: Recipe, registry: StepRegistry, ctx: JobContext): Promise<{ inputs: EvaluationInputs; decoder: Decoder | null }> {
  recipe.steps.forEach((step, i) => stepRunnerFor(registry, step, i));
  const evaluation = recipe.evaluation;
  const wantsTokenizer = Boolean(evaluation.perplexity || evaluation.samples);
  if (wantsTokenizer && !recipe.tokenizer) {
    const what = evaluation.perplexity ? 'perplexity' : 'samples';
    throw new WhittleError('INVALID_INPUT', `The recipe asks for ${what}, which needs a tokenizer. Add the model's tokenizer.json to the recipe.`);
  }
  const threads = evaluation.speed?.threads ?? 0;

  ctx.progress({ phase: 'load', done: 0, total: 1, message: path.basename(recipe.model.path) });
  let decoder: Decoder | null = null;
  if (needsDecoder(recipe)) {
    decoder = await openDecoder(recipe.model.path, { threads });
  } else {
    await (await createSession(recipe.model.path, threads)).release();
  }
  try {
    const tokenizer = wantsTokenizer && recipe.tokenizer ? await loadTokenizer(recipe.tokenizer.path) : null;
    if (tokenizer && decoder) checkTokenizerFitsModel(tokenizer, decoder.vocabSize);
    const text = evaluation.perplexity ? await readTextFile(evaluation.perplexity.text) : null;
    ctx.progress({ phase: 'load', done: 1, total: 1 });
    return { inputs: { recipe, tokenizer, text, threads }, decoder };
  } catch (e) {
    await decoder?.release();
    throw e;
  }
}

async function evaluateModel(modelPath: string, subject: string, inputs: EvaluationInputs, ctx: JobContext, options: RunRecipeOptions, open: Decoder | null): Promise<{ metrics: Metric[]; details: Record<string, unknown> }> {
  const { recipe, tokenizer, text } = inputs;
  const evaluation = recipe.evaluation;
  const metrics: Metric[] = [];
  const details: Record<string, unknown> = { modelPath };
  let decoder = open;
  if (!decoder && needsDecoder(recipe)) {
    decoder = await openDecoder(modelPath, { threads: inputs.threads });
    if (tokenizer) checkTokenizerFitsModel(tokenizer, decoder.vocabSize);
  }
  try {
    if (decoder) details.decoder = { layout: decoder.layout.kind, vocabSize: decoder.vocabSize, cacheTensors: decoder.layout.cache.length };

    if (evaluation.perplexity && decoder && tokenizer && text !== null) {
      ctx.log('info', `${subject}: perplexity (${evaluation.perplexity.protocol}, L = ${evaluation.perplexity.window}, N = ${evaluation.perplexity.maxSamples})`);
      const result = await evaluatePerplexity(decoder, tokenizer, text, evaluation.perplexity, ctx);
      metrics.push(...perplexityMetrics(result, subject));
      details.perplexity = { ...result.details, text: evaluation.perplexity.text, perplexity: result.perplexity, sampleNll: result.sampleNll, sampleTokens: result.sampleTokens };
      ctx.log('info', `${subject}: perplexity ${result.perplexity.toFixed(4)} over ${result.predictedTokens} tokens`);
    }

    if (evaluation.speed && decoder) {
      throwIfAborted(ctx.signal);
      const prompt = tokenizer && text !== null ? tokenizer.encode(text.slice(0, 64 * evaluation.speed.promptTokens)) : undefined;
      const speed = await measureSpeed(decoder, evaluation.speed, ctx, prompt);
      metrics.push(...speedMetrics(speed, subject));
      details.speed = {
        ...speed,
        note: speed.decodeMode === 're-forward' ? 'The graph has no KV cache: each decoded token re-runs the whole sequence.' : 'Decoding feeds the KV cache back (present → past).',
      };
    }

    if (evaluation.footprint) {
      throwIfAborted(ctx.signal);
      ctx.progress({ phase: 'evaluate:footprint', done: 0, total: 1 });
      const footprint = await measureFootprint(modelPath, { inspect: options.inspect });
      metrics.push(...footprintMetrics(footprint, subject));
      details.footprint = footprint;
      ctx.progress({ phase: 'evaluate:footprint', done: 1, total: 1 });
    }

    if (evaluation.samples && decoder && tokenizer) {
      const { prompts, maxNewTokens } = evaluation.samples;
      const samples: Generation[] = [];
      for (const [i, prompt] of prompts.entries()) {
        throwIfAborted(ctx.signal);
        ctx.progress({ phase: 'evaluate:samples', done: i, total: prompts.length });
        samples.push(await generate(decoder, tokenizer, prompt, maxNewTokens, ctx.signal));
      }
      ctx.progress({ phase: 'evaluate:samples', done: prompts.length, total: prompts.length });
      details.samples = samples.map((s) => ({ prompt: s.prompt, completion: s.completion, text: s.text, newTokens: s.newTokens.length, stoppedAtEos: s.stoppedAtEos }));
    }
  } finally {
    await decoder?.release();
  }
  return { metrics, details };
}

export async function runRecipe(recipe: Recipe, ctx: JobContext, options: RunRecipeOptions = {}): Promise<RecipeResult> {
  const started = performance.now();
  const parsed = parseRecipe(recipe);
  const registry = options.steps ?? defaultSteps;
  const { inputs, decoder } = await prepare(parsed, registry, ctx);

  // Steps: each starts from the previous one's model.
  const artefacts: Artefact[] = [];
  const stepDetails: Record<string, unknown>[] = [];
  let modelPath = path.resolve(parsed.model.path);
  try {
    for (const [index, step] of parsed.steps.entries()) {
      throwIfAborted(ctx.signal);
      ctx.log('info', `step ${index + 1}/${parsed.steps.length}: ${step.type}`);
      const output = await stepRunnerFor(registry, step, index).run({ modelPath, recipe: parsed, step, index }, ctx);
      artefacts.push(...output.artefacts);
      stepDetails.push({ type: step.type, input: modelPath, output: output.modelPath, ...output.details });
      modelPath = output.modelPath;
    }
  } catch (e) {
    await decoder?.release();
    throw e;
  }

  // Evaluation: the model alone, or the original beside the result of the steps.
  const subjects = parsed.steps.length === 0
    ? [{ subject: 'model', path: modelPath }]
    : [{ subject: 'original', path: path.resolve(parsed.model.path) }, { subject: 'result', path: modelPath }];
  const metrics: Metric[] = [];
  const evaluation: Record<string, unknown> = {};
  for (const [i, s] of subjects.entries()) {
    throwIfAborted(ctx.signal);
    const { metrics: m, details } = await evaluateModel(s.path, s.subject, inputs, ctx, options, i === 0 ? decoder : null);
    metrics.push(...m);
    evaluation[s.subject] = details;
  }

  return {
    metrics,
    artefacts,
    details: {
      recipe: { name: parsed.name ?? null, steps: parsed.steps.length },
      model: path.resolve(parsed.model.path),
      tokenizer: inputs.tokenizer ? { path: inputs.tokenizer.path, vocabSize: inputs.tokenizer.vocabSize, bosId: inputs.tokenizer.bosId, eosId: inputs.tokenizer.eosId } : null,
      settings: { threads: inputs.threads, evaluation: parsed.evaluation },
      steps: stepDetails,
      evaluation,
      seconds: (performance.now() - started) / 1000,
    },
  };
}
