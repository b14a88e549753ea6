/** Command specs of the experiment workspace's lineage, reports and bundles (see commands.ts). */
import type { CommandSpec } from './args.ts';

export const historyLineageCommand: CommandSpec = {
  name: 'history lineage',
  summary: 'Show the tree of models an experiment belongs to: the original, what was made from it, and from that.',
  positionals: [{ name: 'id', description: 'the experiment id (see `whittle history list`)' }],
  options: [],
  notes: ['A job whose input model is the output of an earlier experiment hangs under that experiment.'],
};

export const reportCommand: CommandSpec = {
  name: 'report',
  summary: 'Write a report of one experiment, or of several side by side: self-contained HTML, Markdown or CSV.',
  positionals: [{ name: 'id', description: 'experiment ids (see `whittle history list`); several make a comparison', variadic: true }],
  options: [
    { name: 'format', type: 'string', value: 'F', choices: ['html', 'md', 'csv'], description: 'html (charts inline, opens offline), md or csv (default html)' },
    { name: 'out', type: 'string', value: 'FILE', description: 'the file to write (default: print to stdout)' },
  ],
  notes: [
    'The HTML report has its styles and charts inline and loads nothing from the network.',
    'Examples:',
    '  whittle report 12 --out report.html',
    '  whittle report 12 14 15 --format md --out comparison.md',
  ],
};

export const historyExportCommand: CommandSpec = {
  name: 'history export',
  summary: 'Export experiments (recipes, metrics, logs, notes, tags, lineage) to one bundle file.',
  positionals: [{ name: 'id', description: 'experiment ids (see `whittle history list`)', variadic: true }],
  options: [
    { name: 'out', type: 'string', value: 'FILE', description: 'the bundle to write (required; a .whittle file)' },
    { name: 'with-outputs', type: 'boolean', description: 'also pack each experiment\'s output folder (models can be large)' },
  ],
  notes: ['Import it on another machine with `whittle history import FILE`.'],
};

export const historyImportCommand: CommandSpec = {
  name: 'history import',
  summary: 'Import a bundle written by `whittle history export` into this history.',
  positionals: [{ name: 'bundle', description: 'the bundle file' }],
  options: [],
  notes: ['Packed output folders go to the experiments folder of this home.', 'The bundle is checked in full first (format, checksums); a damaged or foreign bundle changes nothing.'],
};

export const WORKSPACE_COMMANDS: readonly CommandSpec[] = [historyLineageCommand, reportCommand, historyExportCommand, historyImportCommand];
