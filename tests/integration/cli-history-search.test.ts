/**
 * `whittle history list --search --tag --kind --starred --offset` as a child process, over a real history
 * written beforehand through the repository.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExperimentSummary } from '../../preload/contract.ts';
import { openHistory } from '../../main/history/index.ts';
import { tempDir } from '../helpers/fixtures.ts';
import { onlyJson, runCli } from './cli-process.ts';

let scratch: { dir: string; cleanup: () => void };
let home: string;
const made: Record<string, number> = {};

beforeAll(() => {
  scratch = tempDir('whittle-cli-search-');
  home = path.join(scratch.dir, 'home');
  const h = openHistory({ home });
  try {
    const add = (key: string, name: string, kind: string, notes: string, tags: string[]) => {
      made[key] = h.createExperiment({ name, kind, recipe: {}, modelPath: '/models/stories260K.onnx', notes, tags });
      h.finish(made[key], 'done');
    };
    add('gptq', 'GPTQ 4-bit g32 · stories260K', 'quantize', 'the embedding stayed in float', ['shipping']);
    add('rtn', 'RTN 8-bit · stories260K', 'quantize', 'baseline for the sweep', ['shipping', 'baseline']);
    add('prune', 'Wanda 50% · stories260K', 'prune', 'quality dropped', []);
    h.update(made.rtn, { starred: true });
    h.update(made.prune, { pinned: true });
  } finally {
    h.close();
  }
});
afterAll(() => scratch.cleanup());

async function list(...args: string[]): Promise<{ items: ExperimentSummary[]; total: number }> {
  const r = await runCli(['history', 'list', ...args, '--json', '--home', home]);
  expect(r.code, r.stderr).toBe(0);
  return onlyJson(r) as { items: ExperimentSummary[]; total: number };
}

describe('whittle history list', () => {
  it('searches notes and names by word prefix, filters by tag, kind and star', async () => {
    expect((await list('--search', 'embedding')).items.map((i) => i.id)).toEqual([made.gptq]);
    expect((await list('--search', 'gptq 4b')).items.map((i) => i.id)).toEqual([made.gptq]);
    expect((await list('--tag', 'shipping')).items.map((i) => i.id).sort()).toEqual([made.gptq, made.rtn].sort());
    expect((await list('--tag', 'shipping', '--tag', 'baseline')).items.map((i) => i.id)).toEqual([made.rtn]);
    expect((await list('--kind', 'prune')).items.map((i) => i.id)).toEqual([made.prune]);
    const starred = await list('--starred');
    expect(starred.items.map((i) => i.id)).toEqual([made.rtn]);
    expect(starred.items[0]).toMatchObject({ starred: true, pinned: false, tags: ['baseline', 'shipping'] });
  });

  it('lists pinned experiments first and pages with --limit and --offset', async () => {
    const first = await list('--limit', '2');
    expect(first.total).toBe(3);
    expect(first.items.map((i) => i.id)).toEqual([made.prune, made.rtn]);
    const second = await list('--limit', '2', '--offset', '2');
    expect(second).toMatchObject({ total: 3 });
    expect(second.items.map((i) => i.id)).toEqual([made.gptq]);
  });

  it('prints marks and tags in the table, and a usage error for an unknown kind', async () => {
    const r = await runCli(['history', 'list', '--search', 'stories', '--home', home]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/↑ Wanda 50%/);
    expect(r.stdout).toMatch(/★ RTN 8-bit/);
    expect(r.stdout).toMatch(/baseline, shipping/);
    const none = await runCli(['history', 'list', '--search', 'nothing-like-this', '--home', home]);
    expect(none.stdout).toMatch(/No experiment matches/);
    const bad = await runCli(['history', 'list', '--kind', 'quantise', '--home', home]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/quantize/);
  });
});
