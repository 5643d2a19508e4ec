// The time loops of the recurrent ops (a neuron layer whose rec_connect is a linear map), written
// once for both devices and both neuron kinds. Step t's input is x_t + rec, rec = spikes_{t-1}
// W^T + bias (float32 zeros at t = 0), computed with nn.Linear's own addmm (cuBLAS on CUDA, on
// the current stream, no host synchronisation); the neuron update of a step is the neuron op's
// own launch on a call prepared once by its host entry (lif_op.h, alif_op.h) with the
// PreparedStep policy, pointed at step t's slabs. The backward runs the steps in reverse, each
// step's spike gradient taking g_input_{t+1} W from the step after. Per-step tensors are
// time-major, (steps, B, N), so that a step is one contiguous (B, 1, N) slab.
// A device may run a call type's loops its own way: it overloads run_recurrent_forward and
// run_recurrent_backward for its policy and that call (the CPU's LIF family: raw rows, per-thread
// batch chunks in the backward, a sparse weight gradient; cpu/device_cpu.h). recurrent_op.h has
// the entries.
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <vector>

#include "alif_op.h"
#include "lif_op.h"

namespace sinabs_fast {

// A device policy (device.h) whose launch runs nothing: a host entry instantiated with it returns
// its prepared call, which the loops below run step by step with Device's launch.
template <typename Device>
struct PreparedStep {
  static Tensor empty(at::IntArrayRef sizes, const at::TensorOptions& options) {
    return Device::empty(sizes, options);
  }
  static Tensor empty_strided(at::IntArrayRef sizes, at::IntArrayRef strides,
                              const at::TensorOptions& options) {
    return Device::empty_strided(sizes, strides, options);
  }
  template <typename Call>
  static Call launch(const Call& call) {
    return call;
  }
};

// Step t of a time-major sequence as a (B, 1, N) slab; an absent sequence ((0,)) stays absent.
inline Tensor slab(const Tensor& tm, int64_t t) {
  return tm.dim() == 3 ? tm.select(0, t).unsqueeze(1) : tm;
}

// nn.Linear's forward on a (B, N) matrix: addmm with a bias, mm without.
inline Tensor linear_map(const Tensor& spikes, const Tensor& weight,
                         const std::optional<Tensor>& bias) {
  return bias.has_value() ? at::addmm(*bias, spikes, weight.t()) : at::mm(spikes, weight.t());
}

// Checks the input (B, T, N) with T > 0 and the linear map's weight (N, N) and bias (N).
void check_recurrent(const Tensor& input, const Tensor& weight, const std::optional<Tensor>& bias);

// Checks a backward's saved sequences: v_hat_tm (T, B, N) with T > 0, spikes (B, T, N).
void check_recurrent_saved(const Tensor& v_hat_tm, const Tensor& spikes);

// The time-major sequences of a recurrent forward (empty where not kept).
struct RecurrentSequences {
  Tensor spikes;  // (T, B, N) float32, always
  Tensor v_hat, i_seq, b_seq;  // pre-spike membrane, synaptic current, adaptation state
  Tensor totals;  // each step's total input: (T, B, N) when kept, else the last step's (1, B, N)
  Tensor v_post;  // the membrane after each step (the next step's initial one, for the backward)

