#!/bin/bash
# Exact resume across epoch boundaries and with dropout, with real processes.
#  - MLP, batch 3000 (20 steps per epoch), 2 epochs, a checkpoint every 10 steps: resuming in
#    place from step 20 (saved after the last step of epoch 1, before its evaluation) and from
#    step 30 (the middle of epoch 2, whose shuffle differs) ends as the uninterrupted run: loss
#    lines, epoch lines, summary, metrics.csv (each epoch once), final files byte for byte.
#  - CNN (dropout draws from the default generator, BatchNorm running statistics): 6 steps,
#    resumed from step 3, ends as the uninterrupted run.
#   resume_epochs.sh FASHION_MNIST_BINARY INSPECT_BINARY DATA_DIR WORK_DIR
. "$(dirname "$0")/common.sh"

TOTAL=40
COMMON="--model mlp --epochs 2 --batch-size 3000 --threads 2 --data $data --log-every 1 --checkpoint-every 10 --keep 0"
run_reference A
[ "$(grep -c '^epoch [0-9]*: train_loss' "$work/A.log")" -eq 2 ] || fail "the reference run did not print 2 epoch lines"

# The epoch lines without their timings.
epoch_lines() {
  grep -E '^epoch [0-9]+: train_loss' "$1" | awk '{ print $1, $2, $3, $4, $5, $6, $7, $8 }'
}

for from in 20 30; do
  name=R$from
  # A copy of run A's directory as it was when the checkpoint of step $from was the newest:
  # later checkpoints removed, metrics.csv as the finished run left it (the resume drops the
  # rows of epochs the checkpoint has not completed).
  cp -r "$work/A" "$work/$name"
  for d in "$work/$name"/checkpoints/step-*; do
    [ "$(basename "$d" | sed 's/^step-0*//')" -gt "$from" ] && rm -rf "$d"
  done
  "$bin" --resume auto --out "$work/$name" --save-final "$work/$name.safetensors" >"$work/$name.2.log" 2>&1 ||
    { cat "$work/$name.2.log"; fail "$name: the resumed run exited with $?"; }
  grep -q "^resumed from .*step-$(printf '%08d' "$from"): step $from," "$work/$name.2.log" ||
    { cat "$work/$name.2.log"; fail "$name: the resumed run does not say it resumed from step $from"; }
  expect_same_as_reference A "$name" "$work/$name.2.log" "$from"
  # Epoch 1's line is printed again when the checkpoint precedes its evaluation (step 20).
  epoch_lines "$work/A.log" | awk -v f="$from" '!(f > 20 && $2 == "1:")' >"$work/$name.expected_epochs"
  epoch_lines "$work/$name.2.log" >"$work/$name.resumed_epochs"
  diff "$work/$name.expected_epochs" "$work/$name.resumed_epochs" || fail "$name: the epoch lines differ from the uninterrupted run's"
  [ "$(cut -d, -f1-6 "$work/$name/metrics.csv")" = "$(cut -d, -f1-6 "$work/A/metrics.csv")" ] ||
    fail "$name: metrics.csv differs from the uninterrupted run's: $(cat "$work/$name/metrics.csv")"
done

# The CNN: dropout and BatchNorm.
TOTAL=6
COMMON="--model cnn --epochs 1 --max-steps $TOTAL --batch-size 32 --threads 2 --data $data --log-every 1 --checkpoint-every 3 --eval-batch-size 2000"
run_reference CNN
mkdir -p "$work/CNN3/checkpoints"
cp -r "$work/CNN/checkpoints/step-00000003" "$work/CNN3/checkpoints/"
"$bin" --resume auto --out "$work/CNN3" --save-final "$work/CNN3.safetensors" >"$work/CNN3.2.log" 2>&1 ||
  { cat "$work/CNN3.2.log"; fail "CNN3: the resumed run exited with $?"; }
expect_same_as_reference CNN CNN3 "$work/CNN3.2.log" 3
echo "PASS"
