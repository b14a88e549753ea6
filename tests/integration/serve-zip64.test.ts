/**
 * The zip writer past 4 GiB: a sparse file of 4 GiB + 3 bytes and a small file after it (whose offset
 * then needs ZIP64 too) are zipped to disk and checked by `unzip -t` (every CRC) and `zipinfo`.
 * About 8.6 GB of disk I/O (100 s on a small machine): it runs when WHITTLE_ZIP64_TEST=1.
 */
import { execFileSync } from 'node:child_process';
import { createWriteStream, truncateSync, writeFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { folderEntries, zipStream } from '../../main/server/zip.ts';
import { tempDir } from '../helpers/fixtures.ts';

const BIG = 2 ** 32 + 3;

let scratch: ReturnType<typeof tempDir>;
beforeAll(() => { scratch = tempDir('whittle-zip64-'); });
afterAll(() => scratch.cleanup());

describe('zip64', () => {
  it.runIf(process.env.WHITTLE_ZIP64_TEST === '1')('a file over 4 GiB and an entry past 4 GiB unzip with every CRC right', async () => {
    const dir = path.join(scratch.dir, 'big-model');
    execFileSync('mkdir', ['-p', dir]);
    const big = path.join(dir, 'a-model.onnx.data');
    writeFileSync(big, '');
    truncateSync(big, BIG);
    writeFileSync(path.join(dir, 'b-whittle.json'), '{"after":"the big one"}');
    const zip = path.join(scratch.dir, 'big.zip');
    await pipeline(Readable.from(zipStream(await folderEntries(dir))), createWriteStream(zip));
    expect((await stat(zip)).size).toBeGreaterThan(BIG);
    const test = execFileSync('unzip', ['-t', zip], { encoding: 'utf8', maxBuffer: 1 << 20 });
    expect(test).toMatch(/testing: big-model\/a-model\.onnx\.data\s+OK/);
    expect(test).toMatch(/testing: big-model\/b-whittle\.json\s+OK/);
    expect(test).toMatch(/No errors detected/);
    const info = execFileSync('zipinfo', ['-l', zip], { encoding: 'utf8' });
    expect(info).toContain(String(BIG));
    expect(execFileSync('unzip', ['-p', zip, 'big-model/b-whittle.json'], { encoding: 'utf8' })).toBe('{"after":"the big one"}');
  }, 300_000);
});
