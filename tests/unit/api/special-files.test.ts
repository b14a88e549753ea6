/**
 * models.inspect and quantize.plan on a named pipe: refused as INVALID_INPUT before the model is opened,
 * so the main process (the server in serve mode) never blocks on it.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWhittleApp, type WhittleApp } from '../../../main/app.ts';
import { memoryLogger } from '../../../main/api/logger.ts';
import { createMemoryClient, type MemoryClient } from '../../../main/api/memory-transport.ts';
import { appRoot } from '../../../main/paths.ts';
import { WhittleCallError } from '../../../preload/wire.ts';
import { makeFifo } from '../../helpers/fifo.ts';
import { tempDir } from '../../helpers/fixtures.ts';

let scratch: ReturnType<typeof tempDir>;
let app: WhittleApp;
let client: MemoryClient;

beforeAll(() => {
  scratch = tempDir('whittle-api-special-');
  const logger = memoryLogger();
  app = createWhittleApp({ home: path.join(scratch.dir, 'home'), transport: 'memory', workerPath: path.join(appRoot(), 'main', 'jobs', 'engine-worker.ts'), logger });
  client = createMemoryClient(app.router, app.events, { logger });
});

afterAll(async () => {
  client?.close();
  await app?.close();
  scratch?.cleanup();
});

describe('a named pipe given as a model', () => {
  it('is refused by models.inspect and quantize.plan with INVALID_INPUT', { timeout: 15_000 }, async () => {
    const fifo = makeFifo(scratch.dir, 'pipe.onnx');
    try {
      const inspect = client.call('models.inspect', { path: fifo.path });
      // The process still answers other calls meanwhile.
      expect((await client.call('app.info', {})).transport).toBe('memory');
      for (const call of [inspect, client.call('quantize.plan', { path: fifo.path, step: { type: 'quantize', method: 'rtn' } })]) {
        const e = await call.then(() => null, (err: unknown) => err);
        expect(e).toBeInstanceOf(WhittleCallError);
        expect((e as WhittleCallError).code).toBe('INVALID_INPUT');
        expect((e as WhittleCallError).message).toBe(`${fifo.path} is a named pipe, not a file. Choose the file itself.`);
      }
      expect(await client.call('models.recent', {})).toEqual([]);
    } finally {
      fifo.close();
    }
  });
});
