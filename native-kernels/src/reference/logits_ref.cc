// logits_ref.cc — scalar reference of the logits scoring (see logits_ref.h and logits.h).
#include "reference/logits_ref.h"

#include <cmath>
#include <limits>
#include <vector>

#include "reference/fp16_ref.h"

namespace whittle {
namespace {

// Row r of a view as float32 values (float16 bits widened exactly).
const float* RowOf(const LogitsView& v, size_t r, size_t vocab, std::vector<float>& scratch) {
  if (!v.f16) return static_cast<const float*>(v.data) + r * vocab;
  const uint16_t* bits = static_cast<const uint16_t*>(v.data) + r * vocab;
  for (size_t i = 0; i < vocab; i++) scratch[i] = F16ToF32Ref(bits[i]);
  return scratch.data();
}

// log Σ_v exp(x_v), stable: m + log Σ exp(x_v − m). NaN logits make it NaN (as in float64 JavaScript).
double LogSumExp(const float* x, size_t vocab) {
  double m = -std::numeric_limits<double>::infinity();
  for (size_t v = 0; v < vocab; v++) {
    if (x[v] > m) m = x[v];
  }
  double sum = 0;
  for (size_t v = 0; v < vocab; v++) sum += std::exp(static_cast<double>(x[v]) - m);
  return m + std::log(sum);
}

size_t Argmax(const float* x, size_t vocab) {
  size_t best = 0;
  float bestValue = -std::numeric_limits<float>::infinity();
  for (size_t v = 0; v < vocab; v++) {
    if (x[v] > bestValue) {
      bestValue = x[v];
      best = v;
    }
  }
  return best;
}

}  // namespace

void ScoreLogitsRef(double* out, LogitsView p, const LogitsView* q, const int32_t* targets, size_t rows, size_t vocab) {
  std::vector<float> scratchP(vocab), scratchQ(vocab);
  for (size_t r = 0; r < rows; r++) {
    const int32_t target = targets[r];
    if (!q) {
      if (target < 0) {
        out[r] = 0;
        continue;
      }
      const float* x = RowOf(p, r, vocab, scratchP);
      out[r] = LogSumExp(x, vocab) - x[target];
      continue;
    }
    double* o = out + r * kLogitsPairStride;
    if (target < 0) {
      o[0] = o[1] = o[2] = o[3] = 0;
      continue;
    }
    const float* x = RowOf(p, r, vocab, scratchP);
    const float* y = RowOf(*q, r, vocab, scratchQ);
    const double lseP = LogSumExp(x, vocab);
    const double lseQ = LogSumExp(y, vocab);
    double kl = 0;
    for (size_t v = 0; v < vocab; v++) {
      const double logP = x[v] - lseP;
      const double logQ = y[v] - lseQ;
      kl += std::exp(logP) * (logP - logQ);
    }
    o[0] = lseP - x[target];
    o[1] = lseQ - y[target];
    o[2] = kl > 0 || std::isnan(kl) ? kl : 0.0;
    o[3] = Argmax(x, vocab) == Argmax(y, vocab) ? 1.0 : 0.0;
  }
}

}  // namespace whittle
