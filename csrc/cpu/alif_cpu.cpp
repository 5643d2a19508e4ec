// CPU kernels of the fused adaptive LIF (ALIF) ops: the whole time loop in one pass per (batch,
// neuron segment), streaming whole rows as the LIF kernels do (lif_cpu.cpp). The per-element
// math is csrc/include/sinabs_fast/adaptive.h.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <vector>

#include "../alif_call.h"
#include "output_pool.h"
#include "row_parallel.h"
#include "sinabs_fast/dispatch.h"

namespace sinabs_fast {
namespace {

using AlifForwardResult =
    std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor>;
using AlifBackwardResult = std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor>;

// Rows the caller does not keep go to a scratch row that stays in L1.
template <typename T>
T* row_or(T* base, int64_t row, std::vector<T>& scratch) {
  return base ? base + row : scratch.data();
}

template <typename T, SpikeKind SK, ResetKind RK, bool SYN, bool MIN>
SF_MULTIVERSION void alif_forward_row(const AlifForwardArgs<T>& p, int64_t b, int64_t n0,
                                      const T* SF_RESTRICT x, float* SF_RESTRICT s_out,
                                      T* SF_RESTRICT vh_out, T* SF_RESTRICT i_out,
                                      T* SF_RESTRICT b_out, T* SF_RESTRICT v, T* SF_RESTRICT isyn,
                                      T* SF_RESTRICT adapt, float* SF_RESTRICT counts,
                                      int64_t L) {
  for (int64_t k = 0; k < L; ++k) {
    const AdaptiveParams<T> prm = p.prm.at(b, n0 + k);
    T cur = x[k];
    if constexpr (SYN) cur = synaptic_update(isyn[k], cur, prm.alpha_syn);
    // norm_input rescales the current that is stored as the state (quirk (b) of §5.5).
    cur = prm.in_scale * cur;
    if constexpr (SYN) {
      isyn[k] = cur;
      i_out[k] = cur;
    }
    const T vh = membrane_update(v[k], cur, prm.alpha, T(1));
    const AdaptiveStep<T> r = adaptive_step<SK, RK, MIN>(vh, adapt[k], prm);
    v[k] = r.neuron.v_next;
    adapt[k] = r.b_next;
    vh_out[k] = vh;
    b_out[k] = r.b_next;
    s_out[k] = r.neuron.spikes;
    counts[k] += r.neuron.spikes;
  }
}

template <typename T, SpikeKind SK, ResetKind RK, bool SYN, bool MIN>
void alif_forward_segment(const AlifForwardArgs<T>& p, int64_t b, int64_t n0, int64_t L) {
  const int64_t off = b * p.N + n0;
  float* counts = p.counts + off;
  std::fill(counts, counts + L, 0.0f);
  std::vector<T> scratch_v(p.v_hat ? 0 : L), scratch_i(p.i_seq ? 0 : L),
      scratch_b(p.b_seq ? 0 : L);
  for (int64_t t = 0; t < p.steps; ++t) {
    const int64_t row = (b * p.steps + t) * p.N + n0;
    alif_forward_row<T, SK, RK, SYN, MIN>(
        p, b, n0, p.x + row, p.spikes + row, row_or(p.v_hat, row, scratch_v),
        SYN ? row_or(p.i_seq, row, scratch_i) : nullptr, row_or(p.b_seq, row, scratch_b),
        p.v + off, SYN ? p.i + off : nullptr, p.b + off, counts, L);
  }
}

AlifForwardResult alif_forward_cpu(
    const Tensor& input, const Tensor& v_mem, const std::optional<Tensor>& i_syn, const Tensor& b,
    const Tensor& alpha_mem, const std::optional<Tensor>& alpha_syn, const Tensor& alpha_adapt,
    bool norm_input, const Tensor& b0, const Tensor& adapt_scale,
    const std::optional<Tensor>& subtract_value, const std::optional<Tensor>& min_v_mem,
    int64_t spike_kind, double max_spikes, int64_t reset_kind, double reset_value,
    int64_t /*surrogate_kind*/, at::ArrayRef<double> /*surrogate_params (for the backward)*/,
    bool keep_sequences) {
  const AlifForwardCall c = prepare_alif_forward(
      input, v_mem, i_syn, b, alpha_mem, alpha_syn, alpha_adapt, norm_input, b0, adapt_scale,
      subtract_value, min_v_mem, spike_kind, max_spikes, reset_kind, reset_value,
      keep_sequences, &pooled_empty);
  AT_DISPATCH_FLOATING_TYPES(c.x.scalar_type(), "alif_forward_cpu", [&] {
    const AlifForwardArgs<scalar_t> p = c.args<scalar_t>();
    dispatch_adaptive(c.opt.spike, c.opt.reset, c.syn, c.prm.min_v_mem.defined(),
                      [&](auto sk, auto rk, auto has_syn, auto has_min) {
                        for_each_segment(c.batch, c.N, [&](int64_t bi, int64_t n0, int64_t L) {
                          alif_forward_segment<scalar_t, decltype(sk)::value,
                                               decltype(rk)::value, decltype(has_syn)::value,
                                               decltype(has_min)::value>(p, bi, n0, L);
                        });
                      });
  });
  return c.result();
}

// ------------------------------------------------------------------------------------------------
// Backward: the reverse-time recurrence, recomputing each step's threshold, spikes and masks
// from the saved pre-spike membrane and adaptation state.

// Per-segment running values of the alpha-gradient sums.
template <typename T>
struct AlphaSums {
  double *alpha_mem, *alpha_syn, *rho;  // (L) slices of the (B, N) outputs, or nullptr
  T* g_v_hat_next;                      // dL/dv_hat of the step after this one
};

template <typename T, SpikeKind SK, ResetKind RK, bool SYN, bool MIN>
SF_MULTIVERSION void alif_backward_row(const AlifBackwardArgs<T>& p, int64_t b, int64_t n0,
                                       int64_t t, int64_t L, const AlphaSums<T>& sums) {
  const int64_t off = b * p.N + n0;
  const int64_t row = (b * p.steps + t) * p.N + n0;
  const int64_t prev = row - p.N;  // the same neurons one step earlier
  const T* gs = p.g_spikes.at(b, t, n0);
  const T* gc = p.g_counts.at(b, 0, n0);
  const T* gvh = p.g_v_hat.at(b, t, n0);
  const T* gis = p.g_i_seq.at(b, t, n0);
  const T* gbs = p.g_b_seq.at(b, t, n0);
  for (int64_t k = 0; k < L; ++k) {
    const AdaptiveParams<T> prm = p.prm.at(b, n0 + k);
    const T b_prev = t > 0 ? p.b_seq[prev + k] : p.b_init[off + k];
    const T vh = p.v_hat[row + k];
    const AdaptiveStep<T> r = adaptive_step<SK, RK, MIN>(vh, b_prev, prm);
    const T sigma = surrogate_grad(p.surrogate, vh, r.thr);
    const T lambda_b = p.lambda_b[off + k] + gbs[k];
    const AdaptiveAdjoint<T> a = adaptive_adjoint<SK, RK>(
        r, b_prev, p.lambda_v[off + k], lambda_b, gs[k] + gc[k], gvh[k], sigma, prm);
    p.lambda_v[off + k] = a.g_v_hat * prm.alpha;
    p.lambda_b[off + k] = a.lambda_b;
    // The gradient at the stored (rescaled) current: from v_hat, its recording, the next step.
    T g_cur = a.g_v_hat + gis[k];
    if constexpr (SYN) g_cur = g_cur + p.lambda_i[off + k];
    const T g_raw = g_cur * prm.in_scale;
    T g_x = g_raw;
    if constexpr (SYN) {
      g_x = g_raw * prm.alpha_syn;
      p.lambda_i[off + k] = g_x;
    }
    p.g_input[row + k] = g_x;
    if (sums.rho) {
      sums.rho[k] += static_cast<double>(a.g_rho);
      // v_hat_{t+1} = alpha_mem * v_t + i_{t+1}: v_t (this step's outgoing membrane) meets the
      // gradient of the step after it.
      sums.alpha_mem[k] += static_cast<double>(r.neuron.v_next) *
                           static_cast<double>(sums.g_v_hat_next[k]);
      sums.g_v_hat_next[k] = a.g_v_hat;
      // The current before norm_input's rescaling: alpha_syn * (i_{t-1} + x_t), or x_t.
      T raw = p.x[row + k];
      if constexpr (SYN) {
        const T sum_in = (t > 0 ? p.i_seq[prev + k] : p.i0[off + k]) + raw;
        sums.alpha_syn[k] += static_cast<double>(g_raw) * static_cast<double>(sum_in);
        raw = prm.alpha_syn * sum_in;
      }
      // norm_input: d((1 - alpha_mem) * raw) / dalpha_mem = -raw.
      if (p.norm_input) {
        sums.alpha_mem[k] -= static_cast<double>(g_cur) * static_cast<double>(raw);
      }
    }
  }
}

template <typename T, SpikeKind SK, ResetKind RK, bool SYN, bool MIN>
void alif_backward_segment(const AlifBackwardArgs<T>& p, int64_t b, int64_t n0, int64_t L) {
  const int64_t off = b * p.N + n0;
  const bool sums_wanted = p.g_rho != nullptr;
  std::vector<T> g_v_hat_next(sums_wanted ? L : 0, T(0));
  AlphaSums<T> sums{sums_wanted ? p.g_alpha_mem + off : nullptr,
                    sums_wanted && SYN ? p.g_alpha_syn + off : nullptr,
                    sums_wanted ? p.g_rho + off : nullptr, g_v_hat_next.data()};
  for (int64_t t = p.steps - 1; t >= 0; --t) {
    alif_backward_row<T, SK, RK, SYN, MIN>(p, b, n0, t, L, sums);
  }
  if (sums_wanted) {
    // The membrane before the first step is the initial state.
    for (int64_t k = 0; k < L; ++k) {
      sums.alpha_mem[k] += static_cast<double>(p.v0[off + k]) *
                           static_cast<double>(g_v_hat_next[k]);
    }
  }
}

AlifBackwardResult alif_backward_cpu(
    const std::optional<Tensor>& grad_spikes, const std::optional<Tensor>& grad_v_hat,
    const std::optional<Tensor>& grad_i_seq, const std::optional<Tensor>& grad_b_seq,
    const std::optional<Tensor>& grad_v_mem, const std::optional<Tensor>& grad_i_syn,
    const std::optional<Tensor>& grad_b, const std::optional<Tensor>& grad_counts,
    const Tensor& v_hat, const Tensor& i_seq, const Tensor& b_seq, const Tensor& input,
    const Tensor& v_mem, const std::optional<Tensor>& i_syn, const Tensor& b,
    const Tensor& alpha_mem, const std::optional<Tensor>& alpha_syn, const Tensor& alpha_adapt,
    bool norm_input, const Tensor& b0, const Tensor& adapt_scale,
    const std::optional<Tensor>& subtract_value, const std::optional<Tensor>& min_v_mem,
    int64_t spike_kind, double max_spikes, int64_t reset_kind, double reset_value,
    int64_t surrogate_kind, at::ArrayRef<double> surrogate_params, bool alpha_grads) {
  const AlifBackwardCall c = prepare_alif_backward(
      grad_spikes, grad_v_hat, grad_i_seq, grad_b_seq, grad_v_mem, grad_i_syn, grad_b,
      grad_counts, v_hat, i_seq, b_seq, input, v_mem, i_syn, b, alpha_mem, alpha_syn,
      alpha_adapt, norm_input, b0, adapt_scale, subtract_value, min_v_mem, spike_kind,
      max_spikes, reset_kind, reset_value, surrogate_kind, surrogate_params, alpha_grads,
      &pooled_empty);
  AT_DISPATCH_FLOATING_TYPES(c.v_hat.scalar_type(), "alif_backward_cpu", [&] {
    const AlifBackwardArgs<scalar_t> p = c.args<scalar_t>();
    dispatch_adaptive(c.opt.spike, c.opt.reset, c.syn, c.prm.min_v_mem.defined(),
                      [&](auto sk, auto rk, auto has_syn, auto has_min) {
                        for_each_segment(c.batch, c.N, [&](int64_t bi, int64_t n0, int64_t L) {
                          alif_backward_segment<scalar_t, decltype(sk)::value,
                                                decltype(rk)::value, decltype(has_syn)::value,
                                                decltype(has_min)::value>(p, bi, n0, L);
                        });
                      });
  });
  return c.result();
}

}  // namespace

TORCH_LIBRARY_IMPL(sinabs_fast, CPU, m) {
  m.impl("alif_forward", &alif_forward_cpu);
  m.impl("alif_backward", &alif_backward_cpu);
}

}  // namespace sinabs_fast
