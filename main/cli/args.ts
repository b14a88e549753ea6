/**
 * The command line, parsed by hand so that every mistake gets a sentence that says what is wrong and
 * what to type instead. `--name value` and `--name=value` both work; `--` ends the options.
 * Global options (--json, --home, --quiet, --help, --version) may stand anywhere.
 */

export type OptionType = 'boolean' | 'string' | 'int';

export interface OptionSpec {
  name: string;
  type: OptionType;
  short?: string;
  /** Placeholder shown in help: `--window L`. */
  value?: string;
  description: string;
  min?: number;
  max?: number;
  choices?: readonly string[];
  /** May be given several times; the values are collected in order (a string[]). */
  repeatable?: boolean;
}

export interface PositionalSpec {
  name: string;
  description: string;
  optional?: boolean;
  /** The last positional only: takes every remaining argument (`<id…>`). */
  variadic?: boolean;
}

export interface CommandSpec {
  /** 'inspect', or 'history list' for a subcommand. */
  name: string;
  summary: string;
  positionals: readonly PositionalSpec[];
  options: readonly OptionSpec[];
  /** Extra lines for `--help`: notes and examples. */
  notes?: readonly string[];
}

export type OptionValues = Record<string, string | number | boolean | string[] | undefined>;

export interface ParsedCommand {
  command: CommandSpec;
  positionals: string[];
  options: OptionValues;
}

/** A mistake on the command line: exit 2, with a hint where one helps. */
export class UsageError extends Error {
  readonly hint?: string;
  constructor(message: string, hint?: string) {
    super(message);
    this.name = 'UsageError';
    this.hint = hint;
  }
}

export const GLOBAL_OPTIONS: readonly OptionSpec[] = [
  { name: 'json', type: 'boolean', description: 'print exactly one JSON document on stdout (progress and logs go to stderr)' },
  { name: 'home', type: 'string', value: 'DIR', description: 'folder of the experiment history (overrides WHITTLE_HOME)' },
  { name: 'quiet', type: 'boolean', short: 'q', description: 'no progress or log lines, only the result and errors' },
  { name: 'help', type: 'boolean', short: 'h', description: 'show help for the command' },
  { name: 'version', type: 'boolean', short: 'V', description: 'print the version' },
];

/** Edit distance, for "did you mean". */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length];
}

export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = distance(word, c);
    if (d < bestDistance) { best = c; bestDistance = d; }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function convert(spec: OptionSpec, raw: string, where: string): string | number {
  if (spec.type === 'int') {
    if (/^-\d+$/.test(raw)) {
      throw new UsageError(`--${spec.name} ${raw} is not a valid value: it is negative, and --${spec.name} takes a whole number${spec.min !== undefined ? ` of at least ${spec.min}` : ' ≥ 0'}.`, `--${spec.name}${where}: ${spec.description}.`);
    }
    if (!/^\d+$/.test(raw)) throw new UsageError(`--${spec.name} needs a whole number${where}, got "${raw}".`);
    const n = Number(raw);
    if (spec.min !== undefined && n < spec.min) throw new UsageError(`--${spec.name} must be at least ${spec.min}, got ${n}.`);
    if (spec.max !== undefined && n > spec.max) throw new UsageError(`--${spec.name} must be at most ${spec.max}, got ${n}.`);
    return n;
  }
  if (spec.choices && !spec.choices.includes(raw)) {
    throw new UsageError(`--${spec.name} must be one of ${spec.choices.join(', ')}; got "${raw}".`);
  }
  if (raw === '') throw new UsageError(`--${spec.name} needs a value${where}.`);
  return raw;
}

interface Cursor { args: readonly string[]; i: number }

/**
 * Reads one option token at cursor.i (which starts with '-') into `values`; advances the cursor.
 * `scope` names the command for messages.
 */
