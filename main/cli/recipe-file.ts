/**
 * Reading a recipe file for `whittle run` / `whittle eval --recipe`: JSON syntax errors with their line,
 * schema problems as sentences that name the key (unknown keys with the allowed ones and a "did you
 * mean"), and the files the recipe names checked before any job starts.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { z } from 'zod';
import { Recipe } from '../../preload/recipe.ts';
import { issuePath } from '../api/issues.ts';
import { WhittleError } from '../engine/errors.ts';
import { notAFileMessage, specialFileKind } from '../engine/onnx/sniff.ts';
import { closest } from './args.ts';

export interface RecipeProblem { path: string; message: string }

interface SchemaDef { type: string; shape?: Record<string, z.ZodType>; innerType?: z.ZodType; element?: z.ZodType; options?: z.ZodType[] }

function defOf(schema: z.ZodType | undefined): SchemaDef | undefined {
  return (schema as unknown as { _zod?: { def?: SchemaDef } } | undefined)?._zod?.def;
}

/** The keys an object schema allows at `at` (objects inside optional/default/array/union wrappers). */
export function allowedKeysAt(schema: z.ZodType, at: readonly PropertyKey[]): string[] {
  let current: z.ZodType[] = [schema];
  const unwrap = (list: z.ZodType[]): z.ZodType[] => list.flatMap((s) => {
    const def = defOf(s);
    if (!def) return [];
    if (def.innerType) return unwrap([def.innerType]);
    if (def.type === 'union' && def.options) return unwrap(def.options);
    return [s];
  });
  for (const key of at) {
    current = unwrap(current).flatMap((s) => {
      const def = defOf(s)!;
      if (typeof key === 'number' && def.type === 'array' && def.element) return [def.element];
      if (typeof key === 'string' && def.type === 'object' && def.shape && key in def.shape) return [def.shape[key]];
      return [];
    });
  }
  const keys = new Set<string>();
  for (const s of unwrap(current)) {
    const def = defOf(s)!;
    if (def.type === 'object' && def.shape) for (const k of Object.keys(def.shape)) keys.add(k);
  }
  return [...keys];
}

type Issue = z.core.$ZodIssue;

function describeIssue(issue: Issue): RecipeProblem {
  const where = issuePath(issue.path);
  if (issue.code === 'unrecognized_keys') {
    const allowed = allowedKeysAt(Recipe, issue.path);
    const keys = issue.keys.map((k) => `"${where ? `${where}.` : ''}${k}"`).join(', ');
    const suggestion = issue.keys.length === 1 ? closest(issue.keys[0], allowed) : undefined;
    const place = where ? ` in ${where}` : '';
    return {
      path: where,
      message: `unknown key${issue.keys.length > 1 ? 's' : ''} ${keys}${place}${suggestion ? ` (did you mean "${suggestion}"?)` : ''}`
        + (allowed.length ? `; allowed keys: ${allowed.join(', ')}` : ''),
    };
  }
  if (issue.code === 'invalid_union') {
    const values = issue.errors.flatMap((branch) => branch.filter((i) => i.code === 'invalid_value').flatMap((i) => (i as { values: unknown[] }).values));
    if (values.length && values.length === issue.errors.length) {
      return { path: where, message: `${where || 'value'} must be one of ${values.map((v) => JSON.stringify(v)).join(', ')}` };
    }
  }
  return { path: where, message: where ? `${where}: ${issue.message}` : issue.message };
}

/** Validates a parsed recipe; throws INVALID_INPUT listing every problem. */
export function validateRecipe(value: unknown, source: string): Recipe {
  const parsed = Recipe.safeParse(value);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map(describeIssue);
  const list = problems.map((p) => `  - ${p.message}`).join('\n');
  throw new WhittleError('INVALID_INPUT', `The recipe ${source} is not valid:\n${list}`, { issues: problems });
}

/** Reads and parses a JSON file; INVALID_INPUT (with line and column) when it is not JSON. */
export function readJsonFile(file: string, what: string): unknown {
  if (!existsSync(file)) throw new WhittleError('NOT_FOUND', `The ${what} ${file} does not exist.`, { path: file });
  if (statSync(file).isDirectory()) throw new WhittleError('INVALID_INPUT', `The ${what} ${file} is a folder, not a JSON file.`, { path: file });
  const text = readFileSync(file, 'utf8');
  try {
    return JSON.parse(text);
  } catch (error) {
    const message = (error as Error).message;
    const at = /position (\d+)/.exec(message);
    let where = '';
    if (at) {
      const before = text.slice(0, Number(at[1]));
      const line = before.split('\n').length;
      where = ` at line ${line}, column ${Number(at[1]) - before.lastIndexOf('\n')}`;
    }
    throw new WhittleError('INVALID_INPUT', `The ${what} ${file} is not valid JSON${where}: ${message.replace(/ in JSON at position \d+.*$/, '')}.`, { path: file });
  }
}

