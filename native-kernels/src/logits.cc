// logits.cc — NLL, KL(p ‖ q) and top-1 agreement of next-token logits, row by row (definitions in
// logits.h). This is the reduction behind perplexity and the original-vs-result comparison: one call
// scores a whole batch [rows, vocab] of onnxruntime logits.
//
// Per row x (widened to float64), m = max x:
//   one model   sum   = Σ_v exp(x_v − m)                         lse = m + log(sum), NLL = lse − x_t
//   two models  sumP  = Σ_v e_v,  e_v = exp(x_v − m_p);  sumQ = Σ_v exp(y_v − m_q)
//               cross = Σ_v e_v · (x_v − y_v)
//               KL(p‖q) = Σ_v p_v (log p_v − log q_v) = cross / sumP − lse_p + lse_q      (Σ p_v = 1)
// so each row is read twice (max, then one fused pass) instead of the reference's three passes with an
// exp per element each. top-1 compares the first index of each row's maximum.
//
// AVX2 / AVX-512 paths: max in float32 lanes; exp in float64, 4 (8) lanes, by range reduction
//   k = round(x · log2 e),  r = x − k·ln2 (two-part ln2),  |r| ≤ ln2/2
//   exp(x) = 2^k · P(r),  P = Taylor series to r^12 (truncation < 2e-16 relative)
// with x clamped at −708 so 2^k stays a normal double (the clamped terms are < 1e-307 beside the row's
// maximum, which contributes exactly 1); AVX-512 applies 2^k with VSCALEFPD. NaN logits propagate to NaN
// results, as in the reference. Within a path one model's NLL is the same number alone and in a pair.
// Rows are split over the thread pool in chunks of about 32k logits. The baseline path runs the scalar
// reference on each chunk. Reference: Goldberg, "What every computer scientist should know about
// floating-point arithmetic" (1991) for the stable log-sum-exp; KL as in Hinton et al. 2015 (distillation).
#include "logits.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "cpu_features.h"
#include "fp16.h"
#include "napi_helpers.h"
#include "parallel.h"
#include "reference/logits_ref.h"

#if WHITTLE_X86_SIMD
#include <immintrin.h>
#endif

namespace whittle {
namespace {

constexpr size_t kChunkLogits = 32768;

#if WHITTLE_X86_SIMD

// exp of 4 doubles (see the header comment). Inputs are ≤ 0 here (x − max), NaN allowed.
WHITTLE_TARGET_AVX2 inline __m256d Exp4(__m256d x) {
  const __m256d lo = _mm256_set1_pd(-708.0);
  x = _mm256_max_pd(lo, x);  // returns x when x is NaN
  const __m256d k = _mm256_round_pd(_mm256_mul_pd(x, _mm256_set1_pd(1.4426950408889634)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256d r = _mm256_fnmadd_pd(k, _mm256_set1_pd(6.93147180369123816490e-01), x);  // ln2 high part
  r = _mm256_fnmadd_pd(k, _mm256_set1_pd(1.90821492927058770002e-10), r);          // ln2 low part
  // Horner: Σ_{i=0}^{12} r^i / i!
  __m256d p = _mm256_set1_pd(1.0 / 479001600.0);
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 39916800.0));
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 3628800.0));
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 362880.0));
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 40320.0));
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 5040.0));
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 720.0));
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 120.0));
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 24.0));
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 6.0));
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(0.5));
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0));
  p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0));
  // 2^k for k in [-1022, 0]: k + 2^52·1.5 puts k in the low mantissa bits; add the bias, move to the exponent.
  const __m256i bits = _mm256_castpd_si256(_mm256_add_pd(k, _mm256_set1_pd(6755399441055744.0)));
  const __m256i pow2 = _mm256_slli_epi64(_mm256_add_epi64(bits, _mm256_set1_epi64x(1023)), 52);
  return _mm256_mul_pd(p, _mm256_castsi256_pd(pow2));
}

WHITTLE_TARGET_AVX2 inline double Sum4(__m256d v) {
  const __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
  return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

// max_v x_v, NaN ignored (as `x > max` does); −inf for an empty or all-NaN row.
WHITTLE_TARGET_AVX2 float MaxAvx2(const float* x, size_t n) {
  __m256 acc = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  size_t v = 0;
  for (; v + 8 <= n; v += 8) acc = _mm256_max_ps(_mm256_loadu_ps(x + v), acc);  // keeps acc when x is NaN
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, acc);
  float m = lanes[0];
  for (int i = 1; i < 8; i++) if (lanes[i] > m) m = lanes[i];
  for (; v < n; v++) if (x[v] > m) m = x[v];
  return m;
}

