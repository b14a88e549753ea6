/**
 * The file-system paths a call names, found from the contract: a field is a path when its schema is one
 * of the contract's path schemas (`FilePath` of the calls, `path` of the recipe). The parsed parameters
 * are walked alongside their schema, so a path nested anywhere — a step's calibration text, the output
 * folder — is found without a list per call.
 */
import type { z } from 'zod';
import { Recipe, calls, type CallName } from '../../preload/contract.ts';

export interface CallPath {
  /** Where it sits in the parameters, e.g. `recipe.steps[0].calibration.text`. */
  field: string;
  value: string;
}

/** The contract's path schemas, by identity (every path field reuses one of them). */
const PATH_SCHEMAS: ReadonlySet<unknown> = new Set<unknown>([
  calls['models.inspect'].params.shape.path,
  Recipe.shape.model.shape.path,
]);

/**
 * `jobs.start` carries its recipe as `unknown` (the job service parses it and reports every issue); the
 * paths in it are read through the Recipe schema. A recipe that does not parse names no paths: the job
 * service refuses it before reading anything.
 */
const PATH_VIEW: Partial<Record<CallName, z.ZodType>> = {
  'jobs.start': calls['jobs.start'].params.extend({ recipe: Recipe }),
};

interface SchemaDef {
  type: string;
  shape?: Record<string, z.ZodType>;
  innerType?: z.ZodType;
  element?: z.ZodType;
  options?: z.ZodType[];
  in?: z.ZodType;
  out?: z.ZodType;
  valueType?: z.ZodType;
  items?: z.ZodType[];
}

const defOf = (schema: z.ZodType): SchemaDef => (schema as unknown as { _zod: { def: SchemaDef } })._zod.def;

function fieldName(parent: string, key: string | number): string {
  if (typeof key === 'number') return `${parent}[${key}]`;
  return parent ? `${parent}.${key}` : key;
}

function walk(schema: z.ZodType, value: unknown, field: string, out: CallPath[]): void {
  if (value === undefined || value === null) return;
  if (PATH_SCHEMAS.has(schema)) {
    if (typeof value === 'string') out.push({ field, value });
    return;
  }
  const def = defOf(schema);
  switch (def.type) {
    case 'object':
      if (typeof value !== 'object') return;
      for (const [key, child] of Object.entries(def.shape ?? {})) {
        walk(child, (value as Record<string, unknown>)[key], fieldName(field, key), out);
      }
      return;
    case 'optional': case 'nullable': case 'default': case 'prefault': case 'readonly': case 'nonoptional': case 'catch':
      if (def.innerType) walk(def.innerType, value, field, out);
      return;
    case 'pipe':
      if (def.out) walk(def.out, value, field, out);
      return;
    case 'array':
      if (Array.isArray(value) && def.element) value.forEach((v, i) => walk(def.element!, v, fieldName(field, i), out));
      return;
    case 'tuple':
      if (Array.isArray(value)) (def.items ?? []).forEach((s, i) => walk(s, value[i], fieldName(field, i), out));
      return;
    case 'record':
      if (typeof value === 'object' && def.valueType) {
        for (const [key, v] of Object.entries(value as Record<string, unknown>)) walk(def.valueType, v, fieldName(field, key), out);
      }
      return;
    case 'union': {
      // The parsed value matches the option it was parsed with (a discriminated union's tag decides).
      const option = (def.options ?? []).find((o) => o.safeParse(value).success);
      if (option) walk(option, value, field, out);
      return;
    }
    default:
      return;
  }
}

/** Every path in a call's parsed parameters. */
export function callPaths(method: CallName, params: unknown): CallPath[] {
  const view = PATH_VIEW[method];
  let schema: z.ZodType = calls[method].params;
  let value = params;
  if (view) {
    const parsed = view.safeParse(params);
    if (!parsed.success) return [];
    schema = view;
    value = parsed.data;
  }
  const out: CallPath[] = [];
  walk(schema, value, '', out);
  return out;
}
