/**
 * `whittle` as a real child process on input it cannot use: a model with a state that is not a key/value
 * cache, a NUL character in a recipe path, a named pipe as text. Each exits 2 before any work, with a
 * message that names the problem.
 */
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeConvStateModel } from '../helpers/conv-state-model.ts';
import { makeFifo } from '../helpers/fifo.ts';
import { STORIES, tempDir } from '../helpers/fixtures.ts';
import { onlyJson, runCli } from './cli-process.ts';

let scratch: ReturnType<typeof tempDir>;
let home: string;
let convModel: string;

beforeAll(async () => {
  scratch = tempDir('whittle-cli-bad-input-');
  home = path.join(scratch.dir, 'home');
  convModel = await writeConvStateModel(scratch.dir);
});
afterAll(() => scratch.cleanup());

function recipeFile(name: string, recipe: unknown): string {
  const file = path.join(scratch.dir, name);
  writeFileSync(file, JSON.stringify(recipe, null, 2));
  return file;
}

describe('a model whose state is not a key/value cache', () => {
  it('whittle inspect names the input and its shape under its own kind', async () => {
    const r = await runCli(['inspect', convModel]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/kind\s+decoder-unsupported-cache/);
    expect(r.stdout).toMatch(/not supported\s+input past_conv\.0 \[batch_size, 64, 3\]/);
    const json = onlyJson(await runCli(['inspect', convModel, '--json'])) as { kind: string; unsupported: string[] };
    expect(json.kind).toBe('decoder-unsupported-cache');
    expect(json.unsupported[0]).toContain('past_conv.0 [batch_size, 64, 3]');
  });

  it('whittle eval and whittle quantize refuse it up front with that message and exit 2', async () => {
    const evaluated = await runCli(['eval', convModel, '--tokenizer', STORIES.tokenizer, '--text', STORIES.text, '--window', '64', '--samples', '4', '--home', home]);
    const out = path.join(scratch.dir, 'conv-int8');
    const quantized = await runCli(['quantize', convModel, '--bits', '8', '--tokenizer', STORIES.tokenizer, '--out', out, '--home', home]);
    for (const r of [evaluated, quantized]) {
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain('Whittle cannot run this model: input past_conv.0 [batch_size, 64, 3]');
      expect(r.stderr).not.toMatch(/INTERNAL|at .*\.ts:\d+/);
    }
    // Refused before any work: no phase past loading ran, nothing was written.
    expect(existsSync(out)).toBe(false);
  });
});

describe('weights skipped for a reason the user can change', () => {
  it('whittle quantize with a block larger than most weights\' K says so on stderr and in the step details', async () => {
    const out = path.join(scratch.dir, 'rtn-128');
    const r = await runCli(['quantize', STORIES.model, '--bits', '4', '--block-size', '128', '--out', out, '--json', '--home', home]);
    expect(r.code, r.stderr).toBe(0);
    const doc = onlyJson(r) as { details: { steps: { quantized: number; skipped: { reason: string }[]; warnings: string[] }[] } };
    const step = doc.details.steps[0];
    const small = step.skipped.filter((s) => /smaller than one block \(128\)/.test(s.reason)).length;
    expect(small).toBeGreaterThan(step.quantized);
    expect(step.warnings).toEqual([expect.stringMatching(new RegExp(`^${small} of ${small + step.quantized} weights were skipped.*--block-size 64`))]);
    expect(r.stderr).toContain(step.warnings[0]);
  });
});

describe('recipe paths', () => {
  it('a NUL character in a path is refused naming the field (exit 2, INVALID_INPUT)', async () => {
    const file = recipeFile('nul.json', {
      model: { path: STORIES.model },
      tokenizer: { path: STORIES.tokenizer },
      steps: [{ type: 'quantize', method: 'gptq', bits: 4, blockSize: 32, calibration: { text: `${STORIES.text}\u0000.txt` } }],
    });
    const r = await runCli(['run', file, '--json', '--home', home]);
    expect(r.code, r.stderr).toBe(2);
    const doc = onlyJson(r) as { error: { code: string; message: string } };
    expect(doc.error.code).toBe('INVALID_INPUT');
    expect(doc.error.message).toMatch(/steps\[0\]\.calibration\.text: contains a NUL character/);
  });

  it('a named pipe as the evaluation text is refused before the job starts', async () => {
    const fifo = makeFifo(scratch.dir, 'eval-text.fifo');
    try {
      const file = recipeFile('fifo.json', {
        model: { path: STORIES.model },
        tokenizer: { path: STORIES.tokenizer },
        evaluation: { perplexity: { text: fifo.path, window: 64, maxSamples: 4 } },
      });
      const r = await runCli(['run', file, '--home', home], { timeoutMs: 30_000 });
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain(`The evaluation text ${fifo.path} is a named pipe, not a file.`);
    } finally {
      fifo.close();
    }
  });
});

/** Root ignores permissions: a chmod 0555 folder stays writable, so only the file-in-the-way cases run there. */
const permissionsApply = process.getuid?.() !== 0;

describe('folders Whittle cannot create', () => {
  it('an output folder under a file: a typed IO error naming the file and what to do', async () => {
    const blocker = path.join(scratch.dir, 'a-file');
    writeFileSync(blocker, 'not a folder');
    const r = await runCli(['quantize', STORIES.model, '--bits', '8', '--out', path.join(blocker, 'out'), '--json', '--home', home]);
    expect(r.code).not.toBe(0);
    const doc = onlyJson(r) as { error: { code: string; message: string } };
    expect(doc.error.code).toBe('IO');
    expect(doc.error.message).toContain(`Whittle cannot create the output folder ${path.join(blocker, 'out')}: ${blocker} is a file, not a folder.`);
    expect(doc.error.message).toMatch(/choose another output folder \(--out/i);
  });

  it('a home whose experiments folder cannot be made: the job fails with IO naming it and --home', async () => {
    const badHome = path.join(scratch.dir, 'home-with-file');
    mkdirSync(badHome, { recursive: true });
    writeFileSync(path.join(badHome, 'experiments'), 'not a folder');
    const r = await runCli(['quantize', STORIES.model, '--bits', '8', '--json', '--home', badHome]);
    expect(r.code).not.toBe(0);
    const doc = onlyJson(r) as { error: { code: string; message: string } };
    expect(doc.error.code).toBe('IO');
    expect(doc.error.message).toContain(`${path.join(badHome, 'experiments')} is a file, not a folder`);
    expect(doc.error.message).toContain('--home');
  });

  it.skipIf(!permissionsApply)('a read-only output folder\'s parent: permission denied, naming the folder to fix', async () => {
    const locked = path.join(scratch.dir, 'locked');
    mkdirSync(locked);
    chmodSync(locked, 0o555);
    try {
      const r = await runCli(['quantize', STORIES.model, '--bits', '8', '--out', path.join(locked, 'out'), '--json', '--home', home]);
      const doc = onlyJson(r) as { error: { code: string; message: string } };
      expect(doc.error.code).toBe('IO');
      expect(doc.error.message).toContain(`permission denied: ${locked} is not writable`);
      expect(doc.error.message).toContain(`fix the permissions of ${locked}`);
    } finally {
      chmodSync(locked, 0o755);
    }
  });
});
