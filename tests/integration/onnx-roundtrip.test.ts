/**
 * Round trip of every fixture model: read → write (external data 'auto', 'all', 'none') → read gives the
 * same structure and identical tensor bytes, and onnxruntime gives bit-identical outputs on the original
 * and the rewritten file (node tests with their own test_data_set inputs; decoders with fixed input ids
 * and an empty cache built from detectDecoderLayout).
 */
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { cacheShape, detectDecoderLayout } from '../../main/engine/model/layout.ts';
import { allTensors } from '../../main/engine/onnx/graph.ts';
import { readModel, readTensorFile } from '../../main/engine/onnx/reader.ts';
import { EXTERNAL_ALIGNMENT, writeModel, type WriteOptions } from '../../main/engine/onnx/writer.ts';
import { tempDir } from '../helpers/fixtures.ts';
import { DECODER_FIXTURES, nodeTestModels, runBytes, structure, tensorPayloads, toOrtTensor } from '../unit/onnx/helpers.ts';

const tmp = tempDir('whittle-onnx-rt-');
afterAll(() => tmp.cleanup());

const MODES: WriteOptions['externalData'][] = ['auto', 'all', 'none'];

async function nodeTestFeeds(modelPath: string, dataDir: string): Promise<Record<string, ort.Tensor>> {
  const model = await readModel(modelPath);
  const g = model.proto.graph!;
  const inits = new Set(g.initializer.map((t) => t.name));
  const inputs = g.input.filter((v) => !inits.has(v.name)).map((v) => v.name ?? '');
  const files = readdirSync(dataDir).filter((f) => /^input_\d+\.pb$/.test(f)).sort((a, b) => Number(a.slice(6, -3)) - Number(b.slice(6, -3)));
  const feeds: Record<string, ort.Tensor> = {};
  for (const [i, f] of files.entries()) {
    const t = await readTensorFile(path.join(dataDir, f));
    feeds[t.name || inputs[i]] = await toOrtTensor(t);
  }
  return feeds;
}

async function decoderFeeds(modelPath: string): Promise<Record<string, ort.Tensor>> {
  const layout = detectDecoderLayout(await readModel(modelPath));
  const ids = [1, 7, 42, 3, 99, 5];
  const seq = ids.length;
  const intTensor = (dtype: string, values: number[]): ort.Tensor => (dtype === 'int32'
    ? new ort.Tensor('int32', Int32Array.from(values), [1, values.length])
    : new ort.Tensor('int64', BigInt64Array.from(values.map(BigInt)), [1, values.length]));
  const feeds: Record<string, ort.Tensor> = { [layout.inputIds.name]: intTensor(layout.inputIds.dtype, ids) };
  if (layout.attentionMask) feeds[layout.attentionMask.name] = intTensor(layout.attentionMask.dtype, ids.map(() => 1));
  if (layout.positionIds) feeds[layout.positionIds.name] = intTensor(layout.positionIds.dtype, ids.map((_, i) => i));
  for (const p of layout.past) {
    const shape = cacheShape(p, layout, 1, 0);
    feeds[p.name] = p.dtype === 'float16' ? new ort.Tensor('float16', new Uint16Array(0), shape) : new ort.Tensor('float32', new Float32Array(0), shape);
  }
  expect(layout.otherInputs).toEqual([]);
  expect(seq).toBe(6);
  return feeds;
}

interface Case { id: string; model: string; feeds: () => Promise<Record<string, ort.Tensor>> }

const cases: Case[] = [
  ...Object.entries(DECODER_FIXTURES).map(([id, model]) => ({ id, model, feeds: () => decoderFeeds(model) })),
  ...nodeTestModels().map((t) => ({ id: t.id, model: t.model, feeds: () => nodeTestFeeds(t.model, t.dataDir) })),
];

describe.each(cases)('round trip of $id', ({ id, model: modelPath, feeds }) => {
  it('rewrites to the same graph, the same bytes and bit-identical onnxruntime outputs', async () => {
    const original = await readModel(modelPath, { inlineBelow: 0 });
    const expectedStructure = structure(original.proto);
    const expectedBytes = await tensorPayloads(original.proto);
    const inputs = await feeds();
    const reference = await runBytes(modelPath, inputs);
    expect(Object.keys(reference).length).toBeGreaterThan(0);

    for (const mode of MODES) {
      const out = path.join(tmp.dir, `${id}-${mode}`, 'model.onnx');
      await import('node:fs/promises').then((fs) => fs.mkdir(path.dirname(out), { recursive: true }));
      const result = await writeModel(original, out, { externalData: mode });
      if (mode === 'none') expect(result.dataPath).toBeNull();

      const again = await readModel(out);
      expect(structure(again.proto)).toEqual(expectedStructure);
      const bytes = await tensorPayloads(again.proto);
      expect(bytes.length).toBe(expectedBytes.length);
      for (let i = 0; i < bytes.length; i++) expect(Buffer.compare(bytes[i], expectedBytes[i]), `tensor #${i}`).toBe(0);

      // External data: relative location, 4 KiB aligned offsets, inside the file.
      for (const t of allTensors(again.proto)) {
        if (t.dataLocation !== 1) continue;
        const kv = Object.fromEntries(t.externalData.map((e) => [e.key, e.value]));
        expect(kv.location).toBe('model.onnx.data');
        expect(Number(kv.offset) % EXTERNAL_ALIGNMENT).toBe(0);
        expect(Number(kv.offset) + Number(kv.length)).toBeLessThanOrEqual(statSync(path.join(path.dirname(out), 'model.onnx.data')).size);
      }
      if (mode === 'all' && result.externalTensors > 0) expect(again.externalDataFiles).toEqual([path.join(path.dirname(out), 'model.onnx.data')]);

      const outputs = await runBytes(out, inputs);
      expect(Object.keys(outputs).sort()).toEqual(Object.keys(reference).sort());
      for (const name of Object.keys(reference)) expect(Buffer.compare(outputs[name], reference[name]), `${mode}: output ${name}`).toBe(0);
    }
  });
});

describe('node test data', () => {
  it('onnxruntime reproduces the expected outputs stored beside each node test, read with our TensorProto reader', async () => {
    for (const t of nodeTestModels()) {
      const feeds = await nodeTestFeeds(t.model, t.dataDir);
      const session = await ort.InferenceSession.create(t.model);
      const outputs = await session.run(feeds);
      const names = session.outputNames;
      await session.release();
      const files = readdirSync(t.dataDir).filter((f) => /^output_\d+\.pb$/.test(f)).sort();
      expect(files.length).toBeGreaterThan(0);
      for (const [i, f] of files.entries()) {
        const expected = await toOrtTensor(await readTensorFile(path.join(t.dataDir, f)));
        const got = outputs[names[i]];
        expect(got.dims, `${t.id} ${f}`).toEqual(expected.dims);
        const want = Array.from(expected.data as ArrayLike<number>, Number);
        const have = Array.from(got.data as ArrayLike<number>, Number);
        for (let k = 0; k < want.length; k++) expect(Math.abs(have[k] - want[k]), `${t.id} ${f}[${k}]`).toBeLessThanOrEqual(1e-5 + 1e-4 * Math.abs(want[k]));
      }
    }
  });
});
