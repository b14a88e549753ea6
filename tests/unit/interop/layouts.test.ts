/**
 * Pieces of the export layouts: the Transformers.js dtype read off a graph's ops and output types, the
 * genai_config.json refusals, what applyLayout refuses, and the recipe's `output.layout` (schema, CLI
 * flags, the wizard's recipe).
 */
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Recipe } from '../../../preload/recipe.ts';
import { outputFromFlags } from '../../../main/cli/output-flags.ts';
import { isWhittleError } from '../../../main/engine/errors.ts';
import { genaiConfig, type ModelFacts } from '../../../main/engine/interop/layout-configs.ts';
import { applyLayout, transformersJsDtype } from '../../../main/engine/interop/layouts.ts';
import { intAttr } from '../../../main/engine/onnx/graph.ts';
import { layoutOfRecipe, withLayout } from '../../../renderer/lib/output-layout.ts';
import { STORIES, tempDir } from '../../helpers/fixtures.ts';
import { buildModel, DataType, makeNode, makeTensor, randomFloats, saveModel, valueInfo } from '../quantize/build-model.ts';

const tmp = tempDir('whittle-layouts-unit-');
afterAll(() => tmp.cleanup());

/** x [1, K] → op(x, W) → y [1, N]: the op and the output's element type vary. */
function oneOp(op: 'MatMul' | 'MatMulNBits' | 'MatMulInteger', outType: number, bits = 4) {
  const K = 32, N = 8;
  if (op === 'MatMulNBits') {
    return buildModel({
      nodes: [makeNode({ opType: 'MatMulNBits', domain: 'com.microsoft', inputs: ['x', 'B', 's'], outputs: ['y'], attributes: [intAttr('K', K), intAttr('N', N), intAttr('bits', bits), intAttr('block_size', 32)] })],
      initializers: [makeTensor('B', DataType.uint8, [N, 1, (32 * bits) / 8], new Uint8Array((N * 32 * bits) / 8)), makeTensor('s', DataType.float32, [N], new Float32Array(N).fill(1))],
      inputs: [valueInfo('x', outType, [1, K])], outputs: [valueInfo('y', outType, [1, N])], extraOpsets: [{ domain: 'com.microsoft', version: 1 }],
    });
  }
  if (op === 'MatMulInteger') {
    return buildModel({
      nodes: [makeNode({ opType: 'MatMulInteger', inputs: ['x', 'W'], outputs: ['y'] })],
      initializers: [makeTensor('W', DataType.int8, [K, N], new Int8Array(K * N))],
      inputs: [valueInfo('x', DataType.uint8, [1, K])], outputs: [valueInfo('y', DataType.int32, [1, N])],
    });
  }
  const w = outType === DataType.float16 ? makeTensor('W', DataType.float16, [K, N], new Uint16Array(K * N)) : makeTensor('W', DataType.float32, [K, N], randomFloats(K * N));
  return buildModel({ nodes: [makeNode({ opType: 'MatMul', inputs: ['x', 'W'], outputs: ['y'] })], initializers: [w], inputs: [valueInfo('x', outType, [1, K])], outputs: [valueInfo('y', outType, [1, N])] });
}

describe('transformersJsDtype', () => {
  it('names each kind of output as Transformers.js does', () => {
    expect(transformersJsDtype(oneOp('MatMul', DataType.float32))).toBe('fp32');
    expect(transformersJsDtype(oneOp('MatMul', DataType.float16))).toBe('fp16');
    expect(transformersJsDtype(oneOp('MatMulNBits', DataType.float32))).toBe('q4');
    expect(transformersJsDtype(oneOp('MatMulNBits', DataType.float16))).toBe('q4f16');
    expect(transformersJsDtype(oneOp('MatMulNBits', DataType.float32, 2))).toBe('q2');
    expect(transformersJsDtype(oneOp('MatMulNBits', DataType.float32, 8))).toBe('q8');
    expect(transformersJsDtype(oneOp('MatMulInteger', DataType.float32))).toBe('q8');
  });
});