// The first index holding m (the row's maximum), 0 when none does (all NaN), as the reference's argmax.
WHITTLE_TARGET_AVX2 size_t FirstIndexOfAvx2(const float* x, size_t n, float m) {
  const __m256 target = _mm256_set1_ps(m);
  size_t v = 0;
  for (; v + 8 <= n; v += 8) {
    const int mask = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + v), target, _CMP_EQ_OQ));
    if (mask) return v + static_cast<size_t>(__builtin_ctz(static_cast<unsigned>(mask)));
  }
  for (; v < n; v++) if (x[v] == m) return v;
  return 0;
}

// Σ_v exp(x_v − m) in float64, summed exactly as PairSumsAvx2 sums e_v (so one model's NLL is the
// same number alone and beside another model).
WHITTLE_TARGET_AVX2 double SumExpAvx2(const float* x, size_t n, double m) {
  const __m256d mv = _mm256_set1_pd(m);
  __m256d s = _mm256_setzero_pd();
  size_t v = 0;
  for (; v + 4 <= n; v += 4) s = _mm256_add_pd(s, Exp4(_mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + v)), mv)));
  double sum = Sum4(s);
  for (; v < n; v++) sum += std::exp(static_cast<double>(x[v]) - m);
  return sum;
}

// sumP = Σ e_v, sumQ = Σ exp(y_v − mq), cross = Σ e_v (x_v − y_v), with e_v = exp(x_v − mp).
WHITTLE_TARGET_AVX2 void PairSumsAvx2(const float* x, const float* y, size_t n, double mp, double mq, double* sumP, double* sumQ, double* cross) {
  const __m256d mpv = _mm256_set1_pd(mp), mqv = _mm256_set1_pd(mq);
  __m256d sp = _mm256_setzero_pd(), sq = _mm256_setzero_pd(), sc = _mm256_setzero_pd();
  size_t v = 0;
  for (; v + 4 <= n; v += 4) {
    const __m256d xd = _mm256_cvtps_pd(_mm_loadu_ps(x + v));
    const __m256d yd = _mm256_cvtps_pd(_mm_loadu_ps(y + v));
    const __m256d e = Exp4(_mm256_sub_pd(xd, mpv));
    sp = _mm256_add_pd(sp, e);
    sq = _mm256_add_pd(sq, Exp4(_mm256_sub_pd(yd, mqv)));
    sc = _mm256_fmadd_pd(e, _mm256_sub_pd(xd, yd), sc);
  }
  double p = Sum4(sp), q = Sum4(sq), c = Sum4(sc);
  for (; v < n; v++) {
    const double e = std::exp(static_cast<double>(x[v]) - mp);
    p += e;
    q += std::exp(static_cast<double>(y[v]) - mq);
    c += e * (static_cast<double>(x[v]) - static_cast<double>(y[v]));
  }
  *sumP = p;
  *sumQ = q;
  *cross = c;
}

// A row as float32: the logits themselves, or float16 bits widened into `scratch`.
const float* RowAsF32(const LogitsView& v, size_t r, size_t vocab, std::vector<float>& scratch) {
  if (!v.f16) return static_cast<const float*>(v.data) + r * vocab;
  scratch.resize(vocab);
  F16ToF32Span(scratch.data(), static_cast<const uint16_t*>(v.data) + r * vocab, vocab);
  return scratch.data();
}

// One row loop for both SIMD paths: Max / SumExp / PairSums / FirstIndexOf of the path (inlined into
// the caller, which carries the path's target attribute).
template <float (*Max)(const float*, size_t), double (*SumExp)(const float*, size_t, double),
          void (*PairSums)(const float*, const float*, size_t, double, double, double*, double*, double*)>
