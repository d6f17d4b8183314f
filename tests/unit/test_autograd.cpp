// The autograd engine and recording (DESIGN §2.3): accumulation, explicit root gradients,
// retain_graph, no-grad, detach, retain_grad, version counters, hooks, custom Functions,
// autograd::grad, views, broadcasting and graphs where a tensor is used twice.
//
// Tests named *EngineOnly use only copy and view ops (and custom Functions written with raw
// loops), so they exercise the engine independently of the arithmetic ops.
#include <gtest/gtest.h>

#include <string>

#include <ember/ember.hpp>

using namespace ember;

namespace {

std::vector<double> vals(const Tensor& t) { return t.to_vector<double>(); }

Tensor f64(const std::vector<double>& v, const Shape& shape = {}) { return tensor<double>(v, shape); }

template <class Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

/// y = 3 x elementwise with raw loops; counts its backward calls.
struct Triple : autograd::Function<Triple> {
  static inline int backward_calls = 0;
  static Tensor forward(autograd::Context& ctx, const Tensor& x) {
    ctx.save_for_backward({x});
    Tensor out = x.contiguous().clone();
    double* p = out.data<double>();
    for (int64_t i = 0; i < out.numel(); ++i) p[i] *= 3.0;
    return out;
  }
  static std::vector<Tensor> backward(autograd::Context& ctx, const std::vector<Tensor>& g) {
    ++backward_calls;
    (void)ctx.saved();  // throws when x was modified in place
    Tensor r = g[0].contiguous().clone();
    double* p = r.data<double>();
    for (int64_t i = 0; i < r.numel(); ++i) p[i] *= 3.0;
    return {r};
  }
};

/// out = a * b (same shapes) with a scalar factor kept in ctx.data; records needs_input_grad.
struct ScaledProduct : autograd::Function<ScaledProduct> {
  static inline std::vector<bool> seen_needs;
  static inline bool grad_mode_in_forward = true;
  static Tensor forward(autograd::Context& ctx, const Tensor& a, const Tensor& b, double scale) {
    grad_mode_in_forward = GradMode::is_enabled();
    ctx.save_for_backward({a, b});
    ctx.data["scale"] = scale;
    std::vector<double> va = vals(a), vb = vals(b);
    for (size_t i = 0; i < va.size(); ++i) va[i] *= vb[i] * scale;
    return f64(va, {a.numel()}).reshape(a.shape());
  }
  static std::vector<Tensor> backward(autograd::Context& ctx, const std::vector<Tensor>& g) {
    seen_needs = ctx.needs_input_grad;
    const double s = std::any_cast<double>(ctx.data["scale"]);
    auto saved = ctx.saved();
    std::vector<double> gv = vals(g[0]), va = vals(saved[0]), vb = vals(saved[1]);
    std::vector<Tensor> r(2);
    if (ctx.needs_input_grad[0]) {
      std::vector<double> ga(gv.size());
      for (size_t i = 0; i < gv.size(); ++i) ga[i] = gv[i] * vb[i] * s;
      r[0] = f64(ga, {g[0].numel()}).reshape(g[0].shape());
    }
    if (ctx.needs_input_grad[1]) {
      std::vector<double> gb(gv.size());
      for (size_t i = 0; i < gv.size(); ++i) gb[i] = gv[i] * va[i] * s;
      r[1] = f64(gb, {g[0].numel()}).reshape(g[0].shape());
    }
    return r;
  }
};

/// Returns the wrong number of gradients.
struct BadArity : autograd::Function<BadArity> {
  static Tensor forward(autograd::Context&, const Tensor& x) { return x.clone(); }
  static std::vector<Tensor> backward(autograd::Context&, const std::vector<Tensor>& g) { return {g[0], g[0]}; }
};

}  // namespace

// ------------------------------------------------------------------ accumulation and roots

TEST(Autograd, LeafGradAccumulatesAcrossBackwardCallsEngineOnly) {
  Tensor x = f64({1, 2, 3}).requires_grad_();
  EXPECT_FALSE(x.grad().defined());
  x.select(0, 1).backward();
  EXPECT_EQ(vals(x.grad()), (std::vector<double>{0, 1, 0}));
  x.select(0, 2).backward();
  EXPECT_EQ(vals(x.grad()), (std::vector<double>{0, 1, 1}));
  x.select(0, 2).backward();
  EXPECT_EQ(vals(x.grad()), (std::vector<double>{0, 1, 2}));
  x.set_grad(Tensor());
  EXPECT_FALSE(x.grad().defined());
}

