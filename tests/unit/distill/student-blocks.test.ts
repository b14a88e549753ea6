/**
 * Choosing a student's blocks: DistilBERT's every other block, a written list, and the errors a bad
 * list gets (outside the teacher, repeated, empty, not numbers); the config files' layer counts.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkBlockList, everyOtherBlock, parseBlockList, setConfigLayers } from '../../../main/engine/distill/student.ts';
import { WhittleError } from '../../../main/engine/errors.ts';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'whittle-student-blocks-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function refused(f: () => unknown): WhittleError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(WhittleError);
    expect((e as WhittleError).code).toBe('INVALID_INPUT');
    return e as WhittleError;
  }
  throw new Error('expected an error');
}

describe('every other block', () => {
  it('keeps blocks 0, 2, 4, … (⌈n / 2⌉ of them)', () => {
    expect(everyOtherBlock(1)).toEqual([0]);
    expect(everyOtherBlock(5)).toEqual([0, 2, 4]);
    expect(everyOtherBlock(6)).toEqual([0, 2, 4]);
    expect(everyOtherBlock(12)).toHaveLength(6);
  });

  it('refuses a teacher without blocks', () => {
    expect(refused(() => everyOtherBlock(0)).message).toMatch(/at least one block/);
  });
});

describe('a written list of blocks', () => {
  it('reads numbers with spaces, in any order, and sorts them', () => {
    expect(parseBlockList('0,2,4', 5)).toEqual([0, 2, 4]);
    expect(parseBlockList(' 4, 0 ', 5)).toEqual([0, 4]);
    expect(parseBlockList('3', 5)).toEqual([3]);
  });

  it('refuses a block outside the teacher, saying how many it has', () => {
    const e = refused(() => parseBlockList('0,5', 5));
    expect(e.message).toMatch(/Block 5 is not one of the teacher's blocks: it has 5 blocks, numbered 0–4/);
    expect(e.details).toMatchObject({ blocks: 5, invalid: [5] });
    expect(refused(() => checkBlockList([-1], 3)).message).toMatch(/Block -1 .* 3 blocks/);
    expect(refused(() => checkBlockList([1.5], 3)).message).toMatch(/Block 1.5/);
  });

  it('refuses duplicates, an empty list and words', () => {
    expect(refused(() => parseBlockList('0,2,2', 5)).message).toMatch(/Block 2 is listed more than once/);
    expect(refused(() => parseBlockList('', 5)).message).toMatch(/empty.*5 blocks \(0–4\)/);
    expect(refused(() => checkBlockList([], 2)).message).toMatch(/empty/);
    expect(refused(() => parseBlockList('0,two,4', 5)).message).toMatch(/'two' is not a whole number/);
    expect(refused(() => parseBlockList('0,,4', 5)).message).toMatch(/'' is not a whole number/);
  });
});

describe('config files', () => {
  it('set the layer count where they give one (genai decoder, config.json top level and nested)', async () => {
    const dir = mkdtempSync(path.join(tmp, 'cfg-'));
    writeFileSync(path.join(dir, 'genai_config.json'), JSON.stringify({ model: { decoder: { num_hidden_layers: 5, head_size: 8 }, vocab_size: 10 } }));
    writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ n_layer: 5, n_head: 4, model: { n_layer: 5 } }));
    expect(await setConfigLayers(dir, 3)).toEqual(['genai_config.json', 'config.json']);
    const genai = JSON.parse(readFileSync(path.join(dir, 'genai_config.json'), 'utf8')) as { model: { decoder: Record<string, number>; vocab_size: number } };
    expect(genai.model.decoder).toEqual({ num_hidden_layers: 3, head_size: 8 });
    expect(genai.model.vocab_size).toBe(10);
    expect(JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8'))).toEqual({ n_layer: 3, n_head: 4, model: { n_layer: 3 } });
  });

  it('leave files without a layer count, and files that are not JSON, as they were', async () => {
    const dir = mkdtempSync(path.join(tmp, 'cfg-'));
    writeFileSync(path.join(dir, 'config.json'), '{"hidden_size": 64}');
    writeFileSync(path.join(dir, 'genai_config.json'), 'not json');
    expect(await setConfigLayers(dir, 2)).toEqual([]);
    expect(readFileSync(path.join(dir, 'config.json'), 'utf8')).toBe('{"hidden_size": 64}');
    expect(readFileSync(path.join(dir, 'genai_config.json'), 'utf8')).toBe('not json');
  });
});
