// Disk faults through the file-writing seam (ember/io/fault_injection.hpp) for save_safetensors
// and CheckpointManager::save: ENOSPC, EIO, EROFS, short writes; a real RLIMIT_FSIZE limit in a
// forked child; and the EMBER_TEST_CRASH_AT crash points in real child processes.
//
// After every failure: an IOError naming the path and the system's reason, the previous file or
// checkpoint loads bit-identically, nothing under the new name, no temporary left behind.
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstdlib>
#include <ember/io/checkpoint.hpp>
#include <ember/io/fault_injection.hpp>
#include <memory>
#include <set>

#include "checkpoint_test_util.hpp"

extern char** environ;

namespace ember::test {
namespace {

using io::CheckpointManager;
using io::testing::Fault;
using io::testing::FaultHook;
using io::testing::FileOp;
using io::testing::ScopedFaultHook;

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// The base name of the file a write went to, without AtomicFileWriter's ".tmp.<pid>.<k>".
std::string file_of(const std::string& path) {
  std::string base = path.substr(path.find_last_of('/') + 1);
  const auto tmp = base.find(".tmp.");
  return tmp == std::string::npos ? base : base.substr(0, tmp);
}

struct Call {
  FileOp op;
  std::string path;
  size_t bytes;
};

/// A hook that records every call and performs it.
FaultHook recorder(std::shared_ptr<std::vector<Call>> calls) {
  return [calls](FileOp op, const std::string& path, size_t bytes) {
    calls->push_back({op, path, bytes});
    return Fault{};
  };
}

/// Fails the k-th (from 0) call of `op` with `err`.
FaultHook fail_nth(FileOp op, int k, int err) {
  auto seen = std::make_shared<int>(0);
  return [=](FileOp o, const std::string&, size_t) {
    if (o == op && (*seen)++ == k) return Fault{.error = err};
    return Fault{};
  };
}

/// Fails every call of `op` whose path ends with `suffix`.
FaultHook fail_path(FileOp op, const std::string& suffix, int err) {
  return [=](FileOp o, const std::string& path, size_t) {
    if (o == op && ends_with(path, suffix)) return Fault{.error = err};
    return Fault{};
  };
}

/// Every write transfers about a third of what it was asked for (at least one byte).
FaultHook short_writes(std::shared_ptr<int> writes) {
  return [=](FileOp o, const std::string&, size_t bytes) {
    if (o != FileOp::write) return Fault{};
    ++*writes;
    return Fault{.short_write = static_cast<long long>(std::max<size_t>(1, bytes / 3))};
  };
}

/// The first write is short (half), the next one fails with ENOSPC.
FaultHook enospc_after_short_write() {
  auto seen = std::make_shared<int>(0);
  return [=](FileOp o, const std::string&, size_t bytes) {
    if (o != FileOp::write) return Fault{};
    const int n = (*seen)++;
    if (n == 0) return Fault{.short_write = static_cast<long long>(bytes / 2)};
    if (n == 1) return Fault{.error = ENOSPC};
    return Fault{};
  };
}

// ------------------------------------------------------------------ save_safetensors

class SafetensorsFaults : public ScratchDir {
 protected:
  void SetUp() override {
    ScratchDir::SetUp();
    file_ = path("w.safetensors");
    io::save_safetensors(file_, make_model(1));
    old_bytes_ = read_bytes(file_);
  }
  /// Saves new content under `hook`; expects an IOError with `reason` and the path, and the old
  /// file untouched with nothing beside it.
  void expect_failure(FaultHook hook, int err, const std::string& trace) {
    SCOPED_TRACE(trace);
    {
      ScopedFaultHook h(std::move(hook));
      expect_io_error([&] { io::save_safetensors(file_, make_model(2)); }, {std::strerror(err), file_});
    }
    EXPECT_EQ(read_bytes(file_), old_bytes_);
    expect_bitwise_equal(make_model(1), io::load_safetensors(file_, nullptr, {.mmap = false}), "old file");
    EXPECT_EQ(listing(), std::vector<std::string>{"w.safetensors"});
  }
  std::string file_;
  std::string old_bytes_;
};

TEST_F(SafetensorsFaults, EnospcOnFirstMiddleAndLastWrite) {
  auto calls = std::make_shared<std::vector<Call>>();
  {
    ScopedFaultHook h(recorder(calls));
    io::save_safetensors(path("dry.safetensors"), make_model(2));
  }
  fs::remove(path("dry.safetensors"));
  int writes = 0;
  for (const Call& c : *calls) writes += c.op == FileOp::write;
  ASSERT_GE(writes, 4);  // length prefix, header, tensors
  for (int k : {0, writes / 2, writes - 1})
    expect_failure(fail_nth(FileOp::write, k, ENOSPC), ENOSPC,
                   "write " + std::to_string(k) + " of " + std::to_string(writes));
}

TEST_F(SafetensorsFaults, ErofsOnOpenEioOnCloseAndRename) {
  expect_failure(fail_nth(FileOp::open, 0, EROFS), EROFS, "open");
  expect_failure(fail_nth(FileOp::close, 0, EIO), EIO, "close");
  expect_failure(fail_nth(FileOp::rename, 0, EIO), EIO, "rename");
}

TEST_F(SafetensorsFaults, EnospcAfterAShortWriteAndAWriteThatMakesNoProgress) {
  expect_failure(enospc_after_short_write(), ENOSPC, "short, then ENOSPC");
  expect_failure([](FileOp o, const std::string&, size_t) { return Fault{.short_write = o == FileOp::write ? 0 : -1}; },
                 ENOSPC, "write returns 0");
}

TEST_F(SafetensorsFaults, ShortWritesSucceedWithTheRightContent) {
  auto writes = std::make_shared<int>(0);
  {
    ScopedFaultHook h(short_writes(writes));
    io::save_safetensors(file_, make_model(2));
  }
  EXPECT_GT(*writes, 10);
  EXPECT_EQ(read_bytes(file_),
            read_bytes((io::save_safetensors(path("ref.safetensors"), make_model(2)), path("ref.safetensors"))));
  expect_bitwise_equal(make_model(2), io::load_safetensors(file_, nullptr, {.mmap = false}), "short-written file");
}

TEST_F(SafetensorsFaults, AFailedSaveToANewPathLeavesNothing) {
  ScopedFaultHook h(fail_nth(FileOp::write, 1, ENOSPC));
  expect_io_error([&] { io::save_safetensors(path("new.safetensors"), make_model(2)); },
                  {std::strerror(ENOSPC), path("new.safetensors")});
  EXPECT_EQ(listing(), std::vector<std::string>{"w.safetensors"});
}

// ------------------------------------------------------------------ CheckpointManager::save

class CheckpointFaults : public ScratchDir {
 protected:
  void SetUp() override {
    ScratchDir::SetUp();
    run_ = path("run");
    prev_ = CheckpointManager(run_).save(make_model(1), make_optimizer(1), make_trainer(1));
    for (const char* f : {"model.safetensors", "optimizer.safetensors", "trainer.json"})
      prev_bytes_.push_back(read_bytes(prev_ + "/" + f));
  }

