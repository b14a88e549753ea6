/**
 * INT8 dynamic quantization: MatMul/Gemm weights to int8 (symmetric, per output channel or per tensor),
 * activations quantized to uint8 at run time by onnxruntime; written as a complete output folder.
 *
 * Which weights: the shared planner (targets.ts: constant 2-D float weights feeding one MatMul/Gemm;
 * embeddings, tied, shared, batched weights and `keep` matches skipped with their reasons).
 * Per weight, one at a time (read into a reused buffer → quantized → int8 bytes spooled → dropped):
 *   s_n = max_k |W[k, n]| / 127 (per tensor: one s), W_q = clamp(round_half_even(W / s), −127, 127)
 * (quantizeInt8Symmetric, shared with the static INT8 step), then the node rewrite of
 * int8-dynamic-rewrite.ts. Unused float weights are swept; everything else is copied by reference.
 *
 * Accuracy note: onnxruntime's uint8 × int8 kernels on x86 CPUs without VNNI (AVX2 only) add pairs of
 * products in int16 and can saturate; on VNNI CPUs (and ARM) the products are exact.
 */
import path from 'node:path';
import { INT8_DYNAMIC } from '../../../preload/methods.ts';
import { QuantizeInt8DynamicStep } from '../../../preload/recipe.ts';
import { throwIfAborted, WhittleError } from '../errors.ts';
import type { JobContext } from '../job-context.ts';
import { DataType } from '../onnx/dtype.ts';
import { ensureOpset, initializerMap, NameScope, opsetVersion } from '../onnx/graph.ts';
import { readModel } from '../onnx/reader.ts';
import { makeTensor } from '../onnx/tensor-data.ts';
import { f16ToF32 } from '../native/index.ts';
import type { StepInput, StepOutput, StepRunner } from '../pipeline/step.ts';
import { quantizeInt8Symmetric } from './int8-static.ts';
import { toDynamicInt8, type Int8DynamicContext } from './int8-dynamic-rewrite.ts';
import type { ManifestWeight } from '../rewrite/manifest.ts';
import { transformWeights, type WeightEdit } from '../rewrite/weight-loop.ts';
import { writeOutputFolder, type WrittenFolder } from '../rewrite/write-folder.ts';
import { folderStepOutput, stepOutputDir } from './step.ts';
import { planTargets, type QuantTarget, type SkippedWeight } from './targets.ts';
import { asKernelWeight, compilePatterns, nothingToQuantizeMessage, skippedManifestWeights, type QuantizeOptions } from './weight-only.ts';

export interface Int8DynamicResult extends WrittenFolder {
  quantized: ManifestWeight[];
  skipped: SkippedWeight[];
  format: QuantizeInt8DynamicStep['format'];
  perChannel: boolean;
  /** Activations cast from float16 to float32 for the quantizer (float16 models). */
  activationCasts: number;
  /** Σ over quantized weights of Σ (w − s·q)². */
  sqError: number;
}

/** DynamicQuantizeLinear came with opset 11. */
const MIN_OPSET = 11;

/**
 * Quantizes every eligible MatMul/Gemm weight of `modelPath` to int8 with run-time activation
 * quantization and writes the output folder `outDir`. Nothing is left at `outDir` unless the whole job
 * succeeds.
 */
