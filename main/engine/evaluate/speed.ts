/**
 * Latency and throughput of decoders on this machine:
 *   prefill  milliseconds to run a prompt of P tokens from an empty cache;
 *   decode   tokens per second generating D tokens greedily one at a time after that prompt, through the
 *            KV cache when the graph has one, otherwise by re-running the whole sequence per token
 *            (reported as such: the two are not comparable).
 *
 * Several models (the original and the result of a compression) are timed in the same job, interleaved:
 * one untimed warm-up of each (allocations, kernel selection), then R rounds of one timed run of each,
 * A B A B …, so that a machine that gets busier or quieter during the measurement affects every model
 * alike. Each model's figure is the median of its R runs, with the spread (min–max and the interquartile
 * range) beside it: two models whose min–max ranges overlap show no measurable difference.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import type { Metric } from '../../../preload/contract.ts';
import type { SpeedConfig } from '../../../preload/recipe.ts';
import { throwIfAborted } from '../errors.ts';
import type { JobContext } from '../job-context.ts';
import type { Decoder } from './decoder-session.ts';
import { argmax } from './generate.ts';

/** The execution provider every session is created with (createSession asks for no other). */
export const EXECUTION_PROVIDER = 'cpu';

/** Median, extremes and quartiles of a sample (quartiles by linear interpolation, as numpy's default). */
export interface Spread {
  median: number;
  min: number;
  max: number;
  q1: number;
  q3: number;
}

export interface SpeedResult {
  prefillTokens: number;
  /** Median over the repeats. */
  prefillMs: number;
  decodeTokens: number;
  /** Median over the repeats. */
  decodeTokensPerS: number;
  prefill: Spread;
  decode: Spread;
  decodeMode: 'kv-cache' | 're-forward';
  /** Intra-op threads asked of onnxruntime; 0 = its default (one per physical core). */
  threadsAsked: number;
  /** Intra-op threads the timing ran with: the asked number, or onnxruntime's default on this machine. */
  threads: number;
  provider: string;
  repeats: number;
  prefillRunsMs: number[];
  decodeRunsTokensPerS: number[];
}

export interface SpeedSubject {
  /** 'model', 'original', 'result'. */
  name: string;
  decoder: Decoder;
}

