/**
 * What an engine step receives from whoever runs it (the engine process, a test, the CLI).
 * Engine code reports through this and checks `signal` between units of work (layers, batches).
 */
import type { SeriesPoint } from '../../preload/series.ts';

export type { SeriesPoint };

export interface Progress {
  phase: string;          // short machine name: 'load', 'evaluate:perplexity', 'quantize', ...
  done: number;
  total: number;
  message?: string;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface JobContext {
  signal: AbortSignal;
  progress(p: Progress): void;
  log(level: LogLevel, text: string): void;
  /** A point of a named series (a training curve), delivered to the job's watchers as it happens; optional. */
  point?(p: SeriesPoint): void;
  /** A folder the job may write to (outputs, temporary files). */
  workDir: string;
}

/** A context that discards reports: for tests and library use. */
export function quietContext(workDir: string, signal: AbortSignal = new AbortController().signal): JobContext {
  return { signal, workDir, progress() {}, log() {} };
}
