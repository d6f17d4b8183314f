// Crash-safe checkpoints (ember/io/checkpoint.hpp; the guarantees are in docs/checkpoints.md).
//
// Write sequence of CheckpointManager::save, for DIR/step-N:
//   mkdir DIR (and parents, each fsynced into its parent), remove leftovers,
//   mkdir DIR/.step-N.tmp-<pid>-<k>, write model.safetensors, optimizer.safetensors,
//   trainer.json into it                                        [crash_point after_write]
//   fsync each file, fsync the temporary directory               [crash_point after_fsync]
//   rename it to DIR/step-N (RENAME_EXCHANGE when step-N exists) [crash_point after_rename]
//   fsync DIR (commit point), remove the replaced copy and leftovers, prune to `keep`.
#include "ember/io/checkpoint.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <utility>

#include "ember/core/error.hpp"
#include "ember/io/fault_injection.hpp"
#include "ember/io/safetensors.hpp"
#include "ember/version.hpp"
#include "io/file_util.hpp"

namespace ember::io {
namespace {

constexpr const char* kSaveOp = "CheckpointManager::save";
constexpr const char* kModelFile = "model.safetensors";
constexpr const char* kOptimizerFile = "optimizer.safetensors";
constexpr const char* kTrainerFile = "trainer.json";

std::atomic<uint64_t> g_name_counter{0};

std::string step_name(int64_t step) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "step-%08lld", static_cast<long long>(step));
  return buf;
}

/// The step of a complete checkpoint's directory name: "step-" and its canonical digits
/// (eight or more, zero padded to eight), or nothing.
std::optional<int64_t> parse_step_name(const std::string& name) {
  if (name.size() < 13 || name.size() > 24 || name.compare(0, 5, "step-") != 0) return std::nullopt;
  uint64_t v = 0;
  for (size_t i = 5; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(name[i] - '0');  // at most 19 digits: no overflow
  }
  if (v > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
  const auto step = static_cast<int64_t>(v);
  if (step_name(step) != name) return std::nullopt;
  return step;
}

/// Names this module creates and removes: ".step-<digits>.tmp-<pid>-<k>" (a save in progress
/// or interrupted; after an exchange, the replaced checkpoint) and ".step-<digits>.old-<pid>-<k>"
/// (a replaced checkpoint moved aside when the file system cannot exchange).
bool is_temp_name(const std::string& name) {
  return name.compare(0, 6, ".step-") == 0 && name.find(".tmp-", 6) != std::string::npos;
}
bool is_aside_name(const std::string& name) {
  return name.compare(0, 6, ".step-") == 0 && name.find(".old-", 6) != std::string::npos;
}

std::string unique_suffix() { return std::to_string(::getpid()) + "-" + std::to_string(g_name_counter.fetch_add(1)); }

bool is_directory(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool exists_no_follow(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

std::string parent_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string base_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

/// `path` without trailing slashes ("/" stays "/").
std::string strip_slashes(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  return path;
}

/// Names in a directory (without "." and ".."); nothing when it does not exist.
std::vector<std::string> entries_of(const char* op, const std::string& dir) {
  std::vector<std::string> names;
  if (int err = detail::list_directory(dir, &names); err != 0 && err != ENOENT)
    detail::throw_errno(op, "list the directory", dir, err);
  return names;
}

/// Creates `dir` and its missing parents; each new directory is fsynced into its parent so
/// that it survives a power loss.
void make_directories(const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0) {
    EMBER_CHECK(S_ISDIR(st.st_mode), IOError, kSaveOp, ": cannot use '", dir,
                "' as the checkpoint directory: it exists and is not a directory");
    return;
  }
  const std::string parent = parent_of(dir);
  if (parent != dir) make_directories(parent);
  if (int err = detail::sys_mkdir(dir, 0777); err != 0) {
    if (err == EEXIST && is_directory(dir)) return;  // created by someone else meanwhile
    detail::throw_errno(kSaveOp, "create the directory", dir, err);
  }
  if (int err = detail::sys_fsync_dir(parent); err != 0)
    detail::throw_errno(kSaveOp, "fsync the directory", parent, err);
}

void write_file(const std::string& path, const std::string& bytes) {
  int fd = -1;
  if (int err = detail::sys_open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666, &fd); err != 0)
    detail::throw_errno(kSaveOp, "create", path, err);
  detail::FileDescriptor f(fd);
  detail::write_all(kSaveOp, f.get(), path, path, bytes.data(), bytes.size());
  if (int err = f.close_checked(path); err != 0) detail::throw_errno(kSaveOp, "write", path, err);
}

/// fsync through a fresh descriptor: Linux reports a writeback error to every descriptor
/// opened before the error was seen, and the data of the inode are flushed whichever
/// descriptor asks.
void fsync_file(const std::string& path) {
  int fd = -1;
  if (int err = detail::sys_open(path, O_RDONLY | O_CLOEXEC, 0, &fd); err != 0)
    detail::throw_errno(kSaveOp, "open for fsync", path, err);
  detail::FileDescriptor f(fd);
  if (int err = detail::sys_fsync(f.get(), path); err != 0) detail::throw_errno(kSaveOp, "fsync", path, err);
  if (int err = f.close_checked(path); err != 0) detail::throw_errno(kSaveOp, "close", path, err);
}

/// Deletes a checkpoint-shaped directory of `dir` so that a crash part-way can never leave a
/// partly deleted directory under a complete (or restorable) name: first renamed to a temporary
/// name, which is garbage by construction, then removed. Returns 0 or the first errno.
int discard(const std::string& dir, const std::string& path) {
  const std::string name = base_of(path);
  const std::string digits = name.compare(0, 1, ".") == 0 ? name.substr(1, name.find('.', 1) - 1) : name;
  const std::string doomed = dir + "/." + digits + ".tmp-" + unique_suffix();
  if (detail::sys_rename(path, doomed) != 0) return detail::remove_tree(path);
  return detail::remove_tree(doomed);
}

void warn(const std::string& what) { std::fprintf(stderr, "ember: warning: %s\n", what.c_str()); }

}  // namespace

