#!/bin/sh
# ctest fashion_mnist_smoke: runs the example for 50 steps on the real data and checks that it
# exits 0, prints the summary lines and writes its --out files. Exit 77 (skip) without the data.
#   smoke_test.sh FASHION_MNIST_BINARY DATA_DIR OUT_DIR
set -u
bin=$1 data=$2 out=$3
if [ ! -f "$data/train-images-idx3-ubyte.gz" ] && [ ! -f "$data/train-images-idx3-ubyte" ]; then
  echo "SKIP: no Fashion-MNIST files in $data (Debian package dataset-fashion-mnist)"
  exit 77
fi
rm -rf "$out"
log=$("$bin" --model mlp --epochs 1 --max-steps 50 --threads 2 --data "$data" --out "$out" 2>&1)
rc=$?
printf '%s\n' "$log"
if [ "$rc" -ne 0 ]; then
  echo "FAIL: fashion_mnist exited with $rc"
  exit 1
fi
for key in test_accuracy train_loss epoch_seconds samples_per_second; do
  if ! printf '%s\n' "$log" | grep -Eq "^$key: [0-9]+\.[0-9]+\$"; then
    echo "FAIL: no '$key: <number>' line"
    exit 1
  fi
done
# 50 Adam steps reach well above chance (0.1) on the test set.
acc=$(printf '%s\n' "$log" | sed -n 's/^test_accuracy: //p')
if ! awk -v a="$acc" 'BEGIN { exit !(a >= 0.5 && a <= 1.0) }'; then
  echo "FAIL: test_accuracy $acc after 50 steps is below 0.5"
  exit 1
fi
for f in metrics.csv curves.svg model.safetensors; do
  if [ ! -s "$out/$f" ]; then
    echo "FAIL: $out/$f was not written"
    exit 1
  fi
done
echo "PASS"
