/**
 * Students built from a teacher's blocks (DistilBERT initialisation), end to end on real models:
 * stories260K (5 llama blocks, Hugging Face cache), the ORT GenAI GPT-2 (com.microsoft Attention, combined
 * past_N cache, weights shared by every block) and the ORT GenAI fp16 Llama (genai_config.json).
 * Each student loads in onnxruntime and its cache works (token-by-token decoding gives the logits of the
 * whole sequence at once); its architecture map finds the kept blocks; its parameters are the teacher's
 * less the dropped blocks' weights; keeping every block gives the teacher's logits exactly. Bad input is
 * refused before any work with nothing left behind, a student the user brings is checked against the
 * teacher, and a student learns: a short fine-tuning run lowers its held-out loss.
 */
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { splitDocuments } from '../../main/engine/data/text-file.ts';
import { checkStudentCompatible, describeStudent, writeStudentByBlocks, type StudentResult } from '../../main/engine/distill/student.ts';
import { openDecoder, type DecoderState } from '../../main/engine/evaluate/decoder-session.ts';
import { WhittleError } from '../../main/engine/errors.ts';
import { quietContext } from '../../main/engine/job-context.ts';
import { countParameters } from '../../main/engine/model/parameters.ts';
import { toNumber } from '../../main/engine/onnx/graph.ts';
import { readModel } from '../../main/engine/onnx/reader.ts';
import { mapArchitecture } from '../../main/engine/rewrite/architecture.ts';
import { readManifest } from '../../main/engine/rewrite/manifest.ts';
import { trainModel } from '../../main/engine/train/train-model.ts';
import type { TrainConfig } from '../../main/engine/train/types.ts';
import { fixture, STORIES, tempDir } from '../helpers/fixtures.ts';
import { saveModel, singleMatMul } from '../unit/quantize/build-model.ts';
import { calibrationTextFromEnd } from './quantize-gptq-helpers.ts';

const GPT2 = fixture('onnx', 'ortgenai', 'tiny-random-gpt2-fp32', 'past.onnx');
const FP16 = fixture('onnx', 'ortgenai', 'tiny-random-LlamaForCausalLM-fp16', 'model.onnx');
const tmp = tempDir('whittle-distill-student-');
afterAll(() => tmp.cleanup());
let n = 0;
const out = (): string => path.join(tmp.dir, `student-${n++}`);
const ctx = quietContext(tmp.dir);

const maxDiff = (a: Float32Array, b: Float32Array): number => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);

/** Logits of the whole sequence in one run, and of the same tokens decoded one at a time through the cache. */
async function fullAndCached(modelPath: string, ids: number[]): Promise<{ full: Float32Array; cached: Float32Array; vocab: number; cacheSlots: string[] }> {
  const d = await openDecoder(modelPath, { threads: 1 });
  try {
    const full = Float32Array.from((await d.forward(ids)).logits);
    const cached = new Float32Array(full.length);
    let state: DecoderState | undefined;
    for (let t = 0; t < ids.length; t++) {
      const r = await d.forward([ids[t]], state);
      cached.set(r.logits, t * d.vocabSize);
      state = r.state;
    }
    return { full, cached, vocab: d.vocabSize, cacheSlots: d.layout.cache.map((s) => `${s.past}→${s.present}`) };
  } finally {
    await d.release();
  }
}

/** Parameters of the teacher's blocks not in `keep` that no kept block also reads. */
async function droppedParameters(teacherPath: string, keep: number[]): Promise<number> {
  const model = await readModel(teacherPath);
  const map = mapArchitecture(model);
  const inits = new Map(model.proto.graph!.initializer.map((t) => [t.name ?? '', t]));
  const stay = new Set(map.blocks.filter((b) => keep.includes(b.index)).flatMap((b) => b.weights));
  const gone = new Set(map.blocks.filter((b) => !keep.includes(b.index)).flatMap((b) => b.weights).filter((w) => !stay.has(w)));
  let params = 0;
  for (const w of gone) params += inits.get(w)!.dims.reduce((a: number, d) => a * toNumber(d), 1);
  return params;
}

