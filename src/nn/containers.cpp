#include "ember/nn/containers.hpp"

namespace ember::nn {

Sequential::Sequential(std::initializer_list<std::shared_ptr<UnaryModule>> modules) {
  for (const auto& m : modules) push_back(m);
}

Sequential& Sequential::push_back(std::shared_ptr<UnaryModule> module) {
  EMBER_CHECK(module != nullptr, ValueError, "Sequential: cannot add a null module");
  register_module(std::to_string(modules_.size()), module);
  modules_.push_back(std::move(module));
  return *this;
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor y = x;
  for (auto& m : modules_) y = m->forward(y);
  return y;
}

UnaryModule& Sequential::operator[](size_t i) const {
  EMBER_CHECK(i < modules_.size(), IndexError, "Sequential: index ", i, " out of range for ", modules_.size(), " modules");
  return *modules_[i];
}

ModuleList& ModuleList::push_back(std::shared_ptr<Module> module) {
  EMBER_CHECK(module != nullptr, ValueError, "ModuleList: cannot add a null module");
  register_module(std::to_string(modules_.size()), module);
  modules_.push_back(std::move(module));
  return *this;
}

Module& ModuleList::operator[](size_t i) const {
  EMBER_CHECK(i < modules_.size(), IndexError, "ModuleList: index ", i, " out of range for ", modules_.size(), " modules");
  return *modules_[i];
}

ModuleDict& ModuleDict::insert(const std::string& key, std::shared_ptr<Module> module) {
  EMBER_CHECK(module != nullptr, ValueError, "ModuleDict: cannot add a null module");
  EMBER_CHECK(!contains(key), ValueError, "ModuleDict: key \"", key, "\" already present");
  register_module(key, module);
  index_[key] = std::move(module);
  return *this;
}

Module& ModuleDict::operator[](const std::string& key) const {
  auto it = index_.find(key);
  EMBER_CHECK(it != index_.end(), ValueError, "ModuleDict: no module with key \"", key, "\"");
  return *it->second;
}

}  // namespace ember::nn
