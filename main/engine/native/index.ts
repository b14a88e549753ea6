/**
 * Whittle's native kernels (native-kernels/, a Node-API addon): typed, validated wrappers.
 *
 * Every function that does real work returns a promise: the addon runs it on a libuv thread and spreads
 * it over its own thread pool (setThreads), so the event loop never blocks. Do not modify or transfer
 * the input arrays until the promise settles. `reference` holds the synchronous, single-threaded scalar
 * twins the fast kernels are tested against.
 *
 * The addon is loaded lazily on first use from appPaths.nativeAddon(); when it has not been built, calls
 * fail with WhittleError('INTERNAL', 'The native kernels are not built. Run `npm run build:native`.').
 * The async functions report every failure as a rejected promise: bad arguments (checked before any
 * work starts) and problems found in the data (a NaN weight) with WhittleError('INVALID_INPUT').
 */
import { existsSync } from 'node:fs';
import { ERROR_CODES, WhittleError, type ErrorCode } from '../errors.ts';
import { appPaths } from '../../paths.ts';

export type QuantBits = 2 | 4 | 8;
/** Tie rule for rounding to the integer grid: 'half-even' (default, as QuantizeLinear) or 'half-away' (as ONNX Runtime's MLAS blockwise quantizer, roundf). */
export type Rounding = 'half-even' | 'half-away';

export interface CpuInfo {
  avx2: boolean;
  fma: boolean;
  f16c: boolean;
  hardwareThreads: number;
  /** The code path kernels take now: 'avx2' (AVX2+FMA+F16C found and not disabled) or 'baseline'. */
  simd: 'avx2' | 'baseline';
}

export interface GemmOptions {
  /** B is stored [N, K] and used transposed. */
  transB?: boolean;
  /** Default 1. */
  alpha?: number;
  /** Default 0. Non-zero needs `c`: C = alpha·A·B + beta·C. */
  beta?: number;
  /** Output [M, N], updated in place and returned. Without it a new array is returned. */
  c?: Float32Array;
}

export interface BlockwiseOptions {
  /** Rows of the weight: input features (MatMulNBits K). */
  k: number;
  /** Columns of the weight: output features (MatMulNBits N). */
  n: number;
  bits: QuantBits;
  /** Power of two, 16..256. */
  blockSize: number;
  symmetric: boolean;
  /** The weight is a Uint16Array of float16 bits (required to pass a Uint16Array). */
  weightIsFp16?: boolean;
  /** Round each scale to float16 before quantizing with it, so the scales convert to float16 exactly (as an fp16 MatMulNBits needs). Default: weightIsFp16. */
  scalesFp16?: boolean;
  /** Default 'half-even'. */
  rounding?: Rounding;
}

/** A weight in the com.microsoft.MatMulNBits layout (TECHNIQUES.md, MatMulNBits). */
export interface BlockwiseQuantized {
  /** B: uint8 [N, kBlocks, blockSize·bits/8], packed along K, first value in the low bits. */
  packed: Uint8Array;
  /** [N, kBlocks]. Symmetric scales can be negative (ONNX Runtime's convention: the value of largest magnitude maps to q = 0). */
  scales: Float32Array;
  /** Packed uint8 [N, ceil(kBlocks·bits/8)], first in the low bits; null for symmetric (MatMulNBits' default 2^(bits-1)). */
  zeroPoints: Uint8Array | null;
  k: number;
  n: number;
  bits: QuantBits;
  blockSize: number;
  kBlocks: number;
  /** Σ (w − dequantized w)² over all K·N weights (summed in double). */
  sqError: number;
}

export interface BlockwiseLayout {
  kBlocks: number;
  /** Bytes per block in `packed`: blockSize·bits/8. */
  blobBytes: number;
  packedBytes: number;
  scaleCount: number;
  /** Length of the zero-point array (asymmetric only). */
  zeroPointBytes: number;
}

interface BlockwiseParams {
  k: number;
  n: number;
  bits: number;
  blockSize: number;
  symmetric?: boolean;
  fp16Scales?: boolean;
  rounding?: Rounding;
}

