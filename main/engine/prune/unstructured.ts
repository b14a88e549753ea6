/**
 * Unstructured and N:M pruning of every eligible MatMul/Gemm weight (the architecture map's targets;
 * embedding and LM head kept unless asked; `keep` patterns honoured) into an output folder:
 * magnitude, Wanda or SparseGPT (magnitude.ts, wanda.ts, sparsegpt.ts), optionally with per-block OWL
 * sparsities (allocation.ts).
 *
 * Order of work: the step and the pattern are checked, the model's targets planned and N:M checked
 * against every K, the calibration text validated — all before any calibration or rewriting. Then:
 *   OWL:        one pass over the original model for ‖x‖₂ of every input, per-block outlier ratios;
 *   Wanda:      ‖x‖₂ per input, sequentially (block by block on the already-pruned model, default) or in
 *               one pass; only the norms are kept (K floats per input) and the mask is recomputed from
 *               the original weight when it is written — the same pure function of (w, ‖x‖);
 *   SparseGPT:  the Hessian of each input, sequentially (each level swept as it is calibrated; the swept
 *               weights, or their MatMulNBits layout in joint mode, kept until written) or in one pass
 *               (the Hessians kept, each weight swept when it is written);
 *   magnitude:  nothing (global scope: a two-pass threshold over all weights).
 * The weight loop (rewrite/weight-loop.ts) then replaces each weight's bytes (same node, zeros in place),
 * or in joint mode the node with MatMulNBits (quantize/rewrite.ts toMatMulNBits).
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { effectiveSparsity, parseNmPattern, type CalibrationConfig } from '../../../preload/recipe.ts';
import { activationInputsFor, collectCalibrationStats, validateCalibration, type TensorStats } from '../calibrate/index.ts';
import { planSegments } from '../calibrate/segments.ts';
import { calibrateSequentially, type WeightValue } from '../calibrate/sequential.ts';
import { throwIfAborted, WhittleError } from '../errors.ts';
import type { JobContext } from '../job-context.ts';
import { detectDecoderLayout } from '../model/layout.ts';
import { f16ToF32, f32ToF16 } from '../native/index.ts';
import type { ObsSwept } from '../native/obs.ts';
import { ensureOpset, initializerMap, NameScope } from '../onnx/graph.ts';
import type { GraphProto, OnnxModel, TensorProto, TensorSource } from '../onnx/proto-types.ts';
import { readModel } from '../onnx/reader.ts';
import { floatToHalf } from '../onnx/tensor-data.ts';
import { defaultHessianBudget, hessianBytes } from '../quantize/gptq.ts';
import { scaleInPlace, transpose2d } from '../quantize/layout.ts';
import { toMatMulNBits, type RewriteOptions } from '../quantize/rewrite.ts';
import { asKernelWeight, skippedManifestWeights } from '../quantize/weight-only.ts';
import type { ManifestWeight } from '../rewrite/manifest.ts';
import type { QuantTarget, SkippedWeight } from '../rewrite/eligibility.ts';
import { transformWeights, type WeightEdit } from '../rewrite/weight-loop.ts';
import { TensorSpool } from '../rewrite/spool.ts';
import { WeightReader } from '../rewrite/weight-reader.ts';
import { writeOutputFolder, type OutputOptions, type WrittenFolder } from '../rewrite/write-folder.ts';
import { blockOutlierRatio, OWL_LAMBDA, OWL_M, owlSparsities } from './allocation.ts';
import { applyMask, globalMagnitudeThreshold, globalMask, magnitudeMask, magnitudeNmMask, type GlobalThreshold } from './magnitude.ts';
import { sparseGptWeight, type SparseGptSettings } from './sparsegpt.ts';
import { LM_HEAD_REASON, parsePruneStep, planPruneTargets, type UnstructuredPruneStep } from './targets.ts';

export { LM_HEAD_REASON, type UnstructuredPruneStep };
import { inputNorms, wandaMask } from './wanda.ts';


export interface PruneOptions extends OutputOptions {
  /** Refuse SparseGPT when the Hessians held at once would take more bytes than this (default: half the physical memory). */
  hessianBudgetBytes?: number;
}

