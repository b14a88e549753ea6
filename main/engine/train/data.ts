/**
 * Training text as micro-batches of next-token examples, in a seeded order that a resumed run continues
 * exactly.
 *
 * Tokens. The file is read and split into blank-line paragraphs piece by piece (readDocuments), and each
 * paragraph is tokenized on its own with BOS first, as the perplexity and calibration readers do; a
 * tokenizer without BOS but with an end-of-text token (GPT-2) gets that token after each paragraph instead.
 * The paragraphs' ids are concatenated into one stream of N tokens.
 *
 * Sequences. Sequence k holds the T + 1 tokens stream[k·T .. k·T + T]: inputs = its first T, labels = its
 * last T (label t is the token after input t). Consecutive sequences share one token, so every adjacent
 * pair of the stream is predicted exactly once. There are S = ⌈(N − 1) / T⌉ sequences; a short last one is
 * PADDED: its missing inputs are token 0 and its missing labels −1 (not counted by the loss), so no text
 * is dropped. One batch needs N ≥ B·T + 1 tokens.
 *
 * Order. Epoch e visits all S sequences once, in a permutation drawn by Fisher–Yates from mulberry32
 * seeded by (seed, e). The epochs' permutations form one endless stream of slots; micro-batch after
 * micro-batch takes the next B slots of it, running over into the next epoch where an epoch's end is not
 * a multiple of B. The position { seed, epoch, index, sequences } names the next slot: plain JSON, written
 * into checkpoints, and batchAt(position) gives the same batch in any process.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { mulberry32 } from '../calibrate/prng.ts';
import { readDocuments } from '../data/text-file.ts';
import { loadTokenizer, type TextTokenizer } from '../data/tokenizer.ts';
import { throwIfAborted, WhittleError } from '../errors.ts';

/** One micro-batch, [B, T] row-major: token ids and next-token labels (−1 = not counted). */
export interface TrainBatch {
  inputIds: BigInt64Array;
  labels: BigInt64Array;
  /** The sequence index of each row (−1: an empty row, labels all −1), for signals stored per sequence (a teacher's top-k cache). */
  sequences?: Int32Array;
  /** The fingerprint of the text the rows come from (TrainingData.fingerprint). */
  source?: string;
}

/** Where the data order stands: the next slot of the seeded stream of sequences. */
export interface DataPosition {
  seed: number;
  epoch: number;
  /** The next slot of epoch `epoch`'s permutation, in [0, sequences). */
  index: number;
  /** S of the text the position belongs to (a resumed run on another text is refused). */
  sequences: number;
}

export interface TrainingDataOptions {
  textPath: string;
  tokenizerPath: string;
  /** B: sequences per micro-batch. */
  batch: number;
  /** T: tokens per sequence. */
  length: number;
  seed: number;
  /** What the text is for, as messages name it: 'training' (default) or 'held-out'. */
  purpose?: 'training' | 'held-out';
  signal?: AbortSignal;
  /** Called after each paragraph is tokenized with the paragraphs and tokens so far. */
  onProgress?: (p: { documents: number; tokens: number }) => void;
}

export interface TrainingDataShape {
  batch: number;
  length: number;
  seed: number;
  /** How messages name the text (its file name). */
  label?: string;
  purpose?: 'training' | 'held-out';
}

/** Padding input id of a short last sequence (any valid id: its labels are −1 and a causal model never looks ahead). */
const PAD_INPUT = 0;
/** Paragraphs tokenized between two checks of the abort signal. */
const ABORT_CHECK_EVERY = 256;

function invalid(message: string, details?: Record<string, unknown>): WhittleError {
  return new WhittleError('INVALID_INPUT', message, details);
}

function checkShape(shape: TrainingDataShape): void {
  if (!Number.isSafeInteger(shape.batch) || shape.batch < 1) throw invalid(`The batch must be a whole number of at least 1 (got ${shape.batch}).`);
  if (!Number.isSafeInteger(shape.length) || shape.length < 1) throw invalid(`The sequence length must be a whole number of at least 1 (got ${shape.length}).`);
  if (!Number.isSafeInteger(shape.seed)) throw invalid(`The seed must be a whole number (got ${shape.seed}).`);
}

/** S = ⌈(N − 1) / T⌉ sequences of T + 1 tokens from N tokens (see the header). */
export function sequenceCount(tokens: number, length: number): number {
  return tokens < 2 ? 0 : Math.ceil((tokens - 1) / length);
}

