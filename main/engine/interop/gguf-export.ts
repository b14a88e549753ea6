/**
 * ONNX Llama-family decoder → GGUF file for llama.cpp.
 *
 *   float model:        f32 | f16 | q8_0 | q4_0 | q4_1 (matrices; llama.cpp's reference quantizers);
 *                        norms stay F32; a matrix whose rows are not whole blocks of 32 is written F16.
 *   MatMulNBits model:  q4_1 — each 4-bit, block-32 weight maps onto Q4_1 exactly (d = s, m = −s·z; only
 *                        d and m round to f16), the float weights (embedding, norms, untouched matrices)
 *                        stay as stored; a quantized matrix that cannot be Q4_1 (K not a multiple of 32,
 *                        other bit widths or block sizes) is written F32, dequantized exactly.
 *                        f32 | f16 — every weight dequantized as onnxruntime does.
 *                        Other types would requantize what GPTQ chose, so they are refused.
 *
 * Tensors are produced and written one at a time (gguf-writer.ts), the file under a temporary name then
 * renamed.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { WhittleError } from '../errors.ts';
import { DataType } from '../onnx/dtype.ts';
import { readModel } from '../onnx/reader.ts';
import { readTensorFloat32 } from '../onnx/tensor-data.ts';
import { transpose2d } from '../quantize/layout.ts';
import { planLlama, readNBits, type LlamaPlan, type LlamaTensorPlan } from './gguf-llama.ts';
import { dequantizeNBitsRows, encodeRows, nbitsToQ4_1 } from './gguf-quant.ts';
import { readGgufVocabulary, vocabularyMetadata } from './gguf-tokenizer.ts';
import { GGUF_DEFAULT_ALIGNMENT, GgmlType, ggmlTypeName, kv, writeGguf, type GgufKv, type GgufTensor } from './gguf-writer.ts';

export const GGUF_TYPES = ['f32', 'f16', 'q8_0', 'q4_0', 'q4_1'] as const;
export type GgufExportType = (typeof GGUF_TYPES)[number];

const TYPE_OF: Record<GgufExportType, GgmlType> = {
  f32: GgmlType.F32, f16: GgmlType.F16, q8_0: GgmlType.Q8_0, q4_0: GgmlType.Q4_0, q4_1: GgmlType.Q4_1,
};
/** llama_ftype of a file whose matrices are mostly of the type. */
const FILE_TYPE: Record<GgufExportType, number> = { f32: 0, f16: 1, q4_0: 2, q4_1: 3, q8_0: 7 };

export interface GgufExportOptions {
  type: GgufExportType;
  /** tokenizer.json; by default the one beside the model. */
  tokenizerPath?: string;
  /** general.name; by default the model's folder or file name. */
  name?: string;
  signal?: AbortSignal;
}

export interface GgufExportResult {
  path: string;
  bytes: number;
  type: GgufExportType;
  seconds: number;
  /** GGUF type written for each tensor. */
  tensorTypes: Record<string, string>;
  /** Whether the Q4_1 matrices are the source's MatMulNBits codes, mapped without requantizing. */
  exactFromNBits: boolean;
  /** What the user should know (fallbacks, values taken from defaults). */
  notes: string[];
}

/** A model file, or an output folder holding model.onnx. */
export async function resolveModelPath(input: string): Promise<string> {
  let s;
  try {
    s = await stat(input);
  } catch {
    throw new WhittleError('NOT_FOUND', `${input} does not exist. Give an .onnx model or an experiment's output folder.`, { path: input });
  }
  if (!s.isDirectory()) return path.resolve(input);
  const file = path.join(input, 'model.onnx');
  try {
    await stat(file);
  } catch {
    throw new WhittleError('NOT_FOUND', `${input} is a folder without model.onnx. Give an .onnx model or an experiment's output folder.`, { path: input });
  }
  return path.resolve(file);
}

/** Rows regrouped per head from halves to adjacent pairs: out row h·d + 2i + j ← row h·d + j·d/2 + i. */
export function regroupRows<T extends Uint8Array | Float32Array>(rows: T, rowLength: number, heads: number, headSize: number): T {
  const out = new (rows.constructor as { new (n: number): T })(rows.length);
  const half = headSize / 2;
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const to = h * headSize + 2 * i + j;
        const from = h * headSize + j * half + i;
        out.set(rows.subarray(from * rowLength, (from + 1) * rowLength), to * rowLength);
      }
    }
  }
  return out;
}

/** Float values of a plan's tensor as GGUF rows: [ne1 rows of ne0]. */
async function floatRows(t: LlamaTensorPlan): Promise<Float32Array> {
  if (t.source.kind === 'nbits') return dequantizeNBitsRows(await readNBits(t.source.node, t.source.inits));
  const values = await readTensorFloat32(t.source.tensor);
  // stored [K, N] → rows [N, K]
  return t.source.transpose ? transpose2d(values, t.dims[0], t.dims[1]) : values;
}

interface TensorChoice { type: GgmlType; exactNBits: boolean; note: string | null }

