// `whittle distill` flags → a recipe whose model is the teacher and whose one step distils the student;
import os from 'node:os';
// flags that do not fit are usage errors naming them; the student and the texts are checked before work.
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UsageError, type OptionValues } from '../../../main/cli/args.ts';
import { distillCommand } from '../../../main/cli/commands.ts';
import { checkDistillRecipe, distillRecipe, parseStudentBlocks } from '../../../main/cli/distill.ts';
import { recipeFiles, resolveRecipePaths } from '../../../main/cli/recipe-file.ts';
import { readTextFile, splitDocuments } from '../../../main/engine/data/text-file.ts';
import { WhittleError } from '../../../main/engine/errors.ts';
import { DISTILL } from '../../../preload/methods.ts';
import { Recipe } from '../../../preload/recipe.ts';
import { fixture, STORIES, tempDir } from '../../helpers/fixtures.ts';

const GPT2 = fixture('onnx', 'ortgenai', 'tiny-random-gpt2-fp32', 'past.onnx');
const base = { teacher: STORIES.model, text: STORIES.text, tokenizer: STORIES.tokenizer };
const scratch = tempDir('whittle-distill-cli-');
afterAll(() => scratch.cleanup());

function usage(o: OptionValues): string {
  try {
    distillRecipe(o);
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return (e as Error).message;
  }
  throw new Error('expected a usage error');
}

async function refused(p: Promise<unknown>, code = 'INVALID_INPUT'): Promise<WhittleError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(WhittleError);
    expect((e as WhittleError).code).toBe(code);
    return e as WhittleError;
  }
  throw new Error('expected a refusal');
}

/** An output folder the recipe only names (nothing is written there). */
const OUT = path.join(os.tmpdir(), 'out-distill');