/** Optimizer steps that cover `epochs` passes over `sequences` sequences: ⌈epochs · S / (B · accumulate)⌉, at least 1. */
export function stepsForEpochs(epochs: number, shape: { sequences: number; batch: number; accumulate: number }): number {
  if (!(epochs > 0) || !Number.isFinite(epochs)) throw invalid(`Epochs must be a number above 0 (got ${epochs}).`);
  if (!Number.isSafeInteger(shape.accumulate) || shape.accumulate < 1) {
    throw invalid(`Gradient accumulation must be a whole number of at least 1 (got ${shape.accumulate}).`);
  }
  return Math.max(1, Math.ceil((epochs * shape.sequences) / (shape.batch * shape.accumulate)));
}

/** The seed of epoch e's permutation: the run's seed and the epoch mixed (so epochs differ and seeds differ). */
function epochSeed(seed: number, epoch: number): number {
  return (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(epoch + 1, 0x85ebca6b)) >>> 0;
}

/** The ids of one paragraph as they enter the stream. */
function paragraphIds(tokenizer: TextTokenizer, text: string): number[] {
  if (tokenizer.bosId !== null) return tokenizer.encode(text, { addBos: true });
  const ids = tokenizer.encode(text, { addBos: false });
  if (tokenizer.eosId !== null) ids.push(tokenizer.eosId);
  return ids;
}

export class TrainingData {
  readonly batch: number;
  readonly length: number;
  readonly seed: number;
  /** N, the tokens of the stream. */
  readonly tokens: number;
  /** S, the sequences (the last one padded when short). */
  readonly sequences: number;
  /** Label positions of the last sequence that are padding (0 when the stream fits exactly). */
  readonly paddedLabels: number;
  private readonly stream: Int32Array;
  private permutation: { seed: number; epoch: number; order: Uint32Array } | null = null;
  private digest: string | null = null;

  private constructor(stream: Int32Array, shape: TrainingDataShape) {
    this.stream = stream;
    this.batch = shape.batch;
    this.length = shape.length;
    this.seed = shape.seed;
    this.tokens = stream.length;
    this.sequences = sequenceCount(stream.length, shape.length);
    this.paddedLabels = this.sequences * shape.length - (stream.length - 1);
  }

  /** Reads and tokenizes a text file (see the header); refuses a text too short for one batch. */
  static async load(options: TrainingDataOptions): Promise<TrainingData> {
    const shape = { batch: options.batch, length: options.length, seed: options.seed, label: path.basename(options.textPath), purpose: options.purpose };
    checkShape(shape);
    const tokenizer = await loadTokenizer(options.tokenizerPath);
    let stream = new Int32Array(1 << 16);
    let used = 0;
    let documents = 0;
    for await (const doc of readDocuments(options.textPath)) {
      const ids = paragraphIds(tokenizer, doc);
      if (used + ids.length > stream.length) {
        const grown = new Int32Array(Math.max(2 * stream.length, used + ids.length));
        grown.set(stream.subarray(0, used));
        stream = grown;
      }
      stream.set(ids, used);
      used += ids.length;
      documents++;
      options.onProgress?.({ documents, tokens: used });
      if (documents % ABORT_CHECK_EVERY === 0) throwIfAborted(options.signal);
    }
    throwIfAborted(options.signal);
    return TrainingData.fromTokens(stream.slice(0, used), shape);
  }

  /** Batches over a token stream already in memory (see the header); refuses a stream too short for one batch. */
  static fromTokens(stream: Int32Array, shape: TrainingDataShape): TrainingData {
    checkShape(shape);
    const need = shape.batch * shape.length + 1;
    if (stream.length < need) {
      const name = `The ${shape.purpose ?? 'training'} text${shape.label ? ` ${shape.label}` : ''}`;
      throw invalid(
        `${name} has ${stream.length} tokens, but one batch of ${shape.batch} sequences of ${shape.length} tokens needs at least ${need}. `
        + 'Use a longer text, or a smaller batch or sequence length.',
        { tokens: stream.length, needed: need, batch: shape.batch, length: shape.length },
      );
    }
    return new TrainingData(stream, shape);
  }

  /** SHA-256 of the token stream and the sequence length: what names "the same sequences" across processes. */
  get fingerprint(): string {
    if (this.digest === null) {
      const h = createHash('sha256');
      h.update(`whittle-sequences:${this.length}:`);
      h.update(new Uint8Array(this.stream.buffer, this.stream.byteOffset, this.stream.byteLength));
      this.digest = h.digest('hex');
    }
    return this.digest;
  }

  /** Micro-batches per epoch, counting a last partial one: ⌈S / B⌉. */
  get batchesPerEpoch(): number {
    return Math.ceil(this.sequences / this.batch);
  }

  /** Optimizer steps that cover `epochs` passes over the text. */
  stepsForEpochs(epochs: number, accumulate: number): number {
    return stepsForEpochs(epochs, { sequences: this.sequences, batch: this.batch, accumulate });
  }

