/**
 * The lineage tree's bounds: at most LINEAGE_LIMIT experiments are shown, the rest counted; the chain from
 * the original to the experiment asked about is always shown. Lineage is found by content (sha256).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { LineageNode } from '../../../preload/contract.ts';
import { openHistory, type History } from '../../../main/history/index.ts';
import { LINEAGE_LIMIT } from '../../../main/history/lineage.ts';
import { tempDir } from '../../helpers/fixtures.ts';

let scratch: ReturnType<typeof tempDir>;
let h: History;
beforeEach(() => {
  scratch = tempDir('whittle-lineage-unit-');
  h = openHistory({ home: scratch.dir });
});
afterEach(() => {
  h.close();
  scratch.cleanup();
});

const sha = (n: number): string => n.toString(16).padStart(64, '0');
const ORIGINAL = 'f'.repeat(64);

/** A finished experiment on `input` that wrote `output`. */
function made(input: string, output: string | null, kind = 'quantize'): number {
  const id = h.createExperiment({ name: `${kind} ${output ?? ''}`, kind, recipe: {}, modelPath: '/m.onnx', modelSha256: input, status: 'running' });
  h.linkInput(id, input);
  h.finish(id, 'done');
  if (output) h.recordOutput(id, output);
  return id;
}

function count(nodes: readonly LineageNode[]): number {
  return nodes.reduce((n, c) => n + 1 + count(c.children), 0);
}

function pathTo(node: LineageNode, id: number): number[] | null {
  if (node.id === id && node.kind !== 'model') return [id];
  for (const c of node.children) {
    const p = pathTo(c, id);
    if (p) return node.kind === 'model' ? p : [node.id!, ...p];
  }
  return null;
}

describe('lineage tree', () => {
  it('links only to finished experiments, the latest that wrote the model', () => {
    const failed = h.createExperiment({ name: 'failed', kind: 'prune', recipe: {}, modelPath: '/m.onnx', modelSha256: ORIGINAL, status: 'running' });
    h.finish(failed, 'failed');
    h.recordOutput(failed, sha(1));
    const a = made(ORIGINAL, sha(2));
    const b = made(ORIGINAL, sha(2));
    expect(h.linkInput(made(ORIGINAL, null), sha(1))).toBeNull();
    const child = made(sha(2), null);
    expect(h.lineage(child).root.children.find((c) => c.id === b)?.children.map((c) => c.id)).toEqual([child]);
    expect(h.lineage(child).root.children.find((c) => c.id === a)?.children).toEqual([]);
  });

  it(`shows at most ${LINEAGE_LIMIT} experiments, counts the rest, and always the chain to the one asked about`, () => {
    for (let i = 0; i < LINEAGE_LIMIT + 40; i++) made(ORIGINAL, sha(100_000 + i));
    // A chain of 5 from the last first-generation run: past the limit.
    let input = sha(100_000 + LINEAGE_LIMIT + 39);
    const chain: number[] = [];
    for (let k = 0; k < 5; k++) {
      chain.push(made(input, sha(200_000 + k)));
      input = sha(200_000 + k);
    }
    const last = chain.at(-1)!;
    const tree = h.lineage(last);
    const shown = count(tree.root.children);
    expect(shown).toBeLessThanOrEqual(LINEAGE_LIMIT + 6);
    expect(shown + tree.truncated).toBe(LINEAGE_LIMIT + 40 + 5);
    const firstOfChain = h.db.prepare<number>('SELECT input_experiment FROM experiments WHERE id = ?').pluck().get(chain[0])!;
    expect(pathTo(tree.root, last)).toEqual([firstOfChain, ...chain]);
    // From the first experiment the tree is cut the same way, the count the same.
    expect(count(h.lineage(1).root.children) + h.lineage(1).truncated).toBe(LINEAGE_LIMIT + 45);
  });
});
