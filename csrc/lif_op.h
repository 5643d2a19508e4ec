// The host entries of lif_forward and lif_backward, written once for both devices (see
// device.h): arguments checked, parameters broadcast, outputs allocated, and the kernels' plain
// pointer structs filled; cpu/lif_cpu.cpp and cuda/lif_cuda.cu only add the loops and launches,
// so both devices run one contract.
#pragma once

#include <ATen/ATen.h>

#include "lif_calls.h"

namespace sinabs_fast {

// The host entries (the schemas' argument lists, csrc/sinabs_fast.cpp). The surrogate arguments
// of lif_forward are only read by the backward.

template <typename Device>
decltype(auto) lif_forward(const Tensor& input, const Tensor& v_mem,
                           const std::optional<Tensor>& i_syn, const Tensor& alpha_mem,
                           const std::optional<Tensor>& alpha_syn, bool norm_input,
                           const Tensor& threshold, const Tensor& reset_amount,
                           const std::optional<Tensor>& min_v_mem, int64_t spike_kind,
                           double max_spikes, int64_t reset_kind, double reset_value,
                           int64_t /*surrogate_kind*/, at::ArrayRef<double> /*surrogate_params*/,
                           bool keep_v_hat, bool keep_i_syn) {
  const DeviceGuard guard(input.device());
  check_forward_inputs(input, v_mem, i_syn, alpha_syn, features_of<Device>.half_io);
  ForwardCall c;
  c.opt = make_options(spike_kind, max_spikes, reset_kind, reset_value);
  c.prm = prepare_params(compute_like(input), alpha_mem, alpha_syn, norm_input, threshold,
                         reset_amount, min_v_mem);
  use_exact_reciprocal(c.opt, c.prm);
  c.syn = alpha_syn.has_value();
  c.spiking = c.opt.spike != SpikeKind::None;
  // Without v_hat, a device whose backward recomputes from checkpoints gets them (see
  // kCheckpointSteps).
  c.start<Device>(input, v_mem, i_syn, c.spiking, keep_v_hat, c.syn && keep_i_syn,
                  !keep_v_hat && features_of<Device>.checkpoints);
  return Device::launch(c);
}

template <typename Device>
decltype(auto) lif_backward(
    const std::optional<Tensor>& grad_spikes, const std::optional<Tensor>& grad_v_hat,
    const std::optional<Tensor>& grad_i_seq, const std::optional<Tensor>& grad_v_mem,
    const std::optional<Tensor>& grad_i_syn, const std::optional<Tensor>& grad_counts,
    const Tensor& v_hat, const Tensor& i_seq, const Tensor& v_mem,
    const std::optional<Tensor>& i_syn, const std::optional<Tensor>& input, const Tensor& alpha_mem,
    const std::optional<Tensor>& alpha_syn, bool norm_input, const Tensor& threshold,
    const Tensor& reset_amount, const std::optional<Tensor>& min_v_mem, int64_t spike_kind,
    double max_spikes, int64_t reset_kind, double reset_value, int64_t surrogate_kind,
    at::ArrayRef<double> surrogate_params, const std::optional<Tensor>& surrogate_values,
    bool alpha_mem_grad, bool alpha_syn_grad,
    const std::optional<Tensor>& checkpoints = std::nullopt) {
  const DeviceGuard guard(v_hat.numel() || !input.has_value() ? v_hat.device() : input->device());
  BackwardCall c;
  c.syn = alpha_syn.has_value();
  // Without v_hat, the backward recomputes the forward from the input and the initial states.
  // An empty (batch, time, neurons) v_hat is an empty problem's: nothing to recompute.
  c.recompute = v_hat.numel() == 0 && v_hat.dim() != 3;
  if (c.recompute) {
    TORCH_CHECK(input.has_value() && input->dim() == 3,
                "sinabs_fast: without v_hat the backward recomputes the forward and needs the "
                "input (batch, time, neurons)");
    TORCH_CHECK(!c.syn || (i_syn.has_value() && i_syn->numel() == v_mem.numel()),
                "sinabs_fast: without v_hat the backward needs the initial i_syn");
  } else {
    TORCH_CHECK(v_hat.dim() == 3, "sinabs_fast: v_hat must have shape (batch, time, neurons), got ",
                v_hat.sizes());
  }
  // The (B, T, N) sequence that gives the shape and dtype: v_hat, or the input (read in place
  // by its strides, as in SequenceCall::start) when recomputing. A 16-bit input (read as it is,
  // features_of<Device>.half_io) gives its dtype to the input's gradient and the spikes'
  // (`like`); the rest is in float32 (`compute`).
  const Tensor& like = c.recompute ? *input : v_hat;
  TORCH_CHECK(like.scalar_type() == at::kFloat || like.scalar_type() == at::kDouble ||
                  (features_of<Device>.half_io && c.recompute && is_16bit(like)),
              "sinabs_fast: the backward computes in float32 or float64 (from a bfloat16 or "
              "float16 input on CUDA when recomputing), got ", like.scalar_type());
  const Tensor compute = compute_like(like);
  c.opt = make_options(spike_kind, max_spikes, reset_kind, reset_value);
  c.prm = prepare_params(compute, alpha_mem, alpha_syn, norm_input, threshold, reset_amount,
                         min_v_mem);
  use_exact_reciprocal(c.opt, c.prm);
  c.surrogate = make_surrogate(surrogate_kind, surrogate_params);
  c.norm_input = norm_input;
  c.spiking = c.opt.spike != SpikeKind::None;
  c.v_hat = c.recompute ? Tensor() : v_hat.contiguous();
  c.set_extent(extent_of(like));
  c.alpha_mem = alpha_mem;
  if (c.syn) c.alpha_syn = *alpha_syn;
  const Tensor state_like = at::empty({c.batch, c.N}, compute.options());
  c.read_gradients(grad_spikes, grad_v_hat, grad_i_seq, grad_counts, compute, state_like, like);
  c.sigma = optional_like(surrogate_values, compute, "surrogate_values");
  TORCH_CHECK(c.surrogate.kind != SurrogateKind::Precomputed || !c.spiking || c.sigma.defined(),
              "sinabs_fast: surrogate_kind 5 (precomputed) needs surrogate_values");
  const bool need_i_seq = c.syn && (alpha_syn_grad || alpha_mem_grad) && !c.recompute;
  TORCH_CHECK(!need_i_seq || i_seq.sizes() == like.sizes(),
              "sinabs_fast: the alpha gradients with synaptic current need i_seq of shape ",
              like.sizes(), ", got ", i_seq.sizes());
  TORCH_CHECK(!need_i_seq || i_seq.device() == like.device(), "sinabs_fast: i_seq is on ",
              i_seq.device(), " but v_hat is on ", like.device());
  if (need_i_seq) c.i_seq = i_seq.to(like.scalar_type()).contiguous();
  if (c.recompute || (alpha_mem_grad && norm_input && !c.syn)) {
    // An empty problem's input is empty (read as absent); no kernel reads it.
    TORCH_CHECK(present(input) || c.batch * c.N == 0,
                "sinabs_fast: the alpha_mem gradient with norm_input needs the input");
    if (present(input)) c.input = row_source(input, like, "input", c.zero_row);
  }
  if (c.recompute || alpha_mem_grad) {
    TORCH_CHECK(v_mem.numel() == c.batch * c.N,
                "sinabs_fast: the alpha_mem gradient needs the initial v_mem");
    c.v0 = optional_like(shaped(v_mem, {c.batch, c.N}), state_like, "v_mem");
  }
  if (c.recompute && c.syn) {
    c.i0 = optional_like(shaped(*i_syn, {c.batch, c.N}), state_like, "i_syn");
  }
  if (c.recompute && checkpoints.has_value() && checkpoints->numel()) {
    const auto shape = checkpoint_shape(c, c.syn, compute.scalar_type());
    TORCH_CHECK(checkpoints->sizes() == at::IntArrayRef(shape),
                "sinabs_fast: checkpoints must have shape ", at::IntArrayRef(shape), ", got ",
                checkpoints->sizes());
    TORCH_CHECK(checkpoints->device() == like.device(), "sinabs_fast: checkpoints are on ",
                checkpoints->device(), " but the input is on ", like.device());
    c.checkpoints = checkpoints->to(compute.scalar_type()).contiguous();
  }
  c.g_input = empty_input_gradient<Device>(like, input);
  c.lambda_v = adjoint_start(optional_like(grad_v_mem, state_like, "grad_v_mem"), state_like);
  c.lambda_i = c.syn ? adjoint_start(optional_like(grad_i_syn, state_like, "grad_i_syn"), state_like)
                     : at::empty({0}, like.options());
  const auto f64 = compute.options().dtype(at::kDouble);
  if (alpha_mem_grad) c.g_alpha_mem = at::empty({c.batch, c.N}, f64);
  if (c.syn && alpha_syn_grad) c.g_alpha_syn = at::empty({c.batch, c.N}, f64);
  return Device::launch(c);
}

}  // namespace sinabs_fast
