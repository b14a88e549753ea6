/**
 * `whittle history compare` as a child process on a history seeded through the repository: two
 * quantizations evaluated alike and a prune evaluated on a shorter window.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Comparison } from '../../preload/comparison.ts';
import type { Metric } from '../../preload/contract.ts';
import { openHistory } from '../../main/history/index.ts';
import { tempDir } from '../helpers/fixtures.ts';
import { onlyJson, runCli } from './cli-process.ts';

let scratch: ReturnType<typeof tempDir>;
let home: string;
let ids: number[];

const m = (name: string, value: number, subject: string): Metric => ({ name, value, unit: name === 'bytes_on_disk' ? 'bytes' : '', subject });

beforeAll(() => {
  scratch = tempDir('whittle-cli-compare-');
  home = path.join(scratch.dir, 'home');
  const h = openHistory({ home });
  const add = (name: string, step: unknown, window: number, ppl: number, bytes: number): number => {
    const evaluation = { footprint: true, perplexity: { text: '/data/eval.txt', protocol: 'documents', window, maxSamples: 40, minTokens: 16 } };
    const id = h.createExperiment({ name, kind: 'quantize', recipe: { version: 1, model: { path: '/m/stories.onnx' }, steps: [step], evaluation }, modelPath: '/m/stories.onnx', modelSha256: 'a'.repeat(64), status: 'running' });
    h.addMetrics(id, [m('perplexity', 3.9, 'original'), m('perplexity', ppl, 'result'), m('bytes_on_disk', bytes, 'result')]);
    h.setDetails(id, { settings: { evaluation } });
    h.finish(id, 'done');
    return id;
  };
  ids = [
    add('four', { type: 'quantize', method: 'rtn', bits: 4 }, 256, 4.3, 473_000),
    add('eight', { type: 'quantize', method: 'rtn', bits: 8 }, 256, 3.95, 540_000),
    add('pruned', { type: 'prune', method: 'magnitude', sparsity: 0.5 }, 128, 33, 1_100_000),
  ];
  h.close();
});
afterAll(() => scratch.cleanup());

describe('whittle history compare', () => {
  it('prints the runs, their metrics with changes against the baseline, the recipe differences and the comparability notes', async () => {
    const r = await runCli(['history', 'compare', ...ids.map(String), '--baseline', String(ids[1]), '--home', home]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`#${ids[1]} (baseline)`);
    expect(r.stdout).toMatch(/RTN 4-bit g32/);
    expect(r.stdout).toMatch(/perplexity\s+4\.300 \(\+8\.9 % worse\)\s+3\.950\s+33 \(\+735 % worse\) ≠/);
    expect(r.stdout).toMatch(/size on disk\s+462 KiB \(−12 % better\)\s+527 KiB\s+1\.05 MiB \(\+104 % worse\)\n/);
    expect(r.stdout).toMatch(/steps\[0\]\.bits\s+4\s+8\s+—/);
    expect(r.stdout).toContain('different protocol');
    expect(r.stdout).toMatch(new RegExp(`#${ids[2]}: documents, truncated to 128 tokens`));
  });

  it('--json prints the comparison', async () => {
    const c = onlyJson(await runCli(['history', 'compare', String(ids[0]), String(ids[2]), '--json', '--home', home])) as Comparison;
    expect(c.baseline).toBe(ids[0]);
    expect(c.ids).toEqual([ids[0], ids[2]]);
    expect(c.metrics.find((x) => x.name === 'perplexity')?.cells[1]).toMatchObject({ verdict: 'worse', comparable: false, reasons: ['protocol'] });
  });

  it('refuses one id, and a baseline that is not compared', async () => {
    const one = await runCli(['history', 'compare', String(ids[0]), '--home', home]);
    expect(one.code).toBe(2);
    expect(one.stderr).toContain('2 to 8 experiment ids');
    const outside = await runCli(['history', 'compare', String(ids[0]), String(ids[1]), '--baseline', String(ids[2]), '--home', home]);
    expect(outside.code).toBe(2);
    expect(outside.stderr).toContain('is not one of the compared experiments');
  });
});
