/**
 * Running a GGUF file in llama.cpp through node-llama-cpp (its prebuilt CPU binary; never a download or a
 * source build at run time), to check that an exported file behaves like the ONNX model it came from.
 *
 * Token ids go in and come out as they are (Whittle's tokenizer encodes and decodes), so the comparison
 * with onnxruntime is over the same ids:
 *   greedy generation   each step the most likely next token (temperature 0), until EOS or the limit;
 *   perplexity          for each sample (the same samples as evaluate/perplexity.ts: BOS + tokens),
 *                       position t's next-token distribution (softmax of the logits: temperature 1, no
 *                       top-k / top-p / min-p) scores token t + 1; ppl = exp(Σ −log p / Σ predictions),
 *                       summed in float64.
 */
import { availableParallelism } from 'node:os';
import type { Llama, LlamaContext, LlamaContextSequence, LlamaModel, Token } from 'node-llama-cpp';
import { WhittleError, throwIfAborted } from '../errors.ts';

type NodeLlamaCpp = typeof import('node-llama-cpp'); // eslint-disable-line @typescript-eslint/consistent-type-imports -- the module is loaded lazily

let llamaPromise: Promise<Llama> | null = null;

/** llama.cpp's CPU backend, loaded once per process. */
export async function loadLlamaCpp(): Promise<Llama> {
  llamaPromise ??= (async () => {
    let lib: NodeLlamaCpp;
    try {
      lib = await import('node-llama-cpp');
    } catch (e) {
      throw new WhittleError('NOT_FOUND', `llama.cpp is not available: the node-llama-cpp package could not be loaded (${(e as Error).message}). Run npm install in Whittle's folder.`, { cause: String(e) });
    }
    try {
      return await lib.getLlama({ gpu: false, build: 'never', usePrebuiltBinaries: true, progressLogs: false, logLevel: lib.LlamaLogLevel.error, skipDownload: true });
    } catch (e) {
      throw new WhittleError('NOT_FOUND', `llama.cpp could not start: node-llama-cpp found no prebuilt binary that loads on this machine (${(e as Error).message}).`, { cause: String(e) });
    }
  })();
  try {
    return await llamaPromise;
  } catch (e) {
    llamaPromise = null;
    throw e;
  }
}

/** Why llama.cpp cannot run here, or null when it can. */
export async function llamaCppUnavailable(): Promise<string | null> {
  try {
    await loadLlamaCpp();
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}

export interface GgufModelOptions {
  /** Tokens the context holds; by default the model's training context. */
  contextSize?: number;
  /** CPU threads; by default the CPUs this process may use (llama.cpp's own count can see more, and oversubscribe). */
  threads?: number;
}

export interface GgufRunner {
  contextSize: number;
  /** Greedy continuation of `ids`: the new token ids (EOS not included). */
  generate(ids: readonly number[], maxNewTokens: number, eosId: number | null, signal?: AbortSignal): Promise<{ tokens: number[]; stoppedAtEos: boolean; seconds: number }>;
  /** Σ −log p(token t + 1 | tokens ≤ t) over the sample, and the number of predictions. */
  sampleNll(ids: readonly number[]): Promise<{ nll: number; predicted: number }>;
  release(): Promise<void>;
}

const FULL_SOFTMAX = { temperature: 1, topK: 0, topP: 1, minP: 0 } as const;

export async function openGguf(ggufPath: string, options: GgufModelOptions = {}): Promise<GgufRunner> {
  const llama = await loadLlamaCpp();
  let model: LlamaModel;
  try {
    model = await llama.loadModel({ modelPath: ggufPath, gpuLayers: 0 });
  } catch (e) {
    throw new WhittleError('MODEL_PARSE', `llama.cpp could not load ${ggufPath}: ${(e as Error).message}`, { path: ggufPath });
  }
  const contextSize = options.contextSize ?? model.trainContextSize;
  const context: LlamaContext = await model.createContext({ contextSize, batchSize: Math.min(contextSize, 512), sequences: 1, threads: options.threads ?? availableParallelism() });
  const sequence: LlamaContextSequence = context.getSequence();

  const fits = (n: number): void => {
    if (n > contextSize) throw new WhittleError('INVALID_INPUT', `${n} tokens do not fit llama.cpp's context of ${contextSize}.`, { tokens: n, contextSize });
  };

  return {
    contextSize,
    async generate(ids, maxNewTokens, eosId, signal) {
      fits(ids.length + maxNewTokens);
      await sequence.clearHistory();
      const started = performance.now();
      const tokens: number[] = [];
      let stoppedAtEos = true;
      // evaluate() samples with one sampler for the whole run (temperature 0: the most likely token) and
      // ends at an end-of-generation token without yielding it.
      for await (const next of sequence.evaluate([...ids] as Token[], { temperature: 0 })) {
        throwIfAborted(signal);
        if (eosId !== null && next === eosId) break;
        tokens.push(next);
        if (tokens.length >= maxNewTokens) { stoppedAtEos = false; break; }
      }
      return { tokens, stoppedAtEos, seconds: (performance.now() - started) / 1000 };
    },
    async sampleNll(ids) {
      fits(ids.length);
      await sequence.clearHistory();
      const input = ids.map((t, i) => (i < ids.length - 1 ? [t, { generateNext: { probabilities: true, options: FULL_SOFTMAX } }] : t)) as never;
      const out = await sequence.controlledEvaluate(input);
      let nll = 0;
      for (let i = 0; i < ids.length - 1; i++) {
        const p = out[i]?.next.probabilities?.get(ids[i + 1] as never) ?? 0;
        nll -= Math.log(Math.max(p, Number.MIN_VALUE));
      }
      return { nll, predicted: ids.length - 1 };
    },
    async release() {
      await context.dispose();
      await model.dispose();
    },
  };
}

export interface GgufPerplexity {
  perplexity: number;
  totalNll: number;
  predictedTokens: number;
  samples: number;
  evalSeconds: number;
}

/** Perplexity over `samples` (token id lists, e.g. from perplexitySamples), one sample per pass. */
export async function ggufPerplexity(runner: GgufRunner, samples: readonly (readonly number[])[], signal?: AbortSignal): Promise<GgufPerplexity> {
  const started = performance.now();
  let total = 0;
  let predicted = 0;
  for (const s of samples) {
    throwIfAborted(signal);
    const r = await runner.sampleNll(s.slice(0, runner.contextSize));
    total += r.nll;
    predicted += r.predicted;
  }
  if (predicted === 0) throw new WhittleError('INVALID_INPUT', 'No tokens to score: every sample is shorter than two tokens.');
  return { perplexity: Math.exp(total / predicted), totalNll: total, predictedTokens: predicted, samples: samples.length, evalSeconds: (performance.now() - started) / 1000 };
}
