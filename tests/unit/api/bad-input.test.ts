/**
 * The real services over the in-memory transport on input they cannot use: a NUL character in a recipe
 * path (jobs.start refuses it naming the field), a named pipe as evaluation text (the engine's reader
 * refuses it before opening it).
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWhittleApp, type WhittleApp } from '../../../main/app.ts';
import { memoryLogger } from '../../../main/api/logger.ts';
import { createMemoryClient, type MemoryClient } from '../../../main/api/memory-transport.ts';
import { readTextFile } from '../../../main/engine/data/text-file.ts';
import { isWhittleError } from '../../../main/engine/errors.ts';
import { appRoot } from '../../../main/paths.ts';
import { WhittleCallError } from '../../../preload/wire.ts';
import { makeFifo } from '../../helpers/fifo.ts';
import { STORIES, tempDir } from '../../helpers/fixtures.ts';

const WORKER = path.join(appRoot(), 'main', 'jobs', 'engine-worker.ts');

let scratch: ReturnType<typeof tempDir>;
let app: WhittleApp;
let client: MemoryClient;

beforeAll(() => {
  scratch = tempDir('whittle-bad-input-');
  app = createWhittleApp({ home: path.join(scratch.dir, 'home'), transport: 'memory', workerPath: WORKER, logger: memoryLogger() });
  client = createMemoryClient(app.router, app.events, { logger: memoryLogger() });
});

afterAll(async () => {
  client?.close();
  await app?.close();
  scratch?.cleanup();
});

async function failure(promise: Promise<unknown>): Promise<WhittleCallError> {
  const e = await promise.then(() => { throw new Error('expected the call to fail'); }, (error: unknown) => error);
  expect(e).toBeInstanceOf(WhittleCallError);
  return e as WhittleCallError;
}

describe('bad input through the services', () => {
  it('jobs.start refuses a NUL character in a recipe path, naming the field', async () => {
    const e = await failure(client.call('jobs.start', {
      recipe: {
        model: { path: STORIES.model },
        tokenizer: { path: STORIES.tokenizer },
        steps: [{ type: 'quantize', method: 'gptq', bits: 4, calibration: { text: `${STORIES.text}\u0000` } }],
      },
    }));
    expect(e.code).toBe('INVALID_INPUT');
    expect(e.message).toContain('steps[0].calibration.text: contains a NUL character');
    expect(app.jobs.list()).toEqual([]);
    const nulModel = await failure(client.call('jobs.start', { recipe: { model: { path: `${STORIES.model}\u0000x` } } }));
    expect(nulModel.message).toContain('model.path: contains a NUL character');
  });

  it('the engine text reader refuses a named pipe without opening it', async () => {
    const fifo = makeFifo(scratch.dir, 'text.fifo', 10_000);
    try {
      const e = await readTextFile(fifo.path).then(() => null, (error: unknown) => error);
      expect(isWhittleError(e) && e.code).toBe('INVALID_INPUT');
      expect((e as Error).message).toContain('is not a regular file');
    } finally {
      fifo.close();
    }
  });
});