/** The recipe's file paths that must exist before a job starts, with what each one is. */
export function recipeFiles(recipe: Recipe): { path: string; what: string; folder?: boolean }[] {
  const files = [{ path: recipe.model.path, what: 'model' }];
  if (recipe.tokenizer) files.push({ path: recipe.tokenizer.path, what: 'tokenizer' });
  if (recipe.evaluation.perplexity) files.push({ path: recipe.evaluation.perplexity.text, what: 'evaluation text' });
  const accuracy = recipe.evaluation.accuracy;
  if (accuracy) files.push({ path: accuracy.file, what: 'labelled evaluation data' });
  if (accuracy?.testFile !== undefined) files.push({ path: accuracy.testFile, what: 'labelled test data' });
  recipe.steps.forEach((step, i) => {
    const where = recipe.steps.length > 1 ? ` of step ${i + 1}` : '';
    if ('calibration' in step && step.calibration) files.push({ path: step.calibration.text, what: `calibration text${where}` });
    if (step.type === 'sensitivity' && step.quantize.method === 'gptq') files.push({ path: step.quantize.calibration.text, what: `GPTQ calibration text${where}` });
    if (step.type === 'train' && step.text !== undefined) files.push({ path: step.text, what: `training text${where}` });
    if (step.type === 'quantize' && step.method === 'qat') files.push({ path: step.text, what: `KD-QAT training text${where}` });
    if (step.type === 'train' && step.labels) files.push({ path: step.labels.file, what: `labelled data${where}` });
    if (step.type === 'train' && step.teacher) files.push({ path: step.teacher.model, what: `teacher model${where}` });
    if ('evalText' in step && step.evalText !== undefined) files.push({ path: step.evalText, what: `held-out text${where}` });
    if (step.type === 'distill') {
      if (step.teacher !== undefined) files.push({ path: step.teacher, what: `teacher model${where}` });
      if ('model' in step.student) files.push({ path: step.student.model, what: `student model${where}` });
      files.push({ path: step.data.text, what: `training text${where}` });
      if (step.data.evalText !== undefined) files.push({ path: step.data.evalText, what: `held-out text${where}` });
    }
  });
  return files;
}

/** NOT_FOUND for the first file the recipe names that is missing; INVALID_INPUT for a folder, a pipe or a device. */
export function checkRecipeFiles(recipe: Recipe): void {
  for (const f of recipeFiles(recipe)) {
    if (!existsSync(f.path)) {
      throw new WhittleError('NOT_FOUND', `The ${f.what} file ${f.path} does not exist.`, { path: f.path, what: f.what });
    }
    const st = statSync(f.path);
    if (st.isDirectory()) {
      throw new WhittleError('INVALID_INPUT', `The ${f.what} path ${f.path} is a folder; give the file itself.`, { path: f.path, what: f.what });
    }
    // A named pipe or a device would hold the job on its first read: refused before anything opens it.
    const special = specialFileKind(st);
    if (special) throw new WhittleError('INVALID_INPUT', notAFileMessage(`The ${f.what} ${f.path}`, special), { path: f.path, what: f.what, kind: special });
  }
}

/**
 * A recipe whose relative paths are made absolute against `base` (the recipe file's folder), so that the
 * engine process finds them wherever it runs. Only path strings change; when every path is already
 * absolute the very same value is returned, so the history stores the file's recipe verbatim.
 */
export function resolveRecipePaths(raw: unknown, base: string): { recipe: unknown; changed: string[] } {
  const changed: string[] = [];
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return { recipe: raw, changed };
  const copy = structuredClone(raw) as Record<string, Record<string, unknown> | undefined>;
  const fix = (holder: Record<string, unknown> | undefined, key: string, label: string): void => {
    const value = holder?.[key];
    if (holder && typeof value === 'string' && value !== '' && !path.isAbsolute(value)) {
      holder[key] = path.resolve(base, value);
      changed.push(label);
    }
  };
  fix(copy.model, 'path', 'model.path');
  fix(copy.tokenizer, 'path', 'tokenizer.path');
  const evaluation = copy.evaluation;
  const perplexity = evaluation && typeof evaluation === 'object' ? (evaluation.perplexity as Record<string, unknown> | undefined) : undefined;
  fix(perplexity && typeof perplexity === 'object' ? perplexity : undefined, 'text', 'evaluation.perplexity.text');
  const steps = (copy as Record<string, unknown>).steps;
  const record = (v: unknown): Record<string, unknown> | undefined => (v && typeof v === 'object' && !Array.isArray(v) ? v as Record<string, unknown> : undefined);
  const accuracy = record(record(evaluation)?.accuracy);
  fix(accuracy, 'file', 'evaluation.accuracy.file');
  fix(accuracy, 'testFile', 'evaluation.accuracy.testFile');
  if (Array.isArray(steps)) {
    steps.forEach((step, i) => {
      fix(record(record(step)?.calibration), 'text', `steps[${i}].calibration.text`);
      fix(record(record(record(step)?.quantize)?.calibration), 'text', `steps[${i}].quantize.calibration.text`);
      fix(record(step), 'text', `steps[${i}].text`);
      fix(record(step), 'evalText', `steps[${i}].evalText`);
      fix(record(record(step)?.resume), 'checkpoints', `steps[${i}].resume.checkpoints`);
      fix(record(step), 'teacher', `steps[${i}].teacher`);
      fix(record(record(step)?.teacher), 'model', `steps[${i}].teacher.model`);
      fix(record(record(step)?.labels), 'file', `steps[${i}].labels.file`);
      fix(record(record(step)?.student), 'model', `steps[${i}].student.model`);
      fix(record(record(step)?.data), 'text', `steps[${i}].data.text`);
      fix(record(record(step)?.data), 'evalText', `steps[${i}].data.evalText`);
    });
  }
  fix(copy.output, 'dir', 'output.dir');
  return changed.length ? { recipe: copy, changed } : { recipe: raw, changed };
}

/** Reads, validates and checks a recipe file: what to submit (verbatim where possible) and its parsed form. */
export function loadRecipeFile(file: string): { submit: unknown; recipe: Recipe; resolved: string[] } {
  const absolute = path.resolve(file);
  const raw = readJsonFile(absolute, 'recipe file');
  // Validate the file as written first, so problems name the keys the user wrote.
  validateRecipe(raw, file);
  const { recipe: submit, changed } = resolveRecipePaths(raw, path.dirname(absolute));
  const recipe = validateRecipe(submit, file);
  checkRecipeFiles(recipe);
  return { submit, recipe, resolved: changed };
}
