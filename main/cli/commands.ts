/** The table of `whittle` commands: their arguments, options and help. */
import { DISTILL, JOB_KINDS, methodsWithFlag, PRUNE_METHODS, QAT, QUANTIZE_METHOD_IDS, QUANTIZE_METHODS, TRAIN } from '../../preload/methods.ts';
import { FREEZE_ROLES, STRUCTURED_IMPORTANCES, TAYLOR_AGGREGATES } from '../../preload/recipe.ts';
import type { CommandSpec } from './args.ts';
import { historyCompareCommand } from './compare-command.ts';
import { exportCommand } from './export.ts';
import { importCommand } from './import.ts';
import { LAYOUT_OPTION } from './output-flags.ts';
import { RECOVER_OPTIONS } from './recover.ts';
import { sweepCommand } from './sweep-command.ts';
import { WORKSPACE_COMMANDS } from './workspace-commands.ts';

/** The help of a KD-QAT option, from its description. */
const qatHelp = (flag: string): string => QAT.options.find((o) => o.flag === flag)?.help ?? '';

/** "rtn, gptq": the methods a flag applies to, from their descriptions. */
const methodList = (flag: string): string => methodsWithFlag(flag).join(', ');

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
    { name: 'tokenizer', type: 'string', value: 'FILE', description: "with --text: the model's tokenizer.json (default: tokenizer.json beside the model; tokenizer_config.json beside it is read too)" },
    { name: 'text', type: 'string', value: 'FILE', description: 'a UTF-8 text file to measure perplexity on (without it: footprint, and speed when asked)' },
    { name: 'protocol', type: 'string', value: 'P', choices: ['documents', 'stream'], description: 'documents: blank-line separated paragraphs (default); stream: one text cut into windows' },
    { name: 'window', type: 'int', value: 'L', description: 'window length in tokens (default 256)' },
    { name: 'samples', type: 'int', value: 'N', description: 'number of documents or windows evaluated (default 400)' },
    { name: 'labels', type: 'string', value: 'FILE', description: 'labelled data (TSV, CSV or JSONL with a text and a label column): accuracy and macro-F1 of a classifier on its held-out share' },
    { name: 'text-column', type: 'string', value: 'C', description: 'with --labels: the text column (default: the first of sentence, text, content, message)' },
    { name: 'label-column', type: 'string', value: 'C', description: 'with --labels: the label column (default: the first of label, labels, class, category)' },
    { name: 'held-out', type: 'string', value: 'H', description: 'with --labels: the share (below 1) or count of examples scored, drawn with --seed (default 0.2, as `whittle train --labels` holds out)' },
    { name: 'seed', type: 'int', value: 'S', description: 'with --labels: seed of the held-out draw (default 0)' },
    { name: 'template', type: 'string', value: 'T', description: 'with --labels, a decoder: the prompt, {text} where the example goes, \\n a newline (default "{text}\\nAnswer:")' },
    { name: 'verbalizers', type: 'string', value: 'V', description: 'with --labels, a decoder: the answer words per class, in class order ("negative,positive") or by label ("0=negative,1=positive"); default the labels as written' },
    { name: 'length-normalize', type: 'boolean', description: 'with --labels, a decoder: compare answers by log-probability per token instead of in total' },
    { name: 'speed', type: 'boolean', description: 'also time prefill and decode (implied by the four options below)' },
    { name: 'prompt-tokens', type: 'int', value: 'P', description: 'prompt length for the prefill timing (default 64)' },
    { name: 'decode-tokens', type: 'int', value: 'D', description: 'tokens generated for the decode timing (default 64)' },
    { name: 'threads', type: 'int', value: 'T', description: "onnxruntime intra-op threads (default: onnxruntime's choice)" },
    { name: 'repeats', type: 'int', value: 'R', description: 'timed runs after one warm-up; the median and the min–max are reported (default 5)' },
    { name: 'no-cache', type: 'boolean', description: 'measure again even when an earlier evaluation of the same model with the same settings could answer' },
    { name: 'name', type: 'string', value: 'NAME', description: 'a name for the experiment in the history' },
    { name: 'recipe', type: 'string', value: 'FILE', description: 'take everything from a recipe file instead of the options above' },
  ],
  notes: [
    'Ctrl-C cancels the evaluation (a second Ctrl-C quits at once).',
    'Examples:',
    '  whittle eval model.onnx --tokenizer tokenizer.json --text eval.txt --window 256 --samples 400',
    '  whittle eval model.onnx --speed --threads 4 --json          (speed and footprint: no text, no tokenizer)',
    '  whittle eval bert/model.onnx --labels sst2.tsv --held-out 0.2   (accuracy and macro-F1 of a classifier)',
    '  whittle eval model.onnx --labels sst2.tsv --template "Review: {text}\\nSentiment:" --verbalizers negative,positive   (a decoder on labelled prompts)',
    '  whittle eval --recipe evaluate.json',
  ],
};

