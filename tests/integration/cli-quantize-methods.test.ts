/**
 * `whittle quantize --method …` end to end as a child process, one run per method on stories260K with
 * small settings (calibration 16 × 128 tokens; evaluation 50 documents of 128 tokens): each exits 0 with
 * one JSON document, its output model loads and runs in onnxruntime, its graph carries the method's
 * operators, and the plan's size estimate is close to the size written. Bad combinations exit 2.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Metric } from '../../preload/contract.ts';
import { QuantizeStep } from '../../preload/recipe.ts';
import { planQuantize } from '../../main/api/quantize-plan.ts';
import { openDecoder } from '../../main/engine/evaluate/decoder-session.ts';
import { inspectModel } from '../../main/engine/model/inspect.ts';
import { readManifest } from '../../main/engine/rewrite/manifest.ts';
import { readModel } from '../../main/engine/onnx/reader.ts';
import { STORIES, tempDir } from '../helpers/fixtures.ts';
import { onlyJson, runCli } from './cli-process.ts';

let scratch: ReturnType<typeof tempDir>;
let home: string;
let calibText: string;

beforeAll(() => {
  scratch = tempDir('whittle-cli-methods-');
  home = path.join(scratch.dir, 'home');
  // Calibration from the last 1,000 stories, clear of the first 50 the evaluation reads.
  const paragraphs = readFileSync(STORIES.text, 'utf8').split(/\n\s*\n/).filter((p) => p.trim());
  calibText = path.join(scratch.dir, 'calibration.txt');
  writeFileSync(calibText, `${paragraphs.slice(-1000).join('\n\n')}\n`);
});
afterAll(() => scratch.cleanup());

interface QuantizeJson {
  status: string;
  kind: string;
  outputModel: string;
  original: Record<string, number>;
  result: Record<string, number>;
  metrics: Metric[];
  details: { steps: Record<string, unknown>[] };
}

const EVAL = ['--eval-text', STORIES.text, '--samples', '50', '--window', '128'];
const CALIB = () => ['--calib-text', calibText, '--calib-samples', '16', '--calib-len', '128'];

/** Op types of the main graph, with their domain when it is not ONNX's. */
async function opsOf(model: string): Promise<Set<string>> {
  const m = await readModel(model);
  return new Set(m.proto.graph!.node.map((n) => (n.domain && n.domain !== 'ai.onnx' ? `${n.domain}.${n.opType}` : String(n.opType))));
}

async function runMethod(name: string, flags: string[]): Promise<{ doc: QuantizeJson; stderr: string }> {
  const out = path.join(scratch.dir, name);
  const r = await runCli(['quantize', STORIES.model, ...flags, ...EVAL, '--out', out, '--json', '--home', home], { timeoutMs: 150_000 });
  expect(r.code, r.stderr).toBe(0);
  const doc = onlyJson(r) as QuantizeJson;
  expect(doc).toMatchObject({ status: 'done', kind: 'quantize', outputModel: path.join(out, 'model.onnx') });

  // The output loads in onnxruntime and predicts finite logits.
  const session = await ort.InferenceSession.create(doc.outputModel);
  expect(session.inputNames).toContain('input_ids');
  await session.release();
  const decoder = await openDecoder(doc.outputModel);
  const { logits } = await decoder.forward([1, 403, 407, 261]);
  expect(logits.length).toBe(4 * decoder.vocabSize);
  expect(logits.every(Number.isFinite)).toBe(true);
  await decoder.release();

  // Quality measured against the original on the same 50 documents.
  expect(doc.original.perplexity).toBeGreaterThan(1);
  expect(doc.result.perplexity).toBeGreaterThan(1);
  expect(doc.result.top1_agreement).toBeGreaterThan(50);
  expect(doc.result.bytes_on_disk).toBeLessThan(doc.original.bytes_on_disk);

  // quantize.plan's estimate for this very step is close to what was written.
  const step = QuantizeStep.parse((await readManifest(out)).step);
  const plan = planQuantize(await inspectModel(STORIES.model), step);
  const error = Math.abs(plan.bytesAfter - doc.result.bytes_on_disk) / doc.result.bytes_on_disk;
  console.info(`${name}: estimated ${plan.bytesAfter} B, wrote ${doc.result.bytes_on_disk} B (${(100 * error).toFixed(1)} % off); perplexity ${doc.original.perplexity.toFixed(4)} → ${doc.result.perplexity.toFixed(4)}`);
  expect(error).toBeLessThan(0.1);
  return { doc, stderr: r.stderr };
}

