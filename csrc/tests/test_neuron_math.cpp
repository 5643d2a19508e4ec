// Unit test of the per-element neuron math in csrc/include/sinabs_fast/ (no torch, no gtest).
// Every expectation comes from an independent reference: the C library (std::trunc, std::fma),
// values derived by hand from sinabs 3.1.3's formulas, or the same arithmetic written out step by
// step through volatile temporaries (one rounding per operation, never fused). Never compare the
// functions against their own copied output.
//
// Build with -ffp-contract=off -fno-trapping-math and without fast-math (see CMakeLists.txt).
// Prints "N passed, M failed" as its last line and exits non-zero when anything failed.

#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "sinabs_fast/adaptive.h"
#include "sinabs_fast/alpha_sums.h"
#include "sinabs_fast/dispatch.h"
#include "sinabs_fast/neuron.h"
#include "sinabs_fast/surrogate.h"

namespace {

namespace sf = sinabs_fast;

int g_passed = 0;
int g_failed = 0;

void report(bool ok, const char* expr, const char* file, int line, const std::string& detail) {
  if (ok) {
    ++g_passed;
    return;
  }
  ++g_failed;
  std::printf("FAIL %s:%d: %s%s%s\n", file, line, expr, detail.empty() ? "" : "  -- ",
              detail.c_str());
}

// CHECK(cond) or CHECK(cond, detail-string): counts the result, prints failures.
#define CHECK(cond, ...) report(static_cast<bool>(cond), #cond, __FILE__, __LINE__, std::string(__VA_ARGS__))

std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char* f, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, f);
  std::vsnprintf(buf, sizeof(buf), f, ap);
  va_end(ap);
  return buf;
}

uint32_t bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}

uint64_t bits(double x) {
  uint64_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}

float from_bits(uint32_t u) {
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}

// Same value bit for bit (so -0.0 != +0.0); any NaN equals any NaN.
bool same(float a, float b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  return bits(a) == bits(b);
}

bool same(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  return bits(a) == bits(b);
}

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// ---------------------------------------------------------------------------------------------
// trunc_exact(float) == std::trunc, bit for bit.

void test_trunc_exact() {
  std::vector<float> xs = {0.0f,  -0.0f,  0.5f,  -0.5f, 0.49999997f, -0.49999997f, 1.0f, -1.0f,
                           1.5f,  -1.5f,  2.5f,  -2.5f, 0.99999994f, -0.99999994f, kInf, -kInf,
                           kNaN,  -kNaN,  1e-45f, -1e-45f, 1.17549435e-38f, -1.17549435e-38f,
                           3.4028235e38f, -3.4028235e38f, 2147483520.0f, -2147483648.0f,
                           2147483648.0f, -2147483904.0f, 4294967296.0f, 1e30f, -1e30f};
  // All floats within 300 ulps of +-2^k around the interesting boundaries (0.5, 1, 2^22, 2^23,
  // 2^24, 2^31), on both sides.
  for (float base : {0.5f, 1.0f, 4194304.0f, 8388608.0f, 16777216.0f, 2147483648.0f}) {
    for (float sign : {1.0f, -1.0f}) {
      float up = sign * base, down = sign * base;
      for (int k = 0; k < 300; ++k) {
        xs.push_back(up);
        xs.push_back(down);
        up = std::nextafter(up, kInf);
        down = std::nextafter(down, -kInf);
      }
    }
  }
  // Random bit patterns: uniform over the exponents, so all magnitudes (subnormals, NaNs with
  // any payload and sign, infinities) appear; plus random values in [-2^25, 2^25].
  std::mt19937 rng(12345);
  std::uniform_int_distribution<uint32_t> any_bits;
  std::uniform_real_distribution<float> moderate(-33554432.0f, 33554432.0f);
  std::uniform_real_distribution<float> unit(-4.0f, 4.0f);
  for (int k = 0; k < 2000000; ++k) xs.push_back(from_bits(any_bits(rng)));
  for (int k = 0; k < 200000; ++k) xs.push_back(moderate(rng));
  for (int k = 0; k < 200000; ++k) xs.push_back(unit(rng));

  int mismatches = 0;
  std::string first;
  for (float x : xs) {
    const float got = sf::trunc_exact(x);
    const float ref = std::trunc(x);
    const bool ok = std::isnan(ref) ? std::isnan(got) : bits(got) == bits(ref);
    if (!ok) {
      if (mismatches < 5)
        first += fmt("[x=%a (%.9g) bits=%08x: got %a bits=%08x, std::trunc %a bits=%08x] ", x, x,
                     bits(x), got, bits(got), ref, bits(ref));
      ++mismatches;
    }
  }
  CHECK(mismatches == 0, fmt("%d of %zu mismatches: %s", mismatches, xs.size(), first.c_str()));

  // Hand-derived spot checks, including the sign of zero.
  CHECK(std::signbit(sf::trunc_exact(-0.5f)) && sf::trunc_exact(-0.5f) == 0.0f);
  CHECK(!std::signbit(sf::trunc_exact(0.5f)) && sf::trunc_exact(0.5f) == 0.0f);
  CHECK(std::signbit(sf::trunc_exact(-0.0f)) && sf::trunc_exact(-0.0f) == 0.0f);
  CHECK(!std::signbit(sf::trunc_exact(0.0f)) && sf::trunc_exact(0.0f) == 0.0f);
  CHECK(sf::trunc_exact(2.75f) == 2.0f);
  CHECK(sf::trunc_exact(-2.75f) == -2.0f);
  CHECK(sf::trunc_exact(8388607.5f) == 8388607.0f);
  CHECK(sf::trunc_exact(-8388607.5f) == -8388607.0f);
  CHECK(sf::trunc_exact(16777216.0f) == 16777216.0f);
  CHECK(sf::trunc_exact(kInf) == kInf);
  CHECK(sf::trunc_exact(-kInf) == -kInf);
  CHECK(std::isnan(sf::trunc_exact(kNaN)));

  // The double overload.
  for (double x : {0.0, -0.0, 0.5, -0.5, 2.75, -2.75, 4503599627370495.5, -4503599627370495.5,
                   1e300, -1e300, double(kInf), -double(kInf)}) {
    CHECK(same(sf::trunc_exact(x), std::trunc(x)), fmt("double x=%a", x));
  }
  CHECK(std::isnan(sf::trunc_exact(std::numeric_limits<double>::quiet_NaN())));
}