async function refused(p: Promise<unknown>, code = 'INVALID_INPUT'): Promise<WhittleError> {
  const e = await p.then(() => null, (x: unknown) => x);
  expect(e).toBeInstanceOf(WhittleError);
  expect((e as WhittleError).code).toBe(code);
  return e as WhittleError;
}

/** Nothing at `dest` and no partial folder beside it. */
function nothingAt(dest: string): void {
  expect(existsSync(dest)).toBe(false);
  expect(readdirSync(path.dirname(dest)).filter((f) => f.startsWith(`${path.basename(dest)}.partial-`))).toEqual([]);
}

const IDS = [1, 403, 407, 261, 378, 425, 306, 395, 370, 269, 289, 318];

describe('students of stories260K (5 llama blocks, KV cache)', () => {
  const students = new Map<string, StudentResult>();

  for (const keep of [[0, 2, 4], [0, 4]]) {
    it(`keeps blocks ${keep.join(', ')}: runs with its cache, maps ${keep.length} blocks, holds the teacher's parameters less the dropped blocks'`, async () => {
      const before = await describeStudent(STORIES.model, keep);
      const dest = out();
      const r = await writeStudentByBlocks(STORIES.model, keep, dest, ctx, { tokenizerPath: STORIES.tokenizer });
      students.set(keep.join(','), r);
      expect(r.outDir).toBe(path.resolve(dest));
      expect(r.blocks).toEqual(keep);

      // The cache: kept blocks only, renumbered 0…n−1, and decoding through it gives the full run's logits.
      const run = await fullAndCached(r.modelPath, IDS);
      expect(run.vocab).toBe(512);
      expect(run.cacheSlots).toEqual(keep.flatMap((_, j) => [`past_key_values.${j}.key→present.${j}.key`, `past_key_values.${j}.value→present.${j}.value`]));
      expect(maxDiff(run.cached, run.full)).toBeLessThan(1e-4);
      const teacher = await fullAndCached(STORIES.model, IDS);
      expect(maxDiff(run.full, teacher.full)).toBeGreaterThan(0.1);

      const student = await readModel(r.modelPath);
      const map = mapArchitecture(student);
      expect(map.family).toBe('llama');
      expect(map.blocks).toHaveLength(keep.length);
      expect(map.issues).toEqual([]);
      const teacherModel = await readModel(STORIES.model);
      expect(student.proto.opsetImport).toEqual(teacherModel.proto.opsetImport);
      expect(student.proto.graph!.input.map((v) => v.type?.tensorType?.elemType)).toEqual(teacherModel.proto.graph!.input.slice(0, student.proto.graph!.input.length).map((v) => v.type?.tensorType?.elemType));

      const params = countParameters(student.proto).parameters;
      const teacherCount = countParameters(teacherModel.proto).parameters;
      expect(params).toBe(teacherCount - (await droppedParameters(STORIES.model, keep)));
      expect(r.params).toBe(params);
      expect(r.teacherParams).toBe(teacherCount);

      // The size given before building: the same parameters and model file bytes.
      expect(before).toMatchObject({ blocks: keep, params, teacherParams: teacherCount, teacherBytes: statSync(STORIES.model).size });
      const modelBytes = ['model.onnx', 'model.onnx.data'].reduce((a, f) => a + statSync(path.join(r.outDir, f)).size, 0);
      expect(before.bytes).toBe(modelBytes);

      // Tokenizer files and whittle.json come along.
      expect(readdirSync(r.outDir).sort()).toEqual(['model.onnx', 'model.onnx.data', 'tokenizer.json', 'tokenizer_config.json', 'whittle.json']);
      const manifest = await readManifest(r.outDir) as unknown as { student: { keptBlocks: number[]; teacherBlocks: number }; output: { files: { name: string; bytes: number }[] } };
      expect(manifest.student).toMatchObject({ keptBlocks: keep, teacherBlocks: 5 });
      for (const f of manifest.output.files) expect(statSync(path.join(r.outDir, f.name)).size).toBe(f.bytes);
    });
  }

  it('keeping every block gives the teacher\'s logits exactly', async () => {
    const r = await writeStudentByBlocks(STORIES.model, [0, 1, 2, 3, 4], out(), ctx);
    const student = await fullAndCached(r.modelPath, IDS);
    const teacher = await fullAndCached(STORIES.model, IDS);
    expect(student.full).toEqual(teacher.full);
    expect(student.cached).toEqual(teacher.cached);
    expect(r.params).toBe(r.teacherParams);
  });

  it('the student of blocks 0 and 4 learns: a few fine-tuning steps lower its held-out loss', async () => {
    const student = students.get('0,4') ?? await writeStudentByBlocks(STORIES.model, [0, 4], out(), ctx);
    const evalText = path.join(tmp.dir, 'eval-head.txt');
    writeFileSync(evalText, `${splitDocuments(readFileSync(STORIES.text, 'utf8')).slice(0, 40).join('\n\n')}\n`);
    const config: TrainConfig = {
      textPath: calibrationTextFromEnd(tmp.dir, 300), tokenizerPath: STORIES.tokenizer, steps: 12, batch: 4, length: 64, accumulate: 1,
      lr: 3e-3, warmupSteps: 2, minLrRatio: 0.1, weightDecay: 0, clipNorm: 1, freeze: [], keepSparsity: false, evalTextPath: evalText, evalEvery: 1000, seed: 1, checkpointEvery: 0,
    };
    const r = await trainModel({ modelPath: student.modelPath, outDir: out(), deliver: 'final', checkpointDir: path.join(tmp.dir, 'ckpt'), resume: false, config }, ctx);
    expect(r.details.steps).toBe(12);
    expect(r.details.evalLossBefore).toBeDefined();
    expect(r.details.evalLossAfter!, `held-out loss ${r.details.evalLossBefore} → ${r.details.evalLossAfter}`).toBeLessThan(r.details.evalLossBefore! - 0.05);
    // The trained student is still the two-block student with its cache.
    const run = await fullAndCached(r.folder.modelPath, IDS);
    expect(maxDiff(run.cached, run.full)).toBeLessThan(1e-4);
    expect(mapArchitecture(await readModel(r.folder.modelPath)).blocks).toHaveLength(2);
  }, 120_000);
});

