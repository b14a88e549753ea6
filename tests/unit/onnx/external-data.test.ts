/**
 * External data safety (locations must stay inside the model's folder, missing or short files are typed
 * errors with pinned messages), aligned offsets, and atomic writes that leave a previous output intact.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isWhittleError } from '../../../main/engine/errors.ts';
import { DataType } from '../../../main/engine/onnx/dtype.ts';
import { encodeModel } from '../../../main/engine/onnx/encode.ts';
import type { ModelProto, TensorProto } from '../../../main/engine/onnx/proto-types.ts';
import { readModel } from '../../../main/engine/onnx/reader.ts';
import { makeTensor, readTensorBytes } from '../../../main/engine/onnx/tensor-data.ts';
import { EXTERNAL_ALIGNMENT, writeModel } from '../../../main/engine/onnx/writer.ts';
import { tempDir } from '../../helpers/fixtures.ts';
import { emptyGraph, modelOf, nodeOf, valueInfo } from './helpers.ts';

const tmp = tempDir('whittle-extdata-');
afterAll(() => tmp.cleanup());

let dirCount = 0;
function freshDir(): string {
  const d = path.join(tmp.dir, `case-${++dirCount}`);
  mkdirSync(d, { recursive: true });
  return d;
}

/** Y = X · W with W [4, 4] float32 (64 bytes). */
function matmulModel(w: TensorProto): ModelProto {
  return modelOf(emptyGraph({
    node: [nodeOf('MatMul', ['X', 'W'], ['Y'], 'mm')],
    initializer: [w],
    input: [valueInfo('X', DataType.float32, [1, 4])],
    output: [valueInfo('Y', DataType.float32, [1, 4])],
  }));
}

const W = makeTensor('W', DataType.float32, [4, 4], Float32Array.from({ length: 16 }, (_, i) => i - 7.5));

/** Writes model.onnx whose tensor W points at `location` (offset 0, length 64), bypassing the writer's checks. */
function modelPointingAt(dir: string, location: string, offset = 0): string {
  const bytes = encodeModel(matmulModel(W), { placement: () => ({ location, offset, length: 64 }) }).toBytes();
  const p = path.join(dir, 'model.onnx');
  writeFileSync(p, bytes);
  return p;
}

async function errorOf(p: string): Promise<{ code: string; message: string }> {
  try {
    await readModel(p);
  } catch (e) {
    if (!isWhittleError(e)) throw e;
    return { code: e.code, message: e.message };
  }
  throw new Error('read without error');
}

const weightBytes = Buffer.from((W.data as { bytes: Uint8Array }).bytes);

