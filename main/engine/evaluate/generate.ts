/**
 * Greedy generation for samples: the prompt (with BOS where the tokenizer adds it), then the most likely
 * token each step through the decoder's cache, until EOS or maxNewTokens.
 */
import type { TextTokenizer } from '../data/tokenizer.ts';
import { throwIfAborted } from '../errors.ts';
import type { Decoder } from './decoder-session.ts';

export interface Generation {
  prompt: string;
  /** The prompt followed by the generated text. */
  text: string;
  /** Only the generated text. */
  completion: string;
  promptTokens: number;
  newTokens: number[];
  stoppedAtEos: boolean;
}

/** Index of the largest of `count` values from `offset` (the first one on ties). */
export function argmax(values: Float32Array, offset: number, count: number): number {
  let best = 0;
  let bestValue = -Infinity;
  for (let i = 0; i < count; i++) {
    const v = values[offset + i];
    if (v > bestValue) { bestValue = v; best = i; }
  }
  return best;
}

export async function generate(decoder: Decoder, tokenizer: TextTokenizer, prompt: string, maxNewTokens: number, signal?: AbortSignal): Promise<Generation> {
  const ids = tokenizer.encode(prompt);
  if (ids.length === 0) ids.push(tokenizer.bosId ?? 0);
  // Ids past the tokenizer's vocabulary (padded logits) could not be decoded, so they are never chosen.
  const choices = Math.min(decoder.vocabSize, tokenizer.vocabSize);
  const vocab = decoder.vocabSize;
  const newTokens: number[] = [];
  let { logits, state } = await decoder.forward(ids);
  let offset = logits.length - vocab;
  let stoppedAtEos = false;
  while (newTokens.length < maxNewTokens) {
    const next = argmax(logits, offset, choices);
    if (next === tokenizer.eosId) { stoppedAtEos = true; break; }
    newTokens.push(next);
    if (newTokens.length === maxNewTokens) break;
    throwIfAborted(signal);
    ({ logits, state } = await decoder.forward([next], state));
    offset = 0;
  }
  const completion = tokenizer.decode(newTokens);
  return { prompt, text: tokenizer.decode([...ids, ...newTokens]), completion, promptTokens: ids.length, newTokens, stoppedAtEos };
}
