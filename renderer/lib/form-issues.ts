/**
 * What the job forms share about problems: one message per field (the 'form' field collects the ones
 * that belong to no field), recipe issue paths → fields, and zod's number messages in plain words.
 */
export type Issues<F extends string> = Partial<Record<F | 'form', string>>;

/** "a.b.c", "/a/b/c" or ["a", "b", "c"] → ["a", "b", "c"]. */
export function issuePathParts(path: string | readonly PropertyKey[]): string[] {
  return typeof path === 'string' ? path.split(/[./]/).filter(Boolean) : path.map(String);
}

/** The first message of a field wins; messages for the whole form are joined. */
export function addIssue<F extends string>(issues: Issues<F>, field: F | 'form', message: string): void {
  if (!issues[field]) issues[field] = message;
  else if (field === 'form' && !issues.form!.includes(message)) issues.form = `${issues.form} ${message}`;
}

/** zod's messages about numbers, as a person would say them; null for any other message. */
export function numberMessage(message: string): string | null {
  if (/expected number, received NaN/i.test(message)) return 'Enter a number.';
  const m = /expected number to be (>=|<=)\s*(-?[\d.]+)/.exec(message);
  if (m) return m[1] === '>=' ? `At least ${m[2]}.` : `At most ${m[2]}.`;
  if (/expected int/i.test(message)) return 'Enter a whole number.';
  return null;
}

/** Issues reported by `recipes.validate`, by field: unplaced ones keep their path in the message. */
export function issuesFromList<F extends string>(
  list: readonly { path: string; message: string }[],
  fieldFor: (path: string) => F | 'form',
  friendly: (message: string, field: F | 'form') => string,
): Issues<F> {
  const issues: Issues<F> = {};
  for (const i of list) {
    const field = fieldFor(i.path);
    addIssue(issues, field, field === 'form' && i.path ? `${i.path}: ${i.message}` : friendly(i.message, field));
  }
  return issues;
}
