/**
 * Float16 conversion: every float32 initializer, Constant tensor and float32 value becomes float16,
 * except what must stay float32, written as a complete output folder (the same as the weight-only steps).
 *
 * Tensors are streamed one at a time: read → checked → converted by the native kernel (round to nearest
 * even) → spooled → dropped. A tensor with any finite |x| > 65504 (float16's largest finite value) is
 * never clamped: it stays float32 and every node reading it computes in float32 (fp16-graph.ts), so the
 * computed values stay those of the float32 model. A tensor most of whose nonzero values underflow to 0
 * is converted and listed as a warning. The graph rewrite (precisions, Casts, types) is fp16-graph.ts.
 */
import path from 'node:path';
import { FP16 } from '../../../preload/methods.ts';
import { QuantizeFp16Step } from '../../../preload/recipe.ts';
import { throwIfAborted, WhittleError } from '../errors.ts';
import type { JobContext } from '../job-context.ts';
import { DataType } from '../onnx/dtype.ts';
import { allGraphs, getAttribute, NameScope } from '../onnx/graph.ts';
import type { ModelProto, TensorProto, TensorSource } from '../onnx/proto-types.ts';
import { readModel } from '../onnx/reader.ts';
import { elementCount } from '../onnx/tensor-data.ts';
import { f32ToF16 } from '../native/index.ts';
import type { StepInput, StepOutput, StepRunner } from '../pipeline/step.ts';
import { normaliseFloatConstants, rewriteForFp16, type Fp16Decisions } from './fp16-graph.ts';
import { inferModelTypes } from './fp16-types.ts';
import type { ManifestWeight } from '../rewrite/manifest.ts';
import { writeOutputFolder, type WrittenFolder } from '../rewrite/write-folder.ts';
import { folderStepOutput, stepOutputDir } from './step.ts';
import { compilePatterns, type QuantizeOptions } from './weight-only.ts';

/** float16's largest finite value. */
export const FP16_MAX = 65504;
/** A converted tensor is listed as a warning when more than this share of its nonzero values become 0. */
export const UNDERFLOW_WARNING_SHARE = 0.5;

export interface KeptTensor {
  name: string;
  reason: string;
}

export interface Fp16Result extends WrittenFolder {
  /** Tensors stored as float16. */
  converted: number;
  keptFp32: KeptTensor[];
  /** Nodes computing in float32 behind Casts. */
  fp32Nodes: { name: string; op: string; reason: string }[];
  casts: number;
  warnings: string[];
  blockOps: string[];
  keepIoTypes: boolean;
}

export const ALREADY_FP16_MESSAGE = 'Nothing to convert: the model is already float16.';

/** A float32 tensor of the model: an initializer, or the value of a Constant / ConstantOfShape node. */
interface FloatTensor {
  /** The value name it defines (initializer name or node output). */
  name: string;
  /** The node name too, for keep patterns on node names. */
  nodeName?: string;
  tensor: TensorProto;
}

function floatTensors(model: ModelProto): FloatTensor[] {
  const out: FloatTensor[] = [];
  for (const { graph } of allGraphs(model)) {
    for (const t of graph.initializer) if (t.dataType === DataType.float32) out.push({ name: t.name ?? '', tensor: t });
    for (const n of graph.node) {
      if ((n.opType !== 'Constant' && n.opType !== 'ConstantOfShape') || n.domain) continue;
      const t = getAttribute(n, 'value')?.t;
      if (t && t.dataType === DataType.float32) out.push({ name: n.output[0] ?? '', nodeName: n.name, tensor: t });
    }
  }
  return out;
}

/** True when some value of the model is float32 (a tensor, an input/output or a computed value). */
function hasFloat32(types: ReturnType<typeof inferModelTypes>, tensors: FloatTensor[]): boolean {
  if (tensors.length > 0) return true;
  for (const [graph, scope] of types.scopes) {
    for (const v of [...graph.input, ...graph.output]) if (scope.get(v.name ?? '') === DataType.float32) return true;
    for (const n of graph.node) for (const o of n.output) if (scope.get(o) === DataType.float32) return true;
  }
  return false;
}