TEST(Autograd, LeafGradAccumulatesAcrossBackwardCalls) {
  Tensor x = f64({1, 2, 3}).requires_grad_();
  (x * 2.0).sum().backward();
  EXPECT_EQ(vals(x.grad()), (std::vector<double>{2, 2, 2}));
  (x * x).sum().backward();
  EXPECT_EQ(vals(x.grad()), (std::vector<double>{4, 6, 8}));
}

TEST(Autograd, ExplicitGradientForNonScalarRootEngineOnly) {
  Tensor x = f64({1, 2, 3, 4, 5, 6}, {2, 3}).requires_grad_();
  Tensor y = x.t();  // (3, 2)
  y.backward(f64({10, 40, 20, 50, 30, 60}, {3, 2}));
  EXPECT_EQ(vals(x.grad()), (std::vector<double>{10, 20, 30, 40, 50, 60}));
}

TEST(Autograd, RootErrors) {
  Tensor x = f64({1, 2, 3}).requires_grad_();
  Tensor y = x.unsqueeze(0);
  std::string msg = error_of([&] { y.backward(); });
  EXPECT_NE(msg.find("scalar"), std::string::npos) << msg;
  EXPECT_THROW(y.backward(), AutogradError);
  EXPECT_THROW(y.backward(f64({1, 2, 3})), ShapeError);  // shape (3) for a (1, 3) root
  Tensor plain = f64({1.0});
  EXPECT_THROW(plain.backward(), AutogradError);
  EXPECT_THROW(autograd::backward({x.select(0, 0)}, {Tensor(), Tensor()}), ValueError);
  EXPECT_THROW(autograd::backward({Tensor()}), ValueError);
}

TEST(Autograd, MultipleRootsEngineOnly) {
  Tensor x = f64({1, 2}).requires_grad_();
  autograd::backward({x.select(0, 0), x.select(0, 1), x.select(0, 1)}, {f64({2}).reshape({}), Tensor(), Tensor()});
  EXPECT_EQ(vals(x.grad()), (std::vector<double>{2, 2}));
}

// ------------------------------------------------------------------ retain_graph

TEST(Autograd, RetainGraphEngineOnly) {
  Tensor x = f64({1, 2}).requires_grad_();
  Tensor y = x.unsqueeze(0).select(1, 1);  // 0-d... shape (1)
  Tensor root = y.squeeze();
  root.backward(Tensor(), /*retain_graph=*/true);
  root.backward(Tensor(), /*retain_graph=*/false);
  EXPECT_EQ(vals(x.grad()), (std::vector<double>{0, 2}));
  std::string msg = error_of([&] { root.backward(); });
  EXPECT_NE(msg.find("retain_graph"), std::string::npos) << msg;
  EXPECT_THROW(root.backward(), AutogradError);
}

TEST(Autograd, RetainGraphWithSavedTensors) {
  Tensor x = f64({1, 2}).requires_grad_();
  Tensor loss = (x * x).sum();
  loss.backward(Tensor(), true);
  loss.backward();
  EXPECT_EQ(vals(x.grad()), (std::vector<double>{4, 8}));
  EXPECT_THROW(loss.backward(), AutogradError);

  Triple::backward_calls = 0;
  Tensor y = Triple::apply(x).sum();
  y.backward();
  EXPECT_EQ(Triple::backward_calls, 1);
  EXPECT_THROW(y.backward(), AutogradError);
}

// ------------------------------------------------------------------ no-grad, detach, requires_grad

TEST(Autograd, NoGradGuardRecordsNothing) {
  Tensor x = f64({1, 2}).requires_grad_();
  {
    NoGradGuard ng;
    EXPECT_FALSE(GradMode::is_enabled());
    Tensor v = x.unsqueeze(0);
    EXPECT_EQ(v.grad_fn(), nullptr);
    EXPECT_FALSE(v.requires_grad());
    Tensor c = x.clone();
    EXPECT_FALSE(c.requires_grad());
    Tensor m = x * 2.0;
    EXPECT_FALSE(m.requires_grad());
    EXPECT_EQ(Triple::apply(x).grad_fn(), nullptr);
    {
      EnableGradGuard eg;
      EXPECT_TRUE(x.unsqueeze(0).requires_grad());
    }
    EXPECT_FALSE(GradMode::is_enabled());
  }
  EXPECT_TRUE(GradMode::is_enabled());
  EXPECT_NE(x.unsqueeze(0).grad_fn(), nullptr);
}

