/**
 * Errors from calls arrive as ErrorShape-like values ({ code, message, details }); anything else is a bug
 * and is shown as INTERNAL. The UI maps codes to words; the message says what to do.
 */
import type { ErrorShape } from '../../preload/contract.ts';

type ErrorCode = ErrorShape['code'];

const TITLES: Record<ErrorCode, string> = {
  MODEL_PARSE: 'Not a readable ONNX model',
  UNSUPPORTED_MODEL: 'Model not supported',
  INVALID_INPUT: 'Please check the input',
  NOT_FOUND: 'Not found',
  IO: 'Could not read or write a file',
  OUT_OF_MEMORY: 'Out of memory',
  CANCELLED: 'Cancelled',
  UNAUTHORIZED: 'Not authorised',
  INTERNAL: 'Something went wrong',
};

const CODES = Object.keys(TITLES) as ErrorCode[];

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && (CODES as string[]).includes(value);
}

export function errorTitle(code: ErrorCode): string {
  return TITLES[code];
}

/** The title for one error: by its code, except a lost serve-mode connection (code IO) says so. */
export function errorTitleFor(error: ErrorShape): string {
  return error.details?.connection === true ? 'No connection to Whittle' : TITLES[error.code];
}

/** Any rejection value as an ErrorShape the UI can show. */
export function toUiError(e: unknown): ErrorShape {
  if (e && typeof e === 'object') {
    const o = e as { code?: unknown; message?: unknown; details?: unknown; error?: unknown; name?: unknown };
    if (o.name === 'ConnectionError' && typeof o.message === 'string') {
      return { code: isErrorCode(o.code) ? o.code : 'IO', message: o.message, details: { connection: true } };
    }
    if (isErrorCode(o.code) && typeof o.message === 'string') {
      const details = o.details && typeof o.details === 'object' ? (o.details as Record<string, unknown>) : undefined;
      return details ? { code: o.code, message: o.message, details } : { code: o.code, message: o.message };
    }
    if (o.error && typeof o.error === 'object') return toUiError(o.error);
    if (typeof o.message === 'string') return { code: 'INTERNAL', message: o.message };
  }
  return { code: 'INTERNAL', message: typeof e === 'string' ? e : 'An unexpected error occurred.' };
}

/** Extra hint for codes where the message alone may leave the user stuck. */
export function errorHint(code: ErrorCode, details?: Record<string, unknown>): string | null {
  if (details?.connection === true) return null;
  if (code === 'UNAUTHORIZED') return 'Open the URL printed by `whittle serve` again (it carries the access token).';
  if (code === 'OUT_OF_MEMORY') return 'Try a smaller window, fewer samples, or close other programs.';
  if (code === 'INTERNAL') return 'This is a bug in Whittle. The main log has the details.';
  return null;
}
