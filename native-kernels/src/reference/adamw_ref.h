// adamw_ref.h — the scalar reference for adamw.cc: the definitions of adamw.h computed element by element
// in index order on the calling thread (float64 arithmetic, float32 storage).
#pragma once

#include <cstddef>

#include "adamw.h"

namespace whittle {

void AdamwStepRef(const AdamwTensor* tensors, size_t count, const AdamwParams& p);
void GradSquaredSumRef(double* out, const AdamwGradView* grads, size_t count);
void AddIntoRef(float* dst, const float* src, size_t n);

}  // namespace whittle
