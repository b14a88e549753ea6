// hessian.cc — Hessian accumulation (H += XᵀX) and preparation for GPTQ / SparseGPT (see hessian.h).
//
// HessianAccumulate is a symmetric rank-n update (BLAS ssyrk) on square TILE×TILE tiles of H's lower
// triangle, in parallel; the upper triangle gets the same increments, mirrored. For one tile
// (rows i0.., columns j0..) and each KC-deep slice of the batch rows t:
//   Ap[panel][kk][MR] = X[t0 + kk, i0 + panel·MR + r]     (slices of X's rows: no transpose needed)
//   Bp[panel][kk][NR] = X[t0 + kk, j0 + panel·NR + c]
//   acc[TILE×TILE] += Ap · Bpᵀ                             (6×16 micro-kernel, FMA on the AVX2 path)
// then H[i, j] += acc and H[j, i] += acc (diagonal tiles: the lower half, mirrored).
//
// PrepareHessian builds A = J·H·J in float64 (J: reversal, H damped and permuted, lower triangle only),
// factors A = L·Lᵀ (CholeskyLower), inverts L (InvertLower) and reads U = J·L⁻¹·J into float32.
#include "hessian.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

#include "aligned_buffer.h"
#include "cpu_features.h"
#include "microkernel.h"
#include "linalg.h"
#include "napi_helpers.h"
#include "parallel.h"
#include "reference/hessian_ref.h"

#if WHITTLE_X86_SIMD
#include <immintrin.h>
#endif