// ---------------------------------------------------------------------------------------------
// Spike functions.

template <typename T>
void test_spikes(const char* type) {
  const float inf = kInf;
  // (v > 0) * trunc(v / thr), clamped at max_spikes.
  float s = sf::multi_spike<T>(T(2.5), T(1), inf);
  CHECK(s == 2.0f, fmt("%s multi_spike(2.5, 1) = %a, expected 2", type, s));
  s = sf::multi_spike<T>(T(0.3), T(1), inf);
  CHECK(s == 0.0f && !std::signbit(s), fmt("%s multi_spike(0.3, 1) = %a, expected +0", type, s));
  s = sf::multi_spike<T>(T(-5), T(1), inf);
  CHECK(s == 0.0f && std::signbit(s), fmt("%s multi_spike(-5, 1) = %a, expected -0", type, s));
  s = sf::multi_spike<T>(T(-0.5), T(1), inf);
  CHECK(s == 0.0f && std::signbit(s), fmt("%s multi_spike(-0.5, 1) = %a, expected -0", type, s));
  s = sf::multi_spike<T>(T(0), T(1), inf);  // 0 * trunc(0) = +0
  CHECK(s == 0.0f && !std::signbit(s), fmt("%s multi_spike(0, 1) = %a, expected +0", type, s));
  s = sf::multi_spike<T>(std::numeric_limits<T>::quiet_NaN(), T(1), inf);
  CHECK(std::isnan(s), fmt("%s multi_spike(NaN, 1) = %a, expected NaN", type, s));
  s = sf::multi_spike<T>(std::numeric_limits<T>::quiet_NaN(), T(1), 4.0f);
  CHECK(std::isnan(s), fmt("%s multi_spike(NaN, 1, max 4) = %a, expected NaN", type, s));
  s = sf::multi_spike<T>(T(6.5), T(1), 4.0f);
  CHECK(s == 4.0f, fmt("%s multi_spike(6.5, 1, max 4) = %a, expected 4", type, s));
  s = sf::multi_spike<T>(T(6.5), T(1), inf);
  CHECK(s == 6.0f, fmt("%s multi_spike(6.5, 1, max inf) = %a, expected 6", type, s));
  s = sf::multi_spike<T>(T(3.9), T(1), 4.0f);
  CHECK(s == 3.0f, fmt("%s multi_spike(3.9, 1, max 4) = %a, expected 3", type, s));
  s = sf::multi_spike<T>(T(5), T(2), inf);  // trunc(2.5) = 2
  CHECK(s == 2.0f, fmt("%s multi_spike(5, 2) = %a, expected 2", type, s));
  s = sf::multi_spike<T>(T(1), T(1), 1.0f);  // MaxSpike(1)
  CHECK(s == 1.0f, fmt("%s multi_spike(1, 1, max 1) = %a, expected 1", type, s));

  // (v - thr >= 0).
  for (T thr : {T(1), T(0.3), T(7.25)}) {
    const T below = std::nextafter(thr, -std::numeric_limits<T>::infinity());
    const T above = std::nextafter(thr, std::numeric_limits<T>::infinity());
    s = sf::single_spike<T>(thr, thr);
    CHECK(s == 1.0f, fmt("%s single_spike(v = thr = %g) = %a, expected 1", type, double(thr), s));
    s = sf::single_spike<T>(below, thr);
    CHECK(s == 0.0f, fmt("%s single_spike(v = thr^-, thr = %g) = %a, expected 0", type,
                         double(thr), s));
    s = sf::single_spike<T>(above, thr);
    CHECK(s == 1.0f, fmt("%s single_spike(v = thr^+, thr = %g) = %a, expected 1", type,
                         double(thr), s));
    s = sf::single_spike<T>(T(5) * thr, thr);
    CHECK(s == 1.0f, fmt("%s single_spike(5 thr) = %a, expected 1", type, s));
  }
  s = sf::single_spike<T>(std::numeric_limits<T>::quiet_NaN(), T(1));
  CHECK(s == 0.0f, fmt("%s single_spike(NaN) = %a, expected 0", type, s));

  // spike<SK> dispatches to the two.
  CHECK((sf::spike<sf::SpikeKind::Single, T>(T(2.5), T(1), inf) == 1.0f));
  CHECK((sf::spike<sf::SpikeKind::Multi, T>(T(2.5), T(1), inf) == 2.0f));
}

