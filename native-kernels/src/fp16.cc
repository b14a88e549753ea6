// fp16.cc — fp32 -> fp16 (round to nearest even), fp16 -> fp32 and bf16 -> fp32 over arrays.
//
// Shapes: dst[n] = convert(src[n]). Work is cut into chunks of kChunk elements spread over the pool.
// Fast path: F16C VCVTPS2PH (imm = round to nearest even) / VCVTPH2PS, 8 lanes at a time; tails go
// through a padded 8-lane buffer so every element takes the same instruction. The baseline path calls
// the scalar reference. Both are checked bit for bit against reference/fp16_ref.cc.
// Spec: IEEE 754-2019 binary16; Intel SDM "VCVTPS2PH", "VCVTPH2PS".
#include "fp16.h"

#include <cstring>

#include "cpu_features.h"
#include "napi_helpers.h"
#include "parallel.h"
#include "reference/fp16_ref.h"

#if WHITTLE_X86_SIMD
#include <immintrin.h>
#endif

namespace whittle {
namespace {

constexpr size_t kChunk = 1 << 16;

#if WHITTLE_X86_SIMD
WHITTLE_TARGET_AVX2 void F32ToF16F16c(uint16_t* dst, const float* src, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), h);
  }
  if (i < n) {
    float in[8] = {0};
    uint16_t out[8];
    std::memcpy(in, src + i, (n - i) * sizeof(float));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out),
                     _mm256_cvtps_ph(_mm256_loadu_ps(in), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    std::memcpy(dst + i, out, (n - i) * sizeof(uint16_t));
  }
}

WHITTLE_TARGET_AVX2 void F16ToF32F16c(float* dst, const uint16_t* src, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
  }
  if (i < n) {
    uint16_t in[8] = {0};
    float out[8];
    std::memcpy(in, src + i, (n - i) * sizeof(uint16_t));
    _mm256_storeu_ps(out, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in))));
    std::memcpy(dst + i, out, (n - i) * sizeof(float));
  }
}
#endif

void Bf16ToF32Chunk(float* dst, const uint16_t* src, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const uint32_t u = static_cast<uint32_t>(src[i]) << 16;
    std::memcpy(dst + i, &u, sizeof u);
  }
}

template <typename Chunk>
void Chunked(size_t n, Chunk&& chunk) {
  ParallelFor(CeilDiv(n, kChunk), [&](size_t c) {
    const size_t begin = c * kChunk;
    const size_t count = begin + kChunk <= n ? kChunk : n - begin;
    chunk(begin, count);
  });
}

}  // namespace

void F32ToF16Array(uint16_t* dst, const float* src, size_t n) {
#if WHITTLE_X86_SIMD
  if (UseAvx2()) return Chunked(n, [&](size_t b, size_t c) { F32ToF16F16c(dst + b, src + b, c); });
#endif
  Chunked(n, [&](size_t b, size_t c) { F32ToF16ArrayRef(dst + b, src + b, c); });
}

void F16ToF32Array(float* dst, const uint16_t* src, size_t n) {
#if WHITTLE_X86_SIMD
  if (UseAvx2()) return Chunked(n, [&](size_t b, size_t c) { F16ToF32F16c(dst + b, src + b, c); });
#endif
  Chunked(n, [&](size_t b, size_t c) { F16ToF32ArrayRef(dst + b, src + b, c); });
}

void F16ToF32Span(float* dst, const uint16_t* src, size_t n) {
#if WHITTLE_X86_SIMD
  if (UseAvx2()) return F16ToF32F16c(dst, src, n);
#endif
  F16ToF32ArrayRef(dst, src, n);
}

void Bf16ToF32Array(float* dst, const uint16_t* src, size_t n) {
  Chunked(n, [&](size_t b, size_t c) { Bf16ToF32Chunk(dst + b, src + b, c); });
}

// ---- bindings ---------------------------------------------------------------------------------------
// f32ToF16(dst: Uint16Array, src: Float32Array): Promise<Uint16Array>   (resolves with dst)
// f16ToF32(dst: Float32Array, src: Uint16Array): Promise<Float32Array>
// bf16ToF32(dst: Float32Array, src: Uint16Array): Promise<Float32Array>
// ...Ref(dst, src): void — the single-threaded scalar references, synchronous.

