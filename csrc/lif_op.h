// The host entries of lif_forward and lif_backward, written once for both devices (see
// device.h): arguments checked, parameters broadcast, outputs allocated, and the kernels' plain
// pointer structs filled; cpu/lif_cpu.cpp and cuda/lif_cuda.cu only add the loops and launches,
// so both devices run one contract.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>

#include <type_traits>

#include "device.h"
#include "op_arguments.h"
#include "sinabs_fast/dispatch.h"

namespace sinabs_fast {

// The kernels' storage type X of the input, the spikes and their gradients: the compute type T,
// or, where a device reads 16-bit floats as they are (CUDA), c10::BFloat16 or c10::Half around a
// float32 computation. The spikes are float32 unless the input is 16-bit.
template <typename X>
using spike_t = std::conditional_t<sizeof(X) == 2, X, float>;

// A (B, T, N) sequence (or (B, N) state, t_stride 0) by rows of N contiguous elements, read or
// written in place through its batch and time strides: element (b, t, n) is at(b, t, n). So a
// time-major view (T, B, N).transpose(0, 1), a slice along N or a RowSource need no copy.
template <typename E>
struct StridedRows {
  E* data;
  int64_t b_stride, t_stride;
  SF_HOST_DEVICE E* at(int64_t b, int64_t t, int64_t n) const {
    return data + b * b_stride + t * t_stride + n;
  }
};

// A sequence the kernels read (the input, the incoming gradients: a RowSource in the kernel's
// type), and one they write (the input gradient).
template <typename T>
using Rows = StridedRows<const T>;
template <typename T>
using OutRows = StridedRows<T>;

// The neuron's parameters and options as both kernels read them: rows of N in the compute type,
// batch entry b at row b * row_stride / N (row_stride is 0 when all entries share one row).
template <typename T>
struct NeuronArgs {
  int64_t row_stride;
  const T *alpha, *in_scale, *alpha_syn, *thr, *amount, *min_v;  // alpha_syn, min_v may be null
  const T* spike_thr;  // the spike function's operand: thr, or 1 / thr for MultiByReciprocal
  float max_spikes;
  T reset_value;
  bool product_in_float;
};

template <typename T>
NeuronArgs<T> neuron_args(const NeuronOptions& opt, const NeuronParams& prm);

// The time steps between two checkpoints of the states, which a forward that keeps no v_hat
// writes on CUDA and the CUDA backward recomputes from (in segments of this many steps, held in
// shared memory: 16 KiB per block of 256 threads in either compute type). A power of two.
template <typename T>
inline constexpr int64_t kCheckpointSteps = sizeof(T) > 4 ? 8 : 16;

// The checkpoints of a (B, T, N) sequence: (B, ceil(T / C), S, N), the states before steps 0, C,
// 2C, ... (S = 1: v_mem; S = 2: v_mem, i_syn), in the compute dtype `dtype`.
std::vector<int64_t> checkpoint_shape(const Extent& e, bool syn, at::ScalarType dtype);

// What every forward kernel reads and writes: the input, the (B, T, N) sequences (nullptr where
// not kept or absent) and the (B, N) states, updated in place; T the compute type, X the input's.
template <typename T, typename X = T>
struct SequenceArgs : Extent {
  using compute_type = T;
  using io_type = X;
  Rows<X> x;           // (B, T, N), rows contiguous
  spike_t<X>* spikes;  // (B, T, N); nullptr without spikes
  T* v_hat;       // (B, T, N) pre-spike membrane; nullptr: not kept
  T* i_seq;       // (B, T, N) synaptic current; nullptr: not kept
  T* v;           // (B, N): the initial state on entry, the final state on exit
  T* i;           // (B, N) synaptic current, likewise; nullptr without
  float* counts;  // (B, N) spikes summed over T; nullptr without spikes
  T* checkpoints;  // (B, ceil(T / C), S, N) (checkpoint_shape); nullptr: not written
};

// A forward call's input and the outputs every forward op has.
struct SequenceCall : Extent {
  Tensor x, spikes, v_hat, i_seq, v_out, i_out, counts, checkpoints;

