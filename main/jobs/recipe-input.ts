/** A submitted recipe checked against the schema, with every problem as one readable line. */
import type { z } from 'zod';
import { Recipe } from '../../preload/recipe.ts';
import { WhittleError } from '../engine/errors.ts';

export interface RecipeIssue { path: string; message: string }

function issuePath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out;
}

export function recipeIssues(error: z.ZodError): RecipeIssue[] {
  return error.issues.map((issue) => ({ path: issuePath(issue.path), message: issue.message }));
}

/** The parsed recipe (defaults filled in), or WhittleError('INVALID_INPUT') listing every issue. */
export function parseRecipe(input: unknown): Recipe {
  const r = Recipe.safeParse(input);
  if (r.success) return r.data;
  const issues = recipeIssues(r.error);
  const lines = issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; ');
  throw new WhittleError('INVALID_INPUT', `The recipe is not valid: ${lines}`, { issues });
}
