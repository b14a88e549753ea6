/**
 * "Evaluate GGUF in llama.cpp": the measurements the comparison page shows beside an ONNX result, on the
 * same text and protocol: perplexity over the samples evaluate/perplexity.ts scores (tokenized by
 * Whittle's tokenizer, so both runtimes see the same ids), decode speed of greedy generation (new tokens
 * per second after the prompt), and the greedy generations of the prompts.
 */
import type { TextTokenizer } from '../data/tokenizer.ts';
import { perplexitySamples, type PerplexitySettings } from '../evaluate/perplexity.ts';
import { ggufPerplexity, openGguf, type GgufPerplexity } from './llama-cpp.ts';

export interface GgufGeneration {
  prompt: string;
  completion: string;
  newTokens: number[];
  stoppedAtEos: boolean;
}

export interface GgufEvaluation {
  path: string;
  perplexity: GgufPerplexity;
  /** Greedy decoding speed over all prompts: generated tokens / seconds. */
  tokensPerSecond: number | null;
  generations: GgufGeneration[];
}

export interface GgufEvaluationOptions {
  protocol: PerplexitySettings;
  prompts?: readonly string[];
  maxNewTokens?: number;
  threads?: number;
  signal?: AbortSignal;
}

export async function evaluateGguf(ggufPath: string, tokenizer: TextTokenizer, text: string, options: GgufEvaluationOptions): Promise<GgufEvaluation> {
  const runner = await openGguf(ggufPath, options.threads ? { threads: options.threads } : {});
  try {
    const { samples } = perplexitySamples(text, tokenizer, options.protocol);
    const perplexity = await ggufPerplexity(runner, samples, options.signal);
    const generations: GgufGeneration[] = [];
    let tokens = 0;
    let seconds = 0;
    for (const prompt of options.prompts ?? []) {
      const ids = tokenizer.encode(prompt);
      if (ids.length === 0) ids.push(tokenizer.bosId ?? 0); // as evaluate/generate.ts does
      const g = await runner.generate(ids, options.maxNewTokens ?? 64, tokenizer.eosId, options.signal);
      tokens += g.tokens.length;
      seconds += g.seconds;
      generations.push({ prompt, completion: tokenizer.decode(g.tokens), newTokens: g.tokens, stoppedAtEos: g.stoppedAtEos });
    }
    return { path: ggufPath, perplexity, tokensPerSecond: seconds > 0 ? tokens / seconds : null, generations };
  } finally {
    await runner.release();
  }
}
