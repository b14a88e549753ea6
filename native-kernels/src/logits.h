// logits.h — next-token scoring of language-model logits: NLL of a target per row and, for two models
// over the same rows, KL(p ‖ q) and top-1 agreement. float64 accumulation; multi-threaded over rows.
// Checked against reference/logits_ref.h (and, from JavaScript, against a plain float64 computation).
#pragma once

#include <cstddef>
#include <cstdint>

namespace whittle {

// One model's logits: [rows, vocab] row-major, float32 or float16 bits.
struct LogitsView {
  const void* data = nullptr;
  bool f16 = false;
};

// Per-row results, written to out with a fixed stride:
//   one model (q == nullptr): stride 1, out[r] = NLL_p(r)
//   two models:               stride 4, out[4r..4r+3] = NLL_p(r), NLL_q(r), KL(p_r ‖ q_r), top-1 match (1 or 0)
// where, with x = logits row r (float32, widened to float64):
//   lse(x)  = m + log Σ_v exp(x_v − m),  m = max_v x_v
//   NLL(r)  = lse(x) − x_target[r]
//   KL(p‖q) = Σ_v softmax(p)_v · (log softmax(p)_v − log softmax(q)_v), clamped at 0
//   top-1   = [first argmax of p == first argmax of q]
// Rows whose target is negative are not scored (all their outputs are 0). Targets must be < vocab.
constexpr size_t kLogitsPairStride = 4;

void ScoreLogits(double* out, LogitsView p, const LogitsView* q, const int32_t* targets, size_t rows, size_t vocab);
// The same on the calling thread only (same arithmetic, so the same results bit for bit).
void ScoreLogitsSerial(double* out, LogitsView p, const LogitsView* q, const int32_t* targets, size_t rows, size_t vocab);

}  // namespace whittle