  // Takes the input (B, T, N) and allocates the outputs: the spikes and their counts when
  // `spiking`, v_hat and i_seq when kept, the checkpoints when `checkpoint` (absent ones empty),
  // and the final states as copies of the initial ones, in their shapes (they become the layer's
  // states, not views).
  template <typename Device>
  void start(const Tensor& input, const Tensor& v_mem, const std::optional<Tensor>& i_syn,
             bool spiking, bool keep_v_hat, bool keep_i_seq, bool checkpoint = false);

  template <typename T, typename X>
  void fill(SequenceArgs<T, X>& p) const;
};

template <typename T, typename X = T>
struct ForwardArgs : SequenceArgs<T, X> {
  NeuronArgs<T> prm;
};

struct ForwardCall : SequenceCall {
  NeuronOptions opt;
  NeuronParams prm;
  bool syn, spiking;

  template <typename T, typename X = T>
  ForwardArgs<T, X> args() const;
  ForwardResult result() const {
    return {spikes, v_hat, i_seq, v_out, i_out, counts, checkpoints};
  }
};

// What every backward kernel reads and writes besides its neuron's own: the incoming gradients
// by rows, the surrogate, the input gradient, the adjoint states and the alpha gradients' sums
// (T, X: as in SequenceArgs).
template <typename T, typename X = T>
struct AdjointArgs : Extent {
  using compute_type = T;
  using io_type = X;
  Rows<X> g_spikes;                     // incoming gradients (zeros where absent)
  Rows<T> g_v_hat, g_i_seq, g_counts;
  bool norm_input;
  SurrogateParams<T> surrogate;
  OutRows<X> g_input;  // (B, T, N), laid out by empty_input_gradient
  T* lambda_v;  // (B, N): the final state's gradient on entry, the initial state's on exit
  T* lambda_i;  // likewise for the synaptic current; nullptr without
  double* g_alpha_mem;  // (B, N) sums over time, or nullptr
  double* g_alpha_syn;
};

struct AdjointCall : Extent {
  SurrogateParams<double> surrogate;
  bool norm_input, syn;
  RowSource g_spikes, g_v_hat, g_i_seq, g_counts;
  Tensor g_input, lambda_v, lambda_i, g_alpha_mem, g_alpha_syn;
  Tensor zero_row;  // the one row of zeros that absent incoming gradients share
  Tensor zero_spikes_row;  // the same for 16-bit spikes

  // The incoming gradients of the outputs both neuron kinds have, read by rows of sequences
  // like `like` (B, T, N) and states like `state_like` (B, N); the spikes' like `spikes_like`
  // where given (16-bit spikes).
  void read_gradients(const std::optional<Tensor>& grad_spikes,
                      const std::optional<Tensor>& grad_v_hat,
                      const std::optional<Tensor>& grad_i_seq,
                      const std::optional<Tensor>& grad_counts, const Tensor& like,
                      const Tensor& state_like, const Tensor& spikes_like = Tensor());

  template <typename T, typename X>
  void fill(AdjointArgs<T, X>& p) const;
};

template <typename T, typename X = T>
struct BackwardArgs : AdjointArgs<T, X> {
  // recompute: v_hat (and i_seq) were not kept; the backward runs the forward again, segment by
  // segment, from the input and the initial states (v0, i0) into scratch that stays in cache.
  bool recompute;
  const T* v_hat;
  const T* i_seq;  // for the alpha gradients with synaptic current
  Rows<X> input;   // for the alpha_mem gradient with norm_input and no synaptic current;
                   // data nullptr when absent
  const T* v0;     // initial membrane (alpha_mem gradient at t = 0; recomputation)
  const T* i0;     // initial synaptic current (recomputation), or nullptr
  const T* sigma;  // precomputed surrogate (B, T, N), or nullptr
  const T* checkpoints;  // the forward's (CUDA: what the recomputation starts from), or nullptr
  NeuronArgs<T> prm;
  bool stream_g_input = false;  // CPU: write g_input past the cache (nothing reads it soon)
};

struct BackwardCall : AdjointCall {
  NeuronOptions opt;
  NeuronParams prm;
  bool spiking, recompute;
  Tensor v_hat;  // undefined when recomputing
  RowSource input;  // storage undefined where not needed
  Tensor sigma, i_seq, v0, i0, checkpoints;  // undefined where not needed
  Tensor alpha_mem, alpha_syn;  // the parameters as given, for the gradients' shapes

