// MKL packed-weight linear layers (torch.ops.mkl), which tch does not bind. libtorch registers
// them with its dispatcher when it is built with MKL; they are reached by name so that a
// libtorch without them is a clear runtime error (decoding then keeps the plain path).
// Tensors cross as at::Tensor* (what tch's C_tensor points to); errors as a message copied
// into the caller's buffer, never as a C++ exception across the boundary.
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include <cstring>
#include <exception>
#include <string>

namespace {
void write_error(const std::string& message, char* error, size_t capacity) {
  if (capacity == 0) return;
  size_t n = message.size() < capacity - 1 ? message.size() : capacity - 1;
  std::memcpy(error, message.data(), n);
  error[n] = '\0';
}
}  // namespace

extern "C" at::Tensor* harness_mkl_pack_linear_weight(const at::Tensor* weight, int64_t batch, char* error, size_t capacity) {
  try {
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("mkl::_mkl_reorder_linear_weight", "")
                         .typed<at::Tensor(const at::Tensor&, int64_t)>();
    return new at::Tensor(op.call(*weight, batch));
  } catch (const std::exception& e) {
    write_error(e.what(), error, capacity);
    return nullptr;
  }
}

extern "C" at::Tensor* harness_mkl_linear(const at::Tensor* input, const at::Tensor* packed, const at::Tensor* weight,
                                          const at::Tensor* bias, int64_t batch, char* error, size_t capacity) {
  try {
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("mkl::_mkl_linear", "")
                         .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                           const std::optional<at::Tensor>&, int64_t)>();
    std::optional<at::Tensor> b = bias ? std::optional<at::Tensor>(*bias) : std::nullopt;
    return new at::Tensor(op.call(*input, *packed, *weight, b, batch));
  } catch (const std::exception& e) {
    write_error(e.what(), error, capacity);
    return nullptr;
  }
}
