// cpu_features.cc — CPU feature detection (see cpu_features.h) and the threads / ISA bindings.
#include "cpu_features.h"

#include <atomic>

#if WHITTLE_X86_SIMD
#include <cpuid.h>
#endif

#include "napi_helpers.h"
#include "parallel.h"

namespace whittle {
namespace {

CpuFeatures Detect() {
  CpuFeatures f;
#if WHITTLE_X86_SIMD
  __builtin_cpu_init();
  f.avx2 = __builtin_cpu_supports("avx2");
  f.fma = __builtin_cpu_supports("fma");
  // F16C: CPUID.1:ECX bit 29 (GCC 12 has no "f16c" name for __builtin_cpu_supports).
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid(1, &eax, &ebx, &ecx, &edx)) f.f16c = (ecx & bit_F16C) != 0;
#endif
  return f;
}

std::atomic<bool> g_force_baseline{false};

}  // namespace

const CpuFeatures& DetectedCpu() {
  static const CpuFeatures features = Detect();
  return features;
}

bool UseAvx2() {
  const CpuFeatures& f = DetectedCpu();
  return f.avx2 && f.fma && f.f16c && !g_force_baseline.load(std::memory_order_relaxed);
}

void SetForceBaseline(bool force) { g_force_baseline.store(force, std::memory_order_relaxed); }
bool ForceBaseline() { return g_force_baseline.load(std::memory_order_relaxed); }

// ---- bindings ---------------------------------------------------------------------------------------

namespace {

// setThreads(n: number): void — n <= 0 (or 0) restores hardware concurrency.
void SetThreadsJs(const Napi::CallbackInfo& info) {
  const double n = ArgNumber(info, 0, "n");
  if (n != static_cast<int>(n)) ThrowInvalid(info.Env(), "setThreads: n must be an integer.");
  SetThreads(static_cast<int>(n));
}

Napi::Value GetThreadsJs(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), Threads()); }

// cpuInfo(): { avx2, fma, f16c, hardwareThreads, simd: 'avx2' | 'baseline' }
Napi::Value CpuInfoJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const CpuFeatures& f = DetectedCpu();
  Napi::Object o = Napi::Object::New(env);
  o.Set("avx2", f.avx2);
  o.Set("fma", f.fma);
  o.Set("f16c", f.f16c);
  o.Set("hardwareThreads", HardwareThreads());
  o.Set("simd", UseAvx2() ? "avx2" : "baseline");
  return o;
}

// setForceBaseline(force: boolean): void
void SetForceBaselineJs(const Napi::CallbackInfo& info) { SetForceBaseline(ArgBool(info, 0, "force")); }

}  // namespace

void RegisterRuntime(Napi::Env env, Napi::Object exports) {
  exports.Set("setThreads", Napi::Function::New(env, SetThreadsJs, "setThreads"));
  exports.Set("getThreads", Napi::Function::New(env, GetThreadsJs, "getThreads"));
  exports.Set("cpuInfo", Napi::Function::New(env, CpuInfoJs, "cpuInfo"));
  exports.Set("setForceBaseline", Napi::Function::New(env, SetForceBaselineJs, "setForceBaseline"));
}

}  // namespace whittle
