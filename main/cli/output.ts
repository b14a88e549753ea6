/**
 * Everything the CLI prints goes through here. In --json mode stdout carries exactly one JSON document
 * (the result or `{ "error": … }`); progress and log lines always go to stderr.
 */
import type { ErrorShape } from '../engine/errors.ts';
import { toErrorShape } from '../engine/errors.ts';
import { UsageError } from './args.ts';

/** Codes that mean the user's input was wrong: exit status 2. */
const INPUT_CODES: ReadonlySet<string> = new Set(['INVALID_INPUT', 'NOT_FOUND', 'MODEL_PARSE', 'UNSUPPORTED_MODEL']);

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_INPUT = 2;

export function exitCodeFor(error: ErrorShape): number {
  return INPUT_CODES.has(error.code) ? EXIT_INPUT : EXIT_FAILURE;
}

/** Any thrown value as an ErrorShape; usage errors are INVALID_INPUT with their hint. */
export function cliErrorShape(error: unknown): ErrorShape {
  if (error instanceof UsageError) {
    return error.hint
      ? { code: 'INVALID_INPUT', message: error.message, details: { hint: error.hint } }
      : { code: 'INVALID_INPUT', message: error.message };
  }
  return toErrorShape(error);
}

export interface Stream { write(chunk: string): unknown; isTTY?: boolean; columns?: number }

export class Output {
  readonly json: boolean;
  readonly quiet: boolean;
  readonly stdout: Stream;
  readonly stderr: Stream;
  private documentWritten = false;
  private statusLine = '';

  constructor(options: { json: boolean; quiet: boolean; stdout?: Stream; stderr?: Stream }) {
    this.json = options.json;
    this.quiet = options.quiet;
    this.stdout = options.stdout ?? process.stdout;
    this.stderr = options.stderr ?? process.stderr;
  }

  /** The command's result: `value` as the one JSON document, or `text` for people. */
  result(value: unknown, text: string): void {
    this.clearStatus();
    if (this.json) {
      if (this.documentWritten) throw new Error('the CLI tried to print a second JSON document');
      this.documentWritten = true;
      this.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
    } else if (text) {
      this.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
    }
  }

  /** Prints an error: `whittle: message` on stderr, or the `{ error }` document in --json mode. */
  error(shape: ErrorShape): void {
    this.clearStatus();
    if (this.json && !this.documentWritten) {
      this.documentWritten = true;
      this.stdout.write(`${JSON.stringify({ error: shape }, null, 2)}\n`);
      return;
    }
    const hint = typeof shape.details?.hint === 'string' ? `\n${shape.details.hint}` : '';
    this.stderr.write(`whittle: ${shape.message}${hint}\n`);
  }

  /** A log line for people (stderr), hidden by --quiet. */
  info(text: string): void {
    if (this.quiet) return;
    this.clearStatus();
    this.stderr.write(`${text}\n`);
  }

  /** A warning (stderr), shown even with --quiet. */
  warn(text: string): void {
    this.clearStatus();
    this.stderr.write(`whittle: ${text}\n`);
  }

  /** Whether a live status line can be drawn (stderr is a terminal and not --quiet). */
  get live(): boolean {
    return !this.quiet && this.stderr.isTTY === true;
  }

  /** Redraws the one-line status on stderr (terminals only). */
  status(text: string): void {
    if (!this.live) return;
    const width = Math.max(20, (this.stderr.columns || 100) - 1);
    const line = text.length > width ? `${text.slice(0, width - 1)}…` : text;
    this.stderr.write(`\r\x1b[2K${line}`);
    this.statusLine = line;
  }

  clearStatus(): void {
    if (!this.statusLine) return;
    this.stderr.write('\r\x1b[2K');
    this.statusLine = '';
  }
}
