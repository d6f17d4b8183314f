// Checkpoints: trainer.json round trips and strictness, CheckpointManager save/list/prune/replace,
// leftovers, load_checkpoint and resume_checkpoint.
#include <ember/io/checkpoint.hpp>
#include <ember/version.hpp>

#include "checkpoint_test_util.hpp"

namespace ember::test {
namespace {

using io::CheckpointManager;
using io::TrainerState;

// ------------------------------------------------------------------ trainer.json

TEST(TrainerJson, RoundTripIsBitExact) {
  TrainerState s = make_trainer(123456789012);
  s.ember_version = "9.8.7";
  const std::string text = io::trainer_state_to_json(s);
  const TrainerState back = io::trainer_state_from_json(text);
  expect_same_trainer(s, back);
  // Every double of a long sweep (including subnormals and the extremes) reads back bit for bit.
  TrainerState many;
  uint64_t bits = 0x9E3779B97F4A7C15ull;
  for (int i = 0; i < 2000; ++i) {
    bits = bits * 6364136223846793005ull + 1442695040888963407ull;
    const double d = std::bit_cast<double>(bits);
    many.values["v" + std::to_string(i)] = d;
    many.values["s" + std::to_string(i)] = std::bit_cast<double>(bits >> 12);  // subnormal
  }
  expect_same_doubles(many.values, io::trainer_state_from_json(io::trainer_state_to_json(many)).values, "values");
}

TEST(TrainerJson, OutputIsDeterministicSortedAndIndented) {
  TrainerState s;
  s.step = 3;
  s.epoch = 1;
  s.loader = {1, 2};
  s.generators["default"] = {18446744073709551615ull, 7};
  s.values = {
      {"b", 0.1}, {"a", std::numeric_limits<double>::quiet_NaN()}, {"c", -std::numeric_limits<double>::infinity()}};
  s.counters = {{"skipped_steps", -1}};
  s.config = {{"lr", "0.5"}};
  s.ember_version = "0.1.0";
  const std::string expected = R"({
  "config": {
    "lr": "0.5"
  },
  "counters": {
    "skipped_steps": -1
  },
  "ember_version": "0.1.0",
  "epoch": 1,
  "format": "ember-checkpoint",
  "format_version": 1,
  "generators": {
    "default": {
      "offset": 7,
      "seed": 18446744073709551615
    }
  },
  "grad_scaler": {},
  "loader": {
    "batch": 2,
    "epoch": 1
  },
  "scheduler": {},
  "step": 3,
  "values": {
    "a": "nan",
    "b": 0.1,
    "c": "-inf"
  }
}
)";
  EXPECT_EQ(io::trainer_state_to_json(s), expected);
  EXPECT_EQ(io::trainer_state_to_json(s), io::trainer_state_to_json(io::trainer_state_from_json(expected)));
}

TEST(TrainerJson, TextThatIsNotUtf8IsAValueError) {
  TrainerState s;
  s.config["path"] = "caf\xE9";  // Latin-1, not UTF-8
  EXPECT_THROW(io::trainer_state_to_json(s), ValueError);
  expect_throw_containing([&] { io::trainer_state_to_json(s); }, "expected UTF-8 text");
  s.config.clear();
  s.values["\xFF"] = 1.0;
  expect_throw_containing([&] { io::trainer_state_to_json(s); }, "expected UTF-8 text");
}

TEST(TrainerJson, OptionalSectionsDefaultToEmpty) {
  const TrainerState s = io::trainer_state_from_json(
      R"({"format": "ember-checkpoint", "format_version": 1, "step": 5, "epoch": 0, "loader": {"epoch": 0, "batch": 5}})");
  EXPECT_EQ(s.step, 5);
  EXPECT_EQ(s.loader.batch, 5);
  EXPECT_TRUE(s.generators.empty() && s.values.empty() && s.config.empty() && s.ember_version.empty());
}

struct Malformed {
  const char* name;
  std::string text;
  std::string needle;
};

