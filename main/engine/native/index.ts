/**
 * Whittle's native kernels (native-kernels/, a Node-API addon): typed, validated wrappers, one module per
 * kernel family, re-exported here so callers import from `native/index.ts`.
 *
 *   addon.ts      loading, error mapping, shared argument checks and the addon's raw contract
 *   runtime.ts    threads, CPU info, the code path (setSimdLimit / setForceBaseline)
 *   fp16.ts       float16 / bfloat16 conversions
 *   gemm.ts       SGEMM
 *   blockwise.ts  block-wise RTN quantization into com.microsoft.MatMulNBits and back
 *   linalg.ts     float64 Cholesky and triangular inverse
 *   hessian.ts    Hessian accumulation and preparation (GPTQ / SparseGPT)
 *   gptq.ts       GPTQ into MatMulNBits
 *   obs.ts        the shared optimal-brain-surgeon sweep: quantize, prune (SparseGPT), or both
 *   logits.ts     NLL, KL and top-1 agreement of next-token logits (evaluation)
 *   optimizer.ts  AdamW step, squared gradient norms, gradient accumulation (training)
 *
 * Every function that does real work returns a promise: the addon runs it on a libuv thread and spreads
 * it over its own thread pool (setThreads), so the event loop never blocks. Do not modify or transfer
 * the input arrays until the promise settles. `reference` holds the synchronous, single-threaded scalar
 * twins the fast kernels are tested against. The async functions report every failure as a rejected
 * promise: bad arguments (checked before any work starts) and problems found in the data (a NaN weight)
 * with WhittleError('INVALID_INPUT'); an addon that is not built with WhittleError('INTERNAL').
 */
import { blockwiseReference } from './blockwise.ts';
import { fp16Reference } from './fp16.ts';
import { gemmReference } from './gemm.ts';
import { gptqReference } from './gptq.ts';
import { hessianReference } from './hessian.ts';
import { linalgReference } from './linalg.ts';
import { logitsReference } from './logits.ts';
import { obsReference } from './obs.ts';
import { optimizerReference } from './optimizer.ts';

export { nativeAvailable } from './addon.ts';
export { cpuInfo, getThreads, setForceBaseline, setSimdLimit, setThreads, type CpuInfo, type SimdLimit, type SimdPath } from './runtime.ts';
export { bf16ToF32, f16ToF32, f32ToF16 } from './fp16.ts';
export { gemm, type GemmOptions } from './gemm.ts';
export {
  blockwiseLayout, dequantizeBlockwise, quantizeBlockwise,
  type BlockwiseLayout, type BlockwiseOptions, type BlockwiseQuantized, type QuantBits, type Rounding,
} from './blockwise.ts';
export { choleskyLower, invertLower } from './linalg.ts';
export { hessianAccumulate, hessianActOrder, prepareHessian, type PreparedHessian, type PrepareHessianOptions } from './hessian.ts';
export { gptqQuantize, gptqSweep, type GptqOptions, type GptqQuantized, type GptqSweepOptions } from './gptq.ts';
export {
  obsSweep, obsSweepPrepared, type ObsPruneOptions, type ObsQuantizeOptions, type ObsSweepOptions, type ObsSweepPreparedOptions, type ObsSwept,
} from './obs.ts';
export { PAIR_STRIDE, rowCompare, rowNll, type LogitsArray } from './logits.ts';
export { adamwStep, addInto, gradSquaredSums, type AdamwStepParams, type AdamwTensor } from './optimizer.ts';

/** Synchronous single-threaded scalar references (native-kernels/src/reference/), same contracts as the fast kernels. */
export const reference = {
  ...fp16Reference,
  ...gemmReference,
  ...blockwiseReference,
  ...linalgReference,
  ...hessianReference,
  ...gptqReference,
  ...obsReference,
  ...logitsReference,
  ...optimizerReference,
};
