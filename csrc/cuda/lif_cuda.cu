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
// Checkpoints (kCheckpointSteps, lif_kernel_args.h): without a kept v_hat the forward writes the states
// before every C-th step, and the backward recomputes each segment of C steps from them.

// The states one checkpoint holds: v_mem, and i_syn with synaptic current.
template <typename K>
inline constexpr int64_t kCheckpointStates = K::synaptic ? 2 : 1;

// Element (b, k, 0, n) of the (B, ceil(T / C), S, N) checkpoints; state s is s * N further on.
template <typename T, typename K, typename P>
__device__ SF_INLINE P* checkpoint_at(P* base, int64_t b, int64_t k, int64_t n, int64_t steps,
                                      int64_t N) {
  constexpr int64_t C = kCheckpointSteps<T>;
  return base + ((b * ((steps + C - 1) / C) + k) * kCheckpointStates<K>) * N + n;
}

// ------------------------------------------------------------------------------------------------
// Forward

template <typename T, typename X, typename K>
__global__ void __launch_bounds__(kThreads, min_blocks_per_sm<T>(32))
    lif_forward_kernel(const ForwardArgs<T, X> p) {
  const auto [idx, b, n] = thread_neuron(p.N);
  if (idx >= p.batch * p.N) return;
  // The parameters and the states stay in registers for all T steps.
  const auto [alpha, in_scale, thr, amount, spike_thr, alpha_syn, min_v] =
      load_neuron<K>(p.prm, b, n);
  T v = p.v[idx];
  T isyn = K::synaptic ? p.i[idx] : T(0);
  float count = 0.0f;
  T* checkpoint = p.checkpoints ? checkpoint_at<T, K>(p.checkpoints, b, 0, n, p.steps, p.N)
                                : nullptr;
  int64_t row = b * p.steps * p.N + n;  // (b, t, n) of the outputs for t = 0
  const X* x = p.x.at(b, 0, n);         // the input by its own strides
  for (int64_t t = 0; t < p.steps; ++t, row += p.N, x += p.x.t_stride) {
    if (checkpoint && (t & (kCheckpointSteps<T> - 1)) == 0) {  // the states before step t
      checkpoint[0] = v;
      if constexpr (K::synaptic) checkpoint[p.N] = isyn;
      checkpoint += kCheckpointStates<K> * p.N;
    }
    T cur = ld_as<T>(x);
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
      p.spikes[row] = static_cast<spike_t<X>>(r.spikes);  // small integers: exact
      count += r.spikes;
    }
  }
  p.v[idx] = v;
  if constexpr (K::synaptic) p.i[idx] = isyn;
  if constexpr (K::spiking) p.counts[idx] = count;
}

// ------------------------------------------------------------------------------------------------
// Backward: the reverse-time recurrence of docs/semantics.md, section 4, recomputing spikes, reset
// and clamp masks from the pre-spike membrane v_hat (the same steps as backward_row and
// backward_segment in cpu/lif_segments.h, with the adjoint states and the alpha sums in
// registers). lif_backward_kernel reads the saved v_hat; lif_recompute_backward_kernel, without
// one, runs the forward again.

// One thread's adjoint states and alpha sums, and the reverse step both backward kernels take.
template <typename T>
struct Adjoint {
  T lambda_v, lambda_i;
  // The alpha sums (sinabs_fast/alpha_sums.h, as the CPU kernels sum them): block sums in the
  // compute type, totals in float64; g_vh_next is the gradient at v_hat of the step after.
  T am_block = T(0), as_block = T(0), g_vh_next = T(0);
  double g_am = 0.0, g_as = 0.0;
  int in_block = 0;  // steps in the current block (at most kSumBlock)

  // Step t (element `row` of the sequences) with its pre-spike membrane vh and its state r;
  // i_t is the synaptic current of the step where the alpha sums need it.
  template <typename K, typename X>
  __device__ SF_INLINE void step(const BackwardArgs<T, X>& p, const NeuronValues<T>& nv,
                                 T g_count, int64_t b, int64_t n, int64_t t, int64_t row, T vh,
                                 const StepResult<T>& r, T i_t) {
    const bool alpha_mem_grad = p.g_alpha_mem != nullptr;
    const bool alpha_syn_grad = p.g_alpha_syn != nullptr;
    T sig = T(0);
    if constexpr (K::spiking) {
      sig = p.sigma ? ld(p.sigma + row) : surrogate_grad(p.surrogate, vh, nv.thr);
    }
    const T g_out = ld_as<T>(p.g_spikes.at(b, t, n)) + g_count;
    const T g = v_hat_adjoint<K::spike, K::reset>(r, lambda_v, g_out, ld(p.g_v_hat.at(b, t, n)),
                                                  sig, nv.amount);
    lambda_v = g * nv.alpha;
    const T g_i = g * nv.in_scale + ld(p.g_i_seq.at(b, t, n));
    T total = T(0);
    if constexpr (K::synaptic) {
      total = g_i + lambda_i;
      const T g_sum = total * nv.alpha_syn;
      *p.g_input.at(b, t, n) = static_cast<X>(g_sum);
      lambda_i = g_sum;
    } else {
      *p.g_input.at(b, t, n) = static_cast<X>(g_i);
    }
    if (alpha_mem_grad) {
      // v_t meets the gradient at v_hat_{t+1} (- i_t * g_vhat_t with norm_input).
      if (p.norm_input) {
        const T cur = K::synaptic ? i_t : ld_as<T>(p.input.at(b, t, n));
        am_block += alpha_mem_term<true>(r.v_next, g_vh_next, cur, g);
      } else {
        am_block += alpha_mem_term<false>(r.v_next, g_vh_next, T(0), g);
      }
      g_vh_next = g;
    }
    if constexpr (K::synaptic) {
      // dL/dalpha_syn += (i_{t-1} + x_t) * total = i_t / alpha_syn * total (divided below)
      if (alpha_syn_grad) as_block += i_t * total;
    }
    if ((alpha_mem_grad || alpha_syn_grad) && block_closes(++in_block, t)) {
      close_block(g_am, am_block);
      close_block(g_as, as_block);
      in_block = 0;
    }
  }

