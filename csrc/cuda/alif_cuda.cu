// CUDA kernels of the fused adaptive LIF (ALIF) ops: one thread per (batch, neuron) runs the
// whole time loop with its states and parameters in registers, as the LIF kernels do
// (lif_cuda.cu); loads and stores of a step are coalesced in the (B, T, N) layout. The per-element
// math is the CPU kernels' (sinabs_fast/adaptive.h), built with -fmad=false.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "device_args.cuh"
#include "device_cuda.cuh"
#include "sinabs_fast/dispatch.h"

namespace sinabs_fast {
namespace {

template <typename T, typename K>
__global__ void __launch_bounds__(kThreads, min_blocks_per_sm<T>(K::synaptic ? 40 : 32))
    alif_forward_kernel(const AlifForwardArgs<T> p) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= p.batch * p.N) return;
  const int64_t b = idx / p.N;
  const int64_t n = idx - b * p.N;
  const AdaptiveParams<T> prm = p.prm.at(b, n);
  T v = p.v[idx];
  T isyn = K::synaptic ? p.i[idx] : T(0);
  T adapt = p.b[idx];
  float count = 0.0f;
  int64_t row = b * p.steps * p.N + n;  // (b, t, n) for t = 0
  for (int64_t t = 0; t < p.steps; ++t, row += p.N) {
    T cur = ld(p.x + row);
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
// states and the alpha sums in registers.

template <typename T, typename K>
__global__ void __launch_bounds__(kThreads) alif_backward_kernel(const AlifBackwardArgs<T> p) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= p.batch * p.N) return;
  const int64_t b = idx / p.N;
  const int64_t n = idx - b * p.N;
  const AdaptiveParams<T> prm = p.prm.at(b, n);
  const T g_count = ld(p.g_counts.at(b, 0, n));
  const bool sums = p.g_rho != nullptr;
  T lambda_v = p.lambda_v[idx];
  T lambda_i = K::synaptic ? p.lambda_i[idx] : T(0);
  T lambda_b = p.lambda_b[idx];
  T g_vh_next = T(0);
  double g_am = 0.0, g_as = 0.0, g_rho = 0.0;
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
    p.g_input[row] = g_x;
    if (sums) {
      g_rho += static_cast<double>(a.g_rho);
      g_am += static_cast<double>(r.neuron.v_next) * static_cast<double>(g_vh_next);
      g_vh_next = a.g_v_hat;
      T raw = ld(p.x + row);
      if constexpr (K::synaptic) {
        const T sum_in = (t > 0 ? ld(p.i_seq + row - p.N) : ld(p.i0 + idx)) + raw;
        g_as += static_cast<double>(g_raw) * static_cast<double>(sum_in);
        raw = prm.alpha_syn * sum_in;
      }
      if (p.norm_input) g_am -= static_cast<double>(g_cur) * static_cast<double>(raw);
    }
  }
  p.lambda_v[idx] = lambda_v;
  if constexpr (K::synaptic) p.lambda_i[idx] = lambda_i;
  p.lambda_b[idx] = lambda_b;
  if (sums) {
    g_am += static_cast<double>(ld(p.v0 + idx)) * static_cast<double>(g_vh_next);
    p.g_alpha_mem[idx] = g_am;
    p.g_rho[idx] = g_rho;
    if constexpr (K::synaptic) p.g_alpha_syn[idx] = g_as;
  }
}

}  // namespace

AlifForwardResult OnCuda::launch(const AlifForwardCall& c) {
  const int64_t items = c.batch * c.N;
  if (items == 0) return c.result();
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(c.x.scalar_type(), "alif_forward_cuda", [&] {
    const AlifForwardArgs<scalar_t> p = c.args<scalar_t>();
    dispatch_adaptive(c.opt.spike, c.opt.reset, c.syn, c.prm.min_v_mem.defined(),
                      !c.prm.amount_is_threshold, [&](auto traits) {
                        alif_forward_kernel<scalar_t, decltype(traits)>
                            <<<num_blocks(items), kThreads, 0, stream>>>(p);
                        C10_CUDA_KERNEL_LAUNCH_CHECK();
                      });
  });
  return c.result();
}

AlifBackwardResult OnCuda::launch(const AlifBackwardCall& c) {
  const int64_t items = c.batch * c.N;
  if (items == 0) return c.result();
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(c.v_hat.scalar_type(), "alif_backward_cuda", [&] {
    const AlifBackwardArgs<scalar_t> p = c.args<scalar_t>();
    dispatch_adaptive(c.opt.spike, c.opt.reset, c.syn, c.prm.min_v_mem.defined(),
                      !c.prm.amount_is_threshold, [&](auto traits) {
                        alif_backward_kernel<scalar_t, decltype(traits)>
                            <<<num_blocks(items), kThreads, 0, stream>>>(p);
                        C10_CUDA_KERNEL_LAUNCH_CHECK();
                      });
  });
  return c.result();
}

TORCH_LIBRARY_IMPL(sinabs_fast, CUDA, m) {
  register_entry<kAlifForward, &alif_forward<OnCuda>>(m);
  register_entry<kAlifBackward, &alif_backward<OnCuda>>(m);
}

}  // namespace sinabs_fast
