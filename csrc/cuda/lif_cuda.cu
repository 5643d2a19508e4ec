// CUDA kernels of the fused LIF-family ops. One thread per (batch, neuron) runs the whole time
// loop with its state in registers; in the (B, T, N) layout neighbouring threads touch
// neighbouring neurons, so every load and store of a step is coalesced without any transpose.
// The per-element math is the one of the CPU kernels (sinabs_fast/neuron.h, surrogate.h) and the
// build passes -fmad=false, so both devices compute the same roundings in the same order.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
// at::cuda::getCurrentCUDAStream (at::cuda re-exports c10::cuda). Not ATen/cuda/CUDAContext.h:
// that one also needs the cuBLAS/cuSPARSE/cuSOLVER headers, which a minimal toolkit lacks.
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "../lif_op.h"
#include "device_args.cuh"
#include "sinabs_fast/dispatch.h"

namespace sinabs_fast {
namespace {

// One neuron's parameters, loaded once into registers for all T steps (both kernels).
template <typename T>
struct NeuronValues {
  T alpha, in_scale, thr, amount;
  T spike_thr;  // thr, or 1 / thr (MultiByReciprocal)
  T alpha_syn, min_v;  // 0 without synaptic current / min_v_mem
};

template <bool SYN, bool MIN, bool PN, typename T>
__device__ SF_INLINE NeuronValues<T> load_neuron(const NeuronArgs<T>& a, int64_t b, int64_t n) {
  const int64_t i = PN ? b * a.row_stride + n : 0;  // one value, or a (shared) row
  return {ld(a.alpha + i),     ld(a.in_scale + i), ld(a.thr + i),
          ld(a.amount + i),    ld(a.spike_thr + i), SYN ? ld(a.alpha_syn + i) : T(0),
          MIN ? ld(a.min_v + i) : T(0)};
}

// ------------------------------------------------------------------------------------------------
// Forward

template <typename T, SpikeKind SK, ResetKind RK, bool SYN, bool MIN, bool PN>
__global__ void __launch_bounds__(kThreads) lif_forward_kernel(const ForwardArgs<T> p) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= p.batch * p.N) return;
  const int64_t b = idx / p.N;
  const int64_t n = idx - b * p.N;
  // The parameters and the states stay in registers for all T steps.
  const auto [alpha, in_scale, thr, amount, spike_thr, alpha_syn, min_v] =
      load_neuron<SYN, MIN, PN>(p.prm, b, n);
  T v = p.v[idx];
  T isyn = SYN ? p.i[idx] : T(0);
  float count = 0.0f;
  int64_t row = b * p.steps * p.N + n;  // (b, t, n) for t = 0
  for (int64_t t = 0; t < p.steps; ++t, row += p.N) {
    T cur = ld(p.x + row);
    if constexpr (SYN) {
      cur = synaptic_update(isyn, cur, alpha_syn);
      isyn = cur;
      if (p.i_seq) p.i_seq[row] = cur;
    }
    const T vh = membrane_update(v, cur, alpha, in_scale);
    const StepResult<T> r = spike_reset_clamp<SK, RK, MIN>(vh, spike_thr, p.prm.max_spikes, amount,
                                                           p.prm.reset_value, min_v,
                                                           p.prm.product_in_float);
    v = r.v_next;
    if (p.v_hat) p.v_hat[row] = vh;
    if constexpr (SK != SpikeKind::None) {
      p.spikes[row] = r.spikes;
      count += r.spikes;
    }
  }
  p.v[idx] = v;
  if constexpr (SYN) p.i[idx] = isyn;
  if constexpr (SK != SpikeKind::None) p.counts[idx] = count;
}

ForwardResult lif_forward_cuda(const Tensor& input, const Tensor& v_mem,
                               const std::optional<Tensor>& i_syn, const Tensor& alpha_mem,
                               const std::optional<Tensor>& alpha_syn, bool norm_input,
                               const Tensor& threshold, const Tensor& reset_amount,
                               const std::optional<Tensor>& min_v_mem, int64_t spike_kind,
                               double max_spikes, int64_t reset_kind, double reset_value,
                               int64_t /*surrogate_kind*/,
                               at::ArrayRef<double> /*surrogate_params (for the backward)*/,
                               bool keep_v_hat, bool keep_i_syn) {
  check_device(input, "input",
               {{"v_mem", &v_mem},
                {"i_syn", i_syn.has_value() ? &*i_syn : nullptr},
                {"alpha_mem", &alpha_mem},
                {"alpha_syn", alpha_syn.has_value() ? &*alpha_syn : nullptr},
                {"threshold", &threshold},
                {"reset_amount", &reset_amount},
                {"min_v_mem", min_v_mem.has_value() ? &*min_v_mem : nullptr}});
  const at::cuda::CUDAGuard guard(input.device());
  const ForwardCall c = prepare_forward(input, v_mem, i_syn, alpha_mem, alpha_syn, norm_input,
                                        threshold, reset_amount, min_v_mem, spike_kind,
                                        max_spikes, reset_kind, reset_value, keep_v_hat,
                                        keep_i_syn, &cuda_empty);
  const int64_t items = c.batch * c.N;
  if (items == 0) return c.result();
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(c.x.scalar_type(), "lif_forward_cuda", [&] {
    const ForwardArgs<scalar_t> p = c.args<scalar_t>();
    dispatch_neuron(c.opt.spike, c.opt.reset, c.syn, c.prm.min_v_mem.defined(),
                    c.prm.per_neuron, [&](auto sk, auto rk, auto has_syn, auto has_min, auto pn) {
                      lif_forward_kernel<scalar_t, decltype(sk)::value, decltype(rk)::value,
                                         decltype(has_syn)::value, decltype(has_min)::value,
                                         decltype(pn)::value>
                          <<<num_blocks(items), kThreads, 0, stream>>>(p);
                      C10_CUDA_KERNEL_LAUNCH_CHECK();
                    });
  });
  return c.result();
}