/** The addon's raw exports (outputs first, as in native-kernels/src). */
interface Addon {
  napiVersion: number;
  setThreads(n: number): void;
  getThreads(): number;
  cpuInfo(): CpuInfo;
  setForceBaseline(force: boolean): void;
  f32ToF16(dst: Uint16Array, src: Float32Array): Promise<Uint16Array>;
  f16ToF32(dst: Float32Array, src: Uint16Array): Promise<Float32Array>;
  bf16ToF32(dst: Float32Array, src: Uint16Array): Promise<Float32Array>;
  f32ToF16Ref(dst: Uint16Array, src: Float32Array): void;
  f16ToF32Ref(dst: Float32Array, src: Uint16Array): void;
  bf16ToF32Ref(dst: Float32Array, src: Uint16Array): void;
  gemm(c: Float32Array, a: Float32Array, b: Float32Array, m: number, n: number, k: number, transB: boolean, alpha: number, beta: number): Promise<Float32Array>;
  gemmRef(c: Float32Array, a: Float32Array, b: Float32Array, m: number, n: number, k: number, transB: boolean, alpha: number, beta: number): void;
  quantizeBlockwise(packed: Uint8Array, scales: Float32Array, zeroPoints: Uint8Array | null, weight: Float32Array | Uint16Array, params: BlockwiseParams): Promise<number>;
  quantizeBlockwiseRef(packed: Uint8Array, scales: Float32Array, zeroPoints: Uint8Array | null, weight: Float32Array | Uint16Array, params: BlockwiseParams): number;
  dequantizeBlockwise(weight: Float32Array, packed: Uint8Array, scales: Float32Array, zeroPoints: Uint8Array | null, params: BlockwiseParams): Promise<Float32Array>;
  dequantizeBlockwiseRef(weight: Float32Array, packed: Uint8Array, scales: Float32Array, zeroPoints: Uint8Array | null, params: BlockwiseParams): void;
  choleskyLower(a: Float64Array, d: number): Promise<number>;
  choleskyLowerRef(a: Float64Array, d: number): number;
  invertLower(a: Float64Array, d: number): Promise<Float64Array>;
  invertLowerRef(a: Float64Array, d: number): void;
  hessianAccumulate(h: Float32Array, x: Float32Array, n: number, d: number): Promise<Float32Array>;
  hessianAccumulateRef(h: Float32Array, x: Float32Array, n: number, d: number): void;
  prepareHessian(hinvUpper: Float32Array, dead: Uint8Array, sum: Float32Array, d: number, params: PrepareParams): Promise<number>;
  prepareHessianRef(hinvUpper: Float32Array, dead: Uint8Array, sum: Float32Array, d: number, params: PrepareParams): number;
  hessianActOrder(order: Int32Array, sum: Float32Array, d: number, count: number): void;
  gptqSweep(packed: Uint8Array, scales: Float32Array, zeroPoints: Uint8Array | null, weight: Float32Array, hinvUpper: Float32Array,
    order: Int32Array | null, dead: Uint8Array, params: GptqParams): Promise<GptqNativeResult>;
  gptqSweepRef(packed: Uint8Array, scales: Float32Array, zeroPoints: Uint8Array | null, weight: Float32Array, hinvUpper: Float32Array,
    order: Int32Array | null, dead: Uint8Array, params: GptqParams): GptqNativeResult;
  gptqQuantize(packed: Uint8Array, scales: Float32Array, zeroPoints: Uint8Array | null, weight: Float32Array, hessianSum: Float32Array,
    params: GptqParams): Promise<GptqNativeResult & { dead: number }>;
  gptqQuantizeRef(packed: Uint8Array, scales: Float32Array, zeroPoints: Uint8Array | null, weight: Float32Array, hessianSum: Float32Array,
    params: GptqParams): GptqNativeResult & { dead: number };
}

interface PrepareParams {
  count: number;
  percdamp: number;
  order?: Int32Array;
  label?: string;
}

interface GptqParams extends BlockwiseParams {
  columnBlock: number;
  count?: number;
  percdamp?: number;
  actOrder?: boolean;
  label?: string;
}

interface GptqNativeResult {
  loss: number;
  sqError: number;
}

const NOT_BUILT = 'The native kernels are not built. Run `npm run build:native`.';

let addon: Addon | undefined;

function load(): Addon {
  if (addon) return addon;
  const file = appPaths.nativeAddon();
  if (!existsSync(file)) throw new WhittleError('INTERNAL', NOT_BUILT, { path: file });
  const mod = { exports: {} as unknown };
  try {
    // process.dlopen works the same from the ES-module sources and from the CommonJS bundles.
    process.dlopen(mod, file);
  } catch (e) {
    throw new WhittleError('INTERNAL', `The native kernels at ${file} could not be loaded (${e instanceof Error ? e.message : String(e)}). ` +
      'Rebuild them with `npm run build:native -- --force`.', { path: file }, { cause: e });
  }
  addon = mod.exports as Addon;
  return addon;
}

/** True when the addon is built and loads. Never throws. */
export function nativeAvailable(): boolean {
  try {
    load();
    return true;
  } catch {
    return false;
  }
}

// ---- errors ------------------------------------------------------------------------------------------