  void expect_previous_intact() {
    const io::Checkpoint c = io::load_checkpoint(prev_);
    expect_bitwise_equal(make_model(1), c.model, "previous model");
    expect_bitwise_equal(make_optimizer(1), c.optimizer, "previous optimizer");
    EXPECT_EQ(c.trainer.step, 1);
    int i = 0;
    for (const char* f : {"model.safetensors", "optimizer.safetensors", "trainer.json"})
      EXPECT_EQ(read_bytes(prev_ + "/" + f), prev_bytes_[i++]) << f;
  }

  /// Saves step `step` under `hook` and expects the failure contract.
  void expect_failure(FaultHook hook, int err, const std::string& trace, int64_t step = 2,
                      const std::string& also = "") {
    SCOPED_TRACE(trace);
    const std::string final_path = run_ + "/step-0000000" + std::to_string(step);
    {
      ScopedFaultHook h(std::move(hook));
      std::vector<std::string> needles = {std::strerror(err), final_path};
      if (!also.empty()) needles.push_back(also);
      expect_io_error([&] { CheckpointManager(run_).save(make_model(2), make_optimizer(2), make_trainer(step)); },
                      needles);
    }
    expect_previous_intact();
    if (step != 1) {
      EXPECT_FALSE(fs::exists(final_path));
    }
    EXPECT_EQ(listing(run_), std::vector<std::string>{"step-00000001"});
  }

