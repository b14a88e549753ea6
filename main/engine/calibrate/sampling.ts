/**
 * Calibration samples: N sequences of exactly L token ids drawn reproducibly (seeded) from a user's text.
 *
 * The text is never tokenized whole when it is long (the pure-JS tokenizer takes ~7 µs per character
 * without a fast pre-tokenizer). Instead:
 *   1. tokens per character is measured on a few probe chunks spread over the text (the whole text when it
 *      is short), giving the capacity estimate ≈ characters · tokens/char / L sequences;
 *   2. each sample picks a random character offset (mulberry32 seeded by `seed`), moves forward to the
 *      next paragraph start (blank line; else line start; else word start), tokenizes a chunk of a few KB
 *      from there, cut at whitespace — with BOS first when the tokenizer adds one by default — and keeps
 *      the first L ids. The chunk is grown when it yields too few tokens; a start too close to the end of
 *      the text is drawn again. Starts already used are drawn again, so samples do not repeat.
 * Samples may overlap each other (as GPTQ's random windows do); the capacity check asks for N·L tokens.
 *
 * Restricting the text: `fromEnd` (a fraction in (0, 1]) keeps only the last part of the text, from the
 * first paragraph start inside it — e.g. 0.5 keeps calibration clear of an evaluation that reads the
 * first paragraphs. A caller may equally pass any slice of the text it likes.
 */
import { WhittleError } from '../errors.ts';
import type { TextTokenizer } from '../data/tokenizer.ts';
import { mulberry32 } from './prng.ts';

export interface SampleOptions {
  /** N: number of sequences. */
  samples: number;
  /** L: tokens per sequence (BOS included when the tokenizer adds one). */
  length: number;
  seed: number;
  /** Use only the last `fromEnd` fraction of the text, from a paragraph start (default 1: all of it). */
  fromEnd?: number;
  /** How messages name the text (e.g. its file name). */
  label?: string;
}

export interface TokenEstimate {
  /** Characters of the region sampled from. */
  characters: number;
  tokensPerCharacter: number;
  /** Estimated tokens in the region (exact when `exact`). */
  tokens: number;
  exact: boolean;
  /** About how many sequences of L tokens the region holds (non-overlapping). */
  sequences: number;
}

/** At or below this many characters the region is tokenized whole (exact count). */
const EXACT_BELOW = 16_384;
const PROBES = 8;
const PROBE_CHARS = 4096;
/** Tokens tokenized beyond L so that cutting the chunk cannot change the first L ids. */
const MARGIN_TOKENS = 8;
const ATTEMPTS_PER_SAMPLE = 64;
/** How far forward a start looks for a paragraph/line/word boundary. */
const SNAP_WINDOW = 16_384;

/** The part of `text` calibration samples from (see `fromEnd`). */
export function calibrationRegion(text: string, fromEnd = 1): string {
  if (!(fromEnd > 0 && fromEnd <= 1)) {
    throw new WhittleError('INVALID_INPUT', `fromEnd must be a fraction in (0, 1]; got ${fromEnd}.`, { fromEnd });
  }
  if (fromEnd === 1) return text;
  const cut = Math.floor(text.length * (1 - fromEnd));
  return text.slice(snapStart(text, cut));
}

/**
 * The next paragraph start at or after `offset` (else line start, else word start, else `offset`);
 * with `wordsOnly`, the next word start (used once paragraph starts keep repeating).
 */
function snapStart(text: string, offset: number, wordsOnly = false): number {
  if (offset <= 0) return 0;
  const window = text.slice(offset - 1, offset + SNAP_WINDOW);
  if (!wordsOnly) {
    const para = /\n[ \t]*\n\s*/.exec(window);
    if (para && para.index + para[0].length < window.length) return offset - 1 + para.index + para[0].length;
    const line = /\n\s*/.exec(window);
    if (line && line.index + line[0].length < window.length) return offset - 1 + line.index + line[0].length;
  }
  const word = /\s+/.exec(window);
  if (word && word.index + word[0].length < window.length) return offset - 1 + word.index + word[0].length;
  return offset;
}

/** Cuts a chunk that ends inside the text back to its last whitespace, so its last word is whole. */
function cutAtWhitespace(chunk: string): string {
  for (let i = chunk.length - 1; i > chunk.length / 2; i--) {
    const c = chunk.charCodeAt(i);
    if (c === 32 || c === 10 || c === 9 || c === 13) return chunk.slice(0, i);
  }
  return chunk;
}

const bosCount = (tokenizer: TextTokenizer): number => (tokenizer.addBosByDefault && tokenizer.bosId !== null ? 1 : 0);