export interface PrunedWeightRecord {
  name: string;
  shape: number[];
  block: number | null;
  role: string;
  params: number;
  zeros: number;
  sparsity: number;
  target: number;
  loss?: number;
  deadInputs?: number;
}

export interface PrunedBlockRecord {
  block: number | null;
  params: number;
  zeros: number;
  sparsity: number;
  target: number;
  outlierRatio?: number;
}

export interface PruneResult extends WrittenFolder {
  method: UnstructuredPruneStep['method'];
  sparsity: number;
  pattern: string | null;
  weights: PrunedWeightRecord[];
  blocks: PrunedBlockRecord[];
  skipped: SkippedWeight[];
  prunedParams: number;
  zeros: number;
  achievedSparsity: number;
  warnings: string[];
}

const gib = (b: number): string => `${(b / 2 ** 30).toFixed(2)} GiB`;

/** The weight as float32 [K, N], copied (the reader's buffer is reused). */
async function float32Of(bytes: Uint8Array, target: QuantTarget): Promise<Float32Array> {
  const w = asKernelWeight(bytes, target);
  if (w instanceof Uint16Array) return f16ToF32(w);
  return w.buffer === bytes.buffer ? w.slice() : w;
}

/** [K, N] float32 → the bytes as stored (transposed back for Gemm transB, fp16 for fp16 weights). */
async function storedBytes(w: Float32Array, target: QuantTarget): Promise<Uint8Array> {
  const v = await storedValue(w, target);
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

async function storedValue(w: Float32Array, target: QuantTarget): Promise<WeightValue> {
  const stored = target.transposed ? transpose2d(w, target.k, target.n) : w;
  return target.dtype === 'float16' ? f32ToF16(stored) : stored;
}

function tokenizerOf(options: PruneOptions, what: string): string {
  const t = options.tokenizerPath ?? options.recipe?.tokenizer?.path;
  if (!t) throw new WhittleError('INVALID_INPUT', `${what} needs calibration text, which needs a tokenizer. Add the model's tokenizer.json to the recipe (--tokenizer).`);
  return t;
}

/** Σ x² per input of every target from one pass over the original model, by weight name. */
async function collectNorms(model: OnnxModel, targets: readonly QuantTarget[], calibration: CalibrationConfig, tokenizerPath: string, ctx: JobContext): Promise<Map<string, Float32Array>> {
  const inputs = activationInputsFor(model, targets);
  const stats = await collectCalibrationStats({ modelPath: model.path, tensors: inputs.map((i) => i.tensor), accumulators: ['l2'], calibration, tokenizerPath }, ctx);
  const out = new Map<string, Float32Array>();
  for (const input of inputs) {
    const s = stats.get(input.tensor);
    if (!s?.l2) throw new WhittleError('INTERNAL', `Calibration returned no activation norms for ${input.tensor}.`);
    const norms = inputNorms(s.l2);
    for (const w of input.weights) out.set(w, norms);
  }
  return out;
}

/** Each target's sparsity: uniform, or OWL's per-block share (weights outside the blocks keep s). */
async function allocate(
  model: OnnxModel,
  targets: readonly QuantTarget[],
  s: number,
  norms: Map<string, Float32Array> | null,
  ctx: JobContext,
): Promise<{ sparsityOf: Map<string, number>; outliers: Map<number, number> }> {
  const sparsityOf = new Map(targets.map((t) => [t.weight, s]));
  const outliers = new Map<number, number>();
  if (!norms) return { sparsityOf, outliers };
  const inits = initializerMap(model.proto.graph as GraphProto);
  const byBlock = new Map<number, QuantTarget[]>();
  for (const t of targets) if (t.block !== null && t.block !== undefined) byBlock.set(t.block, [...(byBlock.get(t.block) ?? []), t]);
  const blocks = [...byBlock.keys()].sort((a, b) => a - b);
  const reader = new WeightReader();
  const stats: { params: number; ratio: number }[] = [];
  try {
    for (const b of blocks) {
      const ws = [];
      for (const t of byBlock.get(b) as QuantTarget[]) {
        ws.push({ w: await float32Of(await reader.read(inits.get(t.weight) as TensorProto), t), k: t.k, n: t.n, norms: norms.get(t.weight) as Float32Array });
      }
      const r = blockOutlierRatio(ws, OWL_M);
      outliers.set(b, r.ratio);
      stats.push(r);
    }
  } finally {
    await reader.close();
  }
  const per = owlSparsities(stats, s, OWL_LAMBDA);
  blocks.forEach((b, i) => { for (const t of byBlock.get(b) as QuantTarget[]) sparsityOf.set(t.weight, per[i]); });
  ctx.log('info', `OWL: outlier ratios ${blocks.map((b) => `${b}: ${(100 * (outliers.get(b) as number)).toFixed(2)} %`).join(', ')} → sparsities ${per.map((x) => x.toFixed(3)).join(', ')}`);
  return { sparsityOf, outliers };
}

/** How one weight is pruned once its statistics are known. */
interface WeightPruner {
  prune(target: QuantTarget, w: Float32Array): Promise<{ weight: Float32Array; swept?: ObsSwept }>;
  /** Frees what the pruner holds between calibration and writing (scratch files). */
  close?(): Promise<void>;
}

/** Prunes every eligible weight of `modelPath` into `outDir` (see the file header). Nothing is left at `outDir` unless it succeeds. */
export async function pruneUnstructured(modelPath: string, stepInput: UnstructuredPruneStep, outDir: string, ctx: JobContext, options: PruneOptions = {}): Promise<PruneResult> {
  const step = parsePruneStep(stepInput);
  const s = effectiveSparsity(step);
  const nm = step.pattern === undefined ? null : parseNmPattern(step.pattern);
  const policyOf = (sparsity: number): { sparsity: number } | { nm: { n: number; m: number } } => (nm ? { nm } : { sparsity });
  const what = step.method === 'magnitude' ? 'Magnitude pruning' : step.method === 'wanda' ? 'Wanda' : 'SparseGPT';

  const source = path.resolve(modelPath);
  const model = await readModel(source);
  const graph = model.proto.graph;
  if (!graph) throw new WhittleError('MODEL_PARSE', `${source} has no graph.`);
  const { targets, skipped } = planPruneTargets(graph, step);
  const calibration = step.calibration;
  const tokenizerPath = calibration ? tokenizerOf(options, what) : undefined;
  if (calibration) await validateCalibration({ model, tokenizerPath, calibration, what });
  throwIfAborted(ctx.signal);
  for (const x of skipped) ctx.log('info', `skip ${x.name}: ${x.reason}`);
  ctx.log('info', `${what}: ${targets.length} weight(s) at ${nm ? `${nm.n}:${nm.m}` : `${(100 * s).toFixed(1)} %`}${step.allocation === 'owl' ? ' overall, OWL allocation' : ''}`);

  // OWL (and one-pass Wanda, which reuses them): ‖x‖₂ of every input on the original model.
  const needsNorms = step.allocation === 'owl' || (step.method === 'wanda' && !step.sequential);
  const originalNorms = needsNorms ? await collectNorms(model, targets, calibration as CalibrationConfig, tokenizerPath as string, ctx) : null;
  const { sparsityOf, outliers } = await allocate(model, targets, s, step.allocation === 'owl' ? originalNorms : null, ctx);
  const sparsityFor = (t: QuantTarget): number => sparsityOf.get(t.weight) as number;
  throwIfAborted(ctx.signal);

  const pruner = await preparePruner(model, targets, step, policyOf, sparsityFor, originalNorms, tokenizerPath, ctx, options);

  const names = NameScope.fromModel(model.proto);
  const joint = step.method === 'sparsegpt' ? step.quantize : undefined;
  const rewriteOptions: RewriteOptions | null = joint
    ? { bits: joint.bits, blockSize: joint.blockSize, accuracyLevel: joint.accuracyLevel, uniqueName: (b) => names.fresh(b), f32ToF16: (x) => Uint16Array.from(x, floatToHalf) }
    : null;
  const records: PrunedWeightRecord[] = [];
  let out: WrittenFolder;
  try {
    out = await writeOutputFolder(model, outDir, ctx, {
      step,
      options,
      async rewrite(m, io) {
        await transformWeights(graph, targets, io, ctx, {
          phase: 'prune',
          decode: float32Of,
          async transform(target, w): Promise<WeightEdit> {
            const { weight, swept } = await pruner.prune(target, w);
            let zeros = 0;
            for (let i = 0; i < weight.length; i++) if (weight[i] === 0) zeros++;
            records.push({
              name: target.weight, shape: target.shape, block: target.block ?? null, role: target.role ?? 'other', params: weight.length, zeros,
              sparsity: zeros / weight.length, target: nm ? s : sparsityFor(target),
              ...(swept ? { loss: swept.loss, deadInputs: swept.dead } : {}),
            });
            if (rewriteOptions && swept?.quantized) {
              const q = swept.quantized;
              if (target.alpha !== 1) scaleInPlace(q.scales, target.alpha);
              const rep = toMatMulNBits(target, q, rewriteOptions);
              return { kind: 'replace-nodes', nodes: rep.nodes, tensors: rep.tensors };
            }
            return { kind: 'replace-bytes', data: await storedBytes(weight, target) };
          },
        });
        if (rewriteOptions) ensureOpset(m.proto, 'com.microsoft', 1);
      },
      manifest: () => ({
        weights: [
          ...records.map((r): ManifestWeight & Record<string, unknown> => ({
            name: r.name, shape: r.shape, bits: joint?.bits ?? null, blockSize: joint?.blockSize ?? null, status: 'pruned', sparsity: r.sparsity, zeros: r.zeros,
          })),
          ...skippedManifestWeights(skipped),
        ],
        extra: { prune: { method: step.method, sparsity: s, pattern: step.pattern ?? null, allocation: step.allocation } },
      }),
    });
  } finally {
    await pruner.close?.();
  }

  const prunedParams = records.reduce((a, r) => a + r.params, 0);
  const zeros = records.reduce((a, r) => a + r.zeros, 0);
  const blocks = blockTable(records, outliers);
  ctx.log('info', `pruned ${records.length} weight(s): ${zeros} of ${prunedParams} zero (${(100 * zeros / Math.max(1, prunedParams)).toFixed(2)} %); skipped ${skipped.length}`);
  const warnings = [];
  if (step.method === 'sparsegpt' && records.some((r) => (r.deadInputs ?? 0) > 0)) warnings.push('Some inputs never fired on the calibration text; their weights were zeroed. Use more or more varied calibration text.');
  return { ...out, method: step.method, sparsity: s, pattern: step.pattern ?? null, weights: records, blocks, skipped, prunedParams, zeros, achievedSparsity: zeros / Math.max(1, prunedParams), warnings };
}

/** Sparsity per block (null: outside the blocks), in block order. */
function blockTable(records: readonly PrunedWeightRecord[], outliers: ReadonlyMap<number, number>): PrunedBlockRecord[] {
  const by = new Map<number | null, PrunedBlockRecord>();
  for (const r of records) {
    const b = by.get(r.block) ?? { block: r.block, params: 0, zeros: 0, sparsity: 0, target: 0 };
    b.target = (b.target * b.params + r.target * r.params) / (b.params + r.params);
    b.params += r.params;
    b.zeros += r.zeros;
    b.sparsity = b.zeros / b.params;
    if (r.block !== null && outliers.has(r.block)) b.outlierRatio = outliers.get(r.block);
    by.set(r.block, b);
  }
  return [...by.values()].sort((a, b) => (a.block ?? Infinity) - (b.block ?? Infinity));
}

/** Runs the method's calibration (if any) and returns how each weight is pruned when it is written. */
async function preparePruner(
  model: OnnxModel,
  targets: QuantTarget[],
  step: UnstructuredPruneStep,
  policyOf: (s: number) => { sparsity: number } | { nm: { n: number; m: number } },
  sparsityFor: (t: QuantTarget) => number,
  originalNorms: Map<string, Float32Array> | null,
  tokenizerPath: string | undefined,
  ctx: JobContext,
  options: PruneOptions,
): Promise<WeightPruner> {
  const graph = model.proto.graph as GraphProto;
  if (step.method === 'magnitude') {
    if (step.scope === 'global') {
      const inits = initializerMap(graph);
      const total = targets.reduce((a, t) => a + t.k * t.n, 0);
      const pass = async (visit: (w: Float32Array) => void): Promise<void> => {
        const reader = new WeightReader();
        try {
          for await (const { value } of reader.stream(targets, (t) => inits.get(t.weight) as TensorProto, float32Of)) visit(value);
        } finally {
          await reader.close();
        }
      };
      const threshold: GlobalThreshold = await globalMagnitudeThreshold(total, effectiveSparsity(step), pass);
      let ties = threshold.ties;
      ctx.log('info', `global magnitude threshold |w| < ${threshold.threshold} (${threshold.count} of ${total} weights)`);
      return {
        async prune(_t, w) {
          const r = globalMask(w, { threshold: threshold.threshold, ties });
          ties = r.ties;
          applyMask(w, r.mask);
          return { weight: w };
        },
      };
    }
    return {
      async prune(t, w) {
        const p = policyOf(sparsityFor(t));
        applyMask(w, 'nm' in p ? magnitudeNmMask(w, t.k, t.n, p.nm) : magnitudeMask(w, p.sparsity));
        return { weight: w };
      },
    };
  }
  const calibration = step.calibration;
  const tok = tokenizerPath as string;
  if (step.method === 'wanda') {
    let norms = originalNorms;
    if (step.sequential) {
      norms = new Map();
      const inits = initializerMap(graph);
      const reader = new WeightReader();
      const kept = norms;
      try {
        await calibrateSequentially({
          model, targets, accumulators: ['l2'], calibration, tokenizerPath: tok, what: 'Wanda',
          compress: async (level) => {
            const values = new Map<string, WeightValue>();
            for (const t of level.targets) {
              const st = level.stats.get(t.weight) as TensorStats;
              const n = inputNorms(st.l2 as Float64Array);
              kept.set(t.weight, n);
              const w = await float32Of(await reader.read(inits.get(t.weight) as TensorProto), t);
              applyMask(w, wandaMask(w, t.k, t.n, n, policyOf(sparsityFor(t))));
              values.set(t.weight, await storedValue(w, t));
            }
            ctx.log('info', `Wanda: level ${level.index + 1}/${level.count} pruned`);
            return values;
          },
        }, ctx);
      } finally {
        await reader.close();
      }
    }
    const byWeight = norms as Map<string, Float32Array>;
    return {
      async prune(t, w) {
        const n = byWeight.get(t.weight);
        if (!n) throw new WhittleError('INTERNAL', `Wanda: no activation norms for ${t.weight}.`);
        applyMask(w, wandaMask(w, t.k, t.n, n, policyOf(sparsityFor(t))));
        return { weight: w };
      },
    };
  }
  // SparseGPT
  const settings: SparseGptSettings = {
    percdamp: step.percdamp, columnBlock: step.columnBlock, maskBlock: step.maskBlock,
    ...(step.quantize ? { quantize: { bits: step.quantize.bits, blockSize: step.quantize.blockSize, symmetric: step.quantize.symmetric } } : {}),
  };
  const budget = options.hessianBudgetBytes ?? defaultHessianBudget();
  const sweep = (t: QuantTarget, w: Float32Array, st: { hessian?: Float32Array; rows: number; d: number }): Promise<ObsSwept> => {
    if (!st.hessian || st.d !== t.k) throw new WhittleError('INTERNAL', `SparseGPT: no Hessian of K = ${t.k} for ${t.weight}.`);
    return sparseGptWeight(w, t.k, t.n, st.hessian, st.rows, policyOf(sparsityFor(t)), settings, { label: t.weight, scalesFp16: t.dtype === 'float16' });
  };
  if (!step.sequential) {
    const inputs = activationInputsFor(model, targets);
    const bytes = hessianBytes(inputs);
    if (bytes > budget) {
      throw new WhittleError('OUT_OF_MEMORY', `SparseGPT in one pass needs ${gib(bytes)} for the Hessians of ${inputs.length} layer inputs, more than the ${gib(budget)} allowed. Calibrate sequentially (the default), keep some weights, or use Wanda.`, { hessianBytes: bytes, budget });
    }
    const stats = await collectCalibrationStats({ modelPath: model.path, tensors: inputs.map((i) => i.tensor), accumulators: ['hessian'], calibration, tokenizerPath: tok }, ctx);
    const byWeight = new Map<string, TensorStats>();
    for (const input of inputs) for (const w of input.weights) byWeight.set(w, stats.get(input.tensor) as TensorStats);
    return {
      async prune(t, w) {
        const swept = await sweep(t, w, byWeight.get(t.weight) ?? { rows: 0, d: 0 });
        return { weight: swept.weight, swept };
      },
    };
  }
  const { levels } = planSegments(graph, targets, [detectDecoderLayout(model).inputIds.name]);
  const peak = Math.max(0, ...levels.map((level) => hessianBytes(activationInputsFor(model, level))));
  if (peak > budget) {
    throw new WhittleError('OUT_OF_MEMORY', `SparseGPT needs ${gib(peak)} for the Hessians of one level of weights, more than the ${gib(budget)} allowed. Keep some weights, use Wanda, or run on a machine with more memory.`, { hessianBytes: peak, budget });
  }
  // The swept weights wait in a spool (spilled to a scratch file beyond its memory budget) until the
  // writer takes them; only their facts and, in the joint mode, the packed 4-bit layout stay in memory.
  const results = new Map<string, { swept: ObsSwept; weight: TensorSource }>();
  const spool = new TensorSpool(path.join(ctx.workDir, `.sparsegpt-${randomBytes(6).toString('hex')}.tmp`), options.spoolMemory);
  const inits = initializerMap(graph);
  const reader = new WeightReader();
  const back = new WeightReader();
  const close = async (): Promise<void> => {
    await back.close();
    await spool.remove();
  };
  try {
    await calibrateSequentially({
      model, targets, accumulators: ['hessian'], calibration, tokenizerPath: tok, what: 'SparseGPT',
      compress: async (level) => {
        const values = new Map<string, WeightValue>();
        for (const t of level.targets) {
          const w = await float32Of(await reader.read(inits.get(t.weight) as TensorProto), t);
          const swept = await sweep(t, w, level.stats.get(t.weight) as TensorStats);
          values.set(t.weight, await storedValue(swept.weight, t));
          const bytes = new Uint8Array(swept.weight.buffer, swept.weight.byteOffset, swept.weight.byteLength);
          results.set(t.weight, { swept: { ...swept, weight: EMPTY, mask: null }, weight: await spool.append(bytes) });
        }
        ctx.log('info', `SparseGPT: level ${level.index + 1}/${level.count} swept`);
        return values;
      },
    }, ctx);
  } catch (e) {
    await close();
    throw e;
  } finally {
    await reader.close();
  }
  return {
    async prune(t) {
      const r = results.get(t.weight);
      if (!r) throw new WhittleError('INTERNAL', `SparseGPT: ${t.weight} was not swept during sequential calibration.`);
      results.delete(t.weight);
      const bytes = (await back.read({ name: t.weight, dims: [], data: r.weight, stringData: [], externalData: [], metadataProps: [] } as unknown as TensorProto)).slice();
      const weight = new Float32Array(bytes.buffer, 0, bytes.byteLength / 4);
      return { weight, swept: { ...r.swept, weight } };
    },
    close,
  };
}

const EMPTY = new Float32Array(0);
