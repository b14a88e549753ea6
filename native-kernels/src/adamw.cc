// adamw.cc — AdamW over fp32 master weights, the squared gradient norm and gradient accumulation
// (definitions in adamw.h). The training loop calls each once per optimizer step (AdamW, norm) or per
// micro-batch (accumulation) with every trainable tensor in one call: the work is cut into chunks of
// kChunk elements across all tensors and spread over the thread pool.
//
// AdamW is element-wise and memory-bound: the AVX2 path converts 4 floats to doubles and runs exactly the
// reference's operations in the reference's order (separate multiply and add, IEEE sqrt and division),
// so every path gives the reference's bits. The squared norm uses FMA on the AVX2 path and 4 partial
// sums on the baseline; chunk sums are added in chunk order, so a result does not depend on the thread
// count. Reference: reference/adamw_ref.cc; PyTorch torch.optim.AdamW (decoupled weight decay).
#include "adamw.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "cpu_features.h"
#include "napi_helpers.h"
#include "parallel.h"
#include "reference/adamw_ref.h"

#if WHITTLE_X86_SIMD
#include <immintrin.h>
#endif

namespace whittle {

AdamwScalars AdamwScalarsOf(const AdamwParams& p) {
  AdamwScalars s;
  s.one_minus_beta1 = 1.0 - p.beta1;
  s.one_minus_beta2 = 1.0 - p.beta2;
  s.step_size = p.lr / (1.0 - std::pow(p.beta1, p.step));
  s.bias2_sqrt = std::sqrt(1.0 - std::pow(p.beta2, p.step));
  return s;
}

namespace {

constexpr size_t kChunk = 32768;

// A slice [begin, end) of tensor `tensor`.
struct Chunk {
  size_t tensor, begin, end;
};

template <typename SizeOf>
std::vector<Chunk> ChunksOf(size_t count, SizeOf sizeOf) {
  std::vector<Chunk> chunks;
  for (size_t t = 0; t < count; t++) {
    const size_t n = sizeOf(t);
    for (size_t b = 0; b < n; b += kChunk) chunks.push_back({t, b, std::min(n, b + kChunk)});
  }
  return chunks;
}

// ---- baseline: the reference's arithmetic on a slice ---------------------------------------------------

void AdamwSliceBaseline(const AdamwTensor& x, size_t begin, size_t end, const AdamwParams& p) {
  AdamwTensor slice = x;
  slice.w += begin;
  slice.g += begin;
  slice.m += begin;
  slice.v += begin;
  if (slice.mask) slice.mask += begin;
  slice.n = end - begin;
  AdamwStepRef(&slice, 1, p);
}

double SumSquaresBaseline(const float* g, const uint8_t* mask, size_t n) {
  double s[4] = {0, 0, 0, 0};
  size_t i = 0;
  if (!mask) {
    for (; i + 4 <= n; i += 4) {
      for (int k = 0; k < 4; k++) s[k] += static_cast<double>(g[i + k]) * g[i + k];
    }
  }
  for (; i < n; i++) {
    if (mask && mask[i] == 0) continue;
    s[i & 3] += static_cast<double>(g[i]) * g[i];
  }
  return (s[0] + s[1]) + (s[2] + s[3]);
}

void AddIntoBaseline(float* dst, const float* src, size_t n) {
  for (size_t i = 0; i < n; i++) dst[i] += src[i];
}

#if WHITTLE_X86_SIMD

// 4 mask bytes → a lane mask of the float lanes whose byte is 0.
WHITTLE_TARGET_AVX2 inline __m128 PrunedLanes(const uint8_t* mask) {
  int32_t bytes;
  std::memcpy(&bytes, mask, sizeof(bytes));
  const __m128i wide = _mm_cvtepu8_epi32(_mm_cvtsi32_si128(bytes));
  return _mm_castsi128_ps(_mm_cmpeq_epi32(wide, _mm_setzero_si128()));
}

WHITTLE_TARGET_AVX2 void AdamwSliceAvx2(const AdamwTensor& x, size_t begin, size_t end, const AdamwParams& p) {
  const AdamwScalars s = AdamwScalarsOf(p);
  const __m256d scale = _mm256_set1_pd(p.grad_scale), b1 = _mm256_set1_pd(p.beta1), b2 = _mm256_set1_pd(p.beta2);
  const __m256d c1 = _mm256_set1_pd(s.one_minus_beta1), c2 = _mm256_set1_pd(s.one_minus_beta2);
  const __m256d bias2 = _mm256_set1_pd(s.bias2_sqrt), eps = _mm256_set1_pd(p.eps);
  const __m256d stepSize = _mm256_set1_pd(s.step_size), decay = _mm256_set1_pd(1.0 - p.lr * x.weight_decay);
  size_t i = begin;
  for (; i + 4 <= end; i += 4) {
    const __m256d g = _mm256_mul_pd(_mm256_cvtps_pd(_mm_loadu_ps(x.g + i)), scale);
    const __m256d m = _mm256_add_pd(_mm256_mul_pd(b1, _mm256_cvtps_pd(_mm_loadu_ps(x.m + i))), _mm256_mul_pd(c1, g));
    const __m256d v = _mm256_add_pd(_mm256_mul_pd(b2, _mm256_cvtps_pd(_mm_loadu_ps(x.v + i))), _mm256_mul_pd(c2, _mm256_mul_pd(g, g)));
    const __m256d denom = _mm256_add_pd(_mm256_div_pd(_mm256_sqrt_pd(v), bias2), eps);
    const __m256d w = _mm256_sub_pd(_mm256_mul_pd(_mm256_cvtps_pd(_mm_loadu_ps(x.w + i)), decay), _mm256_mul_pd(stepSize, _mm256_div_pd(m, denom)));
    __m128 wf = _mm256_cvtpd_ps(w), mf = _mm256_cvtpd_ps(m), vf = _mm256_cvtpd_ps(v);
    if (x.mask) {
      const __m128 pruned = PrunedLanes(x.mask + i);
      wf = _mm_andnot_ps(pruned, wf);
      mf = _mm_andnot_ps(pruned, mf);
      vf = _mm_andnot_ps(pruned, vf);
    }
    _mm_storeu_ps(x.w + i, wf);
    _mm_storeu_ps(x.m + i, mf);
    _mm_storeu_ps(x.v + i, vf);
  }
  if (i < end) AdamwSliceBaseline(x, i, end, p);
}

WHITTLE_TARGET_AVX2 inline double Sum4(__m256d v) {
  const __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
  return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

WHITTLE_TARGET_AVX2 double SumSquaresAvx2(const float* g, const uint8_t* mask, size_t n) {
  __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m128 lo = _mm_loadu_ps(g + i), hi = _mm_loadu_ps(g + i + 4);
    if (mask) {
      lo = _mm_andnot_ps(PrunedLanes(mask + i), lo);
      hi = _mm_andnot_ps(PrunedLanes(mask + i + 4), hi);
    }
    const __m256d dlo = _mm256_cvtps_pd(lo), dhi = _mm256_cvtps_pd(hi);
    a0 = _mm256_fmadd_pd(dlo, dlo, a0);
    a1 = _mm256_fmadd_pd(dhi, dhi, a1);
  }
  double sum = Sum4(_mm256_add_pd(a0, a1));
  for (; i < n; i++) {
    if (mask && mask[i] == 0) continue;
    sum += static_cast<double>(g[i]) * g[i];
  }
  return sum;
}

// The baseline loop, compiled for AVX2 (the compiler vectorizes it 8 floats wide; same sums).
WHITTLE_TARGET_AVX2 void AddIntoAvx2(float* dst, const float* src, size_t n) {
  for (size_t i = 0; i < n; i++) dst[i] += src[i];
}

#endif

void AdamwSlice(const AdamwTensor& x, size_t begin, size_t end, const AdamwParams& p) {
#if WHITTLE_X86_SIMD
  if (UseAvx2()) return AdamwSliceAvx2(x, begin, end, p);
#endif
  AdamwSliceBaseline(x, begin, end, p);
}

double SumSquares(const float* g, const uint8_t* mask, size_t n) {
#if WHITTLE_X86_SIMD
  if (UseAvx2()) return SumSquaresAvx2(g, mask, n);
#endif
  return SumSquaresBaseline(g, mask, n);
}

}  // namespace

void AdamwStep(const AdamwTensor* tensors, size_t count, const AdamwParams& p) {
  const std::vector<Chunk> chunks = ChunksOf(count, [&](size_t t) { return tensors[t].n; });
  ParallelFor(chunks.size(), [&](size_t c) { AdamwSlice(tensors[chunks[c].tensor], chunks[c].begin, chunks[c].end, p); });
}

void GradSquaredSum(double* out, const AdamwGradView* grads, size_t count) {
  const std::vector<Chunk> chunks = ChunksOf(count, [&](size_t t) { return grads[t].n; });
  std::vector<double> partial(chunks.size());
  ParallelFor(chunks.size(), [&](size_t c) {
    const AdamwGradView& x = grads[chunks[c].tensor];
    const size_t b = chunks[c].begin;
    partial[c] = SumSquares(x.g + b, x.mask ? x.mask + b : nullptr, chunks[c].end - b);
  });
  for (size_t t = 0; t < count; t++) out[t] = 0;
  for (size_t c = 0; c < chunks.size(); c++) out[chunks[c].tensor] += partial[c];
}

void AddInto(float* dst, const float* src, size_t n) {
  ParallelFor(CeilDiv(n, kChunk), [&](size_t c) {
    const size_t b = c * kChunk, len = std::min(n, b + kChunk) - b;
#if WHITTLE_X86_SIMD
    if (UseAvx2()) return AddIntoAvx2(dst + b, src + b, len);
#endif
    AddIntoBaseline(dst + b, src + b, len);
  });
}

// ---- bindings ---------------------------------------------------------------------------------------
// adamwStep(tensors: { weights, grads, m, v: Float32Array; mask?: Uint8Array | null; weightDecay: number }[],
//           params: { lr, beta1, beta2, eps, step, gradScale }): Promise<undefined>
// gradSquaredSum(out: Float64Array, grads: Float32Array[], masks: (Uint8Array | null)[] | null): Promise<Float64Array>
// addInto(dst: Float32Array[], src: Float32Array[]): Promise<undefined>        dst[t] += src[t], pairwise
// ...Ref(...same...): the single-threaded scalar references, synchronous (adamwStepRef, addIntoRef return
// nothing; gradSquaredSumRef fills out).
// Within a tensor every array holds the same number of elements; outputs share no memory with inputs.

namespace {

Napi::Array ArgList(const Napi::CallbackInfo& info, size_t index, const char* name) {
  if (index >= info.Length() || !info[index].IsArray()) ThrowInvalid(info.Env(), std::string(name) + " must be an array.");
  return info[index].As<Napi::Array>();
}

std::string Item(const char* list, uint32_t i, const char* field = nullptr) {
  std::string s = std::string(list) + "[" + std::to_string(i) + "]";
  return field ? s + "." + field : s;
}

void ExpectSame(Napi::Env env, size_t actual, size_t expected, const std::string& name, const std::string& other) {
  if (actual != expected) {
    ThrowInvalid(env, name + " holds " + std::to_string(actual) + " elements but " + other + " holds " + std::to_string(expected) + ".");
  }
}

// A finite number ≥ 0 (and < 1 where `belowOne`).
double NonNegative(Napi::Env env, const Napi::Object& o, const char* name, bool belowOne = false) {
  const double x = FieldNumber(env, o, name);
  if (!(x >= 0 && std::isfinite(x)) || (belowOne && !(x < 1))) {
    ThrowInvalid(env, std::string(name) + (belowOne ? " must lie in [0, 1)" : " must be a finite number ≥ 0") + ", got " + std::to_string(x) + ".");
  }
  return x;
}

struct AdamwArgs {
  std::vector<AdamwTensor> tensors;
  std::vector<Napi::Object> keep;
  AdamwParams params;
};

AdamwArgs ParseAdamwArgs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  AdamwArgs a;
  const Napi::Array list = ArgList(info, 0, "tensors");
  if (info.Length() < 2 || !info[1].IsObject()) ThrowInvalid(env, "params must be an object.");
  const Napi::Object p = info[1].As<Napi::Object>();
  a.params.lr = NonNegative(env, p, "lr");
  a.params.beta1 = NonNegative(env, p, "beta1", true);
  a.params.beta2 = NonNegative(env, p, "beta2", true);
  a.params.eps = NonNegative(env, p, "eps");
  if (!(a.params.eps > 0)) ThrowInvalid(env, "eps must be positive.");
  a.params.step = static_cast<double>(FieldSize(env, p, "step"));
  if (a.params.step < 1) ThrowInvalid(env, "step must be at least 1 (the first step is 1).");
  a.params.grad_scale = NonNegative(env, p, "gradScale");
  for (uint32_t i = 0; i < list.Length(); i++) {
    const Napi::Value item = list.Get(i);
    if (!item.IsObject()) ThrowInvalid(env, Item("tensors", i) + " must be an object.");
    const Napi::Object o = item.As<Napi::Object>();
    ArrayArg<float> w = ValueArray<float>(env, o.Get("weights"), Item("tensors", i, "weights"), napi_float32_array);
    ArrayArg<float> g = ValueArray<float>(env, o.Get("grads"), Item("tensors", i, "grads"), napi_float32_array);
    ArrayArg<float> m = ValueArray<float>(env, o.Get("m"), Item("tensors", i, "m"), napi_float32_array);
    ArrayArg<float> v = ValueArray<float>(env, o.Get("v"), Item("tensors", i, "v"), napi_float32_array);
    const std::string weightsName = Item("tensors", i, "weights");
    ExpectSame(env, g.length, w.length, Item("tensors", i, "grads"), weightsName);
    ExpectSame(env, m.length, w.length, Item("tensors", i, "m"), weightsName);
    ExpectSame(env, v.length, w.length, Item("tensors", i, "v"), weightsName);
    AdamwTensor t;
    t.w = w.data;
    t.g = g.data;
    t.m = m.data;
    t.v = v.data;
    t.n = w.length;
    const Napi::Value maskValue = o.Get("mask");
    const size_t bytes = w.length * sizeof(float);
    if (!maskValue.IsUndefined() && !maskValue.IsNull()) {
      ArrayArg<uint8_t> mask = ValueArray<uint8_t>(env, maskValue, Item("tensors", i, "mask"), napi_uint8_array);
      ExpectSame(env, mask.length, w.length, Item("tensors", i, "mask"), weightsName);
      t.mask = mask.data;
      a.keep.push_back(mask.object);
      ExpectNoOverlap(env, {{w.data, bytes}, {m.data, bytes}, {v.data, bytes}}, {{mask.data, mask.length}});
    }
    t.weight_decay = FieldNumber(env, o, "weightDecay");
    if (!(t.weight_decay >= 0 && std::isfinite(t.weight_decay))) {
      ThrowInvalid(env, Item("tensors", i, "weightDecay") + " must be a finite number ≥ 0.");
    }
    ExpectNoOverlap(env, {{w.data, bytes}, {m.data, bytes}, {v.data, bytes}}, {{g.data, bytes}});
    ExpectNoOverlap(env, {{w.data, bytes}}, {{m.data, bytes}, {v.data, bytes}});
    ExpectNoOverlap(env, {{m.data, bytes}}, {{v.data, bytes}});
    a.tensors.push_back(t);
    for (const ArrayArg<float>* arr : {&w, &g, &m, &v}) a.keep.push_back(arr->object);
  }
  return a;
}

Napi::Value AdamwStepJs(const Napi::CallbackInfo& info) {
  AdamwArgs a = ParseAdamwArgs(info);
  auto tensors = std::make_shared<std::vector<AdamwTensor>>(std::move(a.tensors));
  const AdamwParams params = a.params;
  auto* worker = new KernelWorker(
      info.Env(), "adamwStep", [tensors, params] { AdamwStep(tensors->data(), tensors->size(), params); },
      [](Napi::Env env, const KernelWorker&) -> Napi::Value { return env.Undefined(); });
  for (const Napi::Object& o : a.keep) worker->Keep(o);
  return KernelWorker::Start(worker);
}

void AdamwStepRefJs(const Napi::CallbackInfo& info) {
  AdamwArgs a = ParseAdamwArgs(info);
  RunSync(info.Env(), [&] { AdamwStepRef(a.tensors.data(), a.tensors.size(), a.params); });
}

struct NormArgs {
  ArrayArg<double> out;
  std::vector<AdamwGradView> grads;
  std::vector<Napi::Object> keep;
};

NormArgs ParseNormArgs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  NormArgs a;
  a.out = ArgArray<double>(info, 0, "out", napi_float64_array);
  const Napi::Array grads = ArgList(info, 1, "grads");
  const bool hasMasks = info.Length() > 2 && !info[2].IsNull() && !info[2].IsUndefined();
  Napi::Array masks;
  if (hasMasks) {
    masks = ArgList(info, 2, "masks");
    if (masks.Length() != grads.Length()) {
      ThrowInvalid(env, "masks must hold one entry (or null) per gradient: " + std::to_string(grads.Length()) + ", got " +
                            std::to_string(masks.Length()) + ".");
    }
  }
  ExpectLength(env, a.out.length, grads.Length(), "out", "[tensors]");
  for (uint32_t i = 0; i < grads.Length(); i++) {
    ArrayArg<float> g = ValueArray<float>(env, grads.Get(i), Item("grads", i), napi_float32_array);
    AdamwGradView view;
    view.g = g.data;
    view.n = g.length;
    a.keep.push_back(g.object);
    if (hasMasks) {
      const Napi::Value mv = masks.Get(i);
      if (!mv.IsNull() && !mv.IsUndefined()) {
        ArrayArg<uint8_t> mask = ValueArray<uint8_t>(env, mv, Item("masks", i), napi_uint8_array);
        ExpectSame(env, mask.length, g.length, Item("masks", i), Item("grads", i));
        view.mask = mask.data;
        a.keep.push_back(mask.object);
      }
    }
    a.grads.push_back(view);
  }
  return a;
}