TEST(Autograd, Detach) {
  Tensor x = f64({1, 2}).requires_grad_();
  Tensor y = x.unsqueeze(0);
  Tensor d = y.detach();
  EXPECT_TRUE(d.shares_storage(x));
  EXPECT_FALSE(d.requires_grad());
  EXPECT_TRUE(d.is_leaf());
  EXPECT_EQ(d.unsqueeze(0).grad_fn(), nullptr);
  // Writes through the detached alias are visible in the original.
  d.fill_(5.0);
  EXPECT_EQ(vals(x), (std::vector<double>{5, 5}));
  // detach_ cuts a non-leaf from its history in place.
  Tensor z = x.unsqueeze(1);
  z.detach_();
  EXPECT_TRUE(z.is_leaf());
  EXPECT_FALSE(z.requires_grad());
}

TEST(Autograd, RequiresGradPropagation) {
  Tensor a = f64({1, 2});
  Tensor b = f64({3, 4}).requires_grad_();
  EXPECT_FALSE(a.requires_grad());
  EXPECT_TRUE(b.requires_grad());
  EXPECT_TRUE(b.is_leaf());
  EXPECT_FALSE((a + a).requires_grad());
  Tensor c = a + b;
  EXPECT_TRUE(c.requires_grad());
  EXPECT_FALSE(c.is_leaf());
  EXPECT_NE(c.grad_fn(), nullptr);
  EXPECT_TRUE(b.t().requires_grad());
  EXPECT_FALSE(a.t().requires_grad());
  // Non-floating tensors cannot require grad; non-leaves cannot stop.
  EXPECT_THROW(tensor<int64_t>({1}).requires_grad_(), DTypeError);
  EXPECT_THROW(tensor<bool>({true}).requires_grad_(), DTypeError);
  EXPECT_THROW(c.requires_grad_(false), AutogradError);
  b.requires_grad_(false);
  EXPECT_FALSE(b.requires_grad());
  // Converting to an integer dtype leaves the graph.
  EXPECT_FALSE(f64({1.5}).requires_grad_().to(kInt64).requires_grad());
}

TEST(Autograd, RetainGradOnNonLeaf) {
  Tensor x = f64({1, 2, 3}).requires_grad_();
  Tensor y = x * 2.0;
  Tensor z = x * 3.0;
  y.retain_grad();
  ((y * y).sum() + z.sum()).backward();
  EXPECT_EQ(vals(y.grad()), (std::vector<double>{4, 8, 12}));  // d(y²)/dy = 2y
  EXPECT_FALSE(z.grad().defined());
  EXPECT_EQ(vals(x.grad()), (std::vector<double>{11, 19, 27}));  // 4y... = 8x + 3
}

TEST(Autograd, RetainGradOnNonLeafEngineOnly) {
  Tensor x = f64({1, 2}).requires_grad_();
  Tensor y = x.unsqueeze(0);  // (1, 2)
  y.retain_grad();
  y.retain_grad();  // twice is harmless
  y.t().backward(f64({5, 7}, {2, 1}));
  EXPECT_EQ(y.grad().shape(), (Shape{1, 2}));
  EXPECT_EQ(vals(y.grad()), (std::vector<double>{5, 7}));
  EXPECT_EQ(vals(x.grad()), (std::vector<double>{5, 7}));
}

// ------------------------------------------------------------------ version counter, in-place

TEST(Autograd, SavedTensorModifiedInPlaceEngineOnly) {
  Tensor x = f64({1, 2}).requires_grad_();
  Tensor y = Triple::apply(x);
  {
    NoGradGuard ng;
    x.fill_(0.0);
  }
  std::string msg = error_of([&] { y.backward(f64({1, 1})); });
  EXPECT_NE(msg.find("in-place"), std::string::npos) << msg;
  EXPECT_THROW(y.backward(f64({1, 1})), AutogradError);
}

