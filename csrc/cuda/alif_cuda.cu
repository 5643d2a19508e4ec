// CUDA kernels of the fused adaptive LIF (ALIF) ops: one thread per (batch, neuron) runs the
// whole time loop with its states and parameters in registers, as the LIF kernels do
// (lif_cuda.cu); loads and stores of a step are coalesced in the (B, T, N) layout. The per-element
// math is the CPU kernels' (sinabs_fast/adaptive.h), built with -fmad=false.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "device_args.cuh"
#include "device_cuda.cuh"
#include "sinabs_fast/alpha_sums.h"
#include "sinabs_fast/dispatch.h"

namespace sinabs_fast {
namespace {

template <typename T, typename K>
__global__ void __launch_bounds__(kThreads, min_blocks_per_sm<T>(K::synaptic ? 40 : 32))
    alif_forward_kernel(const AlifForwardArgs<T> p) {
  const auto [idx, b, n] = thread_neuron(p.N);
  if (idx >= p.batch * p.N) return;
  const AdaptiveParams<T> prm = p.prm.at(b, n);
  T v = p.v[idx];
  T isyn = K::synaptic ? p.i[idx] : T(0);
  T adapt = p.b[idx];
  float count = 0.0f;
  int64_t row = b * p.steps * p.N + n;  // (b, t, n) of the outputs for t = 0
  const T* x = p.x.at(b, 0, n);         // the input by its own strides
  for (int64_t t = 0; t < p.steps; ++t, row += p.N, x += p.x.t_stride) {
    T cur = ld(x);
    if constexpr (K::synaptic) cur = synaptic_update(isyn, cur, prm.alpha_syn);
    cur = prm.in_scale *
          cur;  // norm_input rescales the stored current too (docs/semantics.md, section 2)
    if constexpr (K::synaptic) {
      isyn = cur;
      if (p.i_seq) p.i_seq[row] = cur;
    }
    const T vh = membrane_update(v, cur, prm.alpha, T(1));
    const AdaptiveStep<T> r =
        adaptive_step<K::spike, K::reset, K::clamped, K::fixed_amount>(vh, adapt, prm);
    v = r.neuron.v_next;
    adapt = r.b_next;
    if (p.v_hat) p.v_hat[row] = vh;
    if (p.b_seq) p.b_seq[row] = adapt;
    p.spikes[row] = r.neuron.spikes;
    count += r.neuron.spikes;
  }
  p.v[idx] = v;
  if constexpr (K::synaptic) p.i[idx] = isyn;
  p.b[idx] = adapt;
  p.counts[idx] = count;
}

// ------------------------------------------------------------------------------------------------
// Backward: the reverse-time recurrence of cpu/alif_cpu.cpp's alif_backward_row, with the adjoint
// states and the alpha sums in registers. The alpha sums are the CPU's (sinabs_fast/alpha_sums.h):
// each step's terms in the compute type into block sums, folded into float64 totals every
// kSumBlock steps, so that both devices round them alike.

template <typename T, typename K>
__global__ void __launch_bounds__(kThreads) alif_backward_kernel(const AlifBackwardArgs<T> p) {
  const auto [idx, b, n] = thread_neuron(p.N);
  if (idx >= p.batch * p.N) return;
  const AdaptiveParams<T> prm = p.prm.at(b, n);
  const T g_count = ld(p.g_counts.at(b, 0, n));
  const bool sums = p.g_rho != nullptr;
  const T norm = p.norm_input ? T(1) : T(0);
  T lambda_v = p.lambda_v[idx];
  T lambda_i = K::synaptic ? p.lambda_i[idx] : T(0);
  T lambda_b = p.lambda_b[idx];
  T g_vh_next = T(0);  // the gradient at v_hat of the step after
  T am_block = T(0), as_block = T(0), rho_block = T(0);
  double g_am = 0.0, g_as = 0.0, g_rho = 0.0;
  int64_t in_block = 0;
  int64_t row = (b * p.steps + p.steps - 1) * p.N + n;  // (b, T - 1, n)
  for (int64_t t = p.steps - 1; t >= 0; --t, row -= p.N) {
    const T b_prev = t > 0 ? ld(p.b_seq + row - p.N) : ld(p.b_init + idx);
    const T vh = ld(p.v_hat + row);
    const AdaptiveStep<T> r =
        adaptive_step<K::spike, K::reset, K::clamped, K::fixed_amount>(vh, b_prev, prm);
    const T sigma = surrogate_grad(p.surrogate, vh, r.thr);
    const T lb = lambda_b + ld(p.g_b_seq.at(b, t, n));
    const AdaptiveAdjoint<T> a = adaptive_adjoint<K::spike, K::reset, K::fixed_amount>(
        r, b_prev, lambda_v, lb, ld(p.g_spikes.at(b, t, n)) + g_count, ld(p.g_v_hat.at(b, t, n)),
        sigma, prm);
    lambda_v = a.g_v_hat * prm.alpha;
    lambda_b = a.lambda_b;
    T g_cur = a.g_v_hat + ld(p.g_i_seq.at(b, t, n));
    if constexpr (K::synaptic) g_cur = g_cur + lambda_i;
    const T g_raw = g_cur * prm.in_scale;
    T g_x = g_raw;
    if constexpr (K::synaptic) {
      g_x = g_raw * prm.alpha_syn;
      lambda_i = g_x;
    }
    *p.g_input.at(b, t, n) = g_x;
    if (sums) {
      rho_block += a.g_rho;
      // The current before norm_input's rescaling: alpha_syn * (i_{t-1} + x_t), or x_t.
      T raw = ld(p.x.at(b, t, n));
      if constexpr (K::synaptic) {
        const T sum_in = (t > 0 ? ld(p.i_seq + row - p.N) : ld(p.i0 + idx)) + raw;
        as_block += g_raw * sum_in;
        raw = prm.alpha_syn * sum_in;
      }
      am_block += adaptive_alpha_mem_term(r.neuron.v_next, g_vh_next, norm, g_cur, raw);
      g_vh_next = a.g_v_hat;
      if (block_closes(++in_block, t)) {
        close_block(g_rho, rho_block);
        close_block(g_am, am_block);
        close_block(g_as, as_block);
        in_block = 0;
      }
    }
  }
  p.lambda_v[idx] = lambda_v;
  if constexpr (K::synaptic) p.lambda_i[idx] = lambda_i;
  p.lambda_b[idx] = lambda_b;
  if (sums) {
    am_block += initial_membrane_term(ld(p.v0 + idx), g_vh_next);  // the step before t = 0
    close_block(g_am, am_block);
    p.g_alpha_mem[idx] = g_am;
    p.g_rho[idx] = g_rho;
    if constexpr (K::synaptic) p.g_alpha_syn[idx] = g_as;
  }
}

}  // namespace

// The launches' names, in the error for an unsupported dtype.
constexpr char kAlifForwardCuda[] = "alif_forward_cuda";
constexpr char kAlifBackwardCuda[] = "alif_backward_cuda";

AlifForwardResult OnCuda::launch(const AlifForwardCall& c) {
  with_alif_kernel<kAlifForwardCuda>(c, c.x, [&](const auto& p, auto traits) {
    launch_per_neuron(alif_forward_kernel<scalar_of<decltype(p)>, decltype(traits)>, p);
  });
  return c.result();
}

AlifBackwardResult OnCuda::launch(const AlifBackwardCall& c) {
  with_alif_kernel<kAlifBackwardCuda>(c, c.v_hat, [&](const auto& p, auto traits) {
    launch_per_neuron(alif_backward_kernel<scalar_of<decltype(p)>, decltype(traits)>, p);
  });
  return c.result();
}

TORCH_LIBRARY_IMPL(sinabs_fast, CUDA, m) {
  register_entry<kAlifForward, &alif_forward<OnCuda>>(m);
  register_entry<kAlifBackward, &alif_backward<OnCuda>>(m);
}

}  // namespace sinabs_fast
