/** whittle.json is written atomically, and a failed write leaves no temporary file behind. */
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isWhittleError } from '../../../main/engine/errors.ts';
import { MANIFEST_FILE, writeManifest, type Manifest } from '../../../main/engine/rewrite/manifest.ts';
import { tempDir } from '../../helpers/fixtures.ts';

const scratch = tempDir('whittle-manifest-');
afterAll(() => scratch.cleanup());
const manifest = { whittle: 'test', created: '2026-01-01T00:00:00.000Z' } as unknown as Manifest;

describe('writeManifest', () => {
  it('writes the manifest under its final name only', async () => {
    const dir = path.join(scratch.dir, 'ok');
    mkdirSync(dir);
    await writeManifest(dir, manifest);
    expect(readdirSync(dir)).toEqual([MANIFEST_FILE]);
    expect(JSON.parse(readFileSync(path.join(dir, MANIFEST_FILE), 'utf8'))).toMatchObject({ whittle: 'test' });
  });

  it('a write that fails leaves no temporary file and says what failed (IO)', async () => {
    const dir = path.join(scratch.dir, 'blocked');
    mkdirSync(path.join(dir, MANIFEST_FILE), { recursive: true }); // the final name is taken by a folder: the rename fails
    const e = await writeManifest(dir, manifest).catch((x: unknown) => x);
    expect(isWhittleError(e) && e.code).toBe('IO');
    expect((e as Error).message).toContain(path.join(dir, MANIFEST_FILE));
    expect(readdirSync(dir)).toEqual([MANIFEST_FILE]);
  });
});
