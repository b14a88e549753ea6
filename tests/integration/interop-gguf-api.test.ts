/**
 * history.evaluateGguf through the real app (in-memory transport, real engine worker, real llama.cpp on
 * the GGUF worker thread): a GPTQ 4-bit block-32 asymmetric run of the sample, then its result exported as
 * Q4_1 (the default for such a result: the codes carried over exactly) and evaluated in llama.cpp on the
 * experiment's own text, protocol and prompts — llama.cpp's perplexity within 1 % of onnxruntime's, and
 * the comparison recorded in the experiment's details.
 * Refusals: an experiment without a result, a type the engine refuses for a 4-bit result.
 */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RecipeInput } from '../../preload/contract.ts';
import { recordedGgufComparisons } from '../../preload/gguf.ts';
import { WhittleCallError } from '../../preload/wire.ts';
import { createWhittleApp, type WhittleApp } from '../../main/app.ts';
import { createMemoryClient, type MemoryClient } from '../../main/api/memory-transport.ts';
import { llamaCppUnavailable } from '../../main/engine/interop/llama-cpp.ts';
import { appRoot } from '../../main/paths.ts';
import { STORIES, tempDir } from '../helpers/fixtures.ts';
import { calibrationTextFromEnd } from './quantize-gptq-helpers.ts';

const unavailable = await llamaCppUnavailable();
if (unavailable) console.warn(`llama.cpp tests skipped: ${unavailable}`);
const withLlama = unavailable ? it.skip : it;

const WORKER = path.join(appRoot(), 'main', 'jobs', 'engine-worker.ts');
const PROMPTS = ['Once upon a time', 'The little dog'];

let scratch: ReturnType<typeof tempDir>;
let app: WhittleApp;
let client: MemoryClient;
let gptq: number;
let evaluated: number;

function recipe(steps: unknown[]): RecipeInput {
  return {
    model: { path: STORIES.model }, tokenizer: { path: STORIES.tokenizer }, steps: steps as RecipeInput['steps'],
    evaluation: { perplexity: { text: STORIES.text, window: 256, maxSamples: 40 }, footprint: true, samples: { prompts: PROMPTS, maxNewTokens: 16 } },
  };
}

async function run(r: RecipeInput): Promise<number> {
  const { jobId, experimentId } = await client.call('jobs.start', { recipe: r });
  const finished = await app.jobs.whenFinished(jobId);
  expect(finished.status, JSON.stringify(finished.error)).toBe('done');
  return experimentId;
}

beforeAll(async () => {
  scratch = tempDir('whittle-gguf-api-');
  app = createWhittleApp({ home: path.join(scratch.dir, 'home'), transport: 'memory', workerPath: WORKER });
  client = createMemoryClient(app.router, app.events);
  gptq = await run(recipe([{
    type: 'quantize', method: 'gptq', bits: 4, blockSize: 32, symmetric: false,
    calibration: { text: calibrationTextFromEnd(scratch.dir), samples: 16, length: 128, seed: 0 },
  }]));
  evaluated = await run({ ...recipe([]), evaluation: { perplexity: { text: STORIES.text, window: 256, maxSamples: 4 } } });
}, 180_000);

afterAll(async () => {
  client?.close();
  await app?.close();
  scratch?.cleanup();
});

describe('history.evaluateGguf', () => {
  withLlama('GPTQ 4-bit → Q4_1 by default, exact; llama.cpp perplexity within 1 % of the ONNX result on the same samples; generations for the same prompts', async () => {
    const c = await client.call('history.evaluateGguf', { id: gptq });
    expect(c.type).toBe('q4_1');
    expect(c.exactFromNBits).toBe(true);
    expect(path.dirname(c.path)).toBe(path.dirname(app.history.get(gptq).artefacts.find((a) => a.kind === 'model')!.path));
    expect(existsSync(c.path)).toBe(true);
    expect(statSync(c.path).size).toBe(c.bytes);
    expect(c.protocol).toMatchObject({ text: STORIES.text, protocol: 'documents', window: 256, maxSamples: 40, samples: 40 });
    const onnx = app.history.get(gptq).metrics.find((m) => m.subject === 'result' && m.name === 'perplexity')!.value;
    const predicted = app.history.get(gptq).metrics.find((m) => m.subject === 'result' && m.name === 'predicted_tokens')!.value;
    expect(c.protocol.predictedTokens).toBe(predicted);
    expect(c.onnx.perplexity).toBe(onnx);
    expect(Math.abs(c.llamaCpp.perplexity! / onnx - 1)).toBeLessThan(0.01);
    expect(c.llamaCpp.decodeTokensPerS).toBeGreaterThan(0);
    expect(c.llamaCpp.generations.map((g) => g.prompt)).toEqual(PROMPTS);
    expect(c.onnx.generations.map((g) => g.prompt)).toEqual(PROMPTS);
    expect(c.llamaCpp.generations.every((g) => g.completion.length > 0)).toBe(true);
    // Recorded in the history: the experiment's details hold the latest comparison of each type.
    expect(recordedGgufComparisons(app.history.get(gptq).details).q4_1).toEqual(c);
  }, 120_000);

  withLlama('a type that would requantize GPTQ codes is the engine\'s error', async () => {
    const e = await client.call('history.evaluateGguf', { id: gptq, type: 'q8_0' }).then(() => null, (err: unknown) => err);
    expect(e).toBeInstanceOf(WhittleCallError);
    expect((e as WhittleCallError).code).toBe('INVALID_INPUT');
  }, 60_000);

  it('an experiment without a result beside the original is refused, naming why', async () => {
    const e = await client.call('history.evaluateGguf', { id: evaluated }).then(() => null, (err: unknown) => err);
    expect(e).toBeInstanceOf(WhittleCallError);
    expect((e as WhittleCallError).code).toBe('INVALID_INPUT');
    expect((e as WhittleCallError).message).toContain('wrote no model to compare');
  }, 30_000);

  it('an unknown type is refused by the contract', async () => {
    const e = await client.call('history.evaluateGguf', { id: gptq, type: 'q2_k' as never }).then(() => null, (err: unknown) => err);
    expect(e).toBeInstanceOf(WhittleCallError);
    expect((e as WhittleCallError).code).toBe('INVALID_INPUT');
  });
});
