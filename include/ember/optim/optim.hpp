// Everything in ember::optim.
#pragma once

#include "ember/optim/adam.hpp"
#include "ember/optim/clip.hpp"
#include "ember/optim/flat_buffer.hpp"
#include "ember/optim/optimizer.hpp"
#include "ember/optim/scheduler.hpp"
#include "ember/optim/sgd.hpp"
#include "ember/optim/step_guard.hpp"