describe('students of the ORT GenAI fixtures', () => {
  it.runIf(existsSync(GPT2))('GPT-2 (contrib Attention, combined cache, shared weights): blocks 0, 2, 4 run; config files give 3 layers', async () => {
    const r = await writeStudentByBlocks(GPT2, [0, 2, 4], out(), ctx);
    const ids = [1, 45, 49, 17, 70, 33, 5, 81];
    const run = await fullAndCached(r.modelPath, ids);
    expect(run.vocab).toBe(1000);
    expect(run.cacheSlots).toEqual(['past_0→present_0', 'past_1→present_1', 'past_2→present_2']);
    expect(maxDiff(run.cached, run.full)).toBeLessThan(1e-4);
    expect(mapArchitecture(await readModel(r.modelPath)).blocks).toHaveLength(3);
    expect(r.params).toBe(r.teacherParams - (await droppedParameters(GPT2, [0, 2, 4])));
    expect(r.configs.sort()).toEqual(['config.json', 'genai_config.json']);
    const genai = JSON.parse(readFileSync(path.join(r.outDir, 'genai_config.json'), 'utf8')) as { model: { decoder: { num_hidden_layers: number; filename: string } } };
    expect(genai.model.decoder).toMatchObject({ num_hidden_layers: 3, filename: 'model.onnx' });
    const config = JSON.parse(readFileSync(path.join(r.outDir, 'config.json'), 'utf8')) as { model: { n_layer: number } };
    expect(config.model.n_layer).toBe(3);
    expect(readdirSync(r.outDir)).toEqual(expect.arrayContaining(['tokenizer.json', 'vocab.json']));
  });

  it.runIf(existsSync(FP16))('fp16 Llama (2 blocks): block 1 alone runs in float16; genai_config.json gives 1 layer', async () => {
    const before = await describeStudent(FP16, [1]);
    const r = await writeStudentByBlocks(FP16, [1], out(), ctx);
    expect(before.bytes).toBe(['model.onnx', 'model.onnx.data'].reduce((a, f) => a + statSync(path.join(r.outDir, f)).size, 0));
    expect(before.params).toBe(r.params);
    const ids = [1, 450, 4996, 17354, 1701, 432];
    const run = await fullAndCached(r.modelPath, ids);
    expect(run.vocab).toBe(32000);
    expect(run.cacheSlots).toEqual(['past_key_values.0.key→present.0.key', 'past_key_values.0.value→present.0.value']);
    expect(maxDiff(run.cached, run.full)).toBeLessThan(2e-3);
    const student = await readModel(r.modelPath);
    const teacher = await readModel(FP16);
    expect(mapArchitecture(student).blocks).toHaveLength(1);
    expect(new Set(student.proto.graph!.initializer.map((t) => t.dataType))).toEqual(new Set(teacher.proto.graph!.initializer.map((t) => t.dataType)));
    expect(student.proto.graph!.output.find((o) => o.name === 'logits')!.type?.tensorType?.elemType).toBe(teacher.proto.graph!.output.find((o) => o.name === 'logits')!.type?.tensorType?.elemType);
    expect(r.configs).toEqual(['genai_config.json']);
    const genai = JSON.parse(readFileSync(path.join(r.outDir, 'genai_config.json'), 'utf8')) as { model: { decoder: { num_hidden_layers: number } } };
    expect(genai.model.decoder.num_hidden_layers).toBe(1);
  });
});

