/**
 * Agreement of a compressed model with its original, token by token (TECHNIQUES.md §4).
 *
 * At every predicted position of every evaluation sample, with x = original logits and y = result logits
 * ([vocab] rows of the same input at the same position):
 *   log p_v = x_v − logsumexp(x),  log q_v = y_v − logsumexp(y)        (stable log-softmax, float64)
 *   KL(p ‖ q) = Σ_v p_v · (log p_v − log q_v)                            nats, ≥ 0; 0 iff p = q
 *   top-1     = [argmax_v x_v = argmax_v y_v]                            (first index on ties)
 * kl_mean is the mean over all predicted tokens; top1_agreement the share of tokens (in %) where they agree.
 *
 * Both models run the same batches in lockstep, so only one batch of logits per model is held at a time
 * (never a whole dataset's: vocabularies reach 150k). When either graph quantizes activations over the
 * whole tensor (row-coupling.ts), both run one sample per run, so neither number depends on the batch
 * size. The pass also yields both perplexities, with the NLL computed exactly as perplexity.ts does (the
 * same native kernel, same order), so the numbers match a perplexity run of either model alone.
 * compareRow / compareSequence are the plain float64 definitions (the kernel's JavaScript twin).
 */
import type { Metric } from '../../../preload/contract.ts';
import type { TextTokenizer } from '../data/tokenizer.ts';
import { throwIfAborted, WhittleError } from '../errors.ts';
import type { JobContext } from '../job-context.ts';
import type { Decoder } from './decoder-session.ts';
import { argmax } from './generate.ts';
import { logSumExp } from './log-softmax.ts';
import { PAIR_STRIDE, rowCompare } from '../native/logits.ts';
import {
  batchTargets, planBatches, quantile, samplesOrThrow, sumRow, summarizePerplexity, type PerplexityResult, type PerplexitySettings,
} from './perplexity.ts';
import type { RowCoupling } from './row-coupling.ts';

/** Metrics that describe a pair of models (stored with subject 'result'), not one model on its own. */
export const AGREEMENT_METRICS: readonly string[] = ['kl_mean', 'top1_agreement'];

export interface RowComparison {
  /** KL(p ‖ q) in nats. */
  kl: number;
  /** logsumexp of each row (NLL of a target t is lse − logits[t]). */
  lseP: number;
  lseQ: number;
  argmaxP: number;
  argmaxQ: number;
}

/**
 * KL(softmax(p row) ‖ softmax(q row)) and both argmaxes.
 *   p: [.., vocab] from pOffset, q: [.., vocab] from qOffset (float32 logits); float64 arithmetic.
 * Rounding can leave a KL of −1e-17 for equal rows; it is clamped at 0 (the true value is ≥ 0).
 */
export function compareRow(p: Float32Array, pOffset: number, q: Float32Array, qOffset: number, vocab: number): RowComparison {
  const lseP = logSumExp(p, pOffset, vocab);
  const lseQ = logSumExp(q, qOffset, vocab);
  let kl = 0;
  for (let v = 0; v < vocab; v++) {
    const logP = p[pOffset + v] - lseP;
    const logQ = q[qOffset + v] - lseQ;
    kl += Math.exp(logP) * (logP - logQ);
  }
  return { kl: Math.max(0, kl), lseP, lseQ, argmaxP: argmax(p, pOffset, vocab), argmaxQ: argmax(q, qOffset, vocab) };
}

export interface SequenceComparison {
  /** Σ NLL of the next tokens under each model (as sequenceNll computes it). */
  nllP: number;
  nllQ: number;
  /** Σ KL over the predicted positions. */
  klSum: number;
  /** Positions where both models rank the same token first. */
  top1Matches: number;
  /** Predicted positions: ids.length − 1. */
  positions: number;
}

/**
 * One sample scored by both models: position t (0 ≤ t < ids.length − 1) predicts ids[t + 1].
 *   p, q: [≥ ids.length − 1 rows, vocab] from their offsets.
 */
