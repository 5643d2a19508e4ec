// The LIF host calls, written once for both devices (see device.h): a call holds an op's
// checked inputs and allocated outputs as tensors, and fills the kernels' plain argument structs
// (lif_kernel_args.h) from them; with_lif_kernel picks the kernel instantiation. The host entries
// (lif_op.h, alif_op.h) build the calls, the devices' launches run them.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>

#include <type_traits>

#include "device.h"
#include "lif_kernel_args.h"

namespace sinabs_fast {

// The checkpoints of a (B, T, N) sequence: (B, ceil(T / C), S, N), the states before steps 0, C,
// 2C, ... (S = 1: v_mem; S = 2: v_mem, i_syn), in the compute dtype `dtype`.
std::vector<int64_t> checkpoint_shape(const Extent& e, bool syn, at::ScalarType dtype);

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
  SequenceArgs<T, X> sequence_args() const;
};

// A backward call's incoming gradients and the outputs every backward op has.
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
  AdjointArgs<T, X> adjoint_args() const;
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
SequenceArgs<T, X> SequenceCall::sequence_args() const {
  SequenceArgs<T, X> p;
  p.set_extent(*this);
  p.x = strided_rows<const X>(x);
  p.spikes = data_if_any<spike_t<X>>(spikes);
  p.v_hat = data_if_any<T>(v_hat);
  p.i_seq = data_if_any<T>(i_seq);
  p.v = v_out.data_ptr<T>();
  p.i = data_if_any<T>(i_out);
  p.counts = data_if_any<float>(counts);
  p.checkpoints = data_if_any<T>(checkpoints);
  return p;
}

template <typename T, typename X>
AdjointArgs<T, X> AdjointCall::adjoint_args() const {
  AdjointArgs<T, X> p;
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
  return p;
}

// The kernels' ParamRows of a neuron's parameters, with its options' max_spikes and reset value.
template <typename T>
ParamRows<T> param_rows(const ParamTensors& t, float max_spikes, double reset_value) {
  ParamRows<T> r;
  r.row_stride = t.rows > 1 ? t.alpha_mem.size(1) : 0;
  r.alpha = t.alpha_mem.data_ptr<T>();
  r.in_scale = t.in_scale.data_ptr<T>();
  r.alpha_syn = data_or_null<T>(t.alpha_syn);
  r.amount = data_or_null<T>(t.amount);
  r.min_v = data_or_null<T>(t.min_v_mem);
  r.max_spikes = max_spikes;
  r.reset_value = static_cast<T>(reset_value);
  return r;
}

template <typename T>
NeuronArgs<T> neuron_args(const NeuronOptions& opt, const NeuronParams& prm) {
  NeuronArgs<T> a{param_rows<T>(prm, opt.max_spikes, opt.reset_value)};
  a.thr = prm.threshold.data_ptr<T>();
  a.spike_thr = prm.spike_threshold.data_ptr<T>();
  a.product_in_float = prm.product_in_float;
  return a;
}

template <typename T, typename X>
ForwardArgs<T, X> ForwardCall::args() const {
  return {sequence_args<T, X>(), neuron_args<T>(opt, prm)};
}

template <typename T, typename X>
BackwardArgs<T, X> BackwardCall::args() const {
  BackwardArgs<T, X> p{adjoint_args<T, X>()};
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
