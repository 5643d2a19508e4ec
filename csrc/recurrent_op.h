// The host entries of the recurrent ops (lif_recurrent_* and alif_recurrent_*; schemas in
// csrc/sinabs_fast.cpp), templates over the device (device.h) on the loops of recurrent_steps.h.
// CUDA registers both families' entries (cuda/recurrent_cuda.cu), the CPU the ALIF ones
// (cpu/alif_recurrent_cpu.cpp); the CPU's LIF family has its own loop (cpu/lif_recurrent_cpu.cpp)
// and shares the step preparations below.
#pragma once

#include "recurrent_steps.h"

namespace sinabs_fast {

using RecurrentForwardResult =
    std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor>;
using RecurrentBackwardResult = std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor>;
using AlifRecurrentForwardResult =
    std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor>;
using AlifRecurrentBackwardResult =
    std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor>;

// The LIF backward's one-step call, prepared from step 0's slabs of the saved time-major
// sequences, with the final states' gradients as the adjoint states' start.
template <typename Device>
BackwardCall lif_backward_step(
    const std::optional<Tensor>& grad_v_mem, const std::optional<Tensor>& grad_i_syn,
    const Tensor& spikes, const Tensor& v_hat_tm, const Tensor& i_seq_tm, const Tensor& totals_tm,
    const Tensor& v_post_tm, const Tensor& v_mem, const Tensor& alpha_mem,
    const std::optional<Tensor>& alpha_syn, bool norm_input, const Tensor& threshold,
    const Tensor& reset_amount, const std::optional<Tensor>& min_v_mem, int64_t spike_kind,
    double max_spikes, int64_t reset_kind, double reset_value, int64_t surrogate_kind,
    at::ArrayRef<double> surrogate_params, bool alpha_mem_grad, bool alpha_syn_grad) {
  check_recurrent_saved(v_hat_tm, spikes);
  TORCH_CHECK(!alpha_mem_grad || v_post_tm.sizes() == v_hat_tm.sizes(),
              "sinabs_fast: the alpha_mem gradient needs v_post_tm");
  const bool syn = alpha_syn.has_value();
  return lif_backward<PreparedStep<Device>>(
      std::nullopt, std::nullopt, std::nullopt, grad_v_mem, grad_i_syn, std::nullopt,
      slab(v_hat_tm, 0), syn ? slab(i_seq_tm, 0) : i_seq_tm, v_mem, std::nullopt,
      totals_tm.numel() ? std::optional<Tensor>(slab(totals_tm, 0)) : std::nullopt, alpha_mem,
      alpha_syn, norm_input, threshold, reset_amount, min_v_mem, spike_kind, max_spikes, reset_kind,
      reset_value, surrogate_kind, surrogate_params, std::nullopt, alpha_mem_grad, alpha_syn_grad);
}

// An output the op leaves out, of its dtype and device.
inline Tensor none_like(const Tensor& like) { return at::empty({0}, like.options()); }

// Reduces a (B, N) float64 alpha total to its parameter's shape, or none where not requested.
inline Tensor param_grad_or_none(const Tensor& total, const std::optional<Tensor>& param,
                                 const Tensor& like) {
  return total.defined() ? reduce_param_grad(total, *param) : none_like(like);
}

template <typename Device>
RecurrentForwardResult lif_recurrent_forward(
    const Tensor& input, const Tensor& v_mem, const std::optional<Tensor>& i_syn,
    const Tensor& alpha_mem, const std::optional<Tensor>& alpha_syn, bool norm_input,
    const Tensor& threshold, const Tensor& reset_amount, const std::optional<Tensor>& min_v_mem,
    const Tensor& weight, const std::optional<Tensor>& bias, int64_t spike_kind, double max_spikes,
    int64_t reset_kind, double reset_value, int64_t surrogate_kind,
    at::ArrayRef<double> surrogate_params, bool keep_sequences) {
  const DeviceGuard guard(input.device());
  check_recurrent(input, weight, bias);
  ForwardCall c = lif_forward<PreparedStep<Device>>(
      input.narrow(1, 0, 1), v_mem, i_syn, alpha_mem, alpha_syn, norm_input, threshold,
      reset_amount, min_v_mem, spike_kind, max_spikes, reset_kind, reset_value, surrogate_kind,
      surrogate_params, /*keep_v_hat=*/false, /*keep_i_syn=*/false);
  TORCH_CHECK(c.spiking, "sinabs_fast: the recurrent op needs a spike function");
  RecurrentSequences s =
      RecurrentSequences::allocate<Device>(input, keep_sequences, c.syn, /*adaptive=*/false);
  Tensor counts = run_recurrent_forward<Device>(c, input, weight, bias, s, keep_sequences);
  return {batch_major<Device>(s.spikes), s.v_hat, s.i_seq,
          keep_sequences ? s.totals : none_like(input), s.v_post, c.v_out, c.i_out, counts};
}

template <typename Device>
RecurrentBackwardResult lif_recurrent_backward(
    const std::optional<Tensor>& grad_spikes, const std::optional<Tensor>& grad_v_hat_tm,
    const std::optional<Tensor>& grad_i_seq_tm, const std::optional<Tensor>& grad_v_mem,
    const std::optional<Tensor>& grad_i_syn, const std::optional<Tensor>& grad_counts,
    const Tensor& spikes, const Tensor& v_hat_tm, const Tensor& i_seq_tm, const Tensor& totals_tm,
    const Tensor& v_post_tm, const Tensor& v_mem, const Tensor& alpha_mem,
    const std::optional<Tensor>& alpha_syn, bool norm_input, const Tensor& threshold,
    const Tensor& reset_amount, const std::optional<Tensor>& min_v_mem, const Tensor& weight,
    int64_t spike_kind, double max_spikes, int64_t reset_kind, double reset_value,
    int64_t surrogate_kind, at::ArrayRef<double> surrogate_params, bool alpha_mem_grad,
    bool alpha_syn_grad, bool weight_grad) {
  const DeviceGuard guard(v_hat_tm.device());
  BackwardCall c = lif_backward_step<Device>(
      grad_v_mem, grad_i_syn, spikes, v_hat_tm, i_seq_tm, totals_tm, v_post_tm, v_mem, alpha_mem,
      alpha_syn, norm_input, threshold, reset_amount, min_v_mem, spike_kind, max_spikes,
      reset_kind, reset_value, surrogate_kind, surrogate_params, alpha_mem_grad, alpha_syn_grad);
  const RecurrentSaved s{spikes, v_hat_tm, i_seq_tm, Tensor(), totals_tm, v_post_tm, c.v0,
                         Tensor(), Tensor()};
  const RecurrentIncoming g{grad_spikes, grad_counts, grad_v_hat_tm, grad_i_seq_tm, std::nullopt};
  std::vector<Tensor> alphas;
  const Tensor g_input_tm = run_recurrent_backward<Device>(c, s, g, weight, alphas);
  const auto [g_weight, g_bias] = weight_grad ? linear_map_grads(g_input_tm, spikes, weight)
                                              : std::pair{none_like(v_hat_tm), none_like(v_hat_tm)};
  return {batch_major<Device>(g_input_tm),
          c.lambda_v,
          c.syn ? c.lambda_i : none_like(v_hat_tm),
          param_grad_or_none(alphas[0], alpha_mem, v_hat_tm),
          param_grad_or_none(alphas[1], alpha_syn, v_hat_tm),
          g_weight,
          g_bias};
}

template <typename Device>
AlifRecurrentForwardResult alif_recurrent_forward(
    const Tensor& input, const Tensor& v_mem, const std::optional<Tensor>& i_syn, const Tensor& b,
    const Tensor& alpha_mem, const std::optional<Tensor>& alpha_syn, const Tensor& alpha_adapt,
    bool norm_input, const Tensor& b0, const Tensor& adapt_scale,
    const std::optional<Tensor>& subtract_value, const std::optional<Tensor>& min_v_mem,
    const Tensor& weight, const std::optional<Tensor>& bias, int64_t spike_kind, double max_spikes,
    int64_t reset_kind, double reset_value, int64_t surrogate_kind,
    at::ArrayRef<double> surrogate_params, bool keep_sequences) {
  const DeviceGuard guard(input.device());
  check_recurrent(input, weight, bias);
  AlifForwardCall c = alif_forward<PreparedStep<Device>>(
      input.narrow(1, 0, 1), v_mem, i_syn, b, alpha_mem, alpha_syn, alpha_adapt, norm_input, b0,
      adapt_scale, subtract_value, min_v_mem, spike_kind, max_spikes, reset_kind, reset_value,
      surrogate_kind, surrogate_params, /*keep_sequences=*/false);
  RecurrentSequences s =
      RecurrentSequences::allocate<Device>(input, keep_sequences, c.syn, /*adaptive=*/true);
  Tensor counts = run_recurrent_forward<Device>(c, input, weight, bias, s, keep_sequences);
  return {batch_major<Device>(s.spikes),
          s.v_hat,
          s.i_seq,
          s.b_seq,
          keep_sequences ? s.totals : none_like(input),
          s.v_post,
          c.v_out,
          c.i_out,
          c.b_out,
          counts};
}

template <typename Device>
AlifRecurrentBackwardResult alif_recurrent_backward(
    const std::optional<Tensor>& grad_spikes, const std::optional<Tensor>& grad_v_hat_tm,
    const std::optional<Tensor>& grad_i_seq_tm, const std::optional<Tensor>& grad_b_seq_tm,
    const std::optional<Tensor>& grad_v_mem, const std::optional<Tensor>& grad_i_syn,
    const std::optional<Tensor>& grad_b, const std::optional<Tensor>& grad_counts,
    const Tensor& spikes, const Tensor& v_hat_tm, const Tensor& i_seq_tm, const Tensor& b_seq_tm,
    const Tensor& totals_tm, const Tensor& v_post_tm, const Tensor& v_mem,
    const std::optional<Tensor>& i_syn, const Tensor& b, const Tensor& alpha_mem,
    const std::optional<Tensor>& alpha_syn, const Tensor& alpha_adapt, bool norm_input,
    const Tensor& b0, const Tensor& adapt_scale, const std::optional<Tensor>& subtract_value,
    const std::optional<Tensor>& min_v_mem, const Tensor& weight, int64_t spike_kind,
    double max_spikes, int64_t reset_kind, double reset_value, int64_t surrogate_kind,
    at::ArrayRef<double> surrogate_params, bool alpha_grads, bool weight_grad) {
  const DeviceGuard guard(v_hat_tm.device());
  check_recurrent_saved(v_hat_tm, spikes);
  TORCH_CHECK(b_seq_tm.sizes() == v_hat_tm.sizes(),
              "sinabs_fast: b_seq_tm must have v_hat_tm's shape ", v_hat_tm.sizes(), ", got ",
              b_seq_tm.sizes());
  TORCH_CHECK(!alpha_grads || (totals_tm.sizes() == v_hat_tm.sizes() &&
                               v_post_tm.sizes() == v_hat_tm.sizes()),
              "sinabs_fast: the alpha gradients need totals_tm and v_post_tm of shape ",
              v_hat_tm.sizes());
  const bool syn = alpha_syn.has_value();
  AlifBackwardCall c = alif_backward<PreparedStep<Device>>(
      std::nullopt, std::nullopt, std::nullopt, std::nullopt, grad_v_mem, grad_i_syn, grad_b,
      std::nullopt, slab(v_hat_tm, 0), syn ? slab(i_seq_tm, 0) : i_seq_tm, slab(b_seq_tm, 0),
      alpha_grads ? slab(totals_tm, 0) : totals_tm, v_mem, i_syn, b, alpha_mem, alpha_syn,
      alpha_adapt, norm_input, b0, adapt_scale, subtract_value, min_v_mem, spike_kind, max_spikes,
      reset_kind, reset_value, surrogate_kind, surrogate_params, alpha_grads);
  const RecurrentSaved s{spikes, v_hat_tm, i_seq_tm, b_seq_tm, totals_tm, v_post_tm,
                         c.v0, c.i0, c.b_init};
  const RecurrentIncoming g{grad_spikes, grad_counts, grad_v_hat_tm, grad_i_seq_tm,
                            grad_b_seq_tm};
  std::vector<Tensor> alphas;
  const Tensor g_input_tm = run_recurrent_backward<Device>(c, s, g, weight, alphas);
  const auto [g_weight, g_bias] = weight_grad ? linear_map_grads(g_input_tm, spikes, weight)
                                              : std::pair{none_like(v_hat_tm), none_like(v_hat_tm)};
  return {batch_major<Device>(g_input_tm),
          c.lambda_v,
          syn ? c.lambda_i : none_like(v_hat_tm),
          c.lambda_b,
          param_grad_or_none(alphas[0], alpha_mem, v_hat_tm),
          param_grad_or_none(alphas[1], alpha_syn, v_hat_tm),
          param_grad_or_none(alphas[2], alpha_adapt, v_hat_tm),
          g_weight,
          g_bias};
}

}  // namespace sinabs_fast