describe('bad input: refused before any work, nothing left behind', () => {
  it('a block outside the teacher, duplicates, an empty list', async () => {
    for (const [keep, pattern] of [[[0, 5], /Block 5 .* it has 5 blocks/], [[0, 2, 2], /listed more than once/], [[], /empty/]] as const) {
      const dest = out();
      const e = await refused(writeStudentByBlocks(STORIES.model, [...keep], dest, ctx));
      expect(e.message).toMatch(pattern);
      nothingAt(dest);
      await refused(describeStudent(STORIES.model, [...keep]));
    }
  });

  it('a model whose blocks cannot be mapped says why', async () => {
    const file = path.join(tmp.dir, 'matmul.onnx');
    await saveModel(singleMatMul(new Float32Array(16).fill(0.5), 4, 4), file, false);
    const dest = out();
    const e = await refused(writeStudentByBlocks(file, [0], dest, ctx));
    expect(e.message).toMatch(/could not be mapped \(.*no attention found/);
    nothingAt(dest);
    expect((await refused(describeStudent(file, [0]))).message).toMatch(/no attention found/);
  });

  it('a cancelled write leaves nothing', async () => {
    const controller = new AbortController();
    controller.abort();
    const dest = out();
    await refused(writeStudentByBlocks(STORIES.model, [0, 4], dest, quietContext(tmp.dir, controller.signal)), 'CANCELLED');
    nothingAt(dest);
  });
});

describe('a student the user brings', () => {
  it('with the teacher\'s vocabulary and a trainable decoder layout: accepted', async () => {
    const r = await writeStudentByBlocks(STORIES.model, [1, 3], out(), ctx);
    expect(await checkStudentCompatible(STORIES.model, r.modelPath, STORIES.tokenizer)).toEqual({ vocab: 512, teacherBlocks: 5, studentBlocks: 2 });
  });

  it.runIf(existsSync(GPT2))('with another vocabulary: refused, naming both sizes', async () => {
    const e = await refused(checkStudentCompatible(STORIES.model, GPT2));
    expect(e.message).toMatch(/student's vocabulary \(1000 logits\) differs from the teacher's \(512\)/);
  });

  it.runIf(existsSync(GPT2))('a tokenizer with more tokens than the models score: refused', async () => {
    const e = await refused(checkStudentCompatible(STORIES.model, STORIES.model, path.join(path.dirname(GPT2), 'tokenizer.json')));
    expect(e.message).toMatch(/has \d+ tokens but the models score only 512/);
  });

  it('a model the engine cannot train as a decoder: refused, saying why', async () => {
    const file = path.join(tmp.dir, 'matmul-student.onnx');
    await saveModel(singleMatMul(new Float32Array(16).fill(0.5), 4, 4), file, false);
    const e = await refused(checkStudentCompatible(STORIES.model, file), 'UNSUPPORTED_MODEL');
    expect(e.message).toMatch(/cannot be trained by Whittle: it takes no input_ids/);
  });
});
