/**
 * The native kernels' addon (native-kernels/, a Node-API addon): its raw exports, lazy loading, and the
 * error mapping and argument checks every kernel family's wrapper shares.
 *
 * The addon is loaded lazily on first use from appPaths.nativeAddon(); when it has not been built, calls
 * fail with WhittleError('INTERNAL', 'The native kernels are not built. Run `npm run build:native`.').
 * Errors thrown by the addon carry a `code` (INVALID_INPUT, OUT_OF_MEMORY, INTERNAL) and become
 * WhittleErrors; async calls report every failure (bad arguments included) as a rejected promise.
 */
import { existsSync } from 'node:fs';
import { ERROR_CODES, WhittleError, type ErrorCode } from '../errors.ts';
import { appPaths } from '../../paths.ts';

export type QuantBits = 2 | 4 | 8;
/** Tie rule for rounding to the integer grid: 'half-even' (default, as QuantizeLinear) or 'half-away' (as ONNX Runtime's MLAS blockwise quantizer, roundf). */
export type Rounding = 'half-even' | 'half-away';
/** A kernel code path: 512-bit AVX-512, AVX2+FMA+F16C, or the portable baseline. */
export type SimdPath = 'avx512' | 'avx2' | 'baseline';
/** setSimdLimit's argument: an explicit path, or 'auto' (the default: the best variant of each kernel for this CPU). */
export type SimdLimit = SimdPath | 'auto';

export interface CpuInfo {
  avx2: boolean;
  fma: boolean;
  f16c: boolean;
  /** AVX-512 F, BW, DQ and VL, with the OS saving the 512-bit state. */
  avx512: boolean;
  /** 512-bit vectors run at full width (false on AMD family 19h, Zen 4, which splits them in two halves). */
  avx512FullWidth: boolean;
  hardwareThreads: number;
  /** The code path kernels take now: the best this CPU has, capped by setSimdLimit / setForceBaseline. */
  simd: SimdPath;
  /** The cap set by setSimdLimit ('auto' by default). */
  simdLimit: SimdLimit;
}

/** Block-wise parameters as the addon reads them. */
export interface BlockwiseParams {
  k: number;
  n: number;
  bits: number;
  blockSize: number;
  symmetric?: boolean;
  fp16Scales?: boolean;
  rounding?: Rounding;
}

export interface PrepareParams {
  count: number;
  percdamp: number;
  order?: Int32Array;
  label?: string;
}

export interface GptqParams extends BlockwiseParams {
  columnBlock: number;
  count?: number;
  percdamp?: number;
  actOrder?: boolean;
  label?: string;
}

export interface GptqNativeResult {
  loss: number;
  sqError: number;
}

/** The sweep's parameters, flat, as obs_sweep.cc reads them. */
export interface ObsParams {
  k: number;
  n: number;
  columnBlock: number;
  count: number;
  percdamp: number;
  actOrder: boolean;
  label?: string;
  quantize: boolean;
  bits?: number;
  blockSize?: number;
  symmetric?: boolean;
  fp16Scales?: boolean;
  rounding?: Rounding;
  prune: boolean;
  sparsity?: number;
  maskBlock?: number;
  nmN?: number;
  nmM?: number;
}

export interface ObsNativeResult {
  loss: number;
  sqError: number;
  dead: number;
}

/** The addon's raw exports (outputs first, as in native-kernels/src). */
export interface Addon {
  napiVersion: number;
  setThreads(n: number): void;
  getThreads(): number;
  cpuInfo(): CpuInfo;
  setSimdLimit(limit: SimdLimit): void;
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
  obsSweep(swept: Float32Array, mask: Uint8Array | null, packed: Uint8Array | null, scales: Float32Array | null, zeroPoints: Uint8Array | null,
    weight: Float32Array, hessianSum: Float32Array, params: ObsParams): Promise<ObsNativeResult>;
  obsSweepRef(swept: Float32Array, mask: Uint8Array | null, packed: Uint8Array | null, scales: Float32Array | null, zeroPoints: Uint8Array | null,
    weight: Float32Array, hessianSum: Float32Array, params: ObsParams): ObsNativeResult;
  obsSweepPrepared(swept: Float32Array, mask: Uint8Array | null, packed: Uint8Array | null, scales: Float32Array | null, zeroPoints: Uint8Array | null,
    weight: Float32Array, hinvUpper: Float32Array, order: Int32Array | null, dead: Uint8Array, params: ObsParams): Promise<ObsNativeResult>;
  obsSweepPreparedRef(swept: Float32Array, mask: Uint8Array | null, packed: Uint8Array | null, scales: Float32Array | null, zeroPoints: Uint8Array | null,
    weight: Float32Array, hinvUpper: Float32Array, order: Int32Array | null, dead: Uint8Array, params: ObsParams): ObsNativeResult;
}

const NOT_BUILT = 'The native kernels are not built. Run `npm run build:native`.';

let addon: Addon | undefined;

export function load(): Addon {
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

export function toWhittleError(e: unknown): unknown {
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

export function callSync<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw toWhittleError(e);
  }
}

export function callAsync<T>(fn: () => Promise<T>): Promise<T> {
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

export function invalid(message: string, details?: Record<string, unknown>): WhittleError {
  return new WhittleError('INVALID_INPUT', message, details);
}

export function checkCount(value: unknown, name: string, min = 0): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw invalid(`${name} must be an integer ≥ ${min}, got ${String(value)}.`);
  }
  return value;
}

export function checkArray(value: unknown, ctor: Float32ArrayConstructor | Uint16ArrayConstructor | Uint8ArrayConstructor, name: string): void {
  if (!(value instanceof ctor)) throw invalid(`${name} must be a ${ctor.name}.`);
}

export function checkLength(arr: { length: number }, expected: number, name: string, shape: string): void {
  if (arr.length !== expected) {
    throw invalid(`${name} must hold ${shape} = ${expected} elements, but it has ${arr.length}.`, { expected, actual: arr.length });
  }
}