describe('external data locations', () => {
  it('reads a file beside the model and one in a subfolder', async () => {
    const dir = freshDir();
    mkdirSync(path.join(dir, 'weights'));
    writeFileSync(path.join(dir, 'weights', 'w.bin'), Buffer.concat([Buffer.alloc(4096), weightBytes]));
    const m = await readModel(modelPointingAt(dir, 'weights/w.bin', 4096));
    const t = m.proto.graph!.initializer[0];
    expect(t.data).toEqual({ kind: 'file', path: path.join(dir, 'weights', 'w.bin'), offset: 4096, length: 64 });
    expect(Buffer.from(await readTensorBytes(t)).equals(weightBytes)).toBe(true);
    expect(m.externalDataFiles).toEqual([path.join(dir, 'weights', 'w.bin')]);
  });

  it('refuses a location with ..', async () => {
    const dir = freshDir();
    writeFileSync(path.join(tmp.dir, 'secret.bin'), Buffer.alloc(64));
    expect(await errorOf(modelPointingAt(dir, '../secret.bin'))).toEqual({
      code: 'INVALID_INPUT',
      message: "model.onnx refers to external data outside its folder ('../secret.bin', tensor 'W'). Only files beside the model are allowed.",
    });
    expect((await errorOf(modelPointingAt(dir, 'weights\\..\\..\\secret.bin'))).code).toBe('INVALID_INPUT');
  });

  it('refuses an absolute location', async () => {
    const dir = freshDir();
    const abs = path.join(tmp.dir, 'secret.bin');
    expect(await errorOf(modelPointingAt(dir, abs))).toEqual({
      code: 'INVALID_INPUT',
      message: `model.onnx refers to external data by an absolute path ('${abs}', tensor 'W'). Only files beside the model are allowed: move the file next to the model and re-export with a relative location.`,
    });
    expect((await errorOf(modelPointingAt(dir, 'C:\\weights.bin'))).code).toBe('INVALID_INPUT');
  });

  it('refuses a symbolic link that leads outside the folder, accepts one that stays inside', async () => {
    const dir = freshDir();
    writeFileSync(path.join(tmp.dir, 'outside.bin'), weightBytes);
    symlinkSync(path.join(tmp.dir, 'outside.bin'), path.join(dir, 'link.bin'));
    expect(await errorOf(modelPointingAt(dir, 'link.bin'))).toEqual({
      code: 'INVALID_INPUT',
      message: "model.onnx refers to external data 'link.bin' that leads outside the model's folder (through a symbolic link). Copy the file beside the model instead.",
    });
    writeFileSync(path.join(dir, 'real.bin'), weightBytes);
    symlinkSync('real.bin', path.join(dir, 'inside.bin'));
    const m = await readModel(modelPointingAt(dir, 'inside.bin'));
    expect(Buffer.from(await readTensorBytes(m.proto.graph!.initializer[0])).equals(weightBytes)).toBe(true);
  });

  it('accepts the Hugging Face cache layout: model and data both linked into one blobs folder', async () => {
    const root = freshDir();
    mkdirSync(path.join(root, 'blobs'));
    mkdirSync(path.join(root, 'snapshots', 'rev'), { recursive: true });
    writeFileSync(path.join(root, 'blobs', 'data-blob'), weightBytes);
    modelPointingAt(path.join(root, 'blobs'), 'model.onnx.data');   // writes blobs/model.onnx
    symlinkSync('../../blobs/model.onnx', path.join(root, 'snapshots', 'rev', 'model.onnx'));
    symlinkSync('../../blobs/data-blob', path.join(root, 'snapshots', 'rev', 'model.onnx.data'));
    const m = await readModel(path.join(root, 'snapshots', 'rev', 'model.onnx'));
    expect(Buffer.from(await readTensorBytes(m.proto.graph!.initializer[0])).equals(weightBytes)).toBe(true);
  });

  it('names a missing data file and says to keep it beside the model', async () => {
    const dir = freshDir();
    expect(await errorOf(modelPointingAt(dir, 'model.onnx.data'))).toEqual({
      code: 'NOT_FOUND',
      message: "model.onnx keeps its weights in 'model.onnx.data', which is missing. Keep that file beside the model, in the same folder.",
    });
  });

  it('reports a data file too short for its tensors as truncated', async () => {
    const dir = freshDir();
    writeFileSync(path.join(dir, 'model.onnx.data'), weightBytes.subarray(0, 40));
    expect(await errorOf(modelPointingAt(dir, 'model.onnx.data'))).toEqual({
      code: 'MODEL_PARSE',
      message: "The external data file 'model.onnx.data' of model.onnx is truncated: tensor 'W' needs bytes 0 to 64 but the file has 40 bytes. Copy the file again.",
    });
  });
});