function readOption(cursor: Cursor, specs: readonly OptionSpec[], values: OptionValues, scope: string): void {
  const token = cursor.args[cursor.i++];
  let name: string;
  let inline: string | undefined;
  let spec: OptionSpec | undefined;
  if (token.startsWith('--')) {
    const eq = token.indexOf('=');
    name = eq >= 0 ? token.slice(2, eq) : token.slice(2);
    inline = eq >= 0 ? token.slice(eq + 1) : undefined;
    spec = specs.find((s) => s.name === name);
  } else {
    name = token.slice(1);
    if (name.length !== 1) {
      throw new UsageError(`Unknown option "${token}" for ${scope}.`, `Long options take two dashes, e.g. --${name}.`);
    }
    spec = specs.find((s) => s.short === name);
  }
  if (!spec) {
    const suggestion = closest(name, specs.map((s) => s.name));
    throw new UsageError(
      `Unknown option "${token.split('=')[0]}" for ${scope}.`,
      suggestion ? `Did you mean --${suggestion}? See \`${scope} --help\`.` : `See \`${scope} --help\` for the options.`,
    );
  }
  if (values[spec.name] !== undefined && !spec.repeatable) throw new UsageError(`--${spec.name} is given more than once.`);
  if (spec.type === 'boolean') {
    if (inline !== undefined) throw new UsageError(`--${spec.name} is a switch and takes no value (got "${inline}").`);
    values[spec.name] = true;
    return;
  }
  const what = spec.value ? ` (${spec.value})` : '';
  let raw = inline;
  if (raw === undefined) {
    const next = cursor.args[cursor.i];
    // A negative number is a value (found wrong by convert), not the next option.
    const negativeNumber = spec.type !== 'string' && /^-\d/.test(next ?? '');
    if (next === undefined || (next.startsWith('-') && next.length > 1 && !negativeNumber)) {
      throw new UsageError(`--${spec.name} needs a value${what}.`);
    }
    raw = next;
    cursor.i++;
  }
  const value = convert(spec, raw, what);
  if (spec.repeatable) values[spec.name] = [...((values[spec.name] as string[] | undefined) ?? []), String(value)];
  else values[spec.name] = value;
}

/**
 * Parses argv (without node and the script) against the command table. The command is null when none
 * was given (only global options, e.g. `whittle --version`, or a group alone: `whittle history`).
 */
export function parseCommandLine(argv: readonly string[], commands: readonly CommandSpec[]): { command: CommandSpec | null; group?: string; positionals: string[]; options: OptionValues } {
  const values: OptionValues = {};
  const cursor: Cursor = { args: argv, i: 0 };
  const words: string[] = [];
  let command: CommandSpec | null = null;

  // Global options, then the command word(s).
  const groups = new Set(commands.filter((c) => c.name.includes(' ')).map((c) => c.name.split(' ')[0]));
  while (cursor.i < argv.length && command === null) {
    const token = argv[cursor.i];
    if (token === '--') break;
    if (token.startsWith('-') && token.length > 1) {
      readOption(cursor, GLOBAL_OPTIONS, values, 'whittle');
      continue;
    }
    words.push(token);
    cursor.i++;
    const name = words.join(' ');
    const found = commands.find((c) => c.name === name);
    if (found) { command = found; break; }
    if (words.length === 1 && groups.has(token)) continue;
    const known = words.length === 1
      ? [...new Set(commands.map((c) => c.name.split(' ')[0]))]
      : commands.filter((c) => c.name.startsWith(`${words[0]} `)).map((c) => c.name.split(' ')[1]);
    const suggestion = closest(token, known);
    const scope = words.length === 1 ? 'whittle' : `whittle ${words[0]}`;
    throw new UsageError(
      `Unknown command "${name}".`,
      `${suggestion ? `Did you mean \`${scope} ${suggestion}\`? ` : ''}Commands: ${known.join(', ')}. See \`${scope} --help\`.`,
    );
  }
  if (command === null) {
    if (words.length === 1 && groups.has(words[0])) {
      // `whittle history` alone, or `whittle history --help`.
      while (cursor.i < argv.length) {
        if (argv[cursor.i] === '--') break;
        readOption(cursor, GLOBAL_OPTIONS, values, `whittle ${words[0]}`);
      }
      return { command: null, group: words[0], positionals: [], options: values };
    }
    return { command: null, positionals: [], options: values };
  }

  // The command's own options and positionals, in any order.
  const specs = [...GLOBAL_OPTIONS, ...command.options];
  const scope = `whittle ${command.name}`;
  const positionals: string[] = [];
  let optionsEnded = false;
  while (cursor.i < argv.length) {
    const token = argv[cursor.i];
    if (!optionsEnded && token === '--') { optionsEnded = true; cursor.i++; continue; }
    if (!optionsEnded && token.startsWith('-') && token.length > 1) {
      readOption(cursor, specs, values, scope);
      continue;
    }
    positionals.push(token);
    cursor.i++;
  }
  if (!values.help) {
    if (positionals.length > command.positionals.length && !command.positionals.at(-1)?.variadic) {
      const extra = positionals[command.positionals.length];
      throw new UsageError(`Unexpected argument "${extra}" for ${scope}.`, `Usage: ${usageLine(command)}`);
    }
    const required = command.positionals.filter((p) => !p.optional).length;
    if (positionals.length < required) {
      const missing = command.positionals[positionals.length];
      throw new UsageError(`${scope} needs <${missing.name}>: ${missing.description}.`, `Usage: ${usageLine(command)}`);
    }
  }
  return { command, positionals, options: values };
}

