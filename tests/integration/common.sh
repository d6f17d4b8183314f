# Shared by the integration tests (bash): arguments, the skip without data, the options of the
# short reference run, and comparisons. Each test script is run by ctest as
#   bash SCRIPT.sh FASHION_MNIST_BINARY INSPECT_BINARY DATA_DIR WORK_DIR
# and exits 0 (pass), 1 (fail) or 77 (skip: no Fashion-MNIST files).
set -u
if [ $# -ne 4 ]; then
  echo "usage: $0 FASHION_MNIST_BINARY INSPECT_BINARY DATA_DIR WORK_DIR" >&2
  exit 2
fi
bin=$1 inspect=$2 data=$3 work=$4
if [ ! -f "$data/train-images-idx3-ubyte.gz" ] && [ ! -f "$data/train-images-idx3-ubyte" ]; then
  echo "SKIP: no Fashion-MNIST files in $data (Debian package dataset-fashion-mnist)"
  exit 77
fi
rm -rf "$work"
mkdir -p "$work"

# The run every test compares against: 60 MLP steps (one partial epoch), a loss line per step,
# a checkpoint every 10 steps. Same --threads everywhere: results are bitwise reproducible.
TOTAL=60
COMMON="--model mlp --epochs 1 --max-steps $TOTAL --threads 2 --data $data --log-every 1 --checkpoint-every 10"
unset EMBER_TEST_CRASH_AT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# The complete loss lines of a log ("step S loss L lr R").
loss_lines() {
  grep -E '^step [0-9]+ loss [^ ]+ lr [^ ]+$' "$1" 2>/dev/null
}

# The step of the last complete loss line of a log (0 when none).
last_step() {
  loss_lines "$1" | tail -n 1 | awk '{ print $2 + 0 } END { if (NR == 0) print 0 }'
}

# The summary lines that must not depend on interruptions.
summary_lines() {
  grep -E '^(model|epochs|steps|steps_per_epoch|skipped_steps|test_loss|test_accuracy|train_loss): ' "$1"
}

# run_reference NAME: the uninterrupted run in $work/NAME (log $work/NAME.log, final model
# $work/NAME.safetensors).
run_reference() {
  "$bin" $COMMON --out "$work/$1" --save-final "$work/$1.safetensors" >"$work/$1.log" 2>&1 ||
    { cat "$work/$1.log"; fail "the reference run exited with $?"; }
  [ "$(last_step "$work/$1.log")" -eq "$TOTAL" ] || fail "the reference run has no 'step $TOTAL loss' line"
}

# The step of a checkpoint or run directory, as inspect reports it (fails when inspect does).
checkpoint_step() {
  out=$("$inspect" "$1" 2>&1) || { printf '%s\n' "$out" >&2; fail "inspect $1 exited non-zero"; }
  printf '%s\n' "$out" | sed -n 's/^  step: \([0-9]*\)$/\1/p'
}

# expect_same_as_reference REF NAME RESUME_LOG FROM: run NAME, resumed from step FROM with log
# RESUME_LOG, ended exactly as REF: its loss lines after FROM are REF's, the summary lines, the
# final model file and the final checkpoint's model and optimizer files are byte for byte REF's.
expect_same_as_reference() {
  ref=$1 name=$2 log=$3 from=$4
  loss_lines "$work/$ref.log" | awk -v f="$from" '$2 > f' >"$work/$name.expected_lines"
  loss_lines "$log" >"$work/$name.resumed_lines"
  diff "$work/$name.expected_lines" "$work/$name.resumed_lines" >/dev/null ||
    { diff "$work/$name.expected_lines" "$work/$name.resumed_lines" | head -n 20;
      fail "$name: the loss lines after step $from differ from the uninterrupted run's"; }
  summary_lines "$work/$ref.log" >"$work/$name.expected_summary"
  summary_lines "$log" >"$work/$name.resumed_summary"
  diff "$work/$name.expected_summary" "$work/$name.resumed_summary" ||
    fail "$name: the summary lines differ from the uninterrupted run's"
  cmp "$work/$ref.safetensors" "$work/$name.safetensors" || fail "$name: the final model file differs"
  final=$(printf 'step-%08d' "$TOTAL")
  for f in model.safetensors optimizer.safetensors; do
    cmp "$work/$ref/checkpoints/$final/$f" "$work/$name/checkpoints/$final/$f" ||
      fail "$name: the final checkpoint's $f differs"
  done
}

# signal_at_step SIGNAL STEP NAME ARGS...: runs the example with ARGS --out $work/NAME and a
# delay after every step (log $work/NAME.1.log), sends SIGNAL once the log shows step STEP and
# waits for it; sets rc to its exit status. A run that ended before the signal could be sent
# (a very slow poll) is retried with a longer delay, so the test does not depend on timing.
signal_at_step() {
  sig=$1 at=$2 name=$3
  shift 3
  for delay in 20 80 300; do
    rm -rf "${work:?}/$name" "$work/$name.safetensors"
    "$bin" "$@" --out "$work/$name" --test-step-delay-ms "$delay" >"$work/$name.1.log" 2>&1 &
    pid=$!
    sent=0 polls=0
    while kill -0 "$pid" 2>/dev/null; do
      if [ "$(last_step "$work/$name.1.log")" -ge "$at" ]; then
        kill -s "$sig" "$pid" 2>/dev/null && sent=1
        break
      fi
      polls=$((polls + 1))
      if [ "$polls" -gt 6000 ]; then
        kill -s KILL "$pid"
        cat "$work/$name.1.log"
        fail "$name: no 'step $at' line after 120 s"
      fi
      sleep 0.02
    done
    wait "$pid"
    rc=$?
    if [ "$sent" -eq 1 ] && [ "$(last_step "$work/$name.1.log")" -lt "$TOTAL" ]; then
      return 0
    fi
    echo "note: $name finished before SIG$sig could be sent (delay $delay ms per step); retrying slower"
  done
  cat "$work/$name.1.log"
  fail "$name: could not interrupt the run before its end"
}
