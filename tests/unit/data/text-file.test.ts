import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readTextFile, splitDocuments } from '../../../main/engine/data/text-file.ts';
import { WhittleError } from '../../../main/engine/errors.ts';
import { STORIES, tempDir } from '../../helpers/fixtures.ts';

const tmp = tempDir();
afterAll(() => tmp.cleanup());

async function failure(p: Promise<unknown>): Promise<WhittleError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(WhittleError);
    return e as WhittleError;
  }
  throw new Error('expected a failure');
}

describe('readTextFile', () => {
  it('reads the TinyStories text whole, across read chunks', async () => {
    const text = await readTextFile(STORIES.text);
    expect(text.length).toBeGreaterThan(700_000);
    expect(text.startsWith('Spot. Spot saw the shiny car')).toBe(true);
  });

  it('keeps multi-byte characters that straddle a 1 MiB chunk boundary', async () => {
    const file = path.join(tmp.dir, 'straddle.txt');
    const text = 'a'.repeat((1 << 20) - 1) + 'é🙂 end';
    writeFileSync(file, text, 'utf8');
    expect(await readTextFile(file)).toBe(text);
  });

  it('names a missing file', async () => {
    const missing = path.join(tmp.dir, 'nope.txt');
    const e = await failure(readTextFile(missing));
    expect(e.code).toBe('NOT_FOUND');
    expect(e.message).toContain(missing);
  });

  it('rejects an empty and a whitespace-only file', async () => {
    for (const [name, content] of [['empty.txt', ''], ['blank.txt', ' \n\n\t \r\n']]) {
      const file = path.join(tmp.dir, name);
      writeFileSync(file, content);
      const e = await failure(readTextFile(file));
      expect(e.code).toBe('INVALID_INPUT');
      expect(e.message).toContain(`${name} is empty`);
    }
  });

  it('rejects a folder', async () => {
    const dir = path.join(tmp.dir, 'folder.txt');
    mkdirSync(dir);
    const e = await failure(readTextFile(dir));
    expect(e.code).toBe('INVALID_INPUT');
    expect(e.message).toContain('is a folder');
  });

  it('rejects binary content and invalid UTF-8', async () => {
    const model = path.join(tmp.dir, 'weights.txt');
    writeFileSync(model, Buffer.from([0x08, 0x07, 0x12, 0x00, 0x01, 0x41]));
    const latin1 = path.join(tmp.dir, 'latin1.txt');
    writeFileSync(latin1, Buffer.from('caf\xe9 au lait', 'latin1'));
    for (const file of [model, latin1]) {
      const e = await failure(readTextFile(file));
      expect(e.code).toBe('INVALID_INPUT');
      expect(e.message).toContain(`${path.basename(file)} does not look like text`);
    }
  });
});

describe('splitDocuments', () => {
  it('splits on blank lines, trims, drops empty paragraphs, accepts CRLF', () => {
    const text = '  first line\nstill first  \n\n\n second \r\n \r\nthird\n\n   \n\n';
    expect(splitDocuments(text)).toEqual(['first line\nstill first', 'second', 'third']);
  });

  it('finds the TinyStories paragraphs', async () => {
    const docs = splitDocuments(await readTextFile(STORIES.text));
    expect(docs.length).toBeGreaterThan(1000);
    expect(docs.every((d) => d.length > 0 && d === d.trim() && !/\n\s*\n/.test(d))).toBe(true);
  });
});