// ── help text ────────────────────────────────────────────────────────────────────────────────────────

function optionLabel(o: OptionSpec): string {
  const short = o.short ? `-${o.short}, ` : '';
  const value = o.type === 'boolean' ? '' : ` ${o.value ?? (o.type === 'int' ? 'N' : 'VALUE')}`;
  return `${short}--${o.name}${value}${o.repeatable ? ' …' : ''}`;
}

export function usageLine(command: CommandSpec): string {
  const positionals = command.positionals.map((p) => {
    const name = `<${p.name}${p.variadic ? '…' : ''}>`;
    return p.optional ? `[${name}]` : name;
  }).join(' ');
  return `whittle ${command.name}${positionals ? ` ${positionals}` : ''}${command.options.length ? ' [options]' : ''}`;
}

function table(rows: [string, string][]): string[] {
  const width = Math.max(...rows.map(([a]) => a.length));
  return rows.map(([a, b]) => `  ${a.padEnd(width)}  ${b}`);
}

export function commandHelp(command: CommandSpec): string {
  const lines = [`Usage: ${usageLine(command)}`, '', command.summary];
  if (command.positionals.length) {
    lines.push('', 'Arguments:', ...table(command.positionals.map((p) => [`<${p.name}>`, p.description])));
  }
  if (command.options.length) {
    lines.push('', 'Options:', ...table(command.options.map((o) => [optionLabel(o), o.description])));
  }
  lines.push('', 'Global options:', ...table(GLOBAL_OPTIONS.map((o) => [optionLabel(o), o.description])));
  if (command.notes?.length) lines.push('', ...command.notes);
  return `${lines.join('\n')}\n`;
}

export function overviewHelp(commands: readonly CommandSpec[], group?: string): string {
  const shown = group ? commands.filter((c) => c.name.startsWith(`${group} `)) : commands;
  const lines = [
    group ? `Usage: whittle ${group} <command> [options]` : 'Usage: whittle <command> [options]',
    '',
    group ? `Commands of \`whittle ${group}\`:` : 'Whittle compresses ONNX language models and measures the result. Commands:',
    ...table(shown.map((c) => [usageLine(c).replace(/^whittle /, ''), c.summary])),
    '',
    'Global options:',
    ...table(GLOBAL_OPTIONS.map((o) => [optionLabel(o), o.description])),
    '',
    `Run \`whittle <command> --help\` for a command's options.`,
    'Exit status: 0 success, 2 invalid input (options, recipe, files, models), 1 any other failure.',
  ];
  return `${lines.join('\n')}\n`;
}
