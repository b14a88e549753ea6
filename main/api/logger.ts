/**
 * The main-side log. Stacks and internal details go here, never to a client.
 */
import { createWriteStream, mkdirSync } from 'node:fs';
import path from 'node:path';
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  log(level: LogLevel, message: string, error?: unknown): void;
}

export interface LogEntry { level: LogLevel; message: string; error?: unknown }

function describe(error: unknown): string {
  if (error instanceof Error) return error.stack ?? `${error.name}: ${error.message}`;
  return String(error);
}

/** Writes to stderr (debug lines only when WHITTLE_DEBUG is set by the caller). */
export function consoleLogger(options: { debug?: boolean } = {}): Logger {
  return {
    log(level, message, error) {
      if (level === 'debug' && !options.debug) return;
      const line = `[whittle ${level}] ${message}${error === undefined ? '' : `\n${describe(error)}`}`;
      process.stderr.write(`${line}\n`);
    },
  };
}

/** Appends to `file` (created with its folder) and also writes warnings and errors to stderr. */
export function fileLogger(file: string, options: { debug?: boolean } = {}): Logger & { close(): void } {
  mkdirSync(path.dirname(file), { recursive: true });
  const stream = createWriteStream(file, { flags: 'a' });
  stream.on('error', () => { /* a log that cannot be written must not take the app down */ });
  const console = consoleLogger(options);
  return {
    log(level, message, error) {
      if (level === 'debug' && !options.debug) return;
      stream.write(`${new Date().toISOString()} ${level} ${message}${error === undefined ? '' : `\n${describe(error)}`}\n`);
      if (level === 'warn' || level === 'error') console.log(level, message, error);
    },
    close() { stream.end(); },
  };
}

/** Keeps entries in memory: for tests that check what reached the log. */
export function memoryLogger(): Logger & { entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  return {
    entries,
    log(level, message, error) {
      entries.push(error === undefined ? { level, message } : { level, message, error });
    },
  };
}

export const silentLogger: Logger = { log() {} };