namespace whittle {

namespace hessian_detail {

std::string FormatNumber(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

void ThrowNotFinite(const std::string& label, size_t row, size_t col) {
  throw KernelError("INVALID_INPUT", "The Hessian sum of " + label + " holds a NaN or infinite value at [" +
                                         std::to_string(row) + ", " + std::to_string(col) +
                                         "]; the calibration activations overflowed or are corrupt.");
}

void ThrowNotPositiveDefinite(const std::string& label, size_t input, double pivot, double percdamp) {
  throw KernelError("INVALID_INPUT", "The Hessian of " + label + " is not positive definite (pivot " +
                                         FormatNumber(pivot) + " at input " + std::to_string(input) +
                                         " after damping with percdamp " + FormatNumber(percdamp) +
                                         "); increase percdamp.");
}

void ThrowIllConditioned(const std::string& label, double percdamp) {
  throw KernelError("INVALID_INPUT", "The Hessian of " + label +
                                         " is not positive definite in float precision (its inverse overflows "
                                         "after damping with percdamp " + FormatNumber(percdamp) +
                                         "); increase percdamp.");
}

void CheckOrder(const int32_t* order, size_t d) {
  std::vector<uint8_t> seen(d, 0);
  for (size_t a = 0; a < d; a++) {
    const int32_t o = order[a];
    if (o < 0 || static_cast<size_t>(o) >= d || seen[o]) {
      throw KernelError("INVALID_INPUT", "order must be a permutation of 0.." + std::to_string(d - 1) +
                                             " (entry " + std::to_string(a) + " is " + std::to_string(o) + ").");
    }
    seen[o] = 1;
  }
}

}  // namespace hessian_detail

namespace {

using namespace hessian_detail;

constexpr size_t MR = kTileRows;  // the register tile of microkernel.h
constexpr size_t NR = kTileCols;
constexpr size_t KC = 256;
constexpr size_t TILE = 192;  // 32 row panels × 12 column panels

// acc[MR×NR block, row stride ldc] += Ap[kc][MR] · Bp[kc][NR]
void SyrkMicro16Baseline(size_t kc, const float* ap, const float* bp, float* acc, size_t ldc) {
  float c[MR][NR] = {};
  for (size_t kk = 0; kk < kc; kk++) {
    const float* a = ap + kk * MR;
    const float* b = bp + kk * NR;
    for (size_t r = 0; r < MR; r++) {
      for (size_t j = 0; j < NR; j++) c[r][j] += a[r] * b[j];
    }
  }
  for (size_t r = 0; r < MR; r++) {
    for (size_t j = 0; j < NR; j++) acc[r * ldc + j] += c[r][j];
  }
}

#if WHITTLE_X86_SIMD
WHITTLE_TARGET_AVX2 void SyrkMicro16Avx2(size_t kc, const float* ap, const float* bp, float* acc, size_t ldc) {
  __m256 rows[MR][2];
  FmaTile6x16(kc, ap, bp, rows);
  for (size_t r = 0; r < MR; r++) {
    float* row = acc + r * ldc;
    _mm256_storeu_ps(row, _mm256_add_ps(_mm256_loadu_ps(row), rows[r][0]));
    _mm256_storeu_ps(row + 8, _mm256_add_ps(_mm256_loadu_ps(row + 8), rows[r][1]));
  }
}

// acc[MR × 32] += Ap · (Bp0 | Bp1): the 6×32 AVX-512 tile over two adjacent column panels (bp1 = bp0 + kc·NR).
WHITTLE_TARGET_AVX512 void SyrkMicroAvx512(size_t kc, const float* ap, const float* bp0, float* acc, size_t ldc, bool pair) {
  if (!pair) {
    SyrkMicro16Avx2(kc, ap, bp0, acc, ldc);
    return;
  }
  __m512 rows[MR][2];
  FmaTile6x32(kc, ap, bp0, bp0 + kc * NR, rows);
  for (size_t r = 0; r < MR; r++) {
    float* row = acc + r * ldc;
    _mm512_storeu_ps(row, _mm512_add_ps(_mm512_loadu_ps(row), rows[r][0]));
    _mm512_storeu_ps(row + NR, _mm512_add_ps(_mm512_loadu_ps(row + NR), rows[r][1]));
  }
}
#endif

// A 16-wide kernel over one or two adjacent column panels (pair: bp0 and bp0 + kc·NR).
template <void (*kKernel)(size_t, const float*, const float*, float*, size_t)>
void TwoPanels(size_t kc, const float* ap, const float* bp0, float* acc, size_t ldc, bool pair) {
  kKernel(kc, ap, bp0, acc, ldc);
  if (pair) kKernel(kc, ap, bp0 + kc * NR, acc + NR, ldc);
}

// Panels of `width` consecutive columns of X starting at c0, rows t0..t0+kc: out[panel][kk][width],
// zero beyond column d.
void PackColumns(float* out, const float* x, size_t d, size_t t0, size_t kc, size_t c0, size_t cols, size_t width) {
  for (size_t p = 0; p * width < cols; p++) {
    float* dst = out + p * kc * width;
    const size_t first = c0 + p * width;
    const size_t valid = std::min(width, cols - p * width);
    for (size_t kk = 0; kk < kc; kk++) {
      const float* src = x + (t0 + kk) * d + first;
      float* o = dst + kk * width;
      for (size_t j = 0; j < valid; j++) o[j] = src[j];
      for (size_t j = valid; j < width; j++) o[j] = 0.0f;
    }
  }
}

void AccumulateTile(float* h, const float* x, size_t n, size_t d, size_t ti, size_t tj) {
  auto kernel = TwoPanels<SyrkMicro16Baseline>;
#if WHITTLE_X86_SIMD
  if (UseAvx512()) {
    kernel = SyrkMicroAvx512;
  } else if (UseAvx2()) {
    kernel = TwoPanels<SyrkMicro16Avx2>;
  }
#endif
  const size_t i0 = ti * TILE, j0 = tj * TILE;
  const size_t rows = std::min(TILE, d - i0), cols = std::min(TILE, d - j0);
  const size_t r_panels = CeilDiv(rows, MR), c_panels = CeilDiv(cols, NR);
  const size_t ldc = c_panels * NR;
  thread_local AlignedVector<float> ap_buffer, bp_buffer, acc_buffer;
  ap_buffer.resize(TILE * KC + MR * KC);
  bp_buffer.resize(TILE * KC + NR * KC);
  acc_buffer.assign(r_panels * MR * ldc, 0.0f);
  float* acc = acc_buffer.data();
  const bool diagonal = ti == tj;
  for (size_t t0 = 0; t0 < n; t0 += KC) {
    const size_t kc = std::min(KC, n - t0);
    PackColumns(ap_buffer.data(), x, d, t0, kc, i0, rows, MR);
    PackColumns(bp_buffer.data(), x, d, t0, kc, j0, cols, NR);
    for (size_t p = 0; p < r_panels; p++) {
      for (size_t q = 0; q < c_panels; q += 2) {  // two column panels at a time
        if (diagonal && q * NR > p * MR + MR - 1) break;  // block entirely above the diagonal
        const bool pair = q + 1 < c_panels && !(diagonal && (q + 1) * NR > p * MR + MR - 1);
        kernel(kc, ap_buffer.data() + p * kc * MR, bp_buffer.data() + q * kc * NR, acc + p * MR * ldc + q * NR, ldc, pair);
      }
    }
  }
  for (size_t r = 0; r < rows; r++) {
    const size_t i = i0 + r;
    const size_t c_end = diagonal ? r + 1 : cols;
    float* hrow = h + i * d + j0;
    const float* arow = acc + r * ldc;
    for (size_t c = 0; c < c_end; c++) hrow[c] += arow[c];
    for (size_t c = 0; c < c_end; c++) {
      if (!diagonal || c < r) h[(j0 + c) * d + i] += arow[c];
    }
  }
}

}  // namespace

void HessianAccumulate(float* h, const float* x, size_t n, size_t d) {
  if (n == 0 || d == 0) return;
  const size_t tiles = CeilDiv(d, TILE);
  ParallelFor(tiles * (tiles + 1) / 2, [&](size_t t) {
    size_t ti = 0;
    while ((ti + 1) * (ti + 2) / 2 <= t) ti++;
    AccumulateTile(h, x, n, d, ti, t - ti * (ti + 1) / 2);
  });
}

size_t PrepareHessian(float* hinv_upper, uint8_t* dead, const float* sum, size_t d, const HessianPrepOptions& o) {
  const double scale = 2.0 / o.count;
  auto input = [&](size_t a) { return o.order ? static_cast<size_t>(o.order[a]) : a; };

  // Sweep position a ↔ row p = d−1−a of A = J·H·J; A[p][q] (q <= p) = H[input(a), input(b)].
  size_t dead_count = 0;
  double diag_sum = 0.0;
  for (size_t a = 0; a < d; a++) {
    const size_t i = input(a);
    if (!std::isfinite(sum[i * d + i])) ThrowNotFinite(o.label, i, i);
    dead[i] = sum[i * d + i] == 0.0f ? 1 : 0;
    dead_count += dead[i];
    diag_sum += DiagonalOf(sum, d, i, scale);
  }
  const double damp = o.percdamp * (diag_sum / static_cast<double>(d));

  std::vector<double> work(d * d);
  double* w = work.data();
  constexpr size_t kRows = 64;
  ParallelFor(CeilDiv(d, kRows), [&](size_t t) {
    const size_t p_end = std::min(d, (t + 1) * kRows);
    for (size_t p = t * kRows; p < p_end; p++) {
      const size_t i = input(d - 1 - p);
      const float* srow = sum + i * d;
      double* wrow = w + p * d;
      for (size_t q = 0; q < p; q++) {
        const size_t j = input(d - 1 - q);
        const float s = srow[j];
        if (!std::isfinite(s)) ThrowNotFinite(o.label, i, j);
        wrow[q] = scale * static_cast<double>(s);
      }
      wrow[p] = DiagonalOf(sum, d, i, scale) + damp;
    }
  });

  double pivot = 0.0;
  const size_t failed = CholeskyLower(w, d, &pivot);
  if (failed != d) ThrowNotPositiveDefinite(o.label, input(d - 1 - failed), pivot, o.percdamp);
  InvertLower(w, d);

  // U[a][b] = L⁻¹[d−1−a][d−1−b] for b >= a, 0 below the diagonal.
  std::vector<uint8_t> overflow(CeilDiv(d, kRows), 0);
  ParallelFor(CeilDiv(d, kRows), [&](size_t t) {
    const size_t a_end = std::min(d, (t + 1) * kRows);
    for (size_t a = t * kRows; a < a_end; a++) {
      float* urow = hinv_upper + a * d;
      const double* mrow = w + (d - 1 - a) * d;
      std::fill(urow, urow + a, 0.0f);
      bool finite = true;
      for (size_t b = a; b < d; b++) {
        urow[b] = static_cast<float>(mrow[d - 1 - b]);
        finite &= std::isfinite(urow[b]);
      }
      if (!finite) overflow[t] = 1;
    }
  });
  if (std::find(overflow.begin(), overflow.end(), 1) != overflow.end()) ThrowIllConditioned(o.label, o.percdamp);
  return dead_count;
}

void HessianActOrder(int32_t* order, const float* sum, size_t d, double count) {
  const double scale = 2.0 / count;
  std::vector<double> key(d);
  for (size_t i = 0; i < d; i++) key[i] = DiagonalOf(sum, d, i, scale);
  std::iota(order, order + d, 0);
  std::stable_sort(order, order + d, [&](int32_t x, int32_t y) { return key[x] > key[y]; });
}

// ---- bindings ---------------------------------------------------------------------------------------
// hessianAccumulate(h: Float32Array [d×d], x: Float32Array [n×d], n, d): Promise<Float32Array>  — h += xᵀx
// prepareHessian(hinvUpper: Float32Array [d×d], dead: Uint8Array [d], sum: Float32Array [d×d], d,
//                params: { count, percdamp, order?: Int32Array, label?: string }): Promise<number>
//   — fills hinvUpper and the dead mask, resolves with the number of dead inputs.
// hessianActOrder(order: Int32Array [d], sum, d, count): void  — synchronous (O(d log d)).
// hessianAccumulateRef / prepareHessianRef: same arguments, synchronous, the references.

namespace {

struct AccumulateArgs {
  ArrayArg<float> h, x;
  size_t n = 0, d = 0;
};

AccumulateArgs ParseAccumulate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  AccumulateArgs a;
  a.h = ArgF32(info, 0, "h");
  a.x = ArgF32(info, 1, "x");
  a.n = ArgSize(info, 2, "n");
  a.d = ArgSize(info, 3, "d");
  ExpectLength(env, a.h.length, a.d * a.d, "h", "d·d");
  ExpectLength(env, a.x.length, a.n * a.d, "x", "n·d");
  if (Overlaps(a.h.data, a.h.length * 4, a.x.data, a.x.length * 4)) ThrowInvalid(env, "h must not share memory with x.");
  return a;
}

Napi::Value HessianAccumulateJs(const Napi::CallbackInfo& info) {
  AccumulateArgs a = ParseAccumulate(info);
  auto* worker = new KernelWorker(
      info.Env(), "hessianAccumulate", [h = a.h.data, x = a.x.data, n = a.n, d = a.d] { HessianAccumulate(h, x, n, d); },
      [](Napi::Env, const KernelWorker& w) -> Napi::Value { return w.Kept(0); });
  worker->Keep(a.h.object);
  worker->Keep(a.x.object);
  return KernelWorker::Start(worker);
}

void HessianAccumulateRefJs(const Napi::CallbackInfo& info) {
  AccumulateArgs a = ParseAccumulate(info);
  RunSync(info.Env(), [&] { HessianAccumulateRef(a.h.data, a.x.data, a.n, a.d); });
}

struct PrepareArgs {
  ArrayArg<float> hinv, sum;
  ArrayArg<uint8_t> dead;
  ArrayArg<int32_t> order;
  size_t d = 0;
  HessianPrepOptions opts;
};

PrepareArgs ParsePrepare(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  PrepareArgs p;
  p.hinv = ArgF32(info, 0, "hinvUpper");
  p.dead = ArgU8(info, 1, "dead");
  p.sum = ArgF32(info, 2, "sum");
  p.d = ArgSize(info, 3, "d");
  if (info.Length() <= 4 || !info[4].IsObject()) ThrowInvalid(env, "params must be an object.");
  Napi::Object o = info[4].As<Napi::Object>();
  Napi::Value count = o.Get("count"), percdamp = o.Get("percdamp"), order = o.Get("order"), label = o.Get("label");
  if (!count.IsNumber() || !(count.As<Napi::Number>().DoubleValue() > 0)) ThrowInvalid(env, "count must be a positive number.");
  p.opts.count = count.As<Napi::Number>().DoubleValue();
  if (!percdamp.IsNumber()) ThrowInvalid(env, "percdamp must be a number.");
  p.opts.percdamp = percdamp.As<Napi::Number>().DoubleValue();
  if (!(p.opts.percdamp >= 0) || !std::isfinite(p.opts.percdamp)) ThrowInvalid(env, "percdamp must be a finite number ≥ 0.");
  if (label.IsString()) p.opts.label = label.As<Napi::String>().Utf8Value();
  if (p.d == 0) ThrowInvalid(env, "d must be at least 1.");
  ExpectLength(env, p.hinv.length, p.d * p.d, "hinvUpper", "d·d");
  ExpectLength(env, p.sum.length, p.d * p.d, "sum", "d·d");
  ExpectLength(env, p.dead.length, p.d, "dead", "d");
  if (!order.IsUndefined() && !order.IsNull()) {
    if (!order.IsTypedArray() || order.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
      ThrowInvalid(env, "order must be an Int32Array.");
    }
    Napi::Int32Array arr = order.As<Napi::Int32Array>();
    p.order.data = arr.Data();
    p.order.length = arr.ElementLength();
    p.order.object = arr;
    ExpectLength(env, p.order.length, p.d, "order", "d");
    RunSync(env, [&] { CheckOrder(p.order.data, p.d); });
    p.opts.order = p.order.data;
  }
  const size_t hb = p.hinv.length * 4;
  if (Overlaps(p.hinv.data, hb, p.sum.data, p.sum.length * 4) || Overlaps(p.hinv.data, hb, p.dead.data, p.dead.length) ||
      Overlaps(p.dead.data, p.dead.length, p.sum.data, p.sum.length * 4)) {
    ThrowInvalid(env, "The outputs must not share memory with the Hessian sum.");
  }
  return p;
}

Napi::Value PrepareHessianJs(const Napi::CallbackInfo& info) {
  PrepareArgs p = ParsePrepare(info);
  auto dead_count = std::make_shared<size_t>(0);
  auto* worker = new KernelWorker(
      info.Env(), "prepareHessian",
      [hinv = p.hinv.data, dead = p.dead.data, sum = p.sum.data, d = p.d, opts = p.opts, dead_count] {
        *dead_count = PrepareHessian(hinv, dead, sum, d, opts);
      },
      [dead_count](Napi::Env env, const KernelWorker&) -> Napi::Value {
        return Napi::Number::New(env, static_cast<double>(*dead_count));
      });
  worker->Keep(p.hinv.object);
  worker->Keep(p.dead.object);
  worker->Keep(p.sum.object);
  if (p.order.data) worker->Keep(p.order.object);
  return KernelWorker::Start(worker);
}

Napi::Value PrepareHessianRefJs(const Napi::CallbackInfo& info) {
  PrepareArgs p = ParsePrepare(info);
  size_t dead_count = 0;
  RunSync(info.Env(), [&] { dead_count = PrepareHessianRef(p.hinv.data, p.dead.data, p.sum.data, p.d, p.opts); });
  return Napi::Number::New(info.Env(), static_cast<double>(dead_count));
}

void HessianActOrderJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ArrayArg<int32_t> order = ArgArray<int32_t>(info, 0, "order (an Int32Array)", napi_int32_array);
  ArrayArg<float> sum = ArgF32(info, 1, "sum");
  const size_t d = ArgSize(info, 2, "d");
  const double count = ArgNumber(info, 3, "count");
  if (!(count > 0)) ThrowInvalid(env, "count must be a positive number.");
  ExpectLength(env, order.length, d, "order", "d");
  ExpectLength(env, sum.length, d * d, "sum", "d·d");
  HessianActOrder(order.data, sum.data, d, count);
}

}  // namespace

void RegisterHessian(Napi::Env env, Napi::Object exports) {
  exports.Set("hessianAccumulate", Napi::Function::New(env, HessianAccumulateJs, "hessianAccumulate"));
  exports.Set("hessianAccumulateRef", Napi::Function::New(env, HessianAccumulateRefJs, "hessianAccumulateRef"));
  exports.Set("prepareHessian", Napi::Function::New(env, PrepareHessianJs, "prepareHessian"));
  exports.Set("prepareHessianRef", Napi::Function::New(env, PrepareHessianRefJs, "prepareHessianRef"));
  exports.Set("hessianActOrder", Napi::Function::New(env, HessianActOrderJs, "hessianActOrder"));
}

}  // namespace whittle
