#!/bin/bash
# --check-finite with real processes (and the testing-only --inject-nan-at): a NaN loss at one
# step skips that optimizer step, counts it in metrics.csv ("skipped_steps") and in the
# summary line "skipped_steps: 1", and the run completes; 3 consecutive NaN steps with
# --max-skips 3 stop the run with a clear message and a non-zero exit. Without injections
# --check-finite changes nothing (same loss lines and final model bytes). --spike-z logs an
# injected loss spike, also after a resume.
#   check_finite.sh FASHION_MNIST_BINARY INSPECT_BINARY DATA_DIR WORK_DIR
. "$(dirname "$0")/common.sh"

opts="--model mlp --epochs 1 --max-steps 20 --threads 2 --data $data --log-every 1"

"$bin" $opts --save-final "$work/plain.safetensors" >"$work/plain.log" 2>&1 || fail "the plain run exited with $?"
"$bin" $opts --check-finite --save-final "$work/guarded.safetensors" --out "$work/guarded" >"$work/guarded.log" 2>&1 ||
  { cat "$work/guarded.log"; fail "the --check-finite run exited with $?"; }
[ "$(loss_lines "$work/plain.log")" = "$(loss_lines "$work/guarded.log")" ] ||
  fail "--check-finite without non-finite losses changed the loss lines"
cmp "$work/plain.safetensors" "$work/guarded.safetensors" || fail "--check-finite without non-finite losses changed the model"
grep -qx 'skipped_steps: 0' "$work/guarded.log" || fail "no 'skipped_steps: 0' summary line"

# One NaN step (step 5): skipped, counted, the run goes on.
"$bin" $opts --check-finite --inject-nan-at 5 --checkpoint-every 10 --keep 0 --out "$work/one" >"$work/one.log" 2>&1 ||
  { cat "$work/one.log"; fail "the run with one NaN step exited with $?"; }
grep -Eq '^step 5 loss [-+]?nan ' "$work/one.log" || fail "step 5's loss is not NaN: $(grep '^step 5 ' "$work/one.log")"
grep -qx 'skipped_steps: 1' "$work/one.log" || { cat "$work/one.log"; fail "no 'skipped_steps: 1' summary line"; }
head -n 1 "$work/one/metrics.csv" | grep -q ',skipped_steps$' || fail "metrics.csv has no skipped_steps column: $(head -n 1 "$work/one/metrics.csv")"
[ "$(tail -n 1 "$work/one/metrics.csv" | awk -F, '{ print $NF }')" = 1 ] ||
  fail "metrics.csv's skipped_steps is not 1: $(tail -n 1 "$work/one/metrics.csv")"
# The skipped step left the model as it was: step 6 of this run sees the weights after step 4,
# so its loss differs from the plain run's, while steps 1..4 are the same.
[ "$(loss_lines "$work/plain.log" | head -n 4)" = "$(loss_lines "$work/one.log" | head -n 4)" ] ||
  fail "the steps before the NaN step differ from the plain run's"
grep -Eq '^train_loss: [0-9]+\.[0-9]+$' "$work/one.log" || fail "the NaN loss made the mean training loss non-finite"
# The skip counters are in the checkpoint: a run resumed from step 10 still reports the skip.
mkdir -p "$work/one_resumed/checkpoints"
cp -r "$work/one/checkpoints/step-00000010" "$work/one_resumed/checkpoints/"
"$bin" --resume auto --out "$work/one_resumed" >"$work/one_resumed.log" 2>&1 ||
  { cat "$work/one_resumed.log"; fail "the resumed --check-finite run exited with $?"; }
grep -qx 'skipped_steps: 1' "$work/one_resumed.log" || { cat "$work/one_resumed.log"; fail "the resumed run lost the skip count"; }
[ "$(summary_lines "$work/one.log")" = "$(summary_lines "$work/one_resumed.log")" ] ||
  fail "the resumed --check-finite run's summary differs from the uninterrupted run's"

# Two consecutive NaN steps with --max-skips 3: the run completes with 2 skipped steps.
"$bin" $opts --check-finite --max-skips 3 --inject-nan-at 5 --inject-nan-steps 2 >"$work/two.log" 2>&1 ||
  { cat "$work/two.log"; fail "the run with 2 consecutive NaN steps (--max-skips 3) exited with $?"; }
grep -qx 'skipped_steps: 2' "$work/two.log" || fail "no 'skipped_steps: 2' summary line"

# Three consecutive NaN steps with --max-skips 3: the run stops at step 7 with an error.
"$bin" $opts --check-finite --max-skips 3 --inject-nan-at 5 --inject-nan-steps 3 >"$work/three.log" 2>&1
status=$?
[ "$status" -ne 0 ] || { cat "$work/three.log"; fail "3 consecutive NaN steps with --max-skips 3 did not stop the run"; }
grep -q '^fashion_mnist: stopping at step 7 (--max-skips 3)$' "$work/three.log" ||
  { cat "$work/three.log"; fail "no 'stopping at step 7' line"; }
grep -q '^fashion_mnist: error: .*3 consecutive steps' "$work/three.log" ||
  { cat "$work/three.log"; fail "no error line naming the 3 consecutive skipped steps"; }
grep -q '^steps: ' "$work/three.log" && fail "the stopped run printed its summary"

# --spike-z: a loss 100 times the usual one at step 30 (testing-only --inject-spike-at) is
# logged; a run resumed from step 25 (the detector's window is in the checkpoint) logs it the same.
spike_opts="--model mlp --epochs 1 --max-steps 32 --threads 2 --data $data --spike-z 6 --inject-spike-at 30 --checkpoint-every 25 --keep 0"
"$bin" $spike_opts --out "$work/spike" >"$work/spike.log" 2>&1 || { cat "$work/spike.log"; fail "the --spike-z run exited with $?"; }
grep -E '^loss spike at step' "$work/spike.log" >"$work/spike.lines"
grep -Eq '^loss spike at step 30: loss [0-9.e+]+ \(z = [0-9.]+\)$' "$work/spike.lines" && [ "$(wc -l <"$work/spike.lines")" -eq 1 ] ||
  { cat "$work/spike.log"; fail "expected exactly one 'loss spike at step 30: loss L (z = Z)' line"; }
mkdir -p "$work/spike2/checkpoints"
cp -r "$work/spike/checkpoints/step-00000025" "$work/spike2/checkpoints/"
"$bin" --resume auto --out "$work/spike2" --inject-spike-at 30 >"$work/spike2.log" 2>&1 ||
  { cat "$work/spike2.log"; fail "the resumed --spike-z run exited with $?"; }
grep -E '^loss spike at step' "$work/spike2.log" | diff "$work/spike.lines" - ||
  fail "the resumed run's spike lines differ from the uninterrupted run's"
echo "PASS"