  // After step 0: the initial states' gradients and the alpha gradients.
  template <typename K, typename X>
  __device__ SF_INLINE void finish(const BackwardArgs<T, X>& p, int64_t idx, T alpha_syn) {
    p.lambda_v[idx] = lambda_v;
    if constexpr (K::synaptic) p.lambda_i[idx] = lambda_i;
    if (p.g_alpha_mem) {
      am_block += initial_membrane_term(ld(p.v0 + idx), g_vh_next);  // the step before t = 0
      close_block(g_am, am_block);
      p.g_alpha_mem[idx] = g_am;
    }
    if constexpr (K::synaptic) {
      if (p.g_alpha_syn) p.g_alpha_syn[idx] = g_as / static_cast<double>(alpha_syn);
    }
  }
};

template <typename K, typename T, typename X>
__device__ SF_INLINE Adjoint<T> adjoint_start(const BackwardArgs<T, X>& p, int64_t idx) {
  Adjoint<T> a;
  a.lambda_v = p.lambda_v[idx];
  a.lambda_i = K::synaptic ? p.lambda_i[idx] : T(0);
  return a;
}

// Whether the alpha sums read the synaptic current of every step.
template <typename K, typename T, typename X>
__device__ SF_INLINE bool sums_read_i_seq(const BackwardArgs<T, X>& p) {
  return K::synaptic && (p.g_alpha_mem != nullptr || p.g_alpha_syn != nullptr);
}

template <typename K, typename T>
__device__ SF_INLINE StepResult<T> state_of(T vh, const NeuronValues<T>& nv,
                                            const NeuronArgs<T>& a) {
  return spike_reset_clamp<K::spike, K::reset, K::clamped>(
      vh, nv.spike_thr, a.max_spikes, nv.amount, a.reset_value, nv.min_v, a.product_in_float);
}

template <typename T, typename K>
__global__ void __launch_bounds__(kThreads, min_blocks_per_sm<T>(K::synaptic ? 40 : 32))
    lif_backward_kernel(const BackwardArgs<T> p) {
  const auto [idx, b, n] = thread_neuron(p.N);
  if (idx >= p.batch * p.N) return;
  const NeuronValues<T> nv = load_neuron<K>(p.prm, b, n);
  const T g_count = ld(p.g_counts.at(b, 0, n));
  Adjoint<T> adj = adjoint_start<K>(p, idx);
  if (p.steps > 0) {
    int64_t row = (b * p.steps + p.steps - 1) * p.N + n;  // (b, T - 1, n)
    // The state of step t is recomputed from v_hat_t, and carried to the next (earlier)
    // iteration as the state of step t - 1.
    T vh = ld(p.v_hat + row);
    StepResult<T> r = state_of<K>(vh, nv, p.prm);
    for (int64_t t = p.steps - 1; t >= 0; --t, row -= p.N) {
      if (t >= kPrefetchSteps) {  // the two rows every step reads, kPrefetchSteps ahead
        prefetch_l2(p.g_spikes.at(b, t - kPrefetchSteps, n));
        prefetch_l2(p.v_hat + row - kPrefetchSteps * p.N);
      }
      adj.template step<K>(p, nv, g_count, b, n, t, row, vh, r,
                           sums_read_i_seq<K>(p) ? ld(p.i_seq + row) : T(0));
      if (t > 0) {
        vh = ld(p.v_hat + row - p.N);
        r = state_of<K>(vh, nv, p.prm);
      }
    }
  }
  adj.template finish<K>(p, idx, nv.alpha_syn);
}

