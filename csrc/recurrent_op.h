// The host entries of the recurrent ops (lif_recurrent_* and alif_recurrent_*; schemas in
// csrc/sinabs_fast.cpp), templates over the device (device.h) on the loops of recurrent_steps.h.
// Each entry prepares its neuron op's one-step call and runs the loops on it (the device's own
// where it has them: the CPU's LIF family, cpu/lif_recurrent_cpu.cpp); forward_outputs and
// backward_outputs lay out the results. Registered per device in cpu/lif_recurrent_cpu.cpp,
// cpu/alif_recurrent_cpu.cpp and cuda/recurrent_cuda.cu.
#pragma once

#include <type_traits>

#include "recurrent_steps.h"

namespace sinabs_fast {

using RecurrentForwardResult =
    std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor>;
using RecurrentBackwardResult = std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor>;
using AlifRecurrentForwardResult =
    std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor>;
using AlifRecurrentBackwardResult =
    std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor>;

// An output the op leaves out, of its dtype and device.
inline Tensor none_like(const Tensor& like) { return at::empty({0}, like.options()); }

// Reduces a (B, N) float64 alpha total to its parameter's shape, or none where not requested.
inline Tensor param_grad_or_none(const Tensor& total, const std::optional<Tensor>& param,
                                 const Tensor& like) {
  return total.defined() ? reduce_param_grad(total, *param) : none_like(like);
}

// The outputs of a recurrent forward, in its schema's order, from its step call, its sequences
// (totals already none where not kept) and its spike counts.
template <typename Device>
RecurrentForwardResult forward_outputs(const ForwardCall& c, const RecurrentSequences& s,
                                       const Tensor& counts) {
  return {batch_major<Device>(s.spikes), s.v_hat, s.i_seq, s.totals, s.v_post,
          c.v_out, c.i_out, counts};
}
template <typename Device>
AlifRecurrentForwardResult forward_outputs(const AlifForwardCall& c, const RecurrentSequences& s,
                                           const Tensor& counts) {
  return {batch_major<Device>(s.spikes), s.v_hat, s.i_seq, s.b_seq, s.totals, s.v_post,
          c.v_out, c.i_out, c.b_out, counts};
}

// A recurrent forward of either neuron kind: prepare_step(x0) is the neuron op's host entry with
// PreparedStep<Device> on the input's first step x0 (the parameters, the states that the steps
// update in place).
template <typename Device, typename PrepareStep>
auto recurrent_forward(const Tensor& input, const Tensor& weight,
                       const std::optional<Tensor>& bias, bool keep, PrepareStep&& prepare_step) {
  const DeviceGuard guard(input.device());
  check_recurrent(input, weight, bias);
  auto c = prepare_step(input.narrow(1, 0, 1));
  TORCH_CHECK(c.opt.spike != SpikeKind::None,
              "sinabs_fast: the recurrent op needs a spike function");
  constexpr bool adaptive = std::is_same_v<decltype(c), AlifForwardCall>;
  RecurrentSequences s = RecurrentSequences::allocate<Device>(input, keep, c.syn, adaptive);
  const Tensor counts = run_recurrent_forward(Device(), c, input, weight, bias, s, keep);
  if (!keep) s.totals = none_like(input);
  return forward_outputs<Device>(c, s, counts);
}

template <typename Device>
RecurrentForwardResult lif_recurrent_forward(
    const Tensor& input, const Tensor& v_mem, const std::optional<Tensor>& i_syn,
    const Tensor& alpha_mem, const std::optional<Tensor>& alpha_syn, bool norm_input,
    const Tensor& threshold, const Tensor& reset_amount, const std::optional<Tensor>& min_v_mem,
    const Tensor& weight, const std::optional<Tensor>& bias, int64_t spike_kind, double max_spikes,
    int64_t reset_kind, double reset_value, int64_t surrogate_kind,
    at::ArrayRef<double> surrogate_params, bool keep_sequences) {
  return recurrent_forward<Device>(input, weight, bias, keep_sequences, [&](const Tensor& x0) {
    return lif_forward<PreparedStep<Device>>(
        x0, v_mem, i_syn, alpha_mem, alpha_syn, norm_input, threshold, reset_amount, min_v_mem,
        spike_kind, max_spikes, reset_kind, reset_value, surrogate_kind, surrogate_params,
        /*keep_v_hat=*/false, /*keep_i_syn=*/false);
  });
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
  return recurrent_forward<Device>(input, weight, bias, keep_sequences, [&](const Tensor& x0) {
    return alif_forward<PreparedStep<Device>>(
        x0, v_mem, i_syn, b, alpha_mem, alpha_syn, alpha_adapt, norm_input, b0, adapt_scale,
        subtract_value, min_v_mem, spike_kind, max_spikes, reset_kind, reset_value,
        surrogate_kind, surrogate_params, /*keep_sequences=*/false);
  });
}

// The outputs of a recurrent backward, in its schema's order, from its step call (its adjoint
// states are the initial states' gradients), the steps' gradients and the alpha parameters.
template <typename Device>
RecurrentBackwardResult backward_outputs(const BackwardCall& c, const RecurrentGradients& r,
                                         const std::vector<std::optional<Tensor>>& alphas) {
  const Tensor& like = r.g_input_tm;
  return {batch_major<Device>(r.g_input_tm),
          c.lambda_v,
          c.syn ? c.lambda_i : none_like(like),
          param_grad_or_none(r.alpha_totals[0], alphas[0], like),
          param_grad_or_none(r.alpha_totals[1], alphas[1], like),
          r.g_weight,
          r.g_bias};
}
template <typename Device>
AlifRecurrentBackwardResult backward_outputs(const AlifBackwardCall& c,
                                             const RecurrentGradients& r,
                                             const std::vector<std::optional<Tensor>>& alphas) {
  const Tensor& like = r.g_input_tm;
  return {batch_major<Device>(r.g_input_tm),
          c.lambda_v,
          c.syn ? c.lambda_i : none_like(like),
          c.lambda_b,
          param_grad_or_none(r.alpha_totals[0], alphas[0], like),
          param_grad_or_none(r.alpha_totals[1], alphas[1], like),
          param_grad_or_none(r.alpha_totals[2], alphas[2], like),
          r.g_weight,
          r.g_bias};
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
  check_recurrent_saved(v_hat_tm, spikes);
  TORCH_CHECK(!alpha_mem_grad || v_post_tm.sizes() == v_hat_tm.sizes(),
              "sinabs_fast: the alpha_mem gradient needs v_post_tm");
  const bool syn = alpha_syn.has_value();
  // The one-step call, prepared from step 0's slabs, with the final states' gradients as the
  // adjoint states' start; the steps point it at step t's.
  BackwardCall c = lif_backward<PreparedStep<Device>>(
      std::nullopt, std::nullopt, std::nullopt, grad_v_mem, grad_i_syn, std::nullopt,
      slab(v_hat_tm, 0), syn ? slab(i_seq_tm, 0) : i_seq_tm, v_mem, std::nullopt,
      totals_tm.numel() ? std::optional<Tensor>(slab(totals_tm, 0)) : std::nullopt, alpha_mem,
      alpha_syn, norm_input, threshold, reset_amount, min_v_mem, spike_kind, max_spikes, reset_kind,
      reset_value, surrogate_kind, surrogate_params, std::nullopt, alpha_mem_grad, alpha_syn_grad);
  const RecurrentSaved s{spikes, v_hat_tm, i_seq_tm, Tensor(), totals_tm, v_post_tm, c.v0,
                         Tensor(), Tensor()};
  const RecurrentIncoming g{grad_spikes, grad_counts, grad_v_hat_tm, grad_i_seq_tm, std::nullopt};
  return backward_outputs<Device>(
      c, run_recurrent_backward(Device(), c, s, g, weight, weight_grad), {alpha_mem, alpha_syn});
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
  return backward_outputs<Device>(c, run_recurrent_backward(Device(), c, s, g, weight, weight_grad),
                                  {alpha_mem, alpha_syn, alpha_adapt});
}

}  // namespace sinabs_fast