function toWhittleError(e: unknown): unknown {
  if (e instanceof WhittleError) return e;
  if (e instanceof Error) {
    const code = (e as Error & { code?: unknown }).code;
    if (typeof code === 'string' && (ERROR_CODES as readonly string[]).includes(code)) {
      return new WhittleError(code as ErrorCode, e.message, undefined, { cause: e });
    }
    return new WhittleError('INTERNAL', `Native kernel failed: ${e.message}`, undefined, { cause: e });
  }
  return e;
}

function callSync<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw toWhittleError(e);
  }
}

function callAsync<T>(fn: () => Promise<T>): Promise<T> {
  // Argument errors are thrown by the binding before the promise exists: surface them as rejections too.
  let p: Promise<T>;
  try {
    p = fn();
  } catch (e) {
    return Promise.reject(toWhittleError(e));
  }
  return p.catch((e: unknown) => {
    throw toWhittleError(e);
  });
}

function invalid(message: string, details?: Record<string, unknown>): WhittleError {
  return new WhittleError('INVALID_INPUT', message, details);
}

function checkCount(value: unknown, name: string, min = 0): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw invalid(`${name} must be an integer ≥ ${min}, got ${String(value)}.`);
  }
  return value;
}

function checkArray(value: unknown, ctor: Float32ArrayConstructor | Uint16ArrayConstructor | Uint8ArrayConstructor, name: string): void {
  if (!(value instanceof ctor)) throw invalid(`${name} must be a ${ctor.name}.`);
}

function checkLength(arr: { length: number }, expected: number, name: string, shape: string): void {
  if (arr.length !== expected) {
    throw invalid(`${name} must hold ${shape} = ${expected} elements, but it has ${arr.length}.`, { expected, actual: arr.length });
  }
}

// ---- runtime -----------------------------------------------------------------------------------------

/** Threads the kernels use (the calling libuv thread included). n <= 0 restores the default: hardware concurrency. */
export function setThreads(n: number): void {
  if (typeof n !== 'number' || !Number.isInteger(n)) throw invalid(`setThreads: n must be an integer, got ${String(n)}.`);
  load().setThreads(n);
}

export function getThreads(): number {
  return load().getThreads();
}

export function cpuInfo(): CpuInfo {
  return load().cpuInfo();
}

/** Makes every kernel take its portable baseline path even where AVX2/FMA/F16C exist (for tests and benchmarks). */
export function setForceBaseline(force: boolean): void {
  load().setForceBaseline(force);
}

// ---- fp16 / bf16 -------------------------------------------------------------------------------------

/** float32 → float16 bits, round to nearest even (overflow to ±inf, subnormals kept, NaN quieted with its sign). */
export async function f32ToF16(src: Float32Array): Promise<Uint16Array> {
  checkArray(src, Float32Array, 'src');
  return callAsync(() => load().f32ToF16(new Uint16Array(src.length), src));
}

/** float16 bits → float32 (exact; NaN quieted). */
export async function f16ToF32(src: Uint16Array): Promise<Float32Array> {
  checkArray(src, Uint16Array, 'src');
  return callAsync(() => load().f16ToF32(new Float32Array(src.length), src));
}

/** bfloat16 bits → float32 (exact). */
export async function bf16ToF32(src: Uint16Array): Promise<Float32Array> {
  checkArray(src, Uint16Array, 'src');
  return callAsync(() => load().bf16ToF32(new Float32Array(src.length), src));
}

// ---- GEMM --------------------------------------------------------------------------------------------

interface GemmPlan {
  c: Float32Array;
  transB: boolean;
  alpha: number;
  beta: number;
}

function planGemm(a: Float32Array, b: Float32Array, m: number, n: number, k: number, opts: GemmOptions): GemmPlan {
  checkArray(a, Float32Array, 'a');
  checkArray(b, Float32Array, 'b');
  checkCount(m, 'm');
  checkCount(n, 'n');
  checkCount(k, 'k');
  const transB = opts.transB ?? false;
  const alpha = opts.alpha ?? 1;
  const beta = opts.beta ?? 0;
  if (!Number.isFinite(alpha) || !Number.isFinite(beta)) throw invalid('gemm: alpha and beta must be finite numbers.');
  checkLength(a, m * k, 'gemm: a', 'm·k');
  checkLength(b, k * n, 'gemm: b', transB ? 'n·k' : 'k·n');
  if (opts.c === undefined && beta !== 0) throw invalid('gemm: beta ≠ 0 needs an input matrix c.');
  let c: Float32Array;
  if (opts.c !== undefined) {
    checkArray(opts.c, Float32Array, 'gemm: c');
    checkLength(opts.c, m * n, 'gemm: c', 'm·n');
    c = opts.c;
  } else {
    c = new Float32Array(m * n);
  }
  return { c, transB, alpha, beta };
}

/**
 * C[M,N] = alpha · A[M,K] · B + beta · C, row-major; B is [K,N], or [N,K] used transposed with transB.
 * Without opts.c a new C is returned; with it, C is updated in place and returned.
 */
