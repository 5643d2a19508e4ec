// Unit test of the recurrent backward's float32 products (csrc/cpu/dense_products.cpp), torch-
// free. Every result is compared bit for bit with the same sums written out as plain sequential
// loops through volatile temporaries (each product rounded, then added, in the documented
// order). The source file is included rather than linked so that every instruction-set clone
// (AVX-512, AVX2, baseline) is tested directly, not only the one this CPU would pick.
//
// Build with -ffp-contract=off (see CMakeLists.txt). Prints "N passed, M failed" last and exits
// non-zero when anything failed.

#include "../cpu/dense_products.cpp"

#include <cstdio>
#include <random>
#include <string>
#include <vector>

namespace {

namespace sf = sinabs_fast;

int g_passed = 0;
int g_failed = 0;

void check(bool ok, const std::string& what) {
  if (ok) {
    ++g_passed;
  } else {
    ++g_failed;
    std::printf("FAIL %s\n", what.c_str());
  }
}

struct Isa {
  const char* name;
  bool available;
  void (*products)(const float*, int64_t, int64_t, int64_t, const float*, int64_t, float*);
  bool (*weight_grad)(const float* const*, const float* const*, int64_t, int64_t, int64_t,
                      int64_t, int64_t, float*);
};

std::vector<Isa> isas() {
  std::vector<Isa> all;
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
  __builtin_cpu_init();
  all.push_back({"avx512", __builtin_cpu_supports("avx512f") != 0, sf::products_avx512,
                 sf::weight_grad_avx512});
  all.push_back({"avx2", __builtin_cpu_supports("avx2") != 0, sf::products_avx2,
                 sf::weight_grad_avx2});
#endif
  all.push_back({"baseline", true, sf::products_base, sf::weight_grad_base});
  return all;
}

float sequential_dot(const float* a, int64_t a_step, const float* b, int64_t b_step,
                     int64_t count) {
  volatile float acc = 0.0f;
  for (int64_t k = 0; k < count; ++k) {
    volatile float product = a[k * a_step] * b[k * b_step];
    acc = acc + product;
  }
  return acc;
}

void test_row_products(const Isa& isa, std::mt19937& rng) {
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  for (int64_t n : {1, 15, 16, 17, 64, 70, 130}) {
    for (int64_t k_dim : {int64_t{1}, int64_t{7}, n}) {
      for (int64_t rows = 1; rows <= 9; ++rows) {
        const int64_t ld = sf::padded_columns(n), lda = k_dim + 3;  // a's rows have a gap
        std::vector<float> a(rows * lda), w(k_dim * ld, 0.0f), out(rows * ld, 123.0f);
        for (float& x : a) x = value(rng);
        for (int64_t k = 0; k < k_dim; ++k) {
          for (int64_t j = 0; j < n; ++j) w[k * ld + j] = value(rng);
        }
        isa.products(a.data(), lda, rows, k_dim, w.data(), n, out.data());
        int64_t wrong = 0, padding = 0;
        for (int64_t r = 0; r < rows; ++r) {
          for (int64_t j = 0; j < n; ++j) {
            const float want = sequential_dot(a.data() + r * lda, 1, w.data() + j, ld, k_dim);
            wrong += out[r * ld + j] != want;
          }
          for (int64_t j = n; j < ld; ++j) padding += out[r * ld + j] != 0.0f;
        }
        const std::string at = std::string(isa.name) + " row_products n=" + std::to_string(n) +
                               " k=" + std::to_string(k_dim) + " rows=" + std::to_string(rows);
        check(wrong == 0, at + ": " + std::to_string(wrong) + " sums differ");
        check(padding == 0, at + ": padding columns not zero");
      }
    }
  }
}

void test_sparse_weight_grad(const Isa& isa, std::mt19937& rng) {
  std::uniform_real_distribution<float> value(-1.0f, 1.0f), unit(0.0f, 1.0f);
  for (int64_t n : {3, 16, 37, 100}) {
    for (double density : {0.0, 0.05, 0.3}) {
      const int64_t pairs = 23;
      std::vector<float> s(pairs * n), g(pairs * n);
      for (float& x : s) {
        const float u = unit(rng);
        x = u < density ? (u < density / 2 ? 1.0f : 2.0f) : (u < 0.9 ? 0.0f : -0.0f);
      }
      for (float& x : g) x = value(rng);
      std::vector<const float*> s_rows, g_rows;
      for (int64_t p = 0; p < pairs; ++p) {
        s_rows.push_back(s.data() + p * n);
        g_rows.push_back(g.data() + p * n);
      }
      int64_t nonzero = 0;
      for (float x : s) nonzero += x != 0.0f;
      const std::string at = std::string(isa.name) + " sparse_weight_grad n=" +
                             std::to_string(n) + " density=" + std::to_string(density);
      // Two ranges of j, as two threads would take them; each writes only its own rows.
      std::vector<float> out(n * n, 123.0f);
      const int64_t split = n / 3;
      bool done = isa.weight_grad(s_rows.data(), g_rows.data(), pairs, 0, split, n, nonzero,
                                  out.data());
      done = isa.weight_grad(s_rows.data(), g_rows.data(), pairs, split, n, n, nonzero,
                             out.data()) && done;
      check(done, at + ": gave up below its limit");
      int64_t wrong = 0;
      for (int64_t j = 0; j < n; ++j) {
        for (int64_t i = 0; i < n; ++i) {
          // The zero spikes' terms are left out; adding them (+-0 * g) changes no sum.
          wrong += out[j * n + i] != sequential_dot(s.data() + j, n, g.data() + i, n, pairs);
        }
      }
      check(wrong == 0, at + ": " + std::to_string(wrong) + " sums differ");
      if (nonzero > 0) {
        std::vector<float> untouched(n * n, 123.0f);
        const bool gave_up = !isa.weight_grad(s_rows.data(), g_rows.data(), pairs, 0, n, n,
                                              nonzero - 1, untouched.data());
        check(gave_up, at + ": did not give up past max_nonzero");
        int64_t written = 0;
        for (float x : untouched) written += x != 123.0f;
        check(written == 0, at + ": wrote rows although it gave up");
      }
    }
  }
}

}  // namespace

int main() {
  std::mt19937 rng(7);
  for (const Isa& isa : isas()) {
    if (!isa.available) {
      std::printf("skipping %s: not supported by this CPU\n", isa.name);
      continue;
    }
    test_row_products(isa, rng);
    test_sparse_weight_grad(isa, rng);
  }
  std::printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