  // Allocates them for input (B, T, N): the kept ones with keep, i_seq with syn too and b_seq
  // for adaptive neurons only.
  template <typename Device>
  static RecurrentSequences allocate(const Tensor& input, bool keep, bool syn, bool adaptive) {
    const int64_t B = input.size(0), T = input.size(1), N = input.size(2);
    const auto opts = input.options();
    const auto seq = [&](bool kept) {
      return kept ? Device::empty({T, B, N}, opts) : at::empty({0}, opts);
    };
    return {Device::empty({T, B, N}, opts.dtype(at::kFloat)), seq(keep), seq(keep && syn),
            seq(keep && adaptive), Device::empty({keep ? T : 1, B, N}, opts), seq(keep)};
  }
};

// A time-major (T, B, N) sequence as a new batch-major (B, T, N) tensor.
template <typename Device>
Tensor batch_major(const Tensor& tm) {
  Tensor out = Device::empty({tm.size(1), tm.size(0), tm.size(2)}, tm.options());
  out.copy_(tm.permute({1, 0, 2}));
  return out;
}

// Points a prepared forward call at step t's output slabs.
inline void point_at_step(ForwardCall& c, const RecurrentSequences& s, int64_t t) {
  c.v_hat = slab(s.v_hat, t);
  c.i_seq = slab(s.i_seq, t);
}
inline void point_at_step(AlifForwardCall& c, const RecurrentSequences& s, int64_t t) {
  c.v_hat = slab(s.v_hat, t);
  c.i_seq = slab(s.i_seq, t);
  c.b_seq = slab(s.b_seq, t);
}

// Runs the forward's steps on a prepared one-step call c (its states are updated in place, and
// are the final states afterwards) and fills s. Returns the spike counts (B, N). The policy
// argument picks a device's own overload, found by argument-dependent lookup, over this one.
template <typename Device, typename Call>
Tensor run_recurrent_forward(Device, Call& c, const Tensor& input, const Tensor& weight,
                             const std::optional<Tensor>& bias, RecurrentSequences& s, bool keep) {
  const int64_t B = input.size(0), steps = input.size(1), N = input.size(2);
  const auto f32 = input.options().dtype(at::kFloat);
  Tensor counts = at::zeros({B, N}, f32);
  c.counts = at::empty({B, N}, f32);
  // One step's spikes in a buffer of their own: BLAS may round differently for an operand at
  // another alignment, and nn.Linear in sinabs gets a freshly allocated (aligned) tensor.
  c.spikes = at::empty({B, 1, N}, f32);
  const Tensor step_spikes = c.spikes.view({B, N});
  // sinabs' first recurrent input: float32 zeros (so x + rec turns -0.0 into +0.0).
  Tensor rec = at::zeros({B, N}, f32);
  for (int64_t t = 0; t < steps; ++t) {
    Tensor total = s.totals.select(0, keep ? t : 0);
    at::add_out(total, input.select(1, t), rec);
    c.x = total.unsqueeze(1);
    point_at_step(c, s, t);
    Device::launch(c);
    counts.add_(c.counts);
    s.spikes.select(0, t).copy_(step_spikes);
    if (keep) s.v_post.select(0, t).copy_(c.v_out.reshape({B, N}));
    if (t + 1 < steps) rec = linear_map(step_spikes, weight, bias);
  }
  return counts;
}

// What the backward reads: the forward's time-major sequences and initial states, and the
// incoming gradients (absent ones nullopt).
struct RecurrentSaved {
  Tensor spikes;  // (B, T, N), as the forward returned them
  Tensor v_hat, i_seq, b_seq, totals, v_post;  // time-major, as RecurrentSequences
  Tensor v0, i0, b_init;  // the initial states as (B, N); undefined where the step call reads none
};

struct RecurrentIncoming {
  std::optional<Tensor> spikes, counts;  // (B, T, N), (B, N)
  std::optional<Tensor> v_hat, i_seq, b_seq;  // time-major
};

// Step t of an incoming time-major gradient as the rows a step call reads (zero_row if absent).
inline RowSource step_rows(const std::optional<Tensor>& g, int64_t t, const Tensor& state_like,
                           const char* name, Tensor& zero_row) {
  const bool given = g.has_value() && g->defined() && g->numel();
  return row_source(given ? std::optional<Tensor>(g->select(0, t)) : std::nullopt, state_like,
                    name, zero_row);
}

// The state before step t: the initial one at t = 0, else step t - 1's entry of a sequence.
inline Tensor before_step(const Tensor& initial, const Tensor& tm, int64_t t) {
  return t > 0 ? tm.select(0, t - 1) : initial;
}

// Points a prepared backward call at step t's saved slabs and incoming gradients.
inline void point_at_step(BackwardCall& c, const RecurrentSaved& s, const RecurrentIncoming& g,
                          int64_t t, const Tensor& state_like, Tensor& zero_row) {
  c.v_hat = slab(s.v_hat, t);
  if (c.i_seq.defined()) c.i_seq = slab(s.i_seq, t);
  if (c.input.storage.defined()) {
    c.input = step_rows(s.totals, t, state_like, "totals_tm", zero_row);
  }
  if (c.v0.defined()) c.v0 = before_step(s.v0, s.v_post, t);
  c.g_v_hat = step_rows(g.v_hat, t, state_like, "grad_v_hat_tm", zero_row);
  c.g_i_seq = step_rows(g.i_seq, t, state_like, "grad_i_seq_tm", zero_row);
}
inline void point_at_step(AlifBackwardCall& c, const RecurrentSaved& s,
                          const RecurrentIncoming& g, int64_t t, const Tensor& state_like,
                          Tensor& zero_row) {
  c.v_hat = slab(s.v_hat, t);
  if (c.syn) c.i_seq = slab(s.i_seq, t);
  c.b_seq = slab(s.b_seq, t);
  c.b_init = before_step(s.b_init, s.b_seq, t);
  if (c.x.storage.defined()) {
    c.x = step_rows(s.totals, t, state_like, "totals_tm", zero_row);
  }
  if (c.v0.defined()) c.v0 = before_step(s.v0, s.v_post, t);
  if (c.i0.defined()) c.i0 = before_step(s.i0, s.i_seq, t);
  c.g_v_hat = step_rows(g.v_hat, t, state_like, "grad_v_hat_tm", zero_row);
  c.g_i_seq = step_rows(g.i_seq, t, state_like, "grad_i_seq_tm", zero_row);
  c.g_b_seq = step_rows(g.b_seq, t, state_like, "grad_b_seq_tm", zero_row);
}

// The (B, N) float64 alpha-gradient sums a step call writes (undefined where not requested).
inline std::vector<Tensor*> alpha_sums(BackwardCall& c) {
  return {&c.g_alpha_mem, &c.g_alpha_syn};
}
inline std::vector<Tensor*> alpha_sums(AlifBackwardCall& c) {
  return {&c.g_alpha_mem, &c.g_alpha_syn, &c.g_rho};
}

// What a recurrent backward's steps give besides the adjoint states.
struct RecurrentGradients {
  Tensor g_input_tm;  // the input gradient, time-major (T, B, N)
  std::vector<Tensor> alpha_totals;  // the sums over all steps of alpha_sums(c); undefined where
                                     // not requested
  Tensor g_weight, g_bias;  // the linear map's, float32; empty where not requested
};

// The linear map's gradients from the time-major input gradient and the spikes (B, T, N):
// dL/dW = sum_t g_input_{t+1}^T s_t and dL/dbias = sum_t g_input_{t+1}, as float32.
inline std::pair<Tensor, Tensor> linear_map_grads(const Tensor& g_input_tm, const Tensor& spikes,
                                                  const Tensor& weight) {
  const int64_t steps = g_input_tm.size(0), B = g_input_tm.size(1), N = g_input_tm.size(2);
  if (steps < 2) return {at::zeros_like(weight), at::zeros({N}, weight.options())};
  const Tensor g = g_input_tm.narrow(0, 1, steps - 1).to(at::kFloat);
  // The row count spelled out: -1 is ambiguous for 0 neurons.
  const int64_t rows = (steps - 1) * B;
  const Tensor s = spikes.narrow(1, 0, steps - 1).transpose(0, 1).reshape({rows, N});
  // sum({0, 1}) through an IntArrayRef: the braced list is ambiguous with torch 2.11's overloads.
  return {at::mm(g.reshape({rows, N}).t(), s), g.sum(at::IntArrayRef{0, 1})};
}

// Runs the backward's steps in reverse on a prepared one-step call c (its adjoint states end as
// the initial states' gradients), and the linear map's gradients with weight_grad. The policy
// argument picks a device's own overload over this one, as in run_recurrent_forward.
template <typename Device, typename Call>
RecurrentGradients run_recurrent_backward(Device, Call& c, const RecurrentSaved& s,
                                          const RecurrentIncoming& g, const Tensor& weight,
                                          bool weight_grad) {
  const int64_t steps = s.v_hat.size(0), B = s.v_hat.size(1), N = s.v_hat.size(2);
  const auto opts = s.v_hat.options();
  const Tensor state_like = at::empty({B, N}, opts);
  Tensor zero_row = at::zeros({N}, opts);
  Tensor g_input_tm = Device::empty({steps, B, N}, opts);
  // dL/ds_t: the output's and the counts' gradients, and through rec the gradient of step
  // t + 1's input, g_input_{t+1} W (in float32, the dtype of nn.Linear's output).
  Tensor g_spikes_step = at::empty({B, 1, N}, opts);
  const Tensor g_s = g_spikes_step.view({B, N});
  c.g_spikes = RowSource{g_spikes_step, N, 0};
  c.g_counts = RowSource{zero_row, 0, 0};
  const bool g_spikes = g.spikes.has_value() && g.spikes->numel();
  const bool g_counts = g.counts.has_value() && g.counts->numel();
  TORCH_CHECK(!g_spikes || g.spikes->sizes() == s.spikes.sizes(),
              "sinabs_fast: grad_spikes must have shape ", s.spikes.sizes());
  TORCH_CHECK(!g_counts || g.counts->sizes() == state_like.sizes(),
              "sinabs_fast: grad_counts must have shape ", state_like.sizes());
  std::vector<Tensor*> step_sums = alpha_sums(c);
  std::vector<Tensor> alpha_totals;
  for (Tensor* sum : step_sums) {
    alpha_totals.push_back(sum->defined() ? at::zeros_like(*sum) : Tensor());
  }
  for (int64_t t = steps - 1; t >= 0; --t) {
    if (g_spikes) {
      g_s.copy_(g.spikes->select(1, t));
    } else {
      g_s.zero_();
    }
    if (g_counts) g_s.add_(*g.counts);
    if (t + 1 < steps) g_s.add_(at::mm(g_input_tm.select(0, t + 1).to(at::kFloat), weight));
    point_at_step(c, s, g, t, state_like, zero_row);
    c.g_input = g_input_tm.select(0, t).unsqueeze(1);
    // A step's sums start at zero (the CPU kernels add to them, the CUDA ones overwrite).
    for (Tensor* sum : step_sums) {
      if (sum->defined()) sum->zero_();
    }
    Device::launch(c);
    for (size_t k = 0; k < step_sums.size(); ++k) {
      if (alpha_totals[k].defined()) alpha_totals[k].add_(*step_sums[k]);
    }
  }
  const auto [g_weight, g_bias] = weight_grad ? linear_map_grads(g_input_tm, s.spikes, weight)
                                              : std::pair{at::empty({0}, opts), at::empty({0}, opts)};
  return {g_input_tm, alpha_totals, g_weight, g_bias};
}

}  // namespace sinabs_fast
