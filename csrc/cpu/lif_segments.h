// The LIF-family CPU kernels' row loops and segments, shared by the fused ops (lif_cpu.cpp) and
// the recurrent op (lif_recurrent_cpu.cpp), which runs them one step at a time. Each thread
// streams whole rows x[b, t, n0:n1] for t = 0..steps-1, so reads and writes are contiguous and
// the inner neuron loop vectorises. K is the kernel's LifTraits (sinabs_fast/dispatch.h).
//
// Internal linkage (an unnamed namespace in a header): each file that includes it gets its own
// instantiations, and with them its own multiversioned clones (SF_MULTIVERSION).
#pragma once

#include <ATen/ATen.h>

#include <algorithm>
#include <type_traits>
#include <vector>

#include "../lif_kernel_args.h"
#include "output_pool.h"
#include "row_parallel.h"
#include "sinabs_fast/dispatch.h"

namespace sinabs_fast {
namespace {

// ------------------------------------------------------------------------------------------------
// Forward

// One time step of one segment. The pointers are restrict-qualified parameters (not locals) so
// that GCC trusts them and vectorises the loop. SPIKES: store the spikes and add them to the
// counts (the backward's recomputation needs neither).
template <typename T, typename K, bool SPIKES = true>
SF_MULTIVERSION void forward_row(const T* SF_RESTRICT x, float* SF_RESTRICT s_out,
                                 T* SF_RESTRICT vh_out, T* SF_RESTRICT i_out, T* SF_RESTRICT v,
                                 T* SF_RESTRICT isyn, float* SF_RESTRICT counts,
                                 const T* SF_RESTRICT alpha, const T* SF_RESTRICT in_scale,
                                 const T* SF_RESTRICT alpha_syn, const T* SF_RESTRICT spike_thr,
                                 const T* SF_RESTRICT amount, const T* SF_RESTRICT min_v,
                                 float max_spikes, T reset_value, bool product_in_float,
                                 int64_t L) {
  for (int64_t k = 0; k < L; ++k) {
    T cur = x[k];
    if constexpr (K::synaptic) {
      cur = synaptic_update(isyn[k], cur, neuron_param<K::per_neuron>(alpha_syn, k));
      isyn[k] = cur;
      i_out[k] = cur;
    }
    const T vh = membrane_update(v[k], cur, neuron_param<K::per_neuron>(alpha, k),
                                 neuron_param<K::per_neuron>(in_scale, k));
    const StepResult<T> r = spike_reset_clamp<K::spike, K::reset, K::clamped>(
        vh, neuron_param<K::per_neuron>(spike_thr, k), max_spikes,
        neuron_param<K::per_neuron>(amount, k), reset_value,
        K::clamped ? neuron_param<K::per_neuron>(min_v, k) : T(0), product_in_float);
    v[k] = r.v_next;
    vh_out[k] = vh;
    if constexpr (K::spiking && SPIKES) {
      s_out[k] = r.spikes;
      counts[k] += r.spikes;
    }
  }
}

template <typename T, typename K>
void forward_segment(const ForwardArgs<T>& p, int64_t b, int64_t n0, int64_t L) {
  const int64_t off = b * p.N + n0;                                    // states and counts
  const int64_t poff = K::per_neuron ? b * p.prm.row_stride + n0 : 0;  // parameters
  const bool spiking = K::spiking;
  float* counts = spiking ? p.counts + off : nullptr;
  if (spiking) std::fill(counts, counts + L, 0.0f);
  // Rows that the caller does not keep are written to a scratch row that stays in L1.
  std::vector<T> scratch_v(p.v_hat ? 0 : L), scratch_i(K::synaptic && !p.i_seq ? L : 0);
  for (int64_t t = 0; t < p.steps; ++t) {
    const int64_t row = (b * p.steps + t) * p.N + n0;  // the outputs'; x by its own strides
    // The next input row, a page or more away in a time-major view: see recompute_segment.
    if (t + 1 < p.steps) prefetch_row(p.x.at(b, t + 1, n0), L);
    forward_row<T, K>(
        p.x.at(b, t, n0), spiking ? p.spikes + row : nullptr,
        p.v_hat ? p.v_hat + row : scratch_v.data(),
        K::synaptic ? (p.i_seq ? p.i_seq + row : scratch_i.data()) : nullptr, p.v + off,
        K::synaptic ? p.i + off : nullptr, counts, p.prm.alpha + poff, p.prm.in_scale + poff,
        K::synaptic ? p.prm.alpha_syn + poff : nullptr, p.prm.spike_thr + poff, p.prm.amount + poff,
        K::clamped ? p.prm.min_v + poff : nullptr, p.prm.max_spikes, p.prm.reset_value,
        p.prm.product_in_float, L);
  }
}

// ------------------------------------------------------------------------------------------------
// Backward: the reverse-time recurrence of docs/semantics.md, section 4, recomputing spikes,
// reset and clamp masks from the saved pre-spike membrane v_hat.

// One reverse step of one segment (restrict parameters, as forward_row). SUMS: also add this
// step's terms of the alpha gradients to the current block sums (sinabs_fast/alpha_sums.h), in
// the compute type, while they are in registers: am_sum += v_t g_vhat_{t+1} (- cur_t g_vhat_t
// with NORM, norm_input: cur_t is i_t, or x_t without synaptic current), as_sum += i_t g_i, g_i
// being the gradient at i_t (divided by alpha_syn at the end); g_vh_next (zeros before the last
// step) becomes g_vhat_t.
template <typename T, typename K, bool SUMS, bool NORM>
SF_MULTIVERSION void backward_row(
    const T* SF_RESTRICT vh, const T* SF_RESTRICT sigma, const T* SF_RESTRICT gs,
    const T* SF_RESTRICT g_counts, const T* SF_RESTRICT gvh, const T* SF_RESTRICT gis,
    T* SF_RESTRICT gx, T* SF_RESTRICT lambda_v, T* SF_RESTRICT lambda_i, const T* SF_RESTRICT cur,
    T* SF_RESTRICT am_sum, T* SF_RESTRICT as_sum, T* SF_RESTRICT g_vh_next,
    const T* SF_RESTRICT alpha, const T* SF_RESTRICT in_scale, const T* SF_RESTRICT alpha_syn,
    const T* SF_RESTRICT spike_thr, const T* SF_RESTRICT amount, const T* SF_RESTRICT min_v,
    float max_spikes, T reset_value, bool product_in_float, int64_t L) {
  for (int64_t k = 0; k < L; ++k) {
    const StepResult<T> r = spike_reset_clamp<K::spike, K::reset, K::clamped>(
        vh[k], neuron_param<K::per_neuron>(spike_thr, k), max_spikes,
        neuron_param<K::per_neuron>(amount, k), reset_value,
        K::clamped ? neuron_param<K::per_neuron>(min_v, k) : T(0), product_in_float);
    const T sig = K::spiking ? sigma[k] : T(0);
    const T g = v_hat_adjoint<K::spike, K::reset>(r, lambda_v[k], gs[k] + g_counts[k], gvh[k], sig,
                                                  neuron_param<K::per_neuron>(amount, k));
    lambda_v[k] = g * neuron_param<K::per_neuron>(alpha, k);
    const T g_i = g * neuron_param<K::per_neuron>(in_scale, k) + gis[k];
    if constexpr (K::synaptic) {
      const T total = g_i + lambda_i[k];
      const T g_sum = total * neuron_param<K::per_neuron>(alpha_syn, k);
      gx[k] = g_sum;
      lambda_i[k] = g_sum;
      if constexpr (SUMS) as_sum[k] += cur[k] * total;
    } else {
      gx[k] = g_i;
    }
    if constexpr (SUMS) {
      am_sum[k] += alpha_mem_term<NORM>(r.v_next, g_vh_next[k], NORM ? cur[k] : T(0), g);
      g_vh_next[k] = g;
    }
  }
}

// The forward pass of one segment again, for a backward whose forward kept no v_hat: the same
// row loop on the same input and initial states, so the same bits. v_hat (and, if i_out, the
// synaptic current) of step t go to row t of the (T, L) scratch. Whole-row segments measured
// faster than segments cut to fit the scratch into L2.
template <typename T, typename K>
void recompute_segment(const BackwardArgs<T>& p, int64_t b, int64_t n0, int64_t L, T* vh_out,
                       T* i_out) {
  const int64_t off = b * p.N + n0;
  const int64_t poff = K::per_neuron ? b * p.prm.row_stride + n0 : 0;
  std::vector<T> v(p.v0 + off, p.v0 + off + L);
  std::vector<T> isyn(K::synaptic ? L : 0), i_row(K::synaptic && !i_out ? L : 0);
  if constexpr (K::synaptic) std::copy(p.i0 + off, p.i0 + off + L, isyn.begin());
  for (int64_t t = 0; t < p.steps; ++t) {
    const T* x = p.input.at(b, t, n0);
    if (t + 1 < p.steps) prefetch_row(x + p.input.t_stride, L);  // see the reverse loop's prefetch
    forward_row<T, K, false>(
        x, nullptr, vh_out + t * L, K::synaptic ? (i_out ? i_out + t * L : i_row.data()) : nullptr,
        v.data(), isyn.data(), nullptr, p.prm.alpha + poff, p.prm.in_scale + poff,
        K::synaptic ? p.prm.alpha_syn + poff : nullptr, p.prm.spike_thr + poff, p.prm.amount + poff,
        K::clamped ? p.prm.min_v + poff : nullptr, p.prm.max_spikes, p.prm.reset_value,
        p.prm.product_in_float, L);
  }
}

template <typename T, typename K>
void backward_segment(const BackwardArgs<T>& p, int64_t b, int64_t n0, int64_t L) {
  const int64_t off = b * p.N + n0;                                    // states and gradients
  const int64_t poff = K::per_neuron ? b * p.prm.row_stride + n0 : 0;  // parameters
  const T* thr = p.prm.thr + poff;
  const T* amount = p.prm.amount + poff;
  const T* min_v = K::clamped ? p.prm.min_v + poff : nullptr;
  // Per-row scratch: the surrogate; for the alpha sums the gradient at v_hat of the step after.
  std::vector<T> sigma_row(K::spiking && !p.sigma ? L : 0);
  std::vector<T> inv_width;
  if (p.surrogate.kind == SurrogateKind::SingleExponential) {
    inv_width.resize(L);
    for (int64_t k = 0; k < L; ++k) {
      inv_width[k] = T(1) / (neuron_param<K::per_neuron>(thr, k) * p.surrogate.p[0]);
    }
  }
  double* g_am = p.g_alpha_mem ? p.g_alpha_mem + off : nullptr;
  double* g_as = p.g_alpha_syn ? p.g_alpha_syn + off : nullptr;
  const bool sums = g_am || g_as;
  if (g_am) std::fill(g_am, g_am + L, 0.0);
  if (g_as) std::fill(g_as, g_as + L, 0.0);
  std::vector<T> g_vh_next(sums ? L : 0, T(0));
  std::vector<T> gx_row(p.stream_g_input ? L : 0);  // g_input's row, before it is streamed out
  // The current block of the alpha sums (sinabs_fast/alpha_sums.h), in the compute type.
  std::vector<T> am_block(sums ? L : 0, T(0)), as_block(sums && K::synaptic ? L : 0, T(0));
  int64_t in_block = 0;
  // Step t's v_hat and synaptic current: rows of the saved (B, T, N) tensors, or of the (T, L)
  // scratch of the recomputed forward.
  // The scratch comes from the output pool, uninitialised: a zero-filled std::vector of this
  // size is a fresh mapping each call, and its page faults cost more than the whole backward.
  at::Tensor vh_scratch, i_scratch;
  const T* vh_base = p.v_hat ? p.v_hat + b * p.steps * p.N + n0 : nullptr;
  const T* i_base = p.i_seq ? p.i_seq + b * p.steps * p.N + n0 : nullptr;
  int64_t seq_stride = p.N;
  if (p.recompute) {
    const auto opts = at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
    vh_scratch = pooled_empty({p.steps * L}, opts);
    if (K::synaptic && sums) i_scratch = pooled_empty({p.steps * L}, opts);
    recompute_segment<T, K>(p, b, n0, L, vh_scratch.data_ptr<T>(),
                            i_scratch.defined() ? i_scratch.data_ptr<T>() : nullptr);
    vh_base = vh_scratch.data_ptr<T>();
    i_base = i_scratch.defined() ? i_scratch.data_ptr<T>() : nullptr;
    seq_stride = L;
  }

  for (int64_t t = p.steps - 1; t >= 0; --t) {
    const int64_t row = (b * p.steps + t) * p.N + n0;
    const T* vh = vh_base + t * seq_stride;
    if (t > 0) {
      // The rows of the step before, which this loop walks to backwards, one page each at
      // L = 1024: the hardware prefetchers, which stop at page boundaries, would only start on
      // them at their first misses.
      prefetch_row(vh - seq_stride, L);
      if (K::synaptic && sums) prefetch_row(i_base + (t - 1) * seq_stride, L);
    }
    const T* sigma = nullptr;
    if constexpr (K::spiking) {
      if (p.sigma) {
        sigma = p.sigma + row;
      } else {
        surrogate_row<T, K::per_neuron>(p.surrogate, vh, thr, inv_width.data(), sigma_row.data(),
                                        L);
        sigma = sigma_row.data();
      }
    }
    // The current the alpha sums need: i_t, or x_t (norm_input without synaptic current).
    const T* cur = !sums         ? nullptr
                   : K::synaptic ? i_base + t * seq_stride
                                 : (p.norm_input ? p.input.at(b, t, n0) : nullptr);
    const auto step = [&](auto sums_c, auto norm_c) {
      backward_row<T, K, decltype(sums_c)::value, decltype(norm_c)::value>(
          vh, sigma, p.g_spikes.at(b, t, n0), p.g_counts.at(b, 0, n0), p.g_v_hat.at(b, t, n0),
          p.g_i_seq.at(b, t, n0), p.stream_g_input ? gx_row.data() : p.g_input.at(b, t, n0),
          p.lambda_v + off, K::synaptic ? p.lambda_i + off : nullptr, cur, am_block.data(),
          as_block.data(), g_vh_next.data(), p.prm.alpha + poff, p.prm.in_scale + poff,
          K::synaptic ? p.prm.alpha_syn + poff : nullptr, p.prm.spike_thr + poff, amount, min_v,
          p.prm.max_spikes, p.prm.reset_value, p.prm.product_in_float, L);
    };
    if (!sums) {
      step(std::false_type{}, std::false_type{});
    } else if (p.norm_input) {
      step(std::true_type{}, std::true_type{});
    } else {
      step(std::true_type{}, std::false_type{});
    }
    if (p.stream_g_input) stream_row(p.g_input.at(b, t, n0), gx_row.data(), L);
    if (sums && block_closes(++in_block, t)) {
      if (g_am) flush_block(g_am, am_block.data(), L);
      if (g_as) flush_block(g_as, as_block.data(), L);
      in_block = 0;
    }
  }
  if (g_am) {
    // The step before t = 0 is the initial membrane.
    add_initial_membrane_terms(am_block.data(), p.v0 + off, g_vh_next.data(), L);
    flush_block(g_am, am_block.data(), L);
  }
  if (g_as) {
    const T* alpha_syn = p.prm.alpha_syn + poff;
    for (int64_t k = 0; k < L; ++k) {
      g_as[k] /= static_cast<double>(neuron_param<K::per_neuron>(alpha_syn, k));
    }
  }
  if (p.stream_g_input) stream_fence();
}

}  // namespace
}  // namespace sinabs_fast
