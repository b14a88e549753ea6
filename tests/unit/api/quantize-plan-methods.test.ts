/**
 * `quantize.plan` for every method, on the real stories260K inspection: which weights each method
 * rewrites, the bits it stores them in, overrides, exclusions, and sizes that add up.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { ModelInspection, QuantizePlan } from '../../../preload/contract.ts';
import { QuantizeStep, type RecipeInput } from '../../../preload/recipe.ts';
import { planQuantize } from '../../../main/api/quantize-plan.ts';
import { WhittleError } from '../../../main/engine/errors.ts';
import { inspectModel } from '../../../main/engine/model/inspect.ts';
import { STORIES } from '../../helpers/fixtures.ts';

type StepInput = Extract<NonNullable<RecipeInput['steps']>[number], { type: 'quantize' }>;

let inspection: ModelInspection;
beforeAll(async () => { inspection = await inspectModel(STORIES.model); });

const calibration = { text: STORIES.text, samples: 16, length: 128 };
const plan = (step: StepInput): QuantizePlan => planQuantize(inspection, QuantizeStep.parse(step));
const row = (p: QuantizePlan, name: string) => p.weights.find((w) => w.name === name)!;
const Q0 = 'model.layers.0.self_attn.q_proj.weight_t';
const savedBy = (p: QuantizePlan): number => {
  const seen = new Set<string>();
  return p.weights.filter((w) => w.action === 'quantize' && !seen.has(w.name) && seen.add(w.name)).reduce((a, w) => a + w.bytesBefore - w.bytesAfter, 0);
};

describe('quantize.plan by method', () => {
  it('GPTQ plans the same weights and the same size as RTN at the same settings', () => {
    const rtn = plan({ type: 'quantize', method: 'rtn', bits: 4, blockSize: 32 });
    const gptq = plan({ type: 'quantize', method: 'gptq', bits: 4, blockSize: 32, calibration, actOrder: true });
    expect(gptq.bytesAfter).toBe(rtn.bytesAfter);
    expect(gptq.weights.map((w) => [w.name, w.action, w.bits])).toEqual(rtn.weights.map((w) => [w.name, w.action, w.bits]));
    expect(gptq).toMatchObject({ method: 'gptq', parameters: inspection.parameters });
    expect(row(gptq, Q0)).toMatchObject({ action: 'quantize', bits: 4 });
  });

  it('an 8-bit override raises exactly the weights it names, and costs size', () => {
    const base = plan({ type: 'quantize', method: 'rtn', bits: 4 });
    const mixed = plan({ type: 'quantize', method: 'rtn', bits: 4, overrides: [{ pattern: `^${Q0.replace(/\./g, '\\.')}$`, bits: 8 }] });
    expect(row(mixed, Q0)).toMatchObject({ action: 'quantize', bits: 8, override: expect.stringContaining('q_proj') });
    expect(row(mixed, Q0).bytesAfter).toBeGreaterThan(row(base, Q0).bytesAfter);
    expect(mixed.weights.filter((w) => w.bits === 8)).toHaveLength(1);
    expect(mixed.bytesAfter - base.bytesAfter).toBe(row(mixed, Q0).bytesAfter - row(base, Q0).bytesAfter);
    // A keep pattern wins over an override.
    const kept = plan({ type: 'quantize', method: 'rtn', keep: ['q_proj'], overrides: [{ pattern: 'q_proj', bits: 8 }] });
    expect(row(kept, Q0).action).toBe('keep');
    expect(() => plan({ type: 'quantize', method: 'rtn', overrides: [{ pattern: 'q(', bits: 8 }] })).toThrow(/Override pattern 1 "q\(" is not a valid/);
  });

  it('FP16 halves every float32 weight, embeddings and lookup tables included', () => {
    const p = plan({ type: 'quantize', method: 'fp16' });
    expect(p.counts).toEqual({ quantize: 39, keep: 0, skip: 0 });
    expect(row(p, Q0)).toMatchObject({ bits: 16, bytesBefore: 64 * 64 * 4, bytesAfter: 64 * 64 * 2 });
    expect(row(p, 'rope_cos').action).toBe('quantize');
    expect(p.bytesAfter).toBeGreaterThan(p.bytesBefore * 0.45);
    expect(p.bytesAfter).toBeLessThan(p.bytesBefore * 0.6);
    expect(p.bytesBefore - p.bytesAfter).toBe(savedBy(p));
    const keep = plan({ type: 'quantize', method: 'fp16', keep: ['embed_tokens'] });
    expect(keep.weights.filter((w) => w.action === 'keep')).toHaveLength(2);
    expect(keep.bytesAfter).toBeGreaterThan(p.bytesAfter);
  });

  it('INT8 dynamic stores one byte per weight plus a scale per channel (or per tensor)', () => {
    const channel = plan({ type: 'quantize', method: 'int8-dynamic' });
    const tensor = plan({ type: 'quantize', method: 'int8-dynamic', perChannel: false });
    expect(channel.counts).toEqual({ quantize: 35, keep: 0, skip: 4 });
    expect(row(channel, Q0)).toMatchObject({ bits: 8, bytesAfter: 4096 + 256 });
    expect(row(tensor, Q0).bytesAfter).toBe(4096 + 4);
    expect(tensor.bytesAfter).toBeLessThan(channel.bytesAfter);
    // Between the 4-bit and the fp16 estimates.
    expect(channel.bytesAfter).toBeLessThan(plan({ type: 'quantize', method: 'fp16' }).bytesAfter);
    expect(channel.bytesAfter).toBeGreaterThan(plan({ type: 'quantize', method: 'rtn', bits: 4 }).bytesAfter);
    expect(channel.bytesBefore - channel.bytesAfter).toBe(savedBy(channel));
  });

  it('INT8 static marks weights of excluded nodes as kept, with the reason', () => {
    // Exclusion patterns match node names (stories260K's are MatMul_<n>), not weight names.
    const q0Node = row(plan({ type: 'quantize', method: 'int8-static', calibration }), Q0).node;
    const p = plan({ type: 'quantize', method: 'int8-static', calibration, exclude: [`^${q0Node}$`, 'down_proj'] });
    const kept = p.weights.filter((w) => w.action === 'keep');
    expect(kept.map((w) => w.name)).toEqual([Q0]);
    expect(kept[0].reason).toMatch(/exclude pattern/);
    expect(p.counts.quantize).toBe(34);
    expect(() => plan({ type: 'quantize', method: 'int8-static', calibration, exclude: ['('] })).toThrow(WhittleError);
  });
});