TEST(Autograd, SavedTensorModifiedInPlace) {
  Tensor x = f64({1, 2}).requires_grad_();
  Tensor a = x.clone();  // non-leaf, saved by the multiplication
  Tensor b = (a * a).sum();
  a.mul_(2.0);
  std::string msg = error_of([&] { b.backward(); });
  EXPECT_NE(msg.find("in-place"), std::string::npos) << msg;
  EXPECT_THROW(b.backward(), AutogradError);
}

TEST(Autograd, InPlaceOnLeafRequiringGrad) {
  Tensor x = f64({1, 2}).requires_grad_();
  EXPECT_THROW(x.fill_(1.0), AutogradError);
  EXPECT_THROW(x.zero_(), AutogradError);
  EXPECT_THROW(x.copy_(f64({3, 4})), AutogradError);
  EXPECT_THROW(x.add_(1.0), AutogradError);
  std::string msg = error_of([&] { x.fill_(1.0); });
  EXPECT_NE(msg.find("leaf"), std::string::npos) << msg;
  // Under no-grad the update is allowed (an optimizer step) and bumps the version.
  const uint64_t v0 = x.storage()->version();
  {
    NoGradGuard ng;
    x.fill_(1.0);
  }
  EXPECT_GT(x.storage()->version(), v0);
  EXPECT_EQ(vals(x), (std::vector<double>{1, 1}));
  // In-place on a view of a non-leaf is refused rather than silently wrong.
  Tensor v = x.clone().unsqueeze(0);
  EXPECT_THROW(v.fill_(0.0), NotImplemented);
}

TEST(Autograd, InPlaceOnNonLeafKeepsHistoryEngineOnly) {
  Tensor x = f64({1, 2, 3}).requires_grad_();
  Tensor src = f64({7, 8, 9}).requires_grad_();
  Tensor y = x.clone();
  y.copy_(src);  // y's old value (x) no longer matters
  EXPECT_EQ(y.grad_fn()->name(), "CopyBackwards");
  y.backward(f64({1, 2, 3}));
  EXPECT_EQ(vals(src.grad()), (std::vector<double>{1, 2, 3}));
  ASSERT_TRUE(x.grad().defined());
  EXPECT_EQ(vals(x.grad()), (std::vector<double>{0, 0, 0}));
}

// ------------------------------------------------------------------ hooks

TEST(Autograd, TensorHooksOnLeavesAndNonLeavesEngineOnly) {
  Tensor x = f64({1, 2}).requires_grad_();
  int leaf_calls = 0;
  x.register_hook([&](const Tensor& g) {
    ++leaf_calls;
    Tensor r = g.clone();
    r.data<double>()[0] += 100.0;  // visible change
    return r;
  });
  Tensor y = x.unsqueeze(0);
  y.register_hook([](const Tensor& g) {
    Tensor r = g.clone();
    double* p = r.data<double>();
    for (int64_t i = 0; i < r.numel(); ++i) p[i] *= 10.0;
    return r;
  });
  y.register_hook([](const Tensor&) { return Tensor(); });  // keeps the gradient
  y.backward(f64({1, 2}, {1, 2}));
  EXPECT_EQ(leaf_calls, 1);
  EXPECT_EQ(vals(x.grad()), (std::vector<double>{110, 20}));
  EXPECT_THROW(f64({1}).register_hook([](const Tensor& g) { return g; }), AutogradError);
}

TEST(Autograd, PostAccumulateHookFiresOnceWithFullSumEngineOnly) {
  Tensor w = f64({1, 2}).requires_grad_();
  int calls = 0;
  std::vector<double> seen;
  w.register_post_accumulate_grad_hook([&](Tensor& p) {
    ++calls;
    seen = vals(p.grad());
  });
  // w reaches the loss through two paths (tied weights).
  Tensor a = w.unsqueeze(0), b = w.unsqueeze(1);
  autograd::backward({a, b}, {f64({1, 2}, {1, 2}), f64({10, 20}, {2, 1})});
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(seen, (std::vector<double>{11, 22}));
  // A second backward fires it once more, after accumulation into .grad.
  w.select(0, 0).backward();
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(seen, (std::vector<double>{12, 22}));
  EXPECT_THROW(w.unsqueeze(0).register_post_accumulate_grad_hook([](Tensor&) {}), AutogradError);
  EXPECT_THROW(f64({1}).register_post_accumulate_grad_hook([](Tensor&) {}), AutogradError);
}

