/**
 * `quantize.plan`: what a quantize step would do to a model before anything runs — each weight the
 * inspection found, marked 'quantize', 'keep' (a keep pattern matched) or 'skip' (with the reason), and the
 * model's size before and the estimated size after. Estimates by method, from shapes alone:
 *   RTN, GPTQ:       block-wise codes + scales (+ zero points) per weight (main/engine/quantize/estimate.ts),
 *                    each weight at its own bits when an `overrides` pattern matches it (GPTQ writes the
 *                    same tensors as RTN, so the same size)
 *   FP16:            every float32 tensor at half its bytes; tensors feeding float32-only ops stay float32
 *                    (not known from the inspection, so the real file is a little larger)
 *   INT8 dynamic,
 *   INT8 static:     int8 codes K·N bytes + float32 scales (N per channel, or 1) + int8 zero points
 * New tensors of 1 KiB or more go to external data at 4 KiB-aligned offsets, so each is rounded up to 4 KiB.
 */
import type { ModelInspection, QuantizableWeight, QuantizePlan, QuantizePlanWeight } from '../../preload/contract.ts';
import type { QuantizeFp16Step, QuantizeRtnStep, QuantizeStep } from '../../preload/recipe.ts';
import { WhittleError } from '../engine/errors.ts';
import { estimateQuantizedSize, type WeightEstimate } from '../engine/quantize/estimate.ts';

/** The patterns of one list (keep, exclude, overrides) as regular expressions; an invalid one is an INVALID_INPUT naming it. */
export function compilePatterns(patterns: readonly string[], what = 'Keep'): RegExp[] {
  return patterns.map((pattern, index) => {
    try {
      return new RegExp(pattern);
    } catch (e) {
      const why = e instanceof Error ? e.message.replace(/^Invalid regular expression: /, '') : String(e);
      throw new WhittleError(
        'INVALID_INPUT',
        `${what} pattern ${index + 1} "${pattern}" is not a valid regular expression (${why}). Fix or remove it.`,
        { pattern, index },
      );
    }
  });
}

/** The keep patterns as regular expressions; an invalid one is an INVALID_INPUT naming it. */
export function compileKeepPatterns(patterns: readonly string[]): RegExp[] {
  return compilePatterns(patterns, 'Keep');
}

const FLOAT_BYTES: Record<string, number> = { float32: 4, float16: 2, bfloat16: 2, float64: 8 };
const EXTERNAL_THRESHOLD = 1024, ALIGNMENT = 4096;
const onDisk = (bytes: number): number => (bytes >= EXTERNAL_THRESHOLD ? Math.ceil(bytes / ALIGNMENT) * ALIGNMENT : bytes);
const bytesOf = (w: Pick<QuantizableWeight, 'shape' | 'dtype'>): number => w.shape.reduce((a, b) => a * b, 1) * (FLOAT_BYTES[w.dtype] ?? 0);

/** One weight's fate under a method (before the rows are assembled). */
interface Fate {
  status: 'quantized' | 'kept' | 'skipped';
  reason?: string;
  bits?: number;
  override?: string;
  bytesAfter: number;
}

type Decide = (w: QuantizableWeight, bytes: number) => Fate;

/** RTN and GPTQ: estimate.ts per distinct bit width, each weight at its override's bits where one matches. */
function weightOnlyFates(inspection: ModelInspection, step: Extract<QuantizeStep, { method: 'rtn' | 'gptq' }>): Decide {
  const keep = compileKeepPatterns(step.keep);
  const overrides = compilePatterns(step.overrides.map((o) => o.pattern), 'Override').map((re, i) => ({ re, bits: step.overrides[i].bits, pattern: step.overrides[i].pattern }));
  const base: QuantizeRtnStep = {
    type: 'quantize', method: 'rtn', bits: step.bits, blockSize: step.blockSize, symmetric: step.symmetric, accuracyLevel: step.accuracyLevel,
    format: step.format, keep: step.keep, overrides: [],
  };
  const byBits = new Map<number, Map<string, WeightEstimate>>();
  const estimateAt = (bits: QuantizeRtnStep['bits']): Map<string, WeightEstimate> => {
    let m = byBits.get(bits);
    if (!m) {
      m = new Map(estimateQuantizedSize(inspection, { ...base, bits }).perWeight.map((w) => [w.name, w]));
      byBits.set(bits, m);
    }
    return m;
  };
  return (w, bytes) => {
    const override = overrides.find((o) => o.re.test(w.name));
    const bits = override?.bits ?? step.bits;
    const est = estimateAt(bits).get(w.name);
    if (est?.status === 'quantized') {
      return { status: 'quantized', bits, bytesAfter: est.bytesAfter, ...(override && override.bits !== step.bits ? { override: override.pattern } : {}) };
    }
    if (!w.skipReason && w.op !== 'Gather' && keep.some((re) => re.test(w.name))) return { status: 'kept', reason: est?.reason ?? 'the name matches a keep pattern', bytesAfter: bytes };
    return { status: 'skipped', reason: w.skipReason ?? est?.reason ?? 'not quantizable', bytesAfter: bytes };
  };
}

