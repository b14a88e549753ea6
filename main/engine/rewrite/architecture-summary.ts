/** The architecture map as inspection, the CLI and the Model page show it (the contract's ArchitectureSummary). */
import type { ArchitectureSummary } from '../../../preload/contract.ts';
import type { ArchitectureMap } from './architecture.ts';

const count = (v: number | null): number | null => (v !== null && Number.isInteger(v) && v > 0 ? v : null);

export function summarizeArchitecture(map: ArchitectureMap): ArchitectureSummary {
  return {
    family: map.family,
    blocks: map.blocks.map((b) => ({
      index: b.index,
      attention: {
        q: b.attention.q, k: b.attention.k, v: b.attention.v, o: b.attention.o, qkv: b.attention.qkv,
        heads: count(b.attention.heads), kvHeads: count(b.attention.kvHeads), headSize: count(b.attention.headSize),
      },
      mlp: { gate: b.mlp.gate, up: b.mlp.up, down: b.mlp.down, activation: b.mlp.activation, intermediate: count(b.mlp.intermediate) },
      norms: b.norms.map((n) => ({ kind: n.kind, at: n.at, weight: n.weight })),
      weights: [...b.weights],
    })),
    embedding: map.embedding,
    lmHead: map.lmHead,
    tiedEmbedding: map.tiedEmbedding,
    finalNorm: map.finalNorm?.weight ?? null,
    normPlacement: map.normPlacement,
    issues: [...map.issues],
  };
}

/** One line per fact: family, blocks × heads, MLP, embedding/LM head (for `whittle inspect`). */
export function architectureLines(a: ArchitectureSummary): [string, string][] {
  const lines: [string, string][] = [['architecture', a.family === 'unknown' ? 'not recognised' : `${a.family}-like, ${a.blocks.length} block${a.blocks.length === 1 ? '' : 's'}${a.normPlacement ? `, ${a.normPlacement}-norm` : ''}`]];
  const b0 = a.blocks[0];
  if (b0) {
    const { heads, kvHeads, headSize } = b0.attention;
    const same = a.blocks.every((b) => b.attention.heads === heads && b.attention.kvHeads === kvHeads && b.attention.headSize === headSize);
    const fmt = (v: number | null): string => (v === null ? '?' : String(v));
    lines.push(['attention', `${fmt(heads)} heads, ${fmt(kvHeads)} KV heads, head size ${fmt(headSize)}${b0.attention.qkv ? ', fused QKV' : ''}${same ? '' : ' (block 0; blocks differ)'}`]);
    const m = b0.mlp;
    lines.push(['MLP', `${m.gate ? 'gated' : 'ungated'}${m.activation ? ` ${m.activation}` : ''}, intermediate ${fmt(m.intermediate)}`]);
  }
  lines.push(['embedding', `${a.embedding ?? '—'}${a.tiedEmbedding ? ' (tied to the LM head)' : ''}`]);
  if (!a.tiedEmbedding) lines.push(['LM head', a.lmHead ?? '—']);
  for (const issue of a.issues) lines.push(['map issue', issue]);
  return lines;
}
