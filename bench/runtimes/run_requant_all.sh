#!/bin/sh
# Reruns the conv/FC/depthwise requantization formula checks (XNNPACK fp32 formula and optimized-kernel
# candidates); results/requant_results.txt is this script's output with N=30.
# Usage (from anywhere): [N=30] [PYTHON=python3] bench/runtimes/run_requant_all.sh
HERE=$(dirname "$0")
PY=${PYTHON:-python3}
for cfg in "FULLY_CONNECTED int8 0" "FULLY_CONNECTED int8 1" "FULLY_CONNECTED uint8 0" "CONV_2D int8 0" "CONV_2D int8 1" "CONV_2D uint8 0" "DEPTHWISE_CONV_2D int8 0" "DEPTHWISE_CONV_2D int8 1" "DEPTHWISE_CONV_2D uint8 0"; do
  # shellcheck disable=SC2086  # $cfg is three words on purpose
  "$PY" "$HERE/fc_requant.py" ${N:-30} $cfg 2>&1 | grep -v INFO
  "$PY" "$HERE/opt_fc_formula.py" ${N:-30} $cfg 2>&1 | grep -v INFO
done
