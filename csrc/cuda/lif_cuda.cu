// CUDA kernels of the fused LIF-family ops. One thread per (batch, neuron) runs the whole time
// loop with its state in registers; in the (B, T, N) layout neighbouring threads touch
// neighbouring neurons, so every load and store of a step is coalesced without any transpose.
// The per-element math is the one of the CPU kernels (sinabs_fast/neuron.h, surrogate.h) and the
// build passes -fmad=false, so both devices compute the same roundings in the same order.
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

// One neuron's parameters, loaded once into registers for all T steps (both kernels).
template <typename T>
struct NeuronValues {
  T alpha, in_scale, thr, amount;
  T spike_thr;         // thr, or 1 / thr (MultiByReciprocal)
  T alpha_syn, min_v;  // 0 without synaptic current / min_v_mem
};

template <typename K, typename T>
__device__ SF_INLINE NeuronValues<T> load_neuron(const NeuronArgs<T>& a, int64_t b, int64_t n) {
  const int64_t i = K::per_neuron ? b * a.row_stride + n : 0;  // one value, or a (shared) row
  return {ld(a.alpha + i),
          ld(a.in_scale + i),
          ld(a.thr + i),
          ld(a.amount + i),
          ld(a.spike_thr + i),
          K::synaptic ? ld(a.alpha_syn + i) : T(0),
          K::clamped ? ld(a.min_v + i) : T(0)};
}

// ------------------------------------------------------------------------------------------------
// Forward

template <typename T, typename K>
__global__ void __launch_bounds__(kThreads, min_blocks_per_sm<T>(32))
    lif_forward_kernel(const ForwardArgs<T> p) {
  const auto [idx, b, n] = thread_neuron(p.N);
  if (idx >= p.batch * p.N) return;
  // The parameters and the states stay in registers for all T steps.
  const auto [alpha, in_scale, thr, amount, spike_thr, alpha_syn, min_v] =
      load_neuron<K>(p.prm, b, n);
  T v = p.v[idx];
  T isyn = K::synaptic ? p.i[idx] : T(0);
  float count = 0.0f;
  int64_t row = b * p.steps * p.N + n;  // (b, t, n) of the outputs for t = 0
  const T* x = p.x.at(b, 0, n);         // the input by its own strides
  for (int64_t t = 0; t < p.steps; ++t, row += p.N, x += p.x.t_stride) {
    T cur = ld(x);
    if constexpr (K::synaptic) {
      cur = synaptic_update(isyn, cur, alpha_syn);
      isyn = cur;
      if (p.i_seq) p.i_seq[row] = cur;
    }
    const T vh = membrane_update(v, cur, alpha, in_scale);
    const StepResult<T> r = spike_reset_clamp<K::spike, K::reset, K::clamped>(
        vh, spike_thr, p.prm.max_spikes, amount, p.prm.reset_value, min_v, p.prm.product_in_float);
    v = r.v_next;
    if (p.v_hat) p.v_hat[row] = vh;
    if constexpr (K::spiking) {
      p.spikes[row] = r.spikes;
      count += r.spikes;
    }
  }
  p.v[idx] = v;
  if constexpr (K::synaptic) p.i[idx] = isyn;
  if constexpr (K::spiking) p.counts[idx] = count;
}

// ------------------------------------------------------------------------------------------------
// Backward: the reverse-time recurrence of docs/semantics.md, section 4, recomputing spikes, reset
// and clamp masks from the saved pre-spike membrane v_hat (the same steps as backward_row and
// backward_segment in cpu/lif_segments.h, with the adjoint states and the alpha sums in
// registers).

