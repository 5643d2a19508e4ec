// Per-element neuron math of the LIF family (IAF = LIF with alpha_mem = 1), shared by the CPU
// and CUDA kernels. Every function reproduces one line of sinabs 3.1.3's per-step update
// (docs/semantics.md, sections 1 and 3) with the same operation order, so that the
// fused kernels are bit-identical to sinabs. Never let the compiler contract a*b+c into an FMA:
// the build passes -ffp-contract=off (CPU) and -fmad=false (CUDA).
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "sinabs_fast/macros.h"

namespace sinabs_fast {

// Spike generation. Multi covers MaxSpike(n) with max_spikes = n (MultiSpike uses +inf, for which
// the clamp is the identity, also for NaN). None is ExpLeak: the output is the membrane itself.
enum class SpikeKind : int64_t {
  None = 0,
  Multi = 1,
  Single = 2,
  // Not in the op schema: the host picks it for Multi when every threshold is a power of two and
  // passes 1 / threshold. v * (1 / thr) is then the same real number as v / thr, rounded once,
  // so bit-identical, and the loop loses its most expensive operation, the division.
  MultiByReciprocal = 3,
};

// Reset mechanism after a spike.
enum class ResetKind : int64_t { Subtract = 0, ToValue = 1 };

// torch.trunc. Where the target has SSE4.1 (the CPU kernels' AVX2 build) it is one vector
// instruction; the baseline build calls libm.
SF_HOST_DEVICE SF_INLINE float trunc_exact(float x) { return truncf(x); }

SF_HOST_DEVICE SF_INLINE double trunc_exact(double x) { return trunc(x); }

// MultiSpike / MaxSpike forward from the quotient q = v / thr: (v > 0) * trunc(q).float(), then
// clamp(max=max_spikes). The mask is a multiplication, not a select: NaN and -0.0 propagate
// exactly as in torch.
template <typename T>
SF_HOST_DEVICE SF_INLINE float multi_spike_of_quotient(T v, T q, float max_spikes) {
  const float count = static_cast<float>(trunc_exact(q));
  const float s = static_cast<float>(v > T(0)) * count;
  return s > max_spikes ? max_spikes : s;
}

template <typename T>
SF_HOST_DEVICE SF_INLINE float multi_spike(T v, T thr, float max_spikes) {
  return multi_spike_of_quotient(v, v / thr, max_spikes);
}

// SingleSpike forward: (v - thr >= 0).float().
template <typename T>
SF_HOST_DEVICE SF_INLINE float single_spike(T v, T thr) {
  return static_cast<float>(v - thr >= T(0));
}

// `thr` is the threshold, or its reciprocal for MultiByReciprocal.
template <SpikeKind SK, typename T>
SF_HOST_DEVICE SF_INLINE float spike(T v, T thr, float max_spikes) {
  if constexpr (SK == SpikeKind::Single) {
    return single_spike(v, thr);
  } else if constexpr (SK == SpikeKind::MultiByReciprocal) {
    return multi_spike_of_quotient(v, v * thr, max_spikes);
  } else {
    return multi_spike(v, thr, max_spikes);
  }
}

// s * amount, rounded as torch rounds it: spikes are float32, so the product is float32 unless the
// amount is a float64 tensor with dimensions (then torch promotes the product to float64).
template <typename T>
SF_HOST_DEVICE SF_INLINE T reset_product(float s, T amount, bool product_in_float) {
  if constexpr (std::is_same<T, float>::value) {
    return s * amount;
  } else {
    return product_in_float ? static_cast<T>(s * static_cast<float>(amount))
                            : static_cast<T>(s) * amount;
  }
}

// MembraneSubtract: v - s * amount.  MembraneReset: v * (s == 0).float() + reset_value (sinabs adds
// reset_value to every neuron, spiking or not; reproduced on purpose).
template <ResetKind RK, typename T>
SF_HOST_DEVICE SF_INLINE T reset(T v, float s, T amount, T reset_value, bool product_in_float) {
  if constexpr (RK == ResetKind::Subtract) {
    return v - reset_product(s, amount, product_in_float);
  } else {
    return v * static_cast<T>(s == 0.0f) + reset_value;
  }
}

// min_v_mem clamp as relu(v - m) + m: three roundings, not max(v, m). torch's relu keeps NaN.
template <typename T>
SF_HOST_DEVICE SF_INLINE T clamp_min(T v, T m) {
  const T d = v - m;
  return ((d > T(0) || d != d) ? d : T(0)) + m;
}

// The clamp's gradient mask as torch's relu backward: 0 where v - m <= 0, else 1 (NaN passes).
template <typename T>
SF_HOST_DEVICE SF_INLINE T clamp_min_mask(T v, T m) {
  return static_cast<T>(!(v - m <= T(0)));
}

// Synaptic current: i = alpha_syn * (i + x) (the input is decayed in the step it arrives).
template <typename T>
SF_HOST_DEVICE SF_INLINE T synaptic_update(T i, T x, T alpha_syn) {
  return alpha_syn * (i + x);
}

// Membrane update: v = alpha * v + in_scale * i, with in_scale = (1 - alpha) for norm_input and
// exactly 1 otherwise (multiplying by 1 is exact, so one formula serves both).
template <typename T>
SF_HOST_DEVICE SF_INLINE T membrane_update(T v, T i, T alpha, T in_scale) {
  const T u = in_scale * i;
  const T decayed = alpha * v;
  return decayed + u;
}

// Everything the forward computes from the pre-spike membrane v_hat of one step. The backward
// recomputes it from the saved v_hat instead of storing spikes, masks or post-reset states.
template <typename T>
struct StepResult {
  float spikes;  // emitted spikes (float32, as sinabs)
  T v_next;      // post-reset, post-clamp membrane (the state carried to the next step)
  T reset_mask;  // d v_reset / d v_hat through the state path: 1 (subtract) or (s == 0) (reset)
  T clamp_mask;  // d v_next / d v_reset: 1, or (v_reset - m > 0)
};

template <SpikeKind SK, ResetKind RK, bool MIN, typename T>
SF_HOST_DEVICE SF_INLINE StepResult<T> spike_reset_clamp(T v_hat, T thr, float max_spikes,
                                                         T amount, T reset_value, T min_v,
                                                         bool product_in_float) {
  StepResult<T> r;
  T v = v_hat;
  if constexpr (SK == SpikeKind::None) {
    r.spikes = 0.0f;
    r.reset_mask = T(1);
  } else {
    r.spikes = spike<SK>(v_hat, thr, max_spikes);
    v = reset<RK>(v_hat, r.spikes, amount, reset_value, product_in_float);
    r.reset_mask = RK == ResetKind::Subtract ? T(1) : static_cast<T>(r.spikes == 0.0f);
  }
  if constexpr (MIN) {
    r.clamp_mask = clamp_min_mask(v, min_v);
    v = clamp_min(v, min_v);
  } else {
    r.clamp_mask = T(1);
  }
  r.v_next = v;
  return r;
}

}  // namespace sinabs_fast

