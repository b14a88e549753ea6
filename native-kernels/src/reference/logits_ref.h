// logits_ref.h — the scalar reference for logits.cc: the definitions of logits.h computed the plain way
// (std::exp per element, float64 sums in index order, KL as Σ p·(log p − log q)), single-threaded.
#pragma once

#include <cstddef>
#include <cstdint>

#include "logits.h"

namespace whittle {

void ScoreLogitsRef(double* out, LogitsView p, const LogitsView* q, const int32_t* targets, size_t rows, size_t vocab);

}  // namespace whittle