  /** The position of the first micro-batch of a run. */
  start(): DataPosition {
    return { seed: this.seed, epoch: 0, index: 0, sequences: this.sequences };
  }

  /** The micro-batch at `position` and the position after it. */
  batchAt(position: DataPosition): { batch: TrainBatch; next: DataPosition } {
    this.checkPosition(position);
    const B = this.batch;
    const T = this.length;
    const inputIds = new BigInt64Array(B * T);
    const labels = new BigInt64Array(B * T);
    const sequences = new Int32Array(B);
    let { epoch, index } = position;
    for (let row = 0; row < B; row++) {
      const order = this.orderOf(position.seed, epoch);
      sequences[row] = order[index];
      this.writeSequence(order[index], inputIds, labels, row * T);
      index++;
      if (index === this.sequences) {
        epoch++;
        index = 0;
      }
    }
    return { batch: { inputIds, labels, sequences, source: this.fingerprint }, next: { seed: position.seed, epoch, index, sequences: this.sequences } };
  }

  /** The sequences at the given positions of the whole order (text order) as one batch: rows past ids.length are empty (labels −1). */
  batchOfSequences(ids: ArrayLike<number>): TrainBatch {
    const B = this.batch;
    const T = this.length;
    if (ids.length > B) throw invalid(`A batch holds ${B} sequences; ${ids.length} were asked for.`);
    const inputIds = new BigInt64Array(B * T).fill(BigInt(PAD_INPUT));
    const labels = new BigInt64Array(B * T).fill(-1n);
    const sequences = new Int32Array(B).fill(-1);
    for (let row = 0; row < ids.length; row++) {
      const k = ids[row];
      if (!Number.isSafeInteger(k) || k < 0 || k >= this.sequences) throw invalid(`Sequence ${k} is not one of the text's ${this.sequences} sequences.`);
      sequences[row] = k;
      this.writeSequence(k, inputIds, labels, row * T);
    }
    return { inputIds, labels, sequences, source: this.fingerprint };
  }

  /** All sequences once, in text order, B per batch; the last batch's missing rows have labels −1 only (for held-out loss). */
  *inOrder(): Generator<TrainBatch> {
    const B = this.batch;
    for (let first = 0; first < this.sequences; first += B) {
      yield this.batchOfSequences(Array.from({ length: Math.min(B, this.sequences - first) }, (_, row) => first + row));
    }
  }

  /** Sequence k into one row of a batch: inputs stream[kT .. kT+T), labels stream[kT+1 .. kT+T], padded past the end. */
  private writeSequence(k: number, inputIds: BigInt64Array, labels: BigInt64Array, offset: number): void {
    const T = this.length;
    const start = k * T;
    for (let t = 0; t < T; t++) {
      const i = start + t;
      inputIds[offset + t] = BigInt(i < this.tokens ? this.stream[i] : PAD_INPUT);
      labels[offset + t] = i + 1 < this.tokens ? BigInt(this.stream[i + 1]) : -1n;
    }
  }

  /** Epoch `epoch`'s permutation of the sequences (the last one computed is kept). */
  private orderOf(seed: number, epoch: number): Uint32Array {
    if (this.permutation?.epoch === epoch && this.permutation.seed === seed) return this.permutation.order;
    const order = new Uint32Array(this.sequences);
    for (let i = 0; i < order.length; i++) order[i] = i;
    const rng = mulberry32(epochSeed(seed, epoch));
    for (let i = order.length - 1; i > 0; i--) {
      const j = rng.below(i + 1);
      const t = order[i];
      order[i] = order[j];
      order[j] = t;
    }
    this.permutation = { seed, epoch, order };
    return order;
  }

  private checkPosition(p: DataPosition): void {
    const ok = typeof p === 'object' && p !== null && Number.isSafeInteger(p.seed) && Number.isSafeInteger(p.epoch) && p.epoch >= 0
      && Number.isSafeInteger(p.index) && p.index >= 0;
    if (!ok) throw invalid(`The data position ${JSON.stringify(p)} is not one this training data wrote.`);
    if (p.sequences !== this.sequences) {
      throw invalid(
        `The data position belongs to a text of ${p.sequences} sequences, but this text has ${this.sequences} (of ${this.length} tokens). `
        + 'The training text, tokenizer or sequence length changed since the checkpoint: resume with the same settings, or start again.',
        { positionSequences: p.sequences, sequences: this.sequences },
      );
    }
    if (p.index >= this.sequences) throw invalid(`The data position's index ${p.index} lies past the ${this.sequences} sequences of the text.`);
  }
}