function hasFloat16(model: ModelProto): boolean {
  for (const { graph } of allGraphs(model)) {
    if (graph.initializer.some((t) => t.dataType === DataType.float16)) return true;
    if ([...graph.input, ...graph.output].some((v) => v.type?.tensorType?.elemType === DataType.float16)) return true;
  }
  return false;
}

const fmt = (x: number): string => x.toExponential(1).replace('e+', 'e');

/** What a tensor's values say about converting it. */
export interface Fp16Check {
  /** Largest finite |x|. */
  maxAbs: number;
  nonzero: number;
  /** Nonzero values that become ±0 in float16 (null until converted). */
  flushed: number;
}

/** Largest finite |x| and the count of nonzero values of a float32 tensor. */
export function checkFloat32(values: Float32Array): Pick<Fp16Check, 'maxAbs' | 'nonzero'> {
  let maxAbs = 0;
  let nonzero = 0;
  for (let i = 0; i < values.length; i++) {
    const a = Math.abs(values[i]);
    if (a !== 0) nonzero++;
    if (a > maxAbs && a !== Number.POSITIVE_INFINITY) maxAbs = a;
  }
  return { maxAbs, nonzero };
}

/** Nonzero float32 values whose float16 bits are ±0. */
export function countFlushed(values: Float32Array, half: Uint16Array): number {
  let flushed = 0;
  for (let i = 0; i < values.length; i++) if ((half[i] & 0x7fff) === 0 && values[i] !== 0) flushed++;
  return flushed;
}

function asFloat32(bytes: Uint8Array, count: number, name: string): Float32Array {
  if (bytes.length < count * 4) {
    throw new WhittleError('MODEL_PARSE', `Tensor '${name}' holds ${bytes.length} bytes; its shape needs ${count * 4}.`);
  }
  const aligned = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
  return new Float32Array(aligned.buffer, aligned.byteOffset, count);
}

/**
 * Converts `modelPath` to float16 and writes the output folder `outDir` (model.onnx + model.onnx.data,
 * companions, whittle.json with every tensor kept in float32 and why). Nothing is left at `outDir` unless
 * the whole job succeeds.
 */