export async function quantizeInt8Dynamic(modelPath: string, stepInput: QuantizeInt8DynamicStep, outDir: string, ctx: JobContext, options: QuantizeOptions = {}): Promise<Int8DynamicResult> {
  const step = QuantizeInt8DynamicStep.parse(stepInput);
  const keep = compilePatterns(step.keep, 'keep');
  throwIfAborted(ctx.signal);
  const source = path.resolve(modelPath);
  const model = await readModel(source);
  const graph = model.proto.graph;
  if (!graph) throw new WhittleError('MODEL_PARSE', `${source} has no graph.`);
  const opset = opsetVersion(model.proto, '') ?? 0;
  if (step.format === 'matmulinteger' && opset < MIN_OPSET) {
    throw new WhittleError('UNSUPPORTED_MODEL', `The model imports ONNX opset ${opset}; DynamicQuantizeLinear needs opset ${MIN_OPSET} or later. Export the model at a newer opset, or use the 'dynamic-quantize-matmul' format.`, { opset });
  }

  // Per-channel int8 has no blocks: any K qualifies.
  const plan = planTargets(graph, { blockSize: 1, keep });
  for (const s of plan.skipped) ctx.log('info', `skip ${s.name}: ${s.reason}`);
  if (plan.targets.length === 0) {
    throw new WhittleError('INVALID_INPUT', nothingToQuantizeMessage(plan), { skipped: plan.skipped, alreadyQuantized: plan.alreadyQuantized });
  }

  const names = NameScope.fromModel(model.proto);
  const initializers = initializerMap(graph);
  const rewriteContext: Int8DynamicContext = {
    format: step.format, uniqueName: (b) => names.fresh(b), initializer: (n) => initializers.get(n), shared: new Map(),
  };
  const asFloat32 = async (bytes: Uint8Array, target: QuantTarget): Promise<Float32Array> => {
    const w = asKernelWeight(bytes, target);
    return w instanceof Uint16Array ? f16ToF32(w) : w;
  };
  const quantized: ManifestWeight[] = [];
  let sqError = 0;
  const activationCasts = (): number => [...rewriteContext.shared.values()].filter((s) => s.a32).length;
  const out = await writeOutputFolder(model, outDir, ctx, {
    step,
    options,
    async rewrite(m, io) {
      await transformWeights(graph, plan.targets, io, ctx, {
        phase: 'quantize',
        decode: asFloat32,
        async transform(target, weight): Promise<WeightEdit> {
          // W [K, N]: channels are the columns (output features).
          const q = quantizeInt8Symmetric(weight, target.k, target.n, step.perChannel ? 1 : null);
          if (target.alpha !== 1) for (let c = 0; c < q.scales.length; c++) q.scales[c] *= target.alpha;
          const weightQ = names.fresh(`${target.weight}_Q8`);
          const scales = names.fresh(`${target.weight}_scales`);
          const rep = toDynamicInt8(target, weightQ, scales, target.dtype === 'float16', rewriteContext);
          sqError += q.sqError;
          quantized.push({ name: target.weight, shape: target.shape, bits: 8, blockSize: null, status: 'quantized', sqError: q.sqError });
          return {
            kind: 'replace-nodes',
            nodes: rep.nodes,
            tensors: [
              { name: weightQ, dataType: DataType.int8, dims: [target.k, target.n], bytes: new Uint8Array(q.q.buffer, q.q.byteOffset, q.q.byteLength) },
              makeTensor(scales, DataType.float32, step.perChannel ? [target.n] : [], q.scales),
              ...rep.tensors,
            ],
          };
        },
      });
      if (step.format === 'dynamic-quantize-matmul') ensureOpset(m.proto, 'com.microsoft', 1);
    },
    manifest: () => ({
      weights: [...quantized, ...skippedManifestWeights(plan.skipped)],
      extra: { int8Dynamic: { format: step.format, perChannel: step.perChannel, activationCasts: activationCasts() } },
    }),
  });
  ctx.log('info', `quantized ${quantized.length} weight(s) to int8 (${step.perChannel ? 'per channel' : 'per tensor'}, ${step.format}); skipped ${plan.skipped.length}`);
  return {
    outDir: out.outDir, modelPath: out.modelPath, pending: out.pending, quantized, skipped: plan.skipped, format: step.format, perChannel: step.perChannel,
    activationCasts: activationCasts(), bytes: out.bytes, files: out.files, sqError,
  };
}

export const quantizeInt8DynamicStep: StepRunner<QuantizeInt8DynamicStep> = {
  description: INT8_DYNAMIC,
  async run(input: StepInput<QuantizeInt8DynamicStep>, ctx: JobContext): Promise<StepOutput> {
    const r = await quantizeInt8Dynamic(input.modelPath, input.step, stepOutputDir(input, ctx), ctx, { recipe: input.recipe, deliver: 'partial' });
    return folderStepOutput(r, {
      method: 'int8-dynamic',
      format: r.format,
      perChannel: r.perChannel,
      quantized: r.quantized.length,
      quantizedWeights: r.quantized.map((w) => ({ name: w.name, shape: w.shape, sqError: w.sqError })),
      skipped: r.skipped.map((s) => ({ name: s.name, reason: s.reason })),
      activationCasts: r.activationCasts,
      sqError: r.sqError,
    });
  },
};
