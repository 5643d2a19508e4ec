// How an op's host entry meets a device. Each op has ONE host entry, a template over a device
// policy (lif_op.h, alif_op.h): it validates the arguments, allocates the outputs, fills the
// call's plain parameter struct and returns Device::launch(call). A device policy is a struct
//
//   struct OnSomeDevice {
//     // where large outputs come from (the CPU's recycling pool, torch's CUDA allocator)
//     static at::Tensor empty(at::IntArrayRef sizes, const at::TensorOptions& options);
//     // the same in a given layout (an input gradient laid out like a time-major input)
//     static at::Tensor empty_strided(at::IntArrayRef sizes, at::IntArrayRef strides,
//                                     const at::TensorOptions& options);
//     // the kernels on a prepared call (on the device's current stream); the op's outputs
//     static Result launch(const Call& call);  // one overload per call type
//     // optional, none by default: what the device's LIF kernels do beyond the CPU's
//     static constexpr DeviceFeatures kFeatures{...};
//   };
//
// cpu/device_cpu.h and cuda/device_cuda.cuh declare the two devices' policies; the device files
// (cpu/*_cpu.cpp, cuda/*_cuda.cu) define their launches next to their kernels and register the
// entries instantiated with them. The recurrent ops (recurrent_op.h) instantiate the neuron
// entries with a policy whose launch returns the prepared call itself (PreparedStep,
// recurrent_steps.h), and run it step by step with the device's launch; a device with time loops
// of its own for a call type overloads run_recurrent_forward / run_recurrent_backward
// (recurrent_steps.h) for its policy (the CPU for the LIF family: cpu/device_cpu.h).
#pragma once

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <c10/core/DeviceGuard.h>
#include <torch/library.h>

#include <optional>
#include <string>
#include <type_traits>

namespace sinabs_fast {

// What a device's LIF kernels do beyond the CPU's.
struct DeviceFeatures {
  // The backward recomputes from checkpoints of the forward's states (kCheckpointSteps in
  // lif_kernel_args.h), which a forward that keeps no v_hat then writes.
  bool checkpoints = false;
  // The kernels read a bfloat16 or float16 input (and write its spikes and gradient) as it is,
  // computing in float32.
  bool half_io = false;
};

// Device::kFeatures, or none for a policy without it.
template <typename Device, typename = void>
inline constexpr DeviceFeatures features_of{};
template <typename Device>
inline constexpr DeviceFeatures features_of<Device, std::void_t<decltype(Device::kFeatures)>> =
    Device::kFeatures;

// Allocations and launches go to the device of the entry's first tensor (a no-op on the CPU).
using DeviceGuard = c10::DeviceGuard;

// The device of a present tensor argument (absent: None, undefined or empty), else nullopt.
template <typename Arg>
std::optional<c10::Device> present_device(const Arg& arg) {
  if constexpr (std::is_same_v<Arg, at::Tensor>) {
    return arg.defined() && arg.numel() > 0 ? std::optional<c10::Device>(arg.device())
                                            : std::nullopt;
  } else if constexpr (std::is_same_v<Arg, std::optional<at::Tensor>>) {
    return arg.has_value() ? present_device(*arg) : std::nullopt;
  } else {
    return std::nullopt;
  }
}

// Raises, naming the arguments by the op's schema, unless every present tensor argument is on one
// device. devices: one entry per argument, in schema order.
void check_one_device(const char* op, std::initializer_list<std::optional<c10::Device>> devices);

// An entry registered as op `Name`, behind check_one_device: the dispatcher picks the kernel by
// the tensors' devices, so a CPU tensor among CUDA ones would otherwise reach a CUDA kernel.
template <const char* Name, auto Entry>
struct OnOneDevice;

template <const char* Name, typename Result, typename... Args, Result (*Entry)(Args...)>
struct OnOneDevice<Name, Entry> {
  static Result call(Args... args) {
    check_one_device(Name, {present_device(args)...});
    return Entry(args...);
  }
};

// m.impl(Name, entry), with the device check.
template <const char* Name, auto Entry>
void register_entry(torch::Library& m) {
  m.impl(Name, &OnOneDevice<Name, Entry>::call);
}

// The op names, for register_entry.
inline constexpr char kLifForward[] = "lif_forward";
inline constexpr char kLifBackward[] = "lif_backward";
inline constexpr char kAlifForward[] = "alif_forward";
inline constexpr char kAlifBackward[] = "alif_backward";
inline constexpr char kLifRecurrentForward[] = "lif_recurrent_forward";
inline constexpr char kLifRecurrentBackward[] = "lif_recurrent_backward";
inline constexpr char kAlifRecurrentForward[] = "alif_recurrent_forward";
inline constexpr char kAlifRecurrentBackward[] = "alif_recurrent_backward";

}  // namespace sinabs_fast