/** The q-quantile (0 ≤ q ≤ 1) of sorted values, interpolating between neighbours. */
function quantile(sorted: readonly number[], q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export function spreadOf(values: readonly number[]): Spread {
  if (values.length === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN, q1: Number.NaN, q3: Number.NaN };
  const s = [...values].sort((a, b) => a - b);
  return { median: quantile(s, 0.5), min: s[0], max: s[s.length - 1], q1: quantile(s, 0.25), q3: quantile(s, 0.75) };
}

/** Physical cores (what onnxruntime's default intra-op pool uses); logical CPUs where they cannot be told apart. */
export function physicalCores(): number {
  const logical = os.availableParallelism();
  if (process.platform !== 'linux') return logical;
  try {
    const cores = new Set<string>();
    let physical = '0';
    for (const line of readFileSync('/proc/cpuinfo', 'utf8').split('\n')) {
      const [key, value] = line.split(':').map((s) => s?.trim());
      if (key === 'physical id') physical = value;
      else if (key === 'core id') cores.add(`${physical}/${value}`);
    }
    return cores.size > 0 ? Math.min(cores.size, logical) : logical;
  } catch {
    return logical;
  }
}

/** P prompt ids: the given tokens repeated to length, or a fixed spread over the vocabulary. */
function promptOf(length: number, vocab: number, tokens?: number[]): number[] {
  const source = tokens && tokens.length > 0 ? tokens : null;
  return Array.from({ length }, (_, i) => (source ? source[i % source.length] : (7 + 31 * i) % vocab));
}

interface Run { prefillMs: number; tokensPerS: number }

/** One prefill of the prompt, then D greedy tokens one at a time. */
async function timeOnce(decoder: Decoder, prompt: readonly number[], decodeTokens: number): Promise<Run> {
  let t0 = performance.now();
  let { logits, state } = await decoder.forward([...prompt]);
  const prefillMs = performance.now() - t0;
  const vocab = decoder.vocabSize;
  let next = argmax(logits, logits.length - vocab, vocab);
  t0 = performance.now();
  for (let i = 0; i < decodeTokens; i++) {
    ({ logits, state } = await decoder.forward([next], state));
    next = argmax(logits, 0, vocab);
  }
  const seconds = (performance.now() - t0) / 1000;
  return { prefillMs, tokensPerS: decodeTokens / seconds };
}

/**
 * Times the subjects interleaved (see the file header). Progress: phase 'evaluate:speed', one step per
 * run, the message naming the run ('warm-up original', 'result 2/5'), in the order the runs happen.
 * Returns one result per subject, in the subjects' order, and the order the timed runs were made in.
 */
export async function measureSpeedInterleaved(
  subjects: readonly SpeedSubject[], config: SpeedConfig, ctx: JobContext, promptTokens?: number[],
): Promise<{ results: SpeedResult[]; order: string[] }> {
  const phase = 'evaluate:speed';
  const total = subjects.length * (config.repeats + 1);
  const runs = subjects.map(() => ({ prefill: [] as number[], decode: [] as number[] }));
  const prompts = subjects.map((s) => promptOf(config.promptTokens, s.decoder.vocabSize, promptTokens));
  const order: string[] = [];
  let done = 0;

  const step = async (i: number, label: string, timed: boolean): Promise<void> => {
    throwIfAborted(ctx.signal);
    ctx.progress({ phase, done, total, message: label });
    const run = await timeOnce(subjects[i].decoder, prompts[i], config.decodeTokens);
    if (timed) {
      runs[i].prefill.push(run.prefillMs);
      runs[i].decode.push(run.tokensPerS);
      order.push(subjects[i].name);
    }
    done++;
  };

  for (let i = 0; i < subjects.length; i++) await step(i, `warm-up ${subjects[i].name}`, false);
  for (let r = 0; r < config.repeats; r++) {
    for (let i = 0; i < subjects.length; i++) await step(i, `${subjects[i].name} ${r + 1}/${config.repeats}`, true);
  }
  ctx.progress({ phase, done: total, total });

  const threads = config.threads > 0 ? config.threads : physicalCores();
  const results = subjects.map((s, i): SpeedResult => {
    const prefill = spreadOf(runs[i].prefill);
    const decode = spreadOf(runs[i].decode);
    return {
      prefillTokens: prompts[i].length,
      prefillMs: prefill.median,
      decodeTokens: config.decodeTokens,
      decodeTokensPerS: decode.median,
      prefill,
      decode,
      decodeMode: s.decoder.layout.cache.length > 0 ? 'kv-cache' : 're-forward',
      threadsAsked: config.threads,
      threads,
      provider: EXECUTION_PROVIDER,
      repeats: config.repeats,
      prefillRunsMs: runs[i].prefill,
      decodeRunsTokensPerS: runs[i].decode,
    };
  });
  return { results, order };
}

/** One model on its own. */
export async function measureSpeed(decoder: Decoder, config: SpeedConfig, ctx: JobContext, promptTokens?: number[]): Promise<SpeedResult> {
  const { results } = await measureSpeedInterleaved([{ name: 'model', decoder }], config, ctx, promptTokens);
  return results[0];
}

/**
 * The speed metrics of one subject: the medians, their min–max spread, the repeats and the threads.
 * (The execution provider is a name, not a number: it is in the speed details.)
 */
export function speedMetrics(s: SpeedResult, subject = 'model'): Metric[] {
  return [
    { name: 'prefill_ms', value: s.prefillMs, unit: 'ms', subject },
    { name: 'prefill_ms_min', value: s.prefill.min, unit: 'ms', subject },
    { name: 'prefill_ms_max', value: s.prefill.max, unit: 'ms', subject },
    { name: 'prefill_tokens', value: s.prefillTokens, unit: 'tokens', subject },
    { name: 'decode_tokens_per_s', value: s.decodeTokensPerS, unit: 'tokens/s', subject },
    { name: 'decode_tokens_per_s_min', value: s.decode.min, unit: 'tokens/s', subject },
    { name: 'decode_tokens_per_s_max', value: s.decode.max, unit: 'tokens/s', subject },
    { name: 'speed_repeats', value: s.repeats, unit: 'runs', subject },
    { name: 'speed_threads', value: s.threads, unit: 'threads', subject },
  ];
}

/** Whether two speed measurements differ by more than their spread: their min–max ranges do not overlap. */
export function measurablyDifferent(a: Pick<Spread, 'min' | 'max'>, b: Pick<Spread, 'min' | 'max'>): boolean {
  return a.max < b.min || b.max < a.min;
}
