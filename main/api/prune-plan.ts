/**
 * `prune.plan`: what a prune step would do to a model before anything runs — no calibration, no weight
 * read beyond the graph. The decisions are the engine's own:
 *   unstructured (magnitude, Wanda, SparseGPT): planPruneTargets (planTargets, keep patterns, the LM head
 *     rule), each weight at the step's sparsity under uniform allocation; under OWL the per-block
 *     sparsities come from activation outliers on the calibration text, so the preview names that
 *     instead of numbers; N:M: nmMisfits, the engine's K % M check, lists the weights that would fail;
 *   structured: checkStructured + planStructured with equal (zero) scores — which parts go depends on
 *     importance, how many and the parameters they hold do not (every part of a block is the same size).
 * Size after: unstructured float zeros take as many bytes as any weight (unchanged); SparseGPT with joint
 * quantization writes the pruned weights as MatMulNBits (quantize's estimate, estimate.ts); structured
 * removes the parameters' bytes.
 */
import type { PrunePlan, PrunePlanBlock, PrunePlanWeight } from '../../preload/contract.ts';
import { effectiveSparsity, importanceNeedsCalibration, parseNmPattern, type PruneStep, type PruneStructuredStep, type QuantizeRtnStep } from '../../preload/recipe.ts';
import { WhittleError } from '../engine/errors.ts';
import { inspectLoadedModel } from '../engine/model/inspect.ts';
import { toNumber } from '../engine/onnx/graph.ts';
import type { GraphProto } from '../engine/onnx/proto-types.ts';
import { readModel } from '../engine/onnx/reader.ts';
import { checkStructured, planStructured } from '../engine/prune/structured-plan.ts';
import { nmMisfits, planPruneTargets, type UnstructuredPruneStep } from '../engine/prune/targets.ts';
import { estimateQuantizedSize } from '../engine/quantize/estimate.ts';
import { type ArchitectureMap, mapArchitecture } from '../engine/rewrite/architecture.ts';
import type { ModelInspection } from '../../preload/contract.ts';

const elementBytes = (dtype: number): number => (dtype === 10 || dtype === 16 ? 2 : dtype === 11 ? 8 : 4);
const pct = (s: number): string => `${(s * 100).toFixed(s * 100 % 1 === 0 ? 0 : 1)} %`;

/** The plan for `step` on the model at `modelPath` (read here; the services run this on the inspection worker). */
export async function planPruneAt(modelPath: string, step: PruneStep): Promise<PrunePlan> {
  const model = await readModel(modelPath);
  if (!model.proto.graph) throw new WhittleError('MODEL_PARSE', `${modelPath} has no graph.`);
  return planPrune(model.path || modelPath, model.proto.graph, await inspectLoadedModel(model), step);
}

export function planPrune(path: string, graph: GraphProto, inspection: ModelInspection, step: PruneStep): PrunePlan {
  const map = mapArchitecture(graph);
  return step.method === 'structured' ? structuredPlan(path, graph, map, inspection, step) : unstructuredPlan(path, graph, inspection, step);
}

function unstructuredPlan(path: string, graph: GraphProto, inspection: ModelInspection, step: UnstructuredPruneStep): PrunePlan {
  const nm = step.pattern === undefined ? null : parseNmPattern(step.pattern);
  // The targets do not depend on the pattern; its K check is made here, reported rather than thrown.
  const { targets, skipped } = planPruneTargets(graph, { ...step, pattern: undefined } as UnstructuredPruneStep);
  const s = effectiveSparsity(step);
  const owl = step.allocation === 'owl';
  const weights: PrunePlanWeight[] = targets.map((t) => ({
    name: t.weight, block: t.block ?? null, role: t.role ?? 'other', shape: t.shape, k: t.k, params: t.k * t.n,
    sparsity: owl && t.block !== null && t.block !== undefined ? null : s,
  }));
  const byBlock = new Map<number | null, PrunePlanBlock>();
  for (const w of weights) {
    const row = byBlock.get(w.block) ?? { block: w.block, weights: 0, params: 0, sparsity: w.sparsity };
    row.weights += 1;
    row.params += w.params;
    if (w.sparsity === null) row.note = `set by the activation outliers on the calibration text, mean = ${pct(s)}`;
    byBlock.set(w.block, row);
  }
  const blocks = [...byBlock.values()].sort((a, b) => (a.block ?? Infinity) - (b.block ?? Infinity));
  const failing = nm ? nmMisfits(targets, nm).map((t) => ({ name: t.weight, k: t.k })) : [];
  const pruned = weights.reduce((a, w) => a + w.params, 0);
  // Uniform: each weight loses round(s·params) entries (per row for N:M and Wanda, about the same);
  // OWL: the parameter-weighted mean is s by construction (allocation.ts).
  const zeroed = Math.round(pruned * s);

  let bytesAfter = inspection.bytesOnDisk;
  let note = `${fmtCount(zeroed)} of ${fmtCount(inspection.parameters)} parameters set to zero; the file keeps its size: `
    + 'zeros take as many bytes as any weight, so only compression (zip) or a sparse kernel gains from them.';
  if (step.method === 'sparsegpt' && step.quantize) {
    const q = step.quantize;
    const rtn: QuantizeRtnStep = {
      type: 'quantize', method: 'rtn', bits: q.bits, blockSize: q.blockSize, symmetric: q.symmetric, accuracyLevel: q.accuracyLevel,
      format: 'matmulnbits', keep: [], overrides: [],
    } as QuantizeRtnStep;
    const names = new Set(targets.map((t) => t.weight));
    const est = estimateQuantizedSize(inspection, rtn).perWeight;
    const saved = est.filter((e) => names.has(e.name) && e.status === 'quantized').reduce((a, e) => a + e.bytesBefore - e.bytesAfter, 0);
    bytesAfter = Math.max(0, inspection.bytesOnDisk - saved);
    note = `${fmtCount(zeroed)} parameters set to zero and the pruned weights written as ${q.bits}-bit MatMulNBits `
      + '(the zeros are stored as codes like any other value, so the size is that of quantization alone).';
  }
  return {
    path, method: step.method, sparsity: s, allocation: step.allocation, weights,
    skipped: skipped.map((x) => ({ name: x.name, reason: x.reason })), blocks,
    nm: nm ? { pattern: step.pattern!, ok: failing.length === 0, failing } : null,
    structured: null,
    parametersBefore: inspection.parameters, parametersZeroed: zeroed, parametersRemoved: 0,
    bytesBefore: inspection.bytesOnDisk, bytesAfter, note,
  };
}

