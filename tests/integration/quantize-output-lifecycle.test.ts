/**
 * An output folder appears under its final name only when the whole job succeeded: the step writes it
 * under a partial name, the runner evaluates it there, writes the metrics into its whittle.json and
 * renames it last. A cancel or a failure during the evaluation leaves nothing that looks finished, and a
 * rerun to the same folder works.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { JobContext } from '../../main/engine/job-context.ts';
import { inspectModel } from '../../main/engine/model/inspect.ts';
import { runRecipe } from '../../main/engine/pipeline/runner.ts';
import { quantizeRtnStep } from '../../main/engine/quantize/step.ts';
import { readManifest } from '../../main/engine/rewrite/manifest.ts';
import { createPartialFolder, parsePartialName } from '../../main/engine/rewrite/output-folder.ts';
import { Recipe } from '../../preload/recipe.ts';
import { STORIES, tempDir } from '../helpers/fixtures.ts';

let tmp: ReturnType<typeof tempDir>;
beforeAll(() => { tmp = tempDir('whittle-lifecycle-'); });
afterAll(() => tmp.cleanup());

const steps = { 'quantize:rtn': quantizeRtnStep };

function recipeTo(out: string): Recipe {
  return Recipe.parse({
    model: { path: STORIES.model },
    steps: [{ type: 'quantize', method: 'rtn', bits: 4, blockSize: 32 }],
    evaluation: { footprint: true },
    output: { dir: out },
  });
}

/** Everything at `out` or beside it under its name (partial folders included). */
const besideOut = (out: string): string[] => readdirSync(path.dirname(out)).filter((f) => f === path.basename(out) || f.startsWith(`${path.basename(out)}.`));

function context(onProgress: (phase: string) => void = () => {}): { ctx: JobContext; abort: () => void } {
  const controller = new AbortController();
  return {
    ctx: { signal: controller.signal, workDir: tmp.dir, progress: (p) => onProgress(p.phase), log() {} },
    abort: () => controller.abort(),
  };
}

it('a cancel during the evaluation leaves no folder at the output path nor beside it', async () => {
  const out = path.join(tmp.dir, 'cancelled');
  let seenDuringEvaluation: string[] = [];
  const { ctx, abort } = context((phase) => {
    if (phase.startsWith('evaluate') && seenDuringEvaluation.length === 0) {
      seenDuringEvaluation = besideOut(out);
      abort();
    }
  });
  await expect(runRecipe(recipeTo(out), ctx, { steps })).rejects.toMatchObject({ code: 'CANCELLED' });
  // While it was evaluated the model was there, but only under a partial name.
  expect(seenDuringEvaluation).toHaveLength(1);
  expect(parsePartialName(seenDuringEvaluation[0])).toMatchObject({ target: 'cancelled', pid: process.pid });
  expect(besideOut(out)).toEqual([]);
});

it('a failure after the write leaves nothing; a rerun to the same folder then succeeds with the metrics in whittle.json', async () => {
  const out = path.join(tmp.dir, 'rerun');
  let inspected: string | null = null;
  // The original's footprint is measured; the result's fails (the model is written by then).
  const failing = async (modelPath: string) => {
    if (path.resolve(modelPath) === path.resolve(STORIES.model)) return inspectModel(modelPath);
    inspected = modelPath;
    throw new Error('disk went away');
  };
  await expect(runRecipe(recipeTo(out), context().ctx, { steps, inspect: failing })).rejects.toThrow('disk went away');
  expect(inspected).not.toBeNull();
  expect(path.basename(path.dirname(inspected!))).toMatch(/^rerun\.partial-/);
  expect(besideOut(out)).toEqual([]);

  const r = await runRecipe(recipeTo(out), context().ctx, { steps, inspect: inspectModel });
  expect(besideOut(out)).toEqual(['rerun']);
  // Every path the job reports is the final one.
  expect(r.artefacts.map((a) => a.path)).toEqual([out, path.join(out, 'model.onnx')]);
  const step = (r.details.steps as { output: string; outputDir: string }[])[0];
  expect(step.output).toBe(path.join(out, 'model.onnx'));
  expect(step.outputDir).toBe(out);
  expect((r.details.result as { path: string }).path).toBe(path.join(out, 'model.onnx'));
  const manifest = await readManifest(out);
  expect((manifest.metrics as { name: string }[]).map((m) => m.name)).toContain('bytes_on_disk');
  expect(readdirSync(out).filter((f) => f.includes('.tmp'))).toEqual([]);
});

it('a new write removes partial folders of the same target whose writer is gone, and keeps a live one', async () => {
  const out = path.join(tmp.dir, 'stale');
  // A pid that is certainly gone: a child that has exited.
  const gone = spawnSync(process.execPath, ['-e', '0']).pid!;
  const stale = `${out}.partial-${gone}-0badc0de`;
  const live = `${out}.partial-${process.pid}-00c0ffee`;
  const other = path.join(tmp.dir, `other.partial-${gone}-0badc0de`);
  for (const dir of [stale, live, other]) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'model.onnx'), 'half written');
  }
  const partial = await createPartialFolder(out);
  expect(existsSync(stale)).toBe(false);
  expect(existsSync(live)).toBe(true);
  expect(existsSync(other)).toBe(true); // another target's: not this write's business
  await partial.discard();
  expect(existsSync(partial.dir)).toBe(false);
});
