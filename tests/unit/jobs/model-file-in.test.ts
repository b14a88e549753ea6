/** A recipe's model given as a folder (an experiment's output folder) stands for the one .onnx file in it. */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isWhittleError } from '../../../main/engine/errors.ts';
import { modelFileIn } from '../../../main/jobs/model-file.ts';
import { tempDir } from '../../helpers/fixtures.ts';

let scratch: ReturnType<typeof tempDir>;
beforeEach(() => { scratch = tempDir('whittle-model-in-'); });
afterEach(() => scratch.cleanup());

describe('modelFileIn', () => {
  it('a file, or a path that does not exist, is left as it is', async () => {
    const file = path.join(scratch.dir, 'm.onnx');
    writeFileSync(file, 'x');
    expect(await modelFileIn(file)).toBe(file);
    expect(await modelFileIn(path.join(scratch.dir, 'missing.onnx'))).toBe(path.join(scratch.dir, 'missing.onnx'));
  });

  it('a folder with one .onnx file (beside its data and manifest) is that file', async () => {
    writeFileSync(path.join(scratch.dir, 'model.onnx'), 'x');
    writeFileSync(path.join(scratch.dir, 'model.onnx.data'), 'y');
    writeFileSync(path.join(scratch.dir, 'whittle.json'), '{}');
    mkdirSync(path.join(scratch.dir, 'sub'));
    writeFileSync(path.join(scratch.dir, 'sub', 'other.onnx'), 'z');
    expect(await modelFileIn(scratch.dir)).toBe(path.join(scratch.dir, 'model.onnx'));
  });

  it('a folder with none or several is refused, naming them', async () => {
    const none = await modelFileIn(scratch.dir).then(() => null, (e: unknown) => e);
    expect(isWhittleError(none) && none.code === 'INVALID_INPUT' && /holds no \.onnx file/.test(none.message)).toBe(true);
    writeFileSync(path.join(scratch.dir, 'a.onnx'), 'x');
    writeFileSync(path.join(scratch.dir, 'b.ONNX'), 'x');
    const two = await modelFileIn(scratch.dir).then(() => null, (e: unknown) => e);
    expect(isWhittleError(two) && /holds 2 \.onnx files \(a\.onnx, b\.ONNX\)/.test(two.message)).toBe(true);
  });
});