std::string doc(const std::string& replace_from, const std::string& replace_to) {
  std::string base =
      R"({"format": "ember-checkpoint", "format_version": 1, "step": 5, "epoch": 0, "loader": {"epoch": 0, "batch": 5}, )"
      R"("generators": {"default": {"seed": 1, "offset": 2}}, "values": {"x": 0.5}, "counters": {"c": 1}, )"
      R"("config": {"model": "mlp"}, "scheduler": {}, "grad_scaler": {}, "ember_version": "0.1.0"})";
  if (replace_from.empty()) return base;
  const auto at = base.find(replace_from);
  EXPECT_NE(at, std::string::npos) << replace_from;
  return base.replace(at, replace_from.size(), replace_to);
}

TEST(TrainerJson, TheBaseDocumentOfTheMalformedCasesParses) {
  EXPECT_EQ(io::trainer_state_from_json(doc("", "")).step, 5);
}

TEST(TrainerJson, MalformedDocumentsAreRejectedWithTheField) {
  const std::vector<Malformed> cases = {
      {"not json", "this is not json", "not valid JSON"},
      {"truncated", doc("", "").substr(0, 60), "not valid JSON"},
      {"trailing garbage", doc("", "") + " x", "not valid JSON"},
      {"array", "[1, 2]", "expected a JSON object at the top level, found array"},
      {"no format", doc(R"("format": "ember-checkpoint", )", ""), "field 'format': missing"},
      {"other format", doc(R"("ember-checkpoint")", R"("safetensors")"),
       "field 'format': expected \"ember-checkpoint\", found \"safetensors\""},
      {"future version", doc(R"("format_version": 1)", R"("format_version": 2)"), "found version 2"},
      {"no step", doc(R"("step": 5, )", ""), "field 'step': missing"},
      {"negative step", doc(R"("step": 5)", R"("step": -5)"), "field 'step': expected an integer >= 0, found -5"},
      {"string step", doc(R"("step": 5)", R"("step": "5")"), "field 'step': expected an integer, found string"},
      {"fractional epoch", doc(R"("epoch": 0)", R"("epoch": 1.5)"), "field 'epoch': expected an integer, found number"},
      {"no loader batch", doc(R"(, "batch": 5)", ""), "field 'loader.batch': missing"},
      {"loader not object", doc(R"({"epoch": 0, "batch": 5})", "7"), "field 'loader': expected an object"},
      {"unknown key", doc(R"("step": 5)", R"("step": 5, "stepp": 6)"), "field 'stepp': unknown field"},
      {"unknown generator key", doc(R"("offset": 2)", R"("offset": 2, "key": 3)"),
       "field 'generators.default.key': unknown field"},
      {"duplicate key", doc(R"("step": 5)", R"("step": 5, "step": 6)"), "field 'step': duplicate key"},
      {"negative seed", doc(R"("seed": 1)", R"("seed": -1)"),
       "field 'generators.default.seed': expected an unsigned integer"},
      {"seed beyond uint64", doc(R"("seed": 1)", R"("seed": 18446744073709551616)"),
       "field 'generators.default.seed': expected an unsigned integer"},
      {"bad nan spelling", doc(R"("x": 0.5)", R"("x": "NaN")"),
       "field 'values.x': expected a number or one of the strings \"nan\""},
      {"counter beyond int64", doc(R"("c": 1)", R"("c": 9223372036854775808)"),
       "field 'counters.c': expected an integer that fits in int64"},
      {"number overflow", doc(R"("x": 0.5)", R"("x": 1e400)"), "not valid JSON"},
      {"config not string", doc(R"("model": "mlp")", R"("model": 3)"), "field 'config.model': expected a string"},
      {"version not string", doc(R"("ember_version": "0.1.0")", R"("ember_version": null)"),
       "field 'ember_version': expected a string, found null"},
  };
  ASSERT_GE(cases.size(), 8u);
  for (const Malformed& c : cases) {
    SCOPED_TRACE(c.name);
    expect_io_error([&] { io::trainer_state_from_json(c.text, "runs/x/trainer.json"); },
                    {"trainer_state_from_json: runs/x/trainer.json: ", c.needle});
  }
}

// ------------------------------------------------------------------ CheckpointManager

using Checkpoints = ScratchDir;

