// Bad Hugging Face folders: each refused with an error that names the problem, before any output exists.
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WhittleError } from '../../../main/engine/errors.ts';
import { importHuggingFace } from '../../../main/engine/interop/import-hf.ts';
import { readSafetensorsHeader } from '../../../main/engine/interop/safetensors.ts';
import { tempDir } from '../../helpers/fixtures.ts';
import { readLlama2c, writeHfFolder, type Llama2cCheckpoint } from '../../helpers/llama2c-hf.ts';

const tmp = tempDir('whittle-import-bad-');
let ckpt: Llama2cCheckpoint;
let n = 0;

beforeAll(() => { ckpt = readLlama2c(); });
afterAll(() => tmp.cleanup());

async function folder(opts: Parameters<typeof writeHfFolder>[2] = {}, c = ckpt): Promise<string> {
  const dir = path.join(tmp.dir, `hf-${n++}`);
  await writeHfFolder(dir, c, opts);
  return dir;
}

/** Imports `dir`, expects a WhittleError, checks nothing was written, returns the error. */
async function refused(dir: string): Promise<WhittleError> {
  const out = path.join(tmp.dir, `out-${n++}`);
  const err = await importHuggingFace(dir, out).then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(WhittleError);
  expect(existsSync(out)).toBe(false);
  expect(readdirSync(tmp.dir).filter((f) => f.startsWith(path.basename(out)))).toEqual([]);
  return err as WhittleError;
}

/** A safetensors file from a header object and data bytes, as written (the header may lie). */
function rawSafetensors(file: string, header: Record<string, unknown>, data: Uint8Array): void {
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(file, Buffer.concat([len, json, data]));
}

describe('import refuses bad Hugging Face folders before writing anything', () => {
  it('a folder without config.json', async () => {
    const dir = await folder();
    rmSync(path.join(dir, 'config.json'));
    const e = await refused(dir);
    expect(e.code).toBe('INVALID_INPUT');
    expect(e.message).toContain('has no config.json');
  });

  it('an unknown model_type, named with the supported list', async () => {
    const dir = await folder({ config: { model_type: 'falcon' } });
    const e = await refused(dir);
    expect(e.code).toBe('UNSUPPORTED_MODEL');
    expect(e.message).toContain("model_type 'falcon'");
    expect(e.message).toContain('llama, mistral, qwen2, qwen3');
  });

  it('unsupported config fields, each named', async () => {
    const yarn = await refused(await folder({ config: { rope_scaling: { rope_type: 'yarn', factor: 4 } } }));
    expect(yarn.message).toContain("rope_scaling type 'yarn'");
    const act = await refused(await folder({ config: { hidden_act: 'gelu', mlp_bias: true } }));
    expect(act.message).toContain("hidden_act 'gelu'");
    expect(act.message).toContain('mlp_bias');
  });

  it('a missing shard', async () => {
    const dir = await folder({ shards: 2 });
    rmSync(path.join(dir, 'model-00002-of-00002.safetensors'));
    const e = await refused(dir);
    expect(e.code).toBe('NOT_FOUND');
    expect(e.message).toContain('model-00002-of-00002.safetensors');
  });

  it('weights that do not match config.json', async () => {
    const e = await refused(await folder({ config: { intermediate_size: 256 } }));
    expect(e.message).toContain("'model.layers.0.mlp.gate_proj.weight' has shape [172, 64], config.json implies [256, 64]");
  });

  describe('a safetensors header that lies', () => {
    const data = new Uint8Array(64);
    const cases: [string, Record<string, unknown>, string][] = [
      ['an offset past the end', { a: { dtype: 'F32', shape: [16], data_offsets: [0, 64] }, b: { dtype: 'F32', shape: [4], data_offsets: [64, 80] } }, "tensor 'b' ends at byte 80 of the data, past its end (64 bytes)"],
      ['overlapping tensors', { a: { dtype: 'F32', shape: [8], data_offsets: [0, 32] }, b: { dtype: 'F32', shape: [12], data_offsets: [16, 64] } }, "tensor 'b' overlaps the tensor before it"],
      ['a gap', { a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] }, b: { dtype: 'F32', shape: [8], data_offsets: [32, 64] } }, "there is a gap before tensor 'b'"],
      ['an unknown dtype', { a: { dtype: 'F8_E9M9', shape: [64], data_offsets: [0, 64] } }, "tensor 'a' has dtype \"F8_E9M9\""],
      ['a dtype whose size disagrees with the bytes', { a: { dtype: 'F16', shape: [16], data_offsets: [0, 64] } }, "tensor 'a' spans 64 bytes but its shape [16] of F16 needs 32"],
    ];
    for (const [what, header, message] of cases) {
      it(what, async () => {
        const dir = await folder();
        rawSafetensors(path.join(dir, 'model.safetensors'), header, data);
        const e = await refused(dir);
        expect(e.code).toBe('MODEL_PARSE');
        expect(e.message).toContain(message);
        await expect(readSafetensorsHeader(path.join(dir, 'model.safetensors'))).rejects.toThrow(message);
      });
    }
  });

  it('a tokenizer with more ids than vocab_size, naming what differs; padding rows are fine', async () => {
    const cut = (rows: number): Llama2cCheckpoint => {
      const tensors = new Map(ckpt.tensors);
      const e = ckpt.tensors.get('model.embed_tokens.weight')!;
      const values = new Float32Array(rows * ckpt.dim);
      values.set(e.values.subarray(0, Math.min(rows, ckpt.vocab) * ckpt.dim));
      tensors.set('model.embed_tokens.weight', { shape: [rows, ckpt.dim], values });
      return { ...ckpt, vocab: rows, tensors };
    };
    const e = await refused(await folder({}, cut(500)));
    expect(e.code).toBe('INVALID_INPUT');
    expect(e.message).toContain('ids up to 511');
    expect(e.message).toContain('vocab_size is 500');
    const padded = await folder({}, cut(520));
    const r = await importHuggingFace(padded, path.join(tmp.dir, 'out-padded'));
    expect(r.parameters).toBe(260_032 + 8 * 64);
  });
});