/** Tokens per character of `region`: exact for short texts, else from probes spread over it. */
export function estimateTokens(region: string, tokenizer: TextTokenizer, length: number): TokenEstimate {
  const characters = region.length;
  let tokens: number;
  let chars: number;
  const exact = characters <= EXACT_BELOW;
  if (exact) {
    tokens = tokenizer.encode(region, { addBos: false }).length;
    chars = characters;
  } else {
    tokens = 0;
    chars = 0;
    for (let p = 0; p < PROBES; p++) {
      const at = Math.max(0, Math.floor(((p + 0.5) * characters) / PROBES) - PROBE_CHARS / 2);
      const start = snapStart(region, at);
      const piece = cutAtWhitespace(region.slice(start, start + PROBE_CHARS));
      tokens += tokenizer.encode(piece, { addBos: false }).length;
      chars += piece.length;
    }
  }
  const tokensPerCharacter = chars > 0 ? tokens / chars : 0;
  const total = exact ? tokens : Math.round(characters * tokensPerCharacter);
  const perSequence = Math.max(1, length - bosCount(tokenizer));
  return { characters, tokensPerCharacter, tokens: total, exact, sequences: Math.floor(total / perSequence) };
}

function tooShort(label: string | undefined, estimate: Pick<TokenEstimate, 'sequences' | 'tokens'>, samples: number, length: number): WhittleError {
  const name = label ? `The calibration text ${label}` : 'The calibration text';
  return new WhittleError(
    'INVALID_INPUT',
    `${name} yields about ${estimate.sequences} sequence${estimate.sequences === 1 ? '' : 's'} of ${length} tokens; ${samples} ${samples === 1 ? 'was' : 'were'} requested. Use a longer text, fewer samples or a shorter length.`,
    { sequences: estimate.sequences, tokens: estimate.tokens, samples, length },
  );
}

function checkOptions(opts: SampleOptions): void {
  if (!Number.isInteger(opts.samples) || opts.samples < 1) throw new WhittleError('INVALID_INPUT', `The number of calibration samples must be a whole number ≥ 1; got ${opts.samples}.`);
  if (!Number.isInteger(opts.length) || opts.length < 2) throw new WhittleError('INVALID_INPUT', `The calibration length must be a whole number of tokens ≥ 2; got ${opts.length}.`);
  if (!Number.isInteger(opts.seed) || opts.seed < 0) throw new WhittleError('INVALID_INPUT', `The calibration seed must be a whole number ≥ 0; got ${opts.seed}.`);
}

/**
 * Checks that the text holds enough tokens for N sequences of L (INVALID_INPUT otherwise) without
 * sampling; returns the estimate. Cheap: a few KB are tokenized.
 */
export function checkCalibrationCapacity(text: string, tokenizer: TextTokenizer, opts: SampleOptions): TokenEstimate {
  checkOptions(opts);
  const region = calibrationRegion(text, opts.fromEnd);
  const estimate = estimateTokens(region, tokenizer, opts.length);
  if (estimate.sequences < opts.samples) throw tooShort(opts.label, estimate, opts.samples, opts.length);
  return estimate;
}

/** N sequences of exactly L token ids (see the header). Same seed → same samples. */
export function sampleCalibration(text: string, tokenizer: TextTokenizer, opts: SampleOptions): number[][] {
  const estimate = checkCalibrationCapacity(text, tokenizer, opts);
  const region = calibrationRegion(text, opts.fromEnd);
  const { samples: n, length: L } = opts;
  const rng = mulberry32(opts.seed);
  const charsPerToken = estimate.tokensPerCharacter > 0 ? 1 / estimate.tokensPerCharacter : 4;
  const firstChunk = Math.ceil((L + MARGIN_TOKENS) * charsPerToken * 1.25) + 64;
  const used = new Set<number>();
  const out: number[][] = [];

  for (let i = 0; i < n; i++) {
    let sample: number[] | null = null;
    for (let attempt = 0; attempt < ATTEMPTS_PER_SAMPLE && !sample; attempt++) {
      const start = snapStart(region, rng.below(region.length), attempt >= ATTEMPTS_PER_SAMPLE / 4);
      if (used.has(start) || start >= region.length) continue;
      let size = firstChunk;
      for (;;) {
        const end = start + size;
        const atEnd = end >= region.length;
        const chunk = atEnd ? region.slice(start) : cutAtWhitespace(region.slice(start, end));
        const ids = tokenizer.encode(chunk);
        if (ids.length >= L + MARGIN_TOKENS || (atEnd && ids.length >= L)) {
          sample = ids.slice(0, L);
          used.add(start);
          break;
        }
        if (atEnd) break; // too close to the end of the text: draw another start
        size *= 2;
      }
    }
    if (!sample) throw tooShort(opts.label, { sequences: Math.min(estimate.sequences, i), tokens: estimate.tokens }, n, L);
    out.push(sample);
  }
  return out;
}
