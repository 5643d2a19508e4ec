// Helpers shared by the CUDA kernels: launch geometry, the launch itself and read-only loads.
#pragma once

#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
// at::cuda::getCurrentCUDAStream (at::cuda re-exports c10::cuda). Not ATen/cuda/CUDAContext.h:
// that one also needs the cuBLAS/cuSPARSE/cuSOLVER headers, which a minimal toolkit lacks.
#include <c10/cuda/CUDAStream.h>

#include <type_traits>

#include "sinabs_fast/macros.h"

namespace sinabs_fast {

using at::Tensor;

constexpr int kThreads = 256;

// __launch_bounds__'s minimum of resident blocks per SM that caps a kernel in type T at
// float_regs registers per thread. In float, a cap of 32 fits 8 blocks of 256 threads, a full
// sm_80/sm_90 SM (2048 threads), so a grid of B * N threads runs in as few waves as the card
// allows (the uncapped LIF backward used 45 registers: 62.5% occupancy and 1.55 waves at T=500,
// B=16, N=16384). Each kernel names the cap it fits under without spilling much (ptxas -v, in
// benchmarks/gpu-notes.md). Doubles need about twice the registers and keep the compiler's choice.
template <typename T>
constexpr int min_blocks_per_sm(int float_regs) {
  return sizeof(T) > 4 ? 1 : 65536 / (kThreads * float_regs);
}

// Time steps that a kernel's loop asks the L2 cache for ahead of their loads. Each warp otherwise
// waits one DRAM latency per step (the loop loads a step's rows and uses them at once); a
// prefetch holds no register, so it adds bytes in flight without lowering the occupancy that
// the register cap buys. 8 steps of two float rows at B * N = 262144 neurons are 16 MiB of L2.
constexpr int64_t kPrefetchSteps = 8;

// Asks the L2 cache for the line that holds *p (no register, no fault semantics needed: the
// callers only name elements inside their tensors).
template <typename T>
__device__ SF_INLINE void prefetch_l2(const T* p) {
  asm volatile("prefetch.global.L2 [%0];" ::"l"(p));
}

// Read-only loads through the non-coherent cache: the kernels never write what they read this way.
template <typename T>
__device__ SF_INLINE T ld(const T* p) {
  return __ldg(p);
}

// A read-only load in the compute type T: of a T as it is, of a 16-bit float (c10::BFloat16,
// c10::Half: a 16-bit input, or its spikes' gradient) from its bits, widened exactly.
template <typename T, typename X>
__device__ SF_INLINE T ld_as(const X* p) {
  if constexpr (std::is_same_v<T, X>) {
    return __ldg(p);
  } else {
    static_assert(sizeof(X) == 2, "ld_as reads a T or a 16-bit float");
    return static_cast<T>(X(__ldg(reinterpret_cast<const unsigned short*>(p)), X::from_bits()));
  }
}

inline int64_t num_blocks(int64_t items) { return (items + kThreads - 1) / kThreads; }

// A thread's neuron in the grid of launch_per_neuron: flat index idx = b * N + n. The last
// block's spare threads get an idx past batch * N, which the kernel checks.
struct ThreadNeuron {
  int64_t idx, b, n;
};

__device__ SF_INLINE ThreadNeuron thread_neuron(int64_t N) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t b = idx / N;
  return {idx, b, idx - b * N};
}

// Launches kernel(p) on the current stream with one thread per (batch, neuron) of p (the
// kernels' grid) and shared_bytes of dynamic shared memory per block; an empty grid launches
// nothing.
template <typename Args>
void launch_per_neuron(void (*kernel)(Args), const Args& p, size_t shared_bytes = 0) {
  const int64_t items = p.batch * p.N;
  if (items == 0) return;
  kernel<<<num_blocks(items), kThreads, shared_bytes, at::cuda::getCurrentCUDAStream()>>>(p);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace sinabs_fast
