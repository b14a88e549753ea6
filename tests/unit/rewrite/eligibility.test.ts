/**
 * One eligibility decision: on every fixture model, the weights the rewrite would quantize (planTargets)
 * are exactly the weights the size estimate and the quantize plan count as quantized, for several block
 * sizes and keep patterns; and each target carries its block and role from the architecture map.
 */
import { describe, expect, it } from 'vitest';
import { planQuantize } from '../../../main/api/quantize-plan.ts';
import { inspectModel } from '../../../main/engine/model/inspect.ts';
import { readModel } from '../../../main/engine/onnx/reader.ts';
import { estimateQuantizedSize } from '../../../main/engine/quantize/estimate.ts';
import { mapArchitecture } from '../../../main/engine/rewrite/architecture.ts';
import { planTargets } from '../../../main/engine/rewrite/eligibility.ts';
import { QuantizeRtnStep } from '../../../preload/recipe.ts';
import corpus from '../../fixtures/models.json' with { type: 'json' };
import { fixture, STORIES } from '../../helpers/fixtures.ts';

const settings = [
  { blockSize: 16, keep: [] as string[] },
  { blockSize: 32, keep: ['lm_head|mlp\\.down'] },
  { blockSize: 128, keep: [] as string[] },
];

describe.each(corpus.models.map((m) => m.path))('%s', (path) => {
  it('the rewrite, the size estimate and the plan choose the same weights', async () => {
    const model = await readModel(fixture(path));
    const inspection = await inspectModel(fixture(path));
    for (const s of settings) {
      const step = QuantizeRtnStep.parse({ type: 'quantize', method: 'rtn', bits: 4, ...s });
      const rewrite = planTargets(model.proto.graph!, { blockSize: s.blockSize, keep: s.keep.map((p) => new RegExp(p)) }).targets.map((t) => t.weight).sort();
      const estimate = estimateQuantizedSize(inspection, step).perWeight.filter((w) => w.status === 'quantized').map((w) => w.name).sort();
      const plan = [...new Set(planQuantize(inspection, step).weights.filter((w) => w.action === 'quantize').map((w) => w.name))].sort();
      expect(estimate, `block ${s.blockSize}, keep ${s.keep}`).toEqual(rewrite);
      expect(plan, `block ${s.blockSize}, keep ${s.keep}`).toEqual(rewrite);
    }
  });
});

describe('target roles', () => {
  it('every sample target has its block and role; the tied LM head stays in float', async () => {
    const model = await readModel(STORIES.model);
    const map = mapArchitecture(model);
    const plan = planTargets(model.proto.graph!, { blockSize: 16, keep: [] }, map);
    expect(plan.targets).toHaveLength(map.blocks.length * 7);
    for (const t of plan.targets) {
      const b = map.blocks[t.block!];
      const byRole: Record<string, string | null> = { q: b.attention.q, k: b.attention.k, v: b.attention.v, o: b.attention.o, gate: b.mlp.gate, up: b.mlp.up, down: b.mlp.down };
      expect(byRole[t.role!], t.weight).toBe(t.weight);
    }
    expect(plan.skipped.find((s) => s.name === map.embedding)?.reason).toMatch(/embeddings stay in float/);
  });

  it('an untied LM head is a target with role lm_head; GPT-2 MLPs are fc1/fc2', async () => {
    const llama = await readModel(fixture('onnx', 'ortgenai', 'tiny-random-LlamaForCausalLM-fp16', 'model.onnx'));
    const head = planTargets(llama.proto.graph!, { blockSize: 16, keep: [] }).targets.find((t) => t.role === 'lm_head');
    expect(head).toMatchObject({ weight: mapArchitecture(llama).lmHead, block: null });
    const gpt2 = await readModel(fixture('onnx', 'ortgenai', 'tiny-random-gpt2-fp32', 'past.onnx'));
    const roles = planTargets(gpt2.proto.graph!, { blockSize: 16, keep: [] }).targets.map((t) => t.role);
    expect(roles.slice(0, 3)).toEqual(['o', 'fc1', 'fc2']);
    expect(roles.at(-1)).toBe('lm_head');
  });
});