// ------------------------------------------------------------------ CheckpointManager
CheckpointManager::CheckpointManager(std::string dir, CheckpointOptions options)
    : dir_(strip_slashes(std::move(dir))), options_(options) {
  EMBER_CHECK(!dir_.empty(), ValueError, "CheckpointManager: expected a directory path, found an empty string");
  EMBER_CHECK(options_.keep >= 0, ValueError, "CheckpointManager: expected keep >= 0 (0 keeps all), found ",
              options_.keep);
}

std::vector<std::string> CheckpointManager::list() const {
  std::vector<std::pair<int64_t, std::string>> found;
  for (const std::string& name : entries_of("CheckpointManager::list", dir_))
    if (const auto step = parse_step_name(name); step && is_directory(dir_ + "/" + name))
      found.emplace_back(*step, dir_ + "/" + name);
  std::sort(found.begin(), found.end());
  std::vector<std::string> out;
  out.reserve(found.size());
  for (auto& f : found) out.push_back(std::move(f.second));
  return out;
}

std::optional<std::string> CheckpointManager::latest() const {
  auto all = list();
  if (all.empty()) return std::nullopt;
  return std::move(all.back());
}

int CheckpointManager::remove_leftovers() {
  int removed = 0;
  int first_err = 0;
  std::string first_path;
  for (const std::string& name : entries_of("CheckpointManager::remove_leftovers", dir_)) {
    const std::string path = dir_ + "/" + name;
    int err = 0;
    if (is_aside_name(name)) {
      // A complete checkpoint moved aside for a replacement that did not finish: when its
      // step has no checkpoint, put it back instead of deleting it.
      const std::string digits = name.substr(1, name.find(".old-") - 1);  // "step-<digits>"
      const std::string final_path = dir_ + "/" + digits;
      if (parse_step_name(digits) && !exists_no_follow(final_path))
        err = detail::sys_rename(path, final_path);
      else
        err = discard(dir_, path);
    } else if (is_temp_name(name)) {
      err = detail::remove_tree(path);
    } else {
      continue;
    }
    if (err == 0) {
      ++removed;
    } else if (first_err == 0) {
      first_err = err;
      first_path = path;
    }
  }
  if (first_err != 0) detail::throw_errno("CheckpointManager::remove_leftovers", "remove", first_path, first_err);
  return removed;
}

