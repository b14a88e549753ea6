/**
 * Float16 conversion on real models and real onnxruntime sessions: stories260K's perplexity through the
 * recipe runner, graph I/O types with and without keepIoTypes, the tiny GPT-2's contrib ops, an fp16
 * model refused, tensors beyond float16's range kept (not clamped), If/Loop bodies, and cancellation.
 */
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WhittleError } from '../../main/engine/errors.ts';
import { openDecoder } from '../../main/engine/evaluate/decoder-session.ts';
import { quietContext, type Progress } from '../../main/engine/job-context.ts';
import { AttributeType, type AttributeProto, type GraphProto, type ModelProto } from '../../main/engine/onnx/proto-types.ts';
import { getAttribute } from '../../main/engine/onnx/graph.ts';
import { readModel } from '../../main/engine/onnx/reader.ts';
import { ALREADY_FP16_MESSAGE, convertToFp16 } from '../../main/engine/quantize/fp16.ts';
import { quantizeInt8Dynamic } from '../../main/engine/quantize/int8-dynamic.ts';
import { readManifest } from '../../main/engine/rewrite/manifest.ts';
import { runRecipe } from '../../main/engine/pipeline/runner.ts';
import { QuantizeFp16Step, Recipe } from '../../preload/recipe.ts';
import { fixture, STORIES, tempDir } from '../helpers/fixtures.ts';
import { buildModel, DataType, floatAttr, intAttr, makeNode, makeTensor, randomFloats, saveModel, valueInfo } from '../unit/quantize/build-model.ts';

const GPT2 = fixture('onnx', 'ortgenai', 'tiny-random-gpt2-fp32', 'past.onnx');
const LLAMA16 = fixture('onnx', 'ortgenai', 'tiny-random-LlamaForCausalLM-fp16', 'model.onnx');
const PROMPT = [1, 403, 407, 261, 378, 395, 275, 285];
const F = DataType.float32;

const step = (s: Partial<QuantizeFp16Step> = {}): QuantizeFp16Step => QuantizeFp16Step.parse({ type: 'quantize', method: 'fp16', ...s });

let tmp: ReturnType<typeof tempDir>;
beforeAll(() => { tmp = tempDir('whittle-fp16-'); });
afterAll(() => tmp.cleanup());
let counter = 0;
const outDir = (label: string): string => path.join(tmp.dir, `${label}-${counter++}`);

async function logits(modelPath: string, ids = PROMPT): Promise<Float32Array> {
  const d = await openDecoder(modelPath, { threads: 1 });
  try {
    return (await d.forward(ids)).logits;
  } finally {
    await d.release();
  }
}

function relL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0, den = 0;
  for (let i = 0; i < b.length; i++) { num += (Number(a[i]) - Number(b[i])) ** 2; den += Number(b[i]) ** 2; }
  return Math.sqrt(num / den);
}

async function io(modelPath: string): Promise<{ inputs: string[]; outputs: string[] }> {
  const s = await ort.InferenceSession.create(modelPath);
  try {
    const types = (list: readonly ort.InferenceSession.ValueMetadata[]) => list.map((m) => (m.isTensor ? m.type : 'non-tensor'));
    return { inputs: types(s.inputMetadata), outputs: types(s.outputMetadata) };
  } finally {
    await s.release();
  }
}

/** Runs a model in onnxruntime; every output as plain numbers. */
async function run(modelPath: string, feeds: Record<string, ort.Tensor>): Promise<Record<string, number[]>> {
  const s = await ort.InferenceSession.create(modelPath);
  try {
    const out = await s.run(feeds);
    return Object.fromEntries(Object.entries(out).map(([k, t]) => [k, Array.from(t.data as ArrayLike<number>, Number)]));
  } finally {
    await s.release();
  }
}