// ------------------------------------------------------------------------------------------------
// Backward: the reverse-time recurrence of the semantics note §7, recomputing spikes, reset and
// clamp masks from the saved pre-spike membrane v_hat (the same steps as backward_row/_segment in
// cpu/lif_cpu.cpp, with the adjoint states and the alpha sums in registers).

template <typename T, SpikeKind SK, ResetKind RK, bool SYN, bool MIN, bool PN>
__global__ void __launch_bounds__(kThreads) lif_backward_kernel(const BackwardArgs<T> p) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= p.batch * p.N) return;
  const int64_t b = idx / p.N;
  const int64_t n = idx - b * p.N;
  const auto [alpha, in_scale, thr, amount, spike_thr, alpha_syn, min_v] =
      load_neuron<SYN, MIN, PN>(p.prm, b, n);
  const T g_count = ld(p.g_counts.at(b, 0, n));
  const bool alpha_mem_grad = p.g_alpha_mem != nullptr;
  const bool alpha_syn_grad = p.g_alpha_syn != nullptr;
  T lambda_v = p.lambda_v[idx];
  T lambda_i = SYN ? p.lambda_i[idx] : T(0);
  double g_am = 0.0, g_as = 0.0;

  if (p.steps > 0) {
    int64_t row = (b * p.steps + p.steps - 1) * p.N + n;  // (b, T - 1, n)
    // The state of step t is recomputed from v_hat_t; the alpha_mem gradient also needs the
    // post-reset state of step t - 1, which is then carried to the next (earlier) iteration.
    T vh = ld(p.v_hat + row);
    StepResult<T> r = spike_reset_clamp<SK, RK, MIN>(vh, spike_thr, p.prm.max_spikes, amount,
                                                     p.prm.reset_value, min_v,
                                                     p.prm.product_in_float);
    for (int64_t t = p.steps - 1; t >= 0; --t, row -= p.N) {
      T sig = T(0);
      if constexpr (SK != SpikeKind::None) {
        sig = p.sigma ? ld(p.sigma + row) : surrogate_grad(p.surrogate, vh, thr);
      }
      const T g_out = ld(p.g_spikes.at(b, t, n)) + g_count;
      const T g = v_hat_adjoint<SK, RK>(r, lambda_v, g_out, ld(p.g_v_hat.at(b, t, n)), sig,
                                        amount);
      lambda_v = g * alpha;
      const T g_i = g * in_scale + ld(p.g_i_seq.at(b, t, n));
      T total = T(0);
      if constexpr (SYN) {
        total = g_i + lambda_i;
        const T g_sum = total * alpha_syn;
        p.g_input[row] = g_sum;
        lambda_i = g_sum;
      } else {
        p.g_input[row] = g_i;
      }
      StepResult<T> r_prev = r;
      T vh_prev = vh;
      if (t > 0) {
        vh_prev = ld(p.v_hat + row - p.N);
        r_prev = spike_reset_clamp<SK, RK, MIN>(vh_prev, spike_thr, p.prm.max_spikes, amount,
                                                p.prm.reset_value, min_v, p.prm.product_in_float);
      }
      if (alpha_mem_grad) {
        // dL/dalpha_mem += v_{t-1} * g_vhat  (- i_t * g_vhat with norm_input)
        const T v_prev = t > 0 ? r_prev.v_next : ld(p.v0 + idx);
        double acc = static_cast<double>(v_prev) * static_cast<double>(g);
        if (p.norm_input) {
          const T cur = SYN ? ld(p.i_seq + row) : ld(p.input + row);
          acc -= static_cast<double>(cur) * static_cast<double>(g);
        }
        g_am += acc;
      }
      if constexpr (SYN) {
        if (alpha_syn_grad) {
          // dL/dalpha_syn += (i_{t-1} + x_t) * total = i_t / alpha_syn * total (divided below)
          g_as += static_cast<double>(ld(p.i_seq + row)) * static_cast<double>(total);
        }
      }
      vh = vh_prev;
      r = r_prev;
    }
  }
  p.lambda_v[idx] = lambda_v;
  if constexpr (SYN) p.lambda_i[idx] = lambda_i;
  if (alpha_mem_grad) p.g_alpha_mem[idx] = g_am;
  if constexpr (SYN) {
    if (alpha_syn_grad) p.g_alpha_syn[idx] = g_as / static_cast<double>(alpha_syn);
  }
}