export async function gemm(a: Float32Array, b: Float32Array, m: number, n: number, k: number, opts: GemmOptions = {}): Promise<Float32Array> {
  const p = planGemm(a, b, m, n, k, opts);
  return callAsync(() => load().gemm(p.c, a, b, m, n, k, p.transB, p.alpha, p.beta));
}

// ---- block-wise quantization (com.microsoft.MatMulNBits) -------------------------------------------

/** Array sizes of a [K, N] weight quantized block-wise along K. */
export function blockwiseLayout(k: number, n: number, bits: QuantBits, blockSize: number): BlockwiseLayout {
  const kBlocks = Math.ceil(k / blockSize);
  const blobBytes = (blockSize * bits) / 8;
  return {
    kBlocks,
    blobBytes,
    packedBytes: n * kBlocks * blobBytes,
    scaleCount: n * kBlocks,
    zeroPointBytes: n * Math.ceil((kBlocks * bits) / 8),
  };
}

function checkBlockwiseShape(k: unknown, n: unknown, bits: unknown, blockSize: unknown): void {
  checkCount(k, 'k', 1);
  checkCount(n, 'n', 1);
  if (bits !== 2 && bits !== 4 && bits !== 8) throw invalid(`bits must be 2, 4 or 8, got ${String(bits)}.`);
  if (typeof blockSize !== 'number' || !Number.isInteger(blockSize) || blockSize < 16 || blockSize > 256 || (blockSize & (blockSize - 1)) !== 0) {
    throw invalid(`blockSize must be a power of two from 16 to 256, got ${String(blockSize)}.`);
  }
}

interface QuantizePlan {
  result: BlockwiseQuantized;
  params: BlockwiseParams;
}

function planQuantize(weight: Float32Array | Uint16Array, opts: BlockwiseOptions): QuantizePlan {
  if (typeof opts !== 'object' || opts === null) throw invalid('quantizeBlockwise: options are required.');
  const { k, n, bits, blockSize, symmetric } = opts;
  checkBlockwiseShape(k, n, bits, blockSize);
  if (typeof symmetric !== 'boolean') throw invalid('symmetric must be true or false.');
  const fp16 = opts.weightIsFp16 ?? false;
  if (fp16) {
    if (!(weight instanceof Uint16Array)) throw invalid('weightIsFp16 is set, so the weight must be a Uint16Array of float16 bits.');
  } else if (weight instanceof Uint16Array) {
    throw invalid('A Uint16Array weight must hold float16 bits: pass weightIsFp16: true (convert bfloat16 with bf16ToF32 first).');
  } else if (!(weight instanceof Float32Array)) {
    throw invalid('The weight must be a Float32Array, or a Uint16Array of float16 bits with weightIsFp16: true.');
  }
  const rounding = opts.rounding ?? 'half-even';
  if (rounding !== 'half-even' && rounding !== 'half-away') throw invalid(`rounding must be 'half-even' or 'half-away', got ${String(rounding)}.`);
  checkLength(weight, k * n, 'weight', 'k·n');
  const layout = blockwiseLayout(k, n, bits, blockSize);
  return {
    result: {
      packed: new Uint8Array(layout.packedBytes),
      scales: new Float32Array(layout.scaleCount),
      zeroPoints: symmetric ? null : new Uint8Array(layout.zeroPointBytes),
      k, n, bits, blockSize,
      kBlocks: layout.kBlocks,
      sqError: 0,
    },
    params: { k, n, bits, blockSize, symmetric, fp16Scales: opts.scalesFp16 ?? fp16, rounding },
  };
}

/**
 * Round-to-nearest block-wise quantization of one MatMul weight W [K, N] (row-major, as stored in the
 * ONNX initializer) into the MatMulNBits layout. Scale / zero-point rule: ONNX Runtime's
 * (native-kernels/src/blockwise_format.h). Rejects NaN / infinite weights with INVALID_INPUT.
 */
export async function quantizeBlockwise(weight: Float32Array | Uint16Array, opts: BlockwiseOptions): Promise<BlockwiseQuantized> {
  const { result, params } = planQuantize(weight, opts);
  result.sqError = await callAsync(() => load().quantizeBlockwise(result.packed, result.scales, result.zeroPoints, weight, params));
  return result;
}

