/**
 * Accuracy and F1 of an encoder classifier on labelled examples, with onnxruntime.
 *
 * Each example is [CLS] tokens… [SEP], cut to `maxLength`; a batch is padded to its longest row and its
 * attention mask marks the padding, so the predictions do not depend on how examples are batched (the
 * model masks the padding: checked in tests/integration/encoder-classify.test.ts).
 *
 * Metrics, for C classes and the confusion matrix M[true][predicted]:
 *   accuracy  = Σ_c M[c][c] / N
 *   precision_c = M[c][c] / Σ_t M[t][c]     recall_c = M[c][c] / Σ_p M[c][p]
 *   f1_c = 2 · precision_c · recall_c / (precision_c + recall_c)
 *   macroF1 = mean_c f1_c
 * A ratio with a zero denominator counts 0 (scikit-learn's zero_division = 0).
 */
import * as ort from 'onnxruntime-node';
import { encodeBatch, encoderTokens, type LabelledData } from '../data/labelled.ts';
import { loadTokenizer } from '../data/tokenizer.ts';
import { WhittleError } from '../errors.ts';
import { classLogits } from '../train/train-classifier.ts';

export interface ClassMetrics {
  precision: number;
  recall: number;
  f1: number;
  /** Examples whose true class is this one. */
  support: number;
}

export interface AccuracyExample {
  text: string;
  label: string;
  predicted: string;
  /** Softmax probability of the predicted class. */
  confidence: number;
}

export interface AccuracyResult {
  /** Examples evaluated. */
  count: number;
  classes: string[];
  accuracy: number;
  macroF1: number;
  perClass: ClassMetrics[];
  /** confusion[true][predicted] counts. */
  confusion: number[][];
  /** Class id predicted for every example, in the data's order. */
  predictions: number[];
  /** The first few examples with what the model said (for the report). */
  examples: AccuracyExample[];
}

export interface AccuracyOptions {
  tokenizerPath: string;
  /** Examples per onnxruntime run (default 32). */
  batch?: number;
  /** Tokens per example at most, [CLS] and [SEP] included (default 128). */
  maxLength?: number;
  /** Examples listed in the result's `examples` (default 8). */
  show?: number;
  threads?: number;
}

/** The metrics of `predicted` against `labels` (class ids 0…classes−1); see the header. */
export function classificationMetrics(labels: readonly number[], predicted: readonly number[], classes: number): Pick<AccuracyResult, 'accuracy' | 'macroF1' | 'perClass' | 'confusion'> {
  if (labels.length !== predicted.length) throw new WhittleError('INTERNAL', `${labels.length} labels but ${predicted.length} predictions.`);
  const confusion = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  for (let i = 0; i < labels.length; i++) confusion[labels[i]][predicted[i]]++;
  const ratio = (a: number, b: number): number => (b > 0 ? a / b : 0);
  let right = 0;
  const perClass = confusion.map((row, c) => {
    const tp = row[c];
    right += tp;
    const support = row.reduce((a, x) => a + x, 0);
    const predictedAs = confusion.reduce((a, r) => a + r[c], 0);
    const precision = ratio(tp, predictedAs), recall = ratio(tp, support);
    return { precision, recall, f1: ratio(2 * precision * recall, precision + recall), support };
  });
  return { accuracy: ratio(right, labels.length), macroF1: perClass.reduce((a, m) => a + m.f1, 0) / classes, perClass, confusion };
}

/** Accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix of the classifier at `modelPath`. */
export async function evaluateAccuracy(modelPath: string, labelled: LabelledData, options: AccuracyOptions): Promise<AccuracyResult> {
  const batchSize = options.batch ?? 32;
  const maxLength = options.maxLength ?? 128;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new WhittleError('INVALID_INPUT', `The evaluation batch must be a whole number of at least 1 (got ${batchSize}).`);
  if (!Number.isInteger(maxLength) || maxLength < 2) throw new WhittleError('INVALID_INPUT', `The evaluation length must be a whole number of at least 2 (got ${maxLength}).`);
  if (labelled.examples.length === 0) throw new WhittleError('INVALID_INPUT', 'There are no labelled examples to evaluate on. Choose a held-out split or file with examples.');
  const tokenizer = await loadTokenizer(options.tokenizerPath);
  const tokens = encoderTokens(tokenizer);
  const sessionOptions: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: 'all' };
  if (options.threads) sessionOptions.intraOpNumThreads = options.threads;
  const session = await ort.InferenceSession.create(modelPath, sessionOptions);
  const classes = labelled.classes.length;
  const predictions: number[] = [];
  const confidences: number[] = [];
  try {
    for (let start = 0; start < labelled.examples.length; start += batchSize) {
      const rows = labelled.examples.slice(start, start + batchSize);
      const longest = encodeBatch(rows, tokenizer, tokens, 'longest');
      const batch = longest.length > maxLength ? encodeBatch(rows, tokenizer, tokens, maxLength) : longest;
      const logits = await classLogits(session, batch);
      const width = logits.length / rows.length;
      if (width !== classes) throw new WhittleError('INVALID_INPUT', `The model gives ${width} class logits but the labelled data has ${classes} classes (${labelled.classes.join(', ')}). Evaluate on data with the model's classes.`);
      for (let b = 0; b < rows.length; b++) {
        const z = logits.subarray(b * classes, (b + 1) * classes);
        let best = 0;
        for (let c = 1; c < classes; c++) if (z[c] > z[best]) best = c;
        let sum = 0;
        for (let c = 0; c < classes; c++) sum += Math.exp(z[c] - z[best]);
        predictions.push(best);
        confidences.push(1 / sum);
      }
    }
  } finally {
    await session.release();
  }
  const metrics = classificationMetrics(labelled.examples.map((e) => e.label), predictions, classes);
  const shown = labelled.examples.slice(0, options.show ?? 8).map((e, i): AccuracyExample => ({
    text: e.text, label: labelled.classes[e.label], predicted: labelled.classes[predictions[i]], confidence: confidences[i],
  }));
  return { count: labelled.examples.length, classes: labelled.classes, ...metrics, predictions, examples: shown };
}
