// Sequential, ModuleList and ModuleDict: containers that own their children. Children are
// named "0", "1", ... (ModuleDict: by key), as PyTorch writes them in state dicts.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ember/nn/module.hpp"

namespace ember::nn {

/// Chains unary modules: forward(x) = m_n(...m_1(x)).
class EMBER_API Sequential : public UnaryModule {
 public:
  Sequential() = default;
  Sequential(std::initializer_list<std::shared_ptr<UnaryModule>> modules);
  /// Appends a module (named by its position).
  Sequential& push_back(std::shared_ptr<UnaryModule> module);
  /// Constructs and appends a module: seq.emplace<Linear>(784, 256).
  template <class M, class... Args>
  M& emplace(Args&&... args) {
    auto m = std::make_shared<M>(std::forward<Args>(args)...);
    push_back(m);
    return *m;
  }
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Sequential"; }
  size_t size() const { return modules_.size(); }
  UnaryModule& operator[](size_t i) const;

 private:
  std::vector<std::shared_ptr<UnaryModule>> modules_;
};

/// A list of modules of any kind (no forward).
class EMBER_API ModuleList : public Module {
 public:
  ModuleList& push_back(std::shared_ptr<Module> module);
  template <class M, class... Args>
  M& emplace(Args&&... args) {
    auto m = std::make_shared<M>(std::forward<Args>(args)...);
    push_back(m);
    return *m;
  }
  std::string type_name() const override { return "ModuleList"; }
  size_t size() const { return modules_.size(); }
  Module& operator[](size_t i) const;
  /// The i-th module as M (throws ValueError when it is not an M).
  template <class M>
  M& at(size_t i) const {
    auto* p = dynamic_cast<M*>(&(*this)[i]);
    EMBER_CHECK(p != nullptr, ValueError, "ModuleList::at: module ", i, " is a ", (*this)[i].type_name());
    return *p;
  }

 private:
  std::vector<std::shared_ptr<Module>> modules_;
};

/// Modules by key, in insertion order.
class EMBER_API ModuleDict : public Module {
 public:
  ModuleDict& insert(const std::string& key, std::shared_ptr<Module> module);
  std::string type_name() const override { return "ModuleDict"; }
  bool contains(const std::string& key) const { return index_.count(key) != 0; }
  Module& operator[](const std::string& key) const;
  size_t size() const { return index_.size(); }

 private:
  std::map<std::string, std::shared_ptr<Module>> index_;
};

}  // namespace ember::nn