describe('whittle distill: the recipe', () => {
  it('builds the distill step from every flag, with the teacher as the recipe model and the comparison on --eval-text', () => {
    const r = distillRecipe({
      ...base, 'student-blocks': '4, 0,2', steps: 40, batch: 2, len: 32, lr: '1e-3', warmup: 4, 'weight-decay': '0', 'clip-norm': '0.5',
      temperature: '4', alpha: '0.9', 'reverse-kl': true, 'hidden-loss': '0.1', 'topk-cache': 16, 'lora-rank': 8,
      'eval-text': STORIES.text, 'eval-every': 10, seed: 3, 'checkpoint-every': 5, window: 64, samples: 20, out: OUT,
    });
    expect(r.model).toEqual({ path: STORIES.model });
    expect(r.tokenizer).toEqual({ path: STORIES.tokenizer });
    expect(r.steps?.[0]).toEqual({
      type: 'distill', student: { blocks: [0, 2, 4] }, data: { text: STORIES.text, evalText: STORIES.text, batch: 2, length: 32 },
      loss: { temperature: 4, alpha: 0.9, reverse: true, hidden: 0.1 },
      schedule: { steps: 40, lr: 1e-3, warmup: 4, weightDecay: 0, clipNorm: 0.5, evalEvery: 10, seed: 3, checkpointEvery: 5 },
      teacherSignal: { kind: 'topk', k: 16 }, lora: { rank: 8 },
    });
    expect(r.evaluation).toMatchObject({ perplexity: { text: STORIES.text, window: 64, maxSamples: 20 } });
    expect(r.output).toEqual({ dir: OUT });
    // The schema fills the defaults: T = 2, α = 0.5, forward KL, the teacher's logits every step.
    const parsed = Recipe.parse(distillRecipe({ ...base, student: STORIES.model, epochs: '0.5' }));
    expect(parsed.steps[0]).toMatchObject({
      type: 'distill', student: { model: STORIES.model }, loss: { temperature: 2, alpha: 0.5, reverse: false, hidden: 0 }, teacherSignal: { kind: 'logits' },
      schedule: { epochs: 0.5, lr: 3e-4, accumulate: 1 }, data: { batch: 4, length: 128 },
    });
  });

  it('finds tokenizer.json beside the teacher', () => {
    expect(distillRecipe({ teacher: STORIES.model, text: STORIES.text, 'student-blocks': '0', steps: 2 }).tokenizer).toEqual({ path: STORIES.tokenizer });
  });

  it('bad flags are usage errors that name the flag', () => {
    expect(usage({ text: STORIES.text, 'student-blocks': '0,2', steps: 2 })).toMatch(/--teacher FILE/);
    expect(usage({ ...base, steps: 2 })).toMatch(/--student-blocks 0,2,4 .* or --student FILE/);
    expect(usage({ ...base, steps: 2, student: STORIES.model, 'student-blocks': '0' })).toMatch(/--student and --student-blocks both/);
    expect(usage({ ...base, steps: 2, 'student-blocks': '0,two' })).toMatch(/"two" is not a block number/);
    expect(usage({ ...base, steps: 2, 'student-blocks': '0,2,2' })).toMatch(/block 2 more than once/);
    expect(usage({ ...base, 'student-blocks': '0' })).toMatch(/--steps N .* or --epochs E/);
    expect(usage({ ...base, 'student-blocks': '0', steps: 2, epochs: '1' })).toMatch(/--steps and --epochs both/);
    expect(usage({ ...base, 'student-blocks': '0', steps: 2, lr: '0' })).toMatch(/--lr must be above 0/);
    expect(usage({ ...base, 'student-blocks': '0', steps: 2, alpha: '1.5' })).toMatch(/^--alpha: alpha is a weight from 0 to 1/);
    expect(usage({ ...base, 'student-blocks': '0', steps: 2, temperature: '0' })).toMatch(/^--temperature: the temperature must be above 0/);
    expect(usage({ ...base, 'student-blocks': '0', steps: 2, temperature: 'hot' })).toMatch(/--temperature needs a number/);
    expect(usage({ ...base, 'student-blocks': '0', steps: 2, warmup: 3 })).toBe('--warmup: the warmup (3 steps) is longer than the run (2 steps)');
    expect(usage({ ...base, 'student-blocks': '0', steps: 2, 'eval-every': 5 })).toMatch(/--eval-every only applies with --eval-text/);
    expect(usage({ ...base, 'student-blocks': '0', steps: 2, window: 64 })).toMatch(/--window only applies with --eval-text/);
    expect(usage({ teacher: '/nowhere/model.onnx', text: STORIES.text, 'student-blocks': '0', steps: 2 })).toMatch(/no tokenizer.json beside model.onnx/);
    expect(parseStudentBlocks(' 3,1 ')).toEqual([1, 3]);
  });

  it('--lora-dropout sets the adapters\' dropout, with --lora-rank only and below 1', () => {
    const r = Recipe.parse(distillRecipe({ ...base, 'student-blocks': '0', steps: 2, 'lora-rank': 4, 'lora-dropout': '0.05' }));
    expect(r.steps[0]).toMatchObject({ lora: { rank: 4, dropout: 0.05 } });
    // Unset: no dropout.
    expect(Recipe.parse(distillRecipe({ ...base, 'student-blocks': '0', steps: 2, 'lora-rank': 4 })).steps[0]).toMatchObject({ lora: { rank: 4, dropout: 0 } });
    expect(usage({ ...base, 'student-blocks': '0', steps: 2, 'lora-dropout': '0.1' })).toMatch(/--lora-dropout only applies with --lora-rank/);
    expect(usage({ ...base, 'student-blocks': '0', steps: 2, 'lora-rank': 4, 'lora-dropout': '1' })).toMatch(/--lora-dropout is a probability from 0 up to but not including 1, got 1/);
    expect(usage({ ...base, 'student-blocks': '0', steps: 2, 'lora-rank': 4, 'lora-dropout': 'some' })).toMatch(/--lora-dropout needs a number/);
  });

  it('the command lists every flag the description names, with its help', () => {
    const names = distillCommand.options.map((o) => o.name);
    for (const o of DISTILL.options) if (o.flag) expect(names, o.flag).toContain(o.flag);
    for (const flag of ['student-blocks', 'student', 'temperature', 'alpha', 'reverse-kl', 'hidden-loss', 'topk-cache', 'lora-rank', 'eval-text', 'out']) {
      expect(distillCommand.options.find((o) => o.name === flag)?.description, flag).toBe(DISTILL.options.find((o) => o.flag === flag)?.help ?? distillCommand.options.find((o) => o.name === flag)?.description);
    }
  });

  it('a recipe file names the teacher, the brought student and the texts as files to check, and resolves them', () => {
    const recipe = Recipe.parse({
      model: { path: STORIES.model }, tokenizer: { path: STORIES.tokenizer },
      steps: [{ type: 'distill', teacher: STORIES.model, student: { model: '/x/student.onnx' }, data: { text: STORIES.text, evalText: '/x/held.txt' }, schedule: { steps: 2 } }],
    });
    expect(recipeFiles(recipe).map((f) => f.what)).toEqual(['model', 'tokenizer', 'teacher model', 'student model', 'training text', 'held-out text']);
    const { recipe: resolved, changed } = resolveRecipePaths({ model: { path: 'm.onnx' }, steps: [{ type: 'distill', teacher: 't.onnx', student: { model: 's.onnx' }, data: { text: 'a.txt', evalText: 'b.txt' }, schedule: { steps: 1 } }] }, '/base');
    expect(changed).toEqual(['model.path', 'steps[0].teacher', 'steps[0].student.model', 'steps[0].data.text', 'steps[0].data.evalText']);
    expect((resolved as { steps: { data: { text: string } }[] }).steps[0].data.text).toBe(path.join('/base', 'a.txt'));
  });
});