  template <typename T, typename X = T>
  BackwardArgs<T, X> args() const;
  BackwardResult result() const;
};

// The compute type T and the storage type X of kernel arguments such as ForwardArgs<T, X>.
template <typename Args>
using scalar_of = typename std::decay_t<Args>::compute_type;
template <typename Args>
using io_of = typename std::decay_t<Args>::io_type;

// The one dispatch of a LIF call's launch, on either device: f(args, traits) with the call's
// kernel arguments and the LifTraits of its kernel instantiation (sinabs_fast/dispatch.h). The
// dtype of `like` (the input, or its gradient) is the compute type, or, with HalfIo, a 16-bit
// storage type around float32; Name is the launch's name in the error for an unsupported dtype.
template <const char* Name, bool HalfIo = false, typename Call, typename F>
void with_lif_kernel(const Call& c, const Tensor& like, F&& f) {
  const auto run = [&](auto compute, auto io) {
    auto p = c.template args<decltype(compute), decltype(io)>();
    dispatch_neuron(c.opt.spike, c.opt.reset, c.syn, c.prm.min_v_mem.defined(), c.prm.per_neuron,
                    [&](auto traits) { f(p, traits); });
  };
  if constexpr (HalfIo) {
    if (like.scalar_type() == at::kBFloat16) return run(float(), c10::BFloat16());
    if (like.scalar_type() == at::kHalf) return run(float(), c10::Half());
  }
  AT_DISPATCH_FLOATING_TYPES(like.scalar_type(), Name, [&] { run(scalar_t(), scalar_t()); });
}

// The input gradient: an uninitialised tensor of like's sizes and options (B, T, N) from the
// device's allocator, laid out as the input where the backward gets one of like's sizes that is
// dense with contiguous rows (a time-major view: autograd would otherwise copy the gradient into
// the input's layout), else contiguous. The fake kernels give the same
// (FakeOutputs.input_gradient in sinabs_fast/ops/fake_outputs.py).
template <typename Device>
Tensor empty_input_gradient(const Tensor& like, const std::optional<Tensor>& input) {
  if (present(input) && input->sizes() == like.sizes() && input->is_non_overlapping_and_dense() &&
      rows_contiguous(*input)) {
    return Device::empty_strided(like.sizes(), input->strides(), like.options());
  }
  return Device::empty(like.sizes(), like.options());
}

// ------------------------------------------------------------------------------------------------
// The host entries (the schemas' argument lists, csrc/sinabs_fast.cpp). The surrogate arguments
// of lif_forward are only read by the backward.

template <typename Device>
decltype(auto) lif_forward(const Tensor& input, const Tensor& v_mem,
                           const std::optional<Tensor>& i_syn, const Tensor& alpha_mem,
                           const std::optional<Tensor>& alpha_syn, bool norm_input,
                           const Tensor& threshold, const Tensor& reset_amount,
                           const std::optional<Tensor>& min_v_mem, int64_t spike_kind,
                           double max_spikes, int64_t reset_kind, double reset_value,
                           int64_t /*surrogate_kind*/, at::ArrayRef<double> /*surrogate_params*/,
                           bool keep_v_hat, bool keep_i_syn) {
  const DeviceGuard guard(input.device());
  check_forward_inputs(input, v_mem, i_syn, alpha_syn, features_of<Device>.half_io);
  ForwardCall c;
  c.opt = make_options(spike_kind, max_spikes, reset_kind, reset_value);
  c.prm = prepare_params(compute_like(input), alpha_mem, alpha_syn, norm_input, threshold,
                         reset_amount, min_v_mem);
  use_exact_reciprocal(c.opt, c.prm);
  c.syn = alpha_syn.has_value();
  c.spiking = c.opt.spike != SpikeKind::None;
  // Without v_hat, a device whose backward recomputes from checkpoints gets them (see
  // kCheckpointSteps).
  c.start<Device>(input, v_mem, i_syn, c.spiking, keep_v_hat, c.syn && keep_i_syn,
                  !keep_v_hat && features_of<Device>.checkpoints);
  return Device::launch(c);
}

template <typename Device>
decltype(auto) lif_backward(
    const std::optional<Tensor>& grad_spikes, const std::optional<Tensor>& grad_v_hat,
    const std::optional<Tensor>& grad_i_seq, const std::optional<Tensor>& grad_v_mem,
    const std::optional<Tensor>& grad_i_syn, const std::optional<Tensor>& grad_counts,
    const Tensor& v_hat, const Tensor& i_seq, const Tensor& v_mem,
    const std::optional<Tensor>& i_syn, const std::optional<Tensor>& input, const Tensor& alpha_mem,
    const std::optional<Tensor>& alpha_syn, bool norm_input, const Tensor& threshold,
    const Tensor& reset_amount, const std::optional<Tensor>& min_v_mem, int64_t spike_kind,
    double max_spikes, int64_t reset_kind, double reset_value, int64_t surrogate_kind,
    at::ArrayRef<double> surrogate_params, const std::optional<Tensor>& surrogate_values,
    bool alpha_mem_grad, bool alpha_syn_grad,
    const std::optional<Tensor>& checkpoints = std::nullopt) {
  const DeviceGuard guard(v_hat.numel() || !input.has_value() ? v_hat.device() : input->device());
  BackwardCall c;
  c.syn = alpha_syn.has_value();
  // Without v_hat, the backward recomputes the forward from the input and the initial states.
  // An empty (batch, time, neurons) v_hat is an empty problem's: nothing to recompute.
  c.recompute = v_hat.numel() == 0 && v_hat.dim() != 3;
  if (c.recompute) {
    TORCH_CHECK(input.has_value() && input->dim() == 3,
                "sinabs_fast: without v_hat the backward recomputes the forward and needs the "
                "input (batch, time, neurons)");
    TORCH_CHECK(!c.syn || (i_syn.has_value() && i_syn->numel() == v_mem.numel()),
                "sinabs_fast: without v_hat the backward needs the initial i_syn");
  } else {
    TORCH_CHECK(v_hat.dim() == 3, "sinabs_fast: v_hat must have shape (batch, time, neurons), got ",
                v_hat.sizes());
  }
  // The (B, T, N) sequence that gives the shape and dtype: v_hat, or the input (read in place
  // by its strides, as in SequenceCall::start) when recomputing. A 16-bit input (read as it is,
  // features_of<Device>.half_io) gives its dtype to the input's gradient and the spikes'
  // (`like`); the rest is in float32 (`compute`).
  const Tensor& like = c.recompute ? *input : v_hat;
  TORCH_CHECK(like.scalar_type() == at::kFloat || like.scalar_type() == at::kDouble ||
                  (features_of<Device>.half_io && c.recompute && is_16bit(like)),
              "sinabs_fast: the backward computes in float32 or float64 (from a bfloat16 or "
              "float16 input on CUDA when recomputing), got ", like.scalar_type());
  const Tensor compute = compute_like(like);
  c.opt = make_options(spike_kind, max_spikes, reset_kind, reset_value);
  c.prm = prepare_params(compute, alpha_mem, alpha_syn, norm_input, threshold, reset_amount,
                         min_v_mem);
  use_exact_reciprocal(c.opt, c.prm);
  c.surrogate = make_surrogate(surrogate_kind, surrogate_params);
  c.norm_input = norm_input;
  c.spiking = c.opt.spike != SpikeKind::None;
  c.v_hat = c.recompute ? Tensor() : v_hat.contiguous();
  c.set_extent(extent_of(like));
  c.alpha_mem = alpha_mem;
  if (c.syn) c.alpha_syn = *alpha_syn;
  const Tensor state_like = at::empty({c.batch, c.N}, compute.options());
  c.read_gradients(grad_spikes, grad_v_hat, grad_i_seq, grad_counts, compute, state_like, like);
  c.sigma = optional_like(surrogate_values, compute, "surrogate_values");
  TORCH_CHECK(c.surrogate.kind != SurrogateKind::Precomputed || !c.spiking || c.sigma.defined(),
              "sinabs_fast: surrogate_kind 5 (precomputed) needs surrogate_values");
  const bool need_i_seq = c.syn && (alpha_syn_grad || alpha_mem_grad) && !c.recompute;
  TORCH_CHECK(!need_i_seq || i_seq.sizes() == like.sizes(),
              "sinabs_fast: the alpha gradients with synaptic current need i_seq of shape ",
              like.sizes(), ", got ", i_seq.sizes());
  TORCH_CHECK(!need_i_seq || i_seq.device() == like.device(), "sinabs_fast: i_seq is on ",
              i_seq.device(), " but v_hat is on ", like.device());
  if (need_i_seq) c.i_seq = i_seq.to(like.scalar_type()).contiguous();
  if (c.recompute || (alpha_mem_grad && norm_input && !c.syn)) {
    // An empty problem's input is empty (read as absent); no kernel reads it.
    TORCH_CHECK(present(input) || c.batch * c.N == 0,
                "sinabs_fast: the alpha_mem gradient with norm_input needs the input");
    if (present(input)) c.input = row_source(input, like, "input", c.zero_row);
  }
  if (c.recompute || alpha_mem_grad) {
    TORCH_CHECK(v_mem.numel() == c.batch * c.N,
                "sinabs_fast: the alpha_mem gradient needs the initial v_mem");
    c.v0 = optional_like(v_mem.reshape({c.batch, c.N}), state_like, "v_mem");
  }
  if (c.recompute && c.syn) {
    c.i0 = optional_like(i_syn->reshape({c.batch, c.N}), state_like, "i_syn");
  }
  if (c.recompute && checkpoints.has_value() && checkpoints->numel()) {
    const auto shape = checkpoint_shape(c, c.syn, compute.scalar_type());
    TORCH_CHECK(checkpoints->sizes() == at::IntArrayRef(shape),
                "sinabs_fast: checkpoints must have shape ", at::IntArrayRef(shape), ", got ",
                checkpoints->sizes());
    TORCH_CHECK(checkpoints->device() == like.device(), "sinabs_fast: checkpoints are on ",
                checkpoints->device(), " but the input is on ", like.device());
    c.checkpoints = checkpoints->to(compute.scalar_type()).contiguous();
  }
  c.g_input = empty_input_gradient<Device>(like, input);
  c.lambda_v = adjoint_start(optional_like(grad_v_mem, state_like, "grad_v_mem"), state_like);
  c.lambda_i = c.syn ? adjoint_start(optional_like(grad_i_syn, state_like, "grad_i_syn"), state_like)
                     : at::empty({0}, like.options());
  const auto f64 = compute.options().dtype(at::kDouble);
  if (alpha_mem_grad) c.g_alpha_mem = at::empty({c.batch, c.N}, f64);
  if (c.syn && alpha_syn_grad) c.g_alpha_syn = at::empty({c.batch, c.N}, f64);
  return Device::launch(c);
}

// ------------------------------------------------------------------------------------------------

template <typename T>
T* data_or_null(const Tensor& t) {
  return t.defined() ? t.data_ptr<T>() : nullptr;
}

// An output's data, or nullptr when it has no elements (not kept, or absent).
template <typename T>
T* data_if_any(const Tensor& t) {
  return t.numel() ? t.data_ptr<T>() : nullptr;
}

// A RowSource as the kernels read it (data nullptr when its storage is undefined).
template <typename T>
Rows<T> rows_of(const RowSource& src) {
  return Rows<T>{data_or_null<T>(src.storage), src.b_stride, src.t_stride};
}

// A (B, T, N) tensor by its rows, which must be contiguous (rows_contiguous); E is the element
// type, const T to read.
template <typename E>
StridedRows<E> strided_rows(const Tensor& t) {
  return {t.data_ptr<std::remove_const_t<E>>(), t.stride(0), t.stride(1)};
}

template <typename Device>
void SequenceCall::start(const Tensor& input, const Tensor& v_mem,
                         const std::optional<Tensor>& i_syn, bool spiking, bool keep_v_hat,
                         bool keep_i_seq, bool checkpoint) {
  x = rows_contiguous(input) ? input : input.contiguous();  // read in place (StridedRows)
  set_extent(extent_of(x));
  const auto f32 = x.options().dtype(at::kFloat);
  // The sequences and checkpoints in the compute dtype; the spikes float32, or 16-bit as x.
  const auto compute = is_16bit(x) ? f32 : x.options();
  const auto spikes_options = is_16bit(x) ? x.options() : f32;
  const auto none = [&](const at::TensorOptions& o) { return at::empty({0}, o); };
  const auto sequence = [&](bool kept) {
    return kept ? Device::empty(x.sizes(), compute) : none(compute);
  };
  spikes = spiking ? Device::empty(x.sizes(), spikes_options) : none(spikes_options);
  v_hat = sequence(keep_v_hat);
  i_seq = sequence(keep_i_seq);
  v_out = v_mem.contiguous().clone();
  i_out = i_syn.has_value() ? i_syn->contiguous().clone() : none(x.options());
  counts = spiking ? at::empty({batch, N}, f32) : none(f32);
  checkpoints = checkpoint ? at::empty(checkpoint_shape(*this, i_syn.has_value(),
                                                        c10::typeMetaToScalarType(compute.dtype())),
                                       compute)
                          : none(compute);
}

template <typename T, typename X>
void SequenceCall::fill(SequenceArgs<T, X>& p) const {
  p.set_extent(*this);
  p.x = strided_rows<const X>(x);
  p.spikes = data_if_any<spike_t<X>>(spikes);
  p.v_hat = data_if_any<T>(v_hat);
  p.i_seq = data_if_any<T>(i_seq);
  p.v = v_out.data_ptr<T>();
  p.i = data_if_any<T>(i_out);
  p.counts = data_if_any<float>(counts);
  p.checkpoints = data_if_any<T>(checkpoints);
}

template <typename T, typename X>
void AdjointCall::fill(AdjointArgs<T, X>& p) const {
  p.set_extent(*this);
  p.g_spikes = rows_of<X>(g_spikes);
  p.g_v_hat = rows_of<T>(g_v_hat);
  p.g_i_seq = rows_of<T>(g_i_seq);
  p.g_counts = rows_of<T>(g_counts);
  p.norm_input = norm_input;
  p.surrogate = surrogate_as<T>(surrogate);
  p.g_input = strided_rows<X>(g_input);
  p.lambda_v = lambda_v.data_ptr<T>();
  p.lambda_i = syn ? lambda_i.data_ptr<T>() : nullptr;
  p.g_alpha_mem = data_or_null<double>(g_alpha_mem);
  p.g_alpha_syn = data_or_null<double>(g_alpha_syn);
}

template <typename T>
NeuronArgs<T> neuron_args(const NeuronOptions& opt, const NeuronParams& prm) {
  NeuronArgs<T> a;
  a.row_stride = prm.rows > 1 ? prm.threshold.size(1) : 0;
  a.alpha = prm.alpha_mem.data_ptr<T>();
  a.in_scale = prm.in_scale.data_ptr<T>();
  a.alpha_syn = data_or_null<T>(prm.alpha_syn);
  a.thr = prm.threshold.data_ptr<T>();
  a.spike_thr = prm.spike_threshold.data_ptr<T>();
  a.amount = prm.amount.data_ptr<T>();
  a.min_v = data_or_null<T>(prm.min_v_mem);
  a.max_spikes = opt.max_spikes;
  a.reset_value = static_cast<T>(opt.reset_value);
  a.product_in_float = prm.product_in_float;
  return a;
}

template <typename T, typename X>
ForwardArgs<T, X> ForwardCall::args() const {
  ForwardArgs<T, X> p;
  fill(p);
  p.prm = neuron_args<T>(opt, prm);
  return p;
}

template <typename T, typename X>
BackwardArgs<T, X> BackwardCall::args() const {
  BackwardArgs<T, X> p;
  fill(p);
  p.recompute = recompute;
  p.v_hat = data_or_null<T>(v_hat);
  p.i_seq = data_or_null<T>(i_seq);
  p.input = rows_of<X>(input);
  p.v0 = data_or_null<T>(v0);
  p.i0 = data_or_null<T>(i0);
  p.checkpoints = data_or_null<T>(checkpoints);
  p.sigma =
      (spiking && surrogate.kind == SurrogateKind::Precomputed) ? sigma.data_ptr<T>() : nullptr;
  p.prm = neuron_args<T>(opt, prm);
  return p;
}

}  // namespace sinabs_fast
