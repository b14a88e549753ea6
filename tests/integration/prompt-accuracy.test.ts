/**
 * A decoder scored on labelled prompts (main/engine/evaluate/prompt-accuracy.ts) with stories260K: each
 * class's score equals a plain reference — the whole sequence run through onnxruntime without a cache
 * (empty past), log-softmax summed in float64 at the verbalizer's positions — within 1e-4; batches of 1
 * and 4 examples give the same predictions; bad settings are refused before any model runs; and a recipe
 * with an accuracy section evaluates a decoder through the runner and the CLI's checks.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Recipe } from '../../preload/recipe.ts';
import { formatVerbalizers, parseVerbalizers } from '../../preload/verbalizers.ts';
import { checkAccuracyLabels } from '../../main/cli/labels.ts';
import { readLabelled, type LabelledData } from '../../main/engine/data/labelled.ts';
import { loadTokenizer, type TextTokenizer } from '../../main/engine/data/tokenizer.ts';
import { WhittleError } from '../../main/engine/errors.ts';
import { openDecoder, type Decoder } from '../../main/engine/evaluate/decoder-session.ts';
import { evaluatePromptAccuracy, fillTemplate, joinContinuation, promptPlan, promptRows, scorePrompts, type PromptPlan } from '../../main/engine/evaluate/prompt-accuracy.ts';
import { quietContext } from '../../main/engine/job-context.ts';
import { runRecipe } from '../../main/engine/pipeline/runner.ts';
import { STORIES, tempDir } from '../helpers/fixtures.ts';

const scratch = tempDir('whittle-prompt-accuracy-');
afterAll(() => scratch.cleanup());

/** Short stories-like sentences, labelled by the feeling they tell (the tiny model knows these words). */
const ROWS: [string, string][] = [
  ['Lily got a new red ball and she smiled all day. She was', 'happy'],
  ['Tom lost his toy in the park and he cried. He was', 'sad'],
  ['The sun was warm and the birds sang. Sue played with her friends. She was', 'happy'],
  ['The dog broke the vase and mom was angry. The dog was', 'sad'],
  ['Ben ate a big cake at his party. He laughed and was', 'happy'],
  ['It was dark and cold and Mia was alone. She was', 'sad'],
  ['Sam found a shiny coin on the ground and jumped up and down. He was', 'happy'],
  ['The little bird could not fly and it was', 'sad'],
  ['Anna hugged her teddy bear and felt very', 'happy'],
  ['Max fell down and hurt his knee. He felt', 'sad'],
];

let tokenizer: TextTokenizer;
let decoder: Decoder;
let data: LabelledData;
let file: string;

beforeAll(async () => {
  file = path.join(scratch.dir, 'feelings.jsonl');
  writeFileSync(file, ROWS.map(([text, label]) => JSON.stringify({ text, label })).join('\n'));
  data = await readLabelled(file);
  tokenizer = await loadTokenizer(STORIES.tokenizer);
  decoder = await openDecoder(STORIES.model);
});
afterAll(() => decoder.release());

/**
 * The reference: encode(prompt ⧺ " " ⧺ verbalizer) run whole through a plain onnxruntime session with an
 * empty cache; Σ over the verbalizer's tokens of log softmax(logits[t − 1])[ids[t]], in float64.
 */
async function referenceScore(session: ort.InferenceSession, prompt: string, verbalizer: string): Promise<{ logProb: number; tokens: number }> {
  const ids = tokenizer.encode(`${prompt} ${verbalizer}`);
  const promptIds = tokenizer.encode(prompt);
  expect(ids.slice(0, promptIds.length)).toEqual(promptIds); // this data's prompts tokenize alike on their own
  const n = ids.length;
  const feeds: Record<string, ort.Tensor> = { input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, n]) };
  for (const name of session.inputNames.filter((x) => x.startsWith('past_key_values'))) feeds[name] = new ort.Tensor('float32', new Float32Array(0), [1, 4, 0, 8]);
  const out = await session.run(feeds);
  const logits = out.logits.data as Float32Array;
  const vocab = logits.length / n;
  let logProb = 0;
  for (let t = promptIds.length; t < n; t++) {
    const row = logits.subarray((t - 1) * vocab, t * vocab);
    let max = -Infinity;
    for (const x of row) max = Math.max(max, x);
    let sum = 0;
    for (const x of row) sum += Math.exp(x - max);
    logProb += row[ids[t]] - max - Math.log(sum);
  }
  return { logProb, tokens: n - promptIds.length };
}

async function refusal(f: () => unknown): Promise<WhittleError> {
  try { await f(); } catch (e) { expect(e).toBeInstanceOf(WhittleError); return e as WhittleError; }
  throw new Error('expected a refusal');
}

