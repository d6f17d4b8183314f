#!/bin/bash
# Preemption with real processes: SIGTERM and SIGINT in the middle of a run make the example
# finish the step in flight, save a checkpoint, print "interrupted by SIG...: saved checkpoint
# PATH" and exit 0. The checkpoint is of the last step the log shows and loads (inspect exits
# 0); `--resume auto` finishes the run exactly as the uninterrupted reference.
#   signals.sh FASHION_MNIST_BINARY INSPECT_BINARY DATA_DIR WORK_DIR
. "$(dirname "$0")/common.sh"

run_reference A

for sig in TERM INT; do
  signal_at_step "$sig" 15 "$sig" $COMMON --save-final "$work/$sig.safetensors"
  log="$work/$sig.1.log"
  [ "$rc" -eq 0 ] || { cat "$log"; fail "SIG$sig: expected exit status 0, got $rc"; }
  stopped=$(last_step "$log")
  path=$(sed -n "s/^interrupted by SIG$sig: saved checkpoint \(.*\)\$/\1/p" "$log")
  [ -n "$path" ] || { cat "$log"; fail "SIG$sig: no 'interrupted by SIG$sig: saved checkpoint PATH' line"; }
  [ "$(basename "$path")" = "$(printf 'step-%08d' "$stopped")" ] ||
    fail "SIG$sig: saved $path but the last step line is step $stopped"
  ckpt=$(checkpoint_step "$path") || exit 1
  [ "$ckpt" = "$stopped" ] || fail "SIG$sig: inspect says the checkpoint is step '$ckpt', expected $stopped"
  grep -q '^steps: ' "$log" && fail "SIG$sig: the interrupted run went on to its summary"
  echo "SIG$sig after step $stopped: saved $path"

  "$bin" --resume auto --out "$work/$sig" >"$work/$sig.2.log" 2>&1 ||
    { cat "$work/$sig.2.log"; fail "SIG$sig: the resumed run exited with $?"; }
  expect_same_as_reference A "$sig" "$work/$sig.2.log" "$stopped"
done
echo "PASS"