// ---------------------------------------------------------------------------------------------
// Reset and min_v_mem clamp.

template <typename T>
void test_reset(const char* type) {
  using sf::ResetKind;
  // MembraneSubtract: v - s * amount.
  T v = sf::reset<ResetKind::Subtract, T>(T(2.5), 2.0f, T(1), T(0), true);
  CHECK(v == T(0.5), fmt("%s subtract(2.5, s 2, thr 1) = %a, expected 0.5", type, double(v)));
  v = sf::reset<ResetKind::Subtract, T>(T(0.3), 0.0f, T(1), T(0), true);
  CHECK(v == T(0.3), fmt("%s subtract(0.3, s 0) = %a, expected 0.3", type, double(v)));
  v = sf::reset<ResetKind::Subtract, T>(T(7), 3.0f, T(2), T(0), false);
  CHECK(v == T(1), fmt("%s subtract(7, s 3, amount 2) = %a, expected 1", type, double(v)));

  // MembraneReset: v * (s == 0) + reset_value (added to every neuron).
  v = sf::reset<ResetKind::ToValue, T>(T(0.3), 0.0f, T(1), T(0.5), true);
  {
    volatile T a = T(0.3), b = T(0.5);
    volatile T ref = a + b;  // 0.3 * 1 is exact
    CHECK(same(v, T(ref)), fmt("%s to_value(0.3, s 0, rv 0.5) = %a, expected %a", type,
                               double(v), double(ref)));
    CHECK(std::fabs(double(v) - 0.8) < 1e-6);
  }
  v = sf::reset<ResetKind::ToValue, T>(T(2.5), 2.0f, T(1), T(0.5), true);
  CHECK(v == T(0.5), fmt("%s to_value(2.5, s 2, rv 0.5) = %a, expected 0.5", type, double(v)));
  v = sf::reset<ResetKind::ToValue, T>(T(-3), -0.0f, T(1), T(0), true);  // -0.0 == 0: no spike
  CHECK(v == T(-3), fmt("%s to_value(-3, s -0) = %a, expected -3", type, double(v)));

  // The product's rounding: float32 unless product_in_float is false (double only).
  {
    const T amount = T(0.1);
    volatile float sf32 = 3.0f, af32 = static_cast<float>(amount);
    volatile float prod_f = sf32 * af32;
    volatile T v0 = T(1);
    volatile T ref_f = v0 - static_cast<T>(prod_f);
    v = sf::reset<ResetKind::Subtract, T>(T(1), 3.0f, amount, T(0), true);
    CHECK(same(v, T(ref_f)), fmt("%s subtract with float product: %a vs %a", type, double(v),
                                 double(ref_f)));
    if (std::is_same<T, double>::value) {
      volatile T s64 = T(3), a64 = amount;
      volatile T prod_d = s64 * a64;
      volatile T ref_d = v0 - prod_d;
      v = sf::reset<ResetKind::Subtract, T>(T(1), 3.0f, amount, T(0), false);
      CHECK(same(v, T(ref_d)), fmt("double subtract with double product: %a vs %a", double(v),
                                   double(ref_d)));
      CHECK(T(ref_d) != T(ref_f), "the two roundings must differ for this case");
    }
  }

  // spike_reset_clamp composes them.
  auto r = sf::spike_reset_clamp<sf::SpikeKind::Multi, ResetKind::Subtract, true, T>(
      T(2.5), T(1), kInf, T(1), T(0), T(-1), true);
  CHECK(r.spikes == 2.0f && r.v_next == T(0.5) && r.reset_mask == T(1) && r.clamp_mask == T(1),
        fmt("%s spike_reset_clamp multi/subtract", type));
  r = sf::spike_reset_clamp<sf::SpikeKind::Multi, ResetKind::ToValue, false, T>(
      T(2.5), T(1), kInf, T(1), T(0.5), T(0), true);
  CHECK(r.spikes == 2.0f && r.v_next == T(0.5) && r.reset_mask == T(0) && r.clamp_mask == T(1),
        fmt("%s spike_reset_clamp multi/to_value spiking", type));
  r = sf::spike_reset_clamp<sf::SpikeKind::Single, ResetKind::Subtract, true, T>(
      T(-4), T(1), kInf, T(1), T(0), T(-1), true);
  CHECK(r.spikes == 0.0f && r.v_next == T(-1) && r.clamp_mask == T(0),
        fmt("%s spike_reset_clamp single/subtract clamped: v_next %a mask %a", type,
            double(r.v_next), double(r.clamp_mask)));
  r = sf::spike_reset_clamp<sf::SpikeKind::None, ResetKind::Subtract, false, T>(
      T(2.5), T(1), kInf, T(1), T(0), T(0), true);
  CHECK(r.spikes == 0.0f && r.v_next == T(2.5) && r.reset_mask == T(1),
        fmt("%s spike_reset_clamp none", type));
}

