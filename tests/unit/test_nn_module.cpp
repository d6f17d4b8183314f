// nn::Module: PyTorch's dotted names, state dicts and their strict/non-strict loading,
// freezing, dtype moves that keep handles, zero_grad, train/eval and printing.
#include <gtest/gtest.h>

#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "ember/ember.hpp"

using namespace ember;

namespace {

// A model with a member Linear, a ModuleList and a nested Sequential.
struct Net : nn::Module {
  nn::Linear embed{4, 6};
  nn::ModuleList layers;
  nn::Sequential head;
  Net() {
    layers.emplace<nn::Linear>(6, 6);
    layers.emplace<nn::Linear>(6, 6, nn::LinearOptions{.bias = false});
    head.emplace<nn::ReLU>();
    head.emplace<nn::Linear>(6, 2);
    register_modules({{"embed", embed}, {"layers", layers}, {"head", head}});
  }
  std::string type_name() const override { return "Net"; }
  Tensor forward(const Tensor& x) {
    Tensor h = embed(x);
    for (size_t i = 0; i < layers.size(); ++i) h = nn::functional::tanh(layers.at<nn::Linear>(i)(h));
    return head(h);
  }
};

std::vector<std::string> names(const nn::NamedTensors& nt) {
  std::vector<std::string> out;
  for (auto& [n, t] : nt) out.push_back(n);
  return out;
}

std::string message_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const ValueError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a ValueError";
  return "";
}

