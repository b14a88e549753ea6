/** `whittle import <hf-folder> --out DIR`: a Hugging Face model folder as an ONNX model folder. */
import path from 'node:path';
import { importHuggingFace, type ImportResult } from '../engine/interop/import-hf.ts';
import { SUPPORTED_MODEL_TYPES } from '../engine/interop/hf-config.ts';
import type { CommandSpec, OptionValues } from './args.ts';
import { UsageError } from './args.ts';
import { formatBytes, formatCount, renderFacts } from './format.ts';
import { EXIT_OK, type Output } from './output.ts';
import { onStopSignals } from './signals.ts';

export const importCommand: CommandSpec = {
  name: 'import',
  summary: 'Import a Hugging Face model folder (config.json, safetensors, tokenizer) as an ONNX model.',
  positionals: [{ name: 'hf-folder', description: `a folder with config.json, model.safetensors (or shards with model.safetensors.index.json) and tokenizer.json; model types: ${SUPPORTED_MODEL_TYPES.join(', ')}` }],
  options: [
    { name: 'out', type: 'string', value: 'DIR', description: 'the output folder (must not exist, or be empty)' },
    { name: 'dtype', type: 'string', value: 'T', choices: ['fp32', 'fp16'], description: 'weights and computation in float32 (default) or float16' },
    { name: 'no-cache', type: 'boolean', description: 'no past_key_values / present inputs and outputs' },
  ],
  notes: [
    'Weights (F32, F16 or BF16) are converted one tensor at a time into model.onnx.data; tokenizer and config files are copied.',
    'Examples:',
    '  whittle import ./SmolLM2-135M --out smollm2-onnx',
    '  whittle import ./Qwen2.5-0.5B --out qwen-fp16 --dtype fp16 --json',
  ],
};

export function importText(r: ImportResult): string {
  return renderFacts([
    ['model', r.modelPath],
    ['model type', r.modelType],
    ['parameters', `${formatCount(r.parameters)} (${r.parameters.toLocaleString('en-US')})`],
    ['dtype', r.dtype],
    ['cache', r.cache ? 'past_key_values.N.key/value → present.N.key/value' : 'none'],
    ['embeddings', r.tiedEmbeddings ? 'tied (the LM head reads the embedding table)' : 'separate LM head'],
    ['files', r.files.map((f) => `${f.name} ${formatBytes(f.bytes)}`).join(', ')],
  ]);
}

export async function runImport(folder: string | undefined, options: OptionValues, out: Output): Promise<number> {
  if (!folder) throw new UsageError('Give the Hugging Face model folder to import.');
  if (typeof options.out !== 'string') throw new UsageError('Give the output folder with --out DIR.');
  const controller = new AbortController();
  const signals = onStopSignals(() => controller.abort(), () => process.exit(130));
  const started = Date.now();
  try {
    const r = await importHuggingFace(path.resolve(folder), path.resolve(options.out), {
      dtype: options.dtype === 'fp16' ? 'fp16' : 'fp32',
      cache: options['no-cache'] !== true,
      signal: controller.signal,
      onProgress: (p) => {
        if (p.phase === 'weights') out.status(`weights ${formatBytes(p.done)} of ${formatBytes(p.total)}  ${p.message ?? ''}`);
      },
    });
    const seconds = (Date.now() - started) / 1000;
    out.result({ ...r, seconds }, `${importText(r)}\nimported in ${seconds.toFixed(1)} s`);
    return EXIT_OK;
  } finally {
    signals.dispose();
  }
}
