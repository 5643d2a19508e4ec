// The CPU's own time loops of the recurrent LIF-family op (lif_recurrent_forward /
// lif_recurrent_backward, for layers whose rec_connect is a linear map): the overloads of
// run_recurrent_forward / run_recurrent_backward for OnCpu and the LIF calls (device_cpu.h),
// which recurrent_op.h's entries run in place of the generic loops of recurrent_steps.h. Each
// step's input is x_t + rec, rec = spikes_{t-1} W^T + bias (zeros at t = 0), computed with the
// same at::addmm as nn.Linear so that the forward stays bit-identical to sinabs; the neuron
// update is the LIF kernels (lif_segments.h) on one step of the call the entry prepared.
// Per-step tensors are time-major, (steps, B, N), so that every step is a contiguous (B, 1, N)
// slab for the kernels and a (B, N) matrix for BLAS.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <limits>
#include <type_traits>
#include <vector>

#include "../recurrent_op.h"
#include "dense_products.h"
#include "device_cpu.h"
#include "lif_segments.h"

namespace sinabs_fast {
namespace {

// One step's neuron update over batch rows [b0, b1) of (B, N). A step is small (the recurrent
// layers' N is the size of a dense layer), so below kSerialStep elements the segments run on the
// calling thread: a parallel region costs more than the work. (Inside a parallel region, as in
// the backward's per-thread rows, at::parallel_for runs inline anyway.)
constexpr int64_t kSerialStep = 1 << 16;

template <typename F>
void run_segments(const NeuronOptions& opt, const NeuronParams& prm, bool syn, int64_t b0,
                  int64_t b1, int64_t N, F&& per_segment) {
  dispatch_neuron(opt.spike, opt.reset, syn, prm.min_v_mem.defined(), prm.per_neuron,
                  [&](auto traits) {
                    const auto segment = [&](int64_t b, int64_t n0, int64_t L) {
                      per_segment(traits, b0 + b, n0, L);
                    };
                    if ((b1 - b0) * N < kSerialStep) {
                      for (int64_t b = 0; b < b1 - b0; ++b) segment(b, 0, N);
                    } else {
                      for_each_segment(b1 - b0, N, 1, segment);
                    }
                  });
}

// n values as float32: float32 ones as they are, float64 ones converted into buf.
const float* as_float(const float* values, int64_t /*n*/, float* /*buf*/) { return values; }
const float* as_float(const double* values, int64_t n, float* buf) {
  for (int64_t k = 0; k < n; ++k) buf[k] = static_cast<float>(values[k]);
  return buf;
}

// dL/dW = sum_{t < steps-1} g_input_{t+1}^T s_t from g (steps - 1, B, N), float32, and the spikes
// (B, steps, N). Spikes are mostly zeros, so the sum visits only the nonzero ones, split over
// threads by spiking neuron (sparse_weight_grad); past kDenseSpikes of them nonzero, one BLAS
// product costs less.
constexpr double kDenseSpikes = 0.25;

Tensor recurrent_weight_grad(const Tensor& g, const Tensor& spikes) {
  const int64_t pairs = g.size(0), B = g.size(1), N = g.size(2), time = spikes.size(1);
  std::vector<const float*> s_rows, g_rows;
  for (int64_t t = 0; t < pairs; ++t) {
    for (int64_t b = 0; b < B; ++b) {
      s_rows.push_back(spikes.data_ptr<float>() + (b * time + t) * N);
      g_rows.push_back(g.data_ptr<float>() + (t * B + b) * N);
    }
  }
  Tensor out_t = pooled_empty({N, N}, g.options());  // out_t[j, i] = dL/dW[i, j]
  // The sparse sum numbers its (step, batch) pairs with 32 bits (half the memory of its hit
  // lists); beyond that the dense product.
  std::atomic<bool> sparse{pairs * B <= std::numeric_limits<int32_t>::max()};
  if (sparse) at::parallel_for(0, N, grain_for(pairs * B), [&](int64_t j0, int64_t j1) {
    const auto max_nonzero = static_cast<int64_t>(kDenseSpikes * pairs * B * (j1 - j0));
    if (!sparse_weight_grad(s_rows.data(), g_rows.data(), pairs * B, j0, j1, N, max_nonzero,
                            out_t.data_ptr<float>())) {
      sparse = false;
    }
  });
  if (!sparse) {
    const Tensor s = spikes.narrow(1, 0, pairs).transpose(0, 1).reshape({-1, N});
    return at::mm(g.reshape({-1, N}).t(), s);
  }
  return pooled_copy(out_t.t());
}

}  // namespace

// The CPU's own forward steps of the LIF family (device_cpu.h): raw rows, each step's total
// input and segments on the calling thread below kSerialStep.
Tensor run_recurrent_forward(OnCpu, ForwardCall& c, const Tensor& input, const Tensor& weight,
                             const std::optional<Tensor>& bias, RecurrentSequences& s,
                             bool keep_sequences) {
  const int64_t B = input.size(0), steps = input.size(1), N = input.size(2), BN = B * N;
  const auto opts = input.options();
  const Tensor x = input.contiguous();
  Tensor counts = at::zeros({B, N}, opts.dtype(at::kFloat));
  Tensor step_counts = at::empty({B, N}, opts.dtype(at::kFloat));
  // One step's spikes in a buffer of their own: BLAS may round differently for an operand at
  // another alignment, and nn.Linear in sinabs gets a freshly allocated (aligned) tensor.
  Tensor step_spikes = at::empty({B, N}, opts.dtype(at::kFloat));
  Tensor rec;  // the recurrent input of the next step
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "lif_recurrent_forward_cpu", [&] {
    using T = scalar_t;
    ForwardArgs<T> p = c.args<T>();
    p.steps = 1;
    for (int64_t t = 0; t < steps; ++t) {
      T* total = s.totals.data_ptr<T>() + (keep_sequences ? t * BN : 0);
      const T* xt = x.data_ptr<T>() + t * N;
      const float* r = rec.defined() ? rec.data_ptr<float>() : nullptr;
      // x_t + rec, where rec starts as float32 zeros (so -0.0 inputs become +0.0, as in sinabs).
      for (int64_t b = 0; b < B; ++b) {
        for (int64_t n = 0; n < N; ++n) {
          total[b * N + n] = xt[b * steps * N + n] + static_cast<T>(r ? r[b * N + n] : 0.0f);
        }
      }
      p.x = Rows<T>{total, N, 0};
      p.spikes = step_spikes.data_ptr<float>();
      p.v_hat = keep_sequences ? s.v_hat.data_ptr<T>() + t * BN : nullptr;
      p.i_seq = s.i_seq.numel() ? s.i_seq.data_ptr<T>() + t * BN : nullptr;
      p.counts = step_counts.data_ptr<float>();
      run_segments(c.opt, c.prm, c.syn, 0, B, N,
                   [&](auto traits, int64_t b, int64_t n0, int64_t L) {
                     forward_segment<T, decltype(traits)>(p, b, n0, L);
                   });
      const float* sc = step_counts.data_ptr<float>();
      const float* ss = step_spikes.data_ptr<float>();
      float* total_counts = counts.data_ptr<float>();
      float* spikes_t = s.spikes.data_ptr<float>() + t * BN;
      for (int64_t k = 0; k < BN; ++k) {
        total_counts[k] += sc[k];
        spikes_t[k] = ss[k];
      }
      if (keep_sequences) {
        std::copy(p.v, p.v + BN, s.v_post.data_ptr<T>() + t * BN);
      }
      if (t + 1 < steps) rec = linear_map(step_spikes, weight, bias);
    }
  });
  return counts;
}

