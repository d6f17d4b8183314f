// Mixed precision: autocast (16-bit matmul/linear/conv2d with float32 master weights) and the
// dynamic loss scaler for float16.
#pragma once

#include "ember/amp/autocast.hpp"
#include "ember/amp/grad_scaler.hpp"