export async function convertToFp16(modelPath: string, stepInput: QuantizeFp16Step, outDir: string, ctx: JobContext, options: QuantizeOptions = {}): Promise<Fp16Result> {
  const step = QuantizeFp16Step.parse(stepInput);
  const keep = compilePatterns(step.keep, 'keep');
  throwIfAborted(ctx.signal);
  const source = path.resolve(modelPath);
  const model = await readModel(source);
  if (!model.proto.graph) throw new WhittleError('MODEL_PARSE', `${source} has no graph.`);
  normaliseFloatConstants(model.proto);
  const types = inferModelTypes(model.proto);
  const tensors = floatTensors(model.proto);
  if (!hasFloat32(types, tensors)) {
    const message = hasFloat16(model.proto) ? ALREADY_FP16_MESSAGE : 'Nothing to convert: the model has no float32 tensors or values.';
    throw new WhittleError('INVALID_INPUT', message, { path: source });
  }
  const sparse = allGraphsSparse(model.proto);

  const out = await writeOutputFolder(model, outDir, ctx, {
    step,
    options,
    async rewrite(_, { spool, reader }) {
      // 1. Every float32 tensor, one at a time: range check, conversion, spool.
      const decisions: Fp16Decisions = { kept: new Map(), large: new Set() };
      for (const s of sparse) decisions.kept.set(s, 'sparse initializers stay as they are');
      const halves = new Map<TensorProto, TensorSource | null>();
      const warnings: string[] = [];
      const total = tensors.length;
      ctx.progress({ phase: 'convert', done: 0, total });
      for (let i = 0; i < total; i++) {
        throwIfAborted(ctx.signal);
        const { name, nodeName, tensor } = tensors[i];
        const matched = keep.find((re) => re.test(name) || (nodeName !== undefined && re.test(nodeName)));
        if (matched) {
          decisions.kept.set(name, `the name matches a keep pattern (${matched})`);
        } else {
          const count = elementCount(tensor.dims);
          const values = asFloat32(await reader.read(tensor), count, name);
          const { maxAbs, nonzero } = checkFloat32(values);
          if (maxAbs > FP16_MAX) {
            decisions.kept.set(name, `max |x| = ${fmt(maxAbs)} exceeds fp16's ${FP16_MAX}; kept in float32`);
            decisions.large.add(name);
          } else if (count === 0) {
            halves.set(tensor, null);
          } else {
            const half = await f32ToF16(values);
            const flushed = countFlushed(values, half);
            if (nonzero > 0 && flushed / nonzero > UNDERFLOW_WARNING_SHARE) {
              warnings.push(`${name}: ${Math.round((100 * flushed) / nonzero)} % of its ${nonzero} nonzero values underflow to 0 in float16`);
            }
            halves.set(tensor, await spool.append(new Uint8Array(half.buffer, half.byteOffset, half.byteLength)));
          }
        }
        ctx.progress({ phase: 'convert', done: i + 1, total, message: name });
      }
      await reader.close();
      throwIfAborted(ctx.signal);

      // 2. The graph: precisions, Casts, types.
      const names = NameScope.fromModel(model.proto);
      const rewrite = rewriteForFp16(model.proto, types, decisions, {
        blockOps: new Set(step.blockOps), keepNodes: keep, keepIoTypes: step.keepIoTypes, uniqueName: (b) => names.fresh(b),
      });
      for (const t of rewrite.convert) {
        const half = halves.get(t);
        if (half === undefined) throw new WhittleError('INTERNAL', `Tensor '${t.name ?? ''}' was not converted to float16 before the rewrite.`);
        t.dataType = DataType.float16;
        if (half) t.data = half;
      }
      for (const w of warnings) ctx.log('warn', w);
      const keptFp32 = rewrite.kept.map((k) => ({ name: k.name, reason: k.reason }));
      for (const k of keptFp32) ctx.log('info', `kept in float32: ${k.name}: ${k.reason}`);
      const fp32Nodes = rewrite.fp32Nodes.map(({ name, op, reason }) => ({ name, op, reason }));
      return { rewrite, keptFp32, fp32Nodes, warnings };
    },
    // 3. whittle.json: every tensor converted or kept, and why.
    manifest: ({ rewrite, keptFp32, fp32Nodes, warnings }) => ({
      weights: [
        ...[...rewrite.convert].map((t): ManifestWeight => ({ name: t.name ?? '', shape: t.dims.map(Number), bits: 16, blockSize: null, status: 'quantized' })),
        ...rewrite.kept.map((k): ManifestWeight => ({ name: k.name, shape: k.tensor.dims.map(Number), bits: null, blockSize: null, status: 'skipped', reason: k.reason })),
      ],
      extra: {
        fp16: { converted: rewrite.convert.size, keptFp32, warnings, fp32Nodes, casts: rewrite.casts, blockOps: step.blockOps, keepIoTypes: step.keepIoTypes },
      },
    }),
  });
  const { rewrite, keptFp32, fp32Nodes, warnings } = out.result;
  ctx.log('info', `converted ${rewrite.convert.size} tensor(s) to float16; ${keptFp32.length} kept in float32; ${fp32Nodes.length} node(s) compute in float32 behind ${rewrite.casts} Cast(s)`);
  return {
    outDir: out.outDir, modelPath: out.modelPath, pending: out.pending, converted: rewrite.convert.size, keptFp32, fp32Nodes, casts: rewrite.casts, warnings,
    blockOps: step.blockOps, keepIoTypes: step.keepIoTypes, bytes: out.bytes, files: out.files,
  };
}

function allGraphsSparse(model: ModelProto): string[] {
  const out: string[] = [];
  for (const { graph } of allGraphs(model)) {
    for (const s of graph.sparseInitializer) if (s.values?.dataType === DataType.float32 && s.values.name) out.push(s.values.name);
  }
  return out;
}

export const quantizeFp16Step: StepRunner<QuantizeFp16Step> = {
  description: FP16,
  async run(input: StepInput<QuantizeFp16Step>, ctx: JobContext): Promise<StepOutput> {
    const r = await convertToFp16(input.modelPath, input.step, stepOutputDir(input, ctx), ctx, { recipe: input.recipe, deliver: 'partial' });
    return folderStepOutput(r, {
      method: 'fp16',
      converted: r.converted,
      keptFp32: r.keptFp32,
      blockOps: r.blockOps,
      keepIoTypes: r.keepIoTypes,
      fp32Nodes: r.fp32Nodes,
      casts: r.casts,
      warnings: r.warnings,
    });
  },
};
