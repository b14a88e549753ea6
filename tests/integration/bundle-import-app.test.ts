/**
 * Bundle imports through the app: output folders unpack under the app's output root (the one its jobs
 * write to, not always <home>/experiments), and the staging folder an interrupted import left there is
 * removed at the next start once its process is gone, while finished folders stay.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { memoryLogger } from '../../main/api/logger.ts';
import { createMemoryClient } from '../../main/api/memory-transport.ts';
import { createWhittleApp } from '../../main/app.ts';
import { parsePartialName } from '../../main/engine/rewrite/output-folder.ts';
import { exportBundle } from '../../main/history/bundle/index.ts';
import { IMPORT_STAGING_TARGET, importStagingName } from '../../main/history/bundle/import.ts';
import { openHistory } from '../../main/history/index.ts';
import { tempDir } from '../helpers/fixtures.ts';

const scratches: { cleanup: () => void }[] = [];
afterEach(() => { for (const s of scratches.splice(0)) s.cleanup(); });

/** The id of a process that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

/** A bundle of one finished prune whose output folder (model.onnx, 3 bytes) travels with it. */
async function pruneBundle(dir: string): Promise<string> {
  const folder = path.join(dir, 'outputs-a', '1-pruned');
  mkdirSync(folder, { recursive: true });
  writeFileSync(path.join(folder, 'model.onnx'), Buffer.from([7, 8, 9]));
  const history = openHistory({ home: path.join(dir, 'home-a') });
  try {
    const id = history.createExperiment({ name: 'pruned 50 %', kind: 'prune', recipe: { steps: [{ type: 'prune', sparsity: 0.5 }] }, modelPath: '/models/m.onnx', status: 'running' });
    history.addArtefacts(id, [{ kind: 'folder', path: folder, bytes: 3 }]);
    history.finish(id, 'done', null, 10);
    const file = path.join(dir, 'pruned.whittle');
    await exportBundle(history, [id], file, { appVersion: '1', withOutputs: true });
    return file;
  } finally {
    history.close();
  }
}

describe('bundle import in the app', () => {
  it('unpacks output folders under the configured output root, not <home>/experiments', async () => {
    const scratch = tempDir('whittle-import-app-');
    scratches.push(scratch);
    const file = await pruneBundle(scratch.dir);
    const home = path.join(scratch.dir, 'home-b');
    const outputRoot = path.join(scratch.dir, 'my-outputs');
    const app = createWhittleApp({ home, outputRoot, transport: 'memory', logger: memoryLogger() });
    const client = createMemoryClient(app.router, app.events);
    try {
      const imported = await client.call('history.import', { path: file });
      expect(imported.outputs).toHaveLength(1);
      expect(path.dirname(imported.outputs[0])).toBe(outputRoot);
      expect([...readFileSync(path.join(imported.outputs[0], 'model.onnx'))]).toEqual([7, 8, 9]);
      expect(app.history.get(imported.ids[0].to).artefacts.map((a) => a.path)).toEqual([imported.outputs[0]]);
      expect(existsSync(path.join(home, 'experiments'))).toBe(false);
      // Nothing of the staging folder is left once the import is done.
      expect(readdirSync(outputRoot)).toEqual([path.basename(imported.outputs[0])]);
    } finally {
      client.close();
      await app.close();
    }
  });

  it('staging folders are named for their process', () => {
    expect(parsePartialName(importStagingName())).toEqual({ target: IMPORT_STAGING_TARGET, pid: process.pid });
  });

  it('removes at start the staging folder of an import whose process is gone, and only that', async () => {
    const scratch = tempDir('whittle-import-start-');
    scratches.push(scratch);
    const outputRoot = path.join(scratch.dir, 'outputs');
    const interrupted = path.join(outputRoot, `${IMPORT_STAGING_TARGET}.partial-${deadPid()}-0a1b2c3d`);
    const running = path.join(outputRoot, `${IMPORT_STAGING_TARGET}.partial-${process.pid}-0a1b2c3e`);
    const finished = path.join(outputRoot, 'imported-abc-1-pruned');
    for (const dir of [path.join(interrupted, '1-0'), path.join(running, '1-0'), finished]) {
      mkdirSync(dir, { recursive: true });
      writeFileSync(path.join(dir, 'model.onnx'), 'bytes');
    }

    const app = createWhittleApp({ home: path.join(scratch.dir, 'home'), outputRoot, transport: 'memory', logger: memoryLogger() });
    try {
      expect(existsSync(interrupted)).toBe(false);
      expect(existsSync(running)).toBe(true); // its import still runs
      expect(existsSync(path.join(finished, 'model.onnx'))).toBe(true);
    } finally {
      await app.close();
    }
  });
});
