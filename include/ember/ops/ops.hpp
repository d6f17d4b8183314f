// Every public tensor function.
#pragma once

#include "ember/ops/conv.hpp"
#include "ember/ops/elementwise.hpp"
#include "ember/ops/indexing.hpp"
#include "ember/ops/linalg.hpp"
#include "ember/ops/random.hpp"
#include "ember/ops/reduction.hpp"