describe('stories260K', () => {
  it('through the recipe runner: perplexity within 0.1 % of float32, I/O stays float32, the 1e9 mask constant kept', async () => {
    const out = outDir('stories');
    const recipe = Recipe.parse({
      model: { path: STORIES.model },
      tokenizer: { path: STORIES.tokenizer },
      steps: [{ type: 'quantize', method: 'fp16' }],
      evaluation: { perplexity: { text: STORIES.text, protocol: 'documents', window: 256, maxSamples: 400 }, footprint: true },
      output: { dir: out },
    });
    const r = await runRecipe(recipe, quietContext(tmp.dir));
    const metric = (name: string, subject: string) => r.metrics.find((m) => m.name === name && m.subject === subject)!.value;
    const original = metric('perplexity', 'original');
    const result = metric('perplexity', 'result');
    console.log(`stories260K perplexity: float32 ${original.toFixed(6)}, float16 ${result.toFixed(6)} (${((100 * (result - original)) / original).toFixed(4)} %)`);
    expect(Math.abs(original - 4.226658)).toBeLessThan(1e-5);
    expect(Math.abs(result - original) / original).toBeLessThan(0.001);
    expect(metric('bytes_on_disk', 'result')).toBeLessThan(0.6 * metric('bytes_on_disk', 'original'));

    const details = (r.details.steps as Record<string, unknown>[])[0];
    expect(details).toMatchObject({ method: 'fp16', keepIoTypes: true });
    expect(details.keptFp32).toContainEqual({ name: 'neg_big', reason: 'max |x| = 1.0e9 exceeds fp16\'s 65504; kept in float32' });
    expect(details.converted).toBeGreaterThan(40);
    const types = await io(path.join(out, 'model.onnx'));
    expect(new Set(types.inputs.slice(1))).toEqual(new Set(['float32']));
    expect(new Set(types.outputs)).toEqual(new Set(['float32']));
    const manifest = await readManifest(out);
    expect((manifest.fp16 as { keptFp32: unknown[] }).keptFp32).toEqual(details.keptFp32);
    expect(manifest.weights.filter((w) => w.status === 'skipped').map((w) => w.name)).toContain('neg_big');
    expect(existsSync(path.join(out, 'tokenizer.json'))).toBe(true);
  });

  it('keepIoTypes false: inputs, cache and logits are float16, and the model still agrees with float32', async () => {
    const r = await convertToFp16(STORIES.model, step({ keepIoTypes: false }), outDir('io16'), quietContext(tmp.dir));
    const types = await io(r.modelPath);
    expect(types.inputs[0]).toBe('int64');
    expect(new Set(types.inputs.slice(1))).toEqual(new Set(['float16']));
    expect(new Set(types.outputs)).toEqual(new Set(['float16']));
    const g = (await readModel(r.modelPath)).proto.graph!;
    expect(g.initializer.filter((t) => t.dataType === DataType.float16).length).toBe(r.converted);
    expect(relL2(await logits(r.modelPath), await logits(STORIES.model))).toBeLessThan(5e-3);
  });

  it('keep patterns keep initializers and nodes in float32', async () => {
    const r = await convertToFp16(STORIES.model, step({ keep: ['^model\\.layers\\.0\\.', '^MatMul_25$'] }), outDir('keep'), quietContext(tmp.dir));
    expect(r.keptFp32.filter((k) => k.name.startsWith('model.layers.0.')).length).toBeGreaterThan(3);
    expect(r.fp32Nodes.find((n) => n.name === 'MatMul_25')?.reason).toMatch(/keep pattern/);
    const g = (await readModel(r.modelPath)).proto.graph!;
    expect(g.initializer.find((t) => t.name === 'model.layers.0.self_attn.q_proj.weight_t')?.dataType).toBe(F);
    expect(relL2(await logits(r.modelPath), await logits(STORIES.model))).toBeLessThan(5e-3);
  });

  it('cancelling after the first progress event leaves nothing that looks finished', async () => {
    const out = outDir('cancel');
    const ac = new AbortController();
    const events: Progress[] = [];
    const ctx = { ...quietContext(tmp.dir, ac.signal), progress: (p: Progress) => { events.push(p); ac.abort(); } };
    const e = await convertToFp16(STORIES.model, step(), out, ctx).catch((x) => x);
    expect(e).toBeInstanceOf(WhittleError);
    expect(e.code).toBe('CANCELLED');
    expect(events.length).toBe(1);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(tmp.dir).filter((f) => f.startsWith(path.basename(out)))).toEqual([]);
  });

  it('an INT8 dynamic model converts too: its quantizers stay float32', async () => {
    const q = await quantizeInt8Dynamic(STORIES.model, { type: 'quantize', method: 'int8-dynamic', format: 'matmulinteger', perChannel: true, keep: [] }, outDir('int8'), quietContext(tmp.dir));
    const r = await convertToFp16(q.modelPath, step(), outDir('int8-fp16'), quietContext(tmp.dir));
    expect(r.fp32Nodes.filter((n) => n.op === 'DynamicQuantizeLinear').length).toBeGreaterThan(0);
    expect(relL2(await logits(r.modelPath), await logits(q.modelPath))).toBeLessThan(0.05);
  });
});

