// `whittle import` as a child process: one JSON document describing the folder it wrote, which
// `whittle inspect` then reads as a Llama decoder with the Hugging Face cache; bad input exits 2 with no output.
import { existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ModelInspection } from '../../preload/contract.ts';
import { tempDir } from '../helpers/fixtures.ts';
import { readLlama2c, writeHfFolder } from '../helpers/llama2c-hf.ts';
import { onlyJson, runCli } from './cli-process.ts';

const tmp = tempDir('whittle-cli-import-');
afterAll(() => tmp.cleanup());

describe('whittle import', () => {
  it('imports a sharded bf16 folder as fp16 and inspect recognises a llama decoder', async () => {
    const hf = path.join(tmp.dir, 'hf');
    await writeHfFolder(hf, readLlama2c(), { dtype: 'BF16', shards: 2 });
    const out = path.join(tmp.dir, 'onnx');
    const r = await runCli(['import', hf, '--out', out, '--dtype', 'fp16', '--json']);
    expect(r.code).toBe(0);
    const doc = onlyJson(r) as { modelPath: string; modelType: string; parameters: number; dtype: string };
    expect(doc).toMatchObject({ modelType: 'llama', parameters: 260_032, dtype: 'fp16', modelPath: path.join(out, 'model.onnx') });

    const i = await runCli(['inspect', path.join(out, 'model.onnx'), '--json']);
    expect(i.code).toBe(0);
    const m = onlyJson(i) as ModelInspection;
    expect(m.kind).toBe('decoder-hf-cache');
    expect(m.decoder).toMatchObject({ layers: 5, kvHeads: 4, headSize: 8, vocabSize: 512 });
    expect(m.architecture?.family).toBe('llama');
  }, 60_000);

  it('a folder without config.json: exit 2, the reason, nothing written', async () => {
    const hf = path.join(tmp.dir, 'hf-bad');
    await writeHfFolder(hf, readLlama2c());
    rmSync(path.join(hf, 'config.json'));
    const out = path.join(tmp.dir, 'never');
    const r = await runCli(['import', hf, '--out', out, '--no-cache']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('has no config.json');
    expect(existsSync(out)).toBe(false);
  }, 60_000);
});