namespace sinabs_fast {

// ---------------------------------------------------------------------------------------------
// Backward (BPTT) of one step, docs/semantics.md, section 4. lambda_v / lambda_i are the
// gradients arriving at the step's outgoing membrane / synaptic state from the step after it (or
// from the final state).

// Gradient at the pre-spike membrane v_hat.
//   grad_out:   dL/ds_t (the spike output and the spike counts), or dL/dv_hat for ExpLeak's output
//   grad_v_hat: dL/dv_hat through the pre-spike membrane output (recordings); 0 if unused
//   sigma:      the surrogate at v_hat (unused without spikes)
template <SpikeKind SK, ResetKind RK, typename T>
SF_HOST_DEVICE SF_INLINE T v_hat_adjoint(const StepResult<T>& r, T lambda_v, T grad_out,
                                         T grad_v_hat, T sigma, T amount) {
  const T g_reset = r.clamp_mask * lambda_v;  // at the post-reset, pre-clamp membrane
  T g;
  if constexpr (SK == SpikeKind::None) {
    g = g_reset + grad_out;
  } else if constexpr (RK == ResetKind::Subtract) {
    // The subtract reset is differentiable in s: d(v - s*amount)/ds = -amount.
    const T g_spikes = grad_out + (-g_reset) * amount;
    g = g_reset + g_spikes * sigma;
  } else {
    // v * (s == 0) + reset_value: the mask is a constant for autograd.
    g = g_reset * r.reset_mask + grad_out * sigma;
  }
  return g + grad_v_hat;
}

}  // namespace sinabs_fast
