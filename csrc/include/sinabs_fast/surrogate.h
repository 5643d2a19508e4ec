// Surrogate gradients of the spike functions, shared by the CPU and CUDA backward kernels.
// Formulas and defaults follow sinabs.activation.surrogate_gradient_fn, whose torch expressions
// sinabs_fast/activation/surrogate_gradient_fn.py repeats; the evaluation order mirrors them so
// that the gradients agree to rounding.
#pragma once

#include <cmath>
#include <cstdint>

#include "sinabs_fast/macros.h"

namespace sinabs_fast {

// Unqualified calls below then pick the float overloads for float (expf, not exp on a double),
// whatever the include order, on the host and on the device.
using std::exp;
using std::fabs;
using std::floor;
using std::sqrt;

// Precomputed: the surrogate was evaluated outside the kernel (any Python callable) and is read
// from a tensor of the same shape as the saved membrane.
enum class SurrogateKind : int64_t {
  SingleExponential = 0,  // params: grad_width, grad_scale
  PeriodicExponential = 1,  // params: grad_width, grad_scale
  Heaviside = 2,            // params: window
  Gaussian = 3,             // params: mu, sigma, grad_scale
  MultiGaussian = 4,        // params: mu, sigma, h, s, grad_scale
  Precomputed = 5,
};

constexpr int kMaxSurrogateParams = 5;

// The surrogate's parameters in the kernel's compute type.
template <typename T>
struct SurrogateParams {
  SurrogateKind kind;
  T p[kMaxSurrogateParams];
};

// exp for the surrogates, whose arguments are never positive. On the device it is expf (as
// torch's CUDA exp). On the host it is a branch-free Cephes-style expf (max error ~1 ulp) that
// vectorises, where libm's expf would keep the backward loop scalar; gradients only need to
// agree to rounding. Arguments below -87.3 give 0 (exact exp would be subnormal).
SF_HOST_DEVICE SF_INLINE float surrogate_exp(float x) {
#if defined(__CUDA_ARCH__)
  return expf(x);
#else
  const bool nan = x != x;
  const bool underflow = x < -87.3f;
  x = underflow || nan ? 0.0f : (x > 0.0f ? 0.0f : x);
  const float n = floorf(x * 1.44269504088896341f + 0.5f);
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float y = p * (r * r) + r + 1.0f;
  const float scale = __builtin_bit_cast(float, (static_cast<int32_t>(n) + 127) << 23);
  const float result = y * scale;
  return nan ? __builtin_nanf("") : (underflow ? 0.0f : result);
#endif
}

SF_HOST_DEVICE SF_INLINE double surrogate_exp(double x) { return exp(x); }

// Normal density exp(-(x - mu)^2 / (2 sigma^2)) / (sigma * sqrt(2 pi)), as sinabs' gaussian().
template <typename T>
SF_HOST_DEVICE SF_INLINE T gaussian_density(T x, T mu, T sigma) {
  const T two_pi = T(6.283185307179586);
  const T d = x - mu;
  return surrogate_exp(-(d * d) / (T(2) * sigma * sigma)) / (sigma * sqrt(two_pi));
}

// One function per surrogate: d spikes / d v_hat at the pre-spike membrane v, threshold thr.
// SingleExponential from 1 / width (width = thr * grad_width), which a kernel may compute once
// per neuron instead of once per step. Multiplying by the reciprocal instead of torch's two
// divisions changes the value by about an ulp; the division is the costliest operation here.
template <typename T>
SF_HOST_DEVICE SF_INLINE T single_exponential_from(T grad_scale, T inv_width, T v, T thr) {
  return grad_scale * inv_width * surrogate_exp(-fabs(v - thr) * inv_width);
}

template <typename T>
SF_HOST_DEVICE SF_INLINE T single_exponential(const T* p, T v, T thr) {
  return single_exponential_from(p[1], T(1) / (thr * p[0]), v, thr);
}

template <typename T>
SF_HOST_DEVICE SF_INLINE T periodic_exponential(const T* p, T v, T thr) {
  const T n = v / thr - T(0.5);
  const T frac = n - floor(n);
  const T periodic = thr * (T(2) * frac - T(1));
  const T below = (v - thr) * static_cast<T>(v < thr);
  const T above = periodic * static_cast<T>(v >= thr);
  return p[1] * surrogate_exp(-fabs(above + below) / p[0]);
}

template <typename T>
SF_HOST_DEVICE SF_INLINE T heaviside(const T* p, T v, T thr) {
  return static_cast<T>(v >= thr - p[0]) / thr;
}

template <typename T>
SF_HOST_DEVICE SF_INLINE T gaussian(const T* p, T v, T thr) {
  return gaussian_density(v - thr, p[0], p[1]) * p[2];
}

template <typename T>
SF_HOST_DEVICE SF_INLINE T multi_gaussian(const T* p, T v, T thr) {
  const T d = v - thr, mu = p[0], sigma = p[1], h = p[2], s = p[3];
  return ((T(1) + h) * gaussian_density(d, mu, sigma) - h * gaussian_density(d, sigma, s * sigma) -
          h * gaussian_density(d, -sigma, s * sigma)) *
         p[4];
}

template <typename T>
SF_HOST_DEVICE SF_INLINE T surrogate_grad(const SurrogateParams<T>& sp, T v, T thr) {
  switch (sp.kind) {
    case SurrogateKind::SingleExponential:
      return single_exponential(sp.p, v, thr);
    case SurrogateKind::PeriodicExponential:
      return periodic_exponential(sp.p, v, thr);
    case SurrogateKind::Heaviside:
      return heaviside(sp.p, v, thr);
    case SurrogateKind::Gaussian:
      return gaussian(sp.p, v, thr);
    case SurrogateKind::MultiGaussian:
      return multi_gaussian(sp.p, v, thr);
    default:
      return T(0);  // Precomputed values never reach this function.
  }
}

}  // namespace sinabs_fast
