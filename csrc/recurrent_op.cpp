#include "recurrent_steps.h"

namespace sinabs_fast {

void check_recurrent(const Tensor& input, const Tensor& weight,
                     const std::optional<Tensor>& bias) {
  TORCH_CHECK(input.dim() == 3 && input.size(1) > 0,
              "sinabs_fast: input must have shape (batch, time, neurons) with time > 0, got ",
              input.sizes());
  const int64_t N = input.size(2);
  TORCH_CHECK(weight.dim() == 2 && weight.size(0) == N && weight.size(1) == N,
              "sinabs_fast: weight must have shape (", N, ", ", N, "), got ", weight.sizes());
  TORCH_CHECK(weight.scalar_type() == at::kFloat,
              "sinabs_fast: weight must be float32 (it multiplies the float32 spikes), got ",
              weight.scalar_type());
  TORCH_CHECK(!bias.has_value() || (bias->dim() == 1 && bias->size(0) == N),
              "sinabs_fast: bias must have shape (", N, ")");
  TORCH_CHECK(!bias.has_value() || bias->scalar_type() == at::kFloat,
              "sinabs_fast: bias must be float32, got ", bias->scalar_type());
}

void check_recurrent_saved(const Tensor& v_hat_tm, const Tensor& spikes) {
  TORCH_CHECK(v_hat_tm.dim() == 3 && v_hat_tm.size(0) > 0,
              "sinabs_fast: v_hat_tm must be (time, batch, neurons) with time > 0, got ",
              v_hat_tm.sizes());
  const int64_t steps = v_hat_tm.size(0), B = v_hat_tm.size(1), N = v_hat_tm.size(2);
  TORCH_CHECK(spikes.sizes() == at::IntArrayRef({B, steps, N}),
              "sinabs_fast: spikes must have shape (", B, ", ", steps, ", ", N, "), got ",
              spikes.sizes());
}

}  // namespace sinabs_fast