// relu(v - m) + m, written out with one rounding per step. torch.relu keeps NaN.
template <typename T>
T clamp_reference(T v, T m) {
  volatile T vv = v, mm = m;
  volatile T d = vv - mm;
  volatile T relu = (d > T(0) || std::isnan(T(d))) ? T(d) : T(0);
  volatile T out = relu + mm;
  return out;
}

template <typename T>
void test_clamp_min(const char* type) {
  std::mt19937 rng(777);
  std::uniform_real_distribution<T> u(T(-4), T(4));
  std::uniform_int_distribution<int> e(-40, 40);
  int mismatches = 0, differs_from_max = 0, mask_mismatches = 0;
  std::string first, example;
  for (int k = 0; k < 200000; ++k) {
    // Values of very different magnitudes, so that v - m rounds.
    const T v = std::ldexp(u(rng), e(rng));
    const T m = std::ldexp(u(rng), e(rng));
    const T got = sf::clamp_min(v, m);
    const T ref = clamp_reference(v, m);
    if (!same(got, ref)) {
      if (mismatches < 3)
        first += fmt("[v=%a m=%a got %a ref %a] ", double(v), double(m), double(got), double(ref));
      ++mismatches;
    }
    const T mx = std::fmax(v, m);
    if (!same(ref, mx)) {
      if (differs_from_max == 0)
        example = fmt("v=%a m=%a: relu form %a, max %a", double(v), double(m), double(ref),
                      double(mx));
      ++differs_from_max;
    }
    volatile T vv = v, mm = m;
    volatile T d = vv - mm;
    if (sf::clamp_min_mask(v, m) != (T(d) > T(0) ? T(1) : T(0))) ++mask_mismatches;
  }
  CHECK(mismatches == 0, fmt("%s clamp_min vs relu(v - m) + m: %d mismatches %s", type,
                             mismatches, first.c_str()));
  CHECK(differs_from_max > 0, fmt("%s no input found where relu(v - m) + m != max(v, m)", type));
  if (differs_from_max > 0)
    std::printf("  %s clamp_min differs from max(v, m) in %d of 200000 random cases, e.g. %s\n",
                type, differs_from_max, example.c_str());
  CHECK(mask_mismatches == 0, fmt("%s clamp_min_mask: %d mismatches", type, mask_mismatches));

  // Hand-derived: v - m = 3 + 1e30 rounds to 1e30, + (-1e30) = 0, whereas max(3, -1e30) = 3.
  const T big = std::is_same<T, float>::value ? T(1e30f) : T(1e300);
  T got = sf::clamp_min(T(3), -big);
  CHECK(got == T(0), fmt("%s clamp_min(3, -big) = %a, expected 0", type, double(got)));
  got = sf::clamp_min(T(-2), T(-1));
  CHECK(got == T(-1), fmt("%s clamp_min(-2, -1) = %a, expected -1", type, double(got)));
  got = sf::clamp_min(T(0.5), T(-1));
  CHECK(got == T(0.5), fmt("%s clamp_min(0.5, -1) = %a, expected 0.5", type, double(got)));
  CHECK(sf::clamp_min_mask(T(-1), T(-1)) == T(0));  // strict
  CHECK(sf::clamp_min_mask(T(0.5), T(-1)) == T(1));

  // NaN and infinities: torch.relu(NaN) = NaN, so the clamp keeps a NaN membrane (sinabs does).
  const T nan = std::numeric_limits<T>::quiet_NaN(), inf = std::numeric_limits<T>::infinity();
  got = sf::clamp_min(nan, T(-1));
  CHECK(std::isnan(got), fmt("%s clamp_min(NaN, -1) = %a, expected NaN", type, double(got)));
  got = sf::clamp_min(T(0.5), nan);
  CHECK(std::isnan(got), fmt("%s clamp_min(0.5, NaN) = %a, expected NaN", type, double(got)));
  got = sf::clamp_min(inf, T(-1));
  CHECK(got == inf, fmt("%s clamp_min(inf, -1) = %a, expected inf", type, double(got)));
  got = sf::clamp_min(-inf, T(-1));
  CHECK(got == T(-1), fmt("%s clamp_min(-inf, -1) = %a, expected -1", type, double(got)));
  // torch's relu backward is threshold_backward(grad, result, 0) = (result <= 0 ? 0 : grad):
  // a NaN result passes the gradient through (torch 2.13: relu(NaN).backward() gives grad 1).
  const T mask = sf::clamp_min_mask(nan, T(-1));
  CHECK(mask == T(1), fmt("%s clamp_min_mask(NaN, -1) = %a, expected 1 (torch relu backward)",
                          type, double(mask)));
}