// Without a saved v_hat: segment by segment in reverse, the forward again from the segment's
// checkpoint and the input (forward_row's steps, on the same data, so the same bits), into this
// thread's column of the block's shared memory (kCheckpointSteps rows of kThreads values, then
// as many of i_syn where the alpha sums read it); then the reverse steps over the segment.
template <typename T, typename X, typename K>
__global__ void __launch_bounds__(kThreads, min_blocks_per_sm<T>(K::synaptic ? 40 : 32))
    lif_recompute_backward_kernel(const BackwardArgs<T, X> p) {
  extern __shared__ __align__(16) unsigned char segment_memory[];
  const auto [idx, b, n] = thread_neuron(p.N);
  if (idx >= p.batch * p.N) return;
  const NeuronValues<T> nv = load_neuron<K>(p.prm, b, n);
  const T g_count = ld(p.g_counts.at(b, 0, n));
  Adjoint<T> adj = adjoint_start<K>(p, idx);
  constexpr int64_t C = kCheckpointSteps<T>;
  // Step t0 + s of the segment: vh_seg[s * kThreads], i_seg[s * kThreads].
  T* const vh_seg = reinterpret_cast<T*>(segment_memory) + threadIdx.x;
  T* const i_seg = vh_seg + C * kThreads;
  // Segments [t0, t1) of C steps (the last one shorter), from the last to the first.
  for (int64_t t1 = p.steps; t1 > 0;) {
    const int64_t t0 = (t1 - 1) / C * C;
    const T* checkpoint = checkpoint_at<T, K>(p.checkpoints, b, t0 / C, n, p.steps, p.N);
    T v = ld(checkpoint);
    T isyn = K::synaptic ? ld(checkpoint + p.N) : T(0);
    int64_t row = (b * p.steps + t0) * p.N + n;
    for (int64_t t = t0; t < t1; ++t, row += p.N) {
      // What comes next: this step's output gradient (the reverse steps below) and the input of
      // the segment before (the next recomputation).
      prefetch_l2(p.g_spikes.at(b, t, n));
      if (t >= C) prefetch_l2(p.input.at(b, t - C, n));
      T cur = ld_as<T>(p.input.at(b, t, n));
      if constexpr (K::synaptic) {
        cur = synaptic_update(isyn, cur, nv.alpha_syn);
        isyn = cur;
        if (sums_read_i_seq<K>(p)) i_seg[(t - t0) * kThreads] = cur;
      }
      const T vh = membrane_update(v, cur, nv.alpha, nv.in_scale);
      v = state_of<K>(vh, nv, p.prm).v_next;
      vh_seg[(t - t0) * kThreads] = vh;
    }
    row -= p.N;  // (b, t1 - 1, n)
    for (int64_t t = t1 - 1; t >= t0; --t, row -= p.N) {
      const T vh = vh_seg[(t - t0) * kThreads];
      adj.template step<K>(p, nv, g_count, b, n, t, row, vh, state_of<K>(vh, nv, p.prm),
                           sums_read_i_seq<K>(p) ? i_seg[(t - t0) * kThreads] : T(0));
    }
    t1 = t0;
  }
  adj.template finish<K>(p, idx, nv.alpha_syn);
}

}  // namespace

// The launches' names, in the error for an unsupported dtype.
constexpr char kLifForwardCuda[] = "lif_forward_cuda";
constexpr char kLifBackwardCuda[] = "lif_backward_cuda";
// The kernels read and write 16-bit inputs, spikes and their gradients as they are.
constexpr bool kHalfIo = true;

ForwardResult OnCuda::launch(const ForwardCall& c) {
  with_lif_kernel<kLifForwardCuda, kHalfIo>(c, c.x, [&](const auto& p, auto traits) {
    launch_per_neuron(
        lif_forward_kernel<scalar_of<decltype(p)>, io_of<decltype(p)>, decltype(traits)>, p);
  });
  return c.result();
}

BackwardResult OnCuda::launch(const BackwardCall& c) {
  TORCH_CHECK(!c.recompute || c.checkpoints.defined() || c.batch * c.steps * c.N == 0,
              "sinabs_fast: without v_hat the CUDA backward recomputes the forward from the "
              "forward's checkpoints (lif_forward's last output): pass them, or keep v_hat");
  with_lif_kernel<kLifBackwardCuda, kHalfIo>(c, c.g_input, [&](const auto& p, auto traits) {
    using T = scalar_of<decltype(p)>;
    using X = io_of<decltype(p)>;
    using K = decltype(traits);
    if (c.recompute) {
      // The recomputed segment's v_hat, and i_syn where the alpha sums read it.
      const bool i_seq = c.syn && (c.g_alpha_mem.defined() || c.g_alpha_syn.defined());
      launch_per_neuron(lif_recompute_backward_kernel<T, X, K>, p,
                        kCheckpointSteps<T> * kThreads * sizeof(T) * (i_seq ? 2 : 1));
    } else if constexpr (std::is_same_v<T, X>) {  // a saved v_hat: 16-bit inputs were upcast
      launch_per_neuron(lif_backward_kernel<T, K>, p);
    }
  });
  return c.result();
}

TORCH_LIBRARY_IMPL(sinabs_fast, CUDA, m) {
  register_entry<kLifForward, &lif_forward<OnCuda>>(m);
  register_entry<kLifBackward, &lif_backward<OnCuda>>(m);
}

}  // namespace sinabs_fast