TEST(Module, SequentialNamesLikePyTorch) {
  nn::Sequential seq;
  seq.emplace<nn::Linear>(3, 4);
  seq.emplace<nn::ReLU>();
  seq.emplace<nn::Linear>(4, 1);
  EXPECT_EQ(names(seq.named_parameters()), (std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias"}));
  // The tensors carry their names (the optimizer's state keys).
  EXPECT_EQ(seq.parameters()[2].name(), "2.weight");
}

TEST(Module, NestedDottedNames) {
  Net net;
  EXPECT_EQ(names(net.named_parameters()),
            (std::vector<std::string>{"embed.weight", "embed.bias", "layers.0.weight", "layers.0.bias",
                                      "layers.1.weight", "head.1.weight", "head.1.bias"}));
  std::vector<std::string> modules;
  for (auto& [n, m] : net.named_modules()) modules.push_back(n);
  EXPECT_EQ(modules,
            (std::vector<std::string>{"", "embed", "layers", "layers.0", "layers.1", "head", "head.0", "head.1"}));
  EXPECT_EQ(&net.submodule("layers.1"), &net.layers[1]);
  EXPECT_THROW(net.submodule("layers.7"), ValueError);
  EXPECT_EQ(net.parameters(false).size(), 0u);
}

TEST(Module, StateDictRoundTrip) {
  Net a, b;
  auto sd = a.state_dict();
  EXPECT_EQ(sd.size(), 7u);
  auto r = b.load_state_dict(sd);
  EXPECT_TRUE(r.missing_keys.empty());
  EXPECT_TRUE(r.unexpected_keys.empty());
  for (auto& [name, t] : b.state_dict()) EXPECT_TRUE(equal(t, sd.at(name))) << name;
  // Loading copies: the handles of b are unchanged, and a later change to a does not reach b.
  Tensor w = b.embed.weight;
  {
    NoGradGuard ng;
    a.embed.weight.fill_(3.0);
  }
  EXPECT_TRUE(w.is_same(b.embed.weight));
  EXPECT_FALSE(equal(a.embed.weight, b.embed.weight));
  // state_dict aliases the module's storage.
  EXPECT_TRUE(a.state_dict().at("embed.weight").shares_storage(a.embed.weight));
}

TEST(Module, LoadStateDictStrictErrorsNameTheKeys) {
  Net net;
  auto sd = net.state_dict();
  sd.erase("layers.0.bias");
  sd["layers.9.weight"] = zeros({1});
  sd["head.1.weight"] = zeros({3, 6});
  const std::string msg = message_of([&] { net.load_state_dict(sd); });
  EXPECT_NE(msg.find("missing keys: \"layers.0.bias\""), std::string::npos) << msg;
  EXPECT_NE(msg.find("unexpected keys: \"layers.9.weight\""), std::string::npos) << msg;
  EXPECT_NE(msg.find("size mismatch for head.1.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("checkpoint has shape (3, 6), the model has (2, 6)"), std::string::npos) << msg;
}

TEST(Module, LoadStateDictNonStrict) {
  Net src, dst;
  auto sd = src.state_dict();
  sd.erase("embed.bias");
  sd["extra"] = zeros({2});
  auto r = dst.load_state_dict(sd, /*strict=*/false);
  EXPECT_EQ(r.missing_keys, std::vector<std::string>{"embed.bias"});
  EXPECT_EQ(r.unexpected_keys, std::vector<std::string>{"extra"});
  EXPECT_TRUE(equal(dst.embed.weight, src.embed.weight));
  // Shape mismatches throw even when not strict.
  sd = src.state_dict();
  sd["embed.weight"] = zeros({6, 5});
  EXPECT_THROW(dst.load_state_dict(sd, false), ValueError);
}

TEST(Module, FrozenParametersAreSkippedByOptimizers) {
  Net net;
  net.embed.requires_grad_(false);
  optim::SGD opt(net.parameters(), {.lr = 0.5});
  const Tensor w0 = net.embed.weight.clone(), h0 = net.head[1].parameters()[0].clone();
  Tensor loss = net.forward(ones({3, 4})).sum();
  loss.backward();
  EXPECT_FALSE(net.embed.weight.grad().defined());
  opt.step();
  EXPECT_TRUE(equal(net.embed.weight, w0));
  EXPECT_FALSE(equal(net.head[1].parameters()[0], h0));
  // A frozen parameter that still has an old gradient is skipped too.
  net.embed.weight.set_grad(ones({6, 4}));
  opt.step();
  EXPECT_TRUE(equal(net.embed.weight, w0));
}

TEST(Module, ToDtypeKeepsHandles) {
  Net net;
  std::vector<Tensor> handles = net.parameters();
  const Tensor before = handles[0].clone();
  net.to(kFloat64);
  for (auto& p : net.parameters()) EXPECT_EQ(p.dtype(), kFloat64);
  for (auto& h : handles) EXPECT_EQ(h.dtype(), kFloat64);
  EXPECT_TRUE(handles[0].is_same(net.embed.weight));
  EXPECT_TRUE(allclose(handles[0], before.to(kFloat64), 0, 0));
  EXPECT_TRUE(handles[0].requires_grad());
  // An optimizer built before the move updates the moved parameters.
  Net net2;
  optim::SGD opt(net2.parameters(), {.lr = 1.0});
  net2.to(kFloat64);
  net2.forward(ones({2, 4}, {.dtype = kFloat64})).sum().backward();
  const Tensor w = net2.head[1].parameters()[1].clone();
  opt.step();
  EXPECT_FALSE(equal(net2.head[1].parameters()[1], w));
}

TEST(Module, ZeroGrad) {
  Net net;
  net.forward(ones({2, 4})).sum().backward();
  ASSERT_TRUE(net.embed.weight.grad().defined());
  net.zero_grad(/*set_to_none=*/false);
  ASSERT_TRUE(net.embed.weight.grad().defined());
  EXPECT_EQ(net.embed.weight.grad().abs().sum().item<double>(), 0.0);
  net.zero_grad();
  for (auto& p : net.parameters()) EXPECT_FALSE(p.grad().defined()) << p.name();
}

TEST(Module, TrainEvalPropagates) {
  Net net;
  EXPECT_TRUE(net.is_training());
  net.eval();
  for (auto& [n, m] : net.named_modules()) EXPECT_FALSE(m->is_training()) << n;
  net.train();
  for (auto& [n, m] : net.named_modules()) EXPECT_TRUE(m->is_training()) << n;
  net.head.train(false);
  EXPECT_TRUE(net.is_training());
  EXPECT_FALSE(net.head[0].is_training());
}

TEST(Module, PrintsLikePyTorch) {
  nn::Sequential seq;
  seq.emplace<nn::Linear>(3, 4);
  seq.emplace<nn::ReLU>();
  seq.emplace<nn::Linear>(4, 1, nn::LinearOptions{.bias = false});
  std::ostringstream os;
  os << seq;
  EXPECT_EQ(os.str(),
            "Sequential(\n"
            "  (0): Linear(in_features=3, out_features=4, bias=True)\n"
            "  (1): ReLU()\n"
            "  (2): Linear(in_features=4, out_features=1, bias=False)\n"
            ")");
  Net net;
  EXPECT_EQ(net.str(),
            "Net(\n"
            "  (embed): Linear(in_features=4, out_features=6, bias=True)\n"
            "  (layers): ModuleList(\n"
            "    (0): Linear(in_features=6, out_features=6, bias=True)\n"
            "    (1): Linear(in_features=6, out_features=6, bias=False)\n"
            "  )\n"
            "  (head): Sequential(\n"
            "    (0): ReLU()\n"
            "    (1): Linear(in_features=6, out_features=2, bias=True)\n"
            "  )\n"
            ")");
  EXPECT_EQ(nn::LayerNorm({4}).str(), "LayerNorm((4,), eps=1e-05, elementwise_affine=True)");
  EXPECT_EQ(nn::Dropout(0.1).str(), "Dropout(p=0.1, inplace=False)");
  EXPECT_EQ(nn::Embedding(10, 3).str(), "Embedding(10, 3)");
}

TEST(Module, RegistrationErrors) {
  struct M : nn::Module {
    Tensor a = zeros({1}), b = zeros({1});
  } m;
  m.register_parameter("a", m.a);
  EXPECT_THROW(m.register_parameter("a", m.b), ValueError);
  EXPECT_THROW(m.register_parameter("x.y", m.b), ValueError);
  EXPECT_THROW(m.register_parameter("", m.b), ValueError);
  EXPECT_THROW(m.register_module("self", m), ValueError);
  EXPECT_THROW(m.register_module("null", std::shared_ptr<nn::Module>()), ValueError);
}

TEST(Module, TiedParametersAppearOnce) {
  nn::Sequential seq;
  auto& l0 = seq.emplace<nn::Linear>(3, 3);
  auto& l1 = seq.emplace<nn::Linear>(3, 3);
  l1.weight = l0.weight;  // the slot now holds the same tensor
  EXPECT_EQ(names(seq.named_parameters()), (std::vector<std::string>{"0.weight", "0.bias", "1.bias"}));
}

}  // namespace