describe('fixture decoders', () => {
  it('tiny GPT-2 (Attention, EmbedLayerNormalization, SkipLayerNormalization, FastGelu) converts, loads and runs', async () => {
    const r = await convertToFp16(GPT2, step(), outDir('gpt2'), quietContext(tmp.dir));
    expect(r.converted).toBeGreaterThan(20);
    expect(r.fp32Nodes.every((n) => n.op === 'com.microsoft.SkipLayerNormalization')).toBe(true);
    const ids = [5, 6, 7, 8];
    const err = relL2(await logits(r.modelPath, ids), await logits(GPT2, ids));
    console.log(`tiny GPT-2 float16: relative L2 of logits ${err.toExponential(2)}`);
    expect(err).toBeLessThan(1e-2);
  });

  it('an fp16 model is refused: nothing to convert, and no output folder', async () => {
    const out = outDir('llama16');
    const e = await convertToFp16(LLAMA16, step(), out, quietContext(tmp.dir)).catch((x) => x);
    expect(e).toBeInstanceOf(WhittleError);
    expect(e.code).toBe('INVALID_INPUT');
    expect(e.message).toBe(ALREADY_FP16_MESSAGE);
    expect(existsSync(out)).toBe(false);
  });
});

describe('values outside float16', () => {
  // y = MatMul(x ⊙ big, W) + x ⊙ k + tiny, with big = [1.2e5, −7e4, 3, 0.5], k = −2e5 (a Constant),
  // tiny = [1e-9, 2e-9, 3e-9, 0.5]; x ∈ [−0.1, 0.1], so every product is well inside float16.
  function largeModel(): ModelProto {
    return buildModel({
      nodes: [
        makeNode({ opType: 'Mul', inputs: ['x', 'big'], outputs: ['m'], name: 'scale' }),
        makeNode({ opType: 'MatMul', inputs: ['m', 'W'], outputs: ['p'], name: 'mm' }),
        makeNode({ opType: 'Constant', inputs: [], outputs: ['k'], name: 'k', attributes: [floatAttr('value_float', -2e5)] }),
        makeNode({ opType: 'Mul', inputs: ['x', 'k'], outputs: ['xk'], name: 'scale_k' }),
        makeNode({ opType: 'Add', inputs: ['xk', 'tiny'], outputs: ['xt'], name: 'add_tiny' }),
        makeNode({ opType: 'Add', inputs: ['p', 'xt'], outputs: ['y'], name: 'add' }),
      ],
      initializers: [
        makeTensor('big', F, [4], Float32Array.of(1.2e5, -7e4, 3, 0.5)),
        makeTensor('W', F, [4, 4], randomFloats(16, 3, 0.01)),
        makeTensor('tiny', F, [4], Float32Array.of(1e-9, 2e-9, 3e-9, 0.5)),
      ],
      inputs: [valueInfo('x', F, [2, 4])],
      outputs: [valueInfo('y', F, [2, 4])],
      opset: 17,
    });
  }

  it('are kept in float32 and listed, never clamped: the outputs stay those of the float32 model', async () => {
    const src = path.join(tmp.dir, 'large.onnx');
    await saveModel(largeModel(), src, false);
    const r = await convertToFp16(src, step(), outDir('large'), quietContext(tmp.dir));
    expect(r.keptFp32).toContainEqual({ name: 'big', reason: 'max |x| = 1.2e5 exceeds fp16\'s 65504; kept in float32' });
    expect(r.keptFp32).toContainEqual({ name: 'k', reason: 'max |x| = 2.0e5 exceeds fp16\'s 65504; kept in float32' });
    expect(r.warnings).toEqual(['tiny: 75 % of its 4 nonzero values underflow to 0 in float16']);
    expect(r.fp32Nodes.map((n) => n.name).sort()).toEqual(['k', 'scale', 'scale_k']);
    const g = (await readModel(r.modelPath)).proto.graph!;
    expect(g.initializer.find((t) => t.name === 'big')!.dataType).toBe(F);
    expect(getAttribute(g.node.find((n) => n.name === 'k')!, 'value')!.t!.dataType).toBe(F);
    expect(g.initializer.find((t) => t.name === 'W')!.dataType).toBe(DataType.float16);

    const x = new ort.Tensor('float32', randomFloats(8, 7, 0.1), [2, 4]);
    const want = (await run(src, { x })).y;
    const got = (await run(r.modelPath, { x })).y;
    const err = Math.max(...got.map((v, i) => Math.abs(v - want[i]) / Math.max(1, Math.abs(want[i]))));
    console.log(`large constants: max relative error ${err.toExponential(2)}; outputs up to ${Math.max(...want.map(Math.abs)).toFixed(0)}`);
    expect(err).toBeLessThan(2e-3);
    // A converter clamping 1.2e5 to 65504 would be off by ~45 % in the first channel.
    expect(Math.max(...want.map(Math.abs))).toBeGreaterThan(1000);
  });
});

