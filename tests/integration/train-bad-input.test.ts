/**
 * Bad input to a training run is refused with a clear, typed error before any work, and leaves nothing
 * behind: an op without a gradient rule (named, with its node), a text too short for one batch, a
 * batch × length that cannot fit in memory (with a shape that would), a learning rate ≤ 0, and unknown
 * freeze rules.
 */
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isWhittleError, type ErrorCode } from '../../main/engine/errors.ts';
import { quietContext } from '../../main/engine/job-context.ts';
import { DataType } from '../../main/engine/onnx/dtype.ts';
import { makeNode } from '../../main/engine/onnx/graph.ts';
import { makeTensor } from '../../main/engine/onnx/tensor-data.ts';
import { trainModel } from '../../main/engine/train/train-model.ts';
import type { TrainConfig, TrainRequest } from '../../main/engine/train/types.ts';
import { buildModel, randomFloats, saveModel, valueInfo } from '../unit/quantize/build-model.ts';
import { STORIES, tempDir } from '../helpers/fixtures.ts';
import { calibrationTextFromEnd } from './quantize-gptq-helpers.ts';

const tmp = tempDir('whittle-train-bad-');
afterAll(() => tmp.cleanup());
let n = 0;

function request(overrides: Partial<TrainConfig> = {}, modelPath = STORIES.model): TrainRequest {
  const i = n++;
  return {
    modelPath, outDir: path.join(tmp.dir, `out-${i}`), deliver: 'final', checkpointDir: path.join(tmp.dir, `ckpt-${i}`), resume: false,
    config: {
      textPath: calibrationTextFromEnd(tmp.dir, 200), tokenizerPath: STORIES.tokenizer, steps: 2, batch: 2, length: 16, accumulate: 1, lr: 1e-3,
      warmupSteps: 0, minLrRatio: 0.1, weightDecay: 0, clipNorm: 1, freeze: [], keepSparsity: false, evalEvery: 10, seed: 0, checkpointEvery: 0, ...overrides,
    },
  };
}

async function refusal(req: TrainRequest): Promise<{ code: ErrorCode; message: string }> {
  const err = await trainModel(req, quietContext(tmp.dir)).then(() => null, (e: unknown) => e);
  if (!isWhittleError(err)) throw new Error(`expected a WhittleError, got ${String(err)}`);
  expect(existsSync(req.outDir)).toBe(false);
  return { code: err.code, message: err.message };
}

describe('training refuses bad input before work', () => {
  it('an op without a gradient rule, naming the op and the node', async () => {
    // input_ids → Gather(embedding) → Atan → MatMul → logits
    const V = 512, D = 8;
    const model = buildModel({
      nodes: [
        makeNode({ opType: 'Gather', inputs: ['embed', 'input_ids'], outputs: ['h'], name: 'embed_lookup' }),
        makeNode({ opType: 'Atan', inputs: ['h'], outputs: ['a'], name: 'odd_activation' }),
        makeNode({ opType: 'MatMul', inputs: ['a', 'head'], outputs: ['logits'], name: 'lm_head' }),
      ],
      initializers: [makeTensor('embed', DataType.float32, [V, D], randomFloats(V * D, 1)), makeTensor('head', DataType.float32, [D, V], randomFloats(D * V, 2))],
      inputs: [valueInfo('input_ids', DataType.int64, ['batch', 'seq'])],
      outputs: [valueInfo('logits', DataType.float32, ['batch', 'seq', V])],
      opset: 17,
    });
    const file = path.join(tmp.dir, 'atan.onnx');
    await saveModel(model, file, false);
    const r = await refusal(request({}, file));
    expect(r.code).toBe('UNSUPPORTED_MODEL');
    expect(r.message).toMatch(/Atan/);
    expect(r.message).toMatch(/odd_activation/);
  }, 60_000);

  it('a text too short for one batch, with its token count', async () => {
    const short = path.join(tmp.dir, 'short.txt');
    writeFileSync(short, 'Once upon a time there was a cat.\n');
    const r = await refusal(request({ textPath: short }));
    expect(r.code).toBe('INVALID_INPUT');
    expect(r.message).toMatch(/has \d+ tokens, but one batch of 2 sequences of 16 tokens needs at least 33/);
  });

  it('a batch × length that cannot fit in memory, with a shape that would', async () => {
    const r = await refusal(request({ batch: 1 << 20, length: 512 }));
    expect(r.code).toBe('OUT_OF_MEMORY');
    expect(r.message).toMatch(/needs about [\d.]+ GiB of memory/);
    expect(r.message).toMatch(/Batch \d+ × length \d+ would fit/);
  }, 60_000);

  it('a length beyond what the model can run', async () => {
    const r = await refusal(request({ length: 600 }));
    expect(r.code).toBe('INVALID_INPUT');
    expect(r.message).toMatch(/does not run on batches of 2 × 600 tokens/);
  }, 60_000);

  it('a learning rate ≤ 0, steps and epochs both or neither, unknown freeze roles', async () => {
    for (const lr of [0, -1e-3, Number.NaN]) {
      const r = await refusal(request({ lr }));
      expect(r.code).toBe('INVALID_INPUT');
      expect(r.message).toMatch(/learning rate must be a number above 0/);
    }
    expect((await refusal(request({ steps: 3, epochs: 1 }))).message).toMatch(/exactly one/);
    expect((await refusal(request({ steps: undefined }))).message).toMatch(/exactly one/);
    expect((await refusal(request({ freeze: ['attention'] }))).message).toMatch(/'attention' is neither a role/);
  });
});