TEST_F(Checkpoints, SaveAndLoadRoundTripBitwise) {
  const std::string run = path("run");
  CheckpointManager mgr(run);
  const io::TensorMap model = make_model(1), opt = make_optimizer(1);
  TrainerState trainer = make_trainer(100);
  const std::string p = mgr.save(model, opt, trainer);
  EXPECT_EQ(p, run + "/step-00000100");
  EXPECT_EQ(listing(run), std::vector<std::string>{"step-00000100"});
  EXPECT_EQ(listing(p), (std::vector<std::string>{"model.safetensors", "optimizer.safetensors", "trainer.json"}));

  const io::Checkpoint c = io::load_checkpoint(p);
  EXPECT_EQ(c.path, p);
  expect_bitwise_equal(model, c.model, "model");
  expect_bitwise_equal(opt, c.optimizer, "optimizer");
  trainer.ember_version = kVersion;  // save fills it in
  expect_same_trainer(trainer, c.trainer);
  // The files are plain safetensors and JSON: what the lower-level readers see is the same.
  expect_bitwise_equal(model, io::load_safetensors(p + "/model.safetensors", nullptr, {.mmap = false}), "file");
  EXPECT_EQ(read_bytes(p + "/trainer.json"), io::trainer_state_to_json(trainer));
}

TEST_F(Checkpoints, LoadedTensorsOutliveTheirFiles) {
  CheckpointManager mgr(path("run"));
  const std::string p = mgr.save(make_model(2), make_optimizer(2), make_trainer(1));
  io::Checkpoint c = io::load_checkpoint(p);
  fs::remove_all(p);
  expect_bitwise_equal(make_model(2), c.model, "model after the files were deleted");
}

TEST_F(Checkpoints, CreatesMissingParentsAndAcceptsTrailingSlash) {
  CheckpointManager mgr(path("a/b/c") + "//");
  EXPECT_EQ(mgr.dir(), path("a/b/c"));
  const std::string p = mgr.save(make_model(1), make_optimizer(1), make_trainer(7));
  EXPECT_EQ(p, path("a/b/c/step-00000007"));
  EXPECT_TRUE(fs::is_directory(p));
}

TEST_F(Checkpoints, KeepPrunesTheOldest) {
  CheckpointManager mgr(path("run"), {.keep = 2});
  for (int64_t step = 1; step <= 5; ++step) mgr.save(make_model(1), make_optimizer(1), make_trainer(step * 10));
  EXPECT_EQ(mgr.list(), (std::vector<std::string>{path("run/step-00000040"), path("run/step-00000050")}));
  EXPECT_EQ(listing(path("run")), (std::vector<std::string>{"step-00000040", "step-00000050"}));
}

TEST_F(Checkpoints, KeepZeroKeepsAll) {
  CheckpointManager mgr(path("run"));
  for (int64_t step = 1; step <= 4; ++step) mgr.save(make_model(1), make_optimizer(1), make_trainer(step));
  EXPECT_EQ(mgr.list().size(), 4u);
}

TEST_F(Checkpoints, KeepNeverRemovesTheCheckpointJustWritten) {
  // A run resumed from an older checkpoint saves below newer ones: keep=1 deletes neither the
  // checkpoint just written nor the newer one; older ones are pruned as usual.
  CheckpointManager mgr(path("run"), {.keep = 1});
  mgr.save(make_model(1), make_optimizer(1), make_trainer(10));
  mgr.save(make_model(1), make_optimizer(1), make_trainer(50));
  CheckpointManager(path("run")).save(make_model(1), make_optimizer(1), make_trainer(10));
  const std::string p = mgr.save(make_model(2), make_optimizer(2), make_trainer(20));
  EXPECT_EQ(mgr.list(), (std::vector<std::string>{p, path("run/step-00000050")}));
}

TEST_F(Checkpoints, NegativeKeepIsAValueError) {
  EXPECT_THROW(CheckpointManager(path("run"), {.keep = -1}), ValueError);
  expect_throw_containing([&] { CheckpointManager(path("run"), {.keep = -1}); }, "expected keep >= 0");
  expect_throw_containing([&] { CheckpointManager(""); }, "expected a directory path");
}