std::string CheckpointManager::save(const std::map<std::string, Tensor>& model,
                                    const std::map<std::string, Tensor>& optimizer, TrainerState trainer) {
  detail::note_checkpoint_save();
  EMBER_CHECK(trainer.step >= 0, ValueError, kSaveOp, ": expected a step >= 0, found ", trainer.step);
  trainer.ember_version = kVersion;
  const std::string json = trainer_state_to_json(trainer);
  const std::string name = step_name(trainer.step);
  const std::string final_path = dir_ + "/" + name;
  const auto fail = [&](const std::string& why) -> IOError {
    return IOError(std::string(kSaveOp) + ": cannot save checkpoint '" + final_path + "': " + why);
  };

  try {
    make_directories(dir_);
  } catch (const IOError& e) {
    throw fail(e.what());
  }
  // Leftovers of a killed save hold a full checkpoint's bytes: free them before writing.
  try {
    remove_leftovers();
  } catch (const Error& e) {
    warn(std::string(kSaveOp) + ": " + e.what());
  }

  // ---- write everything under a temporary name
  std::string tmp;
  for (int attempt = 0;; ++attempt) {
    tmp = dir_ + "/." + name + ".tmp-" + unique_suffix();
    const int err = detail::sys_mkdir(tmp, 0777);
    if (err == 0) break;
    if (err == EEXIST && attempt < 100) continue;
    throw fail("cannot create the temporary directory '" + tmp + "': " + detail::errno_text(err));
  }
  try {
    const SaveOptions file_options{.checksums = options_.checksums};
    save_safetensors(tmp + "/" + kModelFile, model, {}, file_options);
    save_safetensors(tmp + "/" + kOptimizerFile, optimizer, {}, file_options);
    write_file(tmp + "/" + kTrainerFile, json);
    testing::crash_point("after_write");
    for (const char* file : {kModelFile, kOptimizerFile, kTrainerFile}) fsync_file(tmp + "/" + file);
    if (int err = detail::sys_fsync_dir(tmp); err != 0) detail::throw_errno(kSaveOp, "fsync the directory", tmp, err);
    testing::crash_point("after_fsync");
  } catch (const IOError& e) {
    (void)detail::remove_tree(tmp);
    throw fail(e.what());
  } catch (...) {  // ValueError for bad tensors or names, OutOfMemory: not an I/O failure
    (void)detail::remove_tree(tmp);
    throw;
  }

  // ---- move it into place
  enum class How { fresh, exchanged, aside } how = How::fresh;
  std::string aside;
  const auto give_up = [&](const std::string& why) {
    (void)detail::remove_tree(tmp);
    return fail(why);
  };
  if (!exists_no_follow(final_path)) {
    if (int err = detail::sys_rename(tmp, final_path); err != 0)
      throw give_up("cannot rename '" + tmp + "' to '" + final_path + "': " + detail::errno_text(err));
  } else {
    // Replace an existing checkpoint of this step with no moment where none exists.
    int err = detail::sys_exchange(tmp, final_path);
    if (err == 0) {
      how = How::exchanged;  // `tmp` now holds the replaced checkpoint
    } else if (err == EINVAL || err == ENOSYS || err == ENOTSUP) {
      // No RENAME_EXCHANGE here: move the old one aside, then the new one in. Between the two
      // renames step-N is absent; remove_leftovers() puts the aside copy back after a crash.
      aside = dir_ + "/." + name + ".old-" + unique_suffix();
      if (err = detail::sys_rename(final_path, aside); err != 0)
        throw give_up("cannot move the existing '" + final_path + "' aside to '" + aside +
                      "': " + detail::errno_text(err));
      if (err = detail::sys_rename(tmp, final_path); err != 0) {
        (void)detail::sys_rename(aside, final_path);
        throw give_up("cannot rename '" + tmp + "' to '" + final_path + "': " + detail::errno_text(err));
      }
      how = How::aside;
    } else {
      throw give_up("cannot exchange '" + tmp + "' with the existing '" + final_path + "': " + detail::errno_text(err));
    }
  }
  testing::crash_point("after_rename");

  // ---- commit: the rename is durable once DIR is
  if (int err = detail::sys_fsync_dir(dir_); err != 0) {
    // Withdraw the new checkpoint so that the caller's view (failure) matches the directory.
    if (how == How::exchanged) {
      (void)detail::sys_exchange(tmp, final_path);
    } else {
      if (detail::sys_rename(final_path, tmp) != 0) (void)detail::remove_tree(final_path);
      if (how == How::aside) (void)detail::sys_rename(aside, final_path);
    }
    (void)detail::remove_tree(tmp);
    throw fail("cannot fsync the directory '" + dir_ + "': " + detail::errno_text(err) +
               " (the new checkpoint was withdrawn)");
  }

  // ---- after the commit point nothing may fail the save: clean up with warnings only
  if (how == How::exchanged && detail::remove_tree(tmp) != 0)
    warn(std::string(kSaveOp) + ": cannot remove the replaced checkpoint '" + tmp + "'");
  if (how == How::aside && discard(dir_, aside) != 0)
    warn(std::string(kSaveOp) + ": cannot remove the replaced checkpoint '" + aside + "'");
  try {
    remove_leftovers();
    if (options_.keep > 0) {
      // Oldest first, and only checkpoints older than the one just written: newer ones (left
      // by a run that was resumed from an earlier step) are not this save's to delete.
      std::vector<std::string> all = list();
      size_t excess = all.size() > static_cast<size_t>(options_.keep) ? all.size() - options_.keep : 0;
      for (size_t i = 0; i < all.size() && excess > 0 && all[i] != final_path; ++i) {
        if (int err = discard(dir_, all[i]); err != 0)
          warn(std::string(kSaveOp) + ": cannot remove the old checkpoint '" + all[i] +
               "': " + detail::errno_text(err));
        --excess;
      }
    }
  } catch (const Error& e) {
    warn(std::string(kSaveOp) + ": " + e.what());
  }
  return final_path;
}

