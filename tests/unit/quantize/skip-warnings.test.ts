/**
 * The warning a weight-only step gives when more than a quarter of the weights it could quantize were
 * skipped for a reason the user can change (K below one block, a keep pattern), on the sample's real
 * graph: block 128 leaves only the five MLP down projections (K = 172 ≥ 128); the others have K = 64.
 */
import { describe, expect, it } from 'vitest';
import { skipWarnings } from '../../../main/engine/quantize/weight-only.ts';
import { planTargets } from '../../../main/engine/quantize/targets.ts';
import { readModel } from '../../../main/engine/onnx/reader.ts';
import { stepWarnings } from '../../../renderer/lib/quantize-compare.ts';
import { STORIES } from '../../helpers/fixtures.ts';

async function planFor(blockSize: number, keep: RegExp[] = []) {
  const model = await readModel(STORIES.model);
  return planTargets(model.proto.graph!, { blockSize, keep });
}

describe('skip warnings of weight-only steps', () => {
  it('block 128 on the sample: most weights skipped, with the block size that fits them', async () => {
    const plan = await planFor(128);
    const kSkipped = plan.skipped.filter((s) => /smaller than one block/.test(s.reason));
    expect(kSkipped.length).toBeGreaterThan(3 * plan.targets.length);
    const warnings = skipWarnings(plan, { blockSize: 128 });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(new RegExp(`^${kSkipped.length} of ${plan.targets.length + kSkipped.length} weights were skipped`));
    expect(warnings[0]).toContain(`K = ${[...new Set(kSkipped.map((s) => s.shape[0]))].sort((a, b) => a - b).join(', ')} is smaller than one block (128)`);
    expect(warnings[0]).toContain('--block-size 64');
    // The suggestion works: at block 64 nothing is skipped for its K, and there is no warning.
    const fitted = await planFor(64);
    expect(fitted.skipped.filter((s) => /smaller than one block/.test(s.reason))).toEqual([]);
    expect(skipWarnings(fitted, { blockSize: 64 })).toEqual([]);
  });

  it('keep patterns count when they hold back more than a quarter; a quarter or less is quiet', async () => {
    const many = await planFor(32, [/self_attn/, /gate_proj/]);
    const kept = many.skipped.filter((s) => /keep pattern/.test(s.reason)).length;
    expect(kept).toBeGreaterThan((kept + many.targets.length) / 4);
    expect(skipWarnings(many, { blockSize: 32 })[0]).toContain(`${kept} because they match a keep pattern`);

    const few = await planFor(32, [/layers\.0\.self_attn\.q_proj/]);
    const keptFew = few.skipped.filter((s) => /keep pattern/.test(s.reason)).length;
    expect(keptFew).toBeGreaterThan(0);
    expect(keptFew * 4).toBeLessThanOrEqual(keptFew + few.targets.length);
    expect(skipWarnings(few, { blockSize: 32 })).toEqual([]);
  });

  it('the result page reads the warnings of RTN and GPTQ steps from the job details', () => {
    const base = { type: 'quantize', input: '/m.onnx', output: '/o/model.onnx', outputDir: '/o', outputBytes: 1, modelBytes: 1, format: 'matmulnbits', bits: 4, blockSize: 128, symmetric: false, accuracyLevel: 4, quantized: 5, quantizedWeights: [], skipped: [], sqError: 0 };
    const details = { steps: [{ ...base, method: 'rtn', index: 0, warnings: ['31 of 36 weights were skipped'] }] };
    expect(stepWarnings(details)).toEqual(['31 of 36 weights were skipped']);
    expect(stepWarnings({ steps: [{ ...base, method: 'rtn', index: 0 }] })).toEqual([]);
  });
});