function planDequantize(q: BlockwiseQuantized): BlockwiseParams {
  if (typeof q !== 'object' || q === null) throw invalid('dequantizeBlockwise: a quantized weight is required.');
  checkBlockwiseShape(q.k, q.n, q.bits, q.blockSize);
  const layout = blockwiseLayout(q.k, q.n, q.bits, q.blockSize);
  checkArray(q.packed, Uint8Array, 'packed');
  checkArray(q.scales, Float32Array, 'scales');
  checkLength(q.packed, layout.packedBytes, 'packed', 'n·kBlocks·blockSize·bits/8');
  checkLength(q.scales, layout.scaleCount, 'scales', 'n·kBlocks');
  if (q.zeroPoints !== null) {
    checkArray(q.zeroPoints, Uint8Array, 'zeroPoints');
    checkLength(q.zeroPoints, layout.zeroPointBytes, 'zeroPoints', 'n·ceil(kBlocks·bits/8)');
  }
  return { k: q.k, n: q.n, bits: q.bits, blockSize: q.blockSize };
}

/** The inverse: W [K, N] float32 with w = (q − zp) · scale. */
export async function dequantizeBlockwise(q: BlockwiseQuantized): Promise<Float32Array> {
  const params = planDequantize(q);
  return callAsync(() => load().dequantizeBlockwise(new Float32Array(q.k * q.n), q.packed, q.scales, q.zeroPoints, params));
}

// ---- float64 linear algebra (the Hessian core's building blocks) --------------------------------------

function checkSquare(a: Float64Array, d: number, fn: string): void {
  if (!(a instanceof Float64Array)) throw invalid(`${fn}: a must be a Float64Array.`);
  checkCount(d, `${fn}: d`);
  checkLength(a, d * d, `${fn}: a`, 'd·d');
}

/**
 * A[d×d] = L·Lᵀ in place (row-major float64; the lower triangle is read, L overwrites it and the strict
 * upper triangle is zeroed). Blocked and multi-threaded. Resolves with -1 when A is positive definite,
 * otherwise with the index of the first pivot that is not positive (A is then left partly factored).
 */
export async function choleskyLower(a: Float64Array, d: number): Promise<number> {
  checkSquare(a, d, 'choleskyLower');
  return callAsync(() => load().choleskyLower(a, d));
}

/** L → L⁻¹ in place for a lower-triangular L[d×d] (float64, zero strict upper triangle, non-zero diagonal). */
export async function invertLower(a: Float64Array, d: number): Promise<Float64Array> {
  checkSquare(a, d, 'invertLower');
  return callAsync(() => load().invertLower(a, d));
}

// ---- Hessian (GPTQ / SparseGPT) ------------------------------------------------------------------------

function checkAccumulate(h: Float32Array, x: Float32Array, n: number, d: number): void {
  checkArray(h, Float32Array, 'hessianAccumulate: h');
  checkArray(x, Float32Array, 'hessianAccumulate: x');
  checkCount(n, 'hessianAccumulate: n');
  checkCount(d, 'hessianAccumulate: d', 1);
  checkLength(h, d * d, 'hessianAccumulate: h', 'd·d');
  checkLength(x, n * d, 'hessianAccumulate: x', 'n·d');
}

/**
 * H[d×d] += Xᵀ·X for a batch X [n×d] (row-major float32): H is float32, both triangles updated in place
 * (by the same increments, so a symmetric H stays exactly symmetric). Multi-threaded SYRK.
 */
export async function hessianAccumulate(h: Float32Array, x: Float32Array, n: number, d: number): Promise<void> {
  checkAccumulate(h, x, n, d);
  await callAsync(() => load().hessianAccumulate(h, x, n, d));
}

export interface PrepareHessianOptions {
  /** Dampening: H += percdamp · mean(diag H) · I (GPTQ: 0.01). ≥ 0. */
  percdamp: number;
  /** Sweep order: order[a] = the input at position a (a permutation of 0..d−1), e.g. hessianActOrder. */
  order?: Int32Array;
  /** Names the layer in error messages ("the Hessian of <label> is not positive definite"). */
  label?: string;
}

export interface PreparedHessian {
  /** U [d×d] row-major, upper triangular (zero below the diagonal), Uᵀ·U = H⁻¹, rows and columns in sweep order. */
  hinvUpper: Float32Array;
  /** Dead inputs (S[i,i] == 0), ascending: their weights must be zeroed. */
  dead: Int32Array;
  /** The order it was prepared in (null: natural order). */
  order: Int32Array | null;
}

interface PreparePlan {
  hinvUpper: Float32Array;
  deadMask: Uint8Array;
  order: Int32Array | null;
  params: PrepareParams;
}

function checkPercdamp(percdamp: unknown): number {
  if (typeof percdamp !== 'number' || !Number.isFinite(percdamp) || percdamp < 0) {
    throw invalid(`percdamp must be a finite number ≥ 0, got ${String(percdamp)}.`);
  }
  return percdamp;
}

function checkRowCount(count: unknown): number {
  if (typeof count !== 'number' || !Number.isFinite(count) || count <= 0) {
    throw invalid(`count (the calibration rows summed into the Hessian) must be a positive number, got ${String(count)}.`);
  }
  return count;
}

