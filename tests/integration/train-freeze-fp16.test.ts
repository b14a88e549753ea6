/**
 * What trains and what is written back: frozen roles ('o' and 'v', ov-freeze) and name patterns keep their
 * bytes exactly; a float16 model trains in float32 and is written back in float16, in its own layout
 * (KV-cache inputs, external data, genai_config.json beside it), and the result still runs.
 */
import path from 'node:path';
import { existsSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { createSession } from '../../main/engine/evaluate/decoder-session.ts';
import { quietContext } from '../../main/engine/job-context.ts';
import { DataType } from '../../main/engine/onnx/dtype.ts';
import { initializerMap } from '../../main/engine/onnx/graph.ts';
import { readModel } from '../../main/engine/onnx/reader.ts';
import { readTensorBytes } from '../../main/engine/onnx/tensor-data.ts';
import { mapArchitecture } from '../../main/engine/rewrite/architecture.ts';
import { trainModel } from '../../main/engine/train/train-model.ts';
import type { TrainConfig } from '../../main/engine/train/types.ts';
import { fixture, STORIES, tempDir } from '../helpers/fixtures.ts';
import { calibrationTextFromEnd } from './quantize-gptq-helpers.ts';

const tmp = tempDir('whittle-freeze-');
afterAll(() => tmp.cleanup());

const base = (overrides: Partial<TrainConfig>): TrainConfig => ({
  textPath: calibrationTextFromEnd(tmp.dir, 200), tokenizerPath: STORIES.tokenizer, steps: 3, batch: 2, length: 32, accumulate: 1, lr: 1e-3,
  warmupSteps: 0, minLrRatio: 0.1, weightDecay: 0.01, clipNorm: 1, freeze: [], keepSparsity: false, evalEvery: 10, seed: 0, checkpointEvery: 0, ...overrides,
});

async function bytesOf(modelPath: string): Promise<Map<string, { dtype: number; bytes: Buffer }>> {
  const m = await readModel(modelPath);
  const out = new Map<string, { dtype: number; bytes: Buffer }>();
  for (const [name, t] of initializerMap(m.proto.graph!)) out.set(name, { dtype: t.dataType ?? 0, bytes: Buffer.from(await readTensorBytes(t)) });
  return out;
}

describe('frozen weights and write-back', () => {
  it('ov-freeze and a name pattern keep those weights byte for byte; the rest train', async () => {
    const source = await readModel(STORIES.model);
    const arch = mapArchitecture(source);
    const config = base({ freeze: ['o', 'v', '*.post_attention_layernorm.*'] });
    const r = await trainModel({ modelPath: STORIES.model, outDir: path.join(tmp.dir, 'ov'), deliver: 'final', checkpointDir: path.join(tmp.dir, 'ov-ckpt'), resume: false, config }, quietContext(tmp.dir));
    const frozen = new Set(arch.blocks.flatMap((b) => [b.attention.o, b.attention.v].filter((x): x is string => x !== null)));
    for (const b of arch.blocks) frozen.add(`model.layers.${b.index}.post_attention_layernorm.weight`);
    expect(frozen.size).toBe(15);
    const before = await bytesOf(STORIES.model);
    const after = await bytesOf(r.folder.modelPath);
    let trained = 0;
    for (const [name, a] of before) {
      const b = after.get(name)!;
      if (frozen.has(name)) expect(Buffer.compare(a.bytes, b.bytes), name).toBe(0);
      else if (Buffer.compare(a.bytes, b.bytes) !== 0) trained++;
    }
    expect(trained).toBe(47 - 15);
    expect(r.details.frozenParameters).toBe(5 * (64 * 64 + 64 * 32 + 64));
  }, 120_000);

  it('a float16 model trains in float32 and is written back as float16 in its own layout', async () => {
    const model = fixture('onnx', 'ortgenai', 'tiny-random-LlamaForCausalLM-fp16', 'model.onnx');
    const tokenizer = fixture('onnx', 'ortgenai', 'tiny-random-LlamaForCausalLM-fp16', 'tokenizer.json');
    const config = base({ tokenizerPath: tokenizer, length: 16 });
    const r = await trainModel({ modelPath: model, outDir: path.join(tmp.dir, 'fp16'), deliver: 'final', checkpointDir: path.join(tmp.dir, 'fp16-ckpt'), resume: false, config }, quietContext(tmp.dir));
    expect(r.details.finalLoss).toBeLessThan(r.details.firstLoss);
    const before = await bytesOf(model);
    const after = await bytesOf(r.folder.modelPath);
    let changed = 0;
    for (const [name, a] of before) {
      const b = after.get(name)!;
      expect(b.dtype, name).toBe(a.dtype);
      expect(b.bytes.length).toBe(a.bytes.length);
      if (Buffer.compare(a.bytes, b.bytes) !== 0) changed++;
    }
    expect(changed).toBeGreaterThan(5);
    expect([...after.values()].some((t) => t.dtype === DataType.float16)).toBe(true);
    expect(existsSync(path.join(r.folder.outDir, 'genai_config.json'))).toBe(true);
    const session = await createSession(r.folder.modelPath, 1);
    expect(session.inputNames.some((n) => n.startsWith('past_key_values'))).toBe(true);
    await session.release();
  }, 120_000);
});
