/**
 * Whether a held-out (evaluation) text is inside a training text: the paragraphs both hold. A model
 * trained on its own evaluation text scores a perplexity that says nothing about other text, so a
 * distillation or fine-tune whose two texts share paragraphs is reported with a warning.
 *
 * Paragraphs are compared after collapsing whitespace; ones shorter than MIN_PARAGRAPH_CHARS are left
 * out (a heading or "The end." repeats in any two texts of a kind). The training text is streamed and
 * only a 53-bit hash of each paragraph is kept, so a large training text costs 8 bytes per paragraph.
 */
import path from 'node:path';
import { throwIfAborted } from '../errors.ts';
import { readDocuments } from './text-file.ts';

/** Paragraphs shorter than this (after collapsing whitespace) are not compared. */
export const MIN_PARAGRAPH_CHARS = 32;

export interface TextOverlap {
  /** Paragraphs of the held-out text that were compared (long enough). */
  evalParagraphs: number;
  /** How many of them the training text holds too. */
  shared: number;
  /** shared / evalParagraphs (0 when nothing was compared). */
  fraction: number;
  /** The first few shared paragraphs, cut to 80 characters, to show the user. */
  examples: string[];
  /** Both paths name the same file. */
  sameFile: boolean;
}

const normalize = (p: string): string => p.replace(/\s+/g, ' ').trim();

/**
 * A 53-bit FNV-style hash of a string (two 32-bit FNV-1a lanes with different offsets): collisions among
 * a few million paragraphs are unlikely enough for a warning.
 */
export function paragraphHash(s: string): number {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ 0x5bd1e995;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 15;
  }
  return (a >>> 0) * 0x200000 + ((b >>> 0) & 0x1fffff);
}

/** The paragraphs of `evalText` that `trainText` also holds. */
export async function textOverlap(trainText: string, evalText: string, signal?: AbortSignal): Promise<TextOverlap> {
  const sameFile = path.resolve(trainText) === path.resolve(evalText);
  const seen = new Set<number>();
  let n = 0;
  for await (const doc of readDocuments(trainText)) {
    const p = normalize(doc);
    if (p.length >= MIN_PARAGRAPH_CHARS) seen.add(paragraphHash(p));
    if (++n % 4096 === 0) throwIfAborted(signal);
  }
  let evalParagraphs = 0;
  let shared = 0;
  const examples: string[] = [];
  for await (const doc of readDocuments(evalText)) {
    const p = normalize(doc);
    if (p.length < MIN_PARAGRAPH_CHARS) continue;
    evalParagraphs++;
    if (seen.has(paragraphHash(p))) {
      shared++;
      if (examples.length < 3) examples.push(p.length > 80 ? `${p.slice(0, 79)}…` : p);
    }
  }
  return { evalParagraphs, shared, fraction: evalParagraphs ? shared / evalParagraphs : 0, examples, sameFile };
}

/** The warning listed with a result whose evaluation text is inside its training text, or null when they do not overlap. */
export function overlapWarning(o: TextOverlap, trainText: string, evalText: string): string | null {
  if (o.sameFile) {
    return `The evaluation text is the training text (${path.basename(trainText)}): the perplexity after training measures memory, not quality. Evaluate on a text the model was not trained on.`;
  }
  if (o.shared === 0) return null;
  const pct = (100 * o.fraction).toFixed(o.fraction < 0.01 ? 2 : 1);
  return `${o.shared} of the ${o.evalParagraphs} paragraphs of the evaluation text ${path.basename(evalText)} (${pct} %) are also in the training text ${path.basename(trainText)}: the perplexity after training flatters the result. Remove them from one of the texts.`;
}