function planPrepare(sum: Float32Array, d: number, count: number, opts: PrepareHessianOptions): PreparePlan {
  checkArray(sum, Float32Array, 'prepareHessian: sum');
  checkCount(d, 'prepareHessian: d', 1);
  checkLength(sum, d * d, 'prepareHessian: sum', 'd·d');
  checkRowCount(count);
  if (typeof opts !== 'object' || opts === null) throw invalid('prepareHessian: options are required.');
  const percdamp = checkPercdamp(opts.percdamp);
  const order = opts.order ?? null;
  if (order !== null) {
    if (!(order instanceof Int32Array)) throw invalid('prepareHessian: order must be an Int32Array.');
    checkLength(order, d, 'prepareHessian: order', 'd');
  }
  const params: PrepareParams = { count, percdamp };
  if (order) params.order = order;
  if (opts.label !== undefined) params.label = String(opts.label);
  return { hinvUpper: new Float32Array(d * d), deadMask: new Uint8Array(d), order, params };
}

function finishPrepare(p: PreparePlan, deadCount: number): PreparedHessian {
  const dead = new Int32Array(deadCount);
  let j = 0;
  for (let i = 0; i < p.deadMask.length; i++) if (p.deadMask[i]) dead[j++] = i;
  return { hinvUpper: p.hinvUpper, dead, order: p.order };
}

/**
 * The shared Hessian core (GPTQ and SparseGPT): from S = Σ XᵀX over `count` rows, H = 2/count · S;
 * dead inputs (S[i,i] = 0) get H[i,i] = 1 and are reported; H += percdamp · mean(diag H) · I; optionally
 * permuted (opts.order); returns U, the upper Cholesky factor of H⁻¹ (float64 inside: one blocked
 * Cholesky of the reversed H and one triangular inverse, multi-threaded). A damped H that is not
 * positive definite → INVALID_INPUT "The Hessian of <label> is not positive definite …; increase percdamp."
 */
export async function prepareHessian(sum: Float32Array, d: number, count: number, opts: PrepareHessianOptions): Promise<PreparedHessian> {
  const p = planPrepare(sum, d, count, opts);
  const dead = await callAsync(() => load().prepareHessian(p.hinvUpper, p.deadMask, sum, d, p.params));
  return finishPrepare(p, dead);
}

/** GPTQ's act-order: inputs by decreasing diag(H) (dead inputs count as 1), ties in input order. Synchronous, O(d log d). */
export function hessianActOrder(sum: Float32Array, d: number, count: number): Int32Array {
  checkArray(sum, Float32Array, 'hessianActOrder: sum');
  checkCount(d, 'hessianActOrder: d', 1);
  checkLength(sum, d * d, 'hessianActOrder: sum', 'd·d');
  checkRowCount(count);
  const order = new Int32Array(d);
  callSync(() => load().hessianActOrder(order, sum, d, count));
  return order;
}

// ---- GPTQ (arXiv 2210.17323) → MatMulNBits ------------------------------------------------------------

export interface GptqSweepOptions {
  /** Input features (rows of W [K, N]); the Hessian is [K×K]. */
  k: number;
  /** Output features. */
  n: number;
  bits: QuantBits;
  /** The group: MatMulNBits block along K, power of two 16..256. */
  blockSize: number;
  symmetric: boolean;
  /** Inputs per lazy-update block (GPTQ: 128). */
  columnBlock: number;
  /** Default 'half-even'. */
  rounding?: Rounding;
  /** Round scales to float16 before quantizing with them (a float16 model's MatMulNBits). Default false. */
  scalesFp16?: boolean;
}

export interface GptqOptions extends GptqSweepOptions {
  /** Dampening, see prepareHessian (GPTQ: 0.01). */
  percdamp: number;
  /** Sweep inputs by decreasing diag(H), with static groups (still plain MatMulNBits, no g_idx). */
  actOrder: boolean;
  /** Names the layer in error messages. */
  label?: string;
}

/**
 * A GPTQ-quantized weight: the MatMulNBits layout of quantizeBlockwise (sqError = Σ (w − dequantized)²
 * against the original weight), plus `loss` = ½ Σ_{i,channel} err², err = (w − q)/Hinv[i,i] — GPTQ's
 * Σ (w − q)²/Hinv[i,i]²/2, the output error the sweep predicts — and `dead`, the count of dead inputs.
 */
export interface GptqQuantized extends BlockwiseQuantized {
  loss: number;
  dead: number;
}

interface GptqPlan {
  result: GptqQuantized;
  params: GptqParams;
}