// ---------------------------------------------------------------------------------------------
// Membrane / synaptic update: two roundings, never an FMA.

template <typename T>
void test_membrane_update(const char* type) {
  std::mt19937 rng(4242);
  std::uniform_real_distribution<T> val(T(-10), T(10));
  std::uniform_real_distribution<T> alpha(T(0), T(1));
  int mismatches = 0, fma_differs = 0, equals_fma_where_differs = 0, syn_mismatches = 0;
  std::string first;
  for (int k = 0; k < 500000; ++k) {
    const T v = val(rng), i = val(rng), a = alpha(rng);
    const T scale = (k & 1) ? T(1) : T(1) - a;
    volatile T vi = i, vs = scale, vv = v, va = a;
    volatile T u = vs * vi;
    volatile T dec = va * vv;
    volatile T ref = dec + u;
    const T got = sf::membrane_update(v, i, a, scale);
    if (!same(got, T(ref))) {
      if (mismatches < 3)
        first += fmt("[v=%a i=%a a=%a s=%a: got %a ref %a] ", double(v), double(i), double(a),
                     double(scale), double(got), double(ref));
      ++mismatches;
    }
    // The test can tell an FMA apart: fma(alpha, v, u) rounds once.
    const T fused = std::fma(a, v, T(u));
    if (!same(fused, T(ref))) {
      ++fma_differs;
      if (same(got, fused)) ++equals_fma_where_differs;
    }
    // Synaptic current: alpha_syn * (i + x).
    volatile T x = val(rng);
    volatile T sum = vi + x;
    volatile T syn_ref = va * sum;
    if (!same(sf::synaptic_update(i, T(x), a), T(syn_ref))) ++syn_mismatches;
  }
  CHECK(mismatches == 0, fmt("%s membrane_update vs two roundings: %d mismatches %s", type,
                             mismatches, first.c_str()));
  CHECK(fma_differs > 0, fmt("%s no input where fma differs (test cannot detect an FMA)", type));
  CHECK(equals_fma_where_differs == 0,
        fmt("%s membrane_update equals the fused result in %d of %d distinguishing cases", type,
            equals_fma_where_differs, fma_differs));
  CHECK(syn_mismatches == 0, fmt("%s synaptic_update: %d mismatches", type, syn_mismatches));

  // Hand-derived: alpha = 1 (IAF), in_scale = 1 -> v + i exactly representable.
  CHECK(sf::membrane_update(T(0.25), T(0.5), T(1), T(1)) == T(0.75));
  CHECK(sf::membrane_update(T(2), T(4), T(0.5), T(0.5)) == T(3));
}

// ---------------------------------------------------------------------------------------------
// Surrogate gradients against sinabs 3.1.3 (thr = 1).

const double kVs[9] = {-1, -0.5, 0, 0.5, 1, 1.5, 2, 2.5, 3};

struct SurrogateCase {
  const char* name;
  sf::SurrogateKind kind;
  std::vector<double> params;
  double expected[9];
};

template <typename T>
void test_surrogates(const char* type) {
  using K = sf::SurrogateKind;
  const std::vector<SurrogateCase> cases = {
      {"SingleExponential(0.5, 1)", K::SingleExponential, {0.5, 1.0},
       {0.03663, 0.09957, 0.27067, 0.73576, 2.0, 0.73576, 0.27067, 0.09957, 0.03663}},
      {"PeriodicExponential(0.5, 1)", K::PeriodicExponential, {0.5, 1.0},
       {0.01832, 0.04979, 0.13534, 0.36788, 1.0, 0.13534, 1.0, 0.13534, 1.0}},
      {"Gaussian(0, 0.5, 1)", K::Gaussian, {0.0, 0.5, 1.0},
       {0.00027, 0.00886, 0.10798, 0.48394, 0.79788, 0.48394, 0.10798, 0.00886, 0.00027}},
      {"MultiGaussian(0, 0.5, 0.15, 6, 1)", K::MultiGaussian, {0.0, 0.5, 0.15, 6.0, 1.0},
       {-0.03139, -0.02465, 0.0869, 0.51772, 0.87822, 0.51772, 0.0869, -0.02465, -0.03139}},
      {"Heaviside(1.0)", K::Heaviside, {1.0}, {0, 0, 1, 1, 1, 1, 1, 1, 1}},
      {"Heaviside(0.5)", K::Heaviside, {0.5}, {0, 0, 0, 1, 1, 1, 1, 1, 1}},
  };
  for (const auto& c : cases) {
    sf::SurrogateParams<T> sp{};
    sp.kind = c.kind;
    for (size_t j = 0; j < c.params.size(); ++j) sp.p[j] = static_cast<T>(c.params[j]);
    int bad = 0;
    std::string detail;
    for (int j = 0; j < 9; ++j) {
      const T got = sf::surrogate_grad(sp, static_cast<T>(kVs[j]), T(1));
      if (!(std::fabs(double(got) - c.expected[j]) <= 1e-4)) {
        ++bad;
        detail += fmt("[v=%g: got %.6f expected %.5f] ", kVs[j], double(got), c.expected[j]);
      }
    }
    CHECK(bad == 0, fmt("%s %s: %s", type, c.name, detail.c_str()));
  }
  // Heaviside scales with 1/thr: window 1, thr 2, v = 1.5 >= 1 -> 0.5.
  sf::SurrogateParams<T> hv{};
  hv.kind = K::Heaviside;
  hv.p[0] = T(1);
  CHECK(sf::surrogate_grad(hv, T(1.5), T(2)) == T(0.5));
  CHECK(sf::surrogate_grad(hv, T(0.5), T(2)) == T(0));
  // Precomputed never reaches the kernel formula: 0.
  sf::SurrogateParams<T> pre{};
  pre.kind = K::Precomputed;
  CHECK(sf::surrogate_grad(pre, T(1), T(1)) == T(0));
}

