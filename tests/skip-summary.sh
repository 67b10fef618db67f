#!/usr/bin/env bash
# Prints the skip ledger that the tests wrote (stylerd-testkit): one line per skipped test
# with its kind and reason. With STRICT_SKIPS=1 (CI) any skip that is not a GPU skip fails:
# CI has the models, ONNX Runtime, the trainer's weights and root, so nothing else may skip.
set -euo pipefail
ledger=${1:?usage: skip-summary.sh LEDGER}
strict=${STRICT_SKIPS:-0}
if [ ! -s "$ledger" ]; then
	echo "skip summary: 0 tests skipped"
	exit 0
fi
n=$(wc -l < "$ledger")
echo "skip summary: $n tests skipped"
sort "$ledger" | while IFS=$'\t' read -r test kind reason; do
	echo "  SKIPPED $test [$kind]: $reason"
done
if [ "$strict" = 1 ]; then
	bad=$(awk -F'\t' '$2 != "gpu"' "$ledger" | wc -l)
	if [ "$bad" -gt 0 ]; then
		echo "error: $bad tests skipped for a reason other than a missing GPU, where CI must run them (STRICT_SKIPS=1)" >&2
		exit 1
	fi
fi
