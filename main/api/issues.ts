/**
 * Zod issues as short readable lines: `steps[0].bits: Invalid input …`. Used for call parameters and for
 * recipe validation, so both read the same way.
 */
import type { z } from 'zod';

export interface Issue { path: string; message: string }

export function issuePath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out;
}

export function readableIssues(error: z.ZodError): Issue[] {
  return error.issues.map((issue) => ({ path: issuePath(issue.path), message: issue.message }));
}

export function issuesText(issues: readonly Issue[]): string {
  return issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; ');
}