TEST_F(Checkpoints, SameStepIsReplaced) {
  CheckpointManager mgr(path("run"));
  mgr.save(make_model(1), make_optimizer(1), make_trainer(7));
  const std::string p = mgr.save(make_model(2), make_optimizer(2), make_trainer(7));
  EXPECT_EQ(listing(path("run")), std::vector<std::string>{"step-00000007"});
  const io::Checkpoint c = io::load_checkpoint(p);
  expect_bitwise_equal(make_model(2), c.model, "model");
  expect_bitwise_equal(make_optimizer(2), c.optimizer, "optimizer");
}

TEST_F(Checkpoints, ListOrdersNumericallyIncludingStepsBeyondEightDigits) {
  CheckpointManager mgr(path("run"));
  const std::vector<int64_t> steps = {100000000, 5, 99999999, 1234567890123, 0, 10};
  for (int64_t s : steps) mgr.save(make_model(1), make_optimizer(1), make_trainer(s));
  EXPECT_EQ(mgr.list(), (std::vector<std::string>{path("run/step-00000000"), path("run/step-00000005"),
                                                  path("run/step-00000010"), path("run/step-99999999"),
                                                  path("run/step-100000000"), path("run/step-1234567890123")}));
  EXPECT_EQ(mgr.latest(), path("run/step-1234567890123"));
  EXPECT_EQ(io::load_checkpoint(path("run/step-100000000")).trainer.step, 100000000);
}

TEST_F(Checkpoints, MissingOrEmptyDirectoryHasNoCheckpoints) {
  EXPECT_TRUE(CheckpointManager(path("nowhere")).list().empty());
  EXPECT_FALSE(CheckpointManager(path("nowhere")).latest().has_value());
  EXPECT_EQ(CheckpointManager(path("nowhere")).remove_leftovers(), 0);
  fs::create_directories(path("empty"));
  EXPECT_FALSE(CheckpointManager(path("empty")).latest().has_value());
}

TEST_F(Checkpoints, LeftoversAreIgnoredByLatestAndRemovedByTheNextSave) {
  const std::string run = path("run");
  CheckpointManager mgr(run);
  mgr.save(make_model(1), make_optimizer(1), make_trainer(3));
  // Interrupted replacement of step 4: the complete old copy is aside and step-00000004 is absent.
  const std::string restored = mgr.save(make_model(4), make_optimizer(4), make_trainer(4));
  fs::rename(restored, run + "/.step-00000004.old-123-6");
  // An interrupted save of a newer step: a temporary directory with a partial file.
  fs::create_directories(run + "/.step-00000009.tmp-123-4");
  std::ofstream(run + "/.step-00000009.tmp-123-4/model.safetensors") << "partial";
  // A replaced copy moved aside whose replacement finished (its step exists): garbage.
  fs::create_directories(run + "/.step-00000003.old-123-5");
  // Names that are not complete checkpoints and not ours: ignored and kept.
  fs::create_directories(run + "/step-123");
  fs::create_directories(run + "/step-00000010x");
  fs::create_directories(run + "/step-000000011");  // not the canonical spelling of 11
  std::ofstream(run + "/step-00000012") << "a file, not a directory";

  EXPECT_EQ(mgr.list(), std::vector<std::string>{run + "/step-00000003"});
  EXPECT_EQ(mgr.latest(), run + "/step-00000003");

  mgr.save(make_model(5), make_optimizer(5), make_trainer(5));
  EXPECT_EQ(listing(run), (std::vector<std::string>{"step-000000011", "step-00000003", "step-00000004", "step-00000005",
                                                    "step-00000010x", "step-00000012", "step-123"}));
  expect_bitwise_equal(make_model(4), io::load_checkpoint(run + "/step-00000004").model, "restored aside copy");
}

TEST_F(Checkpoints, RemoveLeftoversCountsWhatItRemoved) {
  const std::string run = path("run");
  fs::create_directories(run + "/.step-00000001.tmp-1-1/sub");
  std::ofstream(run + "/.step-00000001.tmp-1-1/sub/f") << "x";
  std::ofstream(run + "/.step-00000002.tmp-1-2") << "a file";
  fs::create_directories(run + "/.hidden");
  CheckpointManager mgr(run);
  EXPECT_EQ(mgr.remove_leftovers(), 2);
  EXPECT_EQ(listing(run), std::vector<std::string>{".hidden"});
  EXPECT_EQ(mgr.remove_leftovers(), 0);
}

