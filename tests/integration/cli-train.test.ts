/**
 * `whittle train` as a real child process on stories260K (B = 2, T = 32): a run stopped with SIGINT part-way
 * (the cancel writes a checkpoint and exits 1), then `whittle train --resume ID --json` continuing it from
 * that checkpoint to the last step, its JSON naming the output and the curve from step 1.
 * Training text: the paragraphs after the first 400 of the TinyStories head; held-out: the first 400.
 */
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { splitDocuments } from '../../main/engine/data/text-file.ts';
import { CURVE_FILE } from '../../main/engine/train/checkpoint-home.ts';
import { STORIES, tempDir } from '../helpers/fixtures.ts';
import { onlyJson, runCli, startCli } from './cli-process.ts';

let scratch: ReturnType<typeof tempDir>;
let home: string;
let trainText: string;
let heldOut: string;

beforeAll(async () => {
  scratch = tempDir('whittle-cli-train-run-');
  home = path.join(scratch.dir, 'home');
  const docs = splitDocuments(await readFile(STORIES.text, 'utf8'));
  trainText = path.join(scratch.dir, 'train.txt');
  heldOut = path.join(scratch.dir, 'held-out.txt');
  writeFileSync(trainText, docs.slice(400).join('\n\n'));
  writeFileSync(heldOut, docs.slice(0, 400).join('\n\n'));
});
afterAll(() => scratch.cleanup());

/** The checkpoint folder of experiment 1 once it holds a checkpoint (not only the curve), else null. */
function checkpointOfFirst(): string | null {
  const experiments = path.join(home, 'experiments');
  const job = existsSync(experiments) ? readdirSync(experiments).find((n) => n.startsWith('1-')) : undefined;
  const dir = job ? path.join(experiments, job, 'checkpoints', 'step-1') : null;
  return dir && existsSync(dir) && readdirSync(dir).some((n) => n !== CURVE_FILE && !n.startsWith('.')) ? dir : null;
}

describe('whittle train, stopped and resumed', () => {
  it('Ctrl-C keeps a checkpoint; --resume continues the same curve to the last step', async () => {
    const child = startCli([
      'train', STORIES.model, '--text', trainText, '--eval-text', heldOut, '--window', '64', '--samples', '10', '--steps', '40',
      '--batch', '2', '--len', '32', '--lr', '1e-3', '--checkpoint-every', '2', '--eval-every', '20', '--home', home,
    ]);
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (t: string) => { stderr += t; });
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    const deadline = Date.now() + 120_000;
    while (checkpointOfFirst() === null && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 50));
    expect(checkpointOfFirst(), stderr).not.toBeNull();
    child.kill('SIGINT');
    expect(await exited, stderr).toBe(1);
    expect(stderr).toMatch(/Experiment 1 was cancelled/);
    const checkpoints = checkpointOfFirst()!;

    const r = await runCli(['train', '--resume', '1', '--json', '--home', home], { timeoutMs: 180_000 });
    expect(r.code, r.stderr).toBe(0);
    const json = onlyJson(r) as {
      experimentId: number; outputDir: string; outputModel: string;
      training: { steps: number; resumedFromStep: number; curvePoints: number; firstLoss: number; finalLoss: number; evalLossBefore: number };
      original: Record<string, number>; result: Record<string, number>;
    };
    expect(json.experimentId).toBe(2);
    expect(json.training.steps).toBe(40);
    expect(json.training.resumedFromStep).toBeGreaterThanOrEqual(2);
    expect(json.training.resumedFromStep).toBeLessThan(40);
    expect(json.training.curvePoints).toBe(40);
    expect(json.training.firstLoss).toBeGreaterThan(0);
    expect(json.original.perplexity).toBeGreaterThan(1);
    expect(json.result.perplexity).toBeGreaterThan(1);
    expect(existsSync(json.outputModel)).toBe(true);
    // The finished run's checkpoints are gone; the history says what it continued.
    expect(existsSync(checkpoints)).toBe(false);
    const shown = onlyJson(await runCli(['history', 'show', '2', '--json', '--home', home])) as { kind: string; recipe: { steps: { resume?: unknown }[] } };
    expect(shown.kind).toBe('train');
    expect(shown.recipe.steps[0].resume).toEqual({ checkpoints, experiment: 1 });
  });
});
