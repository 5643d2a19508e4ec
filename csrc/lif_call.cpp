#include "lif_call.h"

namespace sinabs_fast {

ForwardCall prepare_forward(const Tensor& input, const Tensor& v_mem,
                            const std::optional<Tensor>& i_syn, const Tensor& alpha_mem,
                            const std::optional<Tensor>& alpha_syn, bool norm_input,
                            const Tensor& threshold, const Tensor& reset_amount,
                            const std::optional<Tensor>& min_v_mem, int64_t spike_kind,
                            double max_spikes, int64_t reset_kind, double reset_value,
                            bool keep_v_hat, bool keep_i_syn, EmptyFn empty) {
  check_forward_inputs(input, v_mem, i_syn, alpha_syn);
  ForwardCall c;
  c.opt = make_options(spike_kind, max_spikes, reset_kind, reset_value);
  c.prm = prepare_params(input, alpha_mem, alpha_syn, norm_input, threshold, reset_amount,
                         min_v_mem);
  use_exact_reciprocal(c.opt, c.prm);
  c.x = input.contiguous();
  c.batch = c.x.size(0);
  c.steps = c.x.size(1);
  c.N = c.x.size(2);
  c.syn = alpha_syn.has_value();
  c.spiking = c.opt.spike != SpikeKind::None;
  const auto f32 = c.x.options().dtype(at::kFloat);
  const auto none = [&](const at::TensorOptions& o) { return at::empty({0}, o); };
  c.spikes = c.spiking ? empty(c.x.sizes(), f32) : none(f32);
  c.v_hat = keep_v_hat ? empty(c.x.sizes(), c.x.options()) : none(c.x.options());
  c.i_seq = (c.syn && keep_i_syn) ? empty(c.x.sizes(), c.x.options()) : none(c.x.options());
  c.v_out = v_mem.contiguous().clone();  // keeps v_mem's shape: the layer's state, not a view
  c.i_out = c.syn ? i_syn->contiguous().clone() : none(c.x.options());
  c.counts = c.spiking ? at::empty({c.batch, c.N}, f32) : none(f32);
  return c;
}

BackwardCall prepare_backward(
    const std::optional<Tensor>& grad_spikes, const std::optional<Tensor>& grad_v_hat,
    const std::optional<Tensor>& grad_i_seq, const std::optional<Tensor>& grad_v_mem,
    const std::optional<Tensor>& grad_i_syn, const std::optional<Tensor>& grad_counts,
    const Tensor& v_hat, const Tensor& i_seq, const Tensor& v_mem,
    const std::optional<Tensor>& input, const Tensor& alpha_mem,
    const std::optional<Tensor>& alpha_syn, bool norm_input, const Tensor& threshold,
    const Tensor& reset_amount, const std::optional<Tensor>& min_v_mem, int64_t spike_kind,
    double max_spikes, int64_t reset_kind, double reset_value, int64_t surrogate_kind,
    at::ArrayRef<double> surrogate_params, const std::optional<Tensor>& surrogate_values,
    bool alpha_mem_grad, bool alpha_syn_grad, EmptyFn empty) {
  TORCH_CHECK(v_hat.dim() == 3, "sinabs_fast: v_hat must have shape (batch, time, neurons), got ",
              v_hat.sizes());
  BackwardCall c;
  c.opt = make_options(spike_kind, max_spikes, reset_kind, reset_value);
  c.prm = prepare_params(v_hat, alpha_mem, alpha_syn, norm_input, threshold, reset_amount,
                         min_v_mem);
  use_exact_reciprocal(c.opt, c.prm);
  c.surrogate = make_surrogate(surrogate_kind, surrogate_params);
  c.norm_input = norm_input;
  c.syn = alpha_syn.has_value();
  c.spiking = c.opt.spike != SpikeKind::None;
  c.v_hat = v_hat.contiguous();
  c.batch = c.v_hat.size(0);
  c.steps = c.v_hat.size(1);
  c.N = c.v_hat.size(2);
  c.alpha_mem = alpha_mem;
  if (c.syn) c.alpha_syn = *alpha_syn;
  const auto dtype = c.v_hat.scalar_type();
  const Tensor state_like = at::empty({c.batch, c.N}, c.v_hat.options());
  c.g_spikes = row_source(grad_spikes, c.v_hat, "grad_spikes");
  c.g_v_hat = row_source(grad_v_hat, c.v_hat, "grad_v_hat");
  c.g_i_seq = row_source(grad_i_seq, c.v_hat, "grad_i_seq");
  c.g_counts = row_source(grad_counts, state_like, "grad_counts");
  c.sigma = optional_like(surrogate_values, c.v_hat, "surrogate_values");
  TORCH_CHECK(c.surrogate.kind != SurrogateKind::Precomputed || !c.spiking || c.sigma.defined(),
              "sinabs_fast: surrogate_kind 5 (precomputed) needs surrogate_values");
  const bool need_i_seq = c.syn && (alpha_syn_grad || alpha_mem_grad);
  TORCH_CHECK(!need_i_seq || i_seq.sizes() == c.v_hat.sizes(),
              "sinabs_fast: the alpha gradients with synaptic current need i_seq of shape ",
              c.v_hat.sizes(), ", got ", i_seq.sizes());
  if (need_i_seq) c.i_seq = i_seq.to(dtype).contiguous();
  if (alpha_mem_grad && norm_input && !c.syn) {
    c.input = optional_like(input, c.v_hat, "input");
    TORCH_CHECK(c.input.defined(),
                "sinabs_fast: the alpha_mem gradient with norm_input needs the input");
  }
  if (alpha_mem_grad) {
    TORCH_CHECK(v_mem.numel() == c.batch * c.N,
                "sinabs_fast: the alpha_mem gradient needs the initial v_mem");
    c.v0 = optional_like(v_mem.reshape({c.batch, c.N}), state_like, "v_mem");
  }
  // The adjoint states start at the gradients of the final states and end at the initial ones.
  auto start_from = [&](const std::optional<Tensor>& grad, const char* name) {
    const Tensor g = optional_like(grad, state_like, name);
    return g.defined() ? g.clone() : at::zeros({c.batch, c.N}, c.v_hat.options());
  };
  c.g_input = empty(c.v_hat.sizes(), c.v_hat.options());
  c.lambda_v = start_from(grad_v_mem, "grad_v_mem");
  c.lambda_i = c.syn ? start_from(grad_i_syn, "grad_i_syn") : at::empty({0}, c.v_hat.options());
  const auto f64 = c.v_hat.options().dtype(at::kDouble);
  if (alpha_mem_grad) c.g_alpha_mem = at::empty({c.batch, c.N}, f64);
  if (c.syn && alpha_syn_grad) c.g_alpha_syn = at::empty({c.batch, c.N}, f64);
  return c;
}

BackwardResult BackwardCall::result() const {
  // Parameters without a gradient get an empty tensor (the schema has no optional returns).
  // A new empty tensor each: outputs must not alias.
  const auto none = [&] { return at::empty({0}, v_hat.options()); };
  return {g_input, lambda_v, lambda_i,
          g_alpha_mem.defined() ? reduce_param_grad(g_alpha_mem, alpha_mem) : none(),
          g_alpha_syn.defined() ? reduce_param_grad(g_alpha_syn, alpha_syn) : none()};
}

}  // namespace sinabs_fast