// ---------------------------------------------------------------------------------------------
// Backward: gradient at the pre-spike membrane.

template <typename T>
void test_v_hat_adjoint(const char* type) {
  using sf::ResetKind;
  using sf::SpikeKind;
  // Dyadic values so that every expected result is exact.
  const T lambda_v = T(0.5), grad_out = T(2), grad_v_hat = T(0.25), sigma = T(0.75),
          amount = T(1.5);
  sf::StepResult<T> r{};
  r.spikes = 1.0f;
  r.reset_mask = T(1);
  r.clamp_mask = T(1);
  // Subtract: g = g_reset + (g_out - g_reset * amount) * sigma + grad_v_hat
  //         = 0.5 + (2 - 0.75) * 0.75 + 0.25 = 1.6875.
  T g = sf::v_hat_adjoint<SpikeKind::Multi, ResetKind::Subtract>(r, lambda_v, grad_out, grad_v_hat,
                                                                 sigma, amount);
  CHECK(g == T(1.6875), fmt("%s subtract adjoint = %a, expected 1.6875", type, double(g)));
  g = sf::v_hat_adjoint<SpikeKind::Single, ResetKind::Subtract>(r, lambda_v, grad_out, T(0), sigma,
                                                                amount);
  CHECK(g == T(1.4375), fmt("%s subtract adjoint (no v_hat grad) = %a, expected 1.4375", type,
                            double(g)));
  // Clamped (clamp_mask 0): g_reset = 0 -> g = 2 * 0.75 + 0.25 = 1.75.
  r.clamp_mask = T(0);
  g = sf::v_hat_adjoint<SpikeKind::Multi, ResetKind::Subtract>(r, lambda_v, grad_out, grad_v_hat,
                                                               sigma, amount);
  CHECK(g == T(1.75), fmt("%s subtract adjoint clamped = %a, expected 1.75", type, double(g)));
  // Only the state path (g_out = 0): g = 0.5 + (0 - 0.5 * 1.5) * 0.75 = -0.0625.
  r.clamp_mask = T(1);
  g = sf::v_hat_adjoint<SpikeKind::Multi, ResetKind::Subtract>(r, lambda_v, T(0), T(0), sigma,
                                                               amount);
  CHECK(g == T(-0.0625), fmt("%s subtract adjoint state only = %a, expected -0.0625", type,
                             double(g)));

  // ToValue: g = g_reset * (s == 0) + g_out * sigma + grad_v_hat.
  r.spikes = 0.0f;
  r.reset_mask = T(1);  // s == 0
  g = sf::v_hat_adjoint<SpikeKind::Multi, ResetKind::ToValue>(r, lambda_v, grad_out, grad_v_hat,
                                                              sigma, amount);
  CHECK(g == T(2.25), fmt("%s to_value adjoint s=0 = %a, expected 2.25", type, double(g)));
  r.spikes = 2.0f;
  r.reset_mask = T(0);  // s != 0
  g = sf::v_hat_adjoint<SpikeKind::Multi, ResetKind::ToValue>(r, lambda_v, grad_out, grad_v_hat,
                                                              sigma, amount);
  CHECK(g == T(1.75), fmt("%s to_value adjoint s=2 = %a, expected 1.75", type, double(g)));

  // No spikes (ExpLeak): g = g_reset + g_out + grad_v_hat = 0.5 + 2 + 0.25.
  r.spikes = 0.0f;
  r.reset_mask = T(1);
  r.clamp_mask = T(1);
  g = sf::v_hat_adjoint<SpikeKind::None, ResetKind::Subtract>(r, lambda_v, grad_out, grad_v_hat,
                                                              sigma, amount);
  CHECK(g == T(2.75), fmt("%s none adjoint = %a, expected 2.75", type, double(g)));
}

// ---------------------------------------------------------------------------------------------
// The adaptive neuron: threshold and adaptation rounded as torch rounds them, the subtract reset
// taking the adaptive threshold, and the one-step adjoint against its derivatives written out.

