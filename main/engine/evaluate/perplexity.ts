/**
 * Perplexity of a decoder on a text, under one of two protocols (TECHNIQUES.md §4):
 *
 *   documents  blank-line paragraphs; each is BOS + tokens truncated to L; paragraphs with fewer than
 *              minTokens tokens (BOS included) are skipped; the first N that remain are scored.
 *   stream     the paragraphs joined by blank lines and tokenized once (BOS only where the tokenizer
 *              adds it by default, i.e. at the very start); non-overlapping windows of L tokens; the
 *              first N windows (WikiText / GPTQ style).
 *
 * In both, position t of a sample predicts token t + 1, so a sample of n tokens has n − 1 predictions:
 *   ppl = exp( Σ NLL / Σ predictions ),  NLL accumulated in float64 (see log-softmax.ts).
 * Samples run in batches of similar length, right-padded (padding cannot reach earlier positions of a
 * causal decoder), except in graphs that quantize activations over the whole tensor, where other rows
 * and padding would shift the quantization range: those run one sample per run (row-coupling.ts). Either
 * way the result does not depend on the batch size. The reduction (log-softmax, NLL of the target) runs
 * in the native kernel (native/logits.ts) over a whole batch of logits at once, as float16 or float32.
 */
import type { Metric } from '../../../preload/contract.ts';
import type { PerplexityConfig } from '../../../preload/recipe.ts';
import { throwIfAborted, WhittleError } from '../errors.ts';
import type { JobContext } from '../job-context.ts';
import { splitDocuments } from '../data/text-file.ts';
import type { TextTokenizer } from '../data/tokenizer.ts';
import { rowNll } from '../native/logits.ts';
import type { Decoder } from './decoder-session.ts';
import { describeBatching, type RowCoupling } from './row-coupling.ts';

/** The protocol settings of a recipe's perplexity section (the text itself is passed as a string). */
export type PerplexitySettings = Omit<PerplexityConfig, 'text'>;

export interface PerplexitySamples {
  protocol: PerplexityConfig['protocol'];
  samples: number[][];
  /** What was read and left out, for the result's details. */
  info: Record<string, unknown>;
  /** What the user should know about how the text was read (also logged as warnings). */
  warnings: string[];
}

/** One scored sample, handed to `observe` with its logits (e.g. to compare against another model). */
export interface ObservedSample {
  index: number;
  ids: number[];
  /** [ids.length, vocab]; row t is the distribution over token t + 1. Only valid during the callback. */
  logits: Float32Array;
  vocab: number;
}

export interface PerplexityOptions {
  /** Rows per onnxruntime run; by default as many as fit in about 64 MiB of logits, at most 16. */
  batchSize?: number;
  observe?: (sample: ObservedSample) => void;
}

export interface PerplexityResult {
  perplexity: number;
  totalNll: number;
  predictedTokens: number;
  samples: number;
  /** Seconds spent running the model and scoring (tokenization excluded). */
  evalSeconds: number;
  tokenizeSeconds: number;
  /** Per sample, in protocol order: summed NLL and number of predicted tokens. */
  sampleNll: number[];
  sampleTokens: number[];
  details: Record<string, unknown>;
}

const LOGITS_BUDGET_BYTES = 64 * 1024 * 1024;
const MAX_BATCH = 16;

/** Tokens beyond the ones needed that a prefix must yield before its cut can no longer change them. */
const PREFIX_MARGIN_TOKENS = 32;

export interface PrefixEncoding {
  ids: number[];
  /** Characters of the text that were tokenized; `complete` when that is all of it. */
  chars: number;
  complete: boolean;
}

/**
 * `encode` of a prefix of `text` that yields at least `need` tokens plus a margin, cut at whitespace:
 * first about 4 characters per token, then (when short) a prefix grown by the characters per token seen
 * so far, with 25 % to spare. Tokenizers work left to right, so the first `need` tokens of the prefix are
 * those of the whole text; a long text is never tokenized far past what is scored.
 */
