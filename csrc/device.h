// How an op's host entry meets a device. Each op has ONE host entry, a template over a device
// policy (lif_op.h, alif_op.h): it validates the arguments, allocates the outputs, fills the
// call's plain parameter struct and returns Device::launch(call). A device policy is a struct
//
//   struct OnSomeDevice {
//     // where large outputs come from (the CPU's recycling pool, torch's CUDA allocator)
//     static at::Tensor empty(at::IntArrayRef sizes, const at::TensorOptions& options);
//     // the kernels on a prepared call (on the device's current stream); the op's outputs
//     static Result launch(const Call& call);  // one overload per call type
//   };
//
// cpu/device_cpu.h and cuda/device_cuda.cuh declare the two devices' policies; the device files
// (cpu/*_cpu.cpp, cuda/*_cuda.cu) define their launches next to their kernels and register the
// entries instantiated with them. The recurrent op (cpu/lif_recurrent_cpu.cpp) instantiates the
// LIF entries with a policy whose launch returns the prepared call itself, and runs it step by
// step.
#pragma once

#include <ATen/ATen.h>
#include <c10/core/DeviceGuard.h>

namespace sinabs_fast {

// Allocations and launches go to the device of the entry's first tensor (a no-op on the CPU).
using DeviceGuard = c10::DeviceGuard;

}  // namespace sinabs_fast
