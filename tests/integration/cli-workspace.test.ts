/**
 * `whittle history lineage`, `whittle report`, `whittle history export` and `import` as child processes on
 * a history seeded through the repository (an evaluation, a prune of it, a quantization of the prune).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BundleImported, LineageTree } from '../../preload/contract.ts';
import { openHistory } from '../../main/history/index.ts';
import { tempDir } from '../helpers/fixtures.ts';
import { onlyJson, runCli } from './cli-process.ts';

let scratch: ReturnType<typeof tempDir>;
let home: string;
let ids: number[];

beforeAll(() => {
  scratch = tempDir('whittle-cli-workspace-');
  home = path.join(scratch.dir, 'home');
  const h = openHistory({ home });
  const e = h.createExperiment({ name: 'original', kind: 'evaluate', recipe: {}, modelPath: '/m/stories.onnx', modelSha256: 'a'.repeat(64), status: 'running' });
  h.addMetrics(e, [{ name: 'perplexity', value: 4.2, unit: '', subject: 'model' }]);
  h.finish(e, 'done');
  const p = h.createExperiment({ name: 'Magnitude 30 %', kind: 'prune', recipe: { steps: [{ type: 'prune' }] }, modelPath: '/m/stories.onnx', modelSha256: 'a'.repeat(64), parentId: e, status: 'running', notes: 'first try' });
  h.addMetrics(p, [{ name: 'perplexity', value: 4.2, unit: '', subject: 'original' }, { name: 'perplexity', value: 4.8, unit: '', subject: 'result' }]);
  h.finish(p, 'done');
  h.recordOutput(p, 'b'.repeat(64));
  const q = h.createExperiment({ name: 'RTN 4-bit g32', kind: 'quantize', recipe: { steps: [{ type: 'quantize' }] }, modelPath: '/o/model.onnx', modelSha256: 'b'.repeat(64), status: 'running', tags: ['ship'] });
  h.linkInput(q, 'b'.repeat(64));
  h.addMetrics(q, [{ name: 'perplexity', value: 4.8, unit: '', subject: 'original' }, { name: 'perplexity', value: 5.3, unit: '', subject: 'result' }]);
  h.finish(q, 'done');
  h.close();
  ids = [e, p, q];
});
afterAll(() => scratch.cleanup());

describe('whittle history lineage', () => {
  it('draws the tree from the original, the experiment asked about marked', async () => {
    const r = await runCli(['history', 'lineage', String(ids[2]), '--home', home]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe([
      'stories.onnx (original)  perplexity 4.200',
      `└─ #${ids[1]} prune · Magnitude 30 %  perplexity 4.800`,
      `   └─ #${ids[2]} quantize · RTN 4-bit g32  perplexity 5.300  ◀`,
      '',
    ].join('\n'));
    const j = onlyJson(await runCli(['history', 'lineage', String(ids[1]), '--json', '--home', home])) as LineageTree;
    expect(j.current).toBe(ids[1]);
    expect(j.root.children[0].children[0].id).toBe(ids[2]);
  });
});

describe('whittle report', () => {
  it('writes HTML to a file, prints Markdown and CSV without --out', async () => {
    const out = path.join(scratch.dir, 'r.html');
    const r = await runCli(['report', String(ids[1]), String(ids[2]), '--out', out, '--home', home]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Wrote the HTML report of experiments .* to .*r\.html/);
    const html = readFileSync(out, 'utf8');
    expect(html).toContain('<svg class="chart"');
    expect(html).not.toMatch(/<script/i);
    const md = await runCli(['report', String(ids[2]), '--format', 'md', '--home', home]);
    expect(md.code, md.stderr).toBe(0);
    expect(md.stdout).toMatch(/^# RTN 4-bit g32 · experiment \d+/);
    expect(md.stdout).toContain('## Lineage');
    const csv = await runCli(['report', String(ids[2]), '--format', 'csv', '--home', home]);
    expect(csv.stdout.split('\r\n')[0]).toBe('experiment,name,kind,status,created,model,tags,metric,subject,value,unit');
  });

  it('refuses a bad format, a repeated id and an unknown id', async () => {
    expect((await runCli(['report', '1', '--format', 'pdf', '--home', home])).code).toBe(2);
    const twice = await runCli(['report', '2', '2', '--home', home]);
    expect(twice.code).toBe(2);
    expect(twice.stderr).toMatch(/named twice/);
    const unknown = await runCli(['report', '999', '--home', home]);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(/no experiment 999/);
  });
});

describe('whittle history export | import', () => {
  it('moves experiments to another home; a damaged bundle is refused and imports nothing', async () => {
    const bundle = path.join(scratch.dir, 'runs.whittle');
    const ex = await runCli(['history', 'export', ...ids.map(String), '--out', bundle, '--home', home]);
    expect(ex.code, ex.stderr).toBe(0);
    expect(ex.stdout).toMatch(/Exported 3 experiments to .*runs\.whittle/);
    const other = path.join(scratch.dir, 'other');
    const im = await runCli(['history', 'import', bundle, '--json', '--home', other]);
    expect(im.code, im.stderr).toBe(0);
    const result = onlyJson(im) as BundleImported;
    expect(result.experiments).toBe(3);
    const lineage = await runCli(['history', 'lineage', String(result.ids[2].to), '--home', other]);
    expect(lineage.stdout).toContain('RTN 4-bit g32  perplexity 5.300  ◀');

    const bytes = readFileSync(bundle);
    // One letter of a record changed: inside experiments.json, not in tar padding.
    bytes[bytes.indexOf('Magnitude 30')] ^= 0x20;
    const bad = path.join(scratch.dir, 'bad.whittle');
    writeFileSync(bad, bytes);
    const third = path.join(scratch.dir, 'third');
    const refused = await runCli(['history', 'import', bad, '--home', third]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/cannot be imported: .*Nothing was imported/);
    const list = onlyJson(await runCli(['history', 'list', '--json', '--home', third])) as { total: number };
    expect(list.total).toBe(0);
    expect(existsSync(path.join(third, 'experiments'))).toBe(false);
  });

  it('export needs --out', async () => {
    const r = await runCli(['history', 'export', '1', '--home', home]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/needs --out FILE/);
  });
});
