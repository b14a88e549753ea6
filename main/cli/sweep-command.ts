/** `whittle sweep`: its arguments, options and help (main/cli/sweep.ts runs it). */
import type { CommandSpec } from './args.ts';

export const sweepCommand: CommandSpec = {
  name: 'sweep',
  summary: 'Run a recipe once per combination of a grid of values (a sweep), one after another, as one group.',
  positionals: [{ name: 'recipe', description: 'a recipe JSON file (not with --resume)', optional: true }],
  options: [
    { name: 'grid', type: 'string', value: 'KEY=V1,V2', repeatable: true, description: 'a dotted path into the recipe and the values it takes, e.g. steps.0.bits=4,8 (repeatable: the sweep is every combination)' },
    { name: 'name', type: 'string', value: 'NAME', description: 'a name for the group (default: "Sweep <keys> · <model>")' },
    { name: 'resume', type: 'int', value: 'GROUP', min: 1, description: 'queue again the combinations of sweep GROUP that are not done (interrupted, cancelled or failed)' },
  ],
  notes: [
    'Every combination is checked before anything runs; all invalid ones are listed and nothing starts.',
    'Relative paths in the recipe are read relative to the recipe file\'s folder. Ctrl-C cancels the sweep; resume it later with --resume.',
    'Example:',
    '  whittle sweep rtn.json --grid steps.0.method=rtn,gptq --grid steps.0.bits=4,8 --grid steps.0.blockSize=32,128',
  ],
};