describe('writing external data', () => {
  it('puts every tensor at a 4096-byte aligned offset, zero padding between, relative location', async () => {
    const dir = freshDir();
    const sizes = [5, 1000, 4096, 3, 7000];
    const inits = sizes.map((n, i) => makeTensor(`t${i}`, DataType.float32, [n], Float32Array.from({ length: n }, (_, k) => k * 0.5 + i)));
    const graph = emptyGraph({
      node: inits.map((t, i) => nodeOf('Identity', [t.name!], [`o${i}`])),
      initializer: inits,
      output: inits.map((t, i) => valueInfo(`o${i}`, DataType.float32, [sizes[i]])),
    });
    const out = path.join(dir, 'm.onnx');
    const r = await writeModel(modelOf(graph), out, { externalData: 'all' });
    expect(r.externalTensors).toBe(5);
    const data = readFileSync(path.join(dir, 'm.onnx.data'));
    const again = await readModel(out);
    let end = 0;
    for (const [i, t] of again.proto.graph!.initializer.entries()) {
      const kv = Object.fromEntries(t.externalData.map((e) => [e.key, e.value]));
      expect(kv.location).toBe('m.onnx.data');
      const offset = Number(kv.offset);
      expect(offset % EXTERNAL_ALIGNMENT).toBe(0);
      expect(Number(kv.length)).toBe(sizes[i] * 4);
      expect(data.subarray(end, offset).every((b) => b === 0)).toBe(true);
      expect(Buffer.from(await readTensorBytes(t)).equals(Buffer.from((inits[i].data as { bytes: Uint8Array }).bytes))).toBe(true);
      end = offset + sizes[i] * 4;
    }
    expect(data.length).toBe(end);
    expect(r.dataBytes).toBe(end);
  });

  it("'auto' keeps tensors under the threshold inline", async () => {
    const dir = freshDir();
    const small = makeTensor('small', DataType.float32, [2], Float32Array.of(1, 2));
    const big = makeTensor('big', DataType.float32, [300], new Float32Array(300).fill(3));
    const graph = emptyGraph({
      node: [nodeOf('Add', ['small', 'small'], ['a']), nodeOf('Identity', ['big'], ['b'])],
      initializer: [small, big],
      output: [valueInfo('a', DataType.float32, [2]), valueInfo('b', DataType.float32, [300])],
    });
    const out = path.join(dir, 'm.onnx');
    const r = await writeModel(modelOf(graph), out, { externalData: 'auto', threshold: 1024, dataFileName: 'weights.bin' });
    expect(r.externalTensors).toBe(1);
    expect(r.dataPath).toBe(path.join(dir, 'weights.bin'));
    const again = await readModel(out);
    expect(again.proto.graph!.initializer.map((t) => t.dataLocation)).toEqual([undefined, 1]);
  });

  it('refuses a data file name with folders in it', async () => {
    await expect(writeModel(matmulModel(W), path.join(freshDir(), 'm.onnx'), { dataFileName: '../x.data' })).rejects.toMatchObject({ code: 'INVALID_INPUT' });
  });

  it('refuses to write a protobuf over 2 GiB inline', async () => {
    const huge: TensorProto = { ...W, dims: [2 ** 29 + 4], data: { kind: 'file', path: '/nonexistent/huge.bin', offset: 0, length: 2 ** 31 + 16 } };
    const dir = freshDir();
    await expect(writeModel(matmulModel(huge), path.join(dir, 'm.onnx'), { externalData: 'none' })).rejects.toMatchObject({
      code: 'UNSUPPORTED_MODEL',
      message: "The model would be a 2.00 GiB protobuf, over protobuf's 2 GiB limit. Write it with external data (externalData 'auto' or 'all').",
    });
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe('atomic writes', () => {
  async function previousOutput(dir: string): Promise<{ out: string; before: Record<string, Buffer> }> {
    const out = path.join(dir, 'out.onnx');
    await writeModel(matmulModel(makeTensor('W', DataType.float32, [4, 4], new Float32Array(16).fill(1))), out, { externalData: 'all' });
    const before = Object.fromEntries(readdirSync(dir).map((f) => [f, readFileSync(path.join(dir, f))]));
    expect(Object.keys(before).sort()).toEqual(['out.onnx', 'out.onnx.data']);
    return { out, before };
  }

  function expectUnchanged(dir: string, before: Record<string, Buffer>): void {
    const now = readdirSync(dir).sort();
    expect(now).toEqual(Object.keys(before).sort());   // no temporary files left behind
    for (const f of now) expect(readFileSync(path.join(dir, f)).equals(before[f])).toBe(true);
  }

  it('a tensor source that disappears midway leaves no output and the previous one intact', async () => {
    const dir = freshDir();
    const { out, before } = await previousOutput(dir);
    // A model read from a scratch copy whose data file is deleted before the write.
    const scratch = freshDir();
    const src = path.join(scratch, 'src.onnx');
    const first = makeTensor('A', DataType.float32, [512], new Float32Array(512).fill(2));
    const graph = emptyGraph({
      node: [nodeOf('MatMul', ['X', 'W'], ['Y']), nodeOf('Identity', ['A'], ['Z'])],
      initializer: [first, W],
      input: [valueInfo('X', DataType.float32, [1, 4])],
      output: [valueInfo('Y', DataType.float32, [1, 4]), valueInfo('Z', DataType.float32, [512])],
    });
    await writeModel(modelOf(graph), src, { externalData: 'all', dataFileName: 'src.data' });
    const model = await readModel(src);
    unlinkSync(path.join(scratch, 'src.data'));
    await expect(writeModel(model, out, { externalData: 'all' })).rejects.toMatchObject({
      code: 'NOT_FOUND',
      message: `The data of tensor 'A' cannot be read: ${path.join(scratch, 'src.data')} no longer exists. Keep the model's files in place until the job is done.`,
    });
    expectUnchanged(dir, before);
  });

  it('a source file cut short while writing inline data fails the same way', async () => {
    const dir = freshDir();
    const { out, before } = await previousOutput(dir);
    const scratch = freshDir();
    const src = path.join(scratch, 'src.onnx');
    await writeModel(matmulModel(W), src, { externalData: 'none' });
    const model = await readModel(src, { inlineBelow: 0 });
    truncateSync(src, 100);
    await expect(writeModel(model, out, { externalData: 'none' })).rejects.toMatchObject({ code: 'MODEL_PARSE' });
    expectUnchanged(dir, before);
  });

  it('a cancelled write leaves the previous output intact', async () => {
    const dir = freshDir();
    const { out, before } = await previousOutput(dir);
    const ctl = new AbortController();
    ctl.abort();
    await expect(writeModel(matmulModel(W), out, { externalData: 'all', signal: ctl.signal })).rejects.toMatchObject({ code: 'CANCELLED' });
    expectUnchanged(dir, before);
  });

  it('a completed write replaces both files', async () => {
    const dir = freshDir();
    const { out, before } = await previousOutput(dir);
    await writeModel(matmulModel(W), out, { externalData: 'all' });
    expect(readFileSync(path.join(dir, 'out.onnx.data')).equals(before['out.onnx.data'])).toBe(false);
    const again = await readModel(out);
    expect(Buffer.from(await readTensorBytes(again.proto.graph!.initializer[0])).equals(weightBytes)).toBe(true);
    expect(existsSync(out)).toBe(true);
    expect(readdirSync(dir).sort()).toEqual(['out.onnx', 'out.onnx.data']);
  });
});
