// Register-blocked float32 products for the linear-recurrent backward (see dense_products.h).
// Written with GCC vector extensions and compiled once per instruction set (AVX-512, AVX2,
// baseline); the CPU picks one at first use. -ffp-contract=off applies here too: a product is
// rounded before it is added, as in a plain loop.
#include "dense_products.h"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <utility>
#include <vector>

#include "sinabs_fast/macros.h"

namespace sinabs_fast {
namespace {

// Vectors of 4, 8 and 16 floats, and the same with the alignment of a float (the second typedef
// lowers it; on the first it would be ignored): rows are read and written through the unaligned
// types, so callers need not align them.
typedef float v4 __attribute__((vector_size(16)));
typedef float v8 __attribute__((vector_size(32)));
typedef float v16 __attribute__((vector_size(64)));

template <typename V>
struct Unaligned {
  typedef V type __attribute__((aligned(4)));
};

template <typename V>
using UnalignedT = typename Unaligned<V>::type;
static_assert(alignof(UnalignedT<v16>) == alignof(float), "unaligned rows would fault");

// The widest block (16 floats x 4 vectors); padded_columns rounds to it, so that every
// instruction set's blocks tile the padded rows.
constexpr int64_t kBlockColumns = 64;

// out[r, c0 : c0 + C*L] for R rows: R x C vector accumulators stay in registers for the whole
// k loop, so w is read once per R rows and a once per C vectors.
template <typename V, int R, int C>
SF_INLINE void product_block(const float* SF_RESTRICT a, int64_t lda, int64_t k_dim,
                             const float* SF_RESTRICT w, int64_t ld, float* SF_RESTRICT out) {
  constexpr int L = sizeof(V) / sizeof(float);
  V acc[R][C];
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < C; ++c) acc[r][c] = V{};
  }
  for (int64_t k = 0; k < k_dim; ++k) {
    V wv[C];
    for (int c = 0; c < C; ++c) wv[c] = *reinterpret_cast<const UnalignedT<V>*>(w + k * ld + c * L);
    for (int r = 0; r < R; ++r) {
      const float ar = a[r * lda + k];
      for (int c = 0; c < C; ++c) acc[r][c] += ar * wv[c];
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < C; ++c) *reinterpret_cast<UnalignedT<V>*>(out + r * ld + c * L) = acc[r][c];
  }
}

// All rows: blocks of 4 rows, then the 1-3 rows left; columns in blocks of C vectors.
template <typename V, int C>
SF_INLINE void products(const float* a, int64_t lda, int64_t rows, int64_t k_dim,
                        const float* w, int64_t n, float* out) {
  constexpr int64_t width = C * sizeof(V) / sizeof(float);
  static_assert(kBlockColumns % width == 0, "blocks must tile the padded rows");
  const int64_t ld = padded_columns(n);
  for (int64_t c0 = 0; c0 < ld; c0 += width) {
    int64_t r0 = 0;
    for (; r0 + 4 <= rows; r0 += 4) {
      product_block<V, 4, C>(a + r0 * lda, lda, k_dim, w + c0, ld, out + r0 * ld + c0);
    }
    const float* ar = a + r0 * lda;
    float* o = out + r0 * ld + c0;
    switch (rows - r0) {
      case 3: product_block<V, 3, C>(ar, lda, k_dim, w + c0, ld, o); break;
      case 2: product_block<V, 2, C>(ar, lda, k_dim, w + c0, ld, o); break;
      case 1: product_block<V, 1, C>(ar, lda, k_dim, w + c0, ld, o); break;
      default: break;
    }
  }
}

// A nonzero spike of the weight gradient: its value and the gradient row it multiplies.
struct Hit {
  const float* g;
  float s;
};

