/**
 * A decoder whose state is not only a key/value cache (a convolution state past_conv.0 [batch, 64, 3]
 * beside the sample's KV cache): inspection names the input and its shape under its own graph kind, and
 * the layout refuses it; the real fixtures, whose caches are all key/value caches, report nothing.
 */
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inspectModel } from '../../../main/engine/model/inspect.ts';
import { checkModelSupported, detectDecoderLayout, detectGraphKind, unsupportedParts } from '../../../main/engine/model/layout.ts';
import { isWhittleError } from '../../../main/engine/errors.ts';
import { readModel } from '../../../main/engine/onnx/reader.ts';
import { writeConvStateModel } from '../../helpers/conv-state-model.ts';
import { tempDir } from '../../helpers/fixtures.ts';
import { DECODER_FIXTURES } from '../onnx/helpers.ts';

let scratch: ReturnType<typeof tempDir>;
let file: string;

beforeAll(async () => {
  scratch = tempDir('whittle-conv-state-');
  file = await writeConvStateModel(scratch.dir);
});
afterAll(() => scratch.cleanup());

function thrown(f: () => unknown): unknown {
  try { f(); } catch (e) { return e; }
  throw new Error('expected a throw');
}

describe('a state input that is not a key/value cache', () => {
  it('is a real graph onnxruntime loads, with past_conv.0 among its inputs', async () => {
    const session = await ort.InferenceSession.create(file);
    expect(session.inputNames).toContain('past_conv.0');
    expect(session.outputNames).toContain('present_conv.0');
    await session.release();
  });

  it('inspection reports its own kind and names the input with its shape', async () => {
    const m = await inspectModel(file);
    expect(m.kind).toBe('decoder-unsupported-cache');
    expect(m.unsupported).toHaveLength(1);
    expect(m.unsupported![0]).toContain('past_conv.0 [batch_size, 64, 3]');
    expect(m.unsupported![0]).toMatch(/3 dimensions.*not a key\/value cache/);
    expect(m.decoder).toBeUndefined();
  });

  it('the layout and the up-front check refuse it with that line (UNSUPPORTED_MODEL)', async () => {
    const model = await readModel(file);
    expect(detectGraphKind(model)).toBe('decoder-unsupported-cache');
    for (const f of [() => detectDecoderLayout(model), () => checkModelSupported(model)]) {
      const e = thrown(f);
      expect(isWhittleError(e) && e.code).toBe('UNSUPPORTED_MODEL');
      expect((e as Error).message).toContain('past_conv.0 [batch_size, 64, 3]');
    }
  });

  it('a key/value cache name with the wrong rank is named too', async () => {
    const model = await readModel(file);
    const input = model.proto.graph!.input.find((i) => i.name === 'past_key_values.0.key')!;
    input.type!.tensorType!.shape!.dim.splice(1, 1);
    expect(unsupportedParts(model)).toEqual([
      expect.stringMatching(/^input past_key_values\.0\.key \[batch_size, past_sequence_length, 8\] has 3 dimensions/),
      expect.stringMatching(/^input past_conv\.0 /),
    ]);
  });

  it('the real decoder fixtures have nothing unsupported', async () => {
    for (const f of Object.values(DECODER_FIXTURES)) {
      const model = await readModel(f);
      expect(unsupportedParts(model)).toEqual([]);
      expect(() => checkModelSupported(model)).not.toThrow();
    }
  });
});
