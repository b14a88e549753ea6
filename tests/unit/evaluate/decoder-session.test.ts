import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { WhittleError } from '../../../main/engine/errors.ts';
import { openDecoder, type Decoder } from '../../../main/engine/evaluate/decoder-session.ts';
import { fixture, STORIES, tempDir } from '../../helpers/fixtures.ts';
import { writeBigramDecoder } from './bigram-decoder.ts';

const tmp = tempDir();
afterAll(() => tmp.cleanup());

const GPT2_PAST = fixture('onnx', 'ortgenai', 'tiny-random-gpt2-fp32', 'past.onnx');
const LLAMA_FP16 = fixture('onnx', 'ortgenai', 'tiny-random-LlamaForCausalLM-fp16', 'model.onnx');

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Last-position logits of forward(ids) against forward(ids[:-1]) then forward([last], state). */
async function cacheStepDifference(d: Decoder, ids: number[]): Promise<number> {
  const V = d.vocabSize;
  const full = await d.forward(ids);
  expect(full.logits.length).toBe(ids.length * V);
  expect(full.logits.every(Number.isFinite)).toBe(true);
  const prefix = await d.forward(ids.slice(0, -1));
  expect(prefix.state.pastLength).toBe(ids.length - 1);
  const step = await d.forward(ids.slice(-1), prefix.state);
  expect(step.state.pastLength).toBe(ids.length);
  expect(step.logits.length).toBe(V);
  return maxAbsDiff(full.logits.subarray((ids.length - 1) * V), step.logits);
}

const CASES = [
  { name: 'stories260K (HF cache, fp32)', file: STORIES.model, kind: 'hf-cache', vocab: 512, layers: 10, mask: false, tolerance: 1e-4 },
  { name: 'tiny GPT-2 (past_i combined cache, int32 ids, contrib ops)', file: GPT2_PAST, kind: 'combined-cache', vocab: 1000, layers: 5, mask: true, tolerance: 1e-4 },
  // fp16 logits: one fp16 step near 0.1 is 6e-5, so the two paths may differ by a couple of steps.
  { name: 'tiny Llama (ORT GenAI, fp16, external data)', file: LLAMA_FP16, kind: 'hf-cache', vocab: 32000, layers: 4, mask: true, tolerance: 1e-3 },
] as const;

describe.each(CASES)('openDecoder: $name', ({ file, kind, vocab, layers, mask, tolerance }) => {
  it('detects the layout from the session', async () => {
    const d = await openDecoder(file, { threads: 1 });
    try {
      expect(d.layout.kind).toBe(kind);
      expect(d.vocabSize).toBe(vocab);
      expect(d.layout.cache).toHaveLength(layers);
      expect(Boolean(d.layout.attentionMask)).toBe(mask);
      expect(d.threads).toBe(1);
    } finally {
      await d.release();
    }
  });

  it('gives the same next-token logits through the cache as over the full sequence', async () => {
    const d = await openDecoder(file);
    try {
      const ids = [1, 45, 300, 17, 2, 99, 412, 8, 77];
      expect(await cacheStepDifference(d, ids)).toBeLessThan(tolerance);
      // Several cached steps in a row, then compare with one full pass.
      let { state } = await d.forward(ids.slice(0, 3));
      let last: Float32Array = new Float32Array(0);
      for (const id of ids.slice(3)) ({ logits: last, state } = await d.forward([id], state));
      const full = await d.forward(ids);
      expect(maxAbsDiff(full.logits.subarray((ids.length - 1) * d.vocabSize), last)).toBeLessThan(tolerance);
    } finally {
      await d.release();
    }
  });

  it('scores right-padded batches exactly like single rows', async () => {
    const d = await openDecoder(file);
    try {
      const rows = [[1, 5, 9, 200, 31, 7], [1, 44], [1, 300, 2, 8]];
      const { logits, seqLen } = await d.forwardBatch(rows);
      expect(seqLen).toBe(6);
      for (const [b, row] of rows.entries()) {
        const single = await d.forward(row);
        const start = b * seqLen * d.vocabSize;
        expect(maxAbsDiff(logits.subarray(start, start + row.length * d.vocabSize), single.logits)).toBeLessThan(tolerance);
      }
    } finally {
      await d.release();
    }
  });
});

describe('openDecoder: a graph without a cache', () => {
  it('runs the no-cache layout, decoding by re-running the sequence', async () => {
    const V = 8;
    const table = Float32Array.from({ length: V * V }, (_, i) => Math.cos(i * 0.7) * 3);
    const file = path.join(tmp.dir, 'bigram.onnx');
    writeBigramDecoder(file, table, V);
    const d = await openDecoder(file);
    try {
      expect(d.layout.kind).toBe('no-cache');
      expect(d.layout.attentionMask?.dtype).toBe('int64');
      expect(d.layout.positionIds?.dtype).toBe('int64');
      expect(d.vocabSize).toBe(V);
      const first = await d.forward([3, 5]);
      expect(Array.from(first.logits)).toEqual(Array.from(table.subarray(3 * V, 4 * V)).concat(Array.from(table.subarray(5 * V, 6 * V))));
      const next = await d.forward([6], first.state);
      expect(next.state.tokens).toEqual([3, 5, 6]);
      expect(Array.from(next.logits)).toEqual(Array.from(table.subarray(6 * V, 7 * V)));
    } finally {
      await d.release();
    }
  });
});

describe('openDecoder: files that are not decoders', () => {
  async function failure(p: Promise<unknown>): Promise<WhittleError> {
    try { await p; } catch (e) { expect(e).toBeInstanceOf(WhittleError); return e as WhittleError; }
    throw new Error('expected a failure');
  }

  it('names a missing model', async () => {
    const e = await failure(openDecoder(path.join(tmp.dir, 'missing.onnx')));
    expect(e.code).toBe('NOT_FOUND');
  });

  it('reports a file onnxruntime cannot parse as MODEL_PARSE', async () => {
    const file = path.join(tmp.dir, 'not-a-model.onnx');
    writeFileSync(file, 'this is plain text, not a protobuf');
    const e = await failure(openDecoder(file));
    expect(e.code).toBe('MODEL_PARSE');
    expect(e.message).toContain('onnxruntime could not load not-a-model.onnx');
  });

  it('refuses a model without input_ids as UNSUPPORTED_MODEL', async () => {
    const e = await failure(openDecoder(fixture('onnx', 'node-tests', 'test_softmax_example', 'model.onnx')));
    expect(e.code).toBe('UNSUPPORTED_MODEL');
    expect(e.message).toContain('it has no input_ids input');
  });
});
