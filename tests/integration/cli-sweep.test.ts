/**
 * `whittle sweep` as a child process: a recipe file and two --grid arguments run as one group of four
 * RTN experiments on stories260K; a grid with invalid combinations is refused before anything runs.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SweepView } from '../../preload/contract.ts';
import { STORIES, tempDir } from '../helpers/fixtures.ts';
import { onlyJson, runCli } from './cli-process.ts';

let scratch: { dir: string; cleanup: () => void };
let home: string;
let recipeFile: string;

beforeAll(() => {
  scratch = tempDir('whittle-cli-sweep-');
  home = path.join(scratch.dir, 'home');
  recipeFile = path.join(scratch.dir, 'rtn.json');
  writeFileSync(recipeFile, JSON.stringify({
    model: { path: STORIES.model },
    steps: [{ type: 'quantize', method: 'rtn', bits: 4 }],
    evaluation: { footprint: true },
  }));
});
afterAll(() => scratch.cleanup());

describe('whittle sweep', () => {
  it('runs every combination of the grid as one group and prints the group as JSON', async () => {
    const r = await runCli(['sweep', recipeFile, '--grid', 'steps.0.bits=4,8', '--grid', 'steps.0.blockSize=32,64', '--json', '--home', home], { timeoutMs: 180_000 });
    expect(r.code, r.stderr).toBe(0);
    const view = onlyJson(r) as SweepView;
    expect(view.size).toBe(4);
    expect(view.remaining).toBe(0);
    expect(view.members).toHaveLength(4);
    expect(view.members.every((m) => m.status === 'done')).toBe(true);
    expect(view.members.map((m) => m.name)).toEqual([
      'RTN 4-bit g32 · stories260K-kv', 'RTN 4-bit g64 · stories260K-kv', 'RTN 8-bit g32 · stories260K-kv', 'RTN 8-bit g64 · stories260K-kv',
    ]);
    expect(r.stderr).toMatch(/sweep \d+: 4 experiments queued/);

    // The group as people read it; sizes in binary units.
    const text = await runCli(['sweep', '--resume', String(view.id), '--home', home], { timeoutMs: 60_000 });
    expect(text.code, text.stderr).toBe(0);
    expect(text.stderr).toContain('every combination is done, queued or running; nothing to start');
    expect(text.stdout).toMatch(/^Sweep \d+ · Sweep bits × blockSize · stories260K-kv · 4 combinations \(4 done\)/);
    expect(text.stdout).toMatch(/KiB/);
  }, 240_000);

  it('lists every invalid combination and starts nothing (exit 2)', async () => {
    const r = await runCli(['sweep', recipeFile, '--grid', 'steps.0.bits=3,4', '--grid', 'steps.0.blockSize=32,48', '--home', home]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("3 of the sweep's 4 combinations are not valid recipes; nothing was started");
    expect(r.stderr).toContain('bits=3, blockSize=48');
    const bad = await runCli(['sweep', recipeFile, '--grid', 'steps.0.bits', '--home', home]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--grid "steps.0.bits" is not key=v1,v2');
  });
});
