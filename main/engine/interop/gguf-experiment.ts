/**
 * "Export GGUF & evaluate in llama.cpp" for an experiment's result: the result's ONNX model written as a
 * GGUF file beside it, then run in llama.cpp on the experiment's own evaluation — the same text, the same
 * perplexity protocol (window, samples, minimum tokens; tokenized by the same tokenizer), the same prompts
 * and number of new tokens — so its figures stand beside the ONNX result's.
 */
import { readFile } from 'node:fs/promises';
import type { PerplexityConfig } from '../../../preload/recipe.ts';
import { loadTokenizer } from '../data/tokenizer.ts';
import { evaluateGguf, type GgufEvaluation } from './gguf-evaluate.ts';
import { exportGguf, type GgufExportResult, type GgufExportType } from './gguf-export.ts';

export interface GgufExperimentRequest {
  /** The experiment's result (an ONNX Llama-family decoder). */
  modelPath: string;
  /** The .gguf file to write. */
  out: string;
  type: GgufExportType;
  tokenizerPath: string;
  /** The experiment's perplexity evaluation (text and protocol). */
  perplexity: PerplexityConfig;
  prompts: string[];
  maxNewTokens: number;
  threads?: number;
}

export interface GgufExperimentResult {
  export: GgufExportResult;
  evaluation: GgufEvaluation;
}

export async function exportAndEvaluateGguf(request: GgufExperimentRequest, signal?: AbortSignal): Promise<GgufExperimentResult> {
  const exported = await exportGguf(request.modelPath, request.out, { type: request.type, tokenizerPath: request.tokenizerPath, ...(signal ? { signal } : {}) });
  const tokenizer = await loadTokenizer(request.tokenizerPath);
  const text = await readFile(request.perplexity.text, 'utf8');
  const { protocol, window, maxSamples, minTokens } = request.perplexity;
  const evaluation = await evaluateGguf(exported.path, tokenizer, text, {
    protocol: { protocol, window, maxSamples, minTokens },
    prompts: request.prompts,
    maxNewTokens: request.maxNewTokens,
    ...(request.threads ? { threads: request.threads } : {}),
    ...(signal ? { signal } : {}),
  });
  return { export: exported, evaluation };
}