template <typename T>
sf::AdaptiveParams<T> adaptive_params() {
  sf::AdaptiveParams<T> p{};
  p.alpha = T(0.9);
  p.in_scale = T(1);
  p.rho = T(0.95);
  p.one_minus_rho = T(1) - p.rho;
  p.b0 = T(1.0);
  p.adapt_scale = T(1.8);
  p.amount = T(0.5);
  p.reset_in_float = false;
  p.adapt_in_float = false;
  p.max_spikes = std::numeric_limits<float>::infinity();
  return p;
}

template <typename T>
void test_adaptive(const char* type) {
  using sf::ResetKind;
  using sf::SpikeKind;
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> u(0.0, 3.0);
  for (int k = 0; k < 2000; ++k) {
    const T b = static_cast<T>(u(rng) * 0.3), b0 = static_cast<T>(u(rng) + 0.1),
            scale = static_cast<T>(u(rng));
    volatile T bump = scale * b;  // one rounding per operation, never an FMA
    volatile T thr = b0 + bump;
    const T got = sf::adaptive_threshold(b0, scale, b);
    CHECK(same(got, T(thr)), fmt("%s adaptive_threshold(%a, %a, %a)", type, double(b0),
                                 double(scale), double(b)));
  }
  // (1 - rho) * s in float32 for a float32 rho, even with double states: s = 3 spikes.
  const double rho = 0.95, one_minus = 1.0 - static_cast<double>(static_cast<float>(rho));
  const double in_float = static_cast<double>(3.0f * static_cast<float>(one_minus));
  CHECK(same(sf::adaptation_update(0.0, 3.0f, rho, one_minus, true), 0.95 * 0.0 + in_float),
        "adaptation_update rounds (1 - rho) * s in float32 when asked");
  CHECK(same(sf::adaptation_update(0.0, 3.0f, rho, one_minus, false), 3.0 * one_minus),
        "adaptation_update keeps (1 - rho) * s in double otherwise");

  // One step with a spike: thr = 1 + 1.8 * 0.25 = 1.45; v_hat = 2 -> SingleSpike fires, the
  // subtract reset removes the adaptive threshold (2 - 1.45), b = 0.95 * 0.25 + 0.05.
  const sf::AdaptiveParams<T> p = adaptive_params<T>();
  const auto r =
      sf::adaptive_step<SpikeKind::Single, ResetKind::Subtract, false, false>(T(2), T(0.25), p);
  volatile T bump = p.adapt_scale * T(0.25);
  volatile T thr = p.b0 + bump;
  CHECK(same(r.thr, T(thr)) && r.neuron.spikes == 1.0f,
        fmt("%s adaptive_step threshold/spike", type));
  CHECK(same(r.neuron.v_next, T(T(2) - T(thr))), fmt("%s adaptive_step subtracts thr", type));
  volatile T decayed = p.rho * T(0.25);
  volatile T added = p.one_minus_rho * T(1);
  CHECK(same(r.b_next, T(decayed + added)), fmt("%s adaptive_step b update", type));
  const auto rf =
      sf::adaptive_step<SpikeKind::Single, ResetKind::Subtract, false, true>(T(2), T(0.25), p);
  CHECK(same(rf.neuron.v_next, T(1.5)), fmt("%s adaptive_step subtract_value", type));

  if constexpr (std::is_same<T, double>::value) {
    // The adjoint of one step against the chain rule written out for L = a * v_next + c * b_next
    // + d * s, where ds/dv_hat is the surrogate sigma and s has no threshold gradient (as in
    // sinabs' spike functions).
    const double a = 0.7, c = -1.3, d = 0.4, sigma = 0.6, b = 0.25;
    const auto adj = sf::adaptive_adjoint<SpikeKind::Single, ResetKind::Subtract, false>(
        r, b, a, c, d, 0.0, sigma, p);
    // Through b: thr = b0 + scale * b, v_next = v_hat - s * thr, b_next = rho * b + (1-rho) s.
    const double s = 1.0;
    const double dl_db = a * (-s * p.adapt_scale) + c * p.rho;
    CHECK(std::fabs(adj.lambda_b - dl_db) < 1e-12, fmt("adaptive_adjoint lambda_b %g vs %g",
                                                      adj.lambda_b, dl_db));
    // Through v_hat: directly (a) and through s (sigma * (d + c (1-rho) - a thr)).
    const double dl_dv = a + sigma * (d + c * p.one_minus_rho - a * r.thr);
    CHECK(std::fabs(adj.g_v_hat - dl_dv) < 1e-12, fmt("adaptive_adjoint g_v_hat %g vs %g",
                                                     adj.g_v_hat, dl_dv));
    // d b_next / d rho = b - s.
    CHECK(std::fabs(adj.g_rho - c * (b - s)) < 1e-12, "adaptive_adjoint g_rho");
  }
}

// ---------------------------------------------------------------------------------------------
// dispatch_neuron picks the matching kernel traits.