TEST(Autograd, PostAccumulateHookTiedWeights) {
  Tensor w = f64({1, 2}).requires_grad_();
  Tensor x1 = f64({3, 4}), x2 = f64({5, 6});
  int calls = 0;
  std::vector<double> seen;
  w.register_post_accumulate_grad_hook([&](Tensor& p) {
    ++calls;
    seen = vals(p.grad());
  });
  ((w * x1).sum() + (w * x2).sum()).backward();
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(seen, (std::vector<double>{8, 10}));
}

// ------------------------------------------------------------------ custom Function

TEST(Autograd, CustomFunction) {
  Tensor a = f64({1, 2, 3}).requires_grad_();
  Tensor b = f64({4, 5, 6});
  ScaledProduct::grad_mode_in_forward = true;
  Tensor y = ScaledProduct::apply(a, b, 0.5);
  EXPECT_FALSE(ScaledProduct::grad_mode_in_forward);
  EXPECT_EQ(vals(y), (std::vector<double>{2, 5, 9}));
  ASSERT_NE(y.grad_fn(), nullptr);
  y.backward(f64({1, 1, 2}));
  EXPECT_EQ(ScaledProduct::seen_needs, (std::vector<bool>{true, false}));
  EXPECT_EQ(vals(a.grad()), (std::vector<double>{2, 2.5, 6}));
  EXPECT_FALSE(b.grad().defined());

  Tensor b2 = f64({4, 5, 6}).requires_grad_();
  Tensor a2 = f64({1, 2, 3});
  ScaledProduct::apply(a2, b2, 2.0).backward(f64({1, 1, 1}));
  EXPECT_EQ(ScaledProduct::seen_needs, (std::vector<bool>{false, true}));
  EXPECT_EQ(vals(b2.grad()), (std::vector<double>{2, 4, 6}));

  // No input requires grad: no node.
  EXPECT_EQ(ScaledProduct::apply(a2, f64({1, 1, 1}), 1.0).grad_fn(), nullptr);

  auto r = autograd::gradcheck([](const std::vector<Tensor>& in) { return ScaledProduct::apply(in[0], in[1], 1.5); },
                               {f64({0.3, -0.7, 1.1}).requires_grad_(), f64({2.0, 0.5, -1.0}).requires_grad_()});
  EXPECT_TRUE(r.ok) << r.message;
}

TEST(Autograd, CustomFunctionWrongArity) {
  Tensor x = f64({1, 2}).requires_grad_();
  Tensor y = BadArity::apply(x);
  EXPECT_THROW(y.backward(f64({1, 1})), AutogradError);
}

TEST(Autograd, CustomFunctionOutputIsFreshEvenForViews) {
  struct Identity : autograd::Function<Identity> {
    static Tensor forward(autograd::Context&, const Tensor& x) { return x; }
    static std::vector<Tensor> backward(autograd::Context&, const std::vector<Tensor>& g) { return {g[0]}; }
  };
  Tensor x = f64({1, 2}).requires_grad_();
  Tensor y = Identity::apply(x);
  EXPECT_FALSE(y.is_same(x));
  EXPECT_TRUE(x.is_leaf());  // x's own metadata was not overwritten
  EXPECT_FALSE(y.is_leaf());
  y.backward(f64({3, 4}));
  EXPECT_EQ(vals(x.grad()), (std::vector<double>{3, 4}));
}

// ------------------------------------------------------------------ autograd::grad

TEST(Autograd, GradFunctionHasNoSideEffectsEngineOnly) {
  Tensor x = f64({1, 2, 3}).requires_grad_();
  Tensor u = f64({4}).requires_grad_();
  Tensor y = x.t().unsqueeze(0);
  auto g = autograd::grad({y}, {x}, {f64({5, 6, 7}, {1, 3})}, /*retain_graph=*/true);
  ASSERT_EQ(g.size(), 1u);
  EXPECT_EQ(vals(g[0]), (std::vector<double>{5, 6, 7}));
  EXPECT_FALSE(x.grad().defined());
  // allow_unused
  EXPECT_THROW(autograd::grad({y}, {x, u}, {f64({1, 1, 1}, {1, 3})}, true), AutogradError);
  auto g2 = autograd::grad({y}, {x, u}, {f64({1, 1, 1}, {1, 3})}, true, /*allow_unused=*/true);
  EXPECT_TRUE(g2[0].defined());
  EXPECT_FALSE(g2[1].defined());
  EXPECT_FALSE(u.grad().defined());
  // Inputs must require grad.
  EXPECT_THROW(autograd::grad({y}, {f64({1})}, {f64({1, 1, 1}, {1, 3})}), AutogradError);
}

