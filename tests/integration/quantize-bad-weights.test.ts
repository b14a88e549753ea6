/**
 * A model whose weight holds an infinite or NaN value: quantization refuses it with INVALID_INPUT that
 * names the weight and the position, and leaves no output folder.
 */
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WhittleError } from '../../main/engine/errors.ts';
import { quietContext } from '../../main/engine/job-context.ts';
import { readModel } from '../../main/engine/onnx/reader.ts';
import { planTargets } from '../../main/engine/quantize/targets.ts';
import { quantizeWeightOnly } from '../../main/engine/quantize/weight-only.ts';
import { transformWeights, type WeightEdit } from '../../main/engine/rewrite/weight-loop.ts';
import { writeOutputFolder } from '../../main/engine/rewrite/write-folder.ts';
import { STORIES, tempDir } from '../helpers/fixtures.ts';
import { QuantizeRtnStep } from '../../preload/recipe.ts';

let tmp: ReturnType<typeof tempDir>;
beforeAll(() => { tmp = tempDir('whittle-bad-weights-'); });
afterAll(() => tmp.cleanup());

/** The stories model with `value` written into weight `index`'s element [k, n]. */
async function modelWith(value: number, k: number, n: number, name: string): Promise<{ file: string; weight: string }> {
  const model = await readModel(STORIES.model);
  const graph = model.proto.graph!;
  const target = planTargets(graph, { blockSize: 32, keep: [] }).targets[1];
  const out = path.join(tmp.dir, name);
  const written = await writeOutputFolder(model, out, quietContext(tmp.dir), {
    step: { type: 'test' },
    options: {},
    rewrite: (_, io) => transformWeights(graph, [target], io, quietContext(tmp.dir), {
      phase: 'prune',
      decode: (bytes) => new Float32Array(bytes.slice().buffer),
      async transform(t, w): Promise<WeightEdit> {
        const copy = Float32Array.from(w);
        copy[k * t.n + n] = value; // MatMul weight [K, N], row-major
        return { kind: 'replace-bytes', data: new Uint8Array(copy.buffer) };
      },
    }),
    manifest: () => ({ weights: [] }),
  });
  return { file: written.modelPath, weight: target.weight };
}

describe('quantizing a weight that is not finite', () => {
  it.each([[Infinity, 'an infinite'], [NaN, 'a NaN']])('%s: INVALID_INPUT naming the weight', async (value, words) => {
    const { file, weight } = await modelWith(value, 3, 5, `bad-${String(value)}`);
    const out = path.join(tmp.dir, `q-${String(value)}`);
    const e = await quantizeWeightOnly(file, QuantizeRtnStep.parse({ type: 'quantize', method: 'rtn' }), out, quietContext(tmp.dir)).then(() => null, (err: unknown) => err);
    expect(e).toBeInstanceOf(WhittleError);
    expect((e as WhittleError).code).toBe('INVALID_INPUT');
    expect((e as WhittleError).message).toBe(`Weight '${weight}' holds ${words} value at [k=3, n=5]; it cannot be quantized. Check that the model file is not corrupt.`);
    expect((e as WhittleError).details).toMatchObject({ weight });
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(tmp.dir).filter((f) => f.startsWith(`q-${String(value)}`))).toEqual([]);
  });
});
