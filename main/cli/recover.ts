/**
 * `--recover-steps N [--recover-text F]` on `whittle prune` and `whittle quantize`: a distill step after the
 * compression step fine-tunes the compressed model with the original as teacher (preload/recover.ts).
 */
import path from 'node:path';
import { recoverStep, unrecoverableReason } from '../../preload/recover.ts';
import { UsageError, type OptionSpec, type OptionValues } from './args.ts';

export const RECOVER_OPTIONS: readonly OptionSpec[] = [
  { name: 'recover-steps', type: 'int', value: 'N', min: 1, description: 'then recover: distil the compressed model from the original for N optimizer steps (pruning masks kept; RTN/GPTQ weights stay on their grid)' },
  { name: 'recover-text', type: 'string', value: 'FILE', description: 'with --recover-steps: the training text of the recovery (default: --calib-text); best not the evaluation text' },
];

/** The recovery step the flags ask for, or null without --recover-steps. */
export function recoveryFromFlags(o: OptionValues, tokenizer: string | null, model: string, compression?: { type: string; method?: string; format?: string; quantize?: unknown }): Record<string, unknown> | null {
  if (o['recover-steps'] === undefined) {
    if (o['recover-text'] !== undefined) throw new UsageError('--recover-text only applies with --recover-steps N (how long to recover).');
    return null;
  }
  const why = compression ? unrecoverableReason(compression) : null;
  if (why) throw new UsageError(`--recover-steps does not apply here: ${why}`);
  const text = o['recover-text'] ?? o['calib-text'];
  if (text === undefined) throw new UsageError('--recover-steps needs a training text: give it with --recover-text FILE (or --calib-text FILE).', 'Use a text that does not overlap the evaluation text (--eval-text).');
  if (!tokenizer) throw new UsageError(`--recover-steps reads text, which needs the model's tokenizer: there is no tokenizer.json beside ${path.basename(model)}.`, 'Give it with --tokenizer FILE.');
  return recoverStep({ text: path.resolve(String(text)), steps: Number(o['recover-steps']), ...(compression ? { after: compression } : {}) }) as Record<string, unknown>;
}

/** What `--json` adds for a recovery: the distillation's losses, agreement and warnings (null without one). */
export function recoveryJson(details: Record<string, unknown>): Record<string, unknown> | null {
  const steps = Array.isArray(details.steps) ? details.steps as Record<string, unknown>[] : [];
  const d = steps.find((s) => s.type === 'distill');
  if (!d) return null;
  return {
    steps: d.steps, firstLoss: d.firstLoss, finalLoss: d.finalLoss, evalLossBefore: d.evalLossBefore ?? null, evalLossAfter: d.evalLossAfter ?? null,
    agreementBefore: d.agreementBefore ?? null, agreementAfter: d.agreementAfter ?? null, warnings: Array.isArray(d.warnings) ? d.warnings : [],
  };
}
