/**
 * copyCompanions checks a tokenizer.json before it travels with a model: the recipe's must load
 * (INVALID_INPUT naming the field otherwise, nothing copied); a broken one in the model's folder stays out
 * with a warning while the other companions come along.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { WhittleError } from '../../../main/engine/errors.ts';
import { copyCompanions } from '../../../main/engine/rewrite/output-folder.ts';
import { fixture, STORIES, tempDir } from '../../helpers/fixtures.ts';

const tmp = tempDir('whittle-companions-');
afterAll(() => tmp.cleanup());

function brokenTokenizer(dir: string): string {
  mkdirSync(dir, { recursive: true });
  const json = JSON.parse(readFileSync(STORIES.tokenizer, 'utf8')) as { model: { merges: unknown } };
  json.model.merges = 'none';
  const file = path.join(dir, 'tokenizer.json');
  writeFileSync(file, JSON.stringify(json));
  return file;
}

describe('copyCompanions', () => {
  it("refuses the recipe's malformed tokenizer before copying anything", async () => {
    const model = path.join(tmp.dir, 'm1', 'model.onnx');
    mkdirSync(path.dirname(model));
    writeFileSync(path.join(path.dirname(model), 'config.json'), '{}');
    const tokenizer = brokenTokenizer(path.join(tmp.dir, 'tok1'));
    const out = path.join(tmp.dir, 'out1');
    mkdirSync(out);
    const e = await copyCompanions(model, tokenizer, out, () => {}).then(() => null, (err: unknown) => err);
    expect(e).toBeInstanceOf(WhittleError);
    expect((e as WhittleError).code).toBe('INVALID_INPUT');
    expect((e as WhittleError).message).toContain('model.merges');
    expect(readdirSync(out)).toEqual([]);
  });

  it("leaves a broken tokenizer.json of the model's folder out, with a warning", async () => {
    const dir = path.join(tmp.dir, 'm2');
    brokenTokenizer(dir);
    copyFileSync(fixture('stories260K', 'tokenizer_config.json'), path.join(dir, 'tokenizer_config.json'));
    const out = path.join(tmp.dir, 'out2');
    mkdirSync(out);
    const warnings: string[] = [];
    const copied = await copyCompanions(path.join(dir, 'model.onnx'), undefined, out, (level, text) => { if (level === 'warn') warnings.push(text); });
    expect(copied).toEqual(['tokenizer_config.json']);
    expect(existsSync(path.join(out, 'tokenizer.json'))).toBe(false);
    expect(warnings.join('\n')).toMatch(/tokenizer\.json was not copied: .*model\.merges/);
  });

  it("copies a valid recipe tokenizer with its siblings", async () => {
    const out = path.join(tmp.dir, 'out3');
    mkdirSync(out);
    const copied = await copyCompanions(path.join(tmp.dir, 'm2', 'model.onnx'), STORIES.tokenizer, out, () => {});
    expect(copied).toContain('tokenizer.json');
    expect(readFileSync(path.join(out, 'tokenizer.json'), 'utf8')).toBe(readFileSync(STORIES.tokenizer, 'utf8'));
  });
});