namespace {

template <typename Dst, typename Src>
void CheckConversionArgs(Napi::Env env, const ArrayArg<Dst>& dst, const ArrayArg<Src>& src, const char* what) {
  if (dst.length != src.length) {
    ThrowInvalid(env, std::string(what) + ": dst has " + std::to_string(dst.length) + " elements but src has " +
                          std::to_string(src.length) + "; they must match.");
  }
  if (Overlaps(dst.data, dst.length * sizeof(Dst), src.data, src.length * sizeof(Src))) {
    ThrowInvalid(env, std::string(what) + ": dst and src must not share memory.");
  }
}

template <typename Dst, typename Src, void (*Kernel)(Dst*, const Src*, size_t)>
Napi::Value ConvertAsync(const Napi::CallbackInfo& info, ArrayArg<Dst> (*dstArg)(const Napi::CallbackInfo&, size_t, const char*),
                         ArrayArg<Src> (*srcArg)(const Napi::CallbackInfo&, size_t, const char*), const char* what) {
  Napi::Env env = info.Env();
  ArrayArg<Dst> dst = dstArg(info, 0, "dst");
  ArrayArg<Src> src = srcArg(info, 1, "src");
  CheckConversionArgs(env, dst, src, what);
  Dst* d = dst.data;
  const Src* s = src.data;
  const size_t n = src.length;
  auto* worker = new KernelWorker(
      env, what, [d, s, n] { Kernel(d, s, n); },
      [](Napi::Env, const KernelWorker& w) -> Napi::Value { return w.Kept(0); });
  worker->Keep(dst.object);  // Kept(0): the result
  worker->Keep(src.object);
  return KernelWorker::Start(worker);
}

template <typename Dst, typename Src, void (*Kernel)(Dst*, const Src*, size_t)>
void ConvertSync(const Napi::CallbackInfo& info, ArrayArg<Dst> (*dstArg)(const Napi::CallbackInfo&, size_t, const char*),
                 ArrayArg<Src> (*srcArg)(const Napi::CallbackInfo&, size_t, const char*), const char* what) {
  Napi::Env env = info.Env();
  ArrayArg<Dst> dst = dstArg(info, 0, "dst");
  ArrayArg<Src> src = srcArg(info, 1, "src");
  CheckConversionArgs(env, dst, src, what);
  RunSync(env, [&] { Kernel(dst.data, src.data, src.length); });
}

Napi::Value F32ToF16Js(const Napi::CallbackInfo& info) {
  return ConvertAsync<uint16_t, float, F32ToF16Array>(info, ArgU16, ArgF32, "f32ToF16");
}
Napi::Value F16ToF32Js(const Napi::CallbackInfo& info) {
  return ConvertAsync<float, uint16_t, F16ToF32Array>(info, ArgF32, ArgU16, "f16ToF32");
}
Napi::Value Bf16ToF32Js(const Napi::CallbackInfo& info) {
  return ConvertAsync<float, uint16_t, Bf16ToF32Array>(info, ArgF32, ArgU16, "bf16ToF32");
}
void F32ToF16RefJs(const Napi::CallbackInfo& info) {
  ConvertSync<uint16_t, float, F32ToF16ArrayRef>(info, ArgU16, ArgF32, "f32ToF16Ref");
}
void F16ToF32RefJs(const Napi::CallbackInfo& info) {
  ConvertSync<float, uint16_t, F16ToF32ArrayRef>(info, ArgF32, ArgU16, "f16ToF32Ref");
}
void Bf16ToF32RefJs(const Napi::CallbackInfo& info) {
  ConvertSync<float, uint16_t, Bf16ToF32ArrayRef>(info, ArgF32, ArgU16, "bf16ToF32Ref");
}

}  // namespace

void RegisterFp16(Napi::Env env, Napi::Object exports) {
  exports.Set("f32ToF16", Napi::Function::New(env, F32ToF16Js, "f32ToF16"));
  exports.Set("f16ToF32", Napi::Function::New(env, F16ToF32Js, "f16ToF32"));
  exports.Set("bf16ToF32", Napi::Function::New(env, Bf16ToF32Js, "bf16ToF32"));
  exports.Set("f32ToF16Ref", Napi::Function::New(env, F32ToF16RefJs, "f32ToF16Ref"));
  exports.Set("f16ToF32Ref", Napi::Function::New(env, F16ToF32RefJs, "f16ToF32Ref"));
  exports.Set("bf16ToF32Ref", Napi::Function::New(env, Bf16ToF32RefJs, "bf16ToF32Ref"));
}

}  // namespace whittle
