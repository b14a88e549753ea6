/**
 * `whittle quantize` end to end as a child process: the recipe it builds runs through the job system and
 * the engine process, and its output folder holds a model onnxruntime loads and runs.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Metric } from '../../preload/contract.ts';
import { openDecoder } from '../../main/engine/evaluate/decoder-session.ts';
import { readManifest } from '../../main/engine/rewrite/manifest.ts';
import { STORIES, tempDir } from '../helpers/fixtures.ts';
import { onlyJson, runCli } from './cli-process.ts';

let scratch: ReturnType<typeof tempDir>;
let home: string;

beforeAll(() => {
  scratch = tempDir('whittle-cli-quantize-');
  home = path.join(scratch.dir, 'home');
});
afterAll(() => scratch.cleanup());

interface QuantizeJson {
  experimentId: number;
  status: string;
  kind: string;
  outputDir: string;
  outputModel: string;
  original: Record<string, number>;
  result: Record<string, number>;
  metrics: Metric[];
  details: Record<string, unknown>;
}

describe('whittle quantize', () => {
  it('quantizes stories260K to int8, compares it with the original and prints one JSON document', async () => {
    const out = path.join(scratch.dir, 'int8');
    const r = await runCli([
      'quantize', STORIES.model, '--bits', '8', '--block-size', '32', '--eval-text', STORIES.text,
      '--window', '128', '--samples', '100', '--out', out, '--json', '--home', home,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const doc = onlyJson(r) as QuantizeJson;
    expect(doc).toMatchObject({ status: 'done', kind: 'quantize', outputDir: out, outputModel: path.join(out, 'model.onnx') });
    expect(doc.original.perplexity).toBeGreaterThan(1);
    expect(Math.abs(doc.result.perplexity / doc.original.perplexity - 1)).toBeLessThan(0.01);
    expect(doc.result.kl_mean).toBeGreaterThan(0);
    expect(doc.result.top1_agreement).toBeGreaterThan(90);
    expect(doc.result.bytes_on_disk).toBeLessThan(doc.original.bytes_on_disk);
    // The tokenizer was found beside the model.
    expect((doc.details.tokenizer as { path: string }).path).toBe(STORIES.tokenizer);
    expect((doc.details.samples as unknown[]).length).toBe(3);

    // The output folder: whittle.json with the metrics, and a model.onnx that onnxruntime loads and runs.
    expect((await readManifest(out)).metrics).toEqual(doc.metrics);
    const session = await ort.InferenceSession.create(path.join(out, 'model.onnx'));
    expect(session.inputNames).toContain('input_ids');
    await session.release();
    const decoder = await openDecoder(path.join(out, 'model.onnx'));
    const { logits } = await decoder.forward([1, 403, 407]);
    expect(logits.length).toBe(3 * decoder.vocabSize);
    expect(logits.every(Number.isFinite)).toBe(true);
    await decoder.release();
  });

  it('prints original | result | change for people, and the output folder', async () => {
    const out = path.join(scratch.dir, 'int4');
    const r = await runCli(['quantize', STORIES.model, '--bits', '4', '--keep', 'lm_head', '--keep', 'q_proj', '--out', out, '--home', home]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/original\s+result\s+change/);
    expect(r.stdout).toMatch(/size on disk\s+1\.04 MiB\s+\d+ KiB\s+-\d+(\.\d+)? %/);
    expect(r.stdout).toMatch(/bits per weight\s+32\s+[\d.]+\s+-\d+(\.\d+)? %/);
    expect(r.stdout).toContain(`output folder: ${out}`);
    expect(r.stdout).toContain('Greedy generations (original / result):');
    const manifest = await readManifest(out);
    expect(manifest.step).toMatchObject({ bits: 4, keep: ['lm_head', 'q_proj'] });
    expect(manifest.weights.some((w) => w.status === 'skipped' && /q_proj/.test(w.name))).toBe(true);
  });

  it('rejects bad flags with exit 2 and a sentence about the flag, before any job', async () => {
    const cases: [string[], RegExp][] = [
      [['--bits', '3'], /--bits must be one of 2, 4, 8; got "3"/],
      [['--block-size', '20'], /--block-size: block size must be a power of two from 16 to 256/],
      [['--accuracy-level', '7'], /--accuracy-level must be at most 4, got 7/],
      [['--format', 'gguf'], /--format must be one of matmulnbits, qdq/],
      [['--window', '64'], /--window only applies with --eval-text/],
      [['--keep', '(unclosed'], /--keep "\(unclosed" is not a valid regular expression/],
      [['--bitz', '4'], /Unknown option "--bitz" for whittle quantize\.\nDid you mean --bits\?/],
      [['--eval-text', path.join(scratch.dir, 'missing.txt')], /The evaluation text file .*missing\.txt does not exist/],
    ];
    for (const [flags, message] of cases) {
      const r = await runCli(['quantize', STORIES.model, ...flags, '--home', home]);
      expect(r.code, `${flags.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr, flags.join(' ')).toMatch(message);
    }
    // A taken output folder is refused up front, in JSON mode as an error document.
    const taken = path.join(scratch.dir, 'taken');
    mkdirSync(taken);
    writeFileSync(path.join(taken, 'keep-me.txt'), 'mine');
    const r = await runCli(['quantize', STORIES.model, '--out', taken, '--json', '--home', home]);
    expect(r.code).toBe(2);
    expect((onlyJson(r) as { error: { code: string; message: string } }).error).toMatchObject({ code: 'INVALID_INPUT', message: expect.stringContaining('already exists and is not empty') });
    expect(existsSync(path.join(taken, 'keep-me.txt'))).toBe(true);
  });
});