describe('whittle quantize --method', () => {
  it('gptq: 4-bit with act-order, calibrated on text clear of the evaluation', async () => {
    const { doc } = await runMethod('gptq', ['--method', 'gptq', '--bits', '4', '--act-order', '--percdamp', '0.02', ...CALIB(), '--8bit', 'down_proj']);
    const step = doc.details.steps[0];
    expect(step).toMatchObject({ method: 'gptq', actOrder: true, percdamp: 0.02, calibration: { text: calibText, samples: 16, length: 128, seed: 0 } });
    const weights = step.quantizedWeights as { name: string; bits: number; loss: number }[];
    expect(weights).toHaveLength(35);
    expect(weights.filter((w) => w.bits === 8).map((w) => w.name).every((n) => /down_proj/.test(n))).toBe(true);
    expect(weights.filter((w) => w.bits === 8)).toHaveLength(5);
    expect(weights.every((w) => Number.isFinite(w.loss))).toBe(true);
    expect(await opsOf(doc.outputModel)).toContain('com.microsoft.MatMulNBits');
  });

  it('rtn stays the default method, with the previous flags', async () => {
    const { doc } = await runMethod('rtn', ['--bits', '8', '--block-size', '64']);
    expect(doc.details.steps[0]).toMatchObject({ method: 'rtn', bits: 8, blockSize: 64 });
    expect(Math.abs(doc.result.perplexity / doc.original.perplexity - 1)).toBeLessThan(0.01);
  });

  it('fp16: float16 weights, float32 graph inputs and outputs', async () => {
    const { doc } = await runMethod('fp16', ['--method', 'fp16', '--keep-io-types']);
    const step = doc.details.steps[0];
    expect(step).toMatchObject({ method: 'fp16', keepIoTypes: true });
    expect(step.converted as number).toBeGreaterThan(30);
    expect(Math.abs(doc.result.perplexity / doc.original.perplexity - 1)).toBeLessThan(0.005);
    const model = await readModel(doc.outputModel);
    expect(model.proto.graph!.output.find((o) => o.name === 'logits')!.type!.tensorType!.elemType).toBe(1);
  });

  it('int8-dynamic: DynamicQuantizeMatMul, one scale per tensor', async () => {
    const { doc } = await runMethod('int8-dynamic', ['--method', 'int8-dynamic', '--format', 'dynamic-quantize-matmul', '--no-per-channel']);
    expect(doc.details.steps[0]).toMatchObject({ method: 'int8-dynamic', format: 'dynamic-quantize-matmul', perChannel: false, quantized: 35 });
    expect(await opsOf(doc.outputModel)).toContain('com.microsoft.DynamicQuantizeMatMul');
  });

  it('int8-static: percentile ranges, an excluded node, and a warning when calibration is the evaluation text', async () => {
    const inspection = await inspectModel(STORIES.model);
    const q0 = inspection.quantizable.find((w) => w.name === 'model.layers.0.self_attn.q_proj.weight_t')!;
    const { doc, stderr } = await runMethod('int8-static', [
      '--method', 'int8-static', '--calib-text', STORIES.text, '--calib-samples', '16', '--calib-len', '128',
      '--range', 'percentile', '--percentile', '99.99', '--exclude', `^${q0.node}$`,
    ]);
    expect(stderr).toContain('calibration and evaluation use the same text');
    const step = doc.details.steps[0];
    expect(step).toMatchObject({ method: 'int8-static', rangeMethod: 'percentile', percentile: 99.99, quantized: 34 });
    expect((step.skippedNodes as { name: string; reason: string }[]).find((n) => n.name === q0.node)?.reason).toMatch(/exclude pattern/);
    const ops = await opsOf(doc.outputModel);
    expect(ops).toContain('QuantizeLinear');
    expect(ops).toContain('DequantizeLinear');
  });

  it('refuses flags of another method, missing calibration and contradictions with exit 2, before any job', async () => {
    const cases: [string[], RegExp][] = [
      [['--method', 'fp16', '--bits', '4', '--act-order'], /These flags do not apply to --method fp16: --bits \(rtn, gptq, qat\), --act-order \(gptq\)/],
      [['--method', 'rtn', '--calib-text', STORIES.text], /This flag does not apply to --method rtn: --calib-text \(gptq, int8-static\)/],
      [['--method', 'int8-dynamic', '--8bit', 'q_proj'], /--8bit \(rtn, gptq\)/],
      [['--method', 'gptq'], /--method gptq calibrates on real text: give --calib-text FILE/],
      [['--method', 'int8-static', '--calib-samples', '16'], /--method int8-static calibrates on real text: give --calib-text FILE/],
      [['--method', 'int8-dynamic', '--format', 'qdq'], /--format qdq is not a format of --method int8-dynamic; choose matmulinteger or dynamic-quantize-matmul/],
      [['--method', 'int8-static', '--calib-text', STORIES.text, '--percentile', '99.9'], /--percentile only applies with --range percentile/],
      [['--method', 'int8-static', '--calib-text', STORIES.text, '--per-channel', '--no-per-channel'], /--per-channel and --no-per-channel contradict each other/],
      [['--method', 'gptq', '--calib-text', STORIES.text, '--percdamp', 'lots'], /--percdamp needs a number, got "lots"/],
      [['--method', 'gptq', '--calib-text', STORIES.text, '--percdamp', '2'], /--percdamp: Too big: expected number to be <=1/],
      [['--method', 'gptq', '--calib-text', STORIES.text, '--calib-len', '4'], /--calib-len must be at least 8, got 4/],
      [['--method', 'int8-static', '--calib-text', path.join(scratch.dir, 'missing.txt')], /The calibration text file .*missing\.txt does not exist/],
      [['--method', 'int8-static', '--calib-text', STORIES.text, '--exclude', 'MatMul_('], /--exclude "MatMul_\(" is not a valid regular expression/],
      [['--method', 'awq'], /--method must be one of rtn, gptq, fp16, int8-dynamic, int8-static, qat; got "awq"/],
    ];
    for (const [flags, message] of cases) {
      const r = await runCli(['quantize', STORIES.model, ...flags, '--home', home]);
      expect(r.code, `${flags.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr, flags.join(' ')).toMatch(message);
    }
  });

  it('whittle run reads a calibration path relative to the recipe file and checks it before any job', async () => {
    const dir = path.join(scratch.dir, 'recipes');
    mkdirSync(dir, { recursive: true });
    const file = path.join(dir, 'sensitivity.json');
    writeFileSync(file, JSON.stringify({
      model: { path: STORIES.model }, tokenizer: { path: STORIES.tokenizer },
      steps: [{ type: 'sensitivity', quantize: { type: 'quantize', method: 'rtn' }, calibration: { text: 'calib/missing.txt' } }],
    }));
    const r = await runCli(['run', file, '--home', home]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain(`The calibration text file ${path.join(dir, 'calib', 'missing.txt')} does not exist`);
  });
});