export function encodePrefix(text: string, need: number, encode: (s: string) => number[]): PrefixEncoding {
  const target = need + PREFIX_MARGIN_TOKENS;
  let chars = Math.max(256, 4 * target);
  for (;;) {
    if (chars >= text.length) return { ids: encode(text), chars: text.length, complete: true };
    let cut = chars;
    const space = text.slice(0, chars).search(/\s\S*$/);
    if (space > chars / 2) cut = space;
    else if (/[\uD800-\uDBFF]/.test(text[cut - 1])) cut--;                  // never split a surrogate pair
    const ids = encode(text.slice(0, cut));
    if (ids.length >= target) return { ids, chars: cut, complete: false };
    chars = Math.ceil(Math.max(2 * chars, (1.25 * cut * target) / Math.max(1, ids.length)));
  }
}

/**
 * Cut a text into the samples the protocol scores. Only what is scored is tokenized: the first N usable
 * documents, each up to its first L tokens (documents), or the first N·L tokens of the text (stream).
 */
export function perplexitySamples(text: string, tokenizer: TextTokenizer, config: PerplexitySettings): PerplexitySamples {
  const { window, maxSamples, minTokens } = config;
  const documents = splitDocuments(text);
  const warnings: string[] = [];
  if (config.protocol === 'documents') {
    const samples: number[][] = [];
    let skipped = 0;
    let truncated = 0;
    let read = 0;
    let charsTokenized = 0;
    for (const doc of documents) {
      if (samples.length >= maxSamples) break;
      read++;
      const { ids, chars, complete } = encodePrefix(doc, Math.max(window, minTokens), (s) => tokenizer.encode(s, { addBos: true }));
      charsTokenized += chars;
      if (ids.length < minTokens) { skipped++; continue; }
      if (!complete || ids.length > window) truncated++;
      samples.push(ids.length > window ? ids.slice(0, window) : ids);
    }
    if (documents.length < maxSamples && truncated > 0) {
      const predicted = samples.reduce((n, ids) => n + ids.length - 1, 0);
      warnings.push(
        `The text has only ${documents.length} paragraph${documents.length === 1 ? '' : 's'} separated by blank lines (${maxSamples} documents asked), `
        + `and ${truncated === 1 && samples.length === 1 ? 'it runs' : `${truncated} of them run`} past the window, so only the first ${window} tokens of each were scored `
        + `(${predicted} predicted tokens from ${text.length.toLocaleString('en-US')} characters). `
        + 'If the text is not split into documents by blank lines, use the stream protocol (--protocol stream), which scores the whole text in windows.',
      );
    }
    return {
      protocol: 'documents',
      samples,
      info: { documentsInText: documents.length, documentsRead: read, documentsSkippedShort: skipped, documentsTruncated: truncated, bos: tokenizer.bosId, charsTokenized, charsInText: text.length },
      warnings,
    };
  }
  const joined = documents.join('\n\n');
  const { ids, chars, complete } = encodePrefix(joined, window * maxSamples, (s) => tokenizer.encode(s));
  const windows = Math.floor(ids.length / window);
  const samples: number[][] = [];
  for (let w = 0; w < Math.min(windows, maxSamples); w++) samples.push(ids.slice(w * window, (w + 1) * window));
  return {
    protocol: 'stream',
    samples,
    info: {
      streamTokens: ids.length,
      // Known only when the whole text was tokenized (it is not, past the N·L tokens scored).
      windowsInText: complete ? windows : null,
      charsTokenized: chars,
      charsInText: joined.length,
      bosAtStart: tokenizer.addBosByDefault ? tokenizer.bosId : null,
    },
    warnings,
  };
}

export function describeProtocol(config: PerplexitySettings): string {
  return config.protocol === 'documents'
    ? `documents: blank-line paragraphs, BOS + tokens truncated to ${config.window}, paragraphs under ${config.minTokens} tokens skipped, first ${config.maxSamples}`
    : `stream: paragraphs joined by blank lines, tokenized once, non-overlapping windows of ${config.window} tokens, first ${config.maxSamples}`;
}

export function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * (sorted.length - 1) + 0.5))];
}

