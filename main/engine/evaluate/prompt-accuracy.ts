/**
 * Accuracy of a decoder on labelled examples, by scoring labelled prompts (zero-shot classification).
 *
 * Each example's text fills the template's `{text}` (default "{text}\nAnswer:") to make the prompt; each
 * class c has a verbalizer v_c (its label as written, or words the user gives). The continuation of the
 * prompt is v_c after one space (none when the prompt ends, or v_c starts, with whitespace). The scored
 * sequence of (example, class) is the tokenization of prompt + continuation as a whole (BOS as the
 * tokenizer adds it), so a merge across the boundary is tokenized as the model saw such text in training;
 * the verbalizer's tokens are what follows the longest prefix it shares with the prompt's own tokenization.
 *
 *   ids = encode(prompt ⧺ continuation) [n],  s = |common prefix of ids and encode(prompt)|   (1 ≤ s < n)
 *   score(c) = Σ_{t=s}^{n−1} log softmax(logits[t − 1])[ids[t]]        (position t − 1 predicts ids[t])
 *   length-normalised: score(c) / (n − s)
 *   predicted = argmax_c score(c) (the first on a tie),  confidence = softmax over classes of the scores
 *
 * A sequence longer than `maxLength` loses the text's first tokens (BOS kept), by the same count in every
 * class row of an example. All class rows of `batch` examples run in one onnxruntime call, right-padded to
 * the longest: a causal decoder's logits at real positions never see the padding, so the scores do not
 * depend on the batch (graphs that quantize activations across rows run one row per call, row-coupling.ts).
 * The log-softmax at the verbalizer positions runs in the native kernel (native/logits.ts), in float64.
 */
import path from 'node:path';
import { DEFAULT_PROMPT_TEMPLATE } from '../../../preload/recipe.ts';
import type { LabelledData, LabelledExample } from '../data/labelled.ts';
import type { TextTokenizer } from '../data/tokenizer.ts';
import { throwIfAborted, WhittleError } from '../errors.ts';
import { rowNll } from '../native/logits.ts';
import { classificationMetrics, type AccuracyExample, type AccuracyResult } from './accuracy.ts';
import type { Decoder } from './decoder-session.ts';

/** How the recipe asks a decoder to read labelled examples (preload/recipe.ts AccuracyConfig). */
export interface PromptSettings {
  template?: string;
  /** One per class in class order, or by label. */
  verbalizers?: readonly string[] | Readonly<Record<string, string>>;
  lengthNormalize?: boolean;
}

/** The settings checked against the data's classes: a verbalizer for every class, in class order. */
export interface PromptPlan {
  template: string;
  verbalizers: string[];
  lengthNormalize: boolean;
}

/** The rows of one example: one token sequence per class, and where its verbalizer starts. */
export interface PromptRows {
  rows: number[][];
  /** starts[c]: index in rows[c] of the first verbalizer token (≥ 1). */
  starts: number[];
}

export interface PromptScoreOptions {
  /** Examples per onnxruntime run (all their class rows together); by default as many as fit about 64 MiB of logits, at most 16. */
  batch?: number;
  /** Tokens per sequence at most (prompt and verbalizer; default 128). */
  maxLength?: number;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}

export interface PromptScores {
  /** [examples][classes]: Σ log p of the verbalizer's tokens after the prompt (nats). */
  logProb: number[][];
  /** [examples][classes]: how many verbalizer tokens were scored. */
  tokens: number[][];
  /** Examples per run actually used. */
  batch: number;
}

export interface PromptAccuracyResult extends AccuracyResult {
  /** [examples][classes]: the scores compared (log-probability, or per token when length-normalised). */
  scores: number[][];
  prompt: PromptPlan;
}

const LOGITS_BUDGET_BYTES = 64 * 1024 * 1024;
const MAX_BATCH = 16;
export const DEFAULT_PROMPT_MAX_LENGTH = 128;

function invalid(message: string, details?: Record<string, unknown>): WhittleError {
  return new WhittleError('INVALID_INPUT', message, details);
}

const quoted = (s: string): string => JSON.stringify(s);

/** The template with every `{text}` replaced by `text`. */
export function fillTemplate(template: string, text: string): string {
  return template.split('{text}').join(text);
}

/** The prompt followed by the verbalizer, one space between them unless either side already has whitespace there. */
export function joinContinuation(prompt: string, verbalizer: string): string {
  return /\s$/.test(prompt) || /^\s/.test(verbalizer) || prompt === '' ? prompt + verbalizer : `${prompt} ${verbalizer}`;
}

