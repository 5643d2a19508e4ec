// CPU kernels of the fused LIF-family ops: the whole time loop in one pass per (batch, neuron
// segment). Each thread streams whole rows x[b, t, n0:n1] for t = 0..T-1, so reads and writes are
// contiguous and the inner neuron loop vectorises (../shared/reference/cpu-kernel-notes.md).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <type_traits>
#include <vector>

#include "../lif_call.h"
#include "dense_products.h"
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
template <typename T, SpikeKind SK, ResetKind RK, bool SYN, bool MIN, bool PN, bool SPIKES = true>
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
    if constexpr (SK != SpikeKind::None && SPIKES) {
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
                      for_each_segment(c.batch, c.N, c.steps,
                                       [&](int64_t b, int64_t n0, int64_t L) {
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

// One reverse step of one segment (restrict parameters, as forward_row). SUMS: also add this
// step's terms of the alpha gradients to the current block sums (see kSumBlock), in the compute
// type, while they are in registers: am_sum += v_t g_vhat_{t+1} (- cur_t g_vhat_t with
// NORM, norm_input: cur_t is i_t, or x_t without synaptic current), as_sum += i_t g_i, g_i being
// the gradient at i_t (divided by alpha_syn at the end); g_vh_next (zeros before the last step)
// becomes g_vhat_t.
template <typename T, SpikeKind SK, ResetKind RK, bool SYN, bool MIN, bool PN, bool SUMS,
          bool NORM>
SF_MULTIVERSION void backward_row(const T* SF_RESTRICT vh, const T* SF_RESTRICT sigma,
                         const T* SF_RESTRICT gs, const T* SF_RESTRICT g_counts,
                         const T* SF_RESTRICT gvh, const T* SF_RESTRICT gis, T* SF_RESTRICT gx,
                         T* SF_RESTRICT lambda_v, T* SF_RESTRICT lambda_i,
                         const T* SF_RESTRICT cur, T* SF_RESTRICT am_sum, T* SF_RESTRICT as_sum,
                         T* SF_RESTRICT g_vh_next,
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
      if constexpr (SUMS) as_sum[k] += cur[k] * total;
    } else {
      gx[k] = g_i;
    }
    if constexpr (SUMS) {
      T term = r.v_next * g_vh_next[k];
      if constexpr (NORM) term = term - cur[k] * g;
      am_sum[k] += term;
      g_vh_next[k] = g;
    }
  }
}

// The forward pass of one segment again, for a backward whose forward kept no v_hat: the same
// row loop on the same input and initial states, so the same bits. v_hat (and, if i_out, the
// synaptic current) of step t go to row t of the (T, L) scratch. Whole-row segments measured
// faster than segments cut to fit the scratch into L2.
template <typename T, SpikeKind SK, ResetKind RK, bool SYN, bool MIN, bool PN>
void recompute_segment(const BackwardArgs<T>& p, int64_t b, int64_t n0, int64_t L, T* vh_out,
                       T* i_out) {
  const int64_t off = b * p.N + n0;
  const int64_t poff = PN ? b * p.prm.row_stride + n0 : 0;
  std::vector<T> v(p.v0 + off, p.v0 + off + L);
  std::vector<T> isyn(SYN ? L : 0), i_row(SYN && !i_out ? L : 0);
  if constexpr (SYN) std::copy(p.i0 + off, p.i0 + off + L, isyn.begin());
  for (int64_t t = 0; t < p.steps; ++t) {
    const T* x = p.input + (b * p.steps + t) * p.N + n0;
    if (t + 1 < p.steps) prefetch_row(x + p.N, L);  // see the reverse loop's prefetch
    forward_row<T, SK, RK, SYN, MIN, PN, false>(
        x, nullptr, vh_out + t * L,
        SYN ? (i_out ? i_out + t * L : i_row.data()) : nullptr, v.data(), isyn.data(),
        nullptr, p.prm.alpha + poff, p.prm.in_scale + poff,
        SYN ? p.prm.alpha_syn + poff : nullptr, p.prm.spike_thr + poff, p.prm.amount + poff,
        MIN ? p.prm.min_v + poff : nullptr, p.prm.max_spikes, p.prm.reset_value,
        p.prm.product_in_float, L);
  }
}

template <typename T, SpikeKind SK, ResetKind RK, bool SYN, bool MIN, bool PN>
void backward_segment(const BackwardArgs<T>& p, int64_t b, int64_t n0, int64_t L) {
  const int64_t off = b * p.N + n0;                // states and gradients
  const int64_t poff = PN ? b * p.prm.row_stride + n0 : 0;  // parameters
  const T* thr = p.prm.thr + poff;
  const T* amount = p.prm.amount + poff;
  const T* min_v = MIN ? p.prm.min_v + poff : nullptr;
  // Per-row scratch: the surrogate; for the alpha sums the gradient at v_hat of the step after.
  std::vector<T> sigma_row(SK != SpikeKind::None && !p.sigma ? L : 0);
  std::vector<T> inv_width;
  if (p.surrogate.kind == SurrogateKind::SingleExponential) {
    inv_width.resize(L);
    for (int64_t k = 0; k < L; ++k) {
      inv_width[k] = T(1) / (neuron_param<PN>(thr, k) * p.surrogate.p[0]);
    }
  }
  double* g_am = p.g_alpha_mem ? p.g_alpha_mem + off : nullptr;
  double* g_as = p.g_alpha_syn ? p.g_alpha_syn + off : nullptr;
  const bool sums = g_am || g_as;
  if (g_am) std::fill(g_am, g_am + L, 0.0);
  if (g_as) std::fill(g_as, g_as + L, 0.0);
  std::vector<T> g_vh_next(sums ? L : 0, T(0));
  std::vector<T> gx_row(p.stream_g_input ? L : 0);  // g_input's row, before it is streamed out
  // The current block of the alpha sums (see kSumBlock), in the compute type.
  std::vector<T> am_block(sums ? L : 0, T(0)), as_block(sums && SYN ? L : 0, T(0));
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
    if (SYN && sums) i_scratch = pooled_empty({p.steps * L}, opts);
    recompute_segment<T, SK, RK, SYN, MIN, PN>(
        p, b, n0, L, vh_scratch.data_ptr<T>(),
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
      if (SYN && sums) prefetch_row(i_base + (t - 1) * seq_stride, L);
    }
    const T* sigma = nullptr;
    if constexpr (SK != SpikeKind::None) {
      if (p.sigma) {
        sigma = p.sigma + row;
      } else {
        surrogate_row<T, PN>(p.surrogate, vh, thr, inv_width.data(), sigma_row.data(), L);
        sigma = sigma_row.data();
      }
    }
    // The current the alpha sums need: i_t, or x_t (norm_input without synaptic current).
    const T* cur = !sums ? nullptr : SYN ? i_base + t * seq_stride
                                         : (p.norm_input ? p.input + row : nullptr);
    const auto step = [&](auto sums_c, auto norm_c) {
      backward_row<T, SK, RK, SYN, MIN, PN, decltype(sums_c)::value, decltype(norm_c)::value>(
          vh, sigma, p.g_spikes.at(b, t, n0), p.g_counts.at(b, 0, n0), p.g_v_hat.at(b, t, n0),
          p.g_i_seq.at(b, t, n0), p.stream_g_input ? gx_row.data() : p.g_input + row,
          p.lambda_v + off,
          SYN ? p.lambda_i + off : nullptr, cur, am_block.data(), as_block.data(),
          g_vh_next.data(), p.prm.alpha + poff, p.prm.in_scale + poff,
          SYN ? p.prm.alpha_syn + poff : nullptr, p.prm.spike_thr + poff, amount, min_v,
          p.prm.max_spikes, p.prm.reset_value, p.prm.product_in_float, L);
    };
    if (!sums) {
      step(std::false_type{}, std::false_type{});
    } else if (p.norm_input) {
      step(std::true_type{}, std::true_type{});
    } else {
      step(std::true_type{}, std::false_type{});
    }
    if (p.stream_g_input) stream_row(p.g_input + row, gx_row.data(), L);
    if (sums && (++in_block == kSumBlock || t == 0)) {
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
  if (p.stream_g_input) stream_fence();
}

// Outputs from this size on are written past the cache: a quarter of a 32 MiB L3, so that they
// would not stay there anyway next to the input and the saved tensors.
constexpr size_t kStreamBytes = size_t(8) << 20;

BackwardResult lif_backward_cpu(
    const std::optional<Tensor>& grad_spikes, const std::optional<Tensor>& grad_v_hat,
    const std::optional<Tensor>& grad_i_seq, const std::optional<Tensor>& grad_v_mem,
    const std::optional<Tensor>& grad_i_syn, const std::optional<Tensor>& grad_counts,
    const Tensor& v_hat, const Tensor& i_seq, const Tensor& v_mem,
    const std::optional<Tensor>& i_syn, const std::optional<Tensor>& input,
    const Tensor& alpha_mem, const std::optional<Tensor>& alpha_syn, bool norm_input,
    const Tensor& threshold,
    const Tensor& reset_amount, const std::optional<Tensor>& min_v_mem, int64_t spike_kind,
    double max_spikes, int64_t reset_kind, double reset_value, int64_t surrogate_kind,
    at::ArrayRef<double> surrogate_params, const std::optional<Tensor>& surrogate_values,
    bool alpha_mem_grad, bool alpha_syn_grad) {
  const BackwardCall c = prepare_backward(
      grad_spikes, grad_v_hat, grad_i_seq, grad_v_mem, grad_i_syn, grad_counts, v_hat, i_seq,
      v_mem, i_syn, input, alpha_mem, alpha_syn, norm_input, threshold, reset_amount, min_v_mem,
      spike_kind, max_spikes, reset_kind, reset_value, surrogate_kind, surrogate_params,
      surrogate_values, alpha_mem_grad, alpha_syn_grad, &pooled_empty);
  AT_DISPATCH_FLOATING_TYPES(c.g_input.scalar_type(), "lif_backward_cpu", [&] {
    BackwardArgs<scalar_t> p = c.args<scalar_t>();
    // A large input gradient is written past the cache (see stream_row); a small one stays
    // there for the layer before, whose backward reads it next.
    p.stream_g_input = c.g_input.nbytes() >= kStreamBytes;
    dispatch_neuron(c.opt.spike, c.opt.reset, c.syn, c.prm.min_v_mem.defined(),
                    c.prm.per_neuron, [&](auto sk, auto rk, auto has_syn, auto has_min, auto pn) {
                      for_each_segment(c.batch, c.N, c.steps,
                                       [&](int64_t b, int64_t n0, int64_t L) {
                        backward_segment<scalar_t, decltype(sk)::value, decltype(rk)::value,
                                         decltype(has_syn)::value, decltype(has_min)::value,
                                         decltype(pn)::value>(p, b, n0, L);
                      });
                    });
  });
  return c.result();
}

// ------------------------------------------------------------------------------------------------
// Recurrent layers whose rec_connect is a linear map: the whole time loop in one op call. Each
// step's input is x_t + rec, rec = spikes_{t-1} W^T + bias (zeros at t = 0), computed with the
// same at::addmm as nn.Linear so that the forward stays bit-identical to sinabs; the neuron
// update is the kernels above on one step. Per-step tensors are kept time-major, (T, B, N), so
// that every step is a contiguous (B, 1, N) slab for the kernels and a (B, N) matrix for BLAS.

using RecurrentForwardResult =
    std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor>;
using RecurrentBackwardResult =
    std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor>;

// nn.Linear's forward on a (B, N) matrix: addmm with a bias, mm without.
Tensor linear_map(const Tensor& spikes, const Tensor& weight, const std::optional<Tensor>& bias) {
  return bias.has_value() ? at::addmm(*bias, spikes, weight.t()) : at::mm(spikes, weight.t());
}

// One step's neuron update over batch rows [b0, b1) of (B, N). A step is small (the recurrent
// layers' N is the size of a dense layer), so below kSerialStep elements the segments run on the
// calling thread: a parallel region costs more than the work. (Inside a parallel region, as in
// the backward's per-thread rows, at::parallel_for runs inline anyway.)
constexpr int64_t kSerialStep = 1 << 16;

template <typename F>
void run_segments(const NeuronOptions& opt, const NeuronParams& prm, bool syn, int64_t b0,
                  int64_t b1, int64_t N, F&& per_segment) {
  dispatch_neuron(opt.spike, opt.reset, syn, prm.min_v_mem.defined(), prm.per_neuron,
                  [&](auto sk, auto rk, auto has_syn, auto has_min, auto pn) {
                    const auto segment = [&](int64_t b, int64_t n0, int64_t L) {
                      per_segment(sk, rk, has_syn, has_min, pn, b0 + b, n0, L);
                    };
                    if ((b1 - b0) * N < kSerialStep) {
                      for (int64_t b = 0; b < b1 - b0; ++b) segment(b, 0, N);
                    } else {
                      for_each_segment(b1 - b0, N, 1, segment);
                    }
                  });
}

RecurrentForwardResult lif_recurrent_forward_cpu(
    const Tensor& input, const Tensor& v_mem, const std::optional<Tensor>& i_syn,
    const Tensor& alpha_mem, const std::optional<Tensor>& alpha_syn, bool norm_input,
    const Tensor& threshold, const Tensor& reset_amount, const std::optional<Tensor>& min_v_mem,
    const Tensor& weight, const std::optional<Tensor>& bias, int64_t spike_kind,
    double max_spikes, int64_t reset_kind, double reset_value, int64_t /*surrogate_kind*/,
    at::ArrayRef<double> /*surrogate_params (for the backward)*/, bool keep_sequences) {
  TORCH_CHECK(input.dim() == 3 && input.size(1) > 0,
              "sinabs_fast: input must have shape (batch, time, neurons) with time > 0, got ",
              input.sizes());
  const int64_t B = input.size(0), T = input.size(1), N = input.size(2), BN = B * N;
  TORCH_CHECK(weight.dim() == 2 && weight.size(0) == N && weight.size(1) == N,
              "sinabs_fast: weight must have shape (", N, ", ", N, "), got ", weight.sizes());
  TORCH_CHECK(weight.scalar_type() == at::kFloat,
              "sinabs_fast: weight must be float32 (it multiplies the float32 spikes), got ",
              weight.scalar_type());
  TORCH_CHECK(!bias.has_value() || (bias->dim() == 1 && bias->size(0) == N),
              "sinabs_fast: bias must have shape (", N, ")");
  // One step's call, prepared once: parameters, states (updated in place step by step).
  const ForwardCall c = prepare_forward(input.narrow(1, 0, 1), v_mem, i_syn, alpha_mem,
                                        alpha_syn, norm_input, threshold, reset_amount,
                                        min_v_mem, spike_kind, max_spikes, reset_kind,
                                        reset_value, false, false, &pooled_empty);
  TORCH_CHECK(c.spiking, "sinabs_fast: the recurrent op needs a spike function");
  const auto opts = input.options();
  const auto none = [&] { return at::empty({0}, opts); };
  const Tensor x = input.contiguous();
  Tensor spikes_tm = pooled_empty({T, B, N}, opts.dtype(at::kFloat));
  Tensor v_hat_tm = keep_sequences ? pooled_empty({T, B, N}, opts) : none();
  Tensor i_seq_tm = keep_sequences && c.syn ? pooled_empty({T, B, N}, opts) : none();
  Tensor totals_tm = pooled_empty({keep_sequences ? T : 1, B, N}, opts);
  Tensor v_post_tm = keep_sequences ? pooled_empty({T, B, N}, opts) : none();
  Tensor counts = at::zeros({B, N}, opts.dtype(at::kFloat));
  Tensor step_counts = at::empty({B, N}, opts.dtype(at::kFloat));
  // One step's spikes in a buffer of their own: BLAS may round differently for an operand at
  // another alignment, and nn.Linear in sinabs gets a freshly allocated (aligned) tensor.
  Tensor step_spikes = at::empty({B, N}, opts.dtype(at::kFloat));
  Tensor rec;  // the recurrent input of the next step
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "lif_recurrent_forward_cpu", [&] {
    using T_ = scalar_t;
    ForwardArgs<T_> p = c.args<T_>();
    p.steps = 1;
    for (int64_t t = 0; t < T; ++t) {
      T_* total = totals_tm.data_ptr<T_>() + (keep_sequences ? t * BN : 0);
      const T_* xt = x.data_ptr<T_>() + t * N;
      const float* r = rec.defined() ? rec.data_ptr<float>() : nullptr;
      // x_t + rec, where rec starts as float32 zeros (so -0.0 inputs become +0.0, as in sinabs).
      for (int64_t b = 0; b < B; ++b) {
        for (int64_t n = 0; n < N; ++n) {
          total[b * N + n] = xt[b * T * N + n] + static_cast<T_>(r ? r[b * N + n] : 0.0f);
        }
      }
      p.x = total;
      p.spikes = step_spikes.data_ptr<float>();
      p.v_hat = keep_sequences ? v_hat_tm.data_ptr<T_>() + t * BN : nullptr;
      p.i_seq = i_seq_tm.numel() ? i_seq_tm.data_ptr<T_>() + t * BN : nullptr;
      p.counts = step_counts.data_ptr<float>();
      run_segments(c.opt, c.prm, c.syn, 0, B, N,
                   [&](auto sk, auto rk, auto has_syn, auto has_min, auto pn, int64_t b,
                       int64_t n0, int64_t L) {
                     forward_segment<T_, decltype(sk)::value, decltype(rk)::value,
                                     decltype(has_syn)::value, decltype(has_min)::value,
                                     decltype(pn)::value>(p, b, n0, L);
                   });
      const float* sc = step_counts.data_ptr<float>();
      const float* ss = step_spikes.data_ptr<float>();
      float* total_counts = counts.data_ptr<float>();
      float* spikes_t = spikes_tm.data_ptr<float>() + t * BN;
      for (int64_t k = 0; k < BN; ++k) {
        total_counts[k] += sc[k];
        spikes_t[k] = ss[k];
      }
      if (keep_sequences) {
        std::copy(p.v, p.v + BN, v_post_tm.data_ptr<T_>() + t * BN);
      }
      if (t + 1 < T) rec = linear_map(step_spikes, weight, bias);
    }
  });
  if (!keep_sequences) totals_tm = none();
  return {pooled_copy(spikes_tm.permute({1, 0, 2})), v_hat_tm, i_seq_tm, totals_tm, v_post_tm,
          c.v_out, c.i_out, counts};
}

// n values as float32: float32 ones as they are, float64 ones converted into buf.
const float* as_float(const float* values, int64_t /*n*/, float* /*buf*/) { return values; }
const float* as_float(const double* values, int64_t n, float* buf) {
  for (int64_t k = 0; k < n; ++k) buf[k] = static_cast<float>(values[k]);
  return buf;
}

// dL/dW = sum_{t < T-1} g_input_{t+1}^T s_t from g (T - 1, B, N), float32, and the spikes
// (B, T, N). Spikes are mostly zeros, so the sum visits only the nonzero ones, split over
// threads by spiking neuron (sparse_weight_grad); past kDenseSpikes of them nonzero, one BLAS
// product costs less.
constexpr double kDenseSpikes = 0.25;

Tensor recurrent_weight_grad(const Tensor& g, const Tensor& spikes) {
  const int64_t steps = g.size(0), B = g.size(1), N = g.size(2), T = spikes.size(1);
  std::vector<const float*> s_rows, g_rows;
  for (int64_t t = 0; t < steps; ++t) {
    for (int64_t b = 0; b < B; ++b) {
      s_rows.push_back(spikes.data_ptr<float>() + (b * T + t) * N);
      g_rows.push_back(g.data_ptr<float>() + (t * B + b) * N);
    }
  }
  Tensor out_t = pooled_empty({N, N}, g.options());  // out_t[j, i] = dL/dW[i, j]
  std::atomic<bool> sparse{true};
  at::parallel_for(0, N, grain_for(steps * B), [&](int64_t j0, int64_t j1) {
    const auto max_nonzero = static_cast<int64_t>(kDenseSpikes * steps * B * (j1 - j0));
    if (!sparse_weight_grad(s_rows.data(), g_rows.data(), steps * B, j0, j1, N, max_nonzero,
                            out_t.data_ptr<float>())) {
      sparse = false;
    }
  });
  if (!sparse) {
    const Tensor s = spikes.narrow(1, 0, steps).transpose(0, 1).reshape({-1, N});
    return at::mm(g.reshape({-1, N}).t(), s);
  }
  return pooled_copy(out_t.t());
}

RecurrentBackwardResult lif_recurrent_backward_cpu(
    const std::optional<Tensor>& grad_spikes, const std::optional<Tensor>& grad_v_hat_tm,
    const std::optional<Tensor>& grad_i_seq_tm, const std::optional<Tensor>& grad_v_mem,
    const std::optional<Tensor>& grad_i_syn, const std::optional<Tensor>& grad_counts,
    const Tensor& spikes, const Tensor& v_hat_tm, const Tensor& i_seq_tm,
    const Tensor& totals_tm, const Tensor& v_post_tm, const Tensor& v_mem,
    const Tensor& alpha_mem, const std::optional<Tensor>& alpha_syn, bool norm_input,
    const Tensor& threshold, const Tensor& reset_amount, const std::optional<Tensor>& min_v_mem,
    const Tensor& weight, int64_t spike_kind, double max_spikes, int64_t reset_kind,
    double reset_value, int64_t surrogate_kind, at::ArrayRef<double> surrogate_params,
    bool alpha_mem_grad, bool alpha_syn_grad, bool weight_grad) {
  TORCH_CHECK(v_hat_tm.dim() == 3, "sinabs_fast: v_hat_tm must be (time, batch, neurons), got ",
              v_hat_tm.sizes());
  const int64_t T = v_hat_tm.size(0), B = v_hat_tm.size(1), N = v_hat_tm.size(2), BN = B * N;
  TORCH_CHECK(spikes.sizes() == at::IntArrayRef({B, T, N}), "sinabs_fast: spikes must have shape (",
              B, ", ", T, ", ", N, "), got ", spikes.sizes());
  const bool syn = alpha_syn.has_value();
  const auto step = [](const Tensor& tm) { return tm.select(0, 0).unsqueeze(1); };
  // One step's call, prepared once; the slabs of step t are swapped in below.
  const BackwardCall c = prepare_backward(
      std::nullopt, std::nullopt, std::nullopt, grad_v_mem, grad_i_syn, std::nullopt,
      step(v_hat_tm), syn && i_seq_tm.numel() ? step(i_seq_tm) : i_seq_tm, v_mem, std::nullopt,
      totals_tm.numel() ? std::optional<Tensor>(step(totals_tm)) : std::nullopt, alpha_mem,
      alpha_syn, norm_input, threshold, reset_amount, min_v_mem, spike_kind, max_spikes,
      reset_kind, reset_value, surrogate_kind, surrogate_params, std::nullopt, alpha_mem_grad,
      alpha_syn_grad, &pooled_empty);
  TORCH_CHECK(!alpha_mem_grad || v_post_tm.size(0) == T,
              "sinabs_fast: the alpha_mem gradient needs v_post_tm");
  const auto opts = v_hat_tm.options();
  const Tensor like = at::empty({1, 1, 1}, opts).expand({B, T, N});  // shape and options
  const RowSource g_spikes = row_source(grad_spikes, like, "grad_spikes");
  const RowSource g_counts = row_source(grad_counts, at::empty({B, N}, opts), "grad_counts");
  const RowSource g_v_hat = row_source(grad_v_hat_tm, v_hat_tm, "grad_v_hat_tm");
  const RowSource g_i_seq = row_source(grad_i_seq_tm, v_hat_tm, "grad_i_seq_tm");
  Tensor g_input_tm = pooled_empty({T, B, N}, opts);
  Tensor g_spikes_step = at::empty({B, N}, opts);  // output, counts and recurrent gradients
  const auto f64 = opts.dtype(at::kDouble);
  Tensor g_am_total = alpha_mem_grad ? at::zeros({B, N}, f64) : Tensor();
  Tensor g_as_total = syn && alpha_syn_grad ? at::zeros({B, N}, f64) : Tensor();
  Tensor g_am_step = alpha_mem_grad ? at::empty({B, N}, f64) : Tensor();
  Tensor g_as_step = syn && alpha_syn_grad ? at::empty({B, N}, f64) : Tensor();
  const Tensor zeros_row = at::zeros({N}, opts);
  // Batch entries are independent through the recurrence (the weights are shared, the states
  // are not), so each thread runs the whole reverse time loop for its own rows, with its own
  // single-threaded products: no synchronisation per step. (The forward cannot do the same: its
  // products must round as nn.Linear's over the whole batch.)
  const int64_t chunks =
      at::in_parallel_region() ? 1 : std::min<int64_t>(B, at::get_num_threads());
  // W once, in the padded rows row_products reads (the same for every step and thread).
  const int64_t ld = padded_columns(N);
  Tensor w_packed = pooled_empty({N, ld}, opts.dtype(at::kFloat));
  w_packed.narrow(1, 0, N).copy_(weight);
  w_packed.narrow(1, N, ld - N).zero_();
  AT_DISPATCH_FLOATING_TYPES(v_hat_tm.scalar_type(), "lif_recurrent_backward_cpu", [&] {
    using T_ = scalar_t;
    const T_* gs = g_spikes.storage.data_ptr<T_>();
    const T_* gc = g_counts.storage.data_ptr<T_>();
    // A chunk's work: its rows' neuron updates and (N, N) products for every step.
    const int64_t chunk_work = T * std::max<int64_t>(B / chunks, 1) * N * (N + 1);
    at::parallel_for(0, chunks, grain_for(chunk_work), [&](int64_t c0, int64_t c1) {
      for (int64_t chunk = c0; chunk < c1; ++chunk) {
        const int64_t b0 = chunk * B / chunks, b1 = (chunk + 1) * B / chunks, rows = b1 - b0;
        const int64_t off = b0 * N, len = rows * N;
        BackwardArgs<T_> p = c.args<T_>();
        p.steps = 1;
        p.g_counts = Rows<T_>{zeros_row.data_ptr<T_>(), 0, 0};
        Tensor g_rec = at::empty({rows, ld}, opts.dtype(at::kFloat));
        // Step t + 1's input gradient in float32 (the dtype of nn.Linear's output): the rows of
        // g_input_tm themselves, or for float64 a copy.
        Tensor g_next =
            std::is_same_v<T_, float> ? Tensor() : at::empty({rows, N}, g_rec.options());
        for (int64_t t = T - 1; t >= 0; --t) {
          // dL/ds_t: the output's and the counts' gradients, and through rec the gradient of
          // step t + 1's input: g_input_{t+1} W.
          if (t + 1 < T) {
            const float* a = as_float(g_input_tm.data_ptr<T_>() + (t + 1) * BN + off, len,
                                      data_or_null<float>(g_next));
            row_products(a, N, rows, N, w_packed.data_ptr<float>(), N, g_rec.data_ptr<float>());
          }
          const float* gr = t + 1 < T ? g_rec.data_ptr<float>() : nullptr;
          T_* comb = g_spikes_step.data_ptr<T_>();
          for (int64_t b = b0; b < b1; ++b) {
            const T_* gs_row = gs + b * g_spikes.b_stride + t * g_spikes.t_stride;
            const T_* gc_row = gc + b * g_counts.b_stride;
            const float* gr_row = gr ? gr + (b - b0) * ld : nullptr;
            for (int64_t n = 0; n < N; ++n) {
              comb[b * N + n] = gs_row[n] + gc_row[n] + static_cast<T_>(gr_row ? gr_row[n] : 0.0f);
            }
          }
          p.g_spikes = Rows<T_>{comb, N, 0};
          p.g_v_hat = Rows<T_>{g_v_hat.storage.data_ptr<T_>() + t * g_v_hat.b_stride,
                               g_v_hat.t_stride, 0};
          p.g_i_seq = Rows<T_>{g_i_seq.storage.data_ptr<T_>() + t * g_i_seq.b_stride,
                               g_i_seq.t_stride, 0};
          p.v_hat = v_hat_tm.data_ptr<T_>() + t * BN;
          if (p.i_seq) p.i_seq = i_seq_tm.data_ptr<T_>() + t * BN;
          if (p.input) p.input = totals_tm.data_ptr<T_>() + t * BN;
          if (p.v0) p.v0 = t > 0 ? v_post_tm.data_ptr<T_>() + (t - 1) * BN : c.v0.data_ptr<T_>();
          p.g_input = g_input_tm.data_ptr<T_>() + t * BN;
          p.g_alpha_mem = data_or_null<double>(g_am_step);
          p.g_alpha_syn = data_or_null<double>(g_as_step);
          run_segments(c.opt, c.prm, c.syn, b0, b1, N,
                       [&](auto sk, auto rk, auto has_syn, auto has_min, auto pn, int64_t b,
                           int64_t n0, int64_t L) {
                         backward_segment<T_, decltype(sk)::value, decltype(rk)::value,
                                          decltype(has_syn)::value, decltype(has_min)::value,
                                          decltype(pn)::value>(p, b, n0, L);
                       });
          for (const auto& [total, step] : {std::pair{g_am_total, g_am_step},
                                            std::pair{g_as_total, g_as_step}}) {
            if (!total.defined()) continue;
            double* acc = total.data_ptr<double>() + off;
            const double* add = step.data_ptr<double>() + off;
            for (int64_t k = 0; k < len; ++k) acc[k] += add[k];
          }
        }
      }
    });
  });
  const auto none = [&] { return at::empty({0}, opts); };
  Tensor g_weight = none(), g_bias = none();
  if (weight_grad && T > 1) {
    // dL/dbias = sum_t g_input_{t+1}.
    const Tensor g = g_input_tm.narrow(0, 1, T - 1).to(at::kFloat);
    g_weight = recurrent_weight_grad(g, spikes.contiguous());
    g_bias = g.sum(at::IntArrayRef{0, 1});  // sum({0, 1}) is ambiguous in torch 2.11
  } else if (weight_grad) {
    g_weight = at::zeros_like(weight);
    g_bias = at::zeros({N}, weight.options());
  }
  return {pooled_copy(g_input_tm.permute({1, 0, 2})),
          c.lambda_v,
          syn ? c.lambda_i : none(),
          g_am_total.defined() ? reduce_param_grad(g_am_total, alpha_mem) : none(),
          g_as_total.defined() ? reduce_param_grad(g_as_total, *alpha_syn) : none(),
          g_weight,
          g_bias};
}

}  // namespace

TORCH_LIBRARY_IMPL(sinabs_fast, CPU, m) {
  m.impl("lif_forward", &lif_forward_cpu);
  m.impl("lif_backward", &lif_backward_cpu);
  m.impl("lif_recurrent_forward", &lif_recurrent_forward_cpu);
  m.impl("lif_recurrent_backward", &lif_recurrent_backward_cpu);
}

}  // namespace sinabs_fast