// Rows j0..j1 of out_t: first the nonzero spikes of each column j, in pair order (a branch-free
// scan, then a counting sort by j), then per j a sum over that list with C vectors of
// accumulators in registers.
template <typename V, int C>
SF_INLINE bool weight_grad_rows(const float* const* s_rows, const float* const* g_rows,
                                int64_t pairs, int64_t j0, int64_t j1, int64_t n,
                                int64_t max_nonzero, float* SF_RESTRICT out_t) {
  constexpr int L = sizeof(V) / sizeof(float);
  const size_t width = static_cast<size_t>(j1 - j0);
  std::vector<int32_t> found_j(width);
  std::vector<std::pair<int32_t, int32_t>> found;  // (j - j0, pair), in pair order
  std::vector<size_t> start(width + 1, 0);         // start[j + 1]: hits of columns <= j
  for (int64_t p = 0; p < pairs; ++p) {
    const float* s = s_rows[p] + j0;
    size_t count = 0;
    for (size_t block = 0; block < width; block += 8) {
      const size_t j_end = std::min(width, block + 8);
      if (j_end == block + 8) {  // eight zero bit patterns (+0.0) are skipped at once
        uint64_t words[4];
        std::memcpy(words, s + block, sizeof(words));
        if ((words[0] | words[1] | words[2] | words[3]) == 0) continue;
      }
      for (size_t j = block; j < j_end; ++j) {
        found_j[count] = static_cast<int32_t>(j);
        count += s[j] != 0.0f;
      }
    }
    for (size_t h = 0; h < count; ++h) {
      found.emplace_back(found_j[h], static_cast<int32_t>(p));
      ++start[found_j[h] + 1];
    }
    if (static_cast<int64_t>(found.size()) > max_nonzero) return false;
  }
  for (size_t j = 0; j < width; ++j) start[j + 1] += start[j];
  std::vector<Hit> hits(found.size());
  {
    std::vector<size_t> next(start.begin(), start.end() - 1);
    for (const auto& [j, p] : found) hits[next[j]++] = Hit{g_rows[p], s_rows[p][j0 + j]};
  }
  for (size_t j = 0; j < width; ++j) {
    const Hit* first = hits.data() + start[j];
    const Hit* last = hits.data() + start[j + 1];
    float* out = out_t + (j0 + static_cast<int64_t>(j)) * n;
    int64_t c0 = 0;
    for (; c0 + C * L <= n; c0 += C * L) {
      V acc[C];
      for (int c = 0; c < C; ++c) acc[c] = V{};
      for (const Hit* h = first; h != last; ++h) {
        for (int c = 0; c < C; ++c) {
          acc[c] += h->s * *reinterpret_cast<const UnalignedT<V>*>(h->g + c0 + c * L);
        }
      }
      for (int c = 0; c < C; ++c) *reinterpret_cast<UnalignedT<V>*>(out + c0 + c * L) = acc[c];
    }
    for (; c0 < n; ++c0) {
      float acc = 0.0f;
      for (const Hit* h = first; h != last; ++h) acc += h->s * h->g[c0];
      out[c0] = acc;
    }
  }
  return true;
}

using ProductsFn = void (*)(const float*, int64_t, int64_t, int64_t, const float*, int64_t,
                            float*);
using WeightGradFn = bool (*)(const float* const*, const float* const*, int64_t, int64_t,
                             int64_t, int64_t, int64_t, float*);

struct Kernels {
  ProductsFn products;
  WeightGradFn weight_grad;
};

// One clone per instruction set. Four rows by four 16-float vectors fill 16 of AVX-512's 32
// registers; AVX2 and SSE have 16 registers, so their blocks are two vectors wide.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target("avx512f"))) void products_avx512(const float* a, int64_t lda,
                                                        int64_t rows, int64_t k_dim,
                                                        const float* w, int64_t n, float* out) {
  products<v16, 4>(a, lda, rows, k_dim, w, n, out);
}
__attribute__((target("avx512f"))) bool weight_grad_avx512(
    const float* const* s_rows, const float* const* g_rows, int64_t pairs, int64_t j0, int64_t j1,
    int64_t n, int64_t max_nonzero, float* out_t) {
  return weight_grad_rows<v16, 16>(s_rows, g_rows, pairs, j0, j1, n, max_nonzero, out_t);
}
__attribute__((target("avx2"))) void products_avx2(const float* a, int64_t lda, int64_t rows,
                                                   int64_t k_dim, const float* w, int64_t n,
                                                   float* out) {
  products<v8, 2>(a, lda, rows, k_dim, w, n, out);
}
__attribute__((target("avx2"))) bool weight_grad_avx2(
    const float* const* s_rows, const float* const* g_rows, int64_t pairs, int64_t j0, int64_t j1,
    int64_t n, int64_t max_nonzero, float* out_t) {
  return weight_grad_rows<v8, 8>(s_rows, g_rows, pairs, j0, j1, n, max_nonzero, out_t);
}
#endif
void products_base(const float* a, int64_t lda, int64_t rows, int64_t k_dim, const float* w,
                   int64_t n, float* out) {
  products<v4, 2>(a, lda, rows, k_dim, w, n, out);
}
bool weight_grad_base(const float* const* s_rows, const float* const* g_rows, int64_t pairs,
                      int64_t j0, int64_t j1, int64_t n, int64_t max_nonzero, float* out_t) {
  return weight_grad_rows<v4, 4>(s_rows, g_rows, pairs, j0, j1, n, max_nonzero, out_t);
}

const Kernels& kernels() {
  static const Kernels chosen = [] {
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return Kernels{products_avx512, weight_grad_avx512};
    if (__builtin_cpu_supports("avx2")) return Kernels{products_avx2, weight_grad_avx2};
#endif
    return Kernels{products_base, weight_grad_base};
  }();
  return chosen;
}

}  // namespace

int64_t padded_columns(int64_t n) {
  return (n + kBlockColumns - 1) / kBlockColumns * kBlockColumns;
}

void row_products(const float* a, int64_t lda, int64_t rows, int64_t k_dim, const float* w,
                  int64_t n, float* out) {
  kernels().products(a, lda, rows, k_dim, w, n, out);
}

bool sparse_weight_grad(const float* const* s_rows, const float* const* g_rows, int64_t pairs,
                        int64_t j0, int64_t j1, int64_t n, int64_t max_nonzero, float* out_t) {
  return kernels().weight_grad(s_rows, g_rows, pairs, j0, j1, n, max_nonzero, out_t);
}

}  // namespace sinabs_fast
