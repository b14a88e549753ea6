/**
 * Seeded mutations of the sample tokenizer.json (a value replaced by one of another kind, a key removed,
 * a list emptied or a component type changed, anywhere in the parts Whittle runs): every tokenizer
 * loadTokenizer refuses is refused as INVALID_INPUT, and every one it accepts encodes and decodes text.
 */
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadTokenizer } from '../../../main/engine/data/tokenizer.ts';
import { WhittleError } from '../../../main/engine/errors.ts';
import { fixture, STORIES, tempDir } from '../../helpers/fixtures.ts';

const tmp = tempDir('whittle-tokenizer-fuzz-');
afterAll(() => tmp.cleanup());

const MUTATIONS = 300;
const SECTIONS = ['model', 'normalizer', 'pre_tokenizer', 'post_processor', 'decoder', 'added_tokens'];
const TEXT = 'One day, Lily found 3 red balls in the park. "Look!" she said.\nThe end.';

/** mulberry32: a small seeded generator, so a failure names a mutation that can be replayed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Node = Record<string, unknown> | unknown[];
const isContainer = (v: unknown): v is Node => typeof v === 'object' && v !== null;

/** A replacement of another kind than usual: the fuzzer's vocabulary of wrong values. */
function strangeValue(rand: () => number, old: unknown): unknown {
  const choices: unknown[] = [null, 0, -1, 1.5, 1e9, '', 'x', 'Sequence', true, [], [[]], {}, { type: 'Nope' }, { String: 7 }, [1, 2], ['a'], { SpecialToken: {} }];
  if (isContainer(old) && !Array.isArray(old) && typeof old.type === 'string') {
    choices.push({ ...old, type: ['Sequence', 'Replace', 'Strip', 'Split', 'TemplateProcessing', 'WordPiece', 'Unigram', 'BPE', 'FixedLength', 'Metaspace'][Math.floor(rand() * 10)] });
  }
  return choices[Math.floor(rand() * choices.length)];
}

/** Applies one mutation to `json` in place; returns where. */
function mutate(json: Record<string, unknown>, rand: () => number): string {
  const section = SECTIONS[Math.floor(rand() * SECTIONS.length)];
  let parent: Node = json;
  let key: string | number = section;
  let where = section;
  // Walk down, stopping at each level with probability 0.35.
  for (;;) {
    const here: unknown = (parent as Record<string | number, unknown>)[key];
    if (!isContainer(here) || rand() < 0.35) break;
    const keys: (string | number)[] = Array.isArray(here) ? here.map((_, i) => i) : Object.keys(here);
    if (keys.length === 0) break;
    // Long lists (vocab, merges): mostly their first items, where the library looks.
    const pick = keys.length > 8 && rand() < 0.7 ? keys[Math.floor(rand() * 3)] : keys[Math.floor(rand() * keys.length)];
    parent = here;
    key = pick;
    where += typeof pick === 'number' ? `[${pick}]` : `.${pick}`;
  }
  const r = rand();
  const target = parent as Record<string | number, unknown>;
  if (r < 0.15 && !Array.isArray(parent)) { delete target[key]; return `${where} removed`; }
  if (r < 0.25 && Array.isArray(target[key])) { target[key] = []; return `${where} emptied`; }
  target[key] = strangeValue(rand, target[key]);
  return `${where} = ${JSON.stringify(target[key])}`;
}

describe('loadTokenizer on mutated tokenizers', () => {
  it(`refuses as INVALID_INPUT or runs: ${MUTATIONS} seeded mutations`, async () => {
    const original = readFileSync(STORIES.tokenizer, 'utf8');
    copyFileSync(fixture('stories260K', 'tokenizer_config.json'), path.join(tmp.dir, 'tokenizer_config.json'));
    const file = path.join(tmp.dir, 'tokenizer.json');
    const fields = new Set<string>();
    let accepted = 0;
    for (let seed = 1; seed <= MUTATIONS; seed++) {
      const rand = random(seed);
      const json = JSON.parse(original) as Record<string, unknown>;
      const what = [mutate(json, rand), ...(rand() < 0.3 ? [mutate(json, rand)] : [])].join('; ');
      writeFileSync(file, JSON.stringify(json));
      let tokenizer;
      try {
        tokenizer = await loadTokenizer(file);
      } catch (e) {
        expect(e, `seed ${seed}: ${what}`).toBeInstanceOf(WhittleError);
        expect((e as WhittleError).code, `seed ${seed}: ${what}: ${(e as Error).message}`).toBe('INVALID_INPUT');
        const field = (e as WhittleError).details?.field;
        if (typeof field === 'string') fields.add(field.split(/[.[]/)[0]);
        continue;
      }
      accepted++;
      let ids: number[] = [];
      let text = '';
      expect(() => { ids = tokenizer.encode(TEXT); text = tokenizer.decode(ids); }, `seed ${seed}: ${what}`).not.toThrow();
      for (const id of ids) expect(Number.isSafeInteger(id) && id >= 0, `seed ${seed}: ${what}: id ${id}`).toBe(true);
      expect(typeof text).toBe('string');
    }
    // The mutations reached both outcomes and the refusals named fields in every section.
    expect(accepted).toBeGreaterThan(MUTATIONS / 10);
    expect(accepted).toBeLessThan(MUTATIONS);
    for (const section of ['model', 'normalizer', 'post_processor', 'decoder', 'added_tokens']) expect(fields).toContain(section);
  });

  it('names the malformed field: merges that are not a list, a template that is not a list', async () => {
    // The sample's shape, as far as these cases touch it.
    type Sample = { model: { merges: unknown }; post_processor: { single: unknown }; decoder: { decoders: { pattern: unknown }[] }; added_tokens: { id: unknown }[] };
    const original = JSON.parse(readFileSync(STORIES.tokenizer, 'utf8')) as Sample;
    const cases: [string, (j: Sample) => void, string][] = [
      ['merges', (j) => { j.model.merges = { a: 1 }; }, 'model.merges'],
      ['template', (j) => { j.post_processor.single = 7; }, 'post_processor.single'],
      ['decoder', (j) => { j.decoder.decoders[0].pattern = 'x'; }, 'decoder.decoders[0].pattern'],
      ['added', (j) => { j.added_tokens[1].id = 'one'; }, 'added_tokens[1].id'],
    ];
    for (const [name, change, field] of cases) {
      const json = structuredClone(original);
      change(json);
      const file = path.join(tmp.dir, `${name}.json`);
      writeFileSync(file, JSON.stringify(json));
      const e = await loadTokenizer(file).then(() => null, (err: unknown) => err as WhittleError);
      expect(e, name).toBeInstanceOf(WhittleError);
      expect(e!.code).toBe('INVALID_INPUT');
      expect(e!.message).toContain(field);
      expect(e!.details?.field).toBe(field);
    }
  });
});
