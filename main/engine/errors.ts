/**
 * Typed errors that cross every boundary (engine process → main → renderer, CLI exit codes).
 * The renderer maps codes to words; stacks stay in the main log.
 */
export const ERROR_CODES = [
  'MODEL_PARSE',        // the file is not a readable ONNX model (foreign, truncated, corrupt)
  'UNSUPPORTED_MODEL',  // a valid model Whittle cannot handle (layout, op, dtype)
  'INVALID_INPUT',      // user input is wrong: recipe, paths, tokenizer, dataset
  'NOT_FOUND',          // a file, experiment or job that does not exist
  'IO',                 // reading or writing failed (permissions, full disk)
  'OUT_OF_MEMORY',
  'CANCELLED',
  'UNAUTHORIZED',       // serve-mode request without the right token, or a foreign IPC sender
  'INTERNAL',           // a bug: anything not covered above
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export interface ErrorShape {
  code: ErrorCode;
  message: string;
  details?: Record<string, unknown>;
}

export class WhittleError extends Error {
  readonly code: ErrorCode;
  readonly details?: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'WhittleError';
    this.code = code;
    this.details = details;
  }

  toShape(): ErrorShape {
    return this.details ? { code: this.code, message: this.message, details: this.details } : { code: this.code, message: this.message };
  }
}

export function isWhittleError(e: unknown): e is WhittleError {
  return e instanceof WhittleError;
}

/** Any thrown value as an ErrorShape; unknown errors become INTERNAL with their message. */
export function toErrorShape(e: unknown): ErrorShape {
  if (e instanceof WhittleError) return e.toShape();
  if (e && typeof e === 'object' && 'code' in e && 'message' in e && ERROR_CODES.includes((e as ErrorShape).code)) {
    const s = e as ErrorShape;
    return s.details ? { code: s.code, message: s.message, details: s.details } : { code: s.code, message: s.message };
  }
  const err = e as NodeJS.ErrnoException;
  if (err && typeof err === 'object' && typeof err.code === 'string') {
    if (err.code === 'ENOSPC') return { code: 'IO', message: 'The disk is full. Free some space and try again.', details: { path: err.path } };
    if (err.code === 'EACCES' || err.code === 'EPERM') {
      return { code: 'IO', message: `Permission denied: ${err.path ?? 'a file'}. Fix its permissions (or its folder's), or choose another location.`, details: { path: err.path } };
    }
    if (err.code === 'EROFS') {
      return { code: 'IO', message: `${err.path ?? 'The file'} is on a read-only disk. Choose a location on a writable disk.`, details: { path: err.path } };
    }
    if (err.code === 'ENOTDIR') {
      return { code: 'IO', message: `Part of the path ${err.path ?? 'given'} is a file, not a folder. Choose another location.`, details: { path: err.path } };
    }
    if (err.code === 'ENOENT') return { code: 'NOT_FOUND', message: `No such file: ${err.path ?? ''}`.trim(), details: { path: err.path } };
  }
  if (e instanceof RangeError && /allocation|memory/i.test(e.message)) return { code: 'OUT_OF_MEMORY', message: e.message };
  return { code: 'INTERNAL', message: e instanceof Error ? e.message : String(e) };
}

export function fromErrorShape(s: ErrorShape): WhittleError {
  return new WhittleError(s.code, s.message, s.details);
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new WhittleError('CANCELLED', 'The job was cancelled.');
}
