/**
 * `history.evaluateGguf`: a done experiment's result exported as GGUF beside it and run in llama.cpp
 * (on a worker thread: inspect-off-thread.ts), measured on the experiment's own evaluation — the same
 * text and perplexity protocol, the same prompts — and set beside what onnxruntime measured for the result.
 */
import path from 'node:path';
import type { ExperimentDetail, GgufComparison, GgufSide, GgufType } from '../../preload/contract.ts';
import { defaultGgufType } from '../../preload/gguf.ts';
import { DEFAULT_MAX_NEW_TOKENS, DEFAULT_SAMPLE_PROMPTS, Recipe } from '../../preload/recipe.ts';
import { WhittleError } from '../engine/errors.ts';
import type { GgufExperimentRequest, GgufExperimentResult } from '../engine/interop/gguf-experiment.ts';

export type RunGguf = (request: GgufExperimentRequest) => Promise<GgufExperimentResult>;

interface ResultDetails {
  modelPath?: unknown;
}
interface ComparedSample { prompt: string; original: string; result: string }

/** What the experiment measured of its result in onnxruntime. */
function onnxSide(detail: ExperimentDetail): GgufSide {
  const metric = (name: string): number | null => detail.metrics.find((m) => m.subject === 'result' && m.name === name)?.value ?? null;
  const samples = Array.isArray(detail.details.samples) ? (detail.details.samples as ComparedSample[]) : [];
  return {
    perplexity: metric('perplexity'),
    decodeTokensPerS: metric('decode_tokens_per_s'),
    generations: samples.filter((s) => typeof s.result === 'string').map((s) => ({ prompt: s.prompt, completion: s.result })),
  };
}

/** The request for the worker: what to export and what to measure it on, from the experiment's recipe. */
export function ggufRequestFor(detail: ExperimentDetail, type: GgufType | undefined): GgufExperimentRequest {
  if (detail.status !== 'done') {
    throw new WhittleError('INVALID_INPUT', `Experiment ${detail.id} is ${detail.status}; only a finished experiment's result can be exported as GGUF.`, { id: detail.id });
  }
  const evaluation = (detail.details.evaluation ?? null) as { result?: ResultDetails } | null;
  const modelPath = evaluation?.result?.modelPath;
  if (typeof modelPath !== 'string') {
    throw new WhittleError('INVALID_INPUT', `Experiment ${detail.id} wrote no model to compare (it has no result beside the original). Export a quantize, prune or training experiment.`, { id: detail.id });
  }
  const parsed = Recipe.safeParse(detail.recipe);
  if (!parsed.success) throw new WhittleError('INVALID_INPUT', `Experiment ${detail.id}'s recipe no longer reads as a recipe of this version of Whittle.`, { id: detail.id });
  const recipe = parsed.data;
  const perplexity = recipe.evaluation.perplexity;
  if (!perplexity || !recipe.tokenizer) {
    throw new WhittleError('INVALID_INPUT', `Experiment ${detail.id} measured no perplexity, so there is nothing to set the GGUF beside. Run it again with a tokenizer and an evaluation text.`, { id: detail.id });
  }
  const chosen = type ?? defaultGgufType(detail.recipe);
  const samples = recipe.evaluation.samples;
  return {
    modelPath,
    out: path.join(path.dirname(modelPath), `${path.basename(modelPath, '.onnx')}-${chosen}.gguf`),
    type: chosen,
    tokenizerPath: recipe.tokenizer.path,
    perplexity,
    prompts: samples?.prompts ?? [...DEFAULT_SAMPLE_PROMPTS],
    maxNewTokens: samples?.maxNewTokens ?? DEFAULT_MAX_NEW_TOKENS,
  };
}

export async function evaluateExperimentGguf(detail: ExperimentDetail, type: GgufType | undefined, run: RunGguf): Promise<GgufComparison> {
  const request = ggufRequestFor(detail, type);
  const started = Date.now();
  const r = await run(request);
  const e = r.evaluation;
  return {
    experimentId: detail.id,
    path: r.export.path,
    bytes: r.export.bytes,
    type: r.export.type,
    exactFromNBits: r.export.exactFromNBits,
    notes: r.export.notes,
    protocol: {
      text: request.perplexity.text, protocol: request.perplexity.protocol, window: request.perplexity.window, maxSamples: request.perplexity.maxSamples,
      samples: e.perplexity.samples, predictedTokens: e.perplexity.predictedTokens,
    },
    onnx: onnxSide(detail),
    llamaCpp: {
      perplexity: e.perplexity.perplexity,
      decodeTokensPerS: e.tokensPerSecond,
      generations: e.generations.map((g) => ({ prompt: g.prompt, completion: g.completion })),
    },
    seconds: (Date.now() - started) / 1000,
  };
}