  /// The writes of a save of step 2 (done in another directory), as (file, bytes).
  std::vector<Call> dry_run_writes() {
    auto calls = std::make_shared<std::vector<Call>>();
    {
      ScopedFaultHook h(recorder(calls));
      CheckpointManager(path("dry")).save(make_model(2), make_optimizer(2), make_trainer(2));
    }
    fs::remove_all(path("dry"));
    std::vector<Call> writes;
    for (const Call& c : *calls)
      if (c.op == FileOp::write) writes.push_back(c);
    return writes;
  }

  std::string run_;
  std::string prev_;
  std::vector<std::string> prev_bytes_;
};

TEST_F(CheckpointFaults, EnospcOnFirstMiddleAndLastWrite) {
  const std::vector<Call> writes = dry_run_writes();
  ASSERT_GE(writes.size(), 9u);
  const int n = static_cast<int>(writes.size());
  EXPECT_EQ(file_of(writes.front().path), "model.safetensors");
  EXPECT_EQ(file_of(writes.back().path), "trainer.json");
  for (int k : {0, n / 2, n - 1})
    expect_failure(fail_nth(FileOp::write, k, ENOSPC), ENOSPC,
                   "write " + std::to_string(k) + " of " + std::to_string(n), 2, file_of(writes[k].path));
}

TEST_F(CheckpointFaults, EioOnFsyncOfEachFileAndDirectory) {
  for (const char* f : {"/model.safetensors", "/optimizer.safetensors", "/trainer.json"})
    expect_failure(fail_path(FileOp::fsync, f, EIO), EIO, f, 2, f + 1);
  // The temporary directory (before the rename).
  expect_failure(
      [](FileOp o, const std::string& p, size_t) {
        return Fault{.error = o == FileOp::fsync_dir && p.find(".tmp-") != std::string::npos ? EIO : 0};
      },
      EIO, "fsync of the temporary directory");
  // The run directory after the rename (the commit point): the new checkpoint is withdrawn.
  expect_failure(fail_path(FileOp::fsync_dir, "/run", EIO), EIO, "fsync of the run directory", 2, "withdrawn");
}

TEST_F(CheckpointFaults, ErofsOnOpenAndMkdir) {
  expect_failure(fail_nth(FileOp::open, 0, EROFS), EROFS, "open");
  expect_failure(fail_nth(FileOp::mkdir, 0, EROFS), EROFS, "mkdir of the temporary directory");
  // A run directory that does not exist yet on a read-only file system.
  ScopedFaultHook h(fail_nth(FileOp::mkdir, 0, EROFS));
  expect_io_error([&] { CheckpointManager(path("new/run")).save(make_model(2), make_optimizer(2), make_trainer(2)); },
                  {std::strerror(EROFS), path("new")});
  EXPECT_FALSE(fs::exists(path("new")));
}

TEST_F(CheckpointFaults, EioOnRenameAndOnClose) {
  expect_failure(fail_path(FileOp::rename, "/step-00000002", EIO), EIO, "rename into place");
  expect_failure(fail_path(FileOp::rename, "/model.safetensors", EIO), EIO, "rename inside the temporary", 2,
                 "model.safetensors");
  expect_failure(fail_nth(FileOp::close, 2, EIO), EIO, "third close");
}

TEST_F(CheckpointFaults, ShortWritesSucceedWithTheRightContent) {
  auto writes = std::make_shared<int>(0);
  std::string p;
  {
    ScopedFaultHook h(short_writes(writes));
    p = CheckpointManager(run_).save(make_model(2), make_optimizer(2), make_trainer(2));
  }
  EXPECT_GT(*writes, static_cast<int>(dry_run_writes().size()));
  const io::Checkpoint c = io::load_checkpoint(p);
  expect_bitwise_equal(make_model(2), c.model, "model");
  expect_bitwise_equal(make_optimizer(2), c.optimizer, "optimizer");
  EXPECT_EQ(c.trainer.step, 2);
  expect_previous_intact();
}

TEST_F(CheckpointFaults, EnospcAfterAShortWriteAndAWriteThatMakesNoProgress) {
  expect_failure(enospc_after_short_write(), ENOSPC, "short, then ENOSPC");
  expect_failure([](FileOp o, const std::string&, size_t) { return Fault{.short_write = o == FileOp::write ? 0 : -1}; },
                 ENOSPC, "write returns 0");
}

TEST_F(CheckpointFaults, FailedReplacementOfTheSameStepKeepsTheOldOne) {
  // Step 1 exists: saving step 1 again exchanges the directories atomically.
  expect_failure(fail_nth(FileOp::write, 3, ENOSPC), ENOSPC, "write", 1);
  expect_failure(fail_path(FileOp::rename, "/step-00000001", EIO), EIO, "exchange", 1);
  // No RENAME_EXCHANGE (EINVAL), then the second of the two fallback renames (new copy into
  // place) fails: the old copy is moved back (the third rename to the final name).
  auto seen = std::make_shared<int>(0);
  expect_failure(
      [=](FileOp o, const std::string& p, size_t) {
        if (o != FileOp::rename || !ends_with(p, "/step-00000001")) return Fault{};
        const int n = (*seen)++;
        return Fault{.error = n == 0 ? EINVAL : n == 1 ? EIO : 0};
      },
      EIO, "fallback", 1);
  expect_failure(fail_path(FileOp::fsync_dir, "/run", EIO), EIO, "fsync of the run directory after the exchange", 1);
}

TEST_F(CheckpointFaults, ReplacementWithoutRenameExchangeFallsBackToTwoRenames) {
  auto seen = std::make_shared<int>(0);
  std::string p;
  {
    ScopedFaultHook h([=](FileOp o, const std::string& path, size_t) {
      const bool exchange = o == FileOp::rename && ends_with(path, "/step-00000001") && (*seen)++ == 0;
      return Fault{.error = exchange ? EINVAL : 0};
    });
    p = CheckpointManager(run_).save(make_model(3), make_optimizer(3), make_trainer(1));
  }
  EXPECT_EQ(*seen, 2);  // the refused exchange, then the rename of the new copy into place
  expect_bitwise_equal(make_model(3), io::load_checkpoint(p).model, "replaced model");
  EXPECT_EQ(listing(run_), std::vector<std::string>{"step-00000001"});
}

TEST_F(CheckpointFaults, EveryWriteSideCallGoesThroughTheSeamInTheDocumentedOrder) {
  auto calls = std::make_shared<std::vector<Call>>();
  {
    ScopedFaultHook h(recorder(calls));
    CheckpointManager(run_, {.keep = 1}).save(make_model(2), make_optimizer(2), make_trainer(2));
  }
  auto first = [&](auto pred) {
    for (size_t i = 0; i < calls->size(); ++i)
      if (pred((*calls)[i])) return static_cast<long>(i);
    return -1L;
  };
  auto last = [&](auto pred) {
    for (size_t i = calls->size(); i-- > 0;)
      if (pred((*calls)[i])) return static_cast<long>(i);
    return -1L;
  };
  const auto is = [](FileOp op) { return [op](const Call& c) { return c.op == op; }; };
  const long mkdir_tmp = first(is(FileOp::mkdir));
  const long last_write = last(is(FileOp::write));
  const long first_fsync = first(is(FileOp::fsync));
  const long fsync_tmp =
      first([](const Call& c) { return c.op == FileOp::fsync_dir && c.path.find(".tmp-") != std::string::npos; });
  const long rename_final =
      first([&](const Call& c) { return c.op == FileOp::rename && ends_with(c.path, "/step-00000002"); });
  const long fsync_run = first([&](const Call& c) { return c.op == FileOp::fsync_dir && c.path == run_; });
  // Pruning renames the old checkpoint to a temporary name before deleting its files, so a crash
  // part-way never leaves a partly deleted directory under a complete name.
  const long prune_rename = first([&](const Call& c) {
    return c.op == FileOp::rename && c.path.find("/.step-00000001.tmp-") != std::string::npos;
  });
  const long prune =
      first([&](const Call& c) { return c.op == FileOp::remove && c.path.find("step-00000001") != std::string::npos; });
  for (long i : {mkdir_tmp, last_write, first_fsync, fsync_tmp, rename_final, fsync_run, prune_rename, prune})
    ASSERT_GE(i, 0);
  EXPECT_LT(prune_rename, prune);
  EXPECT_LT(mkdir_tmp, last_write);
  EXPECT_LT(last_write, first_fsync);  // every byte written before the first fsync
  EXPECT_LT(first_fsync, fsync_tmp);
  EXPECT_LT(fsync_tmp, rename_final);
  EXPECT_LT(rename_final, fsync_run);
  EXPECT_LT(fsync_run, prune);  // the old checkpoint goes only after the new one is durable
  int fsyncs = 0, opens = 0, closes = 0;
  for (const Call& c : *calls) {
    fsyncs += c.op == FileOp::fsync;
    opens += c.op == FileOp::open;
    closes += c.op == FileOp::close;
  }
  EXPECT_EQ(fsyncs, 3);
  EXPECT_EQ(opens, closes);
  std::set<FileOp> kinds;
  for (const Call& c : *calls) kinds.insert(c.op);
  EXPECT_EQ(kinds.size(), 8u);  // open, write, fsync, close, rename, mkdir, fsync_dir, remove
}

// ------------------------------------------------------------------ a real file-size limit

TEST_F(CheckpointFaults, RealFileSizeLimitFailsWithEfbigAndKeepsThePrevious) {
  // Built before the fork: the child only saves (no parallel regions after fork).
  const io::TensorMap big = make_model(3, 4096);  // fc1.weight alone is 192 KiB
  const io::TensorMap opt = make_optimizer(3);
  const io::TrainerState trainer = make_trainer(2);
  const std::string final_path = run_ + "/step-00000002";
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0) << std::strerror(errno);
  if (pid == 0) {
    set_num_threads(1);
    ::signal(SIGXFSZ, SIG_IGN);  // write(2) then fails with EFBIG instead of killing the process
    const rlimit lim{64 * 1024, 64 * 1024};
    if (::setrlimit(RLIMIT_FSIZE, &lim) != 0) ::_exit(10);
    try {
      CheckpointManager(run_).save(big, opt, trainer);
      ::_exit(11);  // the save should not have succeeded
    } catch (const IOError& e) {
      const std::string msg = e.what();
      const bool named = msg.find(std::strerror(EFBIG)) != std::string::npos &&
                         msg.find(final_path) != std::string::npos &&
                         msg.find("model.safetensors") != std::string::npos;
      ::_exit(named ? 0 : 12);
    } catch (...) {
      ::_exit(13);
    }
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "child status " << status;
  EXPECT_EQ(WEXITSTATUS(status), 0) << "10: setrlimit failed, 11: the save succeeded, 12: the IOError did not "
                                       "name EFBIG, the path and the file, 13: another exception";
  expect_previous_intact();
  EXPECT_FALSE(fs::exists(final_path));
  EXPECT_EQ(listing(run_), std::vector<std::string>{"step-00000001"});
}

// ------------------------------------------------------------------ crash points (real processes)

// A child process (this binary re-executed with EMBER_CKPT_CRASH_CHILD=<run dir> and
// EMBER_CKPT_CRASH_STEPS=<step>,<step>...) saves checkpoints of the given steps, model seed =
// position + 1, and exits with kNotKilled when EMBER_TEST_CRASH_AT did not kill it, or with
// kBadSpec/kOther when a save threw. It runs from a static initializer, before GoogleTest starts.
constexpr int kNotKilled = 3, kBadSpec = 4, kOther = 5;

const bool g_crash_child = [] {
  const char* dir = std::getenv("EMBER_CKPT_CRASH_CHILD");
  if (dir == nullptr) return false;
  std::vector<int64_t> steps;
  for (std::string s = std::getenv("EMBER_CKPT_CRASH_STEPS"); !s.empty();) {
    const auto comma = s.find(',');
    steps.push_back(std::stoll(s.substr(0, comma)));
    s = comma == std::string::npos ? "" : s.substr(comma + 1);
  }
  try {
    CheckpointManager mgr(dir);
    uint32_t seed = 1;
    for (int64_t step : steps) mgr.save(make_model(seed), make_optimizer(seed), make_trainer(step)), ++seed;
  } catch (const ValueError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    ::_exit(std::string(e.what()).find("EMBER_TEST_CRASH_AT: expected '<point>:<n>'") != std::string::npos ? kBadSpec
                                                                                                           : kOther);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    ::_exit(kOther);
  }
  ::_exit(kNotKilled);
}();

/// Runs the child; returns its wait status.
int run_crash_child(const std::string& dir, const std::string& steps, const std::string& crash_at) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e)
    if (std::strncmp(*e, "EMBER_TEST_CRASH_AT=", 20) != 0) env.emplace_back(*e);
  env.push_back("EMBER_CKPT_CRASH_CHILD=" + dir);
  env.push_back("EMBER_CKPT_CRASH_STEPS=" + steps);
  env.push_back("EMBER_TEST_CRASH_AT=" + crash_at);
  env.push_back("OMP_NUM_THREADS=1");
  std::vector<char*> envp;
  for (std::string& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string exe = "/proc/self/exe";
  char* argv[] = {exe.data(), nullptr};
  pid_t pid = 0;
  EXPECT_EQ(::posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, argv, envp.data()), 0);
  int status = 0;
  EXPECT_EQ(::waitpid(pid, &status, 0), pid);
  return status;
}

