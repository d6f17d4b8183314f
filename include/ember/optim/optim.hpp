// Everything in ember::optim.
#pragma once

#include "ember/optim/adam.hpp"
#include "ember/optim/optimizer.hpp"
#include "ember/optim/sgd.hpp"