TEST_F(Checkpoints, SaveRejectsBadInputWithoutLeavingAnything) {
  CheckpointManager mgr(path("run"));
  mgr.save(make_model(1), make_optimizer(1), make_trainer(1));
  TrainerState bad = make_trainer(2);
  bad.step = -2;
  EXPECT_THROW(mgr.save(make_model(1), make_optimizer(1), bad), ValueError);
  io::TensorMap undefined_tensor = make_model(1);
  undefined_tensor["broken"] = Tensor();
  EXPECT_THROW(mgr.save(undefined_tensor, make_optimizer(1), make_trainer(2)), ValueError);
  EXPECT_EQ(listing(path("run")), std::vector<std::string>{"step-00000001"});
}

TEST_F(Checkpoints, RunDirectoryThatIsAFileIsAnIOError) {
  std::ofstream(path("file")) << "x";
  expect_io_error([&] { CheckpointManager(path("file")).save(make_model(1), make_optimizer(1), make_trainer(1)); },
                  {path("file"), "exists and is not a directory"});
}

TEST_F(Checkpoints, ChecksumsAreWrittenAndVerified) {
  const std::string run = path("run");
  const std::string p = CheckpointManager(run).save(make_model(1), make_optimizer(1), make_trainer(1));
  io::Metadata meta;
  io::load_safetensors(p + "/model.safetensors", &meta, {.mmap = false});
  EXPECT_EQ(meta.count("crc32c.fc1.weight"), 1u);
  io::load_safetensors(p + "/optimizer.safetensors", &meta, {.mmap = false});
  EXPECT_EQ(meta.count("crc32c.state.0.exp_avg"), 1u);

  // A flipped bit in the data area (which the format cannot notice) fails the load.
  const std::string file = p + "/optimizer.safetensors";
  std::string bytes = read_bytes(file);
  bytes[bytes.size() - 3] ^= 0x10;
  std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes;
  expect_io_error([&] { io::load_checkpoint(p); }, {file});

  const std::string q =
      CheckpointManager(path("plain"), {.checksums = false}).save(make_model(1), make_optimizer(1), make_trainer(1));
  io::load_safetensors(q + "/model.safetensors", &meta, {.mmap = false});
  EXPECT_TRUE(meta.empty());
}

// ------------------------------------------------------------------ load_checkpoint

TEST_F(Checkpoints, LoadCheckpointErrorsNameTheFile) {
  CheckpointManager mgr(path("run"));
  const std::string p = mgr.save(make_model(1), make_optimizer(1), make_trainer(8));

  fs::create_directories(path("copy"));
  fs::create_directories(path("copy2"));
  fs::copy(p, path("copy/step-00000009"), fs::copy_options::recursive);
  expect_io_error([&] { io::load_checkpoint(path("copy/step-00000009")); },
                  {path("copy/step-00000009/trainer.json"), "says step 8 but the directory is named for step 9"});

  fs::copy(p, path("copy/mine"), fs::copy_options::recursive);
  expect_io_error([&] { io::load_checkpoint(path("copy/mine")); }, {"is not a complete checkpoint", "found 'mine'"});

  expect_io_error([&] { io::load_checkpoint(path("copy/step-00000077")); },
                  {path("copy/step-00000077"), std::strerror(ENOENT)});

  fs::remove(p + "/optimizer.safetensors");
  expect_io_error([&] { io::load_checkpoint(p); }, {p + "/optimizer.safetensors", std::strerror(ENOENT)});

  fs::copy(path("copy/step-00000009"), path("copy2/step-00000008"), fs::copy_options::recursive);
  std::ofstream(path("copy2/step-00000008/trainer.json"), std::ios::trunc) << "{\"format\": \"ember-checkpoint\"";
  expect_io_error([&] { io::load_checkpoint(path("copy2/step-00000008")); },
                  {path("copy2/step-00000008/trainer.json"), "not valid JSON"});
}

// ------------------------------------------------------------------ resume_checkpoint