bool killed(int status) { return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL; }

bool has_temporary(const std::string& dir) {
  for (const std::string& name : list_dir(dir))
    if (name.rfind(".step-", 0) == 0) return true;
  return false;
}

using CrashPoints = ScratchDir;

TEST_F(CrashPoints, KillBeforeTheRenameKeepsThePreviousCheckpoint) {
  for (const char* point : {"after_write", "after_fsync"}) {
    SCOPED_TRACE(point);
    const std::string run = path(std::string("run_") + point);
    const int status = run_crash_child(run, "1,2", std::string(point) + ":2");
    ASSERT_TRUE(killed(status)) << "status " << status;
    CheckpointManager mgr(run);
    EXPECT_EQ(mgr.list(), std::vector<std::string>{run + "/step-00000001"});
    EXPECT_TRUE(has_temporary(run));
    const auto c = io::resume_checkpoint("auto", run);
    ASSERT_TRUE(c.has_value());
    expect_bitwise_equal(make_model(1), c->model, "model");
    // The next save removes the leftover.
    mgr.save(make_model(3), make_optimizer(3), make_trainer(3));
    EXPECT_EQ(listing(run), (std::vector<std::string>{"step-00000001", "step-00000003"}));
  }
}

TEST_F(CrashPoints, KillAfterTheRenameHasTheNewCheckpoint) {
  const std::string run = path("run");
  ASSERT_TRUE(killed(run_crash_child(run, "1,2", "after_rename:2")));
  const auto c = io::resume_checkpoint("auto", run);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->trainer.step, 2);
  expect_bitwise_equal(make_model(2), c->model, "model");
  expect_bitwise_equal(make_optimizer(2), c->optimizer, "optimizer");
}

