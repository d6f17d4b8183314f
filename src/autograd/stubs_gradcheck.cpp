// Placeholders until the gradcheck family is implemented: each throws NotImplemented.
// Delete an entry when its real definition lands; delete the file when it is empty.
#include "ember/ember.hpp"

namespace ember::autograd {

GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn, const std::vector<Tensor>& inputs, const GradcheckOptions& opts) { EMBER_THROW(NotImplemented, "gradcheck: not implemented yet"); }

}  // namespace ember