inline void ScoreRowsSimd(double* out, LogitsView p, const LogitsView* q, const int32_t* targets, size_t begin, size_t end, size_t vocab) {
  std::vector<float> scratchP, scratchQ;
  for (size_t r = begin; r < end; r++) {
    const int32_t target = targets[r];
    if (!q) {
      if (target < 0) {
        out[r] = 0;
        continue;
      }
      const float* x = RowAsF32(p, r, vocab, scratchP);
      const double m = Max(x, vocab);
      out[r] = m + std::log(SumExp(x, vocab, m)) - x[target];
      continue;
    }
    double* o = out + r * kLogitsPairStride;
    if (target < 0) {
      o[0] = o[1] = o[2] = o[3] = 0;
      continue;
    }
    const float* x = RowAsF32(p, r, vocab, scratchP);
    const float* y = RowAsF32(*q, r, vocab, scratchQ);
    const float mpf = Max(x, vocab), mqf = Max(y, vocab);
    double sumP, sumQ, cross;
    PairSums(x, y, vocab, mpf, mqf, &sumP, &sumQ, &cross);
    const double lseP = mpf + std::log(sumP), lseQ = mqf + std::log(sumQ);
    const double kl = cross / sumP - lseP + lseQ;
    o[0] = lseP - x[target];
    o[1] = lseQ - y[target];
    o[2] = kl > 0 || std::isnan(kl) ? kl : 0.0;
    o[3] = FirstIndexOfAvx2(x, vocab, mpf) == FirstIndexOfAvx2(y, vocab, mqf) ? 1.0 : 0.0;
  }
}

WHITTLE_TARGET_AVX2 void ScoreRowsAvx2(double* out, LogitsView p, const LogitsView* q, const int32_t* targets, size_t begin, size_t end, size_t vocab) {
  ScoreRowsSimd<MaxAvx2, SumExpAvx2, PairSumsAvx2>(out, p, q, targets, begin, end, vocab);
}

// ---- AVX-512: the same arithmetic, 8 doubles per register -----------------------------------------

WHITTLE_TARGET_AVX512 inline __m512d Exp8(__m512d x) {
  x = _mm512_max_pd(_mm512_set1_pd(-708.0), x);  // returns x when x is NaN
  const __m512d k = _mm512_roundscale_pd(_mm512_mul_pd(x, _mm512_set1_pd(1.4426950408889634)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512d r = _mm512_fnmadd_pd(k, _mm512_set1_pd(6.93147180369123816490e-01), x);
  r = _mm512_fnmadd_pd(k, _mm512_set1_pd(1.90821492927058770002e-10), r);
  __m512d p = _mm512_set1_pd(1.0 / 479001600.0);
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0 / 39916800.0));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0 / 3628800.0));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0 / 362880.0));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0 / 40320.0));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0 / 5040.0));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0 / 720.0));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0 / 120.0));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0 / 24.0));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0 / 6.0));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(0.5));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0));
  return _mm512_scalef_pd(p, k);  // p · 2^k
}

WHITTLE_TARGET_AVX512 float MaxAvx512(const float* x, size_t n) {
  __m512 acc = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  size_t v = 0;
  for (; v + 16 <= n; v += 16) acc = _mm512_max_ps(_mm512_loadu_ps(x + v), acc);  // keeps acc when x is NaN
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, acc);
  float m = lanes[0];
  for (int i = 1; i < 16; i++) if (lanes[i] > m) m = lanes[i];
  for (; v < n; v++) if (x[v] > m) m = x[v];
  return m;
}

WHITTLE_TARGET_AVX512 double SumExpAvx512(const float* x, size_t n, double m) {
  const __m512d mv = _mm512_set1_pd(m);
  __m512d s = _mm512_setzero_pd();
  size_t v = 0;
  for (; v + 8 <= n; v += 8) s = _mm512_add_pd(s, Exp8(_mm512_sub_pd(_mm512_cvtps_pd(_mm256_loadu_ps(x + v)), mv)));
  double sum = _mm512_reduce_add_pd(s);
  for (; v < n; v++) sum += std::exp(static_cast<double>(x[v]) - m);
  return sum;
}