describe('a decoder on labelled prompts', () => {
  it('scores each class as the log-probability of its verbalizer after the prompt, as a plain onnxruntime run does (≤ 1e-4)', async () => {
    const plan = promptPlan({ template: '{text}' }, data.classes, tokenizer);
    expect(plan).toEqual({ template: '{text}', verbalizers: ['happy', 'sad'], lengthNormalize: false });
    const scores = await scorePrompts(decoder, tokenizer, data.examples, plan, { batch: 4 });
    const session = await ort.InferenceSession.create(STORIES.model);
    let worst = 0;
    try {
      for (const [i, e] of data.examples.entries()) {
        for (const [c, v] of plan.verbalizers.entries()) {
          const ref = await referenceScore(session, e.text, v);
          expect(scores.tokens[i][c]).toBe(ref.tokens);
          worst = Math.max(worst, Math.abs(scores.logProb[i][c] - ref.logProb));
          expect(scores.logProb[i][c]).toBeLessThan(0);
        }
      }
    } finally {
      await session.release();
    }
    console.info(`prompt scores vs plain onnxruntime: max |difference| ${worst.toExponential(2)} nats`);
    expect(worst).toBeLessThanOrEqual(1e-4);
  });

  it('gives the same scores and predictions in batches of 1 and of 4 examples (padding changes nothing)', async () => {
    const plan = promptPlan({ template: 'Story: {text}\nFeeling:', verbalizers: { happy: 'very happy', sad: 'sad' } }, data.classes, tokenizer);
    const one = await evaluatePromptAccuracy(decoder, tokenizer, data, plan, { batch: 1 });
    const four = await evaluatePromptAccuracy(decoder, tokenizer, data, plan, { batch: 4 });
    expect(four.predictions).toEqual(one.predictions);
    for (const [i, row] of one.scores.entries()) for (const [c, x] of row.entries()) expect(Math.abs(four.scores[i][c] - x)).toBeLessThan(1e-5);
    // The metrics are the encoder's: accuracy, macro-F1, per class, confusion[true][predicted].
    expect(one.count).toBe(ROWS.length);
    expect(one.confusion.flat().reduce((a, b) => a + b, 0)).toBe(ROWS.length);
    const right = one.predictions.filter((p, i) => p === data.examples[i].label).length;
    expect(one.accuracy).toBeCloseTo(right / ROWS.length, 12);
    expect(one.perClass.map((m) => m.support)).toEqual([5, 5]);
    expect(one.predictions.every((p, i) => p === (one.scores[i][0] >= one.scores[i][1] ? 0 : 1))).toBe(true);
    console.info(`stories260K on ${ROWS.length} feelings: accuracy ${one.accuracy}, macro-F1 ${one.macroF1.toFixed(3)}`);
  });

  it('length-normalised scores are the totals divided by the verbalizer tokens', async () => {
    const settings = { verbalizers: ['very happy indeed', 'sad'] };
    const total = await evaluatePromptAccuracy(decoder, tokenizer, data, promptPlan(settings, data.classes, tokenizer), { batch: 8 });
    const plan = promptPlan({ ...settings, lengthNormalize: true }, data.classes, tokenizer);
    const perToken = await evaluatePromptAccuracy(decoder, tokenizer, data, plan, { batch: 8 });
    const { tokens } = await scorePrompts(decoder, tokenizer, data.examples, plan);
    expect(tokens[0][0]).toBeGreaterThan(tokens[0][1]);
    for (const [i, row] of perToken.scores.entries()) for (const [c, x] of row.entries()) expect(x).toBeCloseTo(total.scores[i][c] / tokens[i][c], 6);
  });

  it('builds rows from the whole text and cuts the prompt from its start, never the verbalizer, to fit the length', () => {
    const plan: PromptPlan = { template: '{text}\nAnswer:', verbalizers: ['happy', 'sad'], lengthNormalize: false };
    const e = data.examples[0];
    const full = promptRows(e, plan, tokenizer, 4096);
    const prompt = fillTemplate(plan.template, e.text);
    expect(full.rows[1]).toEqual(tokenizer.encode(joinContinuation(prompt, 'sad')));
    expect(joinContinuation('Answer:', 'sad')).toBe('Answer: sad');
    expect(joinContinuation('Answer: ', 'sad')).toBe('Answer: sad');
    const cut = promptRows(e, plan, tokenizer, 12);
    expect(Math.max(...cut.rows.map((r) => r.length))).toBe(12);
    cut.rows.forEach((row, c) => {
      expect(row[0]).toBe(tokenizer.bosId);
      expect(row.slice(cut.starts[c])).toEqual(full.rows[c].slice(full.starts[c]));
      expect(row.slice(1, cut.starts[c])).toEqual(full.rows[c].slice(full.rows[c].length - row.length + 1, full.starts[c]));
    });
    expect(() => promptRows(e, { ...plan, template: 'A long preamble that will not fit at all {text}' }, tokenizer, 3)).toThrow(/does not fit 3 tokens/);
  });

  it('refuses bad settings up front with typed errors', async () => {
    const noText = await refusal(() => promptPlan({ template: 'Answer:' }, data.classes, tokenizer));
    expect(noText.code).toBe('INVALID_INPUT');
    expect(noText.message).toMatch(/has no \{text\}/);
    const empty = await refusal(() => promptPlan({ verbalizers: ['happy', '  '] }, data.classes, tokenizer));
    expect(empty.message).toMatch(/class "sad" .* tokenizes to nothing/);
    const short = await refusal(() => promptPlan({ verbalizers: ['happy'] }, data.classes, tokenizer));
    expect(short.message).toMatch(/Class "sad" has no verbalizer/);
    const unmapped = await refusal(() => promptPlan({ verbalizers: { happy: 'glad' } }, data.classes, tokenizer));
    expect(unmapped.message).toMatch(/Class "sad" has no verbalizer/);
    const stray = await refusal(() => promptPlan({ verbalizers: { happy: 'glad', sad: 'sad', angry: 'mad' } }, data.classes, tokenizer));
    expect(stray.message).toMatch(/"angry", which is not a class/);
    const same = await refusal(() => promptPlan({ verbalizers: ['sad', 'sad'] }, data.classes, tokenizer));
    expect(same.message).toMatch(/same verbalizer/);
    // The recipe schema refuses a template without {text} too, and the CLI's checks name a missing verbalizer.
    const bad = Recipe.safeParse({ model: { path: STORIES.model }, evaluation: { accuracy: { file, template: 'Answer:' } } });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues[0].path).toEqual(['evaluation', 'accuracy', 'template']);
    const cli = await refusal(() => checkAccuracyLabels(STORIES.model, Recipe.parse({ model: { path: STORIES.model }, evaluation: { accuracy: { file, heldOut: 4, verbalizers: ['x'] } } }).evaluation.accuracy!, STORIES.tokenizer));
    expect(cli.message).toMatch(/has no verbalizer/);
    await checkAccuracyLabels(STORIES.model, Recipe.parse({ model: { path: STORIES.model }, evaluation: { accuracy: { file, heldOut: 4 } } }).evaluation.accuracy!, STORIES.tokenizer);
    expect(parseVerbalizers('negative,positive')).toEqual(['negative', 'positive']);
    expect(parseVerbalizers('0=bad, 1=good\\, really')).toEqual({ 0: 'bad', 1: 'good, really' });
    expect(parseVerbalizers(formatVerbalizers({ 0: 'bad', 1: 'good, really' }))).toEqual({ 0: 'bad', 1: 'good, really' });
    expect(() => parseVerbalizers('0=bad, good')).toThrow(/mixes label=words pairs and plain words/);
  });

  it('a recipe with an accuracy section scores the decoder and records how it prompted', async () => {
    const ctx = quietContext(scratch.dir);
    const recipe = Recipe.parse({
      model: { path: STORIES.model }, tokenizer: { path: STORIES.tokenizer },
      evaluation: { accuracy: { file, heldOut: 6, seed: 1, template: '{text}', lengthNormalize: true }, footprint: false },
    });
    const result = await runRecipe(recipe, ctx);
    const metric = (name: string): number | undefined => result.metrics.find((m) => m.name === name && m.subject === 'model')?.value;
    expect(metric('accuracy_examples')).toBe(6);
    expect(metric('accuracy')).toBeGreaterThanOrEqual(0);
    expect(metric('macro_f1')).toBeGreaterThanOrEqual(0);
    const details = (result.details.evaluation as { model: { accuracy: Record<string, unknown> } }).model.accuracy;
    expect(details).toMatchObject({ count: 6, classes: ['happy', 'sad'], scoredBy: 'prompts', prompt: { template: '{text}', verbalizers: ['happy', 'sad'], lengthNormalize: true } });
    const refused = await refusal(() => runRecipe(Recipe.parse({ ...recipe, evaluation: { accuracy: { file, verbalizers: { happy: 'glad' } } } }), ctx));
    expect(refused.code).toBe('INVALID_INPUT');
    expect(refused.message).toMatch(/Class "sad" has no verbalizer/);
  });
});
