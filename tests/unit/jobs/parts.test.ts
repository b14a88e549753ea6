import { writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { WhittleError } from '../../../main/engine/errors.ts';
import { unexpectedExitError } from '../../../main/jobs/crash.ts';
import { ModelFileFactsCache, sha256File } from '../../../main/jobs/model-file.ts';
import { jobFolderName, slugify } from '../../../main/jobs/output-folder.ts';
import { parseEngineMessage, parseHostMessage } from '../../../main/jobs/protocol.ts';
import { parseRecipe } from '../../../main/jobs/recipe-input.ts';
import { tempDir } from '../../helpers/fixtures.ts';

describe('protocol', () => {
  it('accepts every engine message and keeps non-finite metric values', () => {
    expect(parseEngineMessage({ type: 'progress', phase: 'load', done: 1, total: 2 })).toEqual({ type: 'progress', phase: 'load', done: 1, total: 2, message: '' });
    expect(parseEngineMessage({ type: 'log', level: 'warn', text: 'x' })).toEqual({ type: 'log', level: 'warn', text: 'x' });
    const result = { type: 'result', metrics: [{ name: 'perplexity', value: Infinity, unit: '', subject: 'model' }], artefacts: [{ kind: 'model', path: '/a', bytes: null }], details: { a: [1] } };
    expect(parseEngineMessage(result)).toEqual(result);
    expect(parseEngineMessage({ type: 'done' })).toEqual({ type: 'done' });
    expect(parseEngineMessage({ type: 'error', error: { code: 'IO', message: 'disk full' } })).toEqual({ type: 'error', error: { code: 'IO', message: 'disk full' } });
  });

  it('turns a malformed engine message into an INTERNAL error naming the problem', () => {
    const m = parseEngineMessage({ type: 'progress', phase: 'load', done: '1', total: 2, extra: true });
    expect(m.type).toBe('error');
    if (m.type !== 'error') return;
    expect(m.error.code).toBe('INTERNAL');
    expect(m.error.message).toMatch(/^The engine process sent an invalid message \(.*done.*\)\.$/);
    expect(parseEngineMessage('hello').type).toBe('error');
    expect(parseEngineMessage({ type: 'error', error: { code: 'NOPE', message: 'x' } }).type).toBe('error');
  });

  it('validates host messages, filling the recipe defaults', () => {
    const run = parseHostMessage({ type: 'run', jobId: 'j', experimentId: 3, recipe: { model: { path: '/m.onnx' } }, workDir: '/w' });
    expect(run.type).toBe('run');
    if (run.type === 'run') expect(run.recipe.evaluation.footprint).toBe(true);
    expect(parseHostMessage({ type: 'cancel' })).toEqual({ type: 'cancel' });
    expect(parseHostMessage({ type: 'run', jobId: 'j', experimentId: 0, recipe: {}, workDir: '/w' }).type).toBe('invalid');
  });
});

describe('parseRecipe', () => {
  it('lists every problem, unknown keys included, as INVALID_INPUT', () => {
    try {
      parseRecipe({ model: { path: '/m.onnx', typo: 1 }, evaluation: { perplexity: { text: 't', window: 2 } }, steps: [{ type: 'quantize', method: 'rtn', bits: 3 }] });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(WhittleError);
      const w = e as WhittleError;
      expect(w.code).toBe('INVALID_INPUT');
      expect(w.message).toMatch(/^The recipe is not valid: /);
      expect(w.message).toContain('model: Unrecognized key: "typo"');
      expect(w.message).toContain('evaluation.perplexity.window:');
      expect(w.message).toContain('steps[0].bits:');
      expect((w.details?.issues as unknown[]).length).toBe(3);
    }
  });
  it('returns the recipe with defaults', () => {
    expect(parseRecipe({ model: { path: '/m.onnx' } })).toMatchObject({ version: 1, steps: [], evaluation: { footprint: true } });
  });
});

describe('unexpectedExitError', () => {
  it('names the signal or exit code', () => {
    const k = unexpectedExitError(null, 'SIGKILL', '');
    expect(k.code).toBe('INTERNAL');
    expect(k.message).toMatch(/^The engine process stopped unexpectedly \(signal SIGKILL\)\. Something ended it from outside/);
    expect(k.details).toEqual({ exitCode: null, signal: 'SIGKILL' });
    expect(unexpectedExitError(3, null, 'boom').message).toMatch(/\(exit code 3\)/);
    expect(unexpectedExitError(null, 'SIGSEGV', '').message).toMatch(/native library/);
  });
  it('recognises running out of memory from what the process printed', () => {
    const e = unexpectedExitError(134, null, 'FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory');
    expect(e.code).toBe('OUT_OF_MEMORY');
    expect(e.message).toMatch(/ran out of memory/);
    expect(e.details?.stderr).toMatch(/heap out of memory/);
  });
});

describe('output folders', () => {
  it('are named <id>-<slug>', () => {
    expect(jobFolderName(12, 'Évaluer  TinyLlama 1.1B (int4)!')).toBe('12-evaluer-tinyllama-1-1b-int4');
    expect(slugify('///')).toBe('job');
    expect(slugify('x'.repeat(100)).length).toBeLessThanOrEqual(48);
  });
});

describe('model file facts', () => {
  it('streams the SHA-256 and reports a missing file as NOT_FOUND', async () => {
    const scratch = tempDir();
    try {
      const file = path.join(scratch.dir, 'm.onnx');
      const data = Buffer.alloc(3 * (1 << 20) + 17, 7);
      writeFileSync(file, data);
      const expected = createHash('sha256').update(data).digest('hex');
      expect(await sha256File(file)).toBe(expected);
      const cache = new ModelFileFactsCache();
      expect(await cache.facts(file)).toEqual({ bytes: data.length, sha256: expected });
      await expect(cache.facts(path.join(scratch.dir, 'none.onnx'))).rejects.toMatchObject({ code: 'NOT_FOUND', message: expect.stringMatching(/does not exist/) });
      await expect(cache.facts(scratch.dir)).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    } finally {
      scratch.cleanup();
    }
  });
});
