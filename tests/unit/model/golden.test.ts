/**
 * Inspection of every fixture model against the golden corpus (tests/fixtures/models.json): kind,
 * parameters, bytes per dtype, op histogram, opsets, inputs/outputs, decoder facts, quantizable weights.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { inspectModel } from '../../../main/engine/model/inspect.ts';
import { fixture, STORIES } from '../../helpers/fixtures.ts';
import corpus from '../../fixtures/models.json' with { type: 'json' };

type Golden = (typeof corpus.models)[number];

describe.each(corpus.models as Golden[])('inspection of $path', (g) => {
  it('matches the golden corpus', async () => {
    const r = await inspectModel(fixture(g.path));
    expect(r.kind).toBe(g.kind);
    expect(r.irVersion).toBe(g.irVersion);
    expect(r.opsets).toEqual(g.opsets);
    expect(r.parameters).toBe(g.parameters);
    expect(r.bytesByDtype).toEqual(g.bytesByDtype);
    expect(r.opHistogram).toEqual(g.ops);
    expect(r.inputs).toEqual(g.inputs);
    expect(r.outputs).toEqual(g.outputs);
    expect(r.quantizable.length).toBe(g.quantizable.count);
    expect(r.quantizable.filter((q) => !q.skipReason).length).toBe(g.quantizable.ready);
    expect(r.quantizable.filter((q) => q.skipReason).map((q) => ({ name: q.name, node: q.node, op: q.op, skipReason: q.skipReason }))).toEqual(g.quantizable.skipped);
    const a = r.architecture!;
    const arch = g.architecture;
    expect({ family: a.family, blocks: a.blocks.length, embedding: a.embedding, lmHead: a.lmHead, tiedEmbedding: a.tiedEmbedding })
      .toEqual({ family: arch.family, blocks: arch.blocks, embedding: arch.embedding, lmHead: arch.lmHead, tiedEmbedding: arch.tiedEmbedding });
    expect(a.issues.length).toBe(arch.issues);
    if ('roles' in arch && arch.roles) {
      for (const b of a.blocks) {
        expect(b.attention, `block ${b.index}`).toMatchObject({ heads: arch.heads, kvHeads: arch.kvHeads, headSize: arch.headSize });
        expect(b.mlp, `block ${b.index}`).toMatchObject({ intermediate: arch.intermediate, activation: arch.activation });
      }
      for (const [key, weight] of Object.entries(arch.roles)) {
        const [index, role] = key.split('.');
        const b = a.blocks[Number(index)];
        const found = role in b.attention ? b.attention[role as 'q'] : b.mlp[role as 'up'];
        expect(found, key).toBe(weight);
      }
    }
    if ('decoder' in g) {
      expect(r.decoder).toEqual(g.decoder);
      expect(r.producer).toBe(g.producer);
      expect(r.bytesOnDisk).toBe(g.bytesOnDisk);
      expect(r.externalDataFiles.map((f) => f.split(/[\\/]/).pop())).toEqual(g.externalDataFiles);
      if (g.quantizableExample) expect(r.quantizable).toContainEqual(g.quantizableExample);
    } else {
      expect(r.decoder).toBeUndefined();
    }
  });
});

describe('stories260K parameters', () => {
  it('equal the llama2.c checkpoint weights (from its header) plus rope tables and the float constants, not the int64 shapes', async () => {
    // Header of stories260K.bin: dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len (int32).
    const h = new Int32Array(readFileSync(fixture('stories260K', 'stories260K.bin')).buffer.slice(0, 28));
    const [dim, hidden, layers, heads, kvHeads, vocab, seqLen] = Array.from(h);
    const headSize = dim / heads;
    const perLayer = 2 * dim + dim * dim * 2 + 2 * dim * kvHeads * headSize + 3 * dim * hidden;
    const weights = vocab * dim + layers * perLayer + dim;          // classifier shared with the embedding
    const rope = 2 * seqLen * (headSize / 2);                        // cos and sin tables [seq_len, head_size/2]
    const r = await inspectModel(STORIES.model);
    const floatScalars = r.bytesByDtype.float32 / 4 - weights - rope;
    expect(weights + rope).toBe(264_128);
    expect(floatScalars).toBe(5);                                    // rms_eps, one_f, neg_big, zero_f, attn_scale
    expect(r.bytesByDtype.int64).toBeGreaterThan(0);                // shapes and axes: bytes, never parameters
    expect(r.parameters).toBe(weights + rope + floatScalars);
    expect(r.decoder).toEqual({ layers, kvHeads, headSize, vocabSize: vocab });
  });
});