/** FP16: every float32 weight (embeddings and lookup tables too) at half its bytes, unless kept. */
function fp16Fates(step: QuantizeFp16Step): Decide {
  const keep = compileKeepPatterns(step.keep);
  return (w, bytes) => {
    const hit = keep.find((re) => re.test(w.name) || re.test(w.node));
    if (hit) return { status: 'kept', reason: `kept in float32: the name matches a keep pattern (${hit})`, bytesAfter: bytes };
    if (w.dtype === 'float16') return { status: 'skipped', reason: 'already float16', bytesAfter: bytes };
    if (w.dtype !== 'float32') return { status: 'skipped', reason: `weight type ${w.dtype} is not float32`, bytesAfter: bytes };
    return { status: 'quantized', bits: 16, bytesAfter: onDisk(bytes / 2) };
  };
}

/** INT8 dynamic and static: 2-D MatMul/Gemm weights, int8 codes + float32 scales (+ int8 zero points for QDQ). */
function int8Fates(step: Extract<QuantizeStep, { method: 'int8-dynamic' | 'int8-static' }>): Decide {
  const keep = compileKeepPatterns(step.keep);
  const exclude = step.method === 'int8-static' ? compilePatterns(step.exclude, 'Exclude') : [];
  return (w, bytes) => {
    if (w.skipReason) return { status: 'skipped', reason: w.skipReason, bytesAfter: bytes };
    if (w.op === 'Gather') return { status: 'skipped', reason: 'embeddings stay in float (int8 quantization covers MatMul/Gemm weights)', bytesAfter: bytes };
    const hit = keep.find((re) => re.test(w.name));
    if (hit) return { status: 'kept', reason: `kept in full precision: the name matches a keep pattern (${hit})`, bytesAfter: bytes };
    const excluded = exclude.find((re) => re.test(w.node));
    if (excluded) return { status: 'kept', reason: `excluded: the node name ${w.node} matches an exclude pattern (${excluded})`, bytesAfter: bytes };
    if (w.dtype !== 'float32' && w.dtype !== 'float16') return { status: 'skipped', reason: `weight type ${w.dtype} is not supported`, bytesAfter: bytes };
    if (w.shape.length !== 2) return { status: 'skipped', reason: `${w.shape.length}-D weight (batched MatMul); only 2-D weights are quantized`, bytesAfter: bytes };
    const [k, n] = [w.k ?? w.shape[0], w.n ?? w.shape[1]];
    const channels = step.perChannel ? n : 1;
    const zeroPoints = step.method === 'int8-static' ? onDisk(channels) : 0;
    return { status: 'quantized', bits: 8, bytesAfter: onDisk(k * n) + onDisk(channels * 4) + zeroPoints };
  };
}

const NOTES: Record<QuantizeStep['method'], string> = {
  rtn: 'Estimated from the shapes: codes, scales and zero points per block, model file plus external data, 4 KiB aligned.',
  gptq: 'GPTQ writes the same tensors as RTN, so the same size; estimated from the shapes, 4 KiB aligned.',
  fp16: 'Every float32 weight at half its size. Tensors that feed float32-only ops (norms, Softmax) and the boundary Casts are not counted, so the file is a little larger.',
  'int8-dynamic': 'One byte per weight plus a float32 scale per output channel (or per tensor), 4 KiB aligned.',
  'int8-static': 'One byte per weight plus a float32 scale and an int8 zero point per output channel (or per tensor); the activation scales are a few bytes.',
  qat: 'KD-QAT exports the same MatMulNBits tensors as RTN (accuracy level 0), so the same size; estimated from the shapes, 4 KiB aligned.',
};

export function planQuantize(inspection: ModelInspection, step: QuantizeStep): QuantizePlan {
  const decide: Decide = step.method === 'rtn' || step.method === 'gptq'
    ? weightOnlyFates(inspection, step)
    : step.method === 'qat' ? weightOnlyFates(inspection, { type: 'quantize', method: 'rtn', bits: step.bits, blockSize: step.blockSize, symmetric: step.symmetric, accuracyLevel: 0, format: 'matmulnbits', keep: [], overrides: [] })
    : step.method === 'fp16' ? fp16Fates(step) : int8Fates(step);
  const fates = new Map<string, Fate>();
  const counts = { quantize: 0, keep: 0, skip: 0 };
  let saved = 0;

  const weights = inspection.quantizable.map((w): QuantizePlanWeight => {
    const bytes = bytesOf(w);
    const earlier = fates.get(w.name);
    let fate: Fate;
    if (earlier) {
      // One tensor is counted once; a second consumer of the same tensor shares its fate.
      fate = { ...earlier, reason: `the same tensor as an earlier row${earlier.reason ? ` (${earlier.reason})` : ''}` };
    } else {
      fate = decide(w, bytes);
      fates.set(w.name, fate);
      if (fate.status === 'quantized') saved += bytes - fate.bytesAfter;
    }
    const action: QuantizePlanWeight['action'] = fate.status === 'quantized' ? 'quantize' : fate.status === 'kept' ? 'keep' : 'skip';
    counts[action] += 1;
    return {
      name: w.name, node: w.node, op: w.op, shape: w.shape, dtype: w.dtype, action,
      ...(fate.reason ? { reason: fate.reason } : {}),
      ...(action === 'quantize' && fate.bits !== undefined ? { bits: fate.bits } : {}),
      ...(action === 'quantize' && fate.override ? { override: fate.override } : {}),
      bytesBefore: bytes,
      bytesAfter: action === 'quantize' ? fate.bytesAfter : bytes,
    };
  });

  return {
    path: inspection.path,
    weights,
    bytesBefore: inspection.bytesOnDisk,
    bytesAfter: Math.max(0, inspection.bytesOnDisk - saved),
    modelBytes: inspection.bytesOnDisk,
    counts,
    method: step.method,
    parameters: inspection.parameters,
    note: NOTES[step.method],
  };
}