// The CPU's own backward steps of the LIF family (device_cpu.h): each thread runs the whole
// reverse time loop for a chunk of the batch; the weight gradient's sum visits only the spikes.
RecurrentGradients run_recurrent_backward(OnCpu, BackwardCall& c, const RecurrentSaved& s,
                                          const RecurrentIncoming& incoming,
                                          const Tensor& weight,
                                          bool weight_grad) {
  const Tensor& spikes = s.spikes;
  const Tensor &v_hat_tm = s.v_hat, &i_seq_tm = s.i_seq, &totals_tm = s.totals,
               &v_post_tm = s.v_post;
  const int64_t steps = v_hat_tm.size(0), B = v_hat_tm.size(1), N = v_hat_tm.size(2), BN = B * N;
  const auto opts = v_hat_tm.options();
  const Tensor like = at::empty({1, 1, 1}, opts).expand({B, steps, N});  // shape and options
  Tensor zeros_row = at::zeros({N}, opts);  // also what the absent gradients read
  const RowSource g_spikes = row_source(incoming.spikes, like, "grad_spikes", zeros_row);
  const RowSource g_counts =
      row_source(incoming.counts, at::empty({B, N}, opts), "grad_counts", zeros_row);
  const RowSource g_v_hat = row_source(incoming.v_hat, v_hat_tm, "grad_v_hat_tm", zeros_row);
  const RowSource g_i_seq = row_source(incoming.i_seq, v_hat_tm, "grad_i_seq_tm", zeros_row);
  Tensor g_input_tm = pooled_empty({steps, B, N}, opts);
  Tensor g_spikes_step = at::empty({B, N}, opts);  // output, counts and recurrent gradients
  const auto f64 = opts.dtype(at::kDouble);
  Tensor g_am_total = c.g_alpha_mem.defined() ? at::zeros({B, N}, f64) : Tensor();
  Tensor g_as_total = c.g_alpha_syn.defined() ? at::zeros({B, N}, f64) : Tensor();
  Tensor g_am_step = c.g_alpha_mem.defined() ? at::empty({B, N}, f64) : Tensor();
  Tensor g_as_step = c.g_alpha_syn.defined() ? at::empty({B, N}, f64) : Tensor();
  // Batch entries are independent through the recurrence (the weights are shared, the states
  // are not), so each thread runs the whole reverse time loop for its own rows, with its own
  // single-threaded products: no synchronisation per step. (The forward cannot do the same: its
  // products must round as nn.Linear's over the whole batch.)
  // At least one (an empty chunk for a batch of 0: B / chunks below must not divide by zero).
  const int64_t chunks = std::max<int64_t>(
      1, at::in_parallel_region() ? 1 : std::min<int64_t>(B, at::get_num_threads()));
  // W once, in the padded rows row_products reads (the same for every step and thread).
  const int64_t ld = padded_columns(N);
  Tensor w_packed = pooled_empty({N, ld}, opts.dtype(at::kFloat));
  w_packed.narrow(1, 0, N).copy_(weight);
  w_packed.narrow(1, N, ld - N).zero_();
  AT_DISPATCH_FLOATING_TYPES(v_hat_tm.scalar_type(), "lif_recurrent_backward_cpu", [&] {
    using T = scalar_t;
    const T* gs = g_spikes.storage.data_ptr<T>();
    const T* gc = g_counts.storage.data_ptr<T>();
    // A chunk's work: its rows' neuron updates and (N, N) products for every step.
    const int64_t chunk_work = steps * std::max<int64_t>(B / chunks, 1) * N * (N + 1);
    at::parallel_for(0, chunks, grain_for(chunk_work), [&](int64_t c0, int64_t c1) {
      for (int64_t chunk = c0; chunk < c1; ++chunk) {
        const int64_t b0 = chunk * B / chunks, b1 = (chunk + 1) * B / chunks, rows = b1 - b0;
        const int64_t off = b0 * N, len = rows * N;
        BackwardArgs<T> p = c.args<T>();
        p.steps = 1;
        p.g_counts = Rows<T>{zeros_row.data_ptr<T>(), 0, 0};
        Tensor g_rec = at::empty({rows, ld}, opts.dtype(at::kFloat));
        // Step t + 1's input gradient in float32 (the dtype of nn.Linear's output): the rows of
        // g_input_tm themselves, or for float64 a copy.
        Tensor g_next = std::is_same_v<T, float> ? Tensor() : at::empty({rows, N}, g_rec.options());
        for (int64_t t = steps - 1; t >= 0; --t) {
          // dL/ds_t: the output's and the counts' gradients, and through rec the gradient of
          // step t + 1's input: g_input_{t+1} W.
          if (t + 1 < steps) {
            const float* a = as_float(g_input_tm.data_ptr<T>() + (t + 1) * BN + off, len,
                                      data_or_null<float>(g_next));
            row_products(a, N, rows, N, w_packed.data_ptr<float>(), N, g_rec.data_ptr<float>());
          }
          const float* gr = t + 1 < steps ? g_rec.data_ptr<float>() : nullptr;
          T* comb = g_spikes_step.data_ptr<T>();
          for (int64_t b = b0; b < b1; ++b) {
            const T* gs_row = gs + b * g_spikes.b_stride + t * g_spikes.t_stride;
            const T* gc_row = gc + b * g_counts.b_stride;
            const float* gr_row = gr ? gr + (b - b0) * ld : nullptr;
            for (int64_t n = 0; n < N; ++n) {
              comb[b * N + n] = gs_row[n] + gc_row[n] + static_cast<T>(gr_row ? gr_row[n] : 0.0f);
            }
          }
          p.g_spikes = Rows<T>{comb, N, 0};
          p.g_v_hat =
              Rows<T>{g_v_hat.storage.data_ptr<T>() + t * g_v_hat.b_stride, g_v_hat.t_stride, 0};
          p.g_i_seq =
              Rows<T>{g_i_seq.storage.data_ptr<T>() + t * g_i_seq.b_stride, g_i_seq.t_stride, 0};
          p.v_hat = v_hat_tm.data_ptr<T>() + t * BN;
          if (p.i_seq) p.i_seq = i_seq_tm.data_ptr<T>() + t * BN;
          if (p.input.data) p.input = Rows<T>{totals_tm.data_ptr<T>() + t * BN, N, 0};
          if (p.v0) p.v0 = t > 0 ? v_post_tm.data_ptr<T>() + (t - 1) * BN : c.v0.data_ptr<T>();
          p.g_input = OutRows<T>{g_input_tm.data_ptr<T>() + t * BN, N, 0};
          p.g_alpha_mem = data_or_null<double>(g_am_step);
          p.g_alpha_syn = data_or_null<double>(g_as_step);
          run_segments(c.opt, c.prm, c.syn, b0, b1, N,
                       [&](auto traits, int64_t b, int64_t n0, int64_t L) {
                         backward_segment<T, decltype(traits)>(p, b, n0, L);
                       });
          for (const auto& [total, step] :
               {std::pair{g_am_total, g_am_step}, std::pair{g_as_total, g_as_step}}) {
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
  if (weight_grad && steps > 1) {
    // dL/dbias = sum_t g_input_{t+1}.
    const Tensor g = g_input_tm.narrow(0, 1, steps - 1).to(at::kFloat);
    g_weight = recurrent_weight_grad(g, spikes.contiguous());
    g_bias =
        g.sum(at::IntArrayRef{0, 1});  // not sum({0, 1}): ambiguous with torch 2.11's overloads
  } else if (weight_grad) {
    g_weight = at::zeros_like(weight);
    g_bias = at::zeros({N}, weight.options());
  }
  return {g_input_tm, {g_am_total, g_as_total}, g_weight, g_bias};
}

TORCH_LIBRARY_IMPL(sinabs_fast, CPU, m) {
  register_entry<kLifRecurrentForward, &lif_recurrent_forward<OnCpu>>(m);
  register_entry<kLifRecurrentBackward, &lif_recurrent_backward<OnCpu>>(m);
}

}  // namespace sinabs_fast
