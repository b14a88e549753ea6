/**
 * readDocuments: the paragraphs of a file read piece by piece equal splitDocuments of the whole text,
 * for any read size (separators, \r\n pairs and multi-byte characters cut between reads), and it refuses
 * what readTextFile refuses.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readDocuments, readTextFile, splitDocuments } from '../../../main/engine/data/text-file.ts';
import { fixture, STORIES, tempDir } from '../../helpers/fixtures.ts';

const tmp = tempDir();
afterAll(() => tmp.cleanup());

async function collect(file: string, chunkBytes?: number): Promise<string[]> {
  const docs: string[] = [];
  for await (const d of readDocuments(file, { chunkBytes })) docs.push(d);
  return docs;
}

describe('readDocuments', () => {
  it('gives the paragraphs of the TinyStories and State of the Union texts as splitDocuments does', async () => {
    for (const file of [STORIES.text, fixture('text', 'sotu-2001-onward.txt')]) {
      const expected = splitDocuments(await readTextFile(file));
      expect(await collect(file)).toEqual(expected);
      expect(await collect(file, 4093)).toEqual(expected);
    }
  });

  it('splits the same way whatever the read size, with \\r\\n, whitespace-only lines and multi-byte characters', async () => {
    const file = path.join(tmp.dir, 'mixed.txt');
    const text = 'first é line\r\nsame paragraph\r\n\r\nsecond 🙂\n \t \nthird\r\rfourth\r\n\n\n\nfifth\r\n  \r\nsixth\r';
    writeFileSync(file, text, 'utf8');
    const expected = splitDocuments(text);
    expect(expected.length).toBe(6);
    for (let chunk = 1; chunk <= 12; chunk++) expect(await collect(file, chunk), `read size ${chunk}`).toEqual(expected);
  });

  it('refuses an empty file as readTextFile does', async () => {
    const file = path.join(tmp.dir, 'blank.txt');
    writeFileSync(file, ' \n\n \n', 'utf8');
    await expect(collect(file)).rejects.toMatchObject({ code: 'INVALID_INPUT', message: expect.stringMatching(/is empty/) as unknown });
  });
});
