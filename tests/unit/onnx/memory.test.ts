/**
 * Reading does not load tensor payloads: a model with a 64 MB inline raw_data is parsed through the
 * windowed reader, the tensor becomes a reference into the file, and the process does not grow by the
 * tensor's size. The payload is still read correctly on demand.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, writeSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DataType } from '../../../main/engine/onnx/dtype.ts';
import type { TensorProto } from '../../../main/engine/onnx/proto-types.ts';
import { readModel } from '../../../main/engine/onnx/reader.ts';
import { readTensorBytes } from '../../../main/engine/onnx/tensor-data.ts';
import { writeModel } from '../../../main/engine/onnx/writer.ts';
import { tempDir } from '../../helpers/fixtures.ts';
import { emptyGraph, modelOf, nodeOf, valueInfo } from './helpers.ts';

const MB = 1 << 20;
const SIZE = 64 * MB;
const tmp = tempDir('whittle-memory-');
afterAll(() => tmp.cleanup());

describe('reading a model with a large inline tensor', () => {
  it('keeps the payload on disk (RSS grows by far less than the tensor)', async () => {
    // 64 MB source written in 1 MB pieces, hashed as it goes.
    const srcPath = path.join(tmp.dir, 'payload.bin');
    const hash = createHash('sha256');
    const fd = openSync(srcPath, 'w');
    const piece = Buffer.alloc(MB);
    for (let i = 0; i < SIZE / MB; i++) {
      for (let k = 0; k < MB; k += 4) piece.writeUInt32LE((i * MB + k) >>> 0, k);
      hash.update(piece);
      writeSync(fd, piece);
    }
    closeSync(fd);
    const expected = hash.digest('hex');

    const big: TensorProto = {
      name: 'big', dataType: DataType.float32, dims: [SIZE / 4], data: { kind: 'file', path: srcPath, offset: 0, length: SIZE },
      stringData: [], externalData: [], metadataProps: [],
    };
    const graph = emptyGraph({
      node: [nodeOf('Identity', ['big'], ['out'])],
      initializer: [big],
      output: [valueInfo('out', DataType.float32, [SIZE / 4])],
    });
    const modelPath = path.join(tmp.dir, 'big.onnx');
    const written = await writeModel(modelOf(graph), modelPath, { externalData: 'none' });
    expect(written.dataPath).toBeNull();
    expect(written.modelBytes).toBeGreaterThan(SIZE);

    const before = process.memoryUsage().rss;
    const model = await readModel(modelPath);
    const grown = process.memoryUsage().rss - before;
    expect(grown).toBeLessThan(16 * MB);

    const t = model.proto.graph!.initializer[0];
    expect(t.data).toMatchObject({ kind: 'file', path: modelPath, length: SIZE });
    const bytes = await readTensorBytes(t);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(expected);
  });
});