function planGptqShape(weight: Float32Array, opts: GptqSweepOptions, fn: string): GptqPlan {
  if (typeof opts !== 'object' || opts === null) throw invalid(`${fn}: options are required.`);
  const { k, n, bits, blockSize, symmetric, columnBlock } = opts;
  checkBlockwiseShape(k, n, bits, blockSize);
  if (typeof symmetric !== 'boolean') throw invalid('symmetric must be true or false.');
  checkCount(columnBlock, 'columnBlock', 1);
  if (!(weight instanceof Float32Array)) throw invalid(`${fn}: the weight must be a Float32Array (convert float16 with f16ToF32).`);
  checkLength(weight, k * n, `${fn}: weight`, 'k·n');
  const rounding = opts.rounding ?? 'half-even';
  if (rounding !== 'half-even' && rounding !== 'half-away') throw invalid(`rounding must be 'half-even' or 'half-away', got ${String(rounding)}.`);
  const layout = blockwiseLayout(k, n, bits, blockSize);
  return {
    result: {
      packed: new Uint8Array(layout.packedBytes),
      scales: new Float32Array(layout.scaleCount),
      zeroPoints: symmetric ? null : new Uint8Array(layout.zeroPointBytes),
      k, n, bits, blockSize,
      kBlocks: layout.kBlocks,
      sqError: 0,
      loss: 0,
      dead: 0,
    },
    params: { k, n, bits, blockSize, symmetric, fp16Scales: opts.scalesFp16 ?? false, rounding, columnBlock },
  };
}

function planGptq(weight: Float32Array, hessianSum: Float32Array, count: number, opts: GptqOptions): GptqPlan {
  const p = planGptqShape(weight, opts, 'gptqQuantize');
  checkArray(hessianSum, Float32Array, 'gptqQuantize: hessianSum');
  checkLength(hessianSum, opts.k * opts.k, 'gptqQuantize: hessianSum', 'k·k');
  p.params.count = checkRowCount(count);
  p.params.percdamp = checkPercdamp(opts.percdamp);
  if (typeof opts.actOrder !== 'boolean') throw invalid('actOrder must be true or false.');
  p.params.actOrder = opts.actOrder;
  if (opts.label !== undefined) p.params.label = String(opts.label);
  return p;
}

interface SweepPlan extends GptqPlan {
  deadMask: Uint8Array;
}

function planSweep(weight: Float32Array, prepared: PreparedHessian, opts: GptqSweepOptions): SweepPlan {
  const p = planGptqShape(weight, opts, 'gptqSweep');
  if (typeof prepared !== 'object' || prepared === null) throw invalid('gptqSweep: a prepared Hessian is required.');
  checkArray(prepared.hinvUpper, Float32Array, 'gptqSweep: hinvUpper');
  checkLength(prepared.hinvUpper, opts.k * opts.k, 'gptqSweep: hinvUpper', 'k·k');
  if (prepared.order !== null) {
    if (!(prepared.order instanceof Int32Array)) throw invalid('gptqSweep: order must be an Int32Array or null.');
    checkLength(prepared.order, opts.k, 'gptqSweep: order', 'k');
  }
  if (!(prepared.dead instanceof Int32Array)) throw invalid('gptqSweep: dead must be an Int32Array.');
  const deadMask = new Uint8Array(opts.k);
  for (const i of prepared.dead) {
    if (!Number.isInteger(i) || i < 0 || i >= opts.k) throw invalid(`gptqSweep: dead input ${i} is out of range 0..${opts.k - 1}.`);
    deadMask[i] = 1;
  }
  return { ...p, deadMask };
}

function finishGptq(result: GptqQuantized, r: GptqNativeResult, dead: number): GptqQuantized {
  result.loss = r.loss;
  result.sqError = r.sqError;
  result.dead = dead;
  return result;
}

/**
 * GPTQ for one MatMul weight W [K, N] (ONNX layout, K = d_in) from its input's Hessian sum S [K×K]
 * (Σ XᵀX over `count` calibration rows, hessianAccumulate), into the MatMulNBits layout of
 * quantizeBlockwise (same scale / zero-point rule). Dead inputs → their weights zeroed; act-order sweeps
 * by decreasing diag(H) with static groups; without it each group's grid is fitted when the sweep reaches
 * it. Column blocks of `columnBlock` with the lazy batch update. Multi-threaded across output channels
 * and bit-identical to reference.gptqSweep given the same prepared Hessian. Not positive definite →
 * INVALID_INPUT (increase percdamp).
 */
export async function gptqQuantize(weight: Float32Array, hessianSum: Float32Array, count: number, opts: GptqOptions): Promise<GptqQuantized> {
  const p = planGptq(weight, hessianSum, count, opts);
  const r = await callAsync(() => load().gptqQuantize(p.result.packed, p.result.scales, p.result.zeroPoints, weight, hessianSum, p.params));
  return finishGptq(p.result, r, r.dead);
}