void truncate_to_half(const std::string& file) { fs::resize_file(file, fs::file_size(file) / 2); }

TEST_F(Checkpoints, ResumeAutoFallsBackFromADamagedNewest) {
  const std::string run = path("run");
  CheckpointManager mgr(run);
  mgr.save(make_model(1), make_optimizer(1), make_trainer(10));
  mgr.save(make_model(2), make_optimizer(2), make_trainer(20));
  truncate_to_half(run + "/step-00000020/model.safetensors");

  ::testing::internal::CaptureStderr();
  const auto c = io::resume_checkpoint("auto", run);
  const std::string err = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->path, run + "/step-00000010");
  EXPECT_EQ(c->trainer.step, 10);
  expect_bitwise_equal(make_model(1), c->model, "model");
  EXPECT_NE(err.find("warning"), std::string::npos) << err;
  EXPECT_NE(err.find(run + "/step-00000020/model.safetensors"), std::string::npos) << err;
  EXPECT_NE(err.find("trying an older one"), std::string::npos) << err;
}

TEST_F(Checkpoints, ResumeAutoWithNoCheckpointIsNothing) {
  EXPECT_FALSE(io::resume_checkpoint("auto", path("missing")).has_value());
  fs::create_directories(path("run/.step-00000001.tmp-1-1"));
  EXPECT_FALSE(io::resume_checkpoint("auto", path("run")).has_value());
}

TEST_F(Checkpoints, ResumeAutoWhenEveryCheckpointIsDamagedIsAnError) {
  const std::string run = path("run");
  CheckpointManager mgr(run);
  mgr.save(make_model(1), make_optimizer(1), make_trainer(1));
  mgr.save(make_model(1), make_optimizer(1), make_trainer(2));
  truncate_to_half(run + "/step-00000001/optimizer.safetensors");
  fs::remove(run + "/step-00000002/trainer.json");
  ::testing::internal::CaptureStderr();
  expect_io_error([&] { io::resume_checkpoint("auto", run); },
                  {"none of the 2 checkpoints under '" + run + "' loads", run + "/step-00000002/trainer.json"});
  ::testing::internal::GetCapturedStderr();
}

TEST_F(Checkpoints, ResumeExplicitPathOrRunDirectory) {
  const std::string run = path("run");
  CheckpointManager mgr(run);
  mgr.save(make_model(1), make_optimizer(1), make_trainer(1));
  mgr.save(make_model(2), make_optimizer(2), make_trainer(2));
  EXPECT_EQ(io::resume_checkpoint(run + "/step-00000001", "ignored")->trainer.step, 1);
  EXPECT_EQ(io::resume_checkpoint(run + "/step-00000001/", "ignored")->trainer.step, 1);
  EXPECT_EQ(io::resume_checkpoint(run, "ignored")->path, run + "/step-00000002");
}

TEST_F(Checkpoints, ResumeExplicitBadPathsAreErrors) {
  const std::string run = path("run");
  CheckpointManager mgr(run);
  mgr.save(make_model(1), make_optimizer(1), make_trainer(1));
  mgr.save(make_model(2), make_optimizer(2), make_trainer(2));

  expect_io_error([&] { io::resume_checkpoint(path("nope"), run); }, {path("nope"), std::strerror(ENOENT)});
  std::ofstream(path("file")) << "x";
  expect_io_error([&] { io::resume_checkpoint(path("file"), run); }, {path("file"), "is not a directory"});
  fs::create_directories(path("empty"));
  expect_io_error([&] { io::resume_checkpoint(path("empty"), run); },
                  {path("empty"), "neither a checkpoint", "nor a run directory"});
  expect_io_error([&] { io::resume_checkpoint("", run); }, {"expected \"auto\" or a checkpoint path"});
  // An explicit checkpoint must load: no fallback to another one.
  truncate_to_half(run + "/step-00000002/model.safetensors");
  expect_io_error([&] { io::resume_checkpoint(run + "/step-00000002", run); },
                  {run + "/step-00000002/model.safetensors"});
  expect_io_error([&] { io::resume_checkpoint(run, ""); }, {run + "/step-00000002/model.safetensors"});
}

}  // namespace
}  // namespace ember::test