/** The verbalizers in class order: the labels as written by default, else the list or map given. */
function verbalizersFor(given: PromptSettings['verbalizers'], classes: readonly string[]): string[] {
  if (given === undefined) return [...classes];
  if (Array.isArray(given)) {
    const list = given as readonly string[];
    if (list.length < classes.length) {
      const missing = classes.slice(list.length);
      throw invalid(`Class${missing.length > 1 ? 'es' : ''} ${missing.map(quoted).join(', ')} ha${missing.length > 1 ? 've' : 's'} no verbalizer: ${list.length} verbalizer(s) are given for ${classes.length} classes (${classes.join(', ')}). Give one per class, in class order, or map each label to its words.`, { classes, verbalizers: list });
    }
    if (list.length > classes.length) {
      throw invalid(`${list.length} verbalizers are given but the data has ${classes.length} classes (${classes.join(', ')}). Give one per class, in class order.`, { classes, verbalizers: list });
    }
    return [...list];
  }
  const map = given as Readonly<Record<string, string>>;
  const stray = Object.keys(map).filter((k) => !classes.includes(k));
  if (stray.length > 0) throw invalid(`The verbalizers name ${stray.map(quoted).join(', ')}, which ${stray.length > 1 ? 'are not classes' : 'is not a class'} of the data (its classes are ${classes.join(', ')}). Map the labels as they are written.`, { classes, stray });
  const missing = classes.filter((c) => map[c] === undefined);
  if (missing.length > 0) throw invalid(`Class${missing.length > 1 ? 'es' : ''} ${missing.map(quoted).join(', ')} ha${missing.length > 1 ? 've' : 's'} no verbalizer. Map every label (${classes.join(', ')}) to the words the model should answer with.`, { classes, missing });
  return classes.map((c) => map[c]);
}

/**
 * Checks the prompt settings against the data's classes and the tokenizer before any model runs: the
 * template has `{text}`, every class has a verbalizer, each verbalizer has tokens, no two are the same.
 */
export function promptPlan(settings: PromptSettings, classes: readonly string[], tokenizer: TextTokenizer): PromptPlan {
  const template = settings.template ?? DEFAULT_PROMPT_TEMPLATE;
  if (!template.includes('{text}')) {
    throw invalid(`The prompt template ${quoted(template)} has no {text}: write {text} where the example's text goes, e.g. ${quoted(DEFAULT_PROMPT_TEMPLATE)}.`, { template });
  }
  const verbalizers = verbalizersFor(settings.verbalizers, classes);
  verbalizers.forEach((v, c) => {
    if (v.trim() === '' || tokenizer.encode(v.trim(), { addBos: false }).length === 0) {
      throw invalid(`The verbalizer of class ${quoted(classes[c])} (${quoted(v)}) tokenizes to nothing, so there is nothing to score. Give it a word or more.`, { class: classes[c], verbalizer: v, tokenizer: tokenizer.path });
    }
  });
  const seen = new Map<string, number>();
  verbalizers.forEach((v, c) => {
    const other = seen.get(v.trim());
    if (other !== undefined) throw invalid(`Classes ${quoted(classes[other])} and ${quoted(classes[c])} have the same verbalizer ${quoted(v)}, so the model cannot tell them apart. Give each class its own words.`, { classes: [classes[other], classes[c]] });
    seen.set(v.trim(), c);
  });
  return { template, verbalizers, lengthNormalize: settings.lengthNormalize ?? false };
}

/** The class rows of one example (see the header), cut to `maxLength` tokens. */
export function promptRows(example: Pick<LabelledExample, 'text' | 'line'>, plan: PromptPlan, tokenizer: TextTokenizer, maxLength = DEFAULT_PROMPT_MAX_LENGTH): PromptRows {
  const prompt = fillTemplate(plan.template, example.text);
  const promptIds = tokenizer.encode(prompt);
  const rows: number[][] = [];
  const starts: number[] = [];
  plan.verbalizers.forEach((v) => {
    const ids = tokenizer.encode(joinContinuation(prompt, v));
    let s = 0;
    while (s < ids.length && s < promptIds.length && ids[s] === promptIds[s]) s++;
    if (s === ids.length) throw invalid(`The verbalizer ${quoted(v)} adds no token after the prompt of the example on line ${example.line}. Give it a word or more.`, { line: example.line, verbalizer: v });
    if (s === 0) throw invalid(`The prompt of the example on line ${example.line} has no token before the verbalizer ${quoted(v)} (an empty text and template?). Put text before the answer.`, { line: example.line, verbalizer: v });
    rows.push(ids);
    starts.push(s);
  });
  // Cut the same count of prompt tokens from every class row (after BOS), so the classes share a prompt.
  const over = Math.max(0, ...rows.map((ids) => ids.length - maxLength));
  if (over === 0) return { rows, starts };
  const keep = tokenizer.bosId !== null && rows.every((ids) => ids[0] === tokenizer.bosId) ? 1 : 0;
  const room = Math.min(...starts) - keep - 1; // at least one prompt token stays before the verbalizer
  if (over > room) {
    throw invalid(`The example on line ${example.line} does not fit ${maxLength} tokens even with its text cut: the template and the longest verbalizer need more. Raise the length or shorten the template.`, { line: example.line, maxLength });
  }
  return {
    rows: rows.map((ids) => [...ids.slice(0, keep), ...ids.slice(keep + over)]),
    starts: starts.map((s) => s - over),
  };
}

