// Per-element math of the adaptive LIF neuron (ALIF), shared by the CPU and CUDA kernels. One
// step of sinabs 3.1.3's alif_forward_single (docs/semantics.md, section 2), operation for
// operation:
//
//   i   = alpha_syn * (i + x)   or   x         (synaptic_update)
//   i   = (1 - alpha_mem) * i                  (norm_input: the stored current is rescaled too)
//   v   = alpha_mem * v + i                    (membrane_update with in_scale 1)
//   thr = b0 + adapt_scale * b                 (adaptive_threshold)
//   s   = spike(v, thr); v = reset(v, s, thr or subtract_value)
//   b   = rho * b + (1 - rho) * s              (adaptation_update)
//   v   = relu(v - min_v_mem) + min_v_mem
//
// Spike generation, reset and clamp are the LIF family's (neuron.h); only the threshold moves.
#pragma once

#include "sinabs_fast/neuron.h"

namespace sinabs_fast {

// thr = b0 + adapt_scale * b, rounded after the product and after the sum as torch does.
template <typename T>
SF_HOST_DEVICE SF_INLINE T adaptive_threshold(T b0, T adapt_scale, T b) {
  const T bump = adapt_scale * b;
  return b0 + bump;
}

// b = rho * b + (1 - rho) * s. The spikes are float32, so (1 - rho) * s is a float32 product
// unless rho is a float64 tensor (product_in_float says which, as for reset_product).
template <typename T>
SF_HOST_DEVICE SF_INLINE T adaptation_update(T b, float s, T rho, T one_minus_rho,
                                             bool product_in_float) {
  const T decayed = rho * b;
  const T added = reset_product(s, one_minus_rho, product_in_float);
  return decayed + added;
}

// The adaptive neuron's parameters at one neuron, in the compute type. amount is a
// subtract_value; without one (FIXED false below) MembraneSubtract subtracts the adaptive
// threshold. That choice is a template argument: a per-element select between a computed value
// and a load keeps GCC from vectorising the CPU loops.
template <typename T>
struct AdaptiveParams {
  T alpha, in_scale, alpha_syn, rho, one_minus_rho, b0, adapt_scale, amount, min_v;
  bool reset_in_float, adapt_in_float;  // float32 products (see reset_product)
  float max_spikes;
  T reset_value;
};

// Everything one step computes after the pre-spike membrane v_hat, from v_hat and the incoming
// adaptation state b. The backward recomputes it from the saved v_hat and b sequence.
template <typename T>
struct AdaptiveStep {
  StepResult<T> neuron;  // spikes, post-clamp membrane, reset and clamp masks
  T thr;                 // the threshold the spikes were generated with
  T amount;              // what the subtract reset took away per spike
  T b_next;
};

template <SpikeKind SK, ResetKind RK, bool MIN, bool FIXED, typename T>
SF_HOST_DEVICE SF_INLINE AdaptiveStep<T> adaptive_step(T v_hat, T b, const AdaptiveParams<T>& p) {
  AdaptiveStep<T> r;
  r.thr = adaptive_threshold(p.b0, p.adapt_scale, b);
  r.amount = FIXED ? p.amount : r.thr;
  r.neuron = spike_reset_clamp<SK, RK, MIN>(v_hat, r.thr, p.max_spikes, r.amount, p.reset_value,
                                            p.min_v, p.reset_in_float);
  r.b_next = adaptation_update(b, r.neuron.spikes, p.rho, p.one_minus_rho, p.adapt_in_float);
  return r;
}

// ---------------------------------------------------------------------------------------------
// Backward of one step. Incoming: lambda_v / lambda_b, the gradients at the step's outgoing
// membrane and adaptation state (from the step after it, the final state, or the b recording);
// grad_out = dL/ds (spike output and counts); grad_v_hat from a v_hat output; sigma, the
// surrogate at (v_hat, thr). sinabs' spike functions give the threshold no gradient; the
// threshold still gets one through the subtract reset (v - s * thr), which reaches b.

template <typename T>
struct AdaptiveAdjoint {
  T g_v_hat;   // dL/dv_hat
  T lambda_b;  // dL/db at the incoming adaptation state
  T g_rho;     // this step's term of dL/drho
};

template <SpikeKind SK, ResetKind RK, bool FIXED, typename T>
SF_HOST_DEVICE SF_INLINE AdaptiveAdjoint<T> adaptive_adjoint(const AdaptiveStep<T>& r, T b,
                                                             T lambda_v, T lambda_b, T grad_out,
                                                             T grad_v_hat, T sigma,
                                                             const AdaptiveParams<T>& p) {
  const T s = static_cast<T>(r.neuron.spikes);
  // The adaptation update is differentiable in s (its (1 - rho) * s term) and in rho.
  const T g_spikes = grad_out + p.one_minus_rho * lambda_b;
  AdaptiveAdjoint<T> a;
  a.g_v_hat = v_hat_adjoint<SK, RK>(r.neuron, lambda_v, g_spikes, grad_v_hat, sigma, r.amount);
  T g_thr = T(0);
  if constexpr (RK == ResetKind::Subtract && !FIXED) {
    g_thr = -(s * (r.neuron.clamp_mask * lambda_v));
  }
  a.lambda_b = p.rho * lambda_b + p.adapt_scale * g_thr;
  a.g_rho = lambda_b * (b - s);
  return a;
}

}  // namespace sinabs_fast
