/** The table of `whittle` commands: their arguments, options and help. */
import type { CommandSpec } from './args.ts';

export const inspectCommand: CommandSpec = {
  name: 'inspect',
  summary: 'Describe an ONNX model: size, parameters, dtypes, operators, inputs/outputs, layout.',
  positionals: [{ name: 'model', description: 'an .onnx file (external data beside it is found automatically)' }],
  options: [],
  notes: ['Example:', '  whittle inspect model.onnx --json'],
};

export const evalCommand: CommandSpec = {
  name: 'eval',
  summary: 'Measure perplexity (and optionally speed) of a model; kept in the history.',
  positionals: [{ name: 'model', description: 'the .onnx model to evaluate (not with --recipe)', optional: true }],
  options: [
    { name: 'tokenizer', type: 'string', value: 'FILE', description: "the model's tokenizer.json (tokenizer_config.json beside it is read too)" },
    { name: 'text', type: 'string', value: 'FILE', description: 'a UTF-8 text file to measure perplexity on' },
    { name: 'protocol', type: 'string', value: 'P', choices: ['documents', 'stream'], description: 'documents: blank-line separated paragraphs (default); stream: one text cut into windows' },
    { name: 'window', type: 'int', value: 'L', description: 'window length in tokens (default 256)' },
    { name: 'samples', type: 'int', value: 'N', description: 'number of documents or windows evaluated (default 400)' },
    { name: 'speed', type: 'boolean', description: 'also time prefill and decode (implied by the three options below)' },
    { name: 'prompt-tokens', type: 'int', value: 'P', description: 'prompt length for the prefill timing (default 64)' },
    { name: 'decode-tokens', type: 'int', value: 'D', description: 'tokens generated for the decode timing (default 64)' },
    { name: 'threads', type: 'int', value: 'T', description: "onnxruntime intra-op threads (default: onnxruntime's choice)" },
    { name: 'name', type: 'string', value: 'NAME', description: 'a name for the experiment in the history' },
    { name: 'recipe', type: 'string', value: 'FILE', description: 'take everything from a recipe file instead of the options above' },
  ],
  notes: [
    'Ctrl-C cancels the evaluation (a second Ctrl-C quits at once).',
    'Examples:',
    '  whittle eval model.onnx --tokenizer tokenizer.json --text eval.txt --window 256 --samples 400',
    '  whittle eval model.onnx --tokenizer tokenizer.json --text eval.txt --speed --threads 4 --json',
    '  whittle eval --recipe evaluate.json',
  ],
};

export const runCommand: CommandSpec = {
  name: 'run',
  summary: 'Run a recipe (compression steps and evaluation) as an experiment.',
  positionals: [{ name: 'recipe', description: 'a recipe JSON file' }],
  options: [
    { name: 'name', type: 'string', value: 'NAME', description: "a name for the experiment (default: the recipe's name)" },
  ],
  notes: [
    'Relative paths in the recipe are read relative to the recipe file\'s folder.',
    'Unknown keys are rejected. Ctrl-C cancels the job (a second Ctrl-C quits at once).',
    'Example recipe:',
    '  { "model": { "path": "model.onnx" }, "tokenizer": { "path": "tokenizer.json" },',
    '    "steps": [{ "type": "quantize", "method": "rtn", "bits": 4 }],',
    '    "evaluation": { "perplexity": { "text": "eval.txt", "window": 256 } } }',
  ],
};

export const historyListCommand: CommandSpec = {
  name: 'history list',
  summary: 'List experiments, newest first.',
  positionals: [],
  options: [
    { name: 'search', type: 'string', value: 'TEXT', description: 'only experiments whose name or model path contains TEXT' },
    { name: 'status', type: 'string', value: 'S', choices: ['queued', 'running', 'done', 'failed', 'cancelled', 'interrupted'], description: 'only experiments with this status' },
    { name: 'limit', type: 'int', value: 'N', min: 1, max: 500, description: 'at most N experiments (default 100, at most 500)' },
  ],
};

export const historyShowCommand: CommandSpec = {
  name: 'history show',
  summary: 'Show one experiment: recipe, metrics, artefacts, log.',
  positionals: [{ name: 'id', description: 'the experiment id (see `whittle history list`)' }],
  options: [],
};

export const historyDeleteCommand: CommandSpec = {
  name: 'history delete',
  summary: 'Delete one experiment from the history (its output files stay on disk).',
  positionals: [{ name: 'id', description: 'the experiment id (see `whittle history list`)' }],
  options: [],
};

export const serveCommand: CommandSpec = {
  name: 'serve',
  summary: "Serve Whittle's interface to a browser on 127.0.0.1.",
  positionals: [],
  options: [
    { name: 'port', type: 'int', value: 'N', max: 65535, description: 'port to listen on (default 0: any free port)' },
    { name: 'open', type: 'boolean', description: 'open the URL in the default browser' },
  ],
  notes: ['Runs until Ctrl-C or SIGTERM. Only this machine can connect; use an SSH tunnel from elsewhere.'],
};

export const COMMANDS: readonly CommandSpec[] = [
  inspectCommand, evalCommand, runCommand, historyListCommand, historyShowCommand, historyDeleteCommand, serveCommand,
];