/** The GPTQ sweep alone, on a Hessian prepared by prepareHessian (with the order it was prepared in: act-order ⇔ static groups). */
export async function gptqSweep(weight: Float32Array, prepared: PreparedHessian, opts: GptqSweepOptions): Promise<GptqQuantized> {
  const p = planSweep(weight, prepared, opts);
  const r = await callAsync(() => load().gptqSweep(p.result.packed, p.result.scales, p.result.zeroPoints, weight, prepared.hinvUpper,
    prepared.order, p.deadMask, p.params));
  return finishGptq(p.result, r, prepared.dead.length);
}

// ---- references --------------------------------------------------------------------------------------

/** Synchronous single-threaded scalar references (native-kernels/src/reference/), same contracts as above. */
export const reference = {
  f32ToF16(src: Float32Array): Uint16Array {
    checkArray(src, Float32Array, 'src');
    const dst = new Uint16Array(src.length);
    callSync(() => load().f32ToF16Ref(dst, src));
    return dst;
  },
  f16ToF32(src: Uint16Array): Float32Array {
    checkArray(src, Uint16Array, 'src');
    const dst = new Float32Array(src.length);
    callSync(() => load().f16ToF32Ref(dst, src));
    return dst;
  },
  bf16ToF32(src: Uint16Array): Float32Array {
    checkArray(src, Uint16Array, 'src');
    const dst = new Float32Array(src.length);
    callSync(() => load().bf16ToF32Ref(dst, src));
    return dst;
  },
  gemm(a: Float32Array, b: Float32Array, m: number, n: number, k: number, opts: GemmOptions = {}): Float32Array {
    const p = planGemm(a, b, m, n, k, opts);
    callSync(() => load().gemmRef(p.c, a, b, m, n, k, p.transB, p.alpha, p.beta));
    return p.c;
  },
  quantizeBlockwise(weight: Float32Array | Uint16Array, opts: BlockwiseOptions): BlockwiseQuantized {
    const { result, params } = planQuantize(weight, opts);
    result.sqError = callSync(() => load().quantizeBlockwiseRef(result.packed, result.scales, result.zeroPoints, weight, params));
    return result;
  },
  dequantizeBlockwise(q: BlockwiseQuantized): Float32Array {
    const params = planDequantize(q);
    const out = new Float32Array(q.k * q.n);
    callSync(() => load().dequantizeBlockwiseRef(out, q.packed, q.scales, q.zeroPoints, params));
    return out;
  },
  /** Unblocked Cholesky (same contract as choleskyLower). */
  choleskyLower(a: Float64Array, d: number): number {
    checkSquare(a, d, 'choleskyLower');
    return callSync(() => load().choleskyLowerRef(a, d));
  },
  /** Forward-substitution inverse (same contract as invertLower). */
  invertLower(a: Float64Array, d: number): Float64Array {
    checkSquare(a, d, 'invertLower');
    callSync(() => load().invertLowerRef(a, d));
    return a;
  },
  /** H[i,j] += Σ_t x[t,i]·x[t,j], each sum taken in double. */
  hessianAccumulate(h: Float32Array, x: Float32Array, n: number, d: number): void {
    checkAccumulate(h, x, n, d);
    callSync(() => load().hessianAccumulateRef(h, x, n, d));
  },
  /** GPTQ's literal sequence in double: chol(H) → cholesky_inverse → chol(·, upper). */
  prepareHessian(sum: Float32Array, d: number, count: number, opts: PrepareHessianOptions): PreparedHessian {
    const p = planPrepare(sum, d, count, opts);
    const dead = callSync(() => load().prepareHessianRef(p.hinvUpper, p.deadMask, sum, d, p.params));
    return finishPrepare(p, dead);
  },
  /** One output channel at a time; same codes, scales, zero points, loss and sqError as gptqSweep. */
  gptqSweep(weight: Float32Array, prepared: PreparedHessian, opts: GptqSweepOptions): GptqQuantized {
    const p = planSweep(weight, prepared, opts);
    const r = callSync(() => load().gptqSweepRef(p.result.packed, p.result.scales, p.result.zeroPoints, weight, prepared.hinvUpper,
      prepared.order, p.deadMask, p.params));
    return finishGptq(p.result, r, prepared.dead.length);
  },
  /** reference.prepareHessian + reference.gptqSweep. */
  gptqQuantize(weight: Float32Array, hessianSum: Float32Array, count: number, opts: GptqOptions): GptqQuantized {
    const p = planGptq(weight, hessianSum, count, opts);
    const r = callSync(() => load().gptqQuantizeRef(p.result.packed, p.result.scales, p.result.zeroPoints, weight, hessianSum, p.params));
    return finishGptq(p.result, r, r.dead);
  },
};
