// Crash-safe training checkpoints.
//
// A checkpoint is a directory DIR/step-00000100/ holding
//   model.safetensors      the model's state dict
//   optimizer.safetensors  the optimizer's state dict (optim::Optimizer::state_dict)
//   trainer.json           everything else a run needs to continue exactly: TrainerState
// It is written under a temporary name in DIR, every file is fsynced, the directory is renamed
// into place and DIR is fsynced, so a crash at any moment leaves either the complete new
// checkpoint or none (the previous ones stay loadable). A directory whose name is exactly
// "step-" followed by the step's digits (zero padded to eight; more digits from step 1e8 on) is
// complete by construction; anything else in DIR that this module created (".step-*.tmp-*" and
// ".step-*.old-*") is a leftover of an interrupted write and is removed by the next save or by
// CheckpointManager::remove_leftovers(). One process writes a run directory at a time.
//
// The format and the guarantees are described in docs/checkpoints.md.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ember/core/generator.hpp"
#include "ember/core/tensor.hpp"
#include "ember/data/dataloader.hpp"

namespace ember::io {

/// Everything in trainer.json. Field names in the JSON are the member names.
struct EMBER_API TrainerState {
  /// Optimizer steps completed (the checkpoint's directory is named after it).
  int64_t step = 0;
  /// The epoch the run is in.
  int64_t epoch = 0;
  /// The training DataLoader's position (DataLoader::state()).
  data::LoaderState loader;
  /// Generator states by name; "default" is ember::default_generator().
  std::map<std::string, GeneratorState> generators;
  /// optim::LRScheduler::state_dict() (empty when there is no scheduler object).
  std::map<std::string, double> scheduler;
  /// The mixed-precision GradScaler's state (empty without one).
  std::map<std::string, double> grad_scaler;
  /// Integer counters: "skipped_steps", "consecutive_skips" (optim::StepGuard), and any the
  /// program adds.
  std::map<std::string, int64_t> counters;
  /// Floating-point values the program needs to continue exactly (e.g. running loss sums).
  /// Stored so that they read back bit for bit.
  std::map<std::string, double> values;
  /// The run's configuration as the program's own key → value strings (its command line).
  std::map<std::string, std::string> config;
  /// Ember's version that wrote the checkpoint; save fills it in.
  std::string ember_version;

  friend bool operator==(const TrainerState&, const TrainerState&) = default;
};

/// trainer.json text for `state` (deterministic: keys sorted, doubles round-trip exactly; NaN
/// and infinities as the strings "nan", "inf", "-inf"). Throws ValueError for a string that is
/// not UTF-8.
EMBER_API std::string trainer_state_to_json(const TrainerState& state);
/// Parses trainer.json text. Throws IOError naming `source` and the field on anything
/// malformed (not JSON, wrong types, missing step/epoch/loader, negative step).
EMBER_API TrainerState trainer_state_from_json(const std::string& text, const std::string& source = "trainer.json");

struct CheckpointOptions {
  /// Keep the newest `keep` complete checkpoints, removing older ones after a successful save
  /// (0: keep all).
  int keep = 0;
  /// Store a CRC-32C of every tensor's bytes in each safetensors file's __metadata__ and verify
  /// it on load.
  bool checksums = true;
};

/// A loaded checkpoint.
struct Checkpoint {
  std::string path;                         // the step-XXXXXXXX directory
  std::map<std::string, Tensor> model;      // model.safetensors
  std::map<std::string, Tensor> optimizer;  // optimizer.safetensors
  TrainerState trainer;                     // trainer.json
};

/// Writes and finds the checkpoints of one run directory.
class EMBER_API CheckpointManager {
 public:
  /// `dir` is created (with parents) on the first save if it does not exist.
  explicit CheckpointManager(std::string dir, CheckpointOptions options = {});

  /// Writes DIR/step-<trainer.step, 8 digits>/ crash-safely (see the file comment) and returns
  /// its path. A checkpoint of the same step that already exists is replaced atomically. After
  /// the new checkpoint is durable, leftovers are removed and only the newest `keep` are kept
  /// (pruning removes older checkpoints only: never the one just written nor newer ones, which
  /// a run resumed from an earlier step may find; failures there are warnings on stderr).
  /// On failure (IOError naming the file and the system's reason) nothing is left under the
  /// final name and every earlier checkpoint is intact. Throws ValueError for a negative step
  /// or tensors save_safetensors refuses.
  std::string save(const std::map<std::string, Tensor>& model, const std::map<std::string, Tensor>& optimizer,
                   TrainerState trainer);

  /// Complete checkpoints, oldest (lowest step) first.
  std::vector<std::string> list() const;
  /// The newest complete checkpoint, if any.
  std::optional<std::string> latest() const;
  /// Removes leftovers of interrupted writes; returns how many entries were removed.
  int remove_leftovers();

  const std::string& dir() const { return dir_; }
  const CheckpointOptions& options() const { return options_; }

 private:
  std::string dir_;
  CheckpointOptions options_;
};

/// Loads and validates the checkpoint directory `path` (all three files; checksums when
/// present). Throws IOError naming the file and what is wrong.
EMBER_API Checkpoint load_checkpoint(const std::string& path);

/// Resolves a --resume argument: "auto" → the newest complete checkpoint under `run_dir` that
/// loads and validates (older ones are tried when the newest is damaged, with a warning on
/// stderr), or nullopt when there is none (IOError when there are some and none loads);
/// anything else is a checkpoint directory path (or a run directory, meaning its newest
/// checkpoint) that must load.
EMBER_API std::optional<Checkpoint> resume_checkpoint(const std::string& spec, const std::string& run_dir);

}  // namespace ember::io
