/**
 * `whittle distill` as a real child process: bad input refused before any work with exit 2 and a message
 * naming the problem (student blocks the teacher lacks, a student with another vocabulary, no student, a
 * missing text), and a short run (a 2-block student of stories260K, B = 2, T = 32, 2 steps) whose --json
 * names the teacher, the student, the losses and the warning for an evaluation text inside the training text.
 */
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliScratch, type CliScratch } from '../helpers/cli-scratch.ts';
import { fixture, STORIES } from '../helpers/fixtures.ts';
import { onlyJson, runCli } from './cli-process.ts';

const GPT2 = fixture('onnx', 'ortgenai', 'tiny-random-gpt2-fp32', 'past.onnx');
let scratch: CliScratch['scratch'];
let home: string;
let trainText: string;
let heldOut: string;

beforeAll(async () => {
  // Held out: the first 40 paragraphs, 10 of which are also in the training text.
  ({ scratch, home, trainText, heldOut } = await cliScratch('whittle-cli-distill-', (docs) => [...docs.slice(0, 30), ...docs.slice(400, 410)]));
});
afterAll(() => scratch.cleanup());

const distill = (...args: string[]) => runCli(['distill', '--teacher', STORIES.model, '--tokenizer', STORIES.tokenizer, '--home', home, ...args]);

describe('whittle distill refuses bad input before any work', () => {
  it('student blocks the teacher lacks, another vocabulary, no student, a missing text', async () => {
    const cases: [string[], RegExp][] = [
      [['--student-blocks', '0,2,9', '--text', trainText, '--steps', '2'], /Block 9 is not one of the teacher's blocks: it has 5 blocks, numbered 0–4/],
      [['--text', trainText, '--steps', '2'], /--student-blocks 0,2,4 .* or --student FILE/],
      [['--student-blocks', '0,2', '--text', path.join(scratch.dir, 'missing.txt'), '--steps', '2'], /training text file .*missing\.txt does not exist/],
      [['--student-blocks', '0,2', '--text', trainText, '--steps', '2', '--alpha', '2'], /--alpha: alpha is a weight from 0 to 1/],
    ];
    if (existsSync(GPT2)) cases.push([['--student', GPT2, '--text', trainText, '--steps', '2'], /student's vocabulary \(1000 logits\) differs from the teacher's \(512\)/]);
    for (const [args, message] of cases) {
      const r = await distill(...args);
      expect(r.code, `${args.join(' ')}\n${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(/INTERNAL|at .*\.ts:\d+/);
    }
    expect(readdirSync(home).filter((n) => n === 'experiments')).toEqual([]);
  });
});

describe('whittle distill runs', () => {
  it('a 2-block student for 2 steps: --json names teacher, student, losses, and warns about the overlapping evaluation text', async () => {
    const out = path.join(scratch.dir, 'student');
    const r = await distill('--student-blocks', '0,4', '--text', trainText, '--steps', '2', '--batch', '2', '--len', '32', '--lr', '1e-3',
      '--eval-text', heldOut, '--window', '64', '--samples', '10', '--out', out, '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/WARNING: 10 of the 40 paragraphs of the evaluation text held-out\.txt/);
    const j = onlyJson(r) as Record<string, unknown> & { distillation: Record<string, unknown>; warnings: string[] };
    expect(j.outputDir).toBe(out);
    expect(existsSync(path.join(out, 'model.onnx'))).toBe(true);
    expect(j.distillation).toMatchObject({ steps: 2, teacher: { blocks: 5 }, student: { blocks: 2, keptBlocks: [0, 4] }, loss: { temperature: 2, alpha: 0.5, reverse: false } });
    expect(j.distillation.finalLoss).toBeGreaterThan(0);
    expect(j.warnings.some((w) => /10 of the 40 paragraphs/.test(w))).toBe(true);
    expect((j.teacher as Record<string, number>).perplexity).toBeGreaterThan(1);
    expect((j.student as Record<string, number>).perplexity).toBeGreaterThan(1);
  });

  it('whittle prune --recover-steps: the pruned model recovered with the original as teacher, --json reports both and the final folder', async () => {
    const out = path.join(scratch.dir, 'pruned-recovered');
    const r = await runCli(['prune', STORIES.model, '--tokenizer', STORIES.tokenizer, '--home', home, '--method', 'magnitude', '--sparsity', '0.5',
      '--recover-steps', '2', '--recover-text', trainText, '--eval-text', heldOut, '--window', '64', '--samples', '10', '--out', out, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const j = onlyJson(r) as Record<string, unknown> & { recovery: Record<string, unknown> | null };
    expect(j.outputDir).toBe(out);
    expect(j.outputModel).toBe(path.join(out, 'model.onnx'));
    expect(j.recovery).toMatchObject({ steps: 2 });
    expect(j.recovery!.finalLoss).toBeGreaterThan(0);
  });
});