export function compareSequence(p: Float32Array, pOffset: number, q: Float32Array, qOffset: number, vocab: number, ids: ArrayLike<number>): SequenceComparison {
  let nllP = 0;
  let nllQ = 0;
  let klSum = 0;
  let top1Matches = 0;
  for (let t = 0; t + 1 < ids.length; t++) {
    const po = pOffset + t * vocab;
    const qo = qOffset + t * vocab;
    const r = compareRow(p, po, q, qo, vocab);
    const target = ids[t + 1];
    nllP += r.lseP - p[po + target];
    nllQ += r.lseQ - q[qo + target];
    klSum += r.kl;
    if (r.argmaxP === r.argmaxQ) top1Matches++;
  }
  return { nllP, nllQ, klSum, top1Matches, positions: Math.max(0, ids.length - 1) };
}

export interface AgreementResult {
  /** Mean KL(original ‖ result) per predicted token, nats. */
  klMean: number;
  /** Share of predicted tokens where both models' most likely token is the same, 0..1. */
  top1: number;
  tokens: number;
  /** Per sample, in protocol order: Σ KL and top-1 matches (divide by the sample's predicted tokens). */
  sampleKl: number[];
  sampleTop1: number[];
  details: Record<string, unknown>;
}

export interface Comparison {
  original: PerplexityResult;
  result: PerplexityResult;
  agreement: AgreementResult;
}

export interface CompareOptions {
  /** Rows per onnxruntime run (both models); by default as perplexity.ts chooses. */
  batchSize?: number;
  /** How many of the most divergent samples the details list. Default 5. */
  worst?: number;
}

const PREVIEW_TOKENS = 24;

/**
 * Perplexity of both models and their agreement on the same samples of `text`, batch by batch.
 * The two decoders must predict the same vocabulary.
 */
