/**
 * `whittle` as a real child process: command-line mistakes, malformed recipes and wrong files exit 2
 * with a message that names the problem; --json always prints exactly one JSON document.
 */
import { copyFileSync, existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appRoot, appVersion } from '../../main/paths.ts';
import { STORIES, fixture, tempDir } from '../helpers/fixtures.ts';
import { makeFifo } from '../helpers/fifo.ts';
import { onlyJson, runCli } from './cli-process.ts';
import { spawnSync } from 'node:child_process';

let scratch: { dir: string; cleanup: () => void };
let home: string;

beforeAll(() => {
  scratch = tempDir('whittle-cli-input-');
  home = path.join(scratch.dir, 'home');
});
afterAll(() => scratch.cleanup());

function recipeFile(name: string, recipe: unknown): string {
  const file = path.join(scratch.dir, name);
  writeFileSync(file, typeof recipe === 'string' ? recipe : JSON.stringify(recipe, null, 2));
  return file;
}

const goodRecipe = {
  model: { path: STORIES.model },
  tokenizer: { path: STORIES.tokenizer },
  evaluation: { perplexity: { text: STORIES.text, window: 64, maxSamples: 5 } },
};

describe('whittle command line', () => {
  it('prints help and the version', async () => {
    const help = await runCli(['--help']);
    expect(help.code).toBe(0);
    for (const command of ['inspect', 'eval', 'run', 'history list', 'history show', 'history delete', 'serve']) {
      expect(help.stdout).toContain(command);
    }
    const evalHelp = await runCli(['eval', '-h']);
    expect(evalHelp.code).toBe(0);
    expect(evalHelp.stdout).toMatch(/--tokenizer FILE/);
    expect(evalHelp.stdout).toMatch(/--prompt-tokens P/);

    const version = await runCli(['--version', '--json']);
    expect(version.code).toBe(0);
    expect(onlyJson(version)).toEqual({ version: expect.stringMatching(/^\d+\.\d+\.\d+/) });
  });

  it('rejects an unknown flag with exit 2, naming it and suggesting the right one', async () => {
    const r = await runCli(['eval', STORIES.model, '--windw', '64', '--home', home]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^whittle: Unknown option "--windw" for whittle eval\./);
    expect(r.stderr).toContain('Did you mean --window?');

    const json = await runCli(['history', 'list', '--bogus', '--json', '--home', home]);
    expect(json.code).toBe(2);
    const doc = onlyJson(json) as { error: { code: string; message: string } };
    expect(doc.error.code).toBe('INVALID_INPUT');
    expect(doc.error.message).toContain('--bogus');
  });

  it('rejects unknown commands, bad values and missing arguments with exit 2', async () => {
    const unknown = await runCli(['evaluate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('Unknown command "evaluate"');

    const notANumber = await runCli(['eval', STORIES.model, '--tokenizer', STORIES.tokenizer, '--text', STORIES.text, '--window', 'wide', '--home', home]);
    expect(notANumber.code).toBe(2);
    expect(notANumber.stderr).toContain('--window needs a whole number');

    const outOfRange = await runCli(['eval', STORIES.model, '--tokenizer', STORIES.tokenizer, '--text', STORIES.text, '--window', '4', '--home', home]);
    expect(outOfRange.code).toBe(2);
    expect(outOfRange.stderr).toMatch(/--window: .*8/);

    const badChoice = await runCli(['eval', STORIES.model, '--protocol', 'pages']);
    expect(badChoice.code).toBe(2);
    expect(badChoice.stderr).toContain('--protocol must be one of documents, stream');

    const missing = await runCli(['inspect']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('whittle inspect needs <model>');

    const negative = await runCli(['quantize', STORIES.model, '--block-size', '-32', '--home', home]);
    expect(negative.code).toBe(2);
    expect(negative.stderr).toContain('--block-size -32 is not a valid value: it is negative');
    expect(negative.stderr).toContain('a power of two from 16 to 256');
    expect(negative.stderr).not.toContain('needs a value');

    const noValue = await runCli(['history', 'list', '--limit']);
    expect(noValue.code).toBe(2);
    expect(noValue.stderr).toContain('--limit needs a value');

    const badId = await runCli(['history', 'show', 'seven', '--home', home]);
    expect(badId.code).toBe(2);
    expect(badId.stderr).toContain('"seven" is not an experiment id');
  });

  it('names the unknown key of a malformed recipe (exit 2), in text and in --json', async () => {
    const file = recipeFile('unknown-key.json', { ...goodRecipe, evaluation: { perplexity: { ...goodRecipe.evaluation.perplexity, windw: 64 } } });
    const r = await runCli(['run', file, '--home', home]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown key "evaluation.perplexity.windw"');
    expect(r.stderr).toContain('did you mean "window"');

    const top = recipeFile('unknown-top.json', { ...goodRecipe, modle: { path: 'x.onnx' } });
    const j = await runCli(['run', top, '--json', '--home', home]);
    expect(j.code).toBe(2);
    const doc = onlyJson(j) as { error: { code: string; message: string; details: { issues: { message: string }[] } } };
    expect(doc.error.code).toBe('INVALID_INPUT');
    expect(doc.error.message).toContain('"modle"');
    expect(doc.error.details.issues[0].message).toContain('allowed keys: version, name, model');
  });

  it('names the field of a wrongly typed recipe value (exit 2)', async () => {
    const file = recipeFile('wrong-type.json', { ...goodRecipe, evaluation: { perplexity: { ...goodRecipe.evaluation.perplexity, window: 'large' } } });
    const r = await runCli(['run', file, '--home', home]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('evaluation.perplexity.window');
    expect(r.stderr).toMatch(/expected number/);

    const bits = recipeFile('bad-bits.json', { ...goodRecipe, steps: [{ type: 'quantize', method: 'rtn', bits: 3 }] });
    const b = await runCli(['run', bits, '--home', home]);
    expect(b.code).toBe(2);
    expect(b.stderr).toContain('steps[0].bits must be one of 2, 4, 8');
  });

  it('eval --recipe refuses compression steps and extra evaluation options (exit 2)', async () => {
    const withSteps = recipeFile('with-steps.json', { ...goodRecipe, steps: [{ type: 'quantize', method: 'rtn' }] });
    const r = await runCli(['eval', '--recipe', withSteps, '--home', home]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`run it with \`whittle run ${withSteps}\``);

    const plain = recipeFile('plain.json', goodRecipe);
    const mixed = await runCli(['eval', '--recipe', plain, '--window', '32', '--home', home]);
    expect(mixed.code).toBe(2);
    expect(mixed.stderr).toContain('--recipe cannot be combined with --window');
  });

  it('reports a recipe that is not JSON with its line (exit 2)', async () => {
    const file = recipeFile('broken.json', '{\n  "model": { "path": "a.onnx" },\n  oops\n}\n');
    const r = await runCli(['run', file, '--home', home]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/is not valid JSON at line 3/);
  });

  it('exits 2 when a file the job needs is missing, before any job starts', async () => {
    const missingTokenizer = path.join(scratch.dir, 'nowhere', 'tokenizer.json');
    const r = await runCli(['eval', STORIES.model, '--tokenizer', missingTokenizer, '--text', STORIES.text, '--json', '--home', home]);
    expect(r.code).toBe(2);
    const doc = onlyJson(r) as { error: { code: string; message: string } };
    expect(doc.error.code).toBe('NOT_FOUND');
    expect(doc.error.message).toContain(`The tokenizer file ${missingTokenizer} does not exist`);

    const recipe = recipeFile('missing-text.json', { ...goodRecipe, evaluation: { perplexity: { text: 'no-such-text.txt' } } });
    const m = await runCli(['run', recipe, '--home', home]);
    expect(m.code).toBe(2);
    expect(m.stderr).toContain(`The evaluation text file ${path.join(scratch.dir, 'no-such-text.txt')} does not exist`);

    // Nothing was started: the history stays empty.
    const list = await runCli(['history', 'list', '--json', '--home', home]);
    expect(list.code).toBe(0);
    expect(onlyJson(list)).toEqual({ items: [], total: 0 });
  });

  it('inspect of a text file named .onnx exits 2 with the typed MODEL_PARSE error', async () => {
    const fake = path.join(scratch.dir, 'story.onnx');
    copyFileSync(fixture('text', 'sst2-glue-dev.tsv'), fake);
    const r = await runCli(['inspect', fake, '--json']);
    expect(r.code).toBe(2);
    const doc = onlyJson(r) as { error: { code: string; message: string } };
    expect(doc.error.code).toBe('MODEL_PARSE');
    expect(doc.error.message).toBe('story.onnx is not an ONNX model: it looks like a text file.');

    const human = await runCli(['inspect', fake]);
    expect(human.code).toBe(2);
    expect(human.stdout).toBe('');
    expect(human.stderr).toBe(`whittle: ${doc.error.message}\n`);

    const absent = await runCli(['inspect', path.join(scratch.dir, 'absent.onnx')]);
    expect(absent.code).toBe(2);
    expect(absent.stderr).toContain('does not exist');
  });

  it('inspect of a named pipe exits 2 saying it is not a file, without waiting on the pipe', async () => {
    const fifo = makeFifo(scratch.dir, 'pipe.onnx', 20_000);
    try {
      const r = await runCli(['inspect', fifo.path, '--json'], { timeoutMs: 15_000 });
      expect(r.code).toBe(2);
      const doc = onlyJson(r) as { error: { code: string; message: string } };
      expect(doc.error).toEqual({ code: 'INVALID_INPUT', message: 'pipe.onnx is a named pipe, not a file. Choose the file itself.', details: { path: fifo.path, kind: 'a named pipe' } });
    } finally {
      fifo.close();
    }
  });

  // The launcher runs the bundle, which exists only after `npm run build` (npm test builds first).
  it.skipIf(!existsSync(path.join(appRoot(), 'out', 'cli.cjs')))('bin/whittle.js starts the bundled CLI', () => {
    const r = spawnSync(process.execPath, [path.join(appRoot(), 'bin', 'whittle.js'), '--version', '--json'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ version: appVersion() });
  });
});