WHITTLE_TARGET_AVX512 void PairSumsAvx512(const float* x, const float* y, size_t n, double mp, double mq, double* sumP, double* sumQ, double* cross) {
  const __m512d mpv = _mm512_set1_pd(mp), mqv = _mm512_set1_pd(mq);
  __m512d sp = _mm512_setzero_pd(), sq = _mm512_setzero_pd(), sc = _mm512_setzero_pd();
  size_t v = 0;
  for (; v + 8 <= n; v += 8) {
    const __m512d xd = _mm512_cvtps_pd(_mm256_loadu_ps(x + v));
    const __m512d yd = _mm512_cvtps_pd(_mm256_loadu_ps(y + v));
    const __m512d e = Exp8(_mm512_sub_pd(xd, mpv));
    sp = _mm512_add_pd(sp, e);
    sq = _mm512_add_pd(sq, Exp8(_mm512_sub_pd(yd, mqv)));
    sc = _mm512_fmadd_pd(e, _mm512_sub_pd(xd, yd), sc);
  }
  double p = _mm512_reduce_add_pd(sp), q = _mm512_reduce_add_pd(sq), c = _mm512_reduce_add_pd(sc);
  for (; v < n; v++) {
    const double e = std::exp(static_cast<double>(x[v]) - mp);
    p += e;
    q += std::exp(static_cast<double>(y[v]) - mq);
    c += e * (static_cast<double>(x[v]) - static_cast<double>(y[v]));
  }
  *sumP = p;
  *sumQ = q;
  *cross = c;
}

WHITTLE_TARGET_AVX512 void ScoreRowsAvx512(double* out, LogitsView p, const LogitsView* q, const int32_t* targets, size_t begin, size_t end, size_t vocab) {
  ScoreRowsSimd<MaxAvx512, SumExpAvx512, PairSumsAvx512>(out, p, q, targets, begin, end, vocab);
}

#endif

void ScoreRowsBaseline(double* out, LogitsView p, const LogitsView* q, const int32_t* targets, size_t begin, size_t end, size_t vocab) {
  const size_t stride = q ? kLogitsPairStride : 1;
  const size_t elem = p.f16 ? sizeof(uint16_t) : sizeof(float);
  LogitsView pc{static_cast<const char*>(p.data) + begin * vocab * elem, p.f16};
  LogitsView qc;
  if (q) qc = LogitsView{static_cast<const char*>(q->data) + begin * vocab * (q->f16 ? sizeof(uint16_t) : sizeof(float)), q->f16};
  ScoreLogitsRef(out + begin * stride, pc, q ? &qc : nullptr, targets + begin, end - begin, vocab);
}

}  // namespace

void ScoreLogitsSerial(double* out, LogitsView p, const LogitsView* q, const int32_t* targets, size_t rows, size_t vocab) {
#if WHITTLE_X86_SIMD
  if (UseAvx512()) return ScoreRowsAvx512(out, p, q, targets, 0, rows, vocab);
  if (UseAvx2()) return ScoreRowsAvx2(out, p, q, targets, 0, rows, vocab);
#endif
  ScoreRowsBaseline(out, p, q, targets, 0, rows, vocab);
}

void ScoreLogits(double* out, LogitsView p, const LogitsView* q, const int32_t* targets, size_t rows, size_t vocab) {
  if (rows == 0) return;
  const size_t chunkRows = std::max<size_t>(1, kChunkLogits / std::max<size_t>(1, vocab));
  ParallelFor(CeilDiv(rows, chunkRows), [&](size_t c) {
    const size_t begin = c * chunkRows;
    const size_t end = std::min(rows, begin + chunkRows);
#if WHITTLE_X86_SIMD
    if (UseAvx512()) return ScoreRowsAvx512(out, p, q, targets, begin, end, vocab);
    if (UseAvx2()) return ScoreRowsAvx2(out, p, q, targets, begin, end, vocab);
#endif
    ScoreRowsBaseline(out, p, q, targets, begin, end, vocab);
  });
}

// ---- bindings ---------------------------------------------------------------------------------------
// scoreLogits(out: Float64Array, p: Float32Array | Uint16Array, q: Float32Array | Uint16Array | null,
//             targets: Int32Array, vocab: number): Promise<Float64Array>        (resolves with out)
// scoreLogitsInline(...same...): void — the fast kernel on the calling thread, for small batches where
//   a hop to a worker thread and the pool costs more than the work (a few hundred µs at most).
// scoreLogitsRef(...same...): void — the single-threaded scalar reference, synchronous.
// rows = targets.length; p (and q) hold rows·vocab logits (Uint16Array: float16 bits); out holds rows
// (one model) or 4·rows (two models) values; every target is < vocab (negative: row not scored).

