/**
 * Messages between the main process (host) and an engine process (one per job). Both sides parse what
 * they receive with these schemas; anything else is a protocol error, reported as INTERNAL.
 */
import { z } from 'zod';
import { ErrorShape } from '../../preload/contract.ts';
import { Recipe } from '../../preload/recipe.ts';
import { SeriesPoint } from '../../preload/series.ts';

/** Any JavaScript number, including NaN and ±Infinity (a diverged perplexity is still a result). */
const AnyNumber = z.custom<number>((v) => typeof v === 'number', 'expected a number');

export const MetricMessage = z.strictObject({
  name: z.string().min(1),
  value: AnyNumber,
  unit: z.string(),
  subject: z.string().min(1),
});

export const ArtefactMessage = z.strictObject({
  kind: z.string().min(1),
  path: z.string().min(1),
  bytes: z.number().nonnegative().nullable(),
});

export const LogLevel = z.enum(['debug', 'info', 'warn', 'error']);

// ── host → engine ────────────────────────────────────────────────────────────────────────────────────

export const RunMessage = z.strictObject({
  type: z.literal('run'),
  jobId: z.string().min(1),
  experimentId: z.int().positive(),
  recipe: Recipe,
  workDir: z.string().min(1),
});
export const CancelMessage = z.strictObject({ type: z.literal('cancel') });

export const HostToEngine = z.discriminatedUnion('type', [RunMessage, CancelMessage]);
export type HostToEngine = z.infer<typeof HostToEngine>;
export type RunMessage = z.infer<typeof RunMessage>;

// ── engine → host ────────────────────────────────────────────────────────────────────────────────────

export const ProgressMessage = z.strictObject({
  type: z.literal('progress'),
  phase: z.string(),
  done: AnyNumber,
  total: AnyNumber,
  message: z.string().default(''),
});
export const LogMessage = z.strictObject({ type: z.literal('log'), level: LogLevel, text: z.string() });
/** A point of a named series (preload/series.ts), never coalesced. */
export const PointMessage = z.strictObject({ type: z.literal('point'), ...SeriesPoint.shape });
export const ResultMessage = z.strictObject({
  type: z.literal('result'),
  metrics: z.array(MetricMessage),
  artefacts: z.array(ArtefactMessage),
  details: z.record(z.string(), z.unknown()),
});
export const DoneMessage = z.strictObject({ type: z.literal('done') });
export const ErrorMessage = z.strictObject({ type: z.literal('error'), error: ErrorShape });

export const EngineToHost = z.discriminatedUnion('type', [ProgressMessage, LogMessage, PointMessage, ResultMessage, DoneMessage, ErrorMessage]);
export type EngineToHost = z.infer<typeof EngineToHost>;
export type EngineProgress = z.infer<typeof ProgressMessage>;
export type EngineResult = z.infer<typeof ResultMessage>;

function describe(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.join('.') || '(message)'}: ${i.message}`).join('; ');
}

/** What the host makes of a message from an engine process: a valid message, or an INTERNAL error. */
export function parseEngineMessage(raw: unknown): EngineToHost {
  const r = EngineToHost.safeParse(raw);
  if (r.success) return r.data;
  return { type: 'error', error: { code: 'INTERNAL', message: `The engine process sent an invalid message (${describe(r.error)}).` } };
}

/** What the engine makes of a message from the host; a malformed one is an INTERNAL error. */
export function parseHostMessage(raw: unknown): HostToEngine | { type: 'invalid'; error: ErrorShape } {
  const r = HostToEngine.safeParse(raw);
  if (r.success) return r.data;
  return { type: 'invalid', error: { code: 'INTERNAL', message: `The engine process received an invalid message (${describe(r.error)}).` } };
}
