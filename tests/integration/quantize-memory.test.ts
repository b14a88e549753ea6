/**
 * Peak memory of weight-only quantization does not grow with the model: quantizing 8 weights of
 * 2048 × 2048 fp32 (16 MiB each, 128 MiB in external data) raises the child process's peak RSS by less
 * than 3 × the largest tensor plus 160 MiB of slack (Node, the native addon's threads, allocator caches).
 * The spool's memory budget is set to 0 so every quantized tensor takes the scratch-file path.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { tempDir } from '../helpers/fixtures.ts';
import { buildModel, DataType, makeNode, makeTensor, randomFloats, saveModel, valueInfo } from '../unit/quantize/build-model.ts';

const D = 2048, LAYERS = 8;
let tmp: ReturnType<typeof tempDir>;
beforeAll(() => { tmp = tempDir('whittle-qmem-'); });
afterAll(() => tmp.cleanup());

it('peak RSS stays below 3 × the largest tensor + slack while quantizing 128 MiB of weights', async () => {
  const nodes = [];
  const inits = [];
  for (let i = 0; i < LAYERS; i++) {
    nodes.push(makeNode({ opType: 'MatMul', inputs: [i === 0 ? 'X' : `h${i}`, `w${i}`], outputs: [i === LAYERS - 1 ? 'Y' : `h${i + 1}`], name: `mm${i}` }));
    inits.push(makeTensor(`w${i}`, DataType.float32, [D, D], randomFloats(D * D, i + 1, 0.02)));
  }
  const src = path.join(tmp.dir, 'big.onnx');
  await saveModel(buildModel({ nodes, initializers: inits, inputs: [valueInfo('X', DataType.float32, [1, D])], outputs: [valueInfo('Y', DataType.float32, [1, D])] }), src);
  inits.length = 0;

  const out = path.join(tmp.dir, 'out');
  const child = path.resolve('tests/unit/quantize/peak-rss-child.ts');
  const line = execFileSync(process.execPath, [child, src, out, JSON.stringify({ bits: 4, blockSize: 32 }), '0'], { encoding: 'utf8' }).trim().split('\n').pop()!;
  const r = JSON.parse(line);
  const largest = D * D * 4;
  const growth = (r.peakRssKb - r.baselineRssKb) * 1024;
  console.log(`peak RSS growth ${(growth / 2 ** 20).toFixed(1)} MiB (largest tensor ${(largest / 2 ** 20).toFixed(0)} MiB, model ${(LAYERS * largest / 2 ** 20).toFixed(0)} MiB), ${r.wallMs.toFixed(0)} ms`);
  expect(r.quantized).toBe(LAYERS);
  expect(existsSync(path.join(out, 'model.onnx.data'))).toBe(true);
  expect(growth).toBeLessThan(3 * largest + 160 * 2 ** 20);

  // the spilled tensors made it into a model onnxruntime runs
  const session = await ort.InferenceSession.create(path.join(out, 'model.onnx'));
  const y = (await session.run({ X: new ort.Tensor('float32', randomFloats(D, 99), [1, D]) })).Y.data as Float32Array;
  await session.release();
  expect(y.length).toBe(D);
  expect(y.every(Number.isFinite)).toBe(true);
});
