// runRecipe end to end on stories260K: what the engine process calls for a job.
import { copyFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { RTN } from '../../preload/methods.ts';
import { Recipe, type RecipeInput } from '../../preload/recipe.ts';
import { WhittleError } from '../../main/engine/errors.ts';
import { quietContext, type JobContext, type Progress } from '../../main/engine/job-context.ts';
import { runRecipe } from '../../main/engine/pipeline/runner.ts';
import type { StepRegistry } from '../../main/engine/pipeline/registry.ts';
import { fixture, STORIES, tempDir } from '../helpers/fixtures.ts';

const tmp = tempDir();
/** A stand-in for RTN that copies the model and says so in its details. */
const COPY = { ...RTN, details: z.looseObject({ copied: z.literal(true) }) };
afterAll(() => tmp.cleanup());

const recipe = (over: Partial<RecipeInput> = {}): Recipe => Recipe.parse({
  model: { path: STORIES.model },
  tokenizer: { path: STORIES.tokenizer },
  evaluation: {
    perplexity: { text: STORIES.text, maxSamples: 40 },
    speed: { promptTokens: 16, decodeTokens: 8, repeats: 1, threads: 1 },
    samples: { prompts: ['Once upon a time', 'Lily had a red ball'], maxNewTokens: 12 },
  },
  ...over,
});

function recordingContext(signal?: AbortSignal): JobContext & { events: Progress[] } {
  const events: Progress[] = [];
  return { ...quietContext(tmp.dir, signal), events, progress: (p: Progress) => { events.push(p); } };
}

async function failure(p: Promise<unknown>): Promise<WhittleError> {
  try { await p; } catch (e) { expect(e).toBeInstanceOf(WhittleError); return e as WhittleError; }
  throw new Error('expected a failure');
}

describe('runRecipe', () => {
  it('evaluates a model: perplexity, speed, footprint and samples as metrics and details', async () => {
    const ctx = recordingContext();
    const result = await runRecipe(recipe(), ctx);
    const byName = Object.fromEntries(result.metrics.map((m) => [m.name, m]));
    expect(Object.keys(byName).sort()).toEqual([
      'bits_per_weight', 'bytes_on_disk', 'decode_tokens_per_s', 'decode_tokens_per_s_max', 'decode_tokens_per_s_min', 'eval_seconds', 'eval_tokens_per_s', 'parameters',
      'perplexity', 'predicted_tokens', 'prefill_ms', 'prefill_ms_max', 'prefill_ms_min', 'prefill_tokens', 'speed_repeats', 'speed_threads',
    ]);
    expect(result.metrics.every((m) => m.subject === 'model' && Number.isFinite(m.value))).toBe(true);
    expect(byName.perplexity.value).toBeGreaterThan(3);
    expect(byName.perplexity.value).toBeLessThan(6);
    expect(byName.prefill_tokens.value).toBe(16);
    expect(result.artefacts).toEqual([]);

    const model = (result.details.evaluation as Record<string, Record<string, unknown>>).model;
    expect(model.decoder).toMatchObject({ layout: 'hf-cache', vocabSize: 512 });
    expect(model.perplexity).toMatchObject({ protocol: 'documents', window: 256, samples: 40 });
    expect((model.perplexity as { sampleNll: number[] }).sampleNll).toHaveLength(40);
    expect(model.speed).toMatchObject({ decodeMode: 'kv-cache', threads: 1 });
    const samples = model.samples as { prompt: string; text: string }[];
    expect(samples.map((s) => s.prompt)).toEqual(['Once upon a time', 'Lily had a red ball']);
    expect(samples.every((s) => s.text.startsWith(s.prompt) && s.text.length > s.prompt.length)).toBe(true);

    const phases = [...new Set(ctx.events.map((e) => e.phase))];
    expect(phases).toEqual(['load', 'evaluate:perplexity', 'evaluate:speed', 'evaluate:footprint', 'evaluate:samples']);
  });

  it('checks every input before any work', async () => {
    const cases: [Recipe, string, string][] = [
      [recipe({ model: { path: path.join(tmp.dir, 'missing.onnx') } }), 'NOT_FOUND', 'does not exist'],
      [recipe({ tokenizer: undefined }), 'INVALID_INPUT', 'The recipe asks for perplexity, which needs a tokenizer'],
      [recipe({ tokenizer: { path: fixture('tokenizers', 'gpt2', 'tokenizer.json') } }), 'INVALID_INPUT', 'The tokenizer has 50257 tokens but the model predicts 512: they do not belong together.'],
    ];
    const empty = path.join(tmp.dir, 'empty.txt');
    writeFileSync(empty, '\n\n');
    cases.push([recipe({ evaluation: { perplexity: { text: empty } } }), 'INVALID_INPUT', 'empty.txt is empty']);
    const notModel = path.join(tmp.dir, 'notes.onnx');
    writeFileSync(notModel, 'not a model');
    cases.push([recipe({ model: { path: notModel } }), 'MODEL_PARSE', 'onnxruntime could not load notes.onnx']);

    for (const [r, code, message] of cases) {
      const ctx = recordingContext();
      const e = await failure(runRecipe(r, ctx));
      expect([e.code, e.message]).toEqual([code, expect.stringContaining(message)]);
      expect(ctx.events.some((p) => p.phase.startsWith('evaluate:'))).toBe(false);
    }
  });

  it('refuses steps it has no runner for, before any work', async () => {
    const ctx = recordingContext();
    const e = await failure(runRecipe(recipe({ steps: [{ type: 'quantize', method: 'rtn' }] }), ctx, { steps: {} }));
    expect(e.code).toBe('INVALID_INPUT');
    expect(e.message).toContain('Step 1 of the recipe is a quantize (rtn) step, which this version of Whittle cannot run yet.');
    expect(ctx.events).toEqual([]);
  });

  it('rejects a recipe that does not follow the schema', async () => {
    const e = await failure(runRecipe({ model: { path: '' } } as unknown as Recipe, recordingContext()));
    expect(e.code).toBe('INVALID_INPUT');
    expect(e.message).toContain('model.path');
  });

  it('footprint alone needs no tokenizer and no decoder layout', async () => {
    const result = await runRecipe(Recipe.parse({ model: { path: fixture('onnx', 'node-tests', 'test_softmax_example', 'model.onnx') } }), recordingContext());
    expect(result.metrics.map((m) => m.name)).toEqual(['bytes_on_disk', 'parameters', 'bits_per_weight']);
  });

  it('runs steps in order and evaluates the original beside the result', async () => {
    const copies: string[] = [];
    const steps: StepRegistry = {
      'quantize:rtn': {
        description: COPY,
        async run({ modelPath, index }, ctx) {
          const out = path.join(ctx.workDir, `step${index}.onnx`);
          copyFileSync(modelPath, out);
          copies.push(modelPath);
          return { modelPath: out, artefacts: [{ kind: 'model', path: out, bytes: null }], details: { copied: true } };
        },
      },
    };
    const r = recipe({
      steps: [{ type: 'quantize', method: 'rtn' }, { type: 'quantize', method: 'rtn', bits: 8 }],
      evaluation: { perplexity: { text: STORIES.text, maxSamples: 10 }, footprint: true },
    });
    const result = await runRecipe(r, recordingContext(), { steps });
    expect(copies).toEqual([STORIES.model, path.join(tmp.dir, 'step0.onnx')]);
    expect(result.artefacts.map((a) => path.basename(a.path))).toEqual(['step0.onnx', 'step1.onnx']);
    const ppl = result.metrics.filter((m) => m.name === 'perplexity');
    expect(ppl.map((m) => m.subject)).toEqual(['original', 'result']);
    expect(ppl[0].value).toBe(ppl[1].value); // the steps only copied the model
    expect((result.details.steps as unknown[]).length).toBe(2);
  });

  it('refuses step details that do not match the step description, naming the step and the field', async () => {
    const steps: StepRegistry = {
      'quantize:rtn': {
        description: COPY,
        async run({ modelPath, index }, ctx) {
          const out = path.join(ctx.workDir, `bad${index}.onnx`);
          copyFileSync(modelPath, out);
          return { modelPath: out, artefacts: [{ kind: 'model', path: out, bytes: null }], details: { copied: 'yes' } };
        },
      },
    };
    const e = await failure(runRecipe(recipe({ steps: [{ type: 'quantize', method: 'rtn' }], evaluation: { footprint: true } }), recordingContext(), { steps }));
    expect(e.code).toBe('INTERNAL');
    expect(e.message).toContain('Step 1 of the recipe (RTN — round to nearest)');
    expect(e.message).toContain('copied');
  });

  it('refuses a step that reads text when the recipe has no tokenizer, before any work', async () => {
    const r = Recipe.parse({
      model: { path: STORIES.model },
      steps: [{ type: 'quantize', method: 'rtn' }, { type: 'quantize', method: 'int8-static', calibration: { text: STORIES.text } }],
    });
    const ctx = recordingContext();
    const e = await failure(runRecipe(r, ctx));
    expect(e.code).toBe('INVALID_INPUT');
    expect(e.message).toContain('Step 2 of the recipe (INT8 static (QDQ)) reads text, which needs a tokenizer');
    expect(ctx.events).toEqual([]);
  });

  it('stops with CANCELLED when the job is cancelled mid-evaluation', async () => {
    const controller = new AbortController();
    let lastDone = 0;
    const ctx = { ...recordingContext(controller.signal), progress: (p: Progress) => {
      if (p.phase !== 'evaluate:perplexity') return;
      lastDone = p.done;
      if (p.done > 0) controller.abort();
    } };
    const e = await failure(runRecipe(recipe({ evaluation: { perplexity: { text: STORIES.text, maxSamples: 400 } } }), ctx));
    expect(e.code).toBe('CANCELLED');
    expect(lastDone).toBe(16); // one batch of 16 documents, then it stopped
  });
});
