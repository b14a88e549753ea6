import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { activationInputsFor, addCaptureOutputs, writeCaptureModel } from '../../../main/engine/calibrate/index.ts';
import { readModel } from '../../../main/engine/onnx/reader.ts';
import { planTargets } from '../../../main/engine/quantize/targets.ts';
import { STORIES, tempDir } from '../../helpers/fixtures.ts';
import { buildModel, DataType, makeNode, makeTensor, randomFloats, saveModel, valueInfo } from '../quantize/build-model.ts';

const scratch = tempDir('whittle-capture-');
afterAll(() => scratch.cleanup());

describe('activationInputsFor', () => {
  it('stories260K: one shared input for q/k/v and for gate/up per layer, d = K', async () => {
    const model = await readModel(STORIES.model);
    const plan = planTargets(model.proto.graph!, { blockSize: 16, keep: [] });
    expect(plan.targets).toHaveLength(35);
    const inputs = activationInputsFor(model, plan.targets);
    expect(inputs).toHaveLength(20);
    const qkv = inputs.filter((i) => i.weights.some((w) => /q_proj/.test(w)));
    expect(qkv).toHaveLength(5);
    for (const i of qkv) {
      expect(i.weights.map((w) => /(q|k|v)_proj/.exec(w)?.[1])).toEqual(['q', 'k', 'v']);
      expect(i.d).toBe(64);
    }
    const down = inputs.filter((i) => i.weights.some((w) => /down_proj/.test(w)));
    expect(down.map((i) => i.d)).toEqual([172, 172, 172, 172, 172]);
    expect(inputs.filter((i) => i.weights.length === 2)).toHaveLength(5); // gate + up
    expect(inputs.every((i) => i.dtype === 'float32')).toBe(true);
    // Every weight appears exactly once.
    expect(inputs.flatMap((i) => i.weights).sort()).toEqual(plan.targets.map((t) => t.weight).sort());
    // Bare nodes give the same plan.
    expect(activationInputsFor(model, plan.targets.map((t) => t.node))).toEqual(inputs);
  });

  it('Gemm with transB: d is the stored weight\'s second dimension; non-MatMul nodes are refused', () => {
    const model = buildModel({
      nodes: [makeNode({ opType: 'Gemm', inputs: ['X', 'W'], outputs: ['Y'], name: 'g', attributes: [{ name: 'transB', type: 2, i: 1, floats: [], ints: [], strings: [], tensors: [], graphs: [], sparseTensors: [], typeProtos: [] }] })],
      initializers: [makeTensor('W', DataType.float32, [8, 24], randomFloats(192))],
      inputs: [valueInfo('X', DataType.float32, ['batch', 24])],
      outputs: [valueInfo('Y', DataType.float32, ['batch', 8])],
    });
    expect(activationInputsFor(model, [model.graph!.node[0]])).toEqual([{ tensor: 'X', d: 24, weights: ['W'], dtype: 'float32' }]);
    const relu = makeNode({ opType: 'Relu', inputs: ['X'], outputs: ['Z'] });
    expect(() => activationInputsFor(model, [relu])).toThrow(/MatMul and Gemm/);
  });
});

describe('capture model', () => {
  it('adds outputs (Identity for a graph input), links the weights and runs in onnxruntime', async () => {
    const K = 64, N = 48;
    const W = randomFloats(K * N, 3, 0.1);
    const proto = buildModel({
      nodes: [
        makeNode({ opType: 'MatMul', inputs: ['X', 'W1'], outputs: ['H'], name: 'mm1' }),
        makeNode({ opType: 'Relu', inputs: ['H'], outputs: ['R'], name: 'relu' }),
        makeNode({ opType: 'MatMul', inputs: ['R', 'W2'], outputs: ['Y'], name: 'mm2' }),
      ],
      initializers: [makeTensor('W1', DataType.float32, [K, N], W), makeTensor('W2', DataType.float32, [N, 4], randomFloats(N * 4, 4))],
      inputs: [valueInfo('X', DataType.float32, ['batch', K])],
      outputs: [valueInfo('Y', DataType.float32, ['batch', 4])],
    });
    const src = path.join(scratch.dir, 'src', 'model.onnx');
    mkdirSync(path.dirname(src));
    await saveModel(proto, src);
    const model = await readModel(src);
    const outputs = addCaptureOutputs(model.proto, [{ tensor: 'X', dtype: 'float32' }, { tensor: 'R' }, { tensor: 'Y' }]);
    expect(outputs.get('X')).toBe('X_whittle_capture');
    expect(outputs.get('R')).toBe('R');
    expect(outputs.get('Y')).toBe('Y');
    expect(() => addCaptureOutputs(model.proto, [{ tensor: 'nope' }])).toThrow(/no tensor named 'nope'/);

    const work = path.join(scratch.dir, 'work');
    mkdirSync(work);
    const files = await writeCaptureModel(model, work);
    expect(files.mode).toBe('linked');
    // The weights are not copied: the scratch folder holds a hard link to the source data.
    const linked = readdirSync(files.dir).filter((f) => f.startsWith('source-'));
    expect(linked).toHaveLength(1);
    expect(statSync(path.join(files.dir, linked[0])).nlink).toBeGreaterThanOrEqual(2);
    expect(statSync(files.modelPath).size).toBeLessThan(4096);

    const session = await ort.InferenceSession.create(files.modelPath);
    try {
      const x = randomFloats(2 * K, 9);
      const out = await session.run({ X: new ort.Tensor('float32', x, [2, K]) }, ['X_whittle_capture', 'R']);
      expect(Array.from(out.X_whittle_capture.data as Float32Array)).toEqual(Array.from(x));
      // R = relu(X · W1), checked against a plain loop.
      const r = out.R.data as Float32Array;
      for (const [row, col] of [[0, 0], [1, 47], [0, 13]]) {
        let acc = 0;
        for (let k = 0; k < K; k++) acc += x[row * K + k] * W[k * N + col];
        expect(r[row * N + col]).toBeCloseTo(Math.max(0, acc), 4);
      }
    } finally {
      await session.release();
    }
    await files.remove();
    expect(existsSync(files.dir)).toBe(false);
    expect(readdirSync(work)).toEqual([]);
  });
});
