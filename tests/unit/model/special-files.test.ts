/**
 * A named pipe or a device given as a model or tokenizer is refused as INVALID_INPUT before anything
 * opens it (opening a pipe for reading would block until someone writes to it).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { loadTokenizer } from '../../../main/engine/data/tokenizer.ts';
import { WhittleError } from '../../../main/engine/errors.ts';
import { inspectModel } from '../../../main/engine/model/inspect.ts';
import { readModel } from '../../../main/engine/onnx/reader.ts';
import { makeFifo } from '../../helpers/fifo.ts';
import { tempDir } from '../../helpers/fixtures.ts';

const tmp = tempDir('whittle-special-');
afterAll(() => tmp.cleanup());

async function failure(p: Promise<unknown>): Promise<WhittleError> {
  const e = await p.then(() => null, (err: unknown) => err);
  expect(e).toBeInstanceOf(WhittleError);
  return e as WhittleError;
}

describe('paths that are not regular files', () => {
  it('a named pipe as a model: INVALID_INPUT naming it, without opening it', { timeout: 15_000 }, async () => {
    const fifo = makeFifo(tmp.dir, 'model.onnx');
    try {
      for (const attempt of [readModel, inspectModel]) {
        const e = await failure(attempt(fifo.path));
        expect(e.code).toBe('INVALID_INPUT');
        expect(e.message).toBe('model.onnx is a named pipe, not a file. Choose the file itself.');
        expect(e.details).toMatchObject({ path: fifo.path, kind: 'a named pipe' });
      }
    } finally {
      fifo.close();
    }
  });

  it('a named pipe as a tokenizer, and a device as a model', { timeout: 15_000 }, async () => {
    const fifo = makeFifo(tmp.dir, 'tokenizer.json');
    try {
      const e = await failure(loadTokenizer(fifo.path));
      expect(e.code).toBe('INVALID_INPUT');
      expect(e.message).toContain('tokenizer.json is a named pipe, not a file');
    } finally {
      fifo.close();
    }
    const device = await failure(readModel('/dev/zero'));
    expect(device.code).toBe('INVALID_INPUT');
    expect(device.message).toBe('zero is a device, not a file. Choose the file itself.');
  });
});
