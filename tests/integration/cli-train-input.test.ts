/**
 * `whittle train` as a real child process on input it cannot use, each refused before any work with exit
 * 2 and a message that names the problem: a learning rate ≤ 0, steps and epochs both or neither, an
 * unknown freeze role, a missing training text, and `--resume` of an experiment that is not a training
 * run, that finished, or that left no checkpoint (rows written by the real history).
 */
import { mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openHistory } from '../../main/history/index.ts';
import { CHECKPOINTS_ARTEFACT } from '../../preload/methods.ts';
import { STORIES, tempDir } from '../helpers/fixtures.ts';
import { onlyJson, runCli } from './cli-process.ts';

let scratch: ReturnType<typeof tempDir>;
let home: string;

const trainRecipe = { model: { path: STORIES.model }, tokenizer: { path: STORIES.tokenizer }, steps: [{ type: 'train', text: STORIES.text, steps: 4 }] };

/** An experiment as the job service leaves it, written through the real history. */
function recordExperiment(kind: string, recipe: unknown, status: 'done' | 'cancelled' | 'interrupted', checkpoints: string | null): number {
  const history = openHistory({ home });
  try {
    const id = history.createExperiment({ name: `${kind} ${status}`, kind, recipe, modelPath: STORIES.model, status: 'running' });
    if (checkpoints !== null) history.addArtefacts(id, [{ kind: CHECKPOINTS_ARTEFACT, path: checkpoints, bytes: null }]);
    history.finish(id, status, status === 'cancelled' ? { code: 'CANCELLED', message: 'The job was cancelled.' } : null, 10);
    return id;
  } finally {
    history.close();
  }
}

beforeAll(() => {
  scratch = tempDir('whittle-cli-train-');
  home = path.join(scratch.dir, 'home');
  mkdirSync(home, { recursive: true });
});
afterAll(() => scratch.cleanup());

const train = (...args: string[]) => runCli(['train', STORIES.model, '--tokenizer', STORIES.tokenizer, '--home', home, ...args]);

describe('whittle train refuses bad settings before any work', () => {
  it('a learning rate of 0 or below, steps and epochs both or neither, an unknown freeze role', async () => {
    const cases: [string[], RegExp][] = [
      [['--text', STORIES.text, '--steps', '4', '--lr', '0'], /--lr must be above 0, got 0/],
      [['--text', STORIES.text, '--steps', '4', '--lr=-3e-4'], /--lr must be above 0, got -3e-4/],
      [['--text', STORIES.text, '--steps', '4', '--epochs', '1'], /--steps and --epochs both say how long to train/],
      [['--text', STORIES.text], /give --steps N \(optimizer steps\) or --epochs E/],
      [['--text', STORIES.text, '--steps', '4', '--freeze', 'o', '--freeze', 'attn'], /--freeze: "attn" is not a role Whittle knows \(q, k, v, o, gate, up, down, norm, embedding, lm_head\)/],
    ];
    for (const [args, message] of cases) {
      const r = await train(...args);
      expect(r.code, `${args.join(' ')}\n${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(/INTERNAL|at .*\.ts:\d+/);
    }
    // Nothing was started: no experiment folder.
    expect(readdirSync(home).filter((n) => n === 'experiments')).toEqual([]);
  });

  it('a training or held-out text that does not exist is named (JSON too)', async () => {
    const missing = path.join(scratch.dir, 'no-such-train.txt');
    const r = await train('--text', missing, '--steps', '4');
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain(`The training text file ${missing} does not exist.`);
    const j = await train('--text', STORIES.text, '--steps', '4', '--eval-text', missing, '--json');
    expect(j.code).toBe(2);
    expect(onlyJson(j)).toMatchObject({ error: { code: 'NOT_FOUND' } });
    expect(j.stdout + j.stderr).toContain(missing);
  });
});

describe('whittle train --resume', () => {
  it('refuses an experiment that is not a training run, one that finished, and one that left no checkpoint', async () => {
    const evaluation = recordExperiment('evaluate', { model: { path: STORIES.model } }, 'cancelled', null);
    const finished = recordExperiment('train', trainRecipe, 'done', path.join(scratch.dir, 'gone'));
    const empty = path.join(scratch.dir, 'empty-checkpoints');
    mkdirSync(empty);
    const noCheckpoint = recordExperiment('train', trainRecipe, 'interrupted', empty);
    const cases: [number, RegExp][] = [
      [evaluation, new RegExp(`Experiment ${evaluation} is not a training run`)],
      [finished, new RegExp(`Experiment ${finished} cannot be resumed: it finished`)],
      [noCheckpoint, new RegExp(`Experiment ${noCheckpoint} left no checkpoint in ${empty.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`)],
    ];
    for (const [id, message] of cases) {
      const r = await runCli(['train', '--resume', String(id), '--home', home]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(message);
    }
    const unknown = await runCli(['train', '--resume', '999', '--home', home, '--json']);
    expect(unknown.code).toBe(2);
    expect(onlyJson(unknown)).toMatchObject({ error: { code: 'NOT_FOUND' } });
  });

  it('takes the recipe from the experiment: run flags beside --resume are a usage error naming them', async () => {
    const r = await runCli(['train', STORIES.model, '--resume', '1', '--steps', '4', '--home', home]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('cannot be combined with <model>, --steps');
  });
});