Napi::Value GradSquaredSumJs(const Napi::CallbackInfo& info) {
  NormArgs a = ParseNormArgs(info);
  auto grads = std::make_shared<std::vector<AdamwGradView>>(std::move(a.grads));
  double* out = a.out.data;
  auto* worker = new KernelWorker(
      info.Env(), "gradSquaredSum", [grads, out] { GradSquaredSum(out, grads->data(), grads->size()); },
      [](Napi::Env, const KernelWorker& w) -> Napi::Value { return w.Kept(0); });
  worker->Keep(a.out.object);  // Kept(0): the result
  for (const Napi::Object& o : a.keep) worker->Keep(o);
  return KernelWorker::Start(worker);
}

void GradSquaredSumRefJs(const Napi::CallbackInfo& info) {
  NormArgs a = ParseNormArgs(info);
  RunSync(info.Env(), [&] { GradSquaredSumRef(a.out.data, a.grads.data(), a.grads.size()); });
}

struct AddArgs {
  std::vector<std::pair<ArrayArg<float>, ArrayArg<float>>> pairs;
};

AddArgs ParseAddArgs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Napi::Array dst = ArgList(info, 0, "dst");
  const Napi::Array src = ArgList(info, 1, "src");
  if (dst.Length() != src.Length()) {
    ThrowInvalid(env, "dst and src must hold the same number of arrays: " + std::to_string(dst.Length()) + " and " + std::to_string(src.Length()) + ".");
  }
  AddArgs a;
  for (uint32_t i = 0; i < dst.Length(); i++) {
    ArrayArg<float> d = ValueArray<float>(env, dst.Get(i), Item("dst", i), napi_float32_array);
    ArrayArg<float> s = ValueArray<float>(env, src.Get(i), Item("src", i), napi_float32_array);
    ExpectSame(env, s.length, d.length, Item("src", i), Item("dst", i));
    ExpectNoOverlap(env, {{d.data, d.length * sizeof(float)}}, {{s.data, s.length * sizeof(float)}});
    a.pairs.emplace_back(d, s);
  }
  return a;
}