/** The samples of `text` under `config`, or INVALID_INPUT when not one sample can be scored. */
export function samplesOrThrow(text: string, tokenizer: TextTokenizer, config: PerplexitySettings): PerplexitySamples & { tokenizeSeconds: number } {
  const tokenizeStart = performance.now();
  const prepared = perplexitySamples(text, tokenizer, config);
  const tokenizeSeconds = (performance.now() - tokenizeStart) / 1000;
  if (prepared.samples.length === 0) {
    const why = config.protocol === 'documents'
      ? `no paragraph has at least ${config.minTokens} tokens`
      : `the text has fewer than ${config.window} tokens, so not one window fits`;
    throw new WhittleError('INVALID_INPUT', `Nothing to evaluate: ${why}. Use a longer text or a smaller window.`, { protocol: config.protocol, ...prepared.info });
  }
  return { ...prepared, tokenizeSeconds };
}

/** Batches of sample indices: longest first (each batch pads little), `batchSize` rows at most. */
export interface BatchPlan {
  batchSize: number;
  batches: number[][];
}

/**
 * `independentRows` false (a graph whose activation quantization spans the batch) forces one sample per
 * run whatever `batchSize` asks, so the numbers never depend on the batch size.
 */
export function planBatches(samples: readonly number[][], vocab: number, batchSize?: number, independentRows = true): BatchPlan {
  const longest = Math.max(...samples.map((s) => s.length));
  const wanted = Math.max(1, batchSize ?? Math.min(MAX_BATCH, Math.floor(LOGITS_BUDGET_BYTES / (longest * vocab * 4))));
  const size = independentRows ? wanted : 1;
  const order = samples.map((_, i) => i).sort((a, b) => samples[b].length - samples[a].length || a - b);
  const batches: number[][] = [];
  for (let start = 0; start < order.length; start += size) batches.push(order.slice(start, start + size));
  return { batchSize: size, batches };
}

/**
 * Targets of a padded batch, one per logits row [rows.length · seqLen]: row b's position t predicts
 * rows[b][t + 1]; its last position and the padding predict nothing (−1, not scored).
 */
export function batchTargets(rows: readonly number[][], seqLen: number): Int32Array {
  const targets = new Int32Array(rows.length * seqLen).fill(-1);
  rows.forEach((ids, b) => { for (let t = 0; t + 1 < ids.length; t++) targets[b * seqLen + t] = ids[t + 1]; });
  return targets;
}

/** Σ over the predicted positions of row b (0 ≤ t < length − 1) of values[(b·seqLen + t)·stride + field], in position order. */
export function sumRow(values: Float64Array, stride: number, field: number, b: number, seqLen: number, length: number): number {
  let total = 0;
  for (let t = 0; t + 1 < length; t++) total += values[(b * seqLen + t) * stride + field];
  return total;
}

/** Perplexity and its details from per-sample NLL sums (in protocol order). */
export function summarizePerplexity(
  config: PerplexitySettings,
  prepared: PerplexitySamples & { tokenizeSeconds: number },
  sampleNll: number[],
  batchSize: number,
  evalSeconds: number,
  coupling?: RowCoupling,
): PerplexityResult {
  const { samples, info, tokenizeSeconds, warnings } = prepared;
  const sampleTokens = samples.map((s) => s.length - 1);
  let totalNll = 0;
  let predictedTokens = 0;
  for (let i = 0; i < samples.length; i++) { totalNll += sampleNll[i]; predictedTokens += sampleTokens[i]; }
  if (!Number.isFinite(totalNll)) {
    throw new WhittleError('UNSUPPORTED_MODEL', 'The model produced non-finite logits (NaN or infinity) on the evaluation text, so its perplexity is undefined.', { protocol: config.protocol });
  }
  const perplexity = Math.exp(totalNll / predictedTokens);

  const perTokenNll = sampleNll.map((n, i) => n / Math.max(1, sampleTokens[i])).sort((a, b) => a - b);
  const lengths = [...sampleTokens].sort((a, b) => a - b);
  return {
    perplexity,
    totalNll,
    predictedTokens,
    samples: samples.length,
    evalSeconds,
    tokenizeSeconds,
    sampleNll,
    sampleTokens,
    details: {
      protocol: config.protocol,
      description: describeProtocol(config),
      window: config.window,
      maxSamples: config.maxSamples,
      minTokens: config.protocol === 'documents' ? config.minTokens : undefined,
      samples: samples.length,
      predictedTokens,
      meanNll: totalNll / predictedTokens,
      batchSize,
      ...(coupling ? { batching: describeBatching(coupling, batchSize) } : {}),
      ...info,
      predictedTokensPerSample: { min: lengths[0], median: quantile(lengths, 0.5), max: lengths.at(-1) },
      nllPerTokenPerSample: { min: perTokenNll[0], p10: quantile(perTokenNll, 0.1), median: quantile(perTokenNll, 0.5), p90: quantile(perTokenNll, 0.9), max: perTokenNll.at(-1) },
      tokenizeSeconds,
      evalSeconds,
      ...(warnings.length ? { warnings } : {}),
    },
  };
}

