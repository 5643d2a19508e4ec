// Portability macros shared by the CPU (.cpp) and CUDA (.cu) translation units.
#pragma once

#if defined(__CUDACC__) || defined(__HIPCC__)
#define SF_HOST_DEVICE __host__ __device__
#define SF_INLINE __forceinline__
#else
#define SF_HOST_DEVICE
#define SF_INLINE inline __attribute__((always_inline))
#endif

// Marks pointers that never alias; the CPU vectoriser needs it to fuse the neuron loop.
#if defined(__CUDACC__)
#define SF_RESTRICT __restrict__
#else
#define SF_RESTRICT __restrict
#endif
