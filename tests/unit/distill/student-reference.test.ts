/**
 * A student of stories260K keeping blocks 0, 2 and 4 computes what a plain llama forward of those blocks
 * computes: the reference (tests/helpers/llama-reference.ts, float64) runs the llama2.c checkpoint's
 * weights with only the kept layers, in the teacher's order.
 */
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeStudentByBlocks } from '../../../main/engine/distill/student.ts';
import { openDecoder } from '../../../main/engine/evaluate/decoder-session.ts';
import { quietContext } from '../../../main/engine/job-context.ts';
import { fixture, STORIES, tempDir } from '../../helpers/fixtures.ts';
import { readLlama2cCheckpoint } from '../../helpers/llama-onnx.ts';
import { llamaReferenceLogits } from '../../helpers/llama-reference.ts';

const tmp = tempDir('whittle-student-reference-');
afterAll(() => tmp.cleanup());

const maxAbsDiff = (a: Float32Array, b: Float32Array): number => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);

describe('student of kept blocks vs a reference forward', () => {
  it('stories260K keeping blocks 0, 2, 4 gives the reference logits of those layers', async () => {
    const keep = [4, 0, 2];
    const student = await writeStudentByBlocks(STORIES.model, keep, path.join(tmp.dir, 'student'), quietContext(tmp.dir));
    const { shape, weights } = await readLlama2cCheckpoint(fixture('stories260K', 'stories260K.bin'));
    const kept = [0, 2, 4].map((i) => weights.layers[i]);
    const tokens = [1, 403, 407, 261, 378, 429, 260, 488, 88, 13];
    const reference = llamaReferenceLogits({ ...shape, layers: kept.length }, { ...weights, layers: kept }, tokens);
    const decoder = await openDecoder(student.modelPath, { threads: 1 });
    try {
      const { logits } = await decoder.forward(tokens);
      expect(logits.length).toBe(tokens.length * shape.vocab);
      expect(maxAbsDiff(logits, reference)).toBeLessThan(5e-5);
      // Dropping blocks changes the result: the full teacher's reference is far from the student's.
      const teacher = llamaReferenceLogits(shape, weights, tokens);
      expect(maxAbsDiff(logits, teacher)).toBeGreaterThan(0.1);
    } finally {
      await decoder.release();
    }
  });
});