describe('applyLayout refusals', () => {
  it('a folder without tokenizer.json: INVALID_INPUT; a graph Whittle cannot map: UNSUPPORTED_MODEL; nothing written', async () => {
    const dir = path.join(tmp.dir, 'one-matmul');
    mkdirSync(dir);
    await saveModel(oneOp('MatMul', DataType.float32), path.join(dir, 'model.onnx'));
    const before = readdirSync(dir).sort();
    const noTokenizer = await applyLayout('transformers-js', dir, () => {}).then(() => null, (e: unknown) => e);
    expect(isWhittleError(noTokenizer) && noTokenizer.code).toBe('INVALID_INPUT');
    copyFileSync(STORIES.tokenizer, path.join(dir, 'tokenizer.json'));
    for (const layout of ['transformers-js', 'genai'] as const) {
      const unmapped = await applyLayout(layout, dir, () => {}).then(() => null, (e: unknown) => e);
      expect(isWhittleError(unmapped) && unmapped.code).toBe('UNSUPPORTED_MODEL');
      expect((unmapped as Error).message).toMatch(/does not recognise its architecture.*plain layout/);
    }
    expect(readdirSync(dir).sort()).toEqual([...before, 'tokenizer.json'].sort());
    expect(await applyLayout('plain', dir, () => {})).toEqual({ layout: 'plain', written: [] });
  });
});

const FACTS: ModelFacts = {
  family: 'llama', modelType: 'llama', layers: 2, heads: 4, kvHeads: 2, headSize: 8, hidden: 32, vocab: 100, intermediate: 64, activation: 'silu',
  tiedEmbedding: false, contextLength: 128,
  inputs: { inputIds: 'input_ids', attentionMask: 'attention_mask', positionIds: null, past: { key: 'past_key_values.%d.key', value: 'past_key_values.%d.value', combined: null } },
  outputs: { logits: 'logits', present: { key: 'present.%d.key', value: 'present.%d.value', combined: null } },
};

describe('genaiConfig', () => {
  it('names the graph, the counts and the tokens', () => {
    const c = genaiConfig(FACTS, { bosId: 1, eosId: 2 }, 'model.onnx') as { model: Record<string, unknown> & { decoder: Record<string, unknown> } };
    expect(c.model.decoder).toMatchObject({
      filename: 'model.onnx', head_size: 8, hidden_size: 32, num_attention_heads: 4, num_key_value_heads: 2, num_hidden_layers: 2,
      inputs: { input_ids: 'input_ids', attention_mask: 'attention_mask', past_key_names: 'past_key_values.%d.key', past_value_names: 'past_key_values.%d.value' },
      outputs: { logits: 'logits', present_key_names: 'present.%d.key', present_value_names: 'present.%d.value' },
    });
    expect(c.model).toMatchObject({ bos_token_id: 1, eos_token_id: 2, context_length: 128, vocab_size: 100, type: 'llama' });
  });

  it('refuses a decoder without a cache and an encoder, saying why', () => {
    const noCache = { ...FACTS, inputs: { ...FACTS.inputs, past: { key: null, value: null, combined: null } } };
    expect(() => genaiConfig(noCache, { bosId: 1, eosId: 2 }, 'model.onnx')).toThrow(/key\/value cache/);
    expect(() => genaiConfig({ ...FACTS, family: 'bert' }, { bosId: 1, eosId: 2 }, 'model.onnx')).toThrow(/encoder/);
  });
});

describe('output.layout in recipes, flags and the wizard', () => {
  it('the schema takes the three layouts and refuses others', () => {
    const base = { model: { path: 'm.onnx' } };
    for (const layout of ['plain', 'transformers-js', 'genai']) expect(Recipe.parse({ ...base, output: { layout } }).output?.layout).toBe(layout);
    const bad = Recipe.safeParse({ ...base, output: { layout: 'gguf' } });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues[0].message).toMatch(/plain, transformers-js, genai/);
  });

  it('--out and --layout make the recipe output', () => {
    expect(outputFromFlags({})).toBeUndefined();
    expect(outputFromFlags({ layout: 'genai' })).toEqual({ layout: 'genai' });
    expect(outputFromFlags({ out: 'x', layout: 'transformers-js' })).toEqual({ dir: path.resolve('x'), layout: 'transformers-js' });
  });

  it("the wizard's choice goes into the recipe and comes back from a stored one", () => {
    const recipe = { model: { path: 'm.onnx' }, output: { dir: '/o' } };
    expect(withLayout(recipe, 'plain')).toBe(recipe);
    const laid = withLayout(recipe, 'transformers-js');
    expect(laid).toEqual({ model: { path: 'm.onnx' }, output: { dir: '/o', layout: 'transformers-js' } });
    expect(layoutOfRecipe(laid)).toBe('transformers-js');
    expect(layoutOfRecipe(recipe)).toBe('plain');
    expect(layoutOfRecipe({ output: { layout: 'nonsense' } })).toBe('plain');
  });
});