describe('whittle distill: checked before any work', () => {
  const recipeOf = (o: OptionValues): Recipe => Recipe.parse(distillRecipe({ ...base, steps: 2, ...o }));

  it('student blocks outside the teacher\'s blocks: refused, naming the teacher\'s blocks', async () => {
    const e = await refused(checkDistillRecipe(recipeOf({ 'student-blocks': '0,2,7' })));
    expect(e.message).toMatch(/Block 7 is not one of the teacher's blocks: it has 5 blocks, numbered 0–4/);
  });

  it('a student of the teacher\'s blocks: its size before running', async () => {
    const [pre] = await checkDistillRecipe(recipeOf({ 'student-blocks': '0,2,4' }));
    expect(pre.size?.blocks).toEqual([0, 2, 4]);
    expect(pre.size!.params).toBeLessThan(pre.size!.teacherParams);
    expect(pre.warnings).toEqual([]);
  });

  it.runIf(existsSync(GPT2))('a student with another vocabulary: refused, naming both sizes', async () => {
    const e = await refused(checkDistillRecipe(recipeOf({ student: GPT2 })));
    expect(e.message).toMatch(/student's vocabulary \(1000 logits\) differs from the teacher's \(512\)/);
  });

  it('an evaluation text inside the training text: allowed, with a warning for each text that overlaps', async () => {
    const docs = splitDocuments(await readTextFile(STORIES.text));
    const train = path.join(scratch.dir, 'train.txt');
    const held = path.join(scratch.dir, 'held.txt');
    writeFileSync(train, docs.slice(300).join('\n\n'));
    writeFileSync(held, docs.slice(280, 320).join('\n\n'));
    const [same] = await checkDistillRecipe(recipeOf({ 'student-blocks': '0,4', text: held, 'eval-text': held }));
    expect(same.warnings).toHaveLength(1);
    expect(same.warnings[0]).toMatch(/is the training text/);
    const [pre] = await checkDistillRecipe(recipeOf({ 'student-blocks': '0,4', text: train, 'eval-text': held }));
    expect(pre.warnings).toHaveLength(1);
    expect(pre.warnings[0]).toMatch(/^20 of the 40 paragraphs of the evaluation text held.txt \(50\.0 %\) are also in the training text train.txt/);
  });

  it('a student that is the step\'s input needs a step before it', async () => {
    const recipe = Recipe.parse({ model: { path: STORIES.model }, tokenizer: { path: STORIES.tokenizer }, steps: [{ type: 'distill', student: { from: 'input' }, data: { text: STORIES.text }, schedule: { steps: 2 } }] });
    await expect(checkDistillRecipe(recipe)).rejects.toThrow(/put the distill step after a prune or quantize step/);
  });
});
