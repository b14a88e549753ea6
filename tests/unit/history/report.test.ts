/**
 * Reports: self-contained HTML (no script, no reference outside the file, charts as inline SVG),
 * Markdown and CSV, for one experiment and for a comparison; written through exportReport.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openHistory, type History } from '../../../main/history/index.ts';
import { exportReport, renderReport } from '../../../main/history/report/index.ts';
import { tempDir } from '../../helpers/fixtures.ts';

let scratch: ReturnType<typeof tempDir>;
let h: History;
let ids: number[];

const recipe = (bits: number) => ({ model: { path: '/m/stories.onnx' }, evaluation: { perplexity: { text: '/t/eval.txt', window: 64 } }, steps: [{ type: 'quantize', method: 'rtn', bits, blockSize: 32 }] });

beforeEach(() => {
  scratch = tempDir('whittle-report-');
  h = openHistory({ home: scratch.dir });
  ids = [4, 8].map((bits, i) => {
    const id = h.createExperiment({
      name: `RTN ${bits}-bit, "quoted", with <angle> & a=1`, kind: 'quantize', recipe: recipe(bits), modelPath: '/m/stories.onnx', modelSha256: 'a'.repeat(64), status: 'running',
      notes: 'See https://example.com/paper for the method.\n=SUM(A1)', tags: ['rtn', `b${bits}`],
    });
    h.addMetrics(id, [
      { name: 'perplexity', value: 4.25, unit: '', subject: 'original' },
      { name: 'perplexity', value: bits === 4 ? 4.6 : 4.3, unit: '', subject: 'result' },
      { name: 'bytes_on_disk', value: 1_000_000, unit: 'bytes', subject: 'original' },
      { name: 'bytes_on_disk', value: bits === 4 ? 180_000 + i : 300_000, unit: 'bytes', subject: 'result' },
      { name: 'decode_tokens_per_s', value: bits === 4 ? 900 : 800, unit: 'tokens/s', subject: 'result' },
    ]);
    h.appendLog(id, [{ level: 'info', text: 'quantizing <everything>' }]);
    h.finish(id, 'done', null, 1000);
    return id;
  });
});

afterEach(() => {
  h.close();
  scratch.cleanup();
});

/** Every URL-bearing attribute and every reference a browser would fetch. */
function externalReferences(html: string): string[] {
  const out: string[] = [];
  for (const m of html.matchAll(/\b(?:src|href|xlink:href|action|poster|data)\s*=\s*["']?([^"'\s>]+)/gi)) out.push(m[1]);
  for (const m of html.matchAll(/url\(\s*["']?([^"')]+)/gi)) out.push(m[1]);
  for (const m of html.matchAll(/@import\s+["']?([^"';]+)/gi)) out.push(m[1]);
  return out;
}

describe('HTML report', () => {
  it('one experiment: self-contained, charts inline, text escaped', () => {
    const html = renderReport([h.get(ids[0])], 'html', { lineage: h.lineage(ids[0]), version: '1.2.3', generated: '2026-01-02T03:04:05.000Z' });
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/<link/i);
    expect(html).not.toMatch(/<iframe|<img|<object|<embed/i);
    expect(externalReferences(html)).toEqual([]);
    // Charts are inline SVG: perplexity and size at least, each with one bar per column (original, result).
    const charts = [...html.matchAll(/<svg class="chart"[\s\S]*?<\/svg>/g)].map((m) => m[0]);
    expect(charts.length).toBeGreaterThanOrEqual(2);
    const ppl = charts.find((c) => c.includes('aria-label="perplexity"'))!;
    expect(ppl.match(/<rect class="bar/g)).toHaveLength(2);
    expect(ppl).toContain('>4.600<');
    // Escaped user text: no stray tags from names, notes or logs.
    expect(html).toContain('RTN 4-bit, &quot;quoted&quot;, with &lt;angle&gt; &amp; a=1');
    expect(html).toContain('quantizing &lt;everything&gt;');
    expect(html).not.toContain('<angle>');
    // The metrics: original and result, the change against the original, coloured by direction.
    expect(html).toMatch(/<td class="num worse">4\.6 <small>\+8\.2 %<\/small><\/td>/);
    expect(html).toMatch(/<td class="num better">176 KiB <small>−82 %<\/small><\/td>/);
    expect(html).toContain('Whittle 1.2.3');
    expect(html).toContain('class="current"');
  });

  it('a comparison: one column per run against the baseline, a chart per headline metric with a bar per run', () => {
    const html = renderReport(ids.map((id) => h.get(id)), 'html', { baseline: ids[1] });
    expect(externalReferences(html)).toEqual([]);
    expect(html).not.toMatch(/<script/i);
    const header = html.match(/<tr><th>metric<\/th>(.*?)<\/tr>/)![1];
    // The baseline first.
    expect(header.indexOf(`#${ids[1]}`)).toBeLessThan(header.indexOf(`#${ids[0]}`));
    const ppl = html.match(/<svg class="chart"[^>]*aria-label="perplexity"[\s\S]*?<\/svg>/)![0];
    expect(ppl.match(/<rect class="bar base"/g)).toHaveLength(1);
    expect(ppl.match(/<rect class="bar worse"/g)).toHaveLength(1);
    expect(html).toContain('Recipe differences');
    expect(html).toContain('steps[0].bits');
  });
});

describe('Markdown and CSV', () => {
  it('Markdown: tables with pipes escaped, the recipe fenced', () => {
    const md = renderReport(ids.map((id) => h.get(id)), 'md');
    expect(md).toMatch(/^# Comparison of experiments/);
    expect(md).toMatch(/\| perplexity \(lower is better\) \| 4\.6 \| 4\.3 \(−6\.5 % ✓\) \|/);
    expect(md).toContain('```json');
    const single = renderReport([h.get(ids[0])], 'md', { lineage: h.lineage(ids[0]) });
    expect(single).toContain('## Lineage');
    expect(single).toMatch(/\*\*#\d+ quantize · RTN 4-bit/);
  });

  it('CSV: one row per experiment and metric, quoted per RFC 4180, formulas defused', () => {
    const csv = renderReport(ids.map((id) => h.get(id)), 'csv');
    const lines = csv.trimEnd().split('\r\n');
    expect(lines[0]).toBe('experiment,name,kind,status,created,model,tags,metric,subject,value,unit');
    expect(lines).toHaveLength(1 + 2 * 5);
    expect(lines[1]).toContain(`${ids[0]},"RTN 4-bit, ""quoted"", with <angle> & a=1",quantize,done,`);
    expect(lines.some((l) => l.endsWith(',perplexity,result,4.6,'))).toBe(true);
    expect(lines.some((l) => l.endsWith(',bytes_on_disk,result,300000,bytes'))).toBe(true);
  });

  it('exportReport writes the file, or returns the text for a download', async () => {
    const file = path.join(scratch.dir, 'r.html');
    const written = await exportReport(h, [ids[0]], 'html', file);
    expect(written).toMatchObject({ path: file, fileName: `whittle-${ids[0]}.html`, content: null });
    expect(readFileSync(file, 'utf8').length).toBeGreaterThan(1000);
    const inline = await exportReport(h, ids, 'csv', null);
    expect(inline.path).toBeNull();
    expect(inline.content).toMatch(/^experiment,/);
    await expect(exportReport(h, [ids[0]], 'md', path.join(scratch.dir, 'missing', 'r.md'))).rejects.toThrow(/could not write the report/);
    await expect(exportReport(h, [9999], 'md', null)).rejects.toThrow(/no experiment 9999/);
  });
});
