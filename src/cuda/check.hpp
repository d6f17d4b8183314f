// One status-check macro per CUDA library. The macros are thin: they capture the call text,
// file and line; the functions behind them build the message (with the current device) and
// throw an ember::Error (OutOfMemory for allocation failures, DeviceError otherwise).
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "ember/core/macros.hpp"

namespace ember::cuda_backend::detail {

// Exported so that tests can exercise the macros.
[[noreturn]] EMBER_API void throw_cuda_error(cudaError_t status, const char* call, const char* file, int line);
[[noreturn]] EMBER_API void throw_cublas_error(cublasStatus_t status, const char* call, const char* file, int line);

}  // namespace ember::cuda_backend::detail

/// Throws when a CUDA runtime call does not return cudaSuccess.
#define EMBER_CUDA_CHECK(call)                                                                        \
  do {                                                                                                \
    const cudaError_t ember_cuda_status_ = (call);                                                    \
    if (ember_cuda_status_ != cudaSuccess)                                                            \
      ::ember::cuda_backend::detail::throw_cuda_error(ember_cuda_status_, #call, __FILE__, __LINE__); \
  } while (0)

/// Throws when a cuBLAS / cuBLASLt call does not return CUBLAS_STATUS_SUCCESS.
#define EMBER_CUBLAS_CHECK(call)                                                                          \
  do {                                                                                                    \
    const cublasStatus_t ember_cublas_status_ = (call);                                                   \
    if (ember_cublas_status_ != CUBLAS_STATUS_SUCCESS)                                                    \
      ::ember::cuda_backend::detail::throw_cublas_error(ember_cublas_status_, #call, __FILE__, __LINE__); \
  } while (0)

namespace ember::cuda_backend::detail {
// cuDNN statuses travel as int so that this header needs no cuDNN header (a CUDA build may
// lack cuDNN). Defined in src/cuda/cudnn.cpp: OutOfMemory for allocation failures, DeviceError
// otherwise, with cuDNN's own text for the status and its last error message when loaded.
[[noreturn]] EMBER_API void throw_cudnn_error(int status, const char* call, const char* file, int line);
}  // namespace ember::cuda_backend::detail

/// Throws when a cuDNN call does not return CUDNN_STATUS_SUCCESS (0).
#define EMBER_CUDNN_CHECK(call)                                                                         \
  do {                                                                                                  \
    const int ember_cudnn_status_ = static_cast<int>(call);                                             \
    if (ember_cudnn_status_ != 0)                                                                       \
      ::ember::cuda_backend::detail::throw_cudnn_error(ember_cudnn_status_, #call, __FILE__, __LINE__); \
  } while (0)
