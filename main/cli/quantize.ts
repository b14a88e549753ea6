/**
 * `whittle quantize <model> --bits 4 --block-size 32 …`: builds a recipe (a weight-only RTN step, and an
 * evaluation of the original beside the result when --eval-text is given), runs it through the job
 * system exactly like `whittle run`, and prints the two models side by side.
 */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import type { RecipeInput } from '../../preload/recipe.ts';
import { Recipe } from '../../preload/recipe.ts';
import { issuePath } from '../api/issues.ts';
import { checkOutputDir } from '../engine/quantize/output-folder.ts';
import { UsageError, type OptionValues } from './args.ts';
import { outputFolder } from './comparison.ts';
import { runAndReport } from './experiment.ts';
import type { Output } from './output.ts';
import { checkRecipeFiles } from './recipe-file.ts';

/** Which option sets each recipe field, for messages about flag values. */
const FLAG_FOR_FIELD: Record<string, string> = {
  'steps[0].bits': '--bits',
  'steps[0].blockSize': '--block-size',
  'steps[0].accuracyLevel': '--accuracy-level',
  'steps[0].format': '--format',
  'steps[0].keep': '--keep',
  'evaluation.perplexity.window': '--window',
  'evaluation.perplexity.maxSamples': '--samples',
  'evaluation.speed.threads': '--threads',
  'output.dir': '--out',
  name: '--name',
};

/** The tokenizer: --tokenizer, else tokenizer.json beside the model when there is one. */
function tokenizerFor(model: string, o: OptionValues): string | null {
  if (o.tokenizer !== undefined) return path.resolve(String(o.tokenizer));
  const beside = path.join(path.dirname(model), 'tokenizer.json');
  return existsSync(beside) ? beside : null;
}

/** The recipe the command line describes (paths made absolute). */
export function quantizeRecipe(modelArg: string, o: OptionValues): RecipeInput {
  const model = path.resolve(modelArg);
  const evalText = o['eval-text'] === undefined ? null : path.resolve(String(o['eval-text']));
  for (const flag of ['window', 'samples']) {
    if (o[flag] !== undefined && !evalText) throw new UsageError(`--${flag} only applies with --eval-text FILE (the text original and result are compared on).`);
  }
  if (o.threads !== undefined && o.speed !== true) throw new UsageError('--threads only applies with --speed.');
  const keep = (o.keep as string[] | undefined) ?? [];
  for (const pattern of keep) {
    try { new RegExp(pattern); } catch (e) { throw new UsageError(`--keep "${pattern}" is not a valid regular expression: ${(e as Error).message}.`); }
  }
  const tokenizer = tokenizerFor(model, o);
  if (evalText && !tokenizer) {
    throw new UsageError(`--eval-text needs the model's tokenizer: there is no tokenizer.json beside ${path.basename(model)}.`, 'Give it with --tokenizer FILE.');
  }

  const step: Record<string, unknown> = { type: 'quantize', method: 'rtn' };
  if (o.bits !== undefined) step.bits = Number(o.bits);
  if (o['block-size'] !== undefined) step.blockSize = o['block-size'];
  if (o.symmetric === true) step.symmetric = true;
  if (o['accuracy-level'] !== undefined) step.accuracyLevel = o['accuracy-level'];
  if (o.format !== undefined) step.format = o.format;
  if (keep.length) step.keep = keep;

  const evaluation: Record<string, unknown> = { footprint: true };
  if (evalText) {
    evaluation.perplexity = { text: evalText, protocol: 'documents', window: o.window ?? 256, maxSamples: o.samples ?? 400 };
  }
  if (o.speed === true) evaluation.speed = o.threads === undefined ? {} : { threads: o.threads };

  const recipe: Record<string, unknown> = { version: 1, model: { path: model }, steps: [step], evaluation };
  if (tokenizer) recipe.tokenizer = { path: tokenizer };
  if (o.name !== undefined) recipe.name = o.name;
  if (o.out !== undefined) recipe.output = { dir: path.resolve(String(o.out)) };

  const parsed = Recipe.safeParse(recipe);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issuePath(issue.path);
    const flag = FLAG_FOR_FIELD[field] ?? FLAG_FOR_FIELD[field.replace(/\[\d+\]$/, '')];
    throw new UsageError(flag ? `${flag}: ${issue.message.replace(/^Invalid input: /, '')}` : `${field}: ${issue.message}`);
  }
  return recipe as RecipeInput;
}

export async function runQuantize(modelArg: string, o: OptionValues, out: Output, home: string | undefined): Promise<number> {
  const recipe = quantizeRecipe(modelArg, o);
  const parsed = Recipe.parse(recipe);
  checkRecipeFiles(parsed);
  if (parsed.output?.dir) {
    if (existsSync(parsed.output.dir) && !statSync(parsed.output.dir).isDirectory()) {
      throw new UsageError(`--out ${parsed.output.dir} is a file; give a folder.`);
    }
    await checkOutputDir(parsed.output.dir);
  }
  return runAndReport(recipe, undefined, out, home, (outcome, base) => {
    const values = base.values as Record<string, Record<string, number>>;
    const folder = outputFolder(outcome.experiment);
    return {
      ...base,
      outputDir: folder,
      outputModel: outcome.experiment.artefacts.find((a) => a.kind === 'model')?.path ?? null,
      original: values.original ?? {},
      result: values.result ?? {},
    };
  });
}
