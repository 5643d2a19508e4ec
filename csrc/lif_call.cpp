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
    const std::optional<Tensor>& i_syn, const std::optional<Tensor>& input,
    const Tensor& alpha_mem, const std::optional<Tensor>& alpha_syn, bool norm_input,
    const Tensor& threshold, const Tensor& reset_amount, const std::optional<Tensor>& min_v_mem,
    int64_t spike_kind, double max_spikes, int64_t reset_kind, double reset_value,
    int64_t surrogate_kind, at::ArrayRef<double> surrogate_params,
    const std::optional<Tensor>& surrogate_values, bool alpha_mem_grad, bool alpha_syn_grad,
    EmptyFn empty) {
  BackwardCall c;
  c.syn = alpha_syn.has_value();
  // Without v_hat, the backward recomputes the forward from the input and the initial states.
  c.recompute = v_hat.numel() == 0;
  if (c.recompute) {
    TORCH_CHECK(input.has_value() && input->dim() == 3,
                "sinabs_fast: without v_hat the backward recomputes the forward and needs the "
                "input (batch, time, neurons)");
    TORCH_CHECK(!c.syn || (i_syn.has_value() && i_syn->numel() == v_mem.numel()),
                "sinabs_fast: without v_hat the backward needs the initial i_syn");
  } else {
    TORCH_CHECK(v_hat.dim() == 3,
                "sinabs_fast: v_hat must have shape (batch, time, neurons), got ", v_hat.sizes());
  }
  // The (B, T, N) layout every sequence follows: v_hat's, or the input's when recomputing.
  const Tensor like = c.recompute ? input->contiguous() : v_hat.contiguous();
  c.opt = make_options(spike_kind, max_spikes, reset_kind, reset_value);
  c.prm = prepare_params(like, alpha_mem, alpha_syn, norm_input, threshold, reset_amount,
                         min_v_mem);
  use_exact_reciprocal(c.opt, c.prm);
  c.surrogate = make_surrogate(surrogate_kind, surrogate_params);
  c.norm_input = norm_input;
  c.spiking = c.opt.spike != SpikeKind::None;
  c.v_hat = c.recompute ? Tensor() : like;
  c.batch = like.size(0);
  c.steps = like.size(1);
  c.N = like.size(2);
  c.alpha_mem = alpha_mem;
  if (c.syn) c.alpha_syn = *alpha_syn;
  const Tensor state_like = at::empty({c.batch, c.N}, like.options());
  c.g_spikes = row_source(grad_spikes, like, "grad_spikes");
  c.g_v_hat = row_source(grad_v_hat, like, "grad_v_hat");
  c.g_i_seq = row_source(grad_i_seq, like, "grad_i_seq");
  c.g_counts = row_source(grad_counts, state_like, "grad_counts");
  c.sigma = optional_like(surrogate_values, like, "surrogate_values");
  TORCH_CHECK(c.surrogate.kind != SurrogateKind::Precomputed || !c.spiking || c.sigma.defined(),
              "sinabs_fast: surrogate_kind 5 (precomputed) needs surrogate_values");
  const bool need_i_seq = c.syn && (alpha_syn_grad || alpha_mem_grad) && !c.recompute;
  TORCH_CHECK(!need_i_seq || i_seq.sizes() == like.sizes(),
              "sinabs_fast: the alpha gradients with synaptic current need i_seq of shape ",
              like.sizes(), ", got ", i_seq.sizes());
  if (need_i_seq) c.i_seq = i_seq.to(like.scalar_type()).contiguous();
  if (c.recompute || (alpha_mem_grad && norm_input && !c.syn)) {
    c.input = optional_like(input, like, "input");
    TORCH_CHECK(c.input.defined(),
                "sinabs_fast: the alpha_mem gradient with norm_input needs the input");
  }
  if (c.recompute || alpha_mem_grad) {
    TORCH_CHECK(v_mem.numel() == c.batch * c.N,
                "sinabs_fast: the alpha_mem gradient needs the initial v_mem");
    c.v0 = optional_like(v_mem.reshape({c.batch, c.N}), state_like, "v_mem");
  }
  if (c.recompute && c.syn) {
    c.i0 = optional_like(i_syn->reshape({c.batch, c.N}), state_like, "i_syn");
  }
  // The adjoint states start at the gradients of the final states and end at the initial ones.
  auto start_from = [&](const std::optional<Tensor>& grad, const char* name) {
    const Tensor g = optional_like(grad, state_like, name);
    return g.defined() ? g.clone() : at::zeros({c.batch, c.N}, like.options());
  };
  c.g_input = empty(like.sizes(), like.options());
  c.lambda_v = start_from(grad_v_mem, "grad_v_mem");
  c.lambda_i = c.syn ? start_from(grad_i_syn, "grad_i_syn") : at::empty({0}, like.options());
  const auto f64 = like.options().dtype(at::kDouble);
  if (alpha_mem_grad) c.g_alpha_mem = at::empty({c.batch, c.N}, f64);
  if (c.syn && alpha_syn_grad) c.g_alpha_syn = at::empty({c.batch, c.N}, f64);
  return c;
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
