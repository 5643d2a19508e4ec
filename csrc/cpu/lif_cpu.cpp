// CPU kernels of the fused LIF-family ops: the whole time loop in one pass per (batch, neuron
// segment). Each thread streams whole rows x[b, t, n0:n1] for t = 0..T-1, so reads and writes are
// contiguous and the inner neuron loop vectorises (../shared/reference/cpu-kernel-notes.md).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "../lif_call.h"
#include "output_pool.h"
#include "row_parallel.h"
#include "sinabs_fast/dispatch.h"

namespace sinabs_fast {
namespace {

// ------------------------------------------------------------------------------------------------
// Forward

// One time step of one segment. The pointers are restrict-qualified parameters (not locals) so
// that GCC trusts them and vectorises the loop.
template <typename T, SpikeKind SK, ResetKind RK, bool SYN, bool MIN, bool PN>
SF_MULTIVERSION void forward_row(const T* SF_RESTRICT x, float* SF_RESTRICT s_out,
                                 T* SF_RESTRICT vh_out,
                        T* SF_RESTRICT i_out, T* SF_RESTRICT v, T* SF_RESTRICT isyn,
                        float* SF_RESTRICT counts, const T* SF_RESTRICT alpha,
                        const T* SF_RESTRICT in_scale, const T* SF_RESTRICT alpha_syn,
                        const T* SF_RESTRICT spike_thr, const T* SF_RESTRICT amount,
                        const T* SF_RESTRICT min_v, float max_spikes, T reset_value, bool pif,
                        int64_t L) {
  for (int64_t k = 0; k < L; ++k) {
    T cur = x[k];
    if constexpr (SYN) {
      cur = synaptic_update(isyn[k], cur, neuron_param<PN>(alpha_syn, k));
      isyn[k] = cur;
      i_out[k] = cur;
    }
    const T vh = membrane_update(v[k], cur, neuron_param<PN>(alpha, k),
                                 neuron_param<PN>(in_scale, k));
    const StepResult<T> r = spike_reset_clamp<SK, RK, MIN>(
        vh, neuron_param<PN>(spike_thr, k), max_spikes, neuron_param<PN>(amount, k), reset_value,
        MIN ? neuron_param<PN>(min_v, k) : T(0), pif);
    v[k] = r.v_next;
    vh_out[k] = vh;
    if constexpr (SK != SpikeKind::None) {
      s_out[k] = r.spikes;
      counts[k] += r.spikes;
    }
  }
}

template <typename T, SpikeKind SK, ResetKind RK, bool SYN, bool MIN, bool PN>
void forward_segment(const ForwardArgs<T>& p, int64_t b, int64_t n0, int64_t L) {
  const int64_t off = b * p.N + n0;                    // states and counts
  const int64_t poff = PN ? b * p.prm.row_stride + n0 : 0;  // parameters
  const bool spiking = SK != SpikeKind::None;
  float* counts = spiking ? p.counts + off : nullptr;
  if (spiking) std::fill(counts, counts + L, 0.0f);
  // Rows that the caller does not keep are written to a scratch row that stays in L1.
  std::vector<T> scratch_v(p.v_hat ? 0 : L), scratch_i(SYN && !p.i_seq ? L : 0);
  for (int64_t t = 0; t < p.steps; ++t) {
    const int64_t row = (b * p.steps + t) * p.N + n0;
    forward_row<T, SK, RK, SYN, MIN, PN>(
        p.x + row, spiking ? p.spikes + row : nullptr,
        p.v_hat ? p.v_hat + row : scratch_v.data(),
        SYN ? (p.i_seq ? p.i_seq + row : scratch_i.data()) : nullptr, p.v + off,
        SYN ? p.i + off : nullptr, counts, p.prm.alpha + poff, p.prm.in_scale + poff,
        SYN ? p.prm.alpha_syn + poff : nullptr, p.prm.spike_thr + poff, p.prm.amount + poff,
        MIN ? p.prm.min_v + poff : nullptr, p.prm.max_spikes, p.prm.reset_value,
        p.prm.product_in_float, L);
  }
}

ForwardResult lif_forward_cpu(const Tensor& input, const Tensor& v_mem,
                              const std::optional<Tensor>& i_syn, const Tensor& alpha_mem,
                              const std::optional<Tensor>& alpha_syn, bool norm_input,
                              const Tensor& threshold, const Tensor& reset_amount,
                              const std::optional<Tensor>& min_v_mem, int64_t spike_kind,
                              double max_spikes, int64_t reset_kind, double reset_value,
                              int64_t /*surrogate_kind*/,
                              at::ArrayRef<double> /*surrogate_params (for the backward)*/,
                              bool keep_v_hat, bool keep_i_syn) {
  const ForwardCall c = prepare_forward(input, v_mem, i_syn, alpha_mem, alpha_syn, norm_input,
                                        threshold, reset_amount, min_v_mem, spike_kind,
                                        max_spikes, reset_kind, reset_value, keep_v_hat,
                                        keep_i_syn, &pooled_empty);
  AT_DISPATCH_FLOATING_TYPES(c.x.scalar_type(), "lif_forward_cpu", [&] {
    const ForwardArgs<scalar_t> p = c.args<scalar_t>();
    dispatch_neuron(c.opt.spike, c.opt.reset, c.syn, c.prm.min_v_mem.defined(),
                    c.prm.per_neuron, [&](auto sk, auto rk, auto has_syn, auto has_min, auto pn) {
                      for_each_segment(c.batch, c.N, [&](int64_t b, int64_t n0, int64_t L) {
                        forward_segment<scalar_t, decltype(sk)::value, decltype(rk)::value,
                                        decltype(has_syn)::value, decltype(has_min)::value,
                                        decltype(pn)::value>(p, b, n0, L);
                      });
                    });
  });
  return c.result();
}

// ------------------------------------------------------------------------------------------------
// Backward: the reverse-time recurrence of the semantics note §7, recomputing spikes, reset and
// clamp masks from the saved pre-spike membrane v_hat.

// The surrogate at one step's v_hat. inv_width: SingleExponential's per-neuron 1 / width,
// computed once per segment by the caller (nullptr for the other kinds).
template <typename T, bool PN>
SF_MULTIVERSION_512 void surrogate_row(const SurrogateParams<T>& sp, const T* SF_RESTRICT v,
                                   const T* SF_RESTRICT thr, const T* SF_RESTRICT inv_width,
                                   T* SF_RESTRICT out, int64_t L) {
  switch (sp.kind) {
    case SurrogateKind::SingleExponential:
      for (int64_t k = 0; k < L; ++k) {
        out[k] = single_exponential_from(sp.p[1], neuron_param<PN>(inv_width, k), v[k],
                                         neuron_param<PN>(thr, k));
      }
      break;
    case SurrogateKind::PeriodicExponential:
      for (int64_t k = 0; k < L; ++k) {
        out[k] = periodic_exponential(sp.p, v[k], neuron_param<PN>(thr, k));
      }
      break;
    case SurrogateKind::Heaviside:
      for (int64_t k = 0; k < L; ++k) out[k] = heaviside(sp.p, v[k], neuron_param<PN>(thr, k));
      break;
    case SurrogateKind::Gaussian:
      for (int64_t k = 0; k < L; ++k) out[k] = gaussian(sp.p, v[k], neuron_param<PN>(thr, k));
      break;
    case SurrogateKind::MultiGaussian:
      for (int64_t k = 0; k < L; ++k) {
        out[k] = multi_gaussian(sp.p, v[k], neuron_param<PN>(thr, k));
      }
      break;
    default:
      break;
  }
}

// One reverse step of one segment (restrict parameters, as forward_row). g_vh_keep / g_i_keep /
// v_next_keep receive the gradients at v_hat and at i_t and the step's outgoing membrane, for
// the alpha sums, or are nullptr.
template <typename T, SpikeKind SK, ResetKind RK, bool SYN, bool MIN, bool PN>
SF_MULTIVERSION void backward_row(const T* SF_RESTRICT vh, const T* SF_RESTRICT sigma,
                         const T* SF_RESTRICT gs, const T* SF_RESTRICT g_counts,
                         const T* SF_RESTRICT gvh, const T* SF_RESTRICT gis, T* SF_RESTRICT gx,
                         T* SF_RESTRICT lambda_v, T* SF_RESTRICT lambda_i,
                         T* SF_RESTRICT g_vh_keep, T* SF_RESTRICT g_i_keep,
                         T* SF_RESTRICT v_next_keep,
                         const T* SF_RESTRICT alpha, const T* SF_RESTRICT in_scale,
                         const T* SF_RESTRICT alpha_syn, const T* SF_RESTRICT spike_thr,
                         const T* SF_RESTRICT amount, const T* SF_RESTRICT min_v, float max_spikes,
                         T reset_value, bool pif, int64_t L) {
  for (int64_t k = 0; k < L; ++k) {
    const StepResult<T> r = spike_reset_clamp<SK, RK, MIN>(
        vh[k], neuron_param<PN>(spike_thr, k), max_spikes, neuron_param<PN>(amount, k),
        reset_value, MIN ? neuron_param<PN>(min_v, k) : T(0), pif);
    const T sig = SK != SpikeKind::None ? sigma[k] : T(0);
    const T g = v_hat_adjoint<SK, RK>(r, lambda_v[k], gs[k] + g_counts[k], gvh[k], sig,
                                      neuron_param<PN>(amount, k));
    lambda_v[k] = g * neuron_param<PN>(alpha, k);
    const T g_i = g * neuron_param<PN>(in_scale, k) + gis[k];
    if constexpr (SYN) {
      const T total = g_i + lambda_i[k];
      const T g_sum = total * neuron_param<PN>(alpha_syn, k);
      gx[k] = g_sum;
      lambda_i[k] = g_sum;
      if (g_i_keep) g_i_keep[k] = total;
    } else {
      gx[k] = g_i;
    }
    if (g_vh_keep) g_vh_keep[k] = g;
    if (v_next_keep) v_next_keep[k] = r.v_next;
  }
}

template <typename T, SpikeKind SK, ResetKind RK, bool SYN, bool MIN, bool PN>
void backward_segment(const BackwardArgs<T>& p, int64_t b, int64_t n0, int64_t L) {
  const int64_t off = b * p.N + n0;                // states and gradients
  const int64_t poff = PN ? b * p.prm.row_stride + n0 : 0;  // parameters
  const T* thr = p.prm.thr + poff;
  const T* amount = p.prm.amount + poff;
  const T* min_v = MIN ? p.prm.min_v + poff : nullptr;
  // Per-row scratch: the surrogate; for the alpha sums the gradients at v_hat of this step and
  // of the one after it, the step's outgoing membrane, and the gradient at i_t.
  std::vector<T> sigma_row(SK != SpikeKind::None && !p.sigma ? L : 0);
  std::vector<T> inv_width;
  if (p.surrogate.kind == SurrogateKind::SingleExponential) {
    inv_width.resize(L);
    for (int64_t k = 0; k < L; ++k) {
      inv_width[k] = T(1) / (neuron_param<PN>(thr, k) * p.surrogate.p[0]);
    }
  }
  std::vector<T> g_vh_row(p.g_alpha_mem ? L : 0), g_vh_next(p.g_alpha_mem ? L : 0);
  std::vector<T> v_next_row(p.g_alpha_mem ? L : 0), g_i_row(p.g_alpha_syn ? L : 0);
  double* g_am = p.g_alpha_mem ? p.g_alpha_mem + off : nullptr;
  double* g_as = p.g_alpha_syn ? p.g_alpha_syn + off : nullptr;
  if (g_am) std::fill(g_am, g_am + L, 0.0);
  if (g_as) std::fill(g_as, g_as + L, 0.0);
  // The current block of the alpha sums (see kSumBlock), in the compute type.
  std::vector<T> am_block(g_am ? L : 0, T(0)), as_block(g_as ? L : 0, T(0));
  int64_t in_block = 0;

  for (int64_t t = p.steps - 1; t >= 0; --t) {
    const int64_t row = (b * p.steps + t) * p.N + n0;
    const T* vh = p.v_hat + row;
    const T* sigma = nullptr;
    if constexpr (SK != SpikeKind::None) {
      if (p.sigma) {
        sigma = p.sigma + row;
      } else {
        surrogate_row<T, PN>(p.surrogate, vh, thr, inv_width.data(), sigma_row.data(), L);
        sigma = sigma_row.data();
      }
    }
    backward_row<T, SK, RK, SYN, MIN, PN>(
        vh, sigma, p.g_spikes.at(b, t, n0), p.g_counts.at(b, 0, n0), p.g_v_hat.at(b, t, n0),
        p.g_i_seq.at(b, t, n0), p.g_input + row, p.lambda_v + off,
        SYN ? p.lambda_i + off : nullptr, g_am ? g_vh_row.data() : nullptr,
        g_as ? g_i_row.data() : nullptr, g_am ? v_next_row.data() : nullptr,
        p.prm.alpha + poff, p.prm.in_scale + poff, SYN ? p.prm.alpha_syn + poff : nullptr,
        p.prm.spike_thr + poff,
        amount, min_v, p.prm.max_spikes, p.prm.reset_value, p.prm.product_in_float, L);
    if (g_am) {
      // dL/dalpha_mem = sum_t v_{t-1} g_vhat_t (- i_t g_vhat_t with norm_input). v_t is known
      // now and g_vhat_{t+1} from the last iteration, so nothing is recomputed.
      if (t + 1 < p.steps) {
        accumulate_products(am_block.data(), v_next_row.data(), g_vh_next.data(), T(1), L);
      }
      if (p.norm_input) {
        const T* cur = SYN ? p.i_seq + row : p.input + row;
        accumulate_products(am_block.data(), cur, g_vh_row.data(), T(-1), L);
      }
      std::swap(g_vh_row, g_vh_next);
    }
    if (g_as) {
      // dL/dalpha_syn += (i_{t-1} + x_t) * total = i_t / alpha_syn * total (divided at the end)
      accumulate_products(as_block.data(), p.i_seq + row, g_i_row.data(), T(1), L);
    }
    if (++in_block == kSumBlock || t == 0) {
      if (g_am) flush_block(g_am, am_block.data(), L);
      if (g_as) flush_block(g_as, as_block.data(), L);
      in_block = 0;
    }
  }
  if (g_am) {
    // The step before t = 0 is the initial membrane.
    accumulate_products(am_block.data(), p.v0 + off, g_vh_next.data(), T(1), L);
    flush_block(g_am, am_block.data(), L);
  }
  if (g_as) {
    const T* alpha_syn = p.prm.alpha_syn + poff;
    for (int64_t k = 0; k < L; ++k) {
      g_as[k] /= static_cast<double>(neuron_param<PN>(alpha_syn, k));
    }
  }
}

BackwardResult lif_backward_cpu(
    const std::optional<Tensor>& grad_spikes, const std::optional<Tensor>& grad_v_hat,
    const std::optional<Tensor>& grad_i_seq, const std::optional<Tensor>& grad_v_mem,
    const std::optional<Tensor>& grad_i_syn, const std::optional<Tensor>& grad_counts,
    const Tensor& v_hat, const Tensor& i_seq, const Tensor& v_mem,
    const std::optional<Tensor>& input, const Tensor& alpha_mem,
    const std::optional<Tensor>& alpha_syn, bool norm_input, const Tensor& threshold,
    const Tensor& reset_amount, const std::optional<Tensor>& min_v_mem, int64_t spike_kind,
    double max_spikes, int64_t reset_kind, double reset_value, int64_t surrogate_kind,
    at::ArrayRef<double> surrogate_params, const std::optional<Tensor>& surrogate_values,
    bool alpha_mem_grad, bool alpha_syn_grad) {
  const BackwardCall c = prepare_backward(
      grad_spikes, grad_v_hat, grad_i_seq, grad_v_mem, grad_i_syn, grad_counts, v_hat, i_seq,
      v_mem, input, alpha_mem, alpha_syn, norm_input, threshold, reset_amount, min_v_mem,
      spike_kind, max_spikes, reset_kind, reset_value, surrogate_kind, surrogate_params,
      surrogate_values, alpha_mem_grad, alpha_syn_grad, &pooled_empty);
  AT_DISPATCH_FLOATING_TYPES(c.v_hat.scalar_type(), "lif_backward_cpu", [&] {
    const BackwardArgs<scalar_t> p = c.args<scalar_t>();
    dispatch_neuron(c.opt.spike, c.opt.reset, c.syn, c.prm.min_v_mem.defined(),
                    c.prm.per_neuron, [&](auto sk, auto rk, auto has_syn, auto has_min, auto pn) {
                      for_each_segment(c.batch, c.N, [&](int64_t b, int64_t n0, int64_t L) {
                        backward_segment<scalar_t, decltype(sk)::value, decltype(rk)::value,
                                         decltype(has_syn)::value, decltype(has_min)::value,
                                         decltype(pn)::value>(p, b, n0, L);
                      });
                    });
  });
  return c.result();
}

}  // namespace

TORCH_LIBRARY_IMPL(sinabs_fast, CPU, m) {
  m.impl("lif_forward", &lif_forward_cpu);
  m.impl("lif_backward", &lif_backward_cpu);
}

}  // namespace sinabs_fast
