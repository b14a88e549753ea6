/**
 * Greedy generation on a real ONNX decoder (a bigram table) with the stories tokenizer: a model whose
 * most likely token is always end-of-sequence generates nothing, which is a valid result.
 */
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadTokenizer } from '../../../main/engine/data/tokenizer.ts';
import { openDecoder } from '../../../main/engine/evaluate/decoder-session.ts';
import { generate } from '../../../main/engine/evaluate/generate.ts';
import { STORIES, tempDir } from '../../helpers/fixtures.ts';
import { writeBigramDecoder } from './bigram-decoder.ts';

const tmp = tempDir();
afterAll(() => tmp.cleanup());

/** A bigram model over `vocab` tokens whose every row prefers `favourite`. */
async function decoderPreferring(favourite: number, vocab: number, name: string) {
  const table = new Float32Array(vocab * vocab);
  for (let row = 0; row < vocab; row++) table[row * vocab + favourite] = 5;
  const file = path.join(tmp.dir, name);
  writeBigramDecoder(file, table, vocab);
  return openDecoder(file, { threads: 1 });
}

describe('generate', () => {
  it('returns an empty completion when the first greedy token is end-of-sequence', async () => {
    const tokenizer = await loadTokenizer(STORIES.tokenizer);
    expect(tokenizer.eosId).not.toBeNull();
    const decoder = await decoderPreferring(tokenizer.eosId!, tokenizer.vocabSize, 'eos-first.onnx');
    const g = await generate(decoder, tokenizer, 'Once upon a time', 8);
    expect(g.stoppedAtEos).toBe(true);
    expect(g.newTokens).toEqual([]);
    expect(g.completion).toBe('');
    expect(g.text).toBe(tokenizer.decode(tokenizer.encode('Once upon a time')));
    expect(g.text).toContain('Once upon a time');
  });

  it('decodes an empty list of ids to the empty string', async () => {
    const tokenizer = await loadTokenizer(STORIES.tokenizer);
    expect(tokenizer.decode([])).toBe('');
  });

  it('stops at maxNewTokens when end-of-sequence never wins', async () => {
    const tokenizer = await loadTokenizer(STORIES.tokenizer);
    const a = tokenizer.encode('a', { addBos: false }).at(-1)!;
    const decoder = await decoderPreferring(a, tokenizer.vocabSize, 'always-a.onnx');
    const g = await generate(decoder, tokenizer, 'Once', 3);
    expect(g.stoppedAtEos).toBe(false);
    expect(g.newTokens).toEqual([a, a, a]);
    expect(g.completion).toBe(tokenizer.decode([a, a, a]));
  });
});