function chooseType(t: LlamaTensorPlan, plan: LlamaPlan, type: GgufExportType): TensorChoice {
  if (t.vector) return { type: GgmlType.F32, exactNBits: false, note: null };
  const wanted = TYPE_OF[type];
  const blockOk = t.dims[0] % 32 === 0;
  if (t.source.kind === 'nbits') {
    if (wanted === GgmlType.F32 || wanted === GgmlType.F16) return { type: wanted, exactNBits: false, note: null };
    const node = t.source.node;
    const fits = attrBits(node) === 4 && attrBlock(node) === 32 && blockOk;
    if (fits) return { type: GgmlType.Q4_1, exactNBits: true, note: null };
    return { type: GgmlType.F32, exactNBits: false, note: `${t.name}: ${attrBits(node)}-bit blocks of ${attrBlock(node)} over K = ${t.dims[0]} cannot be Q4_1; written F32 (dequantized exactly)` };
  }
  if (plan.quantized && wanted === GgmlType.Q4_1) {
    // Beside exact Q4_1 codes the float weights stay as stored: float32 unless the source holds float16.
    return { type: t.source.tensor.dataType === DataType.float16 ? GgmlType.F16 : GgmlType.F32, exactNBits: false, note: null };
  }
  if (wanted !== GgmlType.F32 && wanted !== GgmlType.F16 && !blockOk) {
    return { type: GgmlType.F16, exactNBits: false, note: `${t.name}: rows of ${t.dims[0]} are not whole blocks of 32; written F16` };
  }
  return { type: wanted, exactNBits: false, note: null };
}

const attrBits = (n: { attribute: { name?: string; i?: unknown }[] }): number => Number(n.attribute.find((a) => a.name === 'bits')?.i ?? 4);
const attrBlock = (n: { attribute: { name?: string; i?: unknown }[] }): number => Number(n.attribute.find((a) => a.name === 'block_size')?.i ?? 32);

async function tensorBytes(t: LlamaTensorPlan, choice: TensorChoice): Promise<Uint8Array> {
  const rowCount = t.dims.length > 1 ? t.dims[1] : 1;
  let bytes: Uint8Array;
  let rowBytes: number;
  if (choice.exactNBits && t.source.kind === 'nbits') {
    bytes = nbitsToQ4_1(await readNBits(t.source.node, t.source.inits));
    rowBytes = (t.dims[0] / 32) * 20;
    if (t.regroup) bytes = regroupRows(bytes, rowBytes, t.regroup.heads, t.regroup.headSize);
    return bytes;
  }
  let rows = await floatRows(t);
  if (t.regroup) rows = regroupRows(rows, t.dims[0], t.regroup.heads, t.regroup.headSize);
  const out = encodeRows(rows, rowCount, t.dims[0], choice.type);
  // encodeRows returns a view of `rows` for F32; copy so the buffer is exactly the tensor.
  return out.byteOffset === 0 && out.byteLength === out.buffer.byteLength ? out : out.slice();
}

/** The general.* and llama.* metadata of a plan. */
function modelMetadata(plan: LlamaPlan, name: string, type: GgufExportType): GgufKv[] {
  const hp = plan.hp;
  return [
    kv.str('general.architecture', 'llama'),
    kv.str('general.name', name),
    kv.u32('general.alignment', GGUF_DEFAULT_ALIGNMENT),
    kv.u32('general.file_type', FILE_TYPE[type]),
    kv.u32('general.quantization_version', 2),
    kv.u32('llama.context_length', hp.contextLength),
    kv.u32('llama.embedding_length', hp.embeddingLength),
    kv.u32('llama.block_count', hp.blockCount),
    kv.u32('llama.feed_forward_length', hp.feedForwardLength),
    kv.u32('llama.attention.head_count', hp.headCount),
    kv.u32('llama.attention.head_count_kv', hp.headCountKv),
    kv.u32('llama.rope.dimension_count', hp.headSize),
    kv.f32('llama.rope.freq_base', hp.ropeFreqBase),
    kv.f32('llama.attention.layer_norm_rms_epsilon', hp.rmsEpsilon),
    kv.u32('llama.vocab_size', hp.vocabSize),
  ];
}

/** Writes `outPath` (a .gguf file) from the ONNX model at `modelInput` (a file or an output folder). */
export async function exportGguf(modelInput: string, outPath: string, options: GgufExportOptions): Promise<GgufExportResult> {
  const started = performance.now();
  if (!GGUF_TYPES.includes(options.type)) {
    throw new WhittleError('INVALID_INPUT', `Unknown GGUF type ${String(options.type)}; choose one of ${GGUF_TYPES.join(', ')}.`, { type: options.type });
  }
  const modelPath = await resolveModelPath(modelInput);
  const model = await readModel(modelPath);
  const plan = await planLlama(model);
  if (plan.quantized && !['q4_1', 'f32', 'f16'].includes(options.type)) {
    throw new WhittleError('INVALID_INPUT', `This model holds ${plan.nbitsBits.join('/')}-bit MatMulNBits weights. Export it as q4_1 (the 4-bit codes carried over exactly) or as f32/f16 (dequantized); ${options.type} would quantize the already quantized weights again.`, { type: options.type });
  }
  const tokenizerPath = options.tokenizerPath ?? path.join(path.dirname(modelPath), 'tokenizer.json');
  const vocab = await readGgufVocabulary(tokenizerPath, plan.hp.vocabSize);

  const notes: string[] = [];
  for (const [what, source] of Object.entries(plan.hp.sources)) if (/default|not found/.test(source)) notes.push(`${what}: ${source}`);
  const tensorTypes: Record<string, string> = {};
  let exact = false;
  const tensors: GgufTensor[] = plan.tensors.map((t) => {
    const choice = chooseType(t, plan, options.type);
    if (choice.note) notes.push(choice.note);
    if (choice.exactNBits) exact = true;
    tensorTypes[t.name] = ggmlTypeName(choice.type);
    return { name: t.name, dims: t.dims, type: choice.type, bytes: () => tensorBytes(t, choice) };
  });
  const name = options.name ?? path.basename(path.dirname(modelPath));
  const metadata = [...modelMetadata(plan, name, options.type), ...vocabularyMetadata(vocab)];
  const written = await writeGguf(outPath, metadata, tensors, options.signal);
  return { path: written.path, bytes: written.bytes, type: options.type, seconds: (performance.now() - started) / 1000, tensorTypes, exactFromNBits: exact, notes };
}