BackwardResult lif_backward_cuda(
    const std::optional<Tensor>& grad_spikes, const std::optional<Tensor>& grad_v_hat,
    const std::optional<Tensor>& grad_i_seq, const std::optional<Tensor>& grad_v_mem,
    const std::optional<Tensor>& grad_i_syn, const std::optional<Tensor>& grad_counts,
    const Tensor& v_hat, const Tensor& i_seq, const Tensor& v_mem,
    const std::optional<Tensor>& i_syn, const std::optional<Tensor>& input,
    const Tensor& alpha_mem,
    const std::optional<Tensor>& alpha_syn, bool norm_input, const Tensor& threshold,
    const Tensor& reset_amount, const std::optional<Tensor>& min_v_mem, int64_t spike_kind,
    double max_spikes, int64_t reset_kind, double reset_value, int64_t surrogate_kind,
    at::ArrayRef<double> surrogate_params, const std::optional<Tensor>& surrogate_values,
    bool alpha_mem_grad, bool alpha_syn_grad) {
  check_device(v_hat, "v_hat",
               {{"grad_spikes", opt_ptr(grad_spikes)},
                {"grad_v_hat", opt_ptr(grad_v_hat)},
                {"grad_i_seq", opt_ptr(grad_i_seq)},
                {"grad_v_mem", opt_ptr(grad_v_mem)},
                {"grad_i_syn", opt_ptr(grad_i_syn)},
                {"grad_counts", opt_ptr(grad_counts)},
                {"i_seq", i_seq.numel() > 0 ? &i_seq : nullptr},
                {"v_mem", v_mem.numel() > 0 ? &v_mem : nullptr},
                {"i_syn", opt_ptr(i_syn)},
                {"input", opt_ptr(input)},
                {"alpha_mem", &alpha_mem},
                {"alpha_syn", alpha_syn.has_value() ? &*alpha_syn : nullptr},
                {"threshold", &threshold},
                {"reset_amount", &reset_amount},
                {"min_v_mem", min_v_mem.has_value() ? &*min_v_mem : nullptr},
                {"surrogate_values", opt_ptr(surrogate_values)}});
  TORCH_CHECK(v_hat.numel() > 0,
              "sinabs_fast: the CUDA backward reads the saved v_hat (keep_v_hat=True); only the "
              "CPU backward recomputes it");
  const at::cuda::CUDAGuard guard(v_hat.device());
  const BackwardCall c = prepare_backward(
      grad_spikes, grad_v_hat, grad_i_seq, grad_v_mem, grad_i_syn, grad_counts, v_hat, i_seq,
      v_mem, i_syn, input, alpha_mem, alpha_syn, norm_input, threshold, reset_amount, min_v_mem,
      spike_kind, max_spikes, reset_kind, reset_value, surrogate_kind, surrogate_params,
      surrogate_values, alpha_mem_grad, alpha_syn_grad, &cuda_empty);
  const int64_t items = c.batch * c.N;
  if (items > 0) {
    const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
    AT_DISPATCH_FLOATING_TYPES(c.v_hat.scalar_type(), "lif_backward_cuda", [&] {
      const BackwardArgs<scalar_t> p = c.args<scalar_t>();
      dispatch_neuron(c.opt.spike, c.opt.reset, c.syn, c.prm.min_v_mem.defined(),
                      c.prm.per_neuron,
                      [&](auto sk, auto rk, auto has_syn, auto has_min, auto pn) {
                        lif_backward_kernel<scalar_t, decltype(sk)::value, decltype(rk)::value,
                                            decltype(has_syn)::value, decltype(has_min)::value,
                                            decltype(pn)::value>
                            <<<num_blocks(items), kThreads, 0, stream>>>(p);
                        C10_CUDA_KERNEL_LAUNCH_CHECK();
                      });
    });
  }
  return c.result();
}

}  // namespace

TORCH_LIBRARY_IMPL(sinabs_fast, CUDA, m) {
  m.impl("lif_forward", &lif_forward_cuda);
  m.impl("lif_backward", &lif_backward_cuda);
}

}  // namespace sinabs_fast