namespace {

struct ScoreArgs {
  ArrayArg<double> out;
  Napi::Object pObject, qObject, targetsObject;
  LogitsView p, q;
  bool pair = false;
  const int32_t* targets = nullptr;
  size_t rows = 0, vocab = 0;
};

LogitsView ViewArg(const Napi::CallbackInfo& info, size_t index, const char* name, size_t expected, Napi::Object* object) {
  Napi::Env env = info.Env();
  if (index < info.Length() && info[index].IsTypedArray()) {
    const auto type = info[index].As<Napi::TypedArray>().TypedArrayType();
    if (type == napi_float32_array) {
      ArrayArg<float> a = ArgF32(info, index, name);
      ExpectLength(env, a.length, expected, name, "[rows, vocab]");
      *object = a.object;
      return LogitsView{a.data, false};
    }
    if (type == napi_uint16_array) {
      ArrayArg<uint16_t> a = ArgU16(info, index, name);
      ExpectLength(env, a.length, expected, name, "[rows, vocab]");
      *object = a.object;
      return LogitsView{a.data, true};
    }
  }
  ThrowInvalid(env, std::string(name) + " must be a Float32Array or a Uint16Array of float16 bits.");
  return LogitsView{};
}

ScoreArgs ParseScoreArgs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ScoreArgs a;
  a.out = ArgArray<double>(info, 0, "out", napi_float64_array);
  ArrayArg<int32_t> targets = ArgArray<int32_t>(info, 3, "targets", napi_int32_array);
  a.vocab = ArgSize(info, 4, "vocab");
  if (a.vocab == 0) ThrowInvalid(env, "vocab must be at least 1.");
  a.rows = targets.length;
  a.targets = targets.data;
  a.targetsObject = targets.object;
  a.p = ViewArg(info, 1, "p", a.rows * a.vocab, &a.pObject);
  a.pair = info.Length() > 2 && !info[2].IsNull() && !info[2].IsUndefined();
  if (a.pair) a.q = ViewArg(info, 2, "q", a.rows * a.vocab, &a.qObject);
  ExpectLength(env, a.out.length, a.rows * (a.pair ? kLogitsPairStride : 1), "out", a.pair ? "[rows, 4]" : "[rows]");
  for (size_t r = 0; r < a.rows; r++) {
    if (a.targets[r] >= 0 && static_cast<size_t>(a.targets[r]) >= a.vocab) {
      ThrowInvalid(env, "targets[" + std::to_string(r) + "] is " + std::to_string(a.targets[r]) + " but the vocabulary has " +
                            std::to_string(a.vocab) + " tokens.");
    }
  }
  return a;
}

Napi::Value ScoreLogitsJs(const Napi::CallbackInfo& info) {
  ScoreArgs a = ParseScoreArgs(info);
  double* out = a.out.data;
  const LogitsView p = a.p, q = a.q;
  const bool pair = a.pair;
  const int32_t* targets = a.targets;
  const size_t rows = a.rows, vocab = a.vocab;
  auto* worker = new KernelWorker(
      info.Env(), "scoreLogits", [=] { ScoreLogits(out, p, pair ? &q : nullptr, targets, rows, vocab); },
      [](Napi::Env, const KernelWorker& w) -> Napi::Value { return w.Kept(0); });
  worker->Keep(a.out.object);  // Kept(0): the result
  worker->Keep(a.pObject);
  if (pair) worker->Keep(a.qObject);
  worker->Keep(a.targetsObject);
  return KernelWorker::Start(worker);
}

void ScoreLogitsInlineJs(const Napi::CallbackInfo& info) {
  ScoreArgs a = ParseScoreArgs(info);
  RunSync(info.Env(), [&] { ScoreLogitsSerial(a.out.data, a.p, a.pair ? &a.q : nullptr, a.targets, a.rows, a.vocab); });
}

void ScoreLogitsRefJs(const Napi::CallbackInfo& info) {
  ScoreArgs a = ParseScoreArgs(info);
  RunSync(info.Env(), [&] { ScoreLogitsRef(a.out.data, a.p, a.pair ? &a.q : nullptr, a.targets, a.rows, a.vocab); });
}

}  // namespace

void RegisterLogits(Napi::Env env, Napi::Object exports) {
  exports.Set("scoreLogits", Napi::Function::New(env, ScoreLogitsJs, "scoreLogits"));
  exports.Set("scoreLogitsInline", Napi::Function::New(env, ScoreLogitsInlineJs, "scoreLogitsInline"));
  exports.Set("scoreLogitsRef", Napi::Function::New(env, ScoreLogitsRefJs, "scoreLogitsRef"));
}

}  // namespace whittle
