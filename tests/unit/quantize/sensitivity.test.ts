/** Candidates of the sensitivity analysis: per weight, or grouped into transformer blocks. */
import { describe, expect, it } from 'vitest';
import { blockIndexOf, candidatesFor } from '../../../main/engine/quantize/sensitivity.ts';

describe('blockIndexOf', () => {
  it('reads the layer number from common naming schemes', () => {
    expect(blockIndexOf('model.layers.12.self_attn.q_proj.weight')).toBe(12);
    expect(blockIndexOf('/model/layers.3/mlp/down_proj/MatMul.weight')).toBe(3);
    expect(blockIndexOf('transformer.h.7.mlp.c_fc.weight')).toBe(7);
    expect(blockIndexOf('blocks.2.attn.w')).toBe(2);
    // the block number wins over other numbers in the name
    expect(blockIndexOf('model.layers.4.mlp.fc2_1')).toBe(4);
    expect(blockIndexOf('onnx::MatMul_1234')).toBe(1234);
    expect(blockIndexOf('lm_head.weight')).toBeNull();
  });
});

describe('candidatesFor', () => {
  const targets = ['proj_in', 'model.layers.0.q', 'model.layers.0.k', 'x_unnamed', 'model.layers.1.q', 'model.layers.1.down', 'lm_head'].map((weight) => ({ weight }));

  it("'weight': one candidate per weight, in graph order", () => {
    expect(candidatesFor(targets, 'weight').map((c) => c.weights)).toEqual(targets.map((t) => [t.weight]));
  });

  it("'block': grouped by layer index; unnumbered weights join the block before them (block 0 at the start)", () => {
    expect(candidatesFor(targets, 'block')).toEqual([
      { name: 'block 0', weights: ['proj_in', 'model.layers.0.q', 'model.layers.0.k', 'x_unnamed'] },
      { name: 'block 1', weights: ['model.layers.1.q', 'model.layers.1.down', 'lm_head'] },
    ]);
  });
});
