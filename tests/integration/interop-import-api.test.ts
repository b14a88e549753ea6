// models.importHf through the real app over the in-memory transport: the import runs on the inspection
// worker, the result is listed among the recent models, a bad folder comes back as a typed error.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWhittleApp, type WhittleApp } from '../../main/app.ts';
import { memoryLogger } from '../../main/api/logger.ts';
import { createMemoryClient, type MemoryClient } from '../../main/api/memory-transport.ts';
import { appRoot } from '../../main/paths.ts';
import { WhittleCallError } from '../../preload/wire.ts';
import { tempDir } from '../helpers/fixtures.ts';
import { readLlama2c, writeHfFolder } from '../helpers/llama2c-hf.ts';

const scratch = tempDir('whittle-import-api-');
let app: WhittleApp;
let client: MemoryClient;

beforeAll(async () => {
  const logger = memoryLogger();
  app = createWhittleApp({ home: path.join(scratch.dir, 'home'), transport: 'memory', workerPath: path.join(appRoot(), 'main', 'jobs', 'engine-worker.ts'), logger });
  client = createMemoryClient(app.router, app.events, { logger });
  await writeHfFolder(path.join(scratch.dir, 'stories-hf'), readLlama2c());
});
afterAll(async () => {
  client?.close();
  await app?.close();
  scratch.cleanup();
});

describe('models.importHf', () => {
  it('imports into <home>/experiments/imported/<folder> by default, and the model is a recent model that inspects as a llama', async () => {
    const r = await client.call('models.importHf', { folder: path.join(scratch.dir, 'stories-hf') });
    expect(r.outDir).toBe(path.join(app.home, 'experiments', 'imported', 'stories-hf'));
    expect(r).toMatchObject({ modelType: 'llama', parameters: 260_032, dtype: 'fp32', cache: true, tiedEmbeddings: true });
    expect(existsSync(path.join(r.outDir, 'tokenizer.json'))).toBe(true);
    expect((await client.call('models.recent', {})).map((m) => m.path)).toContain(r.modelPath);
    const inspection = await client.call('models.inspect', { path: r.modelPath });
    expect(inspection.architecture?.family).toBe('llama');
  }, 60_000);

  it('a folder without config.json is an INVALID_INPUT error naming it', async () => {
    const e = await client.call('models.importHf', { folder: scratch.dir, out: path.join(scratch.dir, 'x') }).then(() => null, (err: unknown) => err);
    expect(e).toBeInstanceOf(WhittleCallError);
    expect((e as WhittleCallError).code).toBe('INVALID_INPUT');
    expect((e as WhittleCallError).message).toContain('has no config.json');
    expect(existsSync(path.join(scratch.dir, 'x'))).toBe(false);
  }, 60_000);
});
