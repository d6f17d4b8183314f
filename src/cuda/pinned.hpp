// Internal to src/cuda: the page-locked host allocator behind cuda_backend::pin_memory.
#pragma once

#include <cuda_runtime.h>

namespace ember::cuda_backend {

/// True when `ptr` lies in a block of the pinned host allocator.
bool pinned_owns(const void* ptr);
/// Records that work queued on `stream` so far (an asynchronous copy) reads the pinned block
/// holding `ptr`: the block is not handed out again before that work has finished.
void pinned_record_use(const void* ptr, cudaStream_t stream);

}  // namespace ember::cuda_backend