export async function evaluatePerplexity(
  decoder: Decoder,
  tokenizer: TextTokenizer,
  text: string,
  config: PerplexitySettings,
  ctx: JobContext,
  options: PerplexityOptions = {},
): Promise<PerplexityResult> {
  const phase = 'evaluate:perplexity';
  throwIfAborted(ctx.signal);
  const prepared = samplesOrThrow(text, tokenizer, config);
  for (const w of prepared.warnings) ctx.log('warn', w);
  const { samples } = prepared;
  const vocab = decoder.vocabSize;
  const plan = planBatches(samples, vocab, options.batchSize, decoder.rowCoupling.independentRows);
  const sampleNll = new Array<number>(samples.length).fill(0);

  ctx.progress({ phase, done: 0, total: samples.length, message: `${samples.length} ${config.protocol === 'documents' ? 'documents' : 'windows'}` });
  // One batch ahead: onnxruntime runs batch i + 1 (off the JavaScript thread) while batch i is scored.
  const run = (indices: number[]): Promise<{ logits: Float32Array | Uint16Array; seqLen: number }> => {
    const rows = indices.map((i) => samples[i]);
    return options.observe ? decoder.forwardBatch(rows) : decoder.forwardBatchRaw(rows);
  };
  const evalStart = performance.now();
  let done = 0;
  let next: Promise<{ logits: Float32Array | Uint16Array; seqLen: number }> | null = run(plan.batches[0]);
  try {
    for (let k = 0; k < plan.batches.length; k++) {
      const indices = plan.batches[k];
      const { logits, seqLen } = await next!;
      next = null;
      throwIfAborted(ctx.signal);
      if (k + 1 < plan.batches.length) next = run(plan.batches[k + 1]);
      const rows = indices.map((i) => samples[i]);
      const nll = await rowNll(logits, batchTargets(rows, seqLen), vocab);
      rows.forEach((ids, b) => {
        sampleNll[indices[b]] = sumRow(nll, 1, 0, b, seqLen, ids.length);
        if (options.observe && logits instanceof Float32Array) {
          const offset = b * seqLen * vocab;
          options.observe({ index: indices[b], ids, logits: logits.subarray(offset, offset + ids.length * vocab), vocab });
        }
      });
      done += rows.length;
      ctx.progress({ phase, done, total: samples.length });
    }
  } finally {
    // A batch still running when this stops early (cancelled, failed) is waited for, its outcome dropped.
    if (next) await next.catch(() => undefined);
  }
  return summarizePerplexity(config, prepared, sampleNll, plan.batchSize, (performance.now() - evalStart) / 1000, decoder.rowCoupling);
}

export function perplexityMetrics(result: PerplexityResult, subject = 'model'): Metric[] {
  return [
    { name: 'perplexity', value: result.perplexity, unit: '', subject },
    { name: 'predicted_tokens', value: result.predictedTokens, unit: 'tokens', subject },
    { name: 'eval_tokens_per_s', value: result.predictedTokens / Math.max(result.evalSeconds, 1e-9), unit: 'tokens/s', subject },
    { name: 'eval_seconds', value: result.evalSeconds, unit: 's', subject },
  ];
}
