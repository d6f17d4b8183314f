#!/bin/bash
# Exact resume with real processes: run A trains 60 steps uninterrupted; run B, identical, is
# killed with SIGKILL after step 37 (its newest checkpoint is then step 30 or a later multiple
# of 10) and resumed with `--resume auto`. B's loss lines before the kill and after the resume,
# its summary lines, its final model file and its final checkpoint's model and optimizer files
# must be A's, byte for byte. Then the configuration rule on resume: a changed --lr is printed
# and used, a changed --batch-size is refused, --resume auto without checkpoints starts fresh;
# and the errors of the checkpoint options.
#   resume_exact.sh FASHION_MNIST_BINARY INSPECT_BINARY DATA_DIR WORK_DIR
. "$(dirname "$0")/common.sh"

run_reference A

# Run B: killed after step 37.
signal_at_step KILL 37 B $COMMON --save-final "$work/B.safetensors"
[ "$rc" -eq 137 ] || { cat "$work/B.1.log"; fail "run B: expected death by SIGKILL (137), got exit status $rc"; }
killed_at=$(last_step "$work/B.1.log")
echo "run B killed after step $killed_at"
[ -e "$work/B.safetensors" ] && fail "run B wrote its final model before it was killed"
# Its loss lines up to the kill are A's.
loss_lines "$work/B.1.log" >"$work/B.1.lines"
loss_lines "$work/A.log" | head -n "$killed_at" >"$work/A.head.lines"
diff "$work/A.head.lines" "$work/B.1.lines" || fail "run B's loss lines before the kill differ from run A's"
ckpt=$(checkpoint_step "$work/B") || exit 1
echo "newest checkpoint of run B: step $ckpt"
[ -n "$ckpt" ] && [ "$ckpt" -ge 30 ] && [ "$ckpt" -le "$killed_at" ] && [ $((ckpt % 10)) -eq 0 ] ||
  fail "run B's newest checkpoint is step '$ckpt'; expected a multiple of 10 in [30, $killed_at]"

# Resume B: only --resume and --out; every other option comes from the checkpoint.
"$bin" --resume auto --out "$work/B" >"$work/B.2.log" 2>&1 || { cat "$work/B.2.log"; fail "the resumed run B exited with $?"; }
grep -q "^resumed from .*step-$(printf '%08d' "$ckpt"): step $ckpt," "$work/B.2.log" ||
  { cat "$work/B.2.log"; fail "the resumed run does not say it resumed from step $ckpt"; }
grep -q '^resume: ' "$work/B.2.log" && fail "the resumed run reports a configuration change: $(grep '^resume: ' "$work/B.2.log")"
first=$(loss_lines "$work/B.2.log" | head -n 1 | awk '{ print $2 }')
[ "$first" = $((ckpt + 1)) ] || fail "the resumed run's first loss line is step '$first', expected $((ckpt + 1))"
expect_same_as_reference A B "$work/B.2.log" "$ckpt"
# metrics.csv: one row for the one epoch, the same as A's but for the timing columns.
[ "$(cut -d, -f1-6 "$work/B/metrics.csv")" = "$(cut -d, -f1-6 "$work/A/metrics.csv")" ] ||
  fail "run B's metrics.csv differs from run A's: $(cat "$work/B/metrics.csv")"

# A changed --lr on resume is printed and used: from step 50, the cosine schedule's lr is half A's.
"$bin" --resume "$work/A/checkpoints/step-00000050" --lr 0.0005 --out "$work/C" --save-final "$work/C.safetensors" \
  >"$work/C.log" 2>&1 || { cat "$work/C.log"; fail "the resume with --lr 0.0005 exited with $?"; }
grep -qx 'resume: --lr changed from 0.001 to 0.0005 (command line wins)' "$work/C.log" ||
  { cat "$work/C.log"; fail "no line 'resume: --lr changed from 0.001 to 0.0005 (command line wins)'"; }
lr_a=$(loss_lines "$work/A.log" | awk '$2 == 51 { print $6 }')
lr_c=$(loss_lines "$work/C.log" | awk '$2 == 51 { print $6 }')
awk -v a="$lr_a" -v c="$lr_c" 'BEGIN { r = c / a; exit !(a > 0 && r > 0.5 - 1e-8 && r < 0.5 + 1e-8) }' ||
  fail "after the resume with --lr 0.0005 the lr of step 51 is '$lr_c', expected half of run A's '$lr_a'"

# Options that shape the model, the optimizer state or the data order cannot change.
if "$bin" --resume "$work/A/checkpoints/step-00000050" --batch-size 64 --out "$work/D" >"$work/D.log" 2>&1; then
  fail "a resume with a changed --batch-size succeeded"
fi
grep -q 'error: --resume: --batch-size cannot change on resume (the checkpoint has 128, the command line 64)' "$work/D.log" ||
  { cat "$work/D.log"; fail "no error naming --batch-size and both values"; }

# Errors name what was expected and what was found (exit status 2).
# expect_failure NAME MESSAGE ARGS...: the example exits 2 with "fashion_mnist: error: MESSAGE...".
expect_failure() {
  name=$1 message=$2
  shift 2
  "$bin" "$@" >"$work/$name.log" 2>&1
  status=$?
  [ "$status" -eq 2 ] || { cat "$work/$name.log"; fail "$name: exit status $status, expected 2"; }
  grep -qF "fashion_mnist: error: $message" "$work/$name.log" ||
    { cat "$work/$name.log"; fail "$name: no line 'fashion_mnist: error: $message...'"; }
}
expect_failure no_dir "--resume auto: no checkpoint directory to look in (give --out DIR or --checkpoint-dir DIR)" \
  --data "$data" --resume auto
expect_failure no_ckpt_dir "--checkpoint-every 5: no checkpoint directory (give --out DIR or --checkpoint-dir DIR)" \
  --data "$data" --checkpoint-every 5
expect_failure missing_ckpt "" --data "$data" --resume "$work/no-such-checkpoint"
grep -q "no-such-checkpoint" "$work/missing_ckpt.log" || fail "the error for a missing --resume PATH does not name it"
mkdir -p "$work/bad/checkpoints"
cp -r "$work/A/checkpoints/step-00000050" "$work/bad/checkpoints/"
sed -i 's/"lr": "0.001"/"lr": "abc"/' "$work/bad/checkpoints/step-00000050/trainer.json"
expect_failure bad_config "--resume: the checkpoint's --lr: expected a number, found 'abc'" --resume auto --out "$work/bad"

# --resume auto without a checkpoint starts from the beginning, with a message.
"$bin" --model mlp --max-steps 2 --threads 2 --data "$data" --resume auto --out "$work/E" >"$work/E.log" 2>&1 ||
  { cat "$work/E.log"; fail "--resume auto in an empty run directory exited with $?"; }
grep -q "^resume: no checkpoint in $work/E/checkpoints; starting from the beginning" "$work/E.log" ||
  { cat "$work/E.log"; fail "no 'starting from the beginning' message"; }
grep -qx 'steps: 2' "$work/E.log" || fail "--resume auto in an empty run directory did not train"
echo "PASS"
