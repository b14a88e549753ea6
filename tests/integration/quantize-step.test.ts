/**
 * The 'quantize' (rtn) recipe step through the real recipe runner: the step writes its output folder,
 * and the runner evaluates the original beside the result.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { quietContext } from '../../main/engine/job-context.ts';
import { inspectModel } from '../../main/engine/model/inspect.ts';
import { runRecipe } from '../../main/engine/pipeline/runner.ts';
import { estimateQuantizedSize } from '../../main/engine/quantize/estimate.ts';
import { readManifest } from '../../main/engine/rewrite/manifest.ts';
import { quantizeRtnStep } from '../../main/engine/quantize/step.ts';
import { Recipe, QuantizeRtnStep } from '../../preload/recipe.ts';
import { STORIES, tempDir } from '../helpers/fixtures.ts';

let tmp: ReturnType<typeof tempDir>;
beforeAll(() => { tmp = tempDir('whittle-qstep-'); });
afterAll(() => tmp.cleanup());

it('runs stories260K → int4 through the runner, with artefacts, details and footprints of both models', async () => {
  const out = path.join(tmp.dir, 'result');
  const recipe = Recipe.parse({
    model: { path: STORIES.model },
    tokenizer: { path: STORIES.tokenizer },
    steps: [{ type: 'quantize', method: 'rtn', bits: 4, blockSize: 32 }],
    output: { dir: out },
  });
  const r = await runRecipe(recipe, quietContext(tmp.dir), { steps: { 'quantize:rtn': quantizeRtnStep } });
  expect(r.artefacts.map((a) => a.kind)).toEqual(['folder', 'model']);
  expect(r.artefacts[0].path).toBe(out);
  expect(r.artefacts[1].path).toBe(path.join(out, 'model.onnx'));
  expect(r.artefacts[1].bytes).toBeGreaterThan(0);
  const stepDetails = (r.details.steps as Record<string, unknown>[])[0];
  expect(stepDetails).toMatchObject({ type: 'quantize', method: 'rtn', bits: 4, blockSize: 32, quantized: 35, format: 'matmulnbits' });
  expect((stepDetails.skipped as { name: string; reason: string }[]).map((s) => s.name)).toContain('model.embed_tokens.weight');
  const bytes = (subject: string) => r.metrics.find((m) => m.name === 'bytes_on_disk' && m.subject === subject)?.value;
  expect(bytes('result')).toBeLessThan(bytes('original')!);
  expect(existsSync(path.join(out, 'tokenizer.json'))).toBe(true);
  expect((await readManifest(out)).step).toMatchObject({ bits: 4 });

  // the wizard's estimate from shapes alone is close to what was written (alignment padding aside)
  const estimate = estimateQuantizedSize(await inspectModel(STORIES.model), QuantizeRtnStep.parse({ type: 'quantize', method: 'rtn' }));
  expect(estimate.perWeight.filter((w) => w.status === 'quantized').length).toBe(35);
  const written = r.artefacts[1].bytes!;
  console.log(`estimate ${estimate.bytesAfter} B, written ${written} B`);
  expect(Math.abs(estimate.bytesAfter - written) / written).toBeLessThan(0.05);
});