function structuredPlan(path: string, graph: GraphProto, map: ArchitectureMap, inspection: ModelInspection, step: PruneStructuredStep): PrunePlan {
  const req = { target: step.target, ratio: step.ratio, count: step.count, keep: step.keep };
  const { perBlock, groupSize } = checkStructured(map, req);
  const inits = new Map(graph.initializer.map((t) => [t.name, t]));
  const shapeOf = (name: string): number[] | null => {
    const t = inits.get(name);
    return t ? t.dims.map((d) => toNumber(d)) : null;
  };
  // Equal scores: the lowest-index parts go; which parts is importance's choice, how many and their size are not.
  const scores = map.blocks.map((b) => new Array<number>(step.target === 'heads' ? (b.attention.kvHeads ?? 0) : step.target === 'neurons' ? (b.mlp.intermediate ?? 0) : 1).fill(0));
  const plan = planStructured(map, req, scores, shapeOf);
  const cuts = new Map(plan.cuts.map((c) => [c.block, c]));
  const blocks: PrunePlanBlock[] = map.blocks.map((b) => {
    const base = { block: b.index, weights: 0, params: 0, sparsity: null, heads: b.attention.heads, kvHeads: b.attention.kvHeads, intermediate: b.mlp.intermediate };
    if (step.target === 'layers') {
      const at = plan.layers.indexOf(b.index);
      return { ...base, removed: at >= 0 ? 1 : 0, removedParams: at >= 0 ? plan.layerParams[at] : 0 };
    }
    const cut = cuts.get(b.index);
    if (!cut) return { ...base, removed: 0, kept: true, removedParams: 0 };
    return { ...base, removed: step.target === 'heads' ? cut.remove.length * groupSize : cut.remove.length, removedParams: cut.params };
  });
  const bytesPerParam = elementBytes(inits.get(map.blocks[0]?.mlp.up ?? map.blocks[0]?.attention.q ?? '')?.dataType ?? 1);
  const bytesAfter = Math.max(0, inspection.bytesOnDisk - plan.removedParameters * bytesPerParam);
  const what = step.target === 'heads' ? `${perBlock * groupSize} heads (${perBlock} KV group${perBlock > 1 ? 's' : ''}) per block`
    : step.target === 'neurons' ? `${perBlock} MLP neurons per block` : `${perBlock} of ${map.blocks.length} blocks`;
  const when = importanceNeedsCalibration(step.importance) ? 'when it runs, measured on the calibration text' : 'when it runs';
  const note = step.target === 'layers'
    ? `${what} removed (${fmtCount(plan.removedParameters)} parameters; the blocks chosen by ${step.importance} importance ${when}).`
    : `${what} removed (${fmtCount(plan.removedParameters)} parameters; which ones, ${step.importance} importance decides ${when}).`;
  return {
    path, method: 'structured', sparsity: null, allocation: null, weights: [], skipped: [], blocks, nm: null,
    structured: { target: step.target, perBlock, groupSize, ...(step.target === 'heads' ? { removedHeads: perBlock * groupSize } : {}) },
    parametersBefore: inspection.parameters, parametersZeroed: 0, parametersRemoved: plan.removedParameters,
    bytesBefore: inspection.bytesOnDisk, bytesAfter, note,
  };
}

function fmtCount(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(2)} B` : n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} K` : String(n);
}