// ------------------------------------------------------------------ loading
Checkpoint load_checkpoint(const std::string& path) {
  constexpr const char* kOp = "load_checkpoint";
  const std::string dir = strip_slashes(path);
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) detail::throw_errno(kOp, "open the checkpoint", dir, errno);
  EMBER_CHECK(S_ISDIR(st.st_mode), IOError, kOp, ": '", dir,
              "' is not a checkpoint: expected a directory step-<8 digits>");
  const std::string name = base_of(dir);
  const auto step = parse_step_name(name);
  EMBER_CHECK(step.has_value(), IOError, kOp, ": '", dir,
              "' is not a complete checkpoint: expected a directory named step-<8 or more digits>, found '", name, "'");

  Checkpoint c;
  c.path = dir;
  // mmap = false: the tensors own their memory, so the files may be deleted (pruned) later.
  c.model = load_safetensors(dir + "/" + kModelFile, nullptr, {.mmap = false});
  c.optimizer = load_safetensors(dir + "/" + kOptimizerFile, nullptr, {.mmap = false});

  const std::string json_path = dir + "/" + kTrainerFile;
  uint64_t size = 0;
  detail::FileDescriptor f = detail::open_regular_file(kOp, json_path, &size);
  EMBER_CHECK(size <= (uint64_t{64} << 20), IOError, kOp, ": '", json_path, "' is ", size,
              " bytes; a trainer.json is at most 64 MiB");
  std::string text(static_cast<size_t>(size), '\0');
  detail::read_exact_at(kOp, json_path, f.get(), text.data(), text.size(), 0);
  c.trainer = trainer_state_from_json(text, json_path);
  EMBER_CHECK(c.trainer.step == *step, IOError, kOp, ": '", json_path, "' says step ", c.trainer.step,
              " but the directory is named for step ", *step);
  return c;
}

std::optional<Checkpoint> resume_checkpoint(const std::string& spec, const std::string& run_dir) {
  constexpr const char* kOp = "resume_checkpoint";
  if (spec == "auto") {
    EMBER_CHECK(!run_dir.empty(), ValueError, kOp, ": --resume auto needs a run directory, found an empty path");
    const std::vector<std::string> all = CheckpointManager(run_dir).list();
    if (all.empty()) return std::nullopt;
    std::string newest_error;
    for (auto it = all.rbegin(); it != all.rend(); ++it) {
      try {
        return load_checkpoint(*it);
      } catch (const IOError& e) {
        if (newest_error.empty()) newest_error = e.what();
        warn(std::string(kOp) + ": skipping the damaged checkpoint '" + *it + "': " + e.what() +
             (std::next(it) != all.rend() ? "; trying an older one" : ""));
      }
    }
    EMBER_THROW(IOError, kOp, ": none of the ", all.size(), " checkpoints under '", run_dir,
                "' loads (the newest failed with: ", newest_error,
                "); remove or repair them, or start without --resume");
  }
  EMBER_CHECK(!spec.empty(), IOError, kOp, ": expected \"auto\" or a checkpoint path, found an empty string");
  const std::string path = strip_slashes(spec);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) detail::throw_errno(kOp, "open the checkpoint", path, errno);
  EMBER_CHECK(S_ISDIR(st.st_mode), IOError, kOp, ": '", path,
              "' is not a directory: expected a checkpoint directory (step-<8 digits>) or a run directory");
  if (parse_step_name(base_of(path))) return load_checkpoint(path);
  const auto newest = CheckpointManager(path).latest();
  EMBER_CHECK(newest.has_value(), IOError, kOp, ": '", path,
              "' is neither a checkpoint (a directory named step-<8 digits>) nor a run directory holding one");
  return load_checkpoint(*newest);
}

}  // namespace ember::io
