/**
 * Export layouts on real outputs of the sample (stories260K):
 *   - transformers-js: the RTN 4-bit and the FP16 results load in @huggingface/transformers (Node,
 *     onnxruntime-node, nothing fetched) from onnx/model_q4.onnx and onnx/model_fp16.onnx, and generate
 *     greedily the same tokens as Whittle's own generation on the folder's model.onnx;
 *   - the layout through a recipe (runRecipe, `output.layout`): the delivered folder has it, the metrics
 *     are recorded beside it;
 *   - genai: the genai_config.json written for the sample names the graph's real inputs and outputs and
 *     its layer and head counts; for ORT GenAI's own tiny Llama (its genai_config.json set aside), the one
 *     written agrees with the one its model builder wrote; a source's own genai_config.json is kept;
 *   - `whittle quantize --layout`: the folder in the layout; an unknown layout is a usage error;
 *   - a layout that needs a tokenizer fails clearly and leaves no folder.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { QuantizeFp16Step, QuantizeRtnStep, Recipe, type OutputLayout } from '../../preload/recipe.ts';
import { loadTokenizer } from '../../main/engine/data/tokenizer.ts';
import { isWhittleError } from '../../main/engine/errors.ts';
import { openDecoder } from '../../main/engine/evaluate/decoder-session.ts';
import { generate } from '../../main/engine/evaluate/generate.ts';
import { quietContext } from '../../main/engine/job-context.ts';
import { readModel } from '../../main/engine/onnx/reader.ts';
import { readTensorBytes } from '../../main/engine/onnx/tensor-data.ts';
import { runRecipe } from '../../main/engine/pipeline/runner.ts';
import { convertToFp16 } from '../../main/engine/quantize/fp16.ts';
import { quantizeWeightOnly } from '../../main/engine/quantize/weight-only.ts';
import { mapArchitecture } from '../../main/engine/rewrite/architecture.ts';
import { readManifest } from '../../main/engine/rewrite/manifest.ts';
import { writeOutputFolder } from '../../main/engine/rewrite/write-folder.ts';
import { fixture, STORIES, tempDir } from '../helpers/fixtures.ts';
import { runCli } from './cli-process.ts';

const tmp = tempDir('whittle-interop-layouts-');
afterAll(() => tmp.cleanup());

const PROMPTS = ['Once upon a time', 'Lily wanted to', 'The little dog was'];
const NEW_TOKENS = 24;

type Json = Record<string, unknown>;
const readJson = (file: string): Json => JSON.parse(readFileSync(file, 'utf8')) as Json;

/** Whittle's greedy generation on the folder's model.onnx: the new token ids per prompt. */
async function whittleTokens(dir: string): Promise<number[][]> {
  const decoder = await openDecoder(path.join(dir, 'model.onnx'));
  try {
    const tokenizer = await loadTokenizer(path.join(dir, 'tokenizer.json'));
    const out: number[][] = [];
    for (const p of PROMPTS) out.push((await generate(decoder, tokenizer, p, NEW_TOKENS)).newTokens);
    return out;
  } finally {
    await decoder.release();
  }
}

/**
 * Transformers.js on the folder (by its name under `root`, remote models off, fetch counted): the prompt
 * ids its tokenizer gives, the new token ids of greedy generation, and how many fetches it made.
 */
async function transformersJsTokens(root: string, name: string): Promise<{ promptIds: number[][]; tokens: number[][]; fetches: number }> {
  const { AutoModelForCausalLM, AutoTokenizer, env } = await import('@huggingface/transformers');
  const eos = (await loadTokenizer(path.join(root, name, 'tokenizer.json'))).eosId;
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = root;
  const realFetch = globalThis.fetch;
  let fetches = 0;
  globalThis.fetch = ((...args: Parameters<typeof fetch>) => { fetches++; return realFetch(...args); }) as typeof fetch;
  try {
    const tokenizer = await AutoTokenizer.from_pretrained(name);
    const model = await AutoModelForCausalLM.from_pretrained(name, { device: 'cpu' });
    try {
      const promptIds: number[][] = [];
      const tokens: number[][] = [];
      for (const p of PROMPTS) {
        const inputs = tokenizer(p);
        const ids = (inputs.input_ids.tolist() as bigint[][])[0].map(Number);
        const out = (await model.generate({ ...inputs, max_new_tokens: NEW_TOKENS, do_sample: false })) as { tolist(): bigint[][] };
        const all = out.tolist()[0].map(Number);
        promptIds.push(ids);
        // Whittle stops before EOS; Transformers.js includes it.
        const generated = all.slice(ids.length);
        tokens.push(generated[generated.length - 1] === eos ? generated.slice(0, -1) : generated);
      }
      return { promptIds, tokens, fetches };
    } finally {
      await model.dispose();
    }
  } finally {
    globalThis.fetch = realFetch;
  }
}

