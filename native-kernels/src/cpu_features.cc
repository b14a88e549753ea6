// cpu_features.cc — CPU feature detection (see cpu_features.h) and the threads / ISA bindings.
#include "cpu_features.h"

#include <atomic>
#include <string>

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
  // libgcc reports the AVX-512 features only when XCR0 shows the OS saves the opmask and ZMM state.
  f.avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
  // AMD family 19h (Zen 4) executes 512-bit instructions as two 256-bit halves.
  unsigned max_leaf = 0, vendor[3] = {0, 0, 0};
  const bool amd = __get_cpuid(0, &max_leaf, &vendor[0], &vendor[2], &vendor[1]) && vendor[0] == 0x68747541u &&
                   vendor[1] == 0x69746e65u && vendor[2] == 0x444d4163u;  // "AuthenticAMD"
  unsigned family = (eax >> 8) & 0xf;
  if (family == 0xf) family += (eax >> 20) & 0xff;
  f.avx512_full_width = f.avx512 && !(amd && family == 0x19);
#endif
  return f;
}

std::atomic<int> g_limit{static_cast<int>(SimdLevel::kAuto)};

}  // namespace

const CpuFeatures& DetectedCpu() {
  static const CpuFeatures features = Detect();
  return features;
}

SimdLevel DetectedSimd() {
  const CpuFeatures& f = DetectedCpu();
  if (!(f.avx2 && f.fma && f.f16c)) return SimdLevel::kBaseline;
  return f.avx512 ? SimdLevel::kAvx512 : SimdLevel::kAvx2;
}

SimdLevel ActiveSimd() {
  static const SimdLevel detected = DetectedSimd();
  const int limit = g_limit.load(std::memory_order_relaxed);
  return static_cast<int>(detected) < limit ? detected : static_cast<SimdLevel>(limit);
}

bool UseAvx512Wide() {
  return UseAvx512() && (DetectedCpu().avx512_full_width || SimdLimit() == SimdLevel::kAvx512);
}

const char* SimdName(SimdLevel level) {
  switch (level) {
    case SimdLevel::kAvx512: return "avx512";
    case SimdLevel::kAvx2: return "avx2";
    default: return "baseline";
  }
}

void SetSimdLimit(SimdLevel limit) { g_limit.store(static_cast<int>(limit), std::memory_order_relaxed); }
SimdLevel SimdLimit() { return static_cast<SimdLevel>(g_limit.load(std::memory_order_relaxed)); }

// ---- bindings ---------------------------------------------------------------------------------------

namespace {

// setThreads(n: number): void — n <= 0 (or 0) restores hardware concurrency.
void SetThreadsJs(const Napi::CallbackInfo& info) {
  const double n = ArgNumber(info, 0, "n");
  if (n != static_cast<int>(n)) ThrowInvalid(info.Env(), "setThreads: n must be an integer.");
  SetThreads(static_cast<int>(n));
}

Napi::Value GetThreadsJs(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), Threads()); }

// cpuInfo(): { avx2, fma, f16c, avx512, avx512FullWidth, hardwareThreads, simd: 'avx512' | 'avx2' | 'baseline',
//              simdLimit: 'auto' | 'avx512' | 'avx2' | 'baseline' }
Napi::Value CpuInfoJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const CpuFeatures& f = DetectedCpu();
  Napi::Object o = Napi::Object::New(env);
  o.Set("avx2", f.avx2);
  o.Set("fma", f.fma);
  o.Set("f16c", f.f16c);
  o.Set("avx512", f.avx512);
  o.Set("avx512FullWidth", f.avx512_full_width);
  o.Set("simdLimit", SimdLimit() == SimdLevel::kAuto ? "auto" : SimdName(SimdLimit()));
  o.Set("hardwareThreads", HardwareThreads());
  o.Set("simd", SimdName(ActiveSimd()));
  return o;
}

// setForceBaseline(force: boolean): void — true: limit 'baseline'; false: 'auto'.
void SetForceBaselineJs(const Napi::CallbackInfo& info) {
  SetSimdLimit(ArgBool(info, 0, "force") ? SimdLevel::kBaseline : SimdLevel::kAuto);
}

// setSimdLimit(limit: 'auto' | 'avx512' | 'avx2' | 'baseline'): void
void SetSimdLimitJs(const Napi::CallbackInfo& info) {
  const std::string name = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  if (name == "auto") {
    SetSimdLimit(SimdLevel::kAuto);
  } else if (name == "avx512") {
    SetSimdLimit(SimdLevel::kAvx512);
  } else if (name == "avx2") {
    SetSimdLimit(SimdLevel::kAvx2);
  } else if (name == "baseline") {
    SetSimdLimit(SimdLevel::kBaseline);
  } else {
    ThrowInvalid(info.Env(), "setSimdLimit: limit must be 'auto', 'avx512', 'avx2' or 'baseline'.");
  }
}

}  // namespace

void RegisterRuntime(Napi::Env env, Napi::Object exports) {
  exports.Set("setThreads", Napi::Function::New(env, SetThreadsJs, "setThreads"));
  exports.Set("getThreads", Napi::Function::New(env, GetThreadsJs, "getThreads"));
  exports.Set("cpuInfo", Napi::Function::New(env, CpuInfoJs, "cpuInfo"));
  exports.Set("setForceBaseline", Napi::Function::New(env, SetForceBaselineJs, "setForceBaseline"));
  exports.Set("setSimdLimit", Napi::Function::New(env, SetSimdLimitJs, "setSimdLimit"));
}

}  // namespace whittle
