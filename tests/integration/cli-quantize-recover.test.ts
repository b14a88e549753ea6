/**
 * `whittle quantize --method gptq --bits 4 --recover-steps N` as a real child process: GPTQ, then the
 * distill step recovers the MatMulNBits result on its own grid (the original its teacher); the output
 * folder holds MatMulNBits whose whittle.json records the codes written on that grid, and --json reports
 * the recovery.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readModel } from '../../main/engine/onnx/reader.ts';
import { readManifest } from '../../main/engine/rewrite/manifest.ts';
import { cliScratch, type CliScratch } from '../helpers/cli-scratch.ts';
import { STORIES } from '../helpers/fixtures.ts';
import { onlyJson, runCli } from './cli-process.ts';

let scratch: CliScratch['scratch'];
let home: string;
let trainText: string;
let heldOut: string;

beforeAll(async () => {
  ({ scratch, home, trainText, heldOut } = await cliScratch('whittle-cli-quantize-recover-'));
});
afterAll(() => scratch.cleanup());

describe('whittle quantize --recover-steps after GPTQ', () => {
  it('GPTQ 4-bit recovered for 3 steps: MatMulNBits whose codes were written on their grid, --json reports the recovery', async () => {
    const out = path.join(scratch.dir, 'gptq-recovered');
    const r = await runCli(['quantize', STORIES.model, '--tokenizer', STORIES.tokenizer, '--home', home, '--method', 'gptq', '--bits', '4', '--calib-text', trainText,
      '--recover-steps', '3', '--eval-text', heldOut, '--window', '64', '--samples', '10', '--out', out, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const j = onlyJson(r) as Record<string, unknown> & { recovery: Record<string, unknown> | null; result: Record<string, number> };
    expect(j.outputModel).toBe(path.join(out, 'model.onnx'));
    expect(j.recovery).toMatchObject({ steps: 3 });
    expect(j.recovery!.finalLoss).toBeGreaterThan(0);
    expect(j.result.bits_per_weight).toBeLessThan(16);

    const graph = (await readModel(path.join(out, 'model.onnx'))).proto.graph!;
    const mm = graph.node.filter((n) => n.opType === 'MatMulNBits');
    expect(mm).toHaveLength(35);
    // The recovery wrote codes on the grid it received: every quantized weight says how many of its codes moved.
    const manifest = await readManifest(out);
    const onGrid = manifest.weights.filter((w) => w.status === 'quantized' && /^trained on its grid: \d+ of \d+ codes moved$/.test(w.reason ?? ''));
    expect(onGrid.map((w) => w.name).sort()).toEqual(mm.map((n) => n.input[1]).sort());
    expect(onGrid.every((w) => w.bits === 4 && w.blockSize === 32)).toBe(true);
  }, 120_000);
});