TEST_F(CrashPoints, KillDuringAReplacementLeavesOneCompleteCopy) {
  // Step 5 saved twice (seed 1, then seed 2); killed before or after the exchange.
  const std::string before = path("before"), after = path("after");
  ASSERT_TRUE(killed(run_crash_child(before, "5,5", "after_fsync:2")));
  ASSERT_TRUE(killed(run_crash_child(after, "5,5", "after_rename:2")));
  expect_bitwise_equal(make_model(1), io::resume_checkpoint("auto", before)->model, "killed before the exchange");
  expect_bitwise_equal(make_model(2), io::resume_checkpoint("auto", after)->model, "killed after the exchange");
  EXPECT_EQ(CheckpointManager(after).remove_leftovers(), 1);  // the replaced copy
  EXPECT_EQ(listing(after), std::vector<std::string>{"step-00000005"});
}

TEST_F(CrashPoints, KillInTheFirstSaveLeavesNoCheckpoint) {
  const std::string run = path("run");
  ASSERT_TRUE(killed(run_crash_child(run, "1", "after_write:1")));
  EXPECT_FALSE(io::resume_checkpoint("auto", run).has_value());
}

TEST_F(CrashPoints, CountsSavesAndRejectsMalformedSpecs) {
  const std::string run = path("run");
  int status = run_crash_child(run, "1,2", "after_write:3");
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), kNotKilled);
  EXPECT_EQ(CheckpointManager(run).list().size(), 2u);
  for (const char* spec : {"after_lunch:1", "after_write", "after_write:0", "after_write:x", ":1"}) {
    SCOPED_TRACE(spec);
    status = run_crash_child(path("bad"), "1", spec);
    ASSERT_TRUE(WIFEXITED(status)) << status;
    EXPECT_EQ(WEXITSTATUS(status), kBadSpec);
  }
}

}  // namespace
}  // namespace ember::test
