#include "lif_calls.h"

namespace sinabs_fast {

std::vector<int64_t> checkpoint_shape(const Extent& e, bool syn, at::ScalarType dtype) {
  const int64_t every = dtype == at::kDouble ? kCheckpointSteps<double> : kCheckpointSteps<float>;
  return {e.batch, (e.steps + every - 1) / every, syn ? 2 : 1, e.N};
}

void AdjointCall::read_gradients(const std::optional<Tensor>& grad_spikes,
                                 const std::optional<Tensor>& grad_v_hat,
                                 const std::optional<Tensor>& grad_i_seq,
                                 const std::optional<Tensor>& grad_counts, const Tensor& like,
                                 const Tensor& state_like, const Tensor& spikes_like) {
  const bool own_type = spikes_like.defined() && spikes_like.scalar_type() != like.scalar_type();
  g_spikes = own_type ? row_source(grad_spikes, spikes_like, "grad_spikes", zero_spikes_row)
                      : row_source(grad_spikes, like, "grad_spikes", zero_row);
  g_v_hat = row_source(grad_v_hat, like, "grad_v_hat", zero_row);
  g_i_seq = row_source(grad_i_seq, like, "grad_i_seq", zero_row);
  g_counts = row_source(grad_counts, state_like, "grad_counts", zero_row);
}

BackwardResult BackwardCall::result() const {
  // Parameters without a gradient get an empty tensor (the schema has no optional returns).
  // A new empty tensor each: outputs must not alias.
  const auto none = [&] { return at::empty({0}, g_input.options()); };
  return {g_input, lambda_v, lambda_i,
          g_alpha_mem.defined() ? reduce_param_grad(g_alpha_mem, alpha_mem) : none(),
          g_alpha_syn.defined() ? reduce_param_grad(g_alpha_syn, alpha_syn) : none()};
}

}  // namespace sinabs_fast