describe('transformers-js layout', () => {
  it('an RTN 4-bit result loads in Transformers.js from onnx/model_q4.onnx and generates what Whittle generates', async () => {
    const dir = path.join(tmp.dir, 'rtn-q4');
    const step = QuantizeRtnStep.parse({ type: 'quantize', method: 'rtn', bits: 4, blockSize: 32 });
    await quantizeWeightOnly(STORIES.model, step, dir, quietContext(tmp.dir), { tokenizerPath: STORIES.tokenizer, layout: 'transformers-js' });

    expect(readdirSync(path.join(dir, 'onnx')).sort()).toEqual(['model_q4.onnx', 'model_q4.onnx_data']);
    // The data file is model.onnx.data itself (a second name), not a second copy.
    expect(statSync(path.join(dir, 'onnx', 'model_q4.onnx_data')).ino).toBe(statSync(path.join(dir, 'model.onnx.data')).ino);
    const config = readJson(path.join(dir, 'config.json'));
    expect(config).toMatchObject({
      model_type: 'llama', hidden_size: 64, num_attention_heads: 8, num_key_value_heads: 4, num_hidden_layers: 5, vocab_size: 512, intermediate_size: 172,
      'transformers.js_config': { dtype: 'q4', use_external_data_format: { 'model_q4.onnx': 1 } },
    });
    expect(readJson(path.join(dir, 'generation_config.json'))).toEqual({ bos_token_id: 1, eos_token_id: 2 });
    const manifest = await readManifest(dir);
    expect(manifest.layout).toMatchObject({ name: 'transformers-js', model: 'onnx/model_q4.onnx', dtype: 'q4' });
    expect(manifest.output.files.map((f) => f.name)).toEqual(expect.arrayContaining(['model.onnx', 'onnx/model_q4.onnx', 'onnx/model_q4.onnx_data', 'config.json']));

    const ours = await whittleTokens(dir);
    const theirs = await transformersJsTokens(tmp.dir, 'rtn-q4');
    expect(theirs.fetches).toBe(0);
    const tokenizer = await loadTokenizer(STORIES.tokenizer);
    expect(theirs.promptIds).toEqual(PROMPTS.map((p) => tokenizer.encode(p)));
    for (const t of ours) expect(t.length).toBeGreaterThan(8);
    expect(theirs.tokens).toEqual(ours);
    expect(theirs.tokens.map((t) => tokenizer.decode(t))).toEqual(ours.map((t) => tokenizer.decode(t)));
  }, 120_000);

  it('an FP16 result is onnx/model_fp16.onnx and generates what Whittle generates', async () => {
    const dir = path.join(tmp.dir, 'fp16');
    await convertToFp16(STORIES.model, QuantizeFp16Step.parse({ type: 'quantize', method: 'fp16', keepIoTypes: false }), dir, quietContext(tmp.dir), { tokenizerPath: STORIES.tokenizer, layout: 'transformers-js' });
    expect(readdirSync(path.join(dir, 'onnx')).sort()).toEqual(['model_fp16.onnx', 'model_fp16.onnx_data']);
    expect((readJson(path.join(dir, 'config.json'))['transformers.js_config'] as Json).dtype).toBe('fp16');
    const ours = await whittleTokens(dir);
    const theirs = await transformersJsTokens(tmp.dir, 'fp16');
    expect(theirs.fetches).toBe(0);
    expect(theirs.tokens).toEqual(ours);
  }, 120_000);

  it("a source's config.json is kept with Transformers.js's section added; a float32 graph is onnx/model.onnx", async () => {
    const src = fixture('onnx', 'ortgenai', 'tiny-random-gpt2-fp32');
    const out = path.join(tmp.dir, 'gpt2-tjs');
    await writeOutputFolder(await readModel(path.join(src, 'past.onnx')), out, quietContext(tmp.dir), {
      step: null, options: { layout: 'transformers-js' }, rewrite: async () => null, manifest: () => ({ weights: [] }),
    });
    const { 'transformers.js_config': section, ...rest } = readJson(path.join(out, 'config.json'));
    expect(rest).toEqual(readJson(path.join(src, 'config.json')));
    expect(section).toEqual({ dtype: 'fp32', use_external_data_format: { 'model.onnx': 1 } });
    expect(readdirSync(path.join(out, 'onnx')).sort()).toEqual(['model.onnx', 'model.onnx_data']);
    // The relocated file reads, through its own data file, every tensor model.onnx has.
    const root = await readModel(path.join(out, 'model.onnx'));
    const moved = await readModel(path.join(out, 'onnx', 'model.onnx'));
    expect(moved.externalDataFiles).toEqual([path.join(out, 'onnx', 'model.onnx_data')]);
    const tensors = root.proto.graph!.initializer;
    expect(moved.proto.graph!.initializer.map((t) => t.name)).toEqual(tensors.map((t) => t.name));
    for (const [i, t] of tensors.entries()) expect(Buffer.from(await readTensorBytes(moved.proto.graph!.initializer[i])).equals(Buffer.from(await readTensorBytes(t)))).toBe(true);
  }, 60_000);

  it('a recipe with output.layout delivers its folder in the layout, with the metrics recorded; earlier steps stay plain', async () => {
    const out = path.join(tmp.dir, 'recipe-out');
    const work = path.join(tmp.dir, 'recipe-work');
    mkdirSync(work);
    const recipe = Recipe.parse({
      model: { path: STORIES.model }, tokenizer: { path: STORIES.tokenizer },
      steps: [{ type: 'prune', method: 'magnitude', sparsity: 0.25 }, { type: 'quantize', method: 'rtn', bits: 4, blockSize: 32 }],
      evaluation: { footprint: true }, output: { dir: out, layout: 'transformers-js' },
    });
    await runRecipe(recipe, quietContext(work));
    expect(existsSync(path.join(out, 'onnx', 'model_q4.onnx'))).toBe(true);
    expect(existsSync(path.join(work, 'step-1', 'model.onnx'))).toBe(true);
    expect(existsSync(path.join(work, 'step-1', 'onnx'))).toBe(false);
    const manifest = await readManifest(out);
    expect(manifest.layout).toMatchObject({ name: 'transformers-js' });
    expect(Array.isArray(manifest.metrics) && manifest.metrics.length > 0).toBe(true);
  }, 60_000);
});

