/**
 * One parameter count everywhere: inspection, an evaluation's footprint and quantize's before/after
 * summary report the same number for stories260K in fp32 and for its 4-bit RTN (packed MatMulNBits) and
 * INT8 dynamic (MatMulInteger and DynamicQuantizeMatMul) results — packed bytes, scales, zero points and
 * int64 shape constants are not parameters; scales and zero points show up as overhead bytes.
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { footprintFromGraph } from '../../main/engine/evaluate/footprint.ts';
import { quietContext } from '../../main/engine/job-context.ts';
import { inspectModel } from '../../main/engine/model/inspect.ts';
import { runRecipe } from '../../main/engine/pipeline/runner.ts';
import { Recipe } from '../../preload/recipe.ts';
import { STORIES, tempDir } from '../helpers/fixtures.ts';

const tmp = tempDir('whittle-params-');
afterAll(() => tmp.cleanup());

const parametersOf = (metrics: { name: string; subject: string; value: number }[], subject: string): number | undefined =>
  metrics.find((m) => m.name === 'parameters' && m.subject === subject)?.value;

describe('parameter count', () => {
  it('fp32 sample: inspect and eval agree, and leave the int64 shape constants out', async () => {
    const inspected = await inspectModel(STORIES.model);
    const footprint = await footprintFromGraph(STORIES.model);
    const evaluated = await runRecipe(Recipe.parse({ model: { path: STORIES.model }, evaluation: { footprint: true } }), quietContext(tmp.dir));
    expect(inspected.bytesByDtype.int64).toBeGreaterThan(0);
    expect(footprint.parameters).toBe(inspected.parameters);
    expect(parametersOf(evaluated.metrics, 'model')).toBe(inspected.parameters);
    expect(footprint.overheadBytes).toBe(0);
    expect(footprint.weightBytes).toBe(inspected.parameters * 4);
  });

  const steps = [
    { label: 'rtn-4', step: { type: 'quantize', method: 'rtn', bits: 4, blockSize: 32 } },
    { label: 'int8-dynamic', step: { type: 'quantize', method: 'int8-dynamic' } },
    { label: 'int8-dynamic-dqmm', step: { type: 'quantize', method: 'int8-dynamic', format: 'dynamic-quantize-matmul' } },
  ];
  for (const { label, step } of steps) {
    it(`${label}: quantize's summary, inspect and eval of the result give the original's count`, async () => {
      const original = (await inspectModel(STORIES.model)).parameters;
      const out = path.join(tmp.dir, label);
      const run = await runRecipe(Recipe.parse({ model: { path: STORIES.model }, steps: [step], evaluation: { footprint: true }, output: { dir: out } }), quietContext(tmp.dir));
      const model = path.join(out, readdirSync(out).find((f) => f.endsWith('.onnx'))!);
      const inspected = await inspectModel(model);
      const footprint = await footprintFromGraph(model);
      expect(parametersOf(run.metrics, 'original')).toBe(original);
      expect(parametersOf(run.metrics, 'result')).toBe(original);
      expect(inspected.parameters).toBe(original);
      expect(footprint.parameters).toBe(original);
      // Scales (and zero points) are bytes on disk but not parameters.
      expect(footprint.overheadBytes).toBeGreaterThan(0);
      expect(footprint.bitsPerWeight).toBeLessThan(label === 'rtn-4' ? 10 : 16);
    });
  }
});
