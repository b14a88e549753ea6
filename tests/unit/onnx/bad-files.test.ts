/**
 * Files that are not ONNX models (or are cut short) must fail with the exact message pinned in
 * tests/fixtures/models.json: the file is recognised by its bytes and the message says what it is.
 */
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readModel } from '../../../main/engine/onnx/reader.ts';
import { BufferSource, ProtoCursor } from '../../../main/engine/onnx/wire.ts';
import { isWhittleError } from '../../../main/engine/errors.ts';
import { fixture, tempDir } from '../../helpers/fixtures.ts';
import corpus from '../../fixtures/models.json' with { type: 'json' };

interface Failure {
  file: string;
  make: { text?: string; hex?: string; copy?: string; truncate?: string; bytes?: number };
  error: { code: string; message: string };
}

const tmp = tempDir('whittle-bad-files-');
afterAll(() => tmp.cleanup());

function make(f: Failure): string {
  const out = path.join(tmp.dir, f.file);
  mkdirSync(path.dirname(out), { recursive: true });
  const m = f.make;
  if (m.text !== undefined) writeFileSync(out, m.text);
  else if (m.hex !== undefined) writeFileSync(out, Buffer.from(m.hex, 'hex'));
  else if (m.copy !== undefined) copyFileSync(fixture(m.copy), out);
  else if (m.truncate !== undefined) writeFileSync(out, readFileSync(fixture(m.truncate)).subarray(0, m.bytes));
  else throw new Error(`no recipe for ${f.file}`);
  return out;
}

async function errorOf(p: string): Promise<{ code: string; message: string }> {
  try {
    await readModel(p);
  } catch (e) {
    if (!isWhittleError(e)) throw e;
    return { code: e.code, message: e.message };
  }
  throw new Error(`${p} was read without error`);
}

describe('bad model files', () => {
  it.each(corpus.failures as Failure[])('$file fails with its pinned message', async (f) => {
    expect(await errorOf(make(f))).toEqual(f.error);
  });

  it('reports a missing file and a folder as such', async () => {
    const missing = path.join(tmp.dir, 'nope.onnx');
    expect(await errorOf(missing)).toEqual({ code: 'NOT_FOUND', message: `No such file: ${missing}` });
    const folder = path.join(tmp.dir, 'folder.onnx');
    mkdirSync(folder);
    expect(await errorOf(folder)).toEqual({ code: 'INVALID_INPUT', message: 'folder.onnx is a folder, not an ONNX model file. Choose the .onnx file inside it.' });
  });

  it('never reads a truncated copy of a real model without error, wherever it is cut', async () => {
    const whole = readFileSync(fixture('stories260K', 'stories260K-kv.onnx'));
    const out = path.join(tmp.dir, 'cut.onnx');
    // 97 cut points spread over the file (a prime step so they land on all kinds of fields).
    for (let n = 1; n < whole.length; n += Math.floor(whole.length / 97)) {
      writeFileSync(out, whole.subarray(0, n));
      const e = await errorOf(out);
      expect(e.code).toBe('MODEL_PARSE');
      expect(e.message).toMatch(/^cut\.onnx (is truncated: the file ends inside [\w.]+|is not a usable ONNX model: it has no graph)/);
    }
    // Every cut around the end of the graph up to the end of opset_import must fail too. (A cut after
    // opset_import, between two metadata entries, leaves a complete valid model and cannot be detected.)
    const c = new ProtoCursor(new BufferSource(whole));
    const fieldEnd: Record<number, number> = {};
    while (c.more()) {
      const tag = c.tag();
      c.skip(tag & 7);
      fieldEnd[tag >> 3] = c.pos;
    }
    expect(fieldEnd[8]).toBeGreaterThan(fieldEnd[7]);
    for (let n = fieldEnd[7] - 100; n < fieldEnd[8]; n++) {
      writeFileSync(out, whole.subarray(0, n));
      const e = await errorOf(out);
      expect(e.message).toMatch(/^cut\.onnx (is truncated: the file ends inside [\w.]+|is not a usable ONNX model: it imports no operator set)/);
    }
  });
});
