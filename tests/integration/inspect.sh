#!/bin/bash
# examples/inspect on real files: a safetensors file, a checkpoint directory and a run
# directory print their tensors, metadata and trainer state and exit 0; bad inputs (a
# truncated file, garbage, a missing path, a directory without checkpoints, a checkpoint with
# a flipped data byte) print "inspect: error: <reason>" on stderr and exit 1.
#   inspect.sh FASHION_MNIST_BINARY INSPECT_BINARY DATA_DIR WORK_DIR
. "$(dirname "$0")/common.sh"

"$bin" --model mlp --epochs 1 --max-steps 10 --threads 2 --data "$data" --checkpoint-every 5 --out "$work/run" \
  --save-final "$work/model.safetensors" >"$work/run.log" 2>&1 || { cat "$work/run.log"; fail "the training run exited with $?"; }

# expect_ok NAME ARGS...: inspect ARGS exits 0; its stdout is in $work/NAME.out.
expect_ok() {
  name=$1
  shift
  "$inspect" "$@" >"$work/$name.out" 2>"$work/$name.err" ||
    { cat "$work/$name.out" "$work/$name.err"; fail "inspect $*: exit status $?, expected 0"; }
}
# expect_line NAME REGEX: a line of $work/NAME.out matches REGEX.
expect_line() {
  grep -Eq "$2" "$work/$1.out" || { cat "$work/$1.out"; fail "inspect ($1): no line matching '$2'"; }
}
# expect_error NAME REASON_REGEX ARGS...: inspect ARGS exits 1 with "inspect: error: ...REASON...".
expect_error() {
  name=$1 reason=$2
  shift 2
  "$inspect" "$@" >"$work/$name.out" 2>"$work/$name.err"
  status=$?
  [ "$status" -eq 1 ] || { cat "$work/$name.out" "$work/$name.err"; fail "inspect $* ($name): exit status $status, expected 1"; }
  grep -Eq "^inspect: error: .*$reason" "$work/$name.err" ||
    { cat "$work/$name.err"; fail "inspect $* ($name): no 'inspect: error: ...$reason...' line on stderr"; }
}

# MLP 784-256-128-10: 6 tensors, (784*256 + 256 + 256*128 + 128 + 128*10 + 10) * 4 bytes.
mlp_bytes=$(((784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10) * 4))
expect_ok file "$work/model.safetensors"
expect_line file '^  1\.weight +float32 +\[256, 784\] +802816 '
expect_line file '^  5\.bias +float32 +\[10\] +40 '
expect_line file '^    model = mlp$'
expect_line file '^    steps = 10$'
expect_line file '^tensors: 6$'
expect_line file "^bytes: $mlp_bytes\$"

expect_ok file_json "$work/model.safetensors" --json
expect_line file_json '^\{"kind": "safetensors", .*"name": "1\.weight", "dtype": "float32", "shape": \[256, 784\], "bytes": 802816'
expect_line file_json "\"tensors\": 6, \"bytes\": $mlp_bytes\}\$"

# A checkpoint directory: model and optimizer files (checksums verified) and the trainer state.
expect_ok checkpoint "$work/run/checkpoints/step-00000005"
expect_line checkpoint '^checkpoint: .*step-00000005$'
expect_line checkpoint '^  1\.weight +float32 +\[256, 784\] +802816 +ok$'
expect_line checkpoint '^trainer:$'
expect_line checkpoint '^  step: 5$'
expect_line checkpoint '^  epoch: 0$'
expect_line checkpoint '^  loader: epoch 0, batch 5$'
expect_line checkpoint '^    default: seed 0, offset [0-9]+$'
expect_line checkpoint '^    epoch_step = 5$'
expect_line checkpoint '^    lr = 0.001$'
expect_line checkpoint '^    model = mlp$'
expect_line checkpoint '^tensors: [0-9]+$'
[ "$(sed -n 's/^tensors: //p' "$work/checkpoint.out")" -gt 6 ] || fail "inspect (checkpoint): the optimizer's tensors are not counted"

# A run directory (here the --out directory): the list of checkpoints, then the newest.
expect_ok rundir "$work/run"
expect_line rundir '^checkpoints \(2, oldest first\):$'
expect_line rundir '^checkpoint: .*step-00000010$'
expect_line rundir '^  step: 10$'
expect_ok rundir_json "$work/run/checkpoints" --json
expect_line rundir_json '"trainer": \{'

# Bad inputs.
head -c 100 "$work/model.safetensors" >"$work/truncated.safetensors"
expect_error truncated 'truncated\.safetensors' "$work/truncated.safetensors"
printf 'this is not a safetensors file at all, just some text\n' >"$work/garbage.safetensors"
expect_error garbage 'garbage\.safetensors' "$work/garbage.safetensors"
: >"$work/empty.safetensors"
expect_error empty 'empty\.safetensors' "$work/empty.safetensors"
expect_error missing 'no such file or directory' "$work/does-not-exist"
mkdir -p "$work/emptydir"
expect_error emptydir 'no complete checkpoint' "$work/emptydir"
# A flipped byte in the data area of a checkpoint's model file: the checksum catches it.
mkdir -p "$work/flipped"
cp -r "$work/run/checkpoints/step-00000010" "$work/flipped/"
f="$work/flipped/step-00000010/model.safetensors"
size=$(wc -c <"$f")
byte=$(od -An -tu1 -j $((size - 1)) -N1 "$f" | tr -d ' ')
printf "\\$(printf '%03o' $(((byte + 1) % 256)))" | dd of="$f" bs=1 seek=$((size - 1)) conv=notrunc status=none
expect_error flipped 'checksum mismatch' "$work/flipped/step-00000010"
echo "PASS"