template <typename T, typename K>
__global__ void __launch_bounds__(kThreads, min_blocks_per_sm<T>(K::synaptic ? 40 : 32))
    lif_backward_kernel(const BackwardArgs<T> p) {
  const auto [idx, b, n] = thread_neuron(p.N);
  if (idx >= p.batch * p.N) return;
  const auto [alpha, in_scale, thr, amount, spike_thr, alpha_syn, min_v] =
      load_neuron<K>(p.prm, b, n);
  const T g_count = ld(p.g_counts.at(b, 0, n));
  const bool alpha_mem_grad = p.g_alpha_mem != nullptr;
  const bool alpha_syn_grad = p.g_alpha_syn != nullptr;
  T lambda_v = p.lambda_v[idx];
  T lambda_i = K::synaptic ? p.lambda_i[idx] : T(0);
  // The alpha sums (sinabs_fast/alpha_sums.h, as the CPU kernels sum them): block sums in the
  // compute type, totals in float64; g_vh_next is the gradient at v_hat of the step after.
  T am_block = T(0), as_block = T(0), g_vh_next = T(0);
  double g_am = 0.0, g_as = 0.0;
  int64_t in_block = 0;

  if (p.steps > 0) {
    int64_t row = (b * p.steps + p.steps - 1) * p.N + n;  // (b, T - 1, n)
    // The state of step t is recomputed from v_hat_t, and carried to the next (earlier)
    // iteration as the state of step t - 1.
    T vh = ld(p.v_hat + row);
    StepResult<T> r = spike_reset_clamp<K::spike, K::reset, K::clamped>(
        vh, spike_thr, p.prm.max_spikes, amount, p.prm.reset_value, min_v, p.prm.product_in_float);
    for (int64_t t = p.steps - 1; t >= 0; --t, row -= p.N) {
      if (t >= kPrefetchSteps) {  // the two rows every step reads, kPrefetchSteps ahead
        prefetch_l2(p.g_spikes.at(b, t - kPrefetchSteps, n));
        prefetch_l2(p.v_hat + row - kPrefetchSteps * p.N);
      }
      T sig = T(0);
      if constexpr (K::spiking) {
        sig = p.sigma ? ld(p.sigma + row) : surrogate_grad(p.surrogate, vh, thr);
      }
      const T g_out = ld(p.g_spikes.at(b, t, n)) + g_count;
      const T g = v_hat_adjoint<K::spike, K::reset>(r, lambda_v, g_out, ld(p.g_v_hat.at(b, t, n)),
                                                    sig, amount);
      lambda_v = g * alpha;
      const T g_i = g * in_scale + ld(p.g_i_seq.at(b, t, n));
      T total = T(0);
      if constexpr (K::synaptic) {
        total = g_i + lambda_i;
        const T g_sum = total * alpha_syn;
        *p.g_input.at(b, t, n) = g_sum;
        lambda_i = g_sum;
      } else {
        *p.g_input.at(b, t, n) = g_i;
      }
      StepResult<T> r_prev = r;
      T vh_prev = vh;
      if (t > 0) {
        vh_prev = ld(p.v_hat + row - p.N);
        r_prev = spike_reset_clamp<K::spike, K::reset, K::clamped>(
            vh_prev, spike_thr, p.prm.max_spikes, amount, p.prm.reset_value, min_v,
            p.prm.product_in_float);
      }
      if (alpha_mem_grad) {
        // v_t meets the gradient at v_hat_{t+1} (- i_t * g_vhat_t with norm_input).
        if (p.norm_input) {
          const T cur = K::synaptic ? ld(p.i_seq + row) : ld(p.input.at(b, t, n));
          am_block += alpha_mem_term<true>(r.v_next, g_vh_next, cur, g);
        } else {
          am_block += alpha_mem_term<false>(r.v_next, g_vh_next, T(0), g);
        }
        g_vh_next = g;
      }
      if constexpr (K::synaptic) {
        // dL/dalpha_syn += (i_{t-1} + x_t) * total = i_t / alpha_syn * total (divided below)
        if (alpha_syn_grad) as_block += ld(p.i_seq + row) * total;
      }
      if ((alpha_mem_grad || alpha_syn_grad) && block_closes(++in_block, t)) {
        close_block(g_am, am_block);
        close_block(g_as, as_block);
        in_block = 0;
      }
      vh = vh_prev;
      r = r_prev;
    }
  }
  p.lambda_v[idx] = lambda_v;
  if constexpr (K::synaptic) p.lambda_i[idx] = lambda_i;
  if (alpha_mem_grad) {
    am_block += initial_membrane_term(ld(p.v0 + idx), g_vh_next);  // the step before t = 0
    close_block(g_am, am_block);
    p.g_alpha_mem[idx] = g_am;
  }
  if constexpr (K::synaptic) {
    if (alpha_syn_grad) p.g_alpha_syn[idx] = g_as / static_cast<double>(alpha_syn);
  }
}

}  // namespace

// The launches' names, in the error for an unsupported dtype.
constexpr char kLifForwardCuda[] = "lif_forward_cuda";
constexpr char kLifBackwardCuda[] = "lif_backward_cuda";

ForwardResult OnCuda::launch(const ForwardCall& c) {
  with_lif_kernel<kLifForwardCuda>(c, c.x, [&](const auto& p, auto traits) {
    launch_per_neuron(lif_forward_kernel<scalar_of<decltype(p)>, decltype(traits)>, p);
  });
  return c.result();
}

BackwardResult OnCuda::launch(const BackwardCall& c) {
  TORCH_CHECK(!c.recompute,
              "sinabs_fast: the CUDA backward reads the saved v_hat (keep_v_hat=True); only the "
              "CPU backward recomputes it");
  with_lif_kernel<kLifBackwardCuda>(c, c.v_hat, [&](const auto& p, auto traits) {
    launch_per_neuron(lif_backward_kernel<scalar_of<decltype(p)>, decltype(traits)>, p);
  });
  return c.result();
}

TORCH_LIBRARY_IMPL(sinabs_fast, CUDA, m) {
  register_entry<kLifForward, &lif_forward<OnCuda>>(m);
  register_entry<kLifBackward, &lif_backward<OnCuda>>(m);
}

}  // namespace sinabs_fast