TEST(Autograd, GradFunctionOnNonLeafInput) {
  Tensor x = f64({1, 2}).requires_grad_();
  Tensor h = x * 3.0;
  Tensor loss = (h * h).sum();
  auto g = autograd::grad({loss}, {h, x});
  EXPECT_EQ(vals(g[0]), (std::vector<double>{6, 12}));   // 2h
  EXPECT_EQ(vals(g[1]), (std::vector<double>{18, 36}));  // 18x
  EXPECT_FALSE(x.grad().defined());
}

// ------------------------------------------------------------------ views and broadcasting

TEST(Autograd, GradientsThroughViewsEngineOnly) {
  // x (2, 3): [[0, 1, 2], [3, 4, 5]]
  auto fresh = [] { return f64({0, 1, 2, 3, 4, 5}, {2, 3}).requires_grad_(); };
  {
    Tensor x = fresh();
    x.transpose(0, 1).backward(f64({1, 2, 3, 4, 5, 6}, {3, 2}));
    EXPECT_EQ(vals(x.grad()), (std::vector<double>{1, 3, 5, 2, 4, 6}));
  }
  {
    Tensor x = fresh();
    x.slice(1, 0, 3, 2).backward(f64({1, 2, 3, 4}, {2, 2}));
    EXPECT_EQ(vals(x.grad()), (std::vector<double>{1, 0, 2, 3, 0, 4}));
  }
  {
    Tensor x = fresh();
    x.select(1, -1).backward(f64({7, 8}));
    EXPECT_EQ(vals(x.grad()), (std::vector<double>{0, 0, 7, 0, 0, 8}));
  }
  {
    Tensor x = fresh();
    x.unsqueeze(0).permute({2, 0, 1}).backward(f64({1, 2, 3, 4, 5, 6}, {3, 1, 2}));
    EXPECT_EQ(vals(x.grad()), (std::vector<double>{1, 3, 5, 2, 4, 6}));
  }
  {
    // reshape of a non-contiguous tensor copies; the gradient still maps back.
    Tensor x = fresh();
    Tensor r = x.t().reshape({6});
    EXPECT_FALSE(r.shares_storage(x));
    r.backward(f64({10, 20, 30, 40, 50, 60}));
    EXPECT_EQ(vals(x.grad()), (std::vector<double>{10, 30, 50, 20, 40, 60}));
  }
  {
    Tensor x = fresh();
    x.narrow(0, 1, 1).flatten().view({3, 1}).squeeze(1).backward(f64({1, 2, 3}));
    EXPECT_EQ(vals(x.grad()), (std::vector<double>{0, 0, 0, 1, 2, 3}));
  }
}

TEST(Autograd, GradientsThroughExpandAndBroadcasting) {
  Tensor x = f64({1, 2, 3}).requires_grad_();
  x.unsqueeze(0).expand({4, 3}).backward(ones({4, 3}, {.dtype = kFloat64}));
  EXPECT_EQ(vals(x.grad()), (std::vector<double>{4, 4, 4}));

  Tensor a = f64({1, 2, 3, 4, 5, 6}, {2, 3}).requires_grad_();
  Tensor b = f64({10, 20, 30}).requires_grad_();
  Tensor c = f64({2, 3}, {2, 1}).requires_grad_();
  ((a + b) * c).sum().backward();
  EXPECT_EQ(vals(a.grad()), (std::vector<double>{2, 2, 2, 3, 3, 3}));
  EXPECT_EQ(vals(b.grad()), (std::vector<double>{5, 5, 5}));
  EXPECT_EQ(c.grad().shape(), (Shape{2, 1}));
  EXPECT_EQ(vals(c.grad()), (std::vector<double>{66, 75}));  // row sums of a + b
}

TEST(Autograd, DiamondGraphEngineOnly) {
  Tensor x = f64({1, 2}).requires_grad_();
  Tensor y = x.unsqueeze(0);  // shared by both branches
  Tensor left = y.select(0, 0);
  Tensor right = y.t().squeeze(1);
  autograd::backward({left, right}, {f64({1, 10}), f64({100, 1000})});
  EXPECT_EQ(vals(x.grad()), (std::vector<double>{101, 1010}));
}

