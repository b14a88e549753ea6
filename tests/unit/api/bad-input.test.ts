/**
 * The real services over the in-memory transport on input they cannot use: a NUL character in a recipe
 * path (jobs.start refuses it naming the field), a named pipe as evaluation text (the engine's reader
 * refuses it before opening it), and folders that cannot be made reported with what to do.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWhittleApp, type WhittleApp } from '../../../main/app.ts';
import { memoryLogger } from '../../../main/api/logger.ts';
import { createMemoryClient, type MemoryClient } from '../../../main/api/memory-transport.ts';
import { readTextFile } from '../../../main/engine/data/text-file.ts';
import { isWhittleError, toErrorShape } from '../../../main/engine/errors.ts';
import { cannotCreateFolder } from '../../../main/engine/folder-error.ts';
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

describe('file system errors as typed IO errors with what to do', () => {
  it('permission, read-only disk and a file in the way each say what to do', () => {
    const errno = (code: string, p: string) => Object.assign(new Error(`${code}: x`), { code, path: p });
    expect(toErrorShape(errno('EACCES', '/ro/out'))).toMatchObject({ code: 'IO', message: expect.stringMatching(/^Permission denied: \/ro\/out\. Fix its permissions .*choose another location/) });
    expect(toErrorShape(errno('EROFS', '/mnt/cd/x'))).toMatchObject({ code: 'IO', message: expect.stringContaining('read-only disk') });
    expect(toErrorShape(errno('ENOTDIR', '/f/out'))).toMatchObject({ code: 'IO', message: expect.stringContaining('/f/out is a file, not a folder') });
  });

  it('cannotCreateFolder names the file in the way (a real ENOTDIR) and the folder to fix', async () => {
    const file = path.join(scratch.dir, 'plain-file');
    await writeFile(file, 'x');
    const target = path.join(file, 'sub', 'out');
    const thrown = await mkdir(target, { recursive: true }).then(() => null, (e: unknown) => e);
    const e = await cannotCreateFolder(thrown, target, 'the output folder', 'choose another output folder (--out)');
    expect(e.code).toBe('IO');
    expect(e.message).toBe(`Whittle cannot create the output folder ${target}: ${file} is a file, not a folder. Choose another output folder (--out), or move that file away.`);
    const denied = await cannotCreateFolder(Object.assign(new Error('EACCES'), { code: 'EACCES' }), path.join(scratch.dir, 'x', 'y'), 'the output folder', 'choose another output folder (--out)');
    expect(denied.message).toContain(`permission denied: ${scratch.dir} is not writable`);
    expect(denied.message).toContain(`fix the permissions of ${scratch.dir}`);
  });
});
