// cpu_features.h — run-time choice between the portable baseline, the AVX2/FMA/F16C and the AVX-512 code
// paths.
//
// The addon is compiled for the baseline ISA (x86-64: SSE2). Functions that use AVX2, FMA or F16C are
// marked WHITTLE_TARGET_AVX2 and only called when UseAvx2() says the CPU has all three; functions that
// use 512-bit registers are marked WHITTLE_TARGET_AVX512 (AVX-512 F/BW/DQ/VL plus the AVX2 set) and only
// called when UseAvx512() says so. The binary therefore runs on any x86-64 CPU.
// By default (SimdLimit kAuto) kernels take the best path for this CPU: AVX-512 for the GEMM / Hessian
// register tiles everywhere, and for the sweep and block-wise quantization only where the CPU runs 512-bit
// vectors at full width (not AMD family 19h, Zen 4, which splits them in two halves and measured slower
// there than its AVX2 code). SetSimdLimit caps the path explicitly — an explicit kAvx512 takes every
// AVX-512 variant (tests use it to check each path against the references on one machine; benchmarks to
// compare them); a kernel without an AVX-512 variant takes its AVX2 one.
#pragma once

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define WHITTLE_X86_SIMD 1
#define WHITTLE_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
#define WHITTLE_TARGET_AVX512 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl")))
#else
#define WHITTLE_X86_SIMD 0
#define WHITTLE_TARGET_AVX2
#define WHITTLE_TARGET_AVX512
#endif

namespace whittle {

struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
  bool avx512 = false;  // AVX-512 F, BW, DQ and VL, with the OS saving the 512-bit state
  bool avx512_full_width = false;  // 512-bit vectors run at full width (false: AMD family 19h)
};

// The paths, in order: a limit of kAvx2 keeps AVX-512 CPUs on the AVX2 path. kAuto: no explicit limit.
enum class SimdLevel { kBaseline = 0, kAvx2 = 1, kAvx512 = 2, kAuto = 3 };

const CpuFeatures& DetectedCpu();

// The best path this CPU has.
SimdLevel DetectedSimd();
// The path kernels take now: min(DetectedSimd(), the limit).
SimdLevel ActiveSimd();
const char* SimdName(SimdLevel level);

// True when AVX2, FMA and F16C are all present and the limit allows them.
inline bool UseAvx2() { return ActiveSimd() >= SimdLevel::kAvx2; }
// True when AVX-512 (F/BW/DQ/VL) is present and the limit allows it.
inline bool UseAvx512() { return ActiveSimd() >= SimdLevel::kAvx512; }
// UseAvx512(), and either the CPU runs 512-bit vectors at full width or the limit asks for AVX-512 explicitly:
// for the kernels whose 512-bit variant only pays at full width.
bool UseAvx512Wide();

void SetSimdLimit(SimdLevel limit);
SimdLevel SimdLimit();

}  // namespace whittle
