// adamw.h — the optimizer's element-wise kernels over fp32 master weights: one AdamW step over many
// tensors at once, the squared gradient norm per tensor, and gradient accumulation.
//
// AdamW (Loshchilov & Hutter, arXiv 1711.05101; PyTorch's torch.optim.AdamW semantics), per element,
// in float64 arithmetic on float32 storage, step t ≥ 1:
//   g  = grad · gradScale                       (gradScale = 1/tokens · clip factor, from the caller)
//   m  = β1·m + (1 − β1)·g
//   v  = β2·v + (1 − β2)·g²
//   w  = w·(1 − lr·λ) − (lr / (1 − β1^t)) · m / (√v / √(1 − β2^t) + ε)
// i.e. decoupled decay w ← w − lr·λ·w on the weights before the step, then w ← w − lr·m̂/(√v̂ + ε).
// λ (weightDecay) is per tensor (0 for biases, norms, embeddings). Where a tensor has a mask and
// mask[i] == 0 (a pruned weight) w, m and v are set to exactly 0 and the gradient is ignored.
//
// Squared norm: Σ_i g_i² in float64 over the elements whose mask is non-zero (all without a mask).
#pragma once

#include <cstddef>
#include <cstdint>

namespace whittle {

// One parameter tensor of n elements: weights, gradient, first and second moments (all float32, n each).
struct AdamwTensor {
  float* w = nullptr;
  const float* g = nullptr;
  float* m = nullptr;
  float* v = nullptr;
  const uint8_t* mask = nullptr;  // optional, n bytes: 0 = pruned
  size_t n = 0;
  double weight_decay = 0;        // λ
};

struct AdamwParams {
  double lr = 0;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double step = 1;  // t, 1-based, for the bias corrections
  double grad_scale = 1;
};

// The per-step constants of the update, computed once the same way by the fast kernel and the reference.
struct AdamwScalars {
  double one_minus_beta1;
  double one_minus_beta2;
  double step_size;   // lr / (1 − β1^t)
  double bias2_sqrt;  // √(1 − β2^t)
};

AdamwScalars AdamwScalarsOf(const AdamwParams& p);

// A gradient and its optional mask, for the squared norm.
struct AdamwGradView {
  const float* g = nullptr;
  const uint8_t* mask = nullptr;
  size_t n = 0;
};

// Updates every tensor in place (see the header). Multi-threaded over chunks of all tensors together.
void AdamwStep(const AdamwTensor* tensors, size_t count, const AdamwParams& p);
// out[t] = Σ_i g_t[i]² over unmasked elements (float64). Deterministic: the same for any thread count.
void GradSquaredSum(double* out, const AdamwGradView* grads, size_t count);
// dst[i] += src[i].
void AddInto(float* dst, const float* src, size_t n);

}  // namespace whittle
