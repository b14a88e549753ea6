/**
 * The main-side log. Stacks and internal details go here, never to a client.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
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

/**
 * Appends to `file` (created with its folder) and also writes warnings and errors to stderr. The folder
 * is made without blocking the main process; lines logged before it exists are written once it does.
 */
export function fileLogger(file: string, options: { debug?: boolean } = {}): Logger & { close(): void } {
  let stream: WriteStream | null = null;
  let early: string[] | null = [];
  let closed = false;
  void mkdir(path.dirname(file), { recursive: true }).then(
    () => {
      stream = createWriteStream(file, { flags: 'a' });
      stream.on('error', () => { /* a log that cannot be written must not take the app down */ });
      for (const line of early ?? []) stream.write(line);
      early = null;
      if (closed) stream.end();
    },
    () => { early = null; /* no log file: stderr still has the warnings and errors */ },
  );
  const console = consoleLogger(options);
  return {
    log(level, message, error) {
      if (level === 'debug' && !options.debug) return;
      const line = `${new Date().toISOString()} ${level} ${message}${error === undefined ? '' : `\n${describe(error)}`}\n`;
      if (stream) stream.write(line);
      else early?.push(line);
      if (level === 'warn' || level === 'error') console.log(level, message, error);
    },
    close() {
      closed = true;
      stream?.end();
    },
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