/** Expands a genai_config name pattern ('past_key_values.%d.key') for every layer. */
const expand = (pattern: string, layers: number): string[] => Array.from({ length: layers }, (_, i) => pattern.replace('%d', String(i)));

describe('genai layout', () => {
  it('the sample gets a genai_config.json that names its graph and counts its layers and heads', async () => {
    const dir = path.join(tmp.dir, 'genai-rtn');
    await quantizeWeightOnly(STORIES.model, QuantizeRtnStep.parse({ type: 'quantize', method: 'rtn', bits: 4, blockSize: 32 }), dir, quietContext(tmp.dir), { tokenizerPath: STORIES.tokenizer, layout: 'genai' });
    const config = readJson(path.join(dir, 'genai_config.json')).model as Json;
    const decoder = config.decoder as { filename: string; inputs: Record<string, string>; outputs: Record<string, string> } & Json;
    const graph = (await readModel(path.join(dir, decoder.filename))).proto.graph!;
    const map = mapArchitecture(await readModel(STORIES.model));
    expect(decoder).toMatchObject({ num_hidden_layers: map.blocks.length, num_attention_heads: map.blocks[0].attention.heads, num_key_value_heads: map.blocks[0].attention.kvHeads, head_size: map.blocks[0].attention.headSize, hidden_size: 64 });
    expect(config).toMatchObject({ type: 'llama', vocab_size: 512, bos_token_id: 1, eos_token_id: 2 });
    const layers = decoder.num_hidden_layers as number;
    const inputs = graph.input.map((i) => i.name);
    const outputs = graph.output.map((o) => o.name);
    expect(inputs).toEqual([decoder.inputs.input_ids, ...expand(decoder.inputs.past_key_names, layers).flatMap((k, i) => [k, expand(decoder.inputs.past_value_names, layers)[i]])]);
    expect(outputs).toEqual([decoder.outputs.logits, ...expand(decoder.outputs.present_key_names, layers).flatMap((k, i) => [k, expand(decoder.outputs.present_value_names, layers)[i]])]);
    expect(decoder.inputs.attention_mask).toBeUndefined();
  }, 60_000);

  /** ORT GenAI's tiny Llama copied without (or with) its genai_config.json, written unchanged with the genai layout. */
  async function genaiFixtureCopy(name: string, keepConfig: boolean, layout: OutputLayout): Promise<string> {
    const src = fixture('onnx', 'ortgenai', 'tiny-random-LlamaForCausalLM-fp16');
    const copy = path.join(tmp.dir, `${name}-src`);
    mkdirSync(copy);
    for (const f of readdirSync(src)) if (keepConfig || f !== 'genai_config.json') copyFileSync(path.join(src, f), path.join(copy, f));
    const out = path.join(tmp.dir, name);
    await writeOutputFolder(await readModel(path.join(copy, 'model.onnx')), out, quietContext(tmp.dir), {
      step: null, options: { layout }, rewrite: async () => null, manifest: () => ({ weights: [] }),
    });
    return out;
  }

  it("for ORT GenAI's tiny Llama, the genai_config.json written agrees with its model builder's", async () => {
    const out = await genaiFixtureCopy('genai-llama', false, 'genai');
    const ours = readJson(path.join(out, 'genai_config.json')).model as Json;
    const theirs = readJson(fixture('onnx', 'ortgenai', 'tiny-random-LlamaForCausalLM-fp16', 'genai_config.json')).model as Json;
    const pick = (d: Json): Json => ({ ...d, session_options: undefined });
    expect(pick(ours.decoder as Json)).toEqual(pick(theirs.decoder as Json));
    expect({ type: ours.type, vocab_size: ours.vocab_size, context_length: ours.context_length }).toEqual({ type: theirs.type, vocab_size: theirs.vocab_size, context_length: theirs.context_length });
  }, 60_000);

  it("a source's own genai_config.json is kept", async () => {
    const out = await genaiFixtureCopy('genai-kept', true, 'genai');
    expect(readJson(path.join(out, 'genai_config.json'))).toEqual(readJson(fixture('onnx', 'ortgenai', 'tiny-random-LlamaForCausalLM-fp16', 'genai_config.json')));
    expect((await readManifest(out)).layout).toEqual({ name: 'genai', written: [] });
  }, 60_000);
});

