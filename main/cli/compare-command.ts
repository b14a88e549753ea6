/** The spec of `whittle history compare` (main/cli/compare.ts runs it). */
import type { CommandSpec } from './args.ts';

export const historyCompareCommand: CommandSpec = {
  name: 'history compare',
  summary: 'Compare 2 to 8 experiments: metrics side by side with changes against a baseline, recipe differences, and where numbers are not like for like.',
  positionals: [{ name: 'id', description: 'experiment ids (see `whittle history list`), 2 to 8', variadic: true }],
  options: [
    { name: 'baseline', type: 'int', value: 'ID', min: 1, description: 'the experiment the others are measured against (default: the first id)' },
  ],
  notes: [
    'A change is marked better or worse by the metric\'s direction (perplexity, KL, time and size: lower; speed, accuracy: higher);',
    '"≈" marks a timing inside the runs\' spread, "≠" a change between runs measured on other text, protocol or settings (see the notes).',
    'Examples:',
    '  whittle history compare 12 14 15',
    '  whittle history compare 12 14 15 --baseline 14 --json',
  ],
};
