#include "output_pool.h"

#include <ATen/EmptyTensor.h>
#include <c10/util/strides.h>

#include <cstdlib>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace sinabs_fast {
namespace {

constexpr size_t kMinPooledBytes = size_t(1) << 18;  // smaller ones: torch's allocator
constexpr size_t kGranule = size_t(1) << 16;         // sizes round up to 64 KiB
constexpr size_t kDefaultMaxCachedMiB = 1024;         // free blocks kept, at most

// The bound on the free blocks kept: SINABS_FAST_CPU_POOL_MB (MiB; 0 keeps none, so every block
// goes back to the system when its tensor goes), read when the pool is created.
size_t max_cached_bytes() {
  const char* env = std::getenv("SINABS_FAST_CPU_POOL_MB");
  if (env == nullptr || *env == '\0') return kDefaultMaxCachedMiB << 20;
  char* end = nullptr;
  const unsigned long long mib = std::strtoull(env, &end, 10);
  TORCH_CHECK(*end == '\0' && *env != '-' && mib < (1ull << 40),
              "sinabs_fast: SINABS_FAST_CPU_POOL_MB must be a number of MiB (0 or more), got '",
              env, "'");
  return static_cast<size_t>(mib) << 20;
}

class Pool {
 public:
  void* take(size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = free_.find(bytes);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        cached_ -= bytes;
        return p;
      }
    }
    void* p = std::aligned_alloc(64, bytes);
    TORCH_CHECK(p != nullptr, "sinabs_fast: out of memory allocating ", bytes, " bytes");
    return p;
  }

  void give_back(void* p, size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (cached_ + bytes <= max_cached_) {
        free_[bytes].push_back(p);
        cached_ += bytes;
        return;
      }
    }
    std::free(p);
  }

 private:
  std::mutex mutex_;
  std::unordered_map<size_t, std::vector<void*>> free_;
  size_t cached_ = 0;
  const size_t max_cached_ = max_cached_bytes();
};

// Never destroyed: tensors that outlive static destruction at exit still return their blocks.
Pool& pool() {
  static Pool* instance = new Pool();
  return *instance;
}

}  // namespace

namespace {

size_t element_bytes(const at::TensorOptions& options) {
  return c10::elementSize(c10::typeMetaToScalarType(options.dtype()));
}

bool pooled(size_t bytes, const at::TensorOptions& options) {
  return bytes >= kMinPooledBytes && options.device().type() == at::kCPU;
}

// A block of the pool for `bytes`, as a tensor of these sizes and strides.
at::Tensor from_pool(size_t bytes, at::IntArrayRef sizes, at::IntArrayRef strides,
                     const at::TensorOptions& options) {
  const size_t rounded = (bytes + kGranule - 1) / kGranule * kGranule;
  void* p = pool().take(rounded);
  return at::from_blob(
      p, sizes, strides, [rounded](void* q) { pool().give_back(q, rounded); }, options);
}

}  // namespace

at::Tensor pooled_empty(at::IntArrayRef sizes, const at::TensorOptions& options) {
  const size_t bytes = static_cast<size_t>(c10::multiply_integers(sizes)) * element_bytes(options);
  if (!pooled(bytes, options)) return at::empty(sizes, options);
  return from_pool(bytes, sizes, c10::contiguous_strides(sizes), options);
}

at::Tensor pooled_empty_strided(at::IntArrayRef sizes, at::IntArrayRef strides,
                                const at::TensorOptions& options) {
  const size_t bytes = at::detail::computeStorageNbytes(sizes, strides, element_bytes(options));
  if (!pooled(bytes, options)) return at::empty_strided(sizes, strides, options);
  return from_pool(bytes, sizes, strides, options);
}

at::Tensor pooled_copy(const at::Tensor& t) {
  at::Tensor out = pooled_empty(t.sizes(), t.options());
  out.copy_(t);
  return out;
}

}  // namespace sinabs_fast
