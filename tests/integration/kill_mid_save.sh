#!/bin/bash
# Kill mid-save with real processes: for each crash point of the checkpoint save sequence
# (after_write, after_fsync, after_rename; ember/io/fault_injection.hpp) a run with
# EMBER_TEST_CRASH_AT=<point>:2 dies by SIGKILL inside its 2nd save (step 20). The run
# directory must then hold a loadable newest checkpoint (inspect exits 0): step 10 before the
# rename, step 20 after it (the rename is the commit point). `--resume auto` then finishes the
# run exactly as the uninterrupted reference (loss lines, summary, final files byte for byte)
# and leaves no temporary leftovers in the checkpoint directory.
#   kill_mid_save.sh FASHION_MNIST_BINARY INSPECT_BINARY DATA_DIR WORK_DIR
. "$(dirname "$0")/common.sh"

run_reference A

for point in after_write after_fsync after_rename; do
  EMBER_TEST_CRASH_AT="$point:2" "$bin" $COMMON --out "$work/$point" --save-final "$work/$point.safetensors" \
    >"$work/$point.1.log" 2>&1
  rc=$?
  [ "$rc" -eq 137 ] || { cat "$work/$point.1.log"; fail "$point: expected death by SIGKILL (137), got exit status $rc"; }
  [ "$(last_step "$work/$point.1.log")" -eq 20 ] || fail "$point: the run did not die at step 20 (last step line $(last_step "$work/$point.1.log"))"
  expected=10
  [ "$point" = after_rename ] && expected=20
  ckpt=$(checkpoint_step "$work/$point") || exit 1
  [ "$ckpt" = "$expected" ] || fail "$point: the newest loadable checkpoint is step '$ckpt', expected $expected"
  echo "$point: killed in the save of step 20; newest checkpoint: step $ckpt"

  "$bin" --resume auto --out "$work/$point" >"$work/$point.2.log" 2>&1 ||
    { cat "$work/$point.2.log"; fail "$point: the resumed run exited with $?"; }
  grep -q "^resumed from .*step-$(printf '%08d' "$ckpt"): step $ckpt," "$work/$point.2.log" ||
    { cat "$work/$point.2.log"; fail "$point: the resumed run does not say it resumed from step $ckpt"; }
  expect_same_as_reference A "$point" "$work/$point.2.log" "$ckpt"
  leftovers=$(ls -A "$work/$point/checkpoints" | grep -Ev '^step-[0-9]{8}$' || true)
  [ -z "$leftovers" ] || fail "$point: leftovers of the interrupted save remain: $leftovers"
  [ "$(ls "$work/$point/checkpoints" | wc -l)" -eq 3 ] || fail "$point: expected the newest 3 checkpoints (--keep 3): $(ls "$work/$point/checkpoints")"
done
echo "PASS"