Napi::Value AddIntoJs(const Napi::CallbackInfo& info) {
  AddArgs a = ParseAddArgs(info);
  auto spans = std::make_shared<std::vector<std::pair<float*, std::pair<const float*, size_t>>>>();
  for (const auto& [d, s] : a.pairs) spans->push_back({d.data, {s.data, d.length}});
  auto* worker = new KernelWorker(
      info.Env(), "addInto", [spans] { for (const auto& [d, s] : *spans) AddInto(d, s.first, s.second); },
      [](Napi::Env env, const KernelWorker&) -> Napi::Value { return env.Undefined(); });
  for (const auto& [d, s] : a.pairs) {
    worker->Keep(d.object);
    worker->Keep(s.object);
  }
  return KernelWorker::Start(worker);
}

void AddIntoRefJs(const Napi::CallbackInfo& info) {
  AddArgs a = ParseAddArgs(info);
  RunSync(info.Env(), [&] { for (const auto& [d, s] : a.pairs) AddIntoRef(d.data, s.data, d.length); });
}

}  // namespace

void RegisterAdamw(Napi::Env env, Napi::Object exports) {
  exports.Set("adamwStep", Napi::Function::New(env, AdamwStepJs, "adamwStep"));
  exports.Set("adamwStepRef", Napi::Function::New(env, AdamwStepRefJs, "adamwStepRef"));
  exports.Set("gradSquaredSum", Napi::Function::New(env, GradSquaredSumJs, "gradSquaredSum"));
  exports.Set("gradSquaredSumRef", Napi::Function::New(env, GradSquaredSumRefJs, "gradSquaredSumRef"));
  exports.Set("addInto", Napi::Function::New(env, AddIntoJs, "addInto"));
  exports.Set("addIntoRef", Napi::Function::New(env, AddIntoRefJs, "addIntoRef"));
}

}  // namespace whittle
