/** `whittle export … --format gguf` as a child process: the file, the JSON result, and the refusals. */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadTokenizer } from '../../main/engine/data/tokenizer.ts';
import { openDecoder } from '../../main/engine/evaluate/decoder-session.ts';
import { generate } from '../../main/engine/evaluate/generate.ts';
import { evaluatePerplexity } from '../../main/engine/evaluate/perplexity.ts';
import { readGguf } from '../../main/engine/interop/gguf-reader.ts';
import { llamaCppUnavailable } from '../../main/engine/interop/llama-cpp.ts';
import { quietContext } from '../../main/engine/job-context.ts';
import { fixture, STORIES, tempDir } from '../helpers/fixtures.ts';
import { onlyJson, runCli } from './cli-process.ts';

const tmp = tempDir('whittle-cli-export-');
const unavailable = await llamaCppUnavailable();
const withLlama = unavailable ? it.skip : it;
afterAll(() => tmp.cleanup());

describe('whittle export --format gguf', () => {
  it('writes a Q4_0 GGUF of stories260K; --json reports each tensor type and the F16 fallback of ffn_down', async () => {
    const out = path.join(tmp.dir, 'stories-q4_0.gguf');
    const r = await runCli(['export', STORIES.model, '--format', 'gguf', '--type', 'q4_0', '--out', out, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const doc = onlyJson(r) as { path: string; bytes: number; tensorTypes: Record<string, string>; notes: string[] };
    expect(doc.path).toBe(out);
    expect(statSync(out).size).toBe(doc.bytes);
    expect(doc.tensorTypes['blk.0.attn_q.weight']).toBe('Q4_0');
    expect(doc.tensorTypes['blk.0.ffn_down.weight']).toBe('F16'); // rows of 172
    expect(doc.tensorTypes['blk.0.attn_norm.weight']).toBe('F32');
    expect(doc.notes.join('\n')).toMatch(/ffn_down.*172.*F16/);
    const g = await readGguf(out);
    expect(g.metadata.get('general.file_type')).toBe(2);
    expect(readdirSync(tmp.dir).filter((f) => f.endsWith('.partial'))).toEqual([]);
  });

  withLlama('--evaluate: llama.cpp perplexity of the F32 file equals onnxruntime\'s on the same samples; a generation', async () => {
    const out = path.join(tmp.dir, 'stories-f32.gguf');
    const r = await runCli(['export', STORIES.model, '--format', 'gguf', '--type', 'f32', '--out', out, '--evaluate', STORIES.text, '--samples', '10', '--prompt', 'Once upon a time', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const doc = onlyJson(r) as { llamaCpp: { perplexity: { perplexity: number; predictedTokens: number }; tokensPerSecond: number; generations: { completion: string }[] } };
    const d = await openDecoder(STORIES.model);
    try {
      const tokenizer = await loadTokenizer(STORIES.tokenizer);
      const protocol = { protocol: 'documents' as const, window: 256, maxSamples: 10, minTokens: 16 };
      const ort = await evaluatePerplexity(d, tokenizer, readFileSync(STORIES.text, 'utf8'), protocol, quietContext(tmp.dir));
      expect(doc.llamaCpp.perplexity.predictedTokens).toBe(ort.predictedTokens);
      expect(Math.abs(doc.llamaCpp.perplexity.perplexity / ort.perplexity - 1)).toBeLessThan(1e-3);
      expect(doc.llamaCpp.generations[0].completion).toBe((await generate(d, tokenizer, 'Once upon a time', 64)).completion);
      expect(doc.llamaCpp.tokensPerSecond).toBeGreaterThan(0);
    } finally {
      await d.release();
    }
  }, 60_000);

  it('without --type: a usage error (exit 2) naming the types', async () => {
    const r = await runCli(['export', STORIES.model, '--format', 'gguf', '--out', path.join(tmp.dir, 'x.gguf'), '--json']);
    expect(r.code).toBe(2);
    expect((onlyJson(r) as { error: { message: string } }).error.message).toMatch(/f32, f16, q8_0, q4_0, q4_1/);
  });

  it('a GPT-2 graph is refused as not a Llama-family decoder, and nothing is written', async () => {
    const out = path.join(tmp.dir, 'gpt2.gguf');
    const r = await runCli(['export', fixture('onnx', 'ortgenai', 'tiny-random-gpt2-fp32', 'past.onnx'), '--type', 'f16', '--out', out, '--json']);
    expect(r.code).toBe(2); // a model Whittle cannot handle: an input error
    const doc = onlyJson(r) as { error: { code: string; message: string } };
    expect(doc.error.code).toBe('UNSUPPORTED_MODEL');
    expect(doc.error.message).toMatch(/Llama-family/);
    expect(existsSync(out)).toBe(false);
  });
});