TEST(Autograd, DiamondGraph) {
  Tensor x = f64({1, 2}).requires_grad_();
  Tensor a = x * 2.0, b = x * 3.0;
  Tensor y = a * b;  // 6x²
  y.sum().backward();
  EXPECT_EQ(vals(x.grad()), (std::vector<double>{12, 24}));
  // x used directly twice in one op.
  Tensor z = f64({3}).requires_grad_();
  (z * z + z).sum().backward();
  EXPECT_EQ(vals(z.grad()), (std::vector<double>{7}));
}

TEST(Autograd, DtypeConversionBackward) {
  Tensor x = tensor<float>({1.5f, 2.5f}).requires_grad_();
  Tensor y = x.to(kFloat64);
  EXPECT_EQ(y.grad_fn()->name(), "ToCopyBackward");
  y.backward(f64({1, 2}));
  EXPECT_EQ(x.grad().dtype(), kFloat32);
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{1, 2}));
}

TEST(Autograd, GradcheckOfViewChains) {
  auto r = autograd::gradcheck(
      [](const std::vector<Tensor>& in) {
        return in[0].t().reshape({3, 2}).slice(0, 0, 3, 2).unsqueeze(1);
      },
      {f64({0.1, 0.2, 0.3, 0.4, 0.5, 0.6}, {2, 3}).requires_grad_()});
  EXPECT_TRUE(r.ok) << r.message;
}

TEST(Autograd, GradFunctionAppliesTensorHooksEngineOnly) {
  // As torch.autograd.grad: hooks on a captured tensor modify the returned gradient.
  auto times = [](double k) {
    return [k](const Tensor& g) {
      Tensor r = g.clone();
      double* p = r.data<double>();
      for (int64_t i = 0; i < r.numel(); ++i) p[i] *= k;
      return r;
    };
  };
  Tensor x = f64({1, 2}).requires_grad_();
  x.register_hook(times(2.0));
  Tensor h = x.unsqueeze(0);
  h.register_hook(times(10.0));
  Tensor y = h.t();
  auto g = autograd::grad({y}, {h, x}, {f64({1, 3}, {2, 1})});
  EXPECT_EQ(vals(g[0]), (std::vector<double>{10, 30}));
  EXPECT_EQ(vals(g[1]), (std::vector<double>{20, 60}));
  EXPECT_FALSE(x.grad().defined());
}

TEST(Autograd, RetainedGradSeesHooksRegisteredLaterEngineOnly) {
  Tensor x = f64({1, 2}).requires_grad_();
  Tensor y = x.unsqueeze(0);
  y.retain_grad();
  y.register_hook([](const Tensor& g) {
    Tensor r = g.clone();
    double* p = r.data<double>();
    for (int64_t i = 0; i < r.numel(); ++i) p[i] *= 2.0;
    return r;
  });
  y.backward(f64({1, 3}, {1, 2}));
  EXPECT_EQ(vals(y.grad()), (std::vector<double>{2, 6}));
  EXPECT_EQ(vals(x.grad()), (std::vector<double>{2, 6}));
}

TEST(Autograd, EngineValidatesGradientShapeAndDtypeEngineOnly) {
  struct WrongShape : autograd::Function<WrongShape> {
    static Tensor forward(autograd::Context&, const Tensor& x) { return x.clone(); }
    static std::vector<Tensor> backward(autograd::Context&, const std::vector<Tensor>& g) {
      return {g[0].unsqueeze(0)};
    }
  };
  struct WideGrad : autograd::Function<WideGrad> {
    static Tensor forward(autograd::Context&, const Tensor& x) { return x.clone(); }
    static std::vector<Tensor> backward(autograd::Context&, const std::vector<Tensor>& g) {
      return {g[0].to(kFloat64)};
    }
  };
  Tensor x = tensor<float>({1, 2}).requires_grad_();
  std::string msg = error_of([&] { WrongShape::apply(x).backward(tensor<float>({1, 1})); });
  EXPECT_NE(msg.find("shape (1, 2)"), std::string::npos) << msg;
  EXPECT_THROW(WrongShape::apply(x).backward(tensor<float>({1, 1})), AutogradError);
  WideGrad::apply(x).backward(tensor<float>({3, 4}));
  EXPECT_EQ(x.grad().dtype(), kFloat32);
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{3, 4}));
}
