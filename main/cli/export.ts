/** `whittle export <model-or-output> --format gguf --type T --out F.gguf`: a model as a file for llama.cpp. */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { loadTokenizer } from '../engine/data/tokenizer.ts';
import { evaluateGguf } from '../engine/interop/gguf-evaluate.ts';
import { exportGguf, GGUF_TYPES, resolveModelPath, type GgufExportResult, type GgufExportType } from '../engine/interop/gguf-export.ts';
import type { CommandSpec, OptionValues } from './args.ts';
import { UsageError } from './args.ts';
import { formatBytes, renderFacts } from './format.ts';
import { EXIT_OK, type Output } from './output.ts';
import { onStopSignals } from './signals.ts';

export const exportCommand: CommandSpec = {
  name: 'export',
  summary: 'Export a Llama-family model (or an experiment output folder) as a GGUF file for llama.cpp.',
  positionals: [{ name: 'model', description: "an .onnx model, or an output folder holding model.onnx (its tokenizer.json is used)" }],
  options: [
    { name: 'format', type: 'string', value: 'F', choices: ['gguf'], description: 'the file format (gguf)' },
    { name: 'type', type: 'string', value: 'T', choices: [...GGUF_TYPES], description: 'weight type: f32, f16, q8_0, q4_0 or q4_1 (a 4-bit GPTQ/RTN model: q4_1 keeps its codes exactly, or f32/f16 dequantized)' },
    { name: 'out', type: 'string', value: 'FILE', description: 'the .gguf file to write (written under a temporary name, then renamed)' },
    { name: 'tokenizer', type: 'string', value: 'FILE', description: "the model's tokenizer.json (default: tokenizer.json beside the model)" },
    { name: 'evaluate', type: 'string', value: 'TEXT', description: 'then run the file in llama.cpp: perplexity on TEXT (blank-line paragraphs, the evaluation protocol of eval), decode speed, generations' },
    { name: 'samples', type: 'int', value: 'N', min: 1, description: 'with --evaluate: paragraphs scored (default 400)' },
    { name: 'prompt', type: 'string', value: 'TEXT', repeatable: true, description: 'with --evaluate: a prompt to continue greedily (may be repeated; default "Once upon a time")' },
  ],
  notes: [
    'A 4-bit, block-32, asymmetric MatMulNBits model (Whittle GPTQ or RTN) exports to Q4_1 without requantizing:',
    'Q4_1 stores x = d·q + m, and each block takes d = scale, m = −scale·zero point and the same codes.',
    'Examples:',
    '  whittle export stories-gptq/ --format gguf --type q4_1 --out stories-gptq.gguf',
    '  whittle export model.onnx --format gguf --type q8_0 --out model-q8_0.gguf --json',
    '  whittle export stories-gptq/ --format gguf --type q4_1 --out s.gguf --evaluate tinystories.txt --samples 100',
  ],
};

export function exportText(r: GgufExportResult): string {
  const counts = new Map<string, number>();
  for (const t of Object.values(r.tensorTypes)) counts.set(t, (counts.get(t) ?? 0) + 1);
  const facts: [string, string][] = [
    ['file', r.path],
    ['size', formatBytes(r.bytes)],
    ['type', r.type + (r.exactFromNBits ? ' (the MatMulNBits codes carried over exactly)' : '')],
    ['tensors', [...counts].map(([t, n]) => `${n} ${t}`).join(', ')],
  ];
  for (const n of r.notes) facts.push(['note', n]);
  return renderFacts(facts);
}

export async function runExport(model: string | undefined, options: OptionValues, out: Output): Promise<number> {
  if (!model) throw new UsageError('Give the model (.onnx) or output folder to export.');
  if (options.format !== undefined && options.format !== 'gguf') throw new UsageError('The only export format is gguf: --format gguf.');
  if (typeof options.out !== 'string') throw new UsageError('Give the file to write with --out FILE.gguf.');
  if (typeof options.type !== 'string') throw new UsageError(`Give the weight type with --type (${GGUF_TYPES.join(', ')}).`);
  const controller = new AbortController();
  const signals = onStopSignals(() => controller.abort(), () => process.exit(130));
  try {
    const r = await exportGguf(path.resolve(model), path.resolve(options.out), {
      type: options.type as GgufExportType,
      ...(typeof options.tokenizer === 'string' ? { tokenizerPath: path.resolve(options.tokenizer) } : {}),
      signal: controller.signal,
    });
    if (typeof options.evaluate !== 'string') {
      out.result(r, `${exportText(r)}\nexported in ${r.seconds.toFixed(1)} s`);
      return EXIT_OK;
    }
    out.status('evaluating in llama.cpp');
    const tokenizer = await loadTokenizer(typeof options.tokenizer === 'string' ? path.resolve(options.tokenizer) : path.join(path.dirname(await resolveModelPath(path.resolve(model))), 'tokenizer.json'));
    const protocol = { protocol: 'documents' as const, window: 256, maxSamples: typeof options.samples === 'number' ? options.samples : 400, minTokens: 16 };
    const prompts = Array.isArray(options.prompt) ? options.prompt : ['Once upon a time'];
    const e = await evaluateGguf(r.path, tokenizer, await readFile(path.resolve(options.evaluate), 'utf8'), { protocol, prompts, maxNewTokens: 64, signal: controller.signal });
    const lines = renderFacts([
      ['llama.cpp perplexity', `${e.perplexity.perplexity.toFixed(4)} (${e.perplexity.samples} samples, ${e.perplexity.predictedTokens} predicted tokens, ${e.perplexity.evalSeconds.toFixed(1)} s)`],
      ['decode speed', e.tokensPerSecond === null ? '—' : `${e.tokensPerSecond.toFixed(0)} tokens/s`],
      ...e.generations.map((g): [string, string] => [`“${g.prompt}”`, g.completion]),
    ]);
    out.result({ ...r, llamaCpp: e }, `${exportText(r)}\nexported in ${r.seconds.toFixed(1)} s\n${lines}`);
    return EXIT_OK;
  } finally {
    signals.dispose();
  }
}