void test_dispatch() {
  using sf::ResetKind;
  using sf::SpikeKind;
  struct Case {
    SpikeKind sk;
    ResetKind rk;
    bool syn, mn, pn;
    SpikeKind want_sk;
    ResetKind want_rk;
  };
  const Case cases[] = {
      {SpikeKind::None, ResetKind::ToValue, true, false, true, SpikeKind::None,
       ResetKind::Subtract},
      {SpikeKind::Multi, ResetKind::Subtract, false, true, false, SpikeKind::Multi,
       ResetKind::Subtract},
      {SpikeKind::Multi, ResetKind::ToValue, true, true, true, SpikeKind::Multi,
       ResetKind::ToValue},
      {SpikeKind::Single, ResetKind::ToValue, false, false, false, SpikeKind::Single,
       ResetKind::ToValue},
      {SpikeKind::MultiByReciprocal, ResetKind::Subtract, true, false, false,
       SpikeKind::MultiByReciprocal, ResetKind::Subtract},
  };
  for (const auto& c : cases) {
    int calls = 0;
    bool ok = false;
    sf::dispatch_neuron(c.sk, c.rk, c.syn, c.mn, c.pn, [&](auto traits) {
      using K = decltype(traits);
      ++calls;
      ok = K::spike == c.want_sk && K::reset == c.want_rk && K::synaptic == c.syn &&
           K::clamped == c.mn && K::per_neuron == c.pn &&
           K::spiking == (c.want_sk != SpikeKind::None);
    });
    CHECK(calls == 1 && ok, fmt("dispatch_neuron(%d, %d, %d, %d, %d)", int(c.sk), int(c.rk),
                                int(c.syn), int(c.mn), int(c.pn)));
  }
  // MultiByReciprocal gives the same spikes as Multi when the threshold is a power of two.
  for (float thr : {0.25f, 1.0f, 4.0f}) {
    for (float v : {-3.0f, 0.0f, 0.7f, 1.0f, 2.99999f, 3.0f, 17.5f}) {
      const float want = sf::spike<SpikeKind::Multi>(v, thr, 1e30f);
      const float got = sf::spike<SpikeKind::MultiByReciprocal>(v, 1.0f / thr, 1e30f);
      CHECK(std::memcmp(&want, &got, sizeof(float)) == 0,
            fmt("MultiByReciprocal(%g, 1/%g)", double(v), double(thr)));
    }
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// The alpha sums: float32 blocks of kSumBlock reverse steps, closed into a float64 total.

void test_alpha_sums() {
  // Reverse steps t = steps-1 ... 0, as the backward kernels walk them.
  const int64_t steps = 37;
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> terms(steps);
  for (auto& x : terms) x = dist(rng);
  double total = 0.0;
  float block = 0.0f;
  int64_t in_block = 0, closed = 0;
  for (int64_t t = steps - 1; t >= 0; --t) {
    block += terms[t];
    if (sf::block_closes(++in_block, t)) {
      sf::close_block(total, block);
      in_block = 0;
      ++closed;
    }
  }
  CHECK(closed == 3 && block == 0.0f, fmt("blocks closed: %lld", static_cast<long long>(closed)));
  // The same sum written out: float32 blocks of the steps 36..21, 20..5, 4..0.
  double want = 0.0;
  for (int64_t hi : {36, 20, 4}) {
    float b = 0.0f;
    for (int64_t t = hi; t > hi - sf::kSumBlock && t >= 0; --t) b += terms[t];
    want += static_cast<double>(b);
  }
  CHECK(total == want, fmt("block sum %.17g, written out %.17g", total, want));
  // The terms themselves: v_t g_{t+1} (- cur_t g_t with norm_input), each product rounded.
  const float v = 0.3f, g_next = 0.7f, cur = 1.1f, g = -0.4f;
  const float plain = sf::alpha_mem_term<false>(v, g_next, cur, g);
  const float norm = sf::alpha_mem_term<true>(v, g_next, cur, g);
  const float vg = v * g_next, cg = cur * g;
  CHECK(plain == vg && norm == vg - cg, "alpha_mem_term");
  CHECK(sf::initial_membrane_term(v, g) == v * g, "initial_membrane_term");
  // The adaptive neuron's term: norm = 0 drops the rescaling's part, norm = 1 subtracts it.
  CHECK(sf::adaptive_alpha_mem_term(v, g_next, 0.0f, cur, g) == vg - 0.0f * cg &&
            sf::adaptive_alpha_mem_term(v, g_next, 1.0f, cur, g) == vg - cg,
        "adaptive_alpha_mem_term");
}

int main() {
  test_trunc_exact();
  test_spikes<float>("float");
  test_spikes<double>("double");
  test_reset<float>("float");
  test_reset<double>("double");
  test_clamp_min<float>("float");
  test_clamp_min<double>("double");
  test_membrane_update<float>("float");
  test_membrane_update<double>("double");
  test_surrogates<double>("double");
  test_surrogates<float>("float");
  test_v_hat_adjoint<float>("float");
  test_v_hat_adjoint<double>("double");
  test_adaptive<float>("float");
  test_adaptive<double>("double");
  test_dispatch();
  test_alpha_sums();
  std::printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