export async function compareOnText(
  original: Decoder,
  result: Decoder,
  tokenizer: TextTokenizer,
  text: string,
  config: PerplexitySettings,
  ctx: JobContext,
  options: CompareOptions = {},
): Promise<Comparison> {
  const phase = 'evaluate:compare';
  if (original.vocabSize !== result.vocabSize) {
    throw new WhittleError(
      'UNSUPPORTED_MODEL',
      `The result predicts ${result.vocabSize} tokens but the original ${original.vocabSize}, so their predictions cannot be compared token by token.`,
      { original: original.vocabSize, result: result.vocabSize },
    );
  }
  throwIfAborted(ctx.signal);
  const prepared = samplesOrThrow(text, tokenizer, config);
  for (const w of prepared.warnings) ctx.log('warn', w);
  const { samples } = prepared;
  const vocab = original.vocabSize;
  const coupling: RowCoupling = {
    independentRows: original.rowCoupling.independentRows && result.rowCoupling.independentRows,
    ops: { ...original.rowCoupling.ops, ...result.rowCoupling.ops },
  };
  const plan = planBatches(samples, vocab, options.batchSize, coupling.independentRows);
  const n = samples.length;
  const nllP = new Array<number>(n).fill(0);
  const nllQ = new Array<number>(n).fill(0);
  const sampleKl = new Array<number>(n).fill(0);
  const sampleTop1 = new Array<number>(n).fill(0);

  ctx.progress({ phase, done: 0, total: n, message: `${n} ${config.protocol === 'documents' ? 'documents' : 'windows'}, original beside result` });
  let originalSeconds = 0;
  let resultSeconds = 0;
  let scoringSeconds = 0;
  let done = 0;
  for (const indices of plan.batches) {
    throwIfAborted(ctx.signal);
    const rows = indices.map((i) => samples[i]);
    let t0 = performance.now();
    const p = await original.forwardBatchRaw(rows);
    originalSeconds += (performance.now() - t0) / 1000;
    throwIfAborted(ctx.signal);
    t0 = performance.now();
    const q = await result.forwardBatchRaw(rows);
    resultSeconds += (performance.now() - t0) / 1000;
    t0 = performance.now();
    if (p.seqLen !== q.seqLen) throw new WhittleError('INTERNAL', `The two models returned logits for ${p.seqLen} and ${q.seqLen} positions on the same batch.`);
    const scores = await rowCompare(p.logits, q.logits, batchTargets(rows, p.seqLen), vocab);
    rows.forEach((ids, b) => {
      const i = indices[b];
      nllP[i] = sumRow(scores, PAIR_STRIDE, 0, b, p.seqLen, ids.length);
      nllQ[i] = sumRow(scores, PAIR_STRIDE, 1, b, p.seqLen, ids.length);
      sampleKl[i] = sumRow(scores, PAIR_STRIDE, 2, b, p.seqLen, ids.length);
      sampleTop1[i] = sumRow(scores, PAIR_STRIDE, 3, b, p.seqLen, ids.length);
    });
    scoringSeconds += (performance.now() - t0) / 1000;
    done += rows.length;
    ctx.progress({ phase, done, total: n });
  }

  // Each model's evaluation time: its own forward passes plus half of the shared scoring.
  const originalResult = summarizePerplexity(config, prepared, nllP, plan.batchSize, originalSeconds + scoringSeconds / 2, coupling);
  const resultResult = summarizePerplexity(config, prepared, nllQ, plan.batchSize, resultSeconds + scoringSeconds / 2, coupling);

  const tokens = originalResult.predictedTokens;
  let klTotal = 0;
  let matches = 0;
  for (let i = 0; i < n; i++) { klTotal += sampleKl[i]; matches += sampleTop1[i]; }
  if (!Number.isFinite(klTotal)) {
    throw new WhittleError('UNSUPPORTED_MODEL', 'The KL divergence between the original and the result is not finite (a model produced NaN or infinite logits).');
  }
  const predicted = originalResult.sampleTokens;
  const klPerSample = sampleKl.map((k, i) => k / Math.max(1, predicted[i]));
  const sortedKl = [...klPerSample].sort((a, b) => a - b);
  const worst = klPerSample
    .map((kl, index) => ({ index, kl }))
    .sort((a, b) => b.kl - a.kl || a.index - b.index)
    .slice(0, options.worst ?? 5)
    .map(({ index, kl }) => ({
      index,
      tokens: predicted[index],
      klMean: kl,
      top1Agreement: (100 * sampleTop1[index]) / Math.max(1, predicted[index]),
      nllOriginal: nllP[index] / Math.max(1, predicted[index]),
      nllResult: nllQ[index] / Math.max(1, predicted[index]),
      preview: tokenizer.decode(samples[index].slice(0, PREVIEW_TOKENS)),
    }));

  const klMean = klTotal / tokens;
  const top1 = matches / tokens;
  return {
    original: originalResult,
    result: resultResult,
    agreement: {
      klMean,
      top1,
      tokens,
      sampleKl,
      sampleTop1,
      details: {
        description: 'KL(original ‖ result) of the next-token distributions and top-1 agreement, per predicted token, on the perplexity samples; both models run the same batches in lockstep.',
        klMean,
        top1Agreement: 100 * top1,
        tokens,
        samples: n,
        top1Matches: matches,
        klPerTokenPerSample: {
          min: sortedKl[0], p10: quantile(sortedKl, 0.1), median: quantile(sortedKl, 0.5), p90: quantile(sortedKl, 0.9), max: sortedKl.at(-1),
        },
        klPerSample,
        worstSamples: worst,
        seconds: { original: originalSeconds, result: resultSeconds, scoring: scoringSeconds },
      },
    },
  };
}

export function agreementMetrics(a: AgreementResult, subject = 'result'): Metric[] {
  return [
    { name: 'kl_mean', value: a.klMean, unit: 'nats', subject },
    { name: 'top1_agreement', value: 100 * a.top1, unit: '%', subject },
  ];
}
