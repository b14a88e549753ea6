/**
 * Labelled data on the command line, as a real child process: `whittle train --labels` and `whittle eval
 * --labels` refuse before any work (exit 2, nothing in the history) a file without its label column (the
 * columns found are listed), a file with one class, a decoder given labels to train (or to score with a
 * class left without a verbalizer), and
 * distillation flags without labels; on a tiny BERT, `whittle eval --labels` reports accuracy and
 * macro-F1 on the held-out share and `whittle train --labels` compares original and result on it.
 */
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readLabelled } from '../../main/engine/data/labelled.ts';
import { loadTokenizer } from '../../main/engine/data/tokenizer.ts';
import { writeModel } from '../../main/engine/onnx/writer.ts';
import { buildBertOnnx, randomBertWeights, trimmedVocabulary, type BertShape } from '../helpers/bert-onnx.ts';
import { fixture, STORIES, tempDir } from '../helpers/fixtures.ts';
import { onlyJson, runCli } from './cli-process.ts';

const TOKENIZER = fixture('tokenizers', 'all-MiniLM-L6-v2', 'tokenizer.json');
const SST2 = fixture('text', 'sst2-glue-dev.tsv');

let scratch: ReturnType<typeof tempDir>;
let home: string;
let bert: string;

beforeAll(async () => {
  scratch = tempDir('whittle-cli-labels-');
  home = path.join(scratch.dir, 'home');
  mkdirSync(home, { recursive: true });
  const tok = await loadTokenizer(TOKENIZER);
  const all = await readLabelled(SST2);
  const vocab = trimmedVocabulary(all.examples.map((e) => e.text), (t) => tok.encode(t, { addBos: false }), tok.vocabSize, [101, 102]);
  const shape: BertShape = { vocab: vocab.rows, rowOf: vocab.rowOf, dim: 32, heads: 2, hidden: 64, layers: 1, maxPositions: 64, classes: 2 };
  bert = path.join(scratch.dir, 'tiny-bert.onnx');
  await writeModel(buildBertOnnx(shape, randomBertWeights(shape, 4)), bert);
});
afterAll(() => scratch.cleanup());

const cli = (...args: string[]) => runCli([...args, '--home', home]);

describe('labelled data on the command line', () => {
  it('refuses before any work: no label column, one class, a decoder, distillation flags without labels', async () => {
    const noLabel = path.join(scratch.dir, 'no-label.tsv');
    writeFileSync(noLabel, 'sentence\tsentiment\ngood film\t1\nbad film\t0\n');
    const oneClass = path.join(scratch.dir, 'one-class.csv');
    writeFileSync(oneClass, 'text,label\ngood,pos\nfine,pos\ngreat,pos\n');
    const cases: [string[], RegExp][] = [
      [['train', bert, '--tokenizer', TOKENIZER, '--labels', noLabel, '--steps', '2'], /no label column .*its columns are 'sentence', 'sentiment'/],
      [['train', bert, '--tokenizer', TOKENIZER, '--labels', noLabel, '--label-column', 'stars', '--steps', '2'], /no column 'stars'; its columns are 'sentence', 'sentiment'/],
      [['train', bert, '--tokenizer', TOKENIZER, '--labels', oneClass, '--steps', '2'], /has the label 'pos': a classifier needs at least two classes/],
      [['train', STORIES.model, '--tokenizer', STORIES.tokenizer, '--labels', SST2, '--steps', '2'], /needs an encoder .* is a decoder/],
      [['eval', STORIES.model, '--tokenizer', STORIES.tokenizer, '--labels', SST2, '--verbalizers', 'negative'], /Class "1" has no verbalizer/],
      [['eval', STORIES.model, '--tokenizer', STORIES.tokenizer, '--labels', SST2, '--template', 'Answer:'], /template.*\{text\}/],
      [['eval', STORIES.model, '--tokenizer', STORIES.tokenizer, '--verbalizers', 'a,b'], /--verbalizers only applies with --labels/],
      [['eval', bert, '--tokenizer', TOKENIZER, '--labels', noLabel], /no label column/],
      [['train', bert, '--tokenizer', TOKENIZER, '--text', STORIES.text, '--teacher', bert, '--steps', '2'], /--teacher distils a classifier: it only applies with --labels/],
      [['train', bert, '--tokenizer', TOKENIZER, '--labels', SST2, '--held-out', '1.5', '--steps', '2'], /--held-out needs a fraction below 1/],
    ];
    for (const [args, message] of cases) {
      const r = await cli(...args);
      expect(r.code, `${args.join(' ')}\n${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(/INTERNAL|at .*\.ts:\d+/);
    }
    expect(readdirSync(home).filter((n) => n === 'experiments')).toEqual([]);
  }, 60_000);

  it('eval --labels scores the held-out share; train --labels compares original and result on it', async () => {
    const e = await cli('eval', bert, '--tokenizer', TOKENIZER, '--labels', SST2, '--held-out', '0.25', '--seed', '7', '--json');
    expect(e.code, e.stderr).toBe(0);
    const ev = onlyJson(e) as { values: Record<string, Record<string, number>> };
    expect(ev.values.model.accuracy_examples).toBe(218);
    expect(ev.values.model.accuracy).toBeGreaterThanOrEqual(0);

    const t = await cli('train', bert, '--tokenizer', TOKENIZER, '--labels', SST2, '--held-out', '0.25', '--seed', '7', '--steps', '6', '--batch', '8', '--len', '32', '--lr', '3e-3', '--json');
    expect(t.code, t.stderr).toBe(0);
    const tr = onlyJson(t) as { original: Record<string, number>; result: Record<string, number>; training: { objective: string; steps: number; heldOutAccuracy: { accuracy: number; count: number } } };
    expect(tr.training.objective).toBe('classify');
    expect(tr.training.steps).toBe(6);
    expect(tr.training.heldOutAccuracy.count).toBe(218);
    expect(tr.original.accuracy).toBe(ev.values.model.accuracy);
    expect(tr.result.accuracy).toBe(tr.training.heldOutAccuracy.accuracy);
    expect(tr.result.macro_f1).toBeGreaterThanOrEqual(0);
  }, 60_000);
});