describe('subgraphs', () => {
  const graphAttr = (name: string, g: GraphProto): AttributeProto => ({
    name, type: AttributeType.GRAPH, g, floats: [], ints: [], strings: [], tensors: [], graphs: [], sparseTensors: [], typeProtos: [],
  });
  const body = (spec: Pick<GraphProto, 'node' | 'input' | 'output' | 'initializer'> & { name: string }): GraphProto => ({
    sparseInitializer: [], valueInfo: [], quantizationAnnotation: [], metadataProps: [], ...spec,
  });

  it('If branches and a Loop body are converted consistently with the graph around them', async () => {
    // If(c): then = Softmax(MatMul(x, W1)) with W1 local to the branch; else = MatMul(x, W2) + b (outer).
    const thenBranch = body({
      name: 'then',
      node: [makeNode({ opType: 'MatMul', inputs: ['x', 'W1'], outputs: ['t1'], name: 't_mm' }), makeNode({ opType: 'Softmax', inputs: ['t1'], outputs: ['t_out'], name: 't_softmax' })],
      initializer: [makeTensor('W1', F, [4, 3], randomFloats(12, 11))],
      input: [],
      output: [valueInfo('t_out', F, [2, 3])],
    });
    const elseBranch = body({
      name: 'else',
      node: [makeNode({ opType: 'MatMul', inputs: ['x', 'W2'], outputs: ['e1'], name: 'e_mm' }), makeNode({ opType: 'Add', inputs: ['e1', 'b'], outputs: ['e_out'], name: 'e_add' })],
      initializer: [],
      input: [],
      output: [valueInfo('e_out', F, [2, 3])],
    });
    // Loop(n): s ← tanh(s ⊙ w) + float(i), starting from y's first row.
    const loopBody = body({
      name: 'body',
      node: [
        makeNode({ opType: 'Mul', inputs: ['s', 'w'], outputs: ['s1'], name: 'l_mul' }),
        makeNode({ opType: 'Tanh', inputs: ['s1'], outputs: ['s2'], name: 'l_tanh' }),
        makeNode({ opType: 'Cast', inputs: ['i'], outputs: ['fi'], name: 'l_cast', attributes: [intAttr('to', DataType.float32)] }),
        makeNode({ opType: 'Add', inputs: ['s2', 'fi'], outputs: ['s3'], name: 'l_add' }),
        makeNode({ opType: 'Identity', inputs: ['cond'], outputs: ['cond_out'], name: 'l_cond' }),
      ],
      initializer: [],
      input: [valueInfo('i', DataType.int64, []), valueInfo('cond', DataType.bool, []), valueInfo('s', F, [3])],
      output: [valueInfo('cond_out', DataType.bool, []), valueInfo('s3', F, [3])],
    });
    const model = buildModel({
      nodes: [
        makeNode({ opType: 'If', inputs: ['c'], outputs: ['y'], name: 'if', attributes: [graphAttr('then_branch', thenBranch), graphAttr('else_branch', elseBranch)] }),
        makeNode({ opType: 'Gather', inputs: ['y', 'zero'], outputs: ['row'], name: 'row' }),
        makeNode({ opType: 'Loop', inputs: ['n', 'true', 'row'], outputs: ['final'], name: 'loop', attributes: [graphAttr('body', loopBody)] }),
      ],
      initializers: [
        makeTensor('W2', F, [4, 3], randomFloats(12, 12)), makeTensor('b', F, [3], randomFloats(3, 13)), makeTensor('w', F, [3], randomFloats(3, 14)),
        makeTensor('zero', DataType.int64, [], BigInt64Array.of(0n)), makeTensor('n', DataType.int64, [], BigInt64Array.of(3n)), makeTensor('true', DataType.bool, [], Uint8Array.of(1)),
      ],
      inputs: [valueInfo('x', F, [2, 4]), valueInfo('c', DataType.bool, [])],
      outputs: [valueInfo('y', F, [2, 3]), valueInfo('final', F, [3])],
      opset: 17,
    });
    model.graph!.valueInfo.push(valueInfo('row', F, [3]));
    const src = path.join(tmp.dir, 'control-flow.onnx');
    await saveModel(model, src, false);

    const r = await convertToFp16(src, step(), outDir('control-flow'), quietContext(tmp.dir));
    expect(r.converted).toBe(4); // W1 (inside the then branch), W2, b, w
    expect(r.fp32Nodes.map((n) => n.name)).toEqual(['t_softmax']);
    const g = (await readModel(r.modelPath)).proto.graph!;
    expect(g.valueInfo.find((v) => v.name === 'row')!.type!.tensorType!.elemType).toBe(DataType.float16);
    const loop = getAttribute(g.node.find((n) => n.name === 'loop')!, 'body')!.g!;
    expect(loop.input[2].type!.tensorType!.elemType).toBe(DataType.float16);
    expect(getAttribute(loop.node.find((n) => n.name === 'l_cast')!, 'to')!.i).toBe(DataType.float16);

    for (const cond of [true, false]) {
      const feeds = { x: new ort.Tensor('float32', randomFloats(8, 21), [2, 4]), c: new ort.Tensor('bool', [cond], []) };
      const want = await run(src, feeds);
      const got = await run(r.modelPath, feeds);
      for (const name of ['y', 'final']) expect(relL2(got[name], want[name])).toBeLessThan(5e-3);
    }
  });
});
