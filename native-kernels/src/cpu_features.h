// cpu_features.h — run-time choice between the portable baseline and the AVX2/FMA/F16C code paths.
//
// The addon is compiled for the baseline ISA (x86-64: SSE2). Functions that use AVX2, FMA or F16C are
// marked WHITTLE_TARGET_AVX2 and are only called when UseAvx2() says the CPU has all three.
// SetForceBaseline(true) makes every kernel take its baseline path (tests use it to check both paths
// against the references on one machine).
#pragma once

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define WHITTLE_X86_SIMD 1
#define WHITTLE_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
#else
#define WHITTLE_X86_SIMD 0
#define WHITTLE_TARGET_AVX2
#endif

namespace whittle {

struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
};

const CpuFeatures& DetectedCpu();

// True when AVX2, FMA and F16C are all present and the baseline is not forced.
bool UseAvx2();

void SetForceBaseline(bool force);
bool ForceBaseline();

}  // namespace whittle