export const runCommand: CommandSpec = {
  name: 'run',
  summary: 'Run a recipe (compression steps and evaluation) as an experiment.',
  positionals: [{ name: 'recipe', description: 'a recipe JSON file' }],
  options: [
    { name: 'name', type: 'string', value: 'NAME', description: "a name for the experiment (default: the recipe's name)" },
    { name: 'no-cache', type: 'boolean', description: 'measure everything again; the evaluation cache is not read' },
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

export const quantizeCommand: CommandSpec = {
  name: 'quantize',
  summary: `Quantize a model (${QUANTIZE_METHODS.map((d) => d.short).join(', ')}) and compare the result with the original.`,
  positionals: [{ name: 'model', description: 'the .onnx model to quantize' }],
  options: [
    { name: 'method', type: 'string', value: 'M', choices: [...QUANTIZE_METHOD_IDS], description: `${QUANTIZE_METHOD_IDS[0]} (default), ${QUANTIZE_METHOD_IDS.slice(1).join(', ')}` },
    { name: 'bits', type: 'string', value: 'B', choices: ['2', '4', '8'], description: `${methodList('bits')}: bits per weight: 2, 4 or 8 (default 4; qat: 4 or 8)` },
    { name: 'block-size', type: 'int', value: 'N', description: `${methodList('block-size')}: weights per block along K, a power of two from 16 to 256 (default 32)` },
    { name: 'symmetric', type: 'boolean', description: `${methodList('symmetric')}: symmetric quantization (no zero points)` },
    { name: 'accuracy-level', type: 'int', value: 'N', max: 4, description: `${methodList('accuracy-level')}: MatMulNBits accuracy_level: 0 unset, 1 fp32, 2 fp16, 3 bf16, 4 int8 (default 4, onnxruntime's fast CPU kernel)` },
    {
      name: 'format', type: 'string', value: 'F', choices: ['matmulnbits', 'qdq', 'matmulinteger', 'dynamic-quantize-matmul'],
      description: 'rtn, gptq: matmulnbits (default) or qdq (DequantizeLinear → MatMul); int8-dynamic: matmulinteger (default) or dynamic-quantize-matmul',
    },
    { name: '8bit', type: 'string', value: 'REGEX', repeatable: true, description: `${methodList('8bit')}: weights whose name matches REGEX get 8 bits (mixed precision; may be repeated)` },
    { name: 'keep', type: 'string', value: 'REGEX', repeatable: true, description: 'keep weights whose name matches REGEX in full precision (may be repeated)' },
    { name: 'calib-text', type: 'string', value: 'FILE', description: `${methodList('calib-text')} (required): a UTF-8 calibration text; best not the evaluation text` },
    { name: 'calib-samples', type: 'int', value: 'N', min: 1, max: 4096, description: `${methodList('calib-samples')}: calibration sequences N (default 128)` },
    { name: 'calib-len', type: 'int', value: 'L', min: 8, max: 8192, description: `${methodList('calib-len')}: tokens per calibration sequence L (default 256)` },
    { name: 'seed', type: 'int', value: 'S', description: `${methodList('seed')}: seed for drawing the calibration sequences, or of the training's data order (default 0)` },
    { name: 'act-order', type: 'boolean', description: `${methodList('act-order')}: quantize input features in order of decreasing Hessian diagonal (act-order)` },
    { name: 'one-pass', type: 'boolean', description: `${methodList('one-pass')}: calibrate every layer in one pass over the original model, not level by level on the already-quantized model (faster, less accurate)` },
    { name: 'percdamp', type: 'string', value: 'X', description: `${methodList('percdamp')}: dampening added to the Hessian's diagonal, a fraction of its mean (default 0.01)` },
    { name: 'range', type: 'string', value: 'R', choices: ['minmax', 'percentile', 'entropy'], description: `${methodList('range')}: activation range from minmax (default), percentile or entropy (KL)` },
    { name: 'percentile', type: 'string', value: 'P', description: `${methodList('percentile')} with --range percentile: the percentile of |x| kept (default 99.999)` },
    { name: 'activation-type', type: 'string', value: 'T', choices: ['uint8', 'int8'], description: `${methodList('activation-type')}: activation type, uint8 (default, asymmetric) or int8 (symmetric)` },
    { name: 'exclude', type: 'string', value: 'REGEX', repeatable: true, description: `${methodList('exclude')}: leave nodes whose name matches REGEX in float (may be repeated)` },
    { name: 'per-channel', type: 'boolean', description: `${methodList('per-channel')}: one weight scale per output channel (the default)` },
    { name: 'no-per-channel', type: 'boolean', description: `${methodList('no-per-channel')}: one weight scale per tensor` },
    { name: 'keep-io-types', type: 'boolean', description: `${methodList('keep-io-types')}: keep float32 graph inputs and outputs (the default)` },
    { name: 'no-keep-io-types', type: 'boolean', description: `${methodList('no-keep-io-types')}: make the graph inputs and outputs float16 too` },
    { name: 'freeze-roles', type: 'string', value: 'R,R', description: `${methodList('freeze-roles')}: ${qatHelp('freeze-roles')} (roles: ${FREEZE_ROLES.join(', ')})` },
    { name: 'text', type: 'string', value: 'FILE', description: `${methodList('text')} (required): ${qatHelp('text')}` },
    { name: 'steps', type: 'int', value: 'N', min: 1, description: `${methodList('steps')} (required): optimizer steps of the training` },
    { name: 'batch', type: 'int', value: 'B', min: 1, description: `${methodList('batch')}: ${qatHelp('batch')}` },
    { name: 'len', type: 'int', value: 'T', min: 8, description: `${methodList('len')}: ${qatHelp('len')}` },
    { name: 'lr', type: 'string', value: 'X', description: `${methodList('lr')}: ${qatHelp('lr')}` },
    { name: 'temperature', type: 'string', value: 'T', description: `${methodList('temperature')}: ${qatHelp('temperature')}` },
    { name: 'alpha', type: 'string', value: 'A', description: `${methodList('alpha')}: ${qatHelp('alpha')}` },
    { name: 'out', type: 'string', value: 'DIR', description: "the output folder (default: a folder of the experiment in Whittle's home)" },
    LAYOUT_OPTION,
    { name: 'eval-text', type: 'string', value: 'FILE', description: 'a UTF-8 text to compare original and result on (perplexity, KL, top-1 agreement)' },
    { name: 'tokenizer', type: 'string', value: 'FILE', description: "the model's tokenizer.json (default: tokenizer.json beside the model)" },
    { name: 'window', type: 'int', value: 'L', description: 'with --eval-text: document length in tokens (default 256)' },
    { name: 'samples', type: 'int', value: 'N', description: 'with --eval-text: number of documents (default 400)' },
    { name: 'speed', type: 'boolean', description: 'also time prefill and decode of both models, interleaved in this job (original, result, original, …)' },
    { name: 'threads', type: 'int', value: 'T', description: "onnxruntime intra-op threads for the speed timing (default: onnxruntime's choice)" },
    { name: 'repeats', type: 'int', value: 'R', description: 'with --speed: timed runs of each model after one warm-up of each (default 5)' },
    { name: 'no-cache', type: 'boolean', description: 'measure everything again; the evaluation cache is not read (a comparison never takes speed from it anyway)' },
    { name: 'name', type: 'string', value: 'NAME', description: 'a name for the experiment in the history' },
    ...RECOVER_OPTIONS,
  ],
  notes: [
    'Methods:',
    ...QUANTIZE_METHODS.map((d) => `  ${d.method.padEnd(13)}${d.summary}`),
    'A flag that does not apply to the chosen method is an error (exit 2), naming the flag.',
    'The perplexity protocol is "documents": blank-line separated paragraphs, BOS + tokens truncated to L.',
    'Ctrl-C cancels the job; nothing half-written is left in the output folder.',
    'Examples:',
    '  whittle quantize model.onnx --bits 4 --block-size 32 --eval-text eval.txt',
    '  whittle quantize model.onnx --method gptq --bits 4 --calib-text calib.txt --calib-samples 128 --calib-len 256 --act-order',
    '  whittle quantize model.onnx --method int8-static --calib-text calib.txt --range percentile --percentile 99.99',
    '  whittle quantize model.onnx --method fp16 --out model-fp16 --eval-text eval.txt --speed --json',
    '  whittle quantize model.onnx --method qat --bits 4 --freeze-roles o,v --text train.txt --steps 200 --eval-text eval.txt',
    '  whittle quantize model.onnx --method gptq --bits 4 --calib-text calib.txt --recover-steps 100 --recover-text train.txt',
  ],
};

export const pruneCommand: CommandSpec = {
  name: 'prune',
  summary: `Prune a model (${PRUNE_METHODS.map((d) => d.short).join(', ')}) and compare the result with the original.`,
  positionals: [{ name: 'model', description: 'the .onnx model to prune' }],
  options: [
    { name: 'method', type: 'string', value: 'M', choices: ['magnitude', 'wanda', 'sparsegpt'], description: 'magnitude (default), wanda or sparsegpt (unstructured / N:M)' },
    { name: 'sparsity', type: 'string', value: 'S', description: 'fraction of the weights set to zero, between 0 and 1 (default 0.5)' },
    { name: 'pattern', type: 'string', value: 'N:M', description: 'N:M sparsity: keep N of every M consecutive inputs (2:4, 4:8)' },
    { name: 'scope', type: 'string', value: 'S', choices: ['layer', 'global'], description: 'magnitude: layer (every weight the same sparsity, default) or global (smallest of all weights)' },
    { name: 'allocation', type: 'string', value: 'A', choices: ['uniform', 'owl'], description: 'uniform (default) or owl: blocks with more activation outliers pruned less, same overall sparsity (needs --calib-text)' },
    { name: 'quantize-bits', type: 'string', value: 'B', choices: ['2', '4', '8'], description: 'sparsegpt: also quantize the kept weights in the same sweep (MatMulNBits)' },
    { name: 'block-size', type: 'int', value: 'N', description: 'with --quantize-bits: weights per quantization block along K (default 32)' },
    { name: 'percdamp', type: 'string', value: 'X', description: "sparsegpt: dampening added to the Hessian's diagonal (default 0.01)" },
    { name: 'one-pass', type: 'boolean', description: 'wanda, sparsegpt: calibrate in one pass over the original model, not block by block on the already-pruned one' },
    { name: 'structured', type: 'string', value: 'T', choices: ['heads', 'neurons', 'layers'], description: 'structured pruning: remove whole attention heads, MLP neurons or blocks (the graph really shrinks)' },
    { name: 'ratio', type: 'string', value: 'R', description: 'with --structured: the fraction removed' },
    { name: 'count', type: 'int', value: 'N', min: 1, description: 'with --structured: how many are removed' },
    { name: 'importance', type: 'string', value: 'I', choices: [...STRUCTURED_IMPORTANCES], description: 'with --structured: how parts are ranked (default magnitude; the others need --calib-text)' },
    { name: 'taylor-aggregate', type: 'string', value: 'A', choices: [...TAYLOR_AGGREGATES], description: "with --importance taylor: group |Σ w·g| over each part (default) or element Σ |w·g|" },
    { name: 'keep', type: 'string', value: 'REGEX', repeatable: true, description: 'leave weights whose name matches REGEX dense (may be repeated)' },
    { name: 'calib-text', type: 'string', value: 'FILE', description: 'a UTF-8 calibration text (wanda, sparsegpt, owl, every importance but magnitude); best not the evaluation text' },
    { name: 'calib-samples', type: 'int', value: 'N', min: 1, max: 4096, description: 'calibration sequences N (default 128)' },
    { name: 'calib-len', type: 'int', value: 'L', min: 8, max: 8192, description: 'tokens per calibration sequence L (default 256)' },
    { name: 'seed', type: 'int', value: 'S', description: 'seed for drawing the calibration sequences (default 0)' },
    { name: 'out', type: 'string', value: 'DIR', description: "the output folder (default: a folder of the experiment in Whittle's home)" },
    LAYOUT_OPTION,
    { name: 'eval-text', type: 'string', value: 'FILE', description: 'a UTF-8 text to compare original and result on (perplexity, KL, top-1 agreement)' },
    { name: 'tokenizer', type: 'string', value: 'FILE', description: "the model's tokenizer.json (default: tokenizer.json beside the model)" },
    { name: 'window', type: 'int', value: 'L', description: 'with --eval-text: document length in tokens (default 256)' },
    { name: 'samples', type: 'int', value: 'N', description: 'with --eval-text: number of documents (default 400)' },
    { name: 'speed', type: 'boolean', description: 'also time prefill and decode of both models in this job' },
    { name: 'threads', type: 'int', value: 'T', description: "onnxruntime intra-op threads for the speed timing (default: onnxruntime's choice)" },
    { name: 'name', type: 'string', value: 'NAME', description: 'a name for the experiment in the history' },
    ...RECOVER_OPTIONS,
  ],
  notes: [
    'Methods:',
    ...PRUNE_METHODS.map((d) => `  ${(d.method ?? '').padEnd(13)}${d.summary}`),
    'Unstructured zeros do not shrink the ONNX file nor speed up onnxruntime on CPU: compare "Size compressed".',
    'Examples:',
    '  whittle prune model.onnx --method wanda --sparsity 0.5 --calib-text calib.txt --eval-text eval.txt',
    '  whittle prune model.onnx --method sparsegpt --pattern 2:4 --calib-text calib.txt',
    '  whittle prune model.onnx --method sparsegpt --sparsity 0.5 --quantize-bits 4 --block-size 32 --calib-text calib.txt',
    '  whittle prune model.onnx --structured layers --count 2 --importance block-influence --calib-text calib.txt --speed',
    '  whittle prune model.onnx --structured neurons --ratio 0.25 --importance taylor --calib-text calib.txt --calib-samples 32',
    '  whittle prune model.onnx --method sparsegpt --sparsity 0.5 --calib-text calib.txt --recover-steps 100 --recover-text train.txt',
  ],
};

/** The help of a train option, from the step's description. */
const trainHelp = (flag: string): string => TRAIN.options.find((o) => o.flag === flag)?.help ?? '';

export const trainCommand: CommandSpec = {
  name: 'train',
  summary: 'Fine-tune a model on a text (next-token loss, AdamW) and compare the result with the original.',
  positionals: [{ name: 'model', description: 'the .onnx model to train (not with --resume)', optional: true }],
  options: [
    { name: 'text', type: 'string', value: 'FILE', description: trainHelp('text') },
    { name: 'labels', type: 'string', value: 'FILE', description: trainHelp('labels') },
    { name: 'text-column', type: 'string', value: 'C', description: trainHelp('text-column') },
    { name: 'label-column', type: 'string', value: 'C', description: trainHelp('label-column') },
    { name: 'held-out', type: 'string', value: 'H', description: trainHelp('held-out') },
    { name: 'teacher', type: 'string', value: 'MODEL', description: trainHelp('teacher') },
    { name: 'temperature', type: 'string', value: 'T', description: trainHelp('temperature') },
    { name: 'alpha', type: 'string', value: 'A', description: trainHelp('alpha') },
    { name: 'tokenizer', type: 'string', value: 'FILE', description: "the model's tokenizer.json (default: tokenizer.json beside the model)" },
    { name: 'steps', type: 'int', value: 'N', min: 1, description: trainHelp('steps') },
    { name: 'epochs', type: 'string', value: 'E', description: trainHelp('epochs') },
    { name: 'batch', type: 'int', value: 'B', min: 1, description: trainHelp('batch') },
    { name: 'len', type: 'int', value: 'L', min: 8, description: trainHelp('len') },
    { name: 'accumulate', type: 'int', value: 'N', min: 1, description: trainHelp('accumulate') },
    { name: 'lr', type: 'string', value: 'X', description: trainHelp('lr') },
    { name: 'warmup', type: 'int', value: 'N', description: trainHelp('warmup') },
    { name: 'weight-decay', type: 'string', value: 'X', description: trainHelp('weight-decay') },
    { name: 'clip-norm', type: 'string', value: 'X', description: trainHelp('clip-norm') },
    { name: 'freeze', type: 'string', value: 'PATTERN|ROLE', repeatable: true, description: `${trainHelp('freeze')} (may be repeated)` },
    { name: 'keep-sparsity', type: 'boolean', description: trainHelp('keep-sparsity') },
    { name: 'no-keep-sparsity', type: 'boolean', description: 'let weights that are zero at the start change' },
    { name: 'eval-text', type: 'string', value: 'FILE', description: `${trainHelp('eval-text')}: perplexity, KL and top-1 agreement of original and result` },
    { name: 'eval-every', type: 'int', value: 'N', min: 1, description: trainHelp('eval-every') },
    { name: 'seed', type: 'int', value: 'S', description: trainHelp('seed') },
    { name: 'checkpoint-every', type: 'int', value: 'N', min: 1, description: trainHelp('checkpoint-every') },
    { name: 'resume', type: 'int', value: 'ID', min: 1, description: `${trainHelp('resume')} (the experiment's own recipe; no other run flags)` },
    { name: 'out', type: 'string', value: 'DIR', description: "the output folder (default: a folder of the experiment in Whittle's home)" },
    LAYOUT_OPTION,
    { name: 'window', type: 'int', value: 'L', description: 'with --eval-text: document length in tokens for the comparison (default 256)' },
    { name: 'samples', type: 'int', value: 'N', description: 'with --eval-text: number of documents for the comparison (default 400)' },
    { name: 'speed', type: 'boolean', description: 'also time prefill and decode of both models in this job' },
    { name: 'threads', type: 'int', value: 'T', description: "onnxruntime intra-op threads for the speed timing (default: onnxruntime's choice)" },
    { name: 'name', type: 'string', value: 'NAME', description: 'a name for the experiment in the history' },
  ],
  notes: [
    TRAIN.summary,
    `Freeze roles: ${FREEZE_ROLES.join(', ')}; anything with * ? . or / is a pattern on weight names ("*.layers.0.*").`,
    'The trained model is written in the input\'s own layout (with its KV cache inputs if it had them).',
    'Ctrl-C cancels after writing a checkpoint; `whittle train --resume ID` continues the same curve.',
    'Examples:',
    '  whittle train model.onnx --text train.txt --steps 200 --batch 8 --len 256 --lr 3e-4 --eval-text eval.txt',
    '  whittle train pruned/model.onnx --text train.txt --epochs 1 --freeze embedding --freeze lm_head --json',
    '  whittle train bert/model.onnx --labels sst2.tsv --held-out 0.2 --epochs 3 --batch 16 --len 64 --lr 5e-5',
    '  whittle train small-bert.onnx --labels spam.csv --text-column text --label-column label --teacher bert.onnx --temperature 2 --alpha 0.5 --steps 300',
    '  whittle train --resume 12',
  ],
};

/** The help of a distill option, from the step's description. */
const distillHelp = (flag: string): string => DISTILL.options.find((o) => o.flag === flag)?.help ?? '';

export const distillCommand: CommandSpec = {
  name: 'distill',
  summary: "Distil a student from a teacher (some of its blocks, or your own model) on a text, and compare teacher and student.",
  positionals: [],
  options: [
    { name: 'teacher', type: 'string', value: 'FILE', description: 'the teacher .onnx model (not with --resume)' },
    { name: 'student-blocks', type: 'string', value: 'LIST', description: distillHelp('student-blocks') },
    { name: 'student', type: 'string', value: 'FILE', description: distillHelp('student') },
    { name: 'text', type: 'string', value: 'FILE', description: distillHelp('text') },
    { name: 'tokenizer', type: 'string', value: 'FILE', description: "the teacher's tokenizer.json (default: tokenizer.json beside the teacher)" },
    { name: 'temperature', type: 'string', value: 'T', description: distillHelp('temperature') },
    { name: 'alpha', type: 'string', value: 'A', description: distillHelp('alpha') },
    { name: 'reverse-kl', type: 'boolean', description: distillHelp('reverse-kl') },
    { name: 'hidden-loss', type: 'string', value: 'X', description: distillHelp('hidden-loss') },
    { name: 'topk-cache', type: 'int', value: 'K', min: 1, description: distillHelp('topk-cache') },
    { name: 'lora-rank', type: 'int', value: 'R', min: 1, description: distillHelp('lora-rank') },
    { name: 'lora-dropout', type: 'string', value: 'P', description: distillHelp('lora-dropout') },
    { name: 'steps', type: 'int', value: 'N', min: 1, description: distillHelp('steps') },
    { name: 'epochs', type: 'string', value: 'E', description: distillHelp('epochs') },
    { name: 'batch', type: 'int', value: 'B', min: 1, description: distillHelp('batch') },
    { name: 'len', type: 'int', value: 'L', min: 8, description: distillHelp('len') },
    { name: 'accumulate', type: 'int', value: 'N', min: 1, description: distillHelp('accumulate') },
    { name: 'lr', type: 'string', value: 'X', description: distillHelp('lr') },
    { name: 'warmup', type: 'int', value: 'N', description: distillHelp('warmup') },
    { name: 'weight-decay', type: 'string', value: 'X', description: distillHelp('weight-decay') },
    { name: 'clip-norm', type: 'string', value: 'X', description: distillHelp('clip-norm') },
    { name: 'eval-text', type: 'string', value: 'FILE', description: distillHelp('eval-text') },
    { name: 'eval-every', type: 'int', value: 'N', min: 1, description: distillHelp('eval-every') },
    { name: 'seed', type: 'int', value: 'S', description: distillHelp('seed') },
    { name: 'checkpoint-every', type: 'int', value: 'N', min: 1, description: distillHelp('checkpoint-every') },
    { name: 'resume', type: 'int', value: 'ID', min: 1, description: `${distillHelp('resume')} (the experiment's own recipe; no other run flags)` },
    { name: 'out', type: 'string', value: 'DIR', description: "the output folder (default: a folder of the experiment in Whittle's home)" },
    LAYOUT_OPTION,
    { name: 'window', type: 'int', value: 'L', description: 'with --eval-text: document length in tokens for the comparison (default 256)' },
    { name: 'samples', type: 'int', value: 'N', description: 'with --eval-text: number of documents for the comparison (default 400)' },
    { name: 'speed', type: 'boolean', description: 'also time prefill and decode of teacher and student in this job' },
    { name: 'threads', type: 'int', value: 'T', description: "onnxruntime intra-op threads for the speed timing (default: onnxruntime's choice)" },
    { name: 'name', type: 'string', value: 'NAME', description: 'a name for the experiment in the history' },
  ],
  notes: [
    DISTILL.summary,
    'Loss: α · KL(teacher_T ‖ student_T) · T² + (1 − α) · cross-entropy on the text (defaults T = 2, α = 0.5).',
    'Checked before any work: student blocks outside the teacher\'s, a student with another vocabulary. An evaluation text inside the training text is a warning listed with the result.',
    "The student is written in the teacher's layout (KV cache, genai_config.json / config.json updated).",
    'Ctrl-C cancels after writing a checkpoint; `whittle distill --resume ID` continues the same curve.',
    'Examples:',
    '  whittle distill --teacher model.onnx --student-blocks 0,2,4 --text train.txt --steps 200 --eval-text eval.txt',
    '  whittle distill --teacher model.onnx --student small.onnx --text train.txt --epochs 1 --temperature 4 --alpha 0.9 --topk-cache 32',
    '  whittle distill --resume 12',
  ],
};

export const historyListCommand: CommandSpec = {
  name: 'history list',
  summary: 'List experiments: pinned first, then newest first (or best match first with --search).',
  positionals: [],
  options: [
    { name: 'search', type: 'string', value: 'TEXT', description: 'only experiments whose name, kind, model, notes or tags have words starting with every word of TEXT' },
    { name: 'tag', type: 'string', value: 'T', repeatable: true, description: 'only experiments tagged T (repeat for several: all must be present)' },
    { name: 'kind', type: 'string', value: 'K', choices: JOB_KINDS, description: 'only experiments of this kind' },
    { name: 'status', type: 'string', value: 'S', choices: ['queued', 'running', 'done', 'failed', 'cancelled', 'interrupted'], description: 'only experiments with this status' },
    { name: 'starred', type: 'boolean', description: 'only starred experiments' },
    { name: 'limit', type: 'int', value: 'N', min: 1, max: 500, description: 'at most N experiments (default 100, at most 500)' },
    { name: 'offset', type: 'int', value: 'N', min: 0, description: 'skip the first N matches (with --limit: one page at a time)' },
  ],
  notes: [
    'Examples:',
    '  whittle history list --search "gptq 4b"',
    '  whittle history list --tag shipping --kind quantize --starred --json',
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
    { name: 'root', type: 'string', value: 'DIR', repeatable: true, description: 'a folder the browser may read models and texts from and write outputs to (repeatable; default: your home folder; the history folder is always included)' },
  ],
  notes: [
    'Runs until Ctrl-C or SIGTERM. Only this machine can connect; use an SSH tunnel from elsewhere.',
    'Every path a call names must lie inside a --root folder (symbolic links are followed); others are refused.',
  ],
};

export const COMMANDS: readonly CommandSpec[] = [
  inspectCommand, importCommand, exportCommand, evalCommand, runCommand, quantizeCommand, pruneCommand, trainCommand, distillCommand, historyListCommand, historyShowCommand, historyDeleteCommand, historyCompareCommand, ...WORKSPACE_COMMANDS, sweepCommand, serveCommand,
];