/** Examples per run when not given: the class rows of as many examples as fit the logits budget, 1…MAX_BATCH. */
function defaultBatch(classes: number, maxLength: number, vocab: number): number {
  return Math.max(1, Math.min(MAX_BATCH, Math.floor(LOGITS_BUDGET_BYTES / (classes * maxLength * vocab * 4))));
}

/** Each example's total log-probability of each class's verbalizer after its prompt (see the header). */
export async function scorePrompts(decoder: Decoder, tokenizer: TextTokenizer, examples: readonly Pick<LabelledExample, 'text' | 'line'>[], plan: PromptPlan, options: PromptScoreOptions = {}): Promise<PromptScores> {
  const maxLength = options.maxLength ?? DEFAULT_PROMPT_MAX_LENGTH;
  const classes = plan.verbalizers.length;
  const vocab = decoder.vocabSize;
  const batch = options.batch ?? defaultBatch(classes, maxLength, vocab);
  if (!Number.isInteger(batch) || batch < 1) throw invalid(`The evaluation batch must be a whole number of at least 1 (got ${batch}).`);
  if (!Number.isInteger(maxLength) || maxLength < 2) throw invalid(`The evaluation length must be a whole number of at least 2 (got ${maxLength}).`);
  const prepared = examples.map((e) => promptRows(e, plan, tokenizer, maxLength));
  const logProb = examples.map(() => new Array<number>(classes).fill(0));
  const tokens = prepared.map((p) => p.rows.map((ids, c) => ids.length - p.starts[c]));
  // Rows of one run: [example, class] pairs, example-major; one row per run when rows would share a quantization range.
  const rowsPerRun = decoder.rowCoupling.independentRows ? batch * classes : 1;
  const pairs = prepared.flatMap((_, i) => Array.from({ length: classes }, (_, c) => [i, c] as const));
  for (let at = 0; at < pairs.length; at += rowsPerRun) {
    throwIfAborted(options.signal);
    const chunk = pairs.slice(at, at + rowsPerRun);
    const rows = chunk.map(([i, c]) => prepared[i].rows[c]);
    const { logits, seqLen } = await decoder.forwardBatchRaw(rows);
    // targets [rows · seqLen]: position t − 1 of a row predicts its verbalizer token t; everything else −1 (not scored).
    const targets = new Int32Array(rows.length * seqLen).fill(-1);
    chunk.forEach(([i, c], r) => {
      const ids = prepared[i].rows[c];
      for (let t = prepared[i].starts[c]; t < ids.length; t++) targets[r * seqLen + t - 1] = ids[t];
    });
    const nll = await rowNll(logits, targets, vocab);
    chunk.forEach(([i, c], r) => {
      const ids = prepared[i].rows[c];
      let total = 0;
      for (let t = prepared[i].starts[c]; t < ids.length; t++) total -= nll[r * seqLen + t - 1];
      logProb[i][c] = total;
    });
    options.onProgress?.(Math.min(examples.length, Math.floor((at + chunk.length) / classes)), examples.length);
  }
  return { logProb, tokens, batch };
}

/** Accuracy, macro-F1, per-class figures and the confusion matrix of `decoder` on labelled prompts. */
export async function evaluatePromptAccuracy(decoder: Decoder, tokenizer: TextTokenizer, labelled: LabelledData, plan: PromptPlan, options: PromptScoreOptions & { show?: number } = {}): Promise<PromptAccuracyResult> {
  if (labelled.examples.length === 0) throw invalid('There are no labelled examples to evaluate on. Choose a held-out split or file with examples.');
  if (plan.verbalizers.length !== labelled.classes.length) {
    throw new WhittleError('INTERNAL', `${plan.verbalizers.length} verbalizers for ${labelled.classes.length} classes of ${path.basename(labelled.path)}.`);
  }
  const { logProb, tokens } = await scorePrompts(decoder, tokenizer, labelled.examples, plan, options);
  const scores = logProb.map((row, i) => (plan.lengthNormalize ? row.map((lp, c) => lp / tokens[i][c]) : row));
  const predictions: number[] = [];
  const confidences: number[] = [];
  for (const z of scores) {
    if (!z.every(Number.isFinite)) throw new WhittleError('UNSUPPORTED_MODEL', 'The model produced non-finite logits (NaN or infinity) on a labelled prompt, so its answers cannot be scored.');
    let best = 0;
    for (let c = 1; c < z.length; c++) if (z[c] > z[best]) best = c;
    let sum = 0;
    for (const x of z) sum += Math.exp(x - z[best]);
    predictions.push(best);
    confidences.push(1 / sum);
  }
  const classes = labelled.classes.length;
  const metrics = classificationMetrics(labelled.examples.map((e) => e.label), predictions, classes);
  const shown = labelled.examples.slice(0, options.show ?? 8).map((e, i): AccuracyExample => ({
    text: e.text, label: labelled.classes[e.label], predicted: labelled.classes[predictions[i]], confidence: confidences[i],
  }));
  return { count: labelled.examples.length, classes: labelled.classes, ...metrics, predictions, examples: shown, scores, prompt: plan };
}