describe('whittle quantize --layout', () => {
  it('writes the layout asked for, and names the layouts when given another', async () => {
    const home = path.join(tmp.dir, 'cli-home');
    const out = path.join(tmp.dir, 'cli-out');
    const r = await runCli(['quantize', STORIES.model, '--bits', '4', '--layout', 'transformers-js', '--out', out, '--home', home]);
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(path.join(out, 'onnx')).sort()).toEqual(['model_q4.onnx', 'model_q4.onnx_data']);
    expect((await readManifest(out)).recipe).toMatchObject({ output: { dir: out, layout: 'transformers-js' } });
    const bad = await runCli(['quantize', STORIES.model, '--layout', 'gguf', '--home', home]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/plain.*transformers-js.*genai/);
  }, 90_000);
});

describe('layouts refuse what they cannot write', () => {
  it('transformers-js without a tokenizer: INVALID_INPUT naming the fix, no folder left', async () => {
    const src = path.join(tmp.dir, 'no-tokenizer');
    mkdirSync(src);
    copyFileSync(STORIES.model, path.join(src, 'model.onnx'));
    const out = path.join(tmp.dir, 'no-tokenizer-out');
    const err = await writeOutputFolder(await readModel(path.join(src, 'model.onnx')), out, quietContext(tmp.dir), {
      step: null, options: { layout: 'transformers-js' }, rewrite: async () => null, manifest: () => ({ weights: [] }),
    }).then(() => null, (e: unknown) => e);
    expect(isWhittleError(err) && err.code).toBe('INVALID_INPUT');
    expect((err as Error).message).toMatch(/tokenizer\.json.*--tokenizer/);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(tmp.dir).filter((n) => n.startsWith('no-tokenizer-out'))).toEqual([]);
  });
});
