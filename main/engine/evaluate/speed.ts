/**
 * Latency and throughput of a decoder on this machine:
 *   prefill  milliseconds to run a prompt of P tokens from an empty cache (median of the repeats);
 *   decode   tokens per second generating D tokens greedily one at a time after that prompt, through the
 *            KV cache when the graph has one, otherwise by re-running the whole sequence per token
 *            (reported as such: the two are not comparable).
 * One untimed warm-up of each comes first (allocations, kernel selection).
 */
import type { Metric } from '../../../preload/contract.ts';
import type { SpeedConfig } from '../../../preload/recipe.ts';
import { throwIfAborted } from '../errors.ts';
import type { JobContext } from '../job-context.ts';
import type { Decoder } from './decoder-session.ts';
import { argmax } from './generate.ts';

export interface SpeedResult {
  prefillTokens: number;
  prefillMs: number;
  decodeTokens: number;
  decodeTokensPerS: number;
  decodeMode: 'kv-cache' | 're-forward';
  /** Intra-op threads asked of onnxruntime; 0 = its default. */
  threads: number;
  repeats: number;
  prefillRunsMs: number[];
  decodeRunsTokensPerS: number[];
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** P prompt ids: the given tokens repeated to length, or a fixed spread over the vocabulary. */
function promptOf(length: number, vocab: number, tokens?: number[]): number[] {
  const source = tokens && tokens.length > 0 ? tokens : null;
  return Array.from({ length }, (_, i) => (source ? source[i % source.length] : (7 + 31 * i) % vocab));
}

export async function measureSpeed(decoder: Decoder, config: SpeedConfig, ctx: JobContext, promptTokens?: number[]): Promise<SpeedResult> {
  const phase = 'evaluate:speed';
  const prompt = promptOf(config.promptTokens, decoder.vocabSize, promptTokens);
  const mode = decoder.layout.cache.length > 0 ? 'kv-cache' : 're-forward';
  const total = config.repeats + 1;

  const once = async (): Promise<{ prefillMs: number; tokensPerS: number }> => {
    let t0 = performance.now();
    let { logits, state } = await decoder.forward(prompt);
    const prefillMs = performance.now() - t0;
    const vocab = decoder.vocabSize;
    let next = argmax(logits, logits.length - vocab, vocab);
    t0 = performance.now();
    for (let i = 0; i < config.decodeTokens; i++) {
      ({ logits, state } = await decoder.forward([next], state));
      next = argmax(logits, 0, vocab);
    }
    const seconds = (performance.now() - t0) / 1000;
    return { prefillMs, tokensPerS: config.decodeTokens / seconds };
  };

  const prefillRunsMs: number[] = [];
  const decodeRunsTokensPerS: number[] = [];
  ctx.progress({ phase, done: 0, total, message: 'warm-up' });
  throwIfAborted(ctx.signal);
  await once();
  for (let r = 0; r < config.repeats; r++) {
    ctx.progress({ phase, done: r + 1, total });
    throwIfAborted(ctx.signal);
    const run = await once();
    prefillRunsMs.push(run.prefillMs);
    decodeRunsTokensPerS.push(run.tokensPerS);
  }
  ctx.progress({ phase, done: total, total });
  return {
    prefillTokens: prompt.length,
    prefillMs: median(prefillRunsMs),
    decodeTokens: config.decodeTokens,
    decodeTokensPerS: median(decodeRunsTokensPerS),
    decodeMode: mode,
    threads: decoder.threads,
    repeats: config.repeats,
    prefillRunsMs,
    decodeRunsTokensPerS,
  };
}

export function speedMetrics(s: SpeedResult, subject = 'model'): Metric[] {
  return [
    { name: 'prefill_ms', value: s.prefillMs, unit: 'ms', subject },
    { name: 'prefill_tokens', value: s.prefillTokens, unit: 'tokens', subject },
    { name: 'decode_tokens_per_s', value: s.decodeTokensPerS, unit: 'tokens/s', subject },
  ];
}
