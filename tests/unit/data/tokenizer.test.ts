import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readTextFile, splitDocuments } from '../../../main/engine/data/text-file.ts';
import { checkTokenizerFitsModel, loadTokenizer } from '../../../main/engine/data/tokenizer.ts';
import { WhittleError } from '../../../main/engine/errors.ts';
import { fixture, STORIES, tempDir } from '../../helpers/fixtures.ts';

const tmp = tempDir();
afterAll(() => tmp.cleanup());

/**
 * llama2.c's own encoder (run.c `encode`), as the plain reference: BOS, a dummy-prefix space, one token per
 * UTF-8 code point (bytes + 3 when the code point is not a piece), then repeatedly merge the adjacent pair
 * whose concatenation is the highest-scoring piece.
 */
function llama2cEncoder(tokenizerBin: string, vocabSize: number): (text: string, bos: boolean) => number[] {
  const buf = readFileSync(tokenizerBin);
  const pieces: string[] = [];
  const scores: number[] = [];
  let pos = 4; // max_token_length
  for (let i = 0; i < vocabSize; i++) {
    scores.push(buf.readFloatLE(pos));
    const len = buf.readInt32LE(pos + 4);
    pieces.push(buf.subarray(pos + 8, pos + 8 + len).toString('utf8'));
    pos += 8 + len;
  }
  const lookup = new Map(pieces.map((p, i) => [p, i]));
  return (text, bos) => {
    const tokens: number[] = bos ? [1] : [];
    if (text.length > 0) tokens.push(lookup.get(' ')!);
    for (const cp of text) {
      const id = lookup.get(cp);
      if (id !== undefined) tokens.push(id);
      else for (const byte of Buffer.from(cp, 'utf8')) tokens.push(byte + 3);
    }
    for (;;) {
      let best = -1e10, bestId = -1, bestIdx = -1;
      for (let i = 0; i + 1 < tokens.length; i++) {
        const id = lookup.get(pieces[tokens[i]] + pieces[tokens[i + 1]]);
        if (id !== undefined && scores[id] > best) { best = scores[id]; bestId = id; bestIdx = i; }
      }
      if (bestIdx === -1) break;
      tokens.splice(bestIdx, 2, bestId);
    }
    return tokens;
  };
}

async function failure(p: Promise<unknown>): Promise<WhittleError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(WhittleError);
    return e as WhittleError;
  }
  throw new Error('expected a failure');
}

describe('loadTokenizer', () => {
  it('reads stories260K: 512 tokens, BOS <s> = 1 added by default, EOS </s> = 2', async () => {
    const t = await loadTokenizer(STORIES.tokenizer);
    expect({ vocab: t.vocabSize, bos: t.bosId, eos: t.eosId, addBos: t.addBosByDefault }).toEqual({ vocab: 512, bos: 1, eos: 2, addBos: true });
    const ids = t.encode('Once upon a time');
    expect(ids[0]).toBe(1);
    expect(t.encode('Once upon a time', { addBos: false })).toEqual(ids.slice(1));
    expect(t.decode(ids)).toBe('Once upon a time');
  });

  it('encodes TinyStories exactly like llama2.c’s encoder (including byte fallback)', async () => {
    const t = await loadTokenizer(STORIES.tokenizer);
    const reference = llama2cEncoder(fixture('stories260K', 'tok512.bin'), 512);
    const docs = splitDocuments(await readTextFile(STORIES.text)).slice(0, 60);
    docs.push('Tom said: “naïve café” — 🙂\tdone');
    for (const doc of docs) expect(t.encode(doc, { addBos: true })).toEqual(reference(doc, true));
  });

  it('reads a GPT-2 tokenizer.json without a model type and without tokenizer_config.json', async () => {
    const t = await loadTokenizer(fixture('tokenizers', 'gpt2', 'tokenizer.json'));
    expect(t.vocabSize).toBe(50257);
    expect(t.bosId).toBeNull();
    expect(t.eosId).toBe(50256);
    expect(t.encode('Hello world')).toEqual([15496, 995]);
  });

  it('rejects JSON files that are not tokenizers', async () => {
    // A model config.json: it has a "model" section, but of a transformers model.
    let e = await failure(loadTokenizer(fixture('onnx', 'ortgenai', 'tiny-random-gpt2-fp32', 'config.json')));
    expect(e.code).toBe('INVALID_INPUT');
    expect(e.message).toContain('config.json is not a Hugging Face tokenizer.json (its model type gpt2 is not one of BPE, WordPiece, Unigram)');
    const file = path.join(tmp.dir, 'package.json');
    writeFileSync(file, JSON.stringify({ name: 'x', version: '1.0.0' }));
    e = await failure(loadTokenizer(file));
    expect(e.code).toBe('INVALID_INPUT');
    expect(e.message).toContain('package.json is not a Hugging Face tokenizer.json (it has no "model" section)');
  });

  it('rejects a file that is not JSON', async () => {
    const e = await failure(loadTokenizer(STORIES.text));
    expect(e.code).toBe('INVALID_INPUT');
    expect(e.message).toContain('tinystories_val_head.txt is not a Hugging Face tokenizer.json (it is not JSON)');
  });

  it('rejects an unsupported model type', async () => {
    const dir = path.join(tmp.dir, 'wordlevel');
    mkdirSync(dir);
    const file = path.join(dir, 'tokenizer.json');
    writeFileSync(file, JSON.stringify({ model: { type: 'WordLevel', vocab: { a: 0 }, unk_token: 'a' } }));
    const e = await failure(loadTokenizer(file));
    expect(e.code).toBe('INVALID_INPUT');
    expect(e.message).toContain('is not a Hugging Face tokenizer.json (its model type WordLevel is not one of BPE, WordPiece, Unigram)');
  });

  it('names a missing tokenizer', async () => {
    const e = await failure(loadTokenizer(path.join(tmp.dir, 'missing', 'tokenizer.json')));
    expect(e.code).toBe('NOT_FOUND');
  });
});

describe('checkTokenizerFitsModel', () => {
  it('refuses the GPT-2 tokenizer for the stories model, with both numbers', async () => {
    const gpt2 = await loadTokenizer(fixture('tokenizers', 'gpt2', 'tokenizer.json'));
    let error: unknown;
    try { checkTokenizerFitsModel(gpt2, 512); } catch (e) { error = e; }
    expect(error).toBeInstanceOf(WhittleError);
    expect((error as WhittleError).code).toBe('INVALID_INPUT');
    expect((error as WhittleError).message).toMatch(/^The tokenizer has 50257 tokens but the model predicts 512: they do not belong together\./);
  });

  it('accepts a tokenizer no larger than the logits', async () => {
    const t = await loadTokenizer(STORIES.tokenizer);
    expect(() => checkTokenizerFitsModel(t, 512)).not.toThrow();
    expect(() => checkTokenizerFitsModel(t, 1024)).not.toThrow();
  });
});
