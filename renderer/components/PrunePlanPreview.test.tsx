/**
 * The prune preview renders the plan it is given (the shape prune.plan answers; the plan itself is tested
 * on the sample in tests/unit/api/prune-plan.test.ts): one table row per block with its sparsity, the
 * estimate line, the N:M misfits, and the structured removals.
 */
import { MantineProvider } from '@mantine/core';
import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, it } from 'vitest';
import type { PrunePlan, PrunePlanBlock } from '../../preload/contract.ts';
import { formatBytes } from '../lib/format.ts';
import { PrunePlanPreview } from './PrunePlanPreview.tsx';

const render = (plan: PrunePlan | null, error: { code: string; message: string } | null = null): string =>
  renderToStaticMarkup(<MantineProvider><PrunePlanPreview plan={plan} loading={false} error={error as never} /></MantineProvider>);
const BLOCKS = 5;
const D = 64, F = 172;
/** A plan of the stories260K shape (5 blocks, d = 64, MLP 172, 8 heads over 4 KV heads). */
function plan(s: { method: string; sparsity?: number; pattern?: string; target?: 'heads' | 'neurons' | 'layers'; ratio?: number }): Promise<PrunePlan> {
  const names = ['q', 'k', 'v', 'o', 'gate', 'up', 'down'];
  const weights = Array.from({ length: BLOCKS }, (_, b) => names.map((role) => ({
    name: `model.layers.${b}.${role}.weight`, block: b, role, shape: role === 'down' ? [F, D] : role === 'gate' || role === 'up' ? [D, F] : [D, D],
    k: role === 'down' ? F : D, params: role === 'gate' || role === 'up' || role === 'down' ? D * F : D * D, sparsity: s.sparsity ?? 0.5,
  }))).flat();
  const base = { path: '/m.onnx', method: s.method as PrunePlan['method'], skipped: [{ name: 'model.embed_tokens.weight', reason: 'embeddings stay in float' }], parametersBefore: 264_133, bytesBefore: 1_090_282 };
  if (s.method === 'structured') {
    const removed = Math.round((s.ratio ?? 0.5) * 8);
    const blocks: PrunePlanBlock[] = Array.from({ length: BLOCKS }, (_, b) => ({ block: b, weights: 0, params: 0, sparsity: null, heads: 8, kvHeads: 4, intermediate: F, removed, removedParams: removed * 3 * D * 8 }));
    const gone = blocks.reduce((a, b) => a + b.removedParams!, 0);
    return Promise.resolve({ ...base, sparsity: null, allocation: null, weights: [], blocks, nm: null, structured: { target: s.target!, perBlock: removed / 2, groupSize: 2, removedHeads: removed },
      parametersZeroed: 0, parametersRemoved: gone, bytesAfter: base.bytesBefore - 4 * gone, note: `${gone} parameters removed.`, skipped: [] });
  }
  const m = s.pattern ? Number(s.pattern.split(':')[1]) : null;
  const blocks: PrunePlanBlock[] = Array.from({ length: BLOCKS }, (_, b) => ({ block: b, weights: 7, params: 4 * D * D + 3 * D * F, sparsity: s.sparsity ?? 0.5 }));
  const failing = m ? weights.filter((w) => w.k % m !== 0).map((w) => ({ name: w.name, k: w.k })) : [];
  return Promise.resolve({ ...base, sparsity: s.sparsity ?? 0.5, allocation: 'uniform', weights, blocks, nm: s.pattern ? { pattern: s.pattern, ok: failing.length === 0, failing } : null,
    structured: null, parametersZeroed: 1000, parametersRemoved: 0, bytesAfter: base.bytesBefore, note: 'zeros take as many bytes as any weight, so the file keeps its size.' });
}
const rows = (html: string): number => html.split('data-testid="prune-plan-row"').length - 1;

describe('PrunePlanPreview', () => {
  it('shows one row per block at the plan\'s sparsity and the estimate line', async () => {
    const p = await plan({ method: 'magnitude', sparsity: 0.3 });
    const html = render(p);
    expect(rows(html)).toBe(p.blocks.length);
    expect(html.split('>30 %<').length - 1).toBe(p.blocks.length);
    expect(html).toContain(`${formatBytes(p.bytesBefore)} → ${formatBytes(p.bytesAfter)}`);
    expect(html).toContain('zeros take as many bytes as any weight');
    expect(html).not.toContain('prune-plan-nm');
  });

  it('names the weights an N:M pattern does not fit', async () => {
    const p = await plan({ method: 'magnitude', pattern: '1:8' });
    expect(p.nm!.ok).toBe(false);
    const html = render(p);
    expect(html).toContain('prune-plan-nm');
    expect(html).toContain(`${p.nm!.failing[0].name} (K = ${p.nm!.failing[0].k})`);
  });

  it('shows the structured removals per block, and the error when there is no plan', async () => {
    const p = await plan({ method: 'structured', target: 'heads', ratio: 0.5 });
    const html = render(p);
    expect(rows(html)).toBe(p.blocks.length);
    expect(html).toContain('Heads removed');
    expect(html).toContain(`>${p.structured!.removedHeads}<`);
    expect(render(null, { code: 'INVALID_INPUT', message: 'A ratio of 0.01 removes none of the 5 blocks' })).toContain('removes none of the 5 blocks');
  });
});
