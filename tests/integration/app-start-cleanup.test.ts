/**
 * At start, Whittle removes what jobs interrupted by a crash or `kill -9` left beside an output folder the
 * user chose (`--out`, a recipe's output.dir): their partial folders, once their writing process is gone.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { memoryLogger } from '../../main/api/logger.ts';
import { createWhittleApp } from '../../main/app.ts';
import { openHistory } from '../../main/history/index.ts';
import { STORIES, tempDir } from '../helpers/fixtures.ts';

const scratches: { cleanup: () => void }[] = [];
afterEach(() => { for (const s of scratches.splice(0)) s.cleanup(); });

/** The id of a process that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

describe('start-up after an interrupted job', () => {
  it('removes the partial folders an interrupted experiment left beside its chosen output folder, and only those', async () => {
    const scratch = tempDir('whittle-start-cleanup-');
    scratches.push(scratch);
    const home = path.join(scratch.dir, 'home');
    const out = path.join(scratch.dir, 'my-output');
    const history = openHistory({ home });
    const id = history.createExperiment({
      name: 'interrupted', kind: 'quantize', status: 'running', modelPath: STORIES.model,
      recipe: { version: 1, model: { path: STORIES.model }, steps: [], evaluation: {}, output: { dir: out } },
    });
    history.close();

    const dead = `${out}.partial-${deadPid()}-0a1b2c3d`;
    const live = `${out}.partial-${process.pid}-0a1b2c3e`;
    const other = path.join(scratch.dir, `someone-else.partial-${deadPid()}-0a1b2c3f`);
    for (const dir of [dead, live, other]) {
      mkdirSync(dir);
      writeFileSync(path.join(dir, 'model.onnx'), 'partial');
    }

    const logger = memoryLogger();
    const app = createWhittleApp({ home, logger, transport: 'memory' });
    try {
      expect(app.history.get(id).status).toBe('interrupted');
      expect(existsSync(dead)).toBe(false);
      expect(existsSync(live)).toBe(true); // its writer still runs
      expect(existsSync(other)).toBe(true); // not the output of an interrupted experiment
      expect(existsSync(out)).toBe(false);
    } finally {
      await app.close();
    }
  });
});
