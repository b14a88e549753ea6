/**
 * `whittle quantize --method qat` as a child process on stories260K: bad input is refused before any
 * work (exit 2, a sentence naming the flag: 2 or 3 bits, an unknown role, no training text, no steps,
 * another method's flag, a missing text file), and a short run (4-bit g32, ov-freeze, 4 steps of B = 2,
 * T = 32) exits 0 with one JSON document whose output is MatMulNBits and is compared with the original.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readManifest } from '../../main/engine/rewrite/manifest.ts';
import { readModel } from '../../main/engine/onnx/reader.ts';
import { STORIES, tempDir } from '../helpers/fixtures.ts';
import { onlyJson, runCli } from './cli-process.ts';

let scratch: ReturnType<typeof tempDir>;
let home: string;
let trainText: string;

beforeAll(() => {
  scratch = tempDir('whittle-cli-qat-');
  home = path.join(scratch.dir, 'home');
  // Training text from the last 1,000 stories, clear of the first 20 the evaluation reads.
  const paragraphs = readFileSync(STORIES.text, 'utf8').split(/\n\s*\n/).filter((p) => p.trim());
  trainText = path.join(scratch.dir, 'train.txt');
  writeFileSync(trainText, `${paragraphs.slice(-1000).join('\n\n')}\n`);
});
afterAll(() => scratch.cleanup());

describe('whittle quantize --method qat', () => {
  it('refuses bad input before any work, naming the flag', async () => {
    const qat = ['--method', 'qat', '--tokenizer', STORIES.tokenizer];
    const cases: [string[], RegExp][] = [
      [[...qat, '--bits', '2', '--text', trainText, '--steps', '4'], /KD-QAT exports 4 or 8 bits/],
      [[...qat, '--bits', '3', '--text', trainText, '--steps', '4'], /--bits must be one of 2, 4, 8; got "3"/],
      [[...qat, '--freeze-roles', 'o,values', '--text', trainText, '--steps', '4'], /--freeze-roles: "values" is not a role Whittle knows/],
      [[...qat, '--steps', '4'], /--method qat trains the model on a text: give --text FILE/],
      [[...qat, '--text', trainText], /--method qat needs the length of its training: give --steps N/],
      [[...qat, '--text', trainText, '--steps', '4', '--accuracy-level', '4'], /This flag does not apply to --method qat: --accuracy-level \(rtn, gptq\)/],
      [[...qat, '--text', path.join(scratch.dir, 'missing.txt'), '--steps', '4'], /The KD-QAT training text file .*missing\.txt does not exist/],
      [[...qat, '--text', trainText, '--steps', '4', '--lr', 'fast'], /--lr needs a number, got "fast"/],
      [['--method', 'rtn', '--text', trainText], /This flag does not apply to --method rtn: --text \(qat\)/],
    ];
    for (const [flags, message] of cases) {
      const r = await runCli(['quantize', STORIES.model, ...flags, '--home', home]);
      expect(r.code, `${flags.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr, flags.join(' ')).toMatch(message);
    }
  }, 60_000);

  it('a short 4-bit run with ov-freeze: MatMulNBits out, compared with the original', async () => {
    const out = path.join(scratch.dir, 'qat');
    const r = await runCli([
      'quantize', STORIES.model, '--method', 'qat', '--bits', '4', '--block-size', '32', '--freeze-roles', 'o,v', '--text', trainText,
      '--steps', '4', '--batch', '2', '--len', '32', '--lr', '3e-4', '--eval-text', STORIES.text, '--samples', '20', '--window', '64',
      '--out', out, '--json', '--home', home,
    ], { timeoutMs: 120_000 });
    expect(r.code, r.stderr).toBe(0);
    const doc = onlyJson(r) as { status: string; kind: string; outputModel: string; original: Record<string, number>; result: Record<string, number> };
    expect(doc).toMatchObject({ status: 'done', kind: 'quantize', outputModel: path.join(out, 'model.onnx') });
    const ops = (await readModel(doc.outputModel)).proto.graph!.node.map((n) => n.opType);
    expect(ops.filter((o) => o === 'MatMulNBits').length).toBeGreaterThan(0);
    expect(doc.result.perplexity).toBeGreaterThan(1);
    expect(doc.result.bytes_on_disk).toBeLessThan(doc.original.bytes_on_disk);
    // The recipe kept beside the model holds the step the flags describe.
    const recipe = (await readManifest(out)).recipe as { steps: unknown[] };
    expect(recipe.steps[0]).toMatchObject({ type: 'quantize', method: 'qat', bits: 4, blockSize: 32, freezeRoles: ['o', 'v'], steps: 4, batch: 2, length: 32, lr: 3e-4 });
  }, 120_000);
});
