#!/bin/bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Run every libFuzzer target for a bounded time: tests/fuzz/run.sh SECONDS.
# Each target starts from its checked-in seed corpus (tests/fuzz/corpus/X)
# plus the regressions (tests/fuzz/regress/X: every crash found becomes one).
# New corpus entries go to build/fuzz/corpus/X, never into the tree.
# Ends with "N passed, N failed" (one per target).
set -u
cd "$(dirname "$0")/../.." || exit 1
: "${SM_BUILD:=build}"
secs=${1:-10}
pass=0 fail=0
for bin in "$SM_BUILD"/fuzz/fuzz_*; do
	[ -x "$bin" ] || continue
	name=$(basename "$bin" | sed 's/^fuzz_//')
	work=$SM_BUILD/fuzz/corpus/$name
	mkdir -p "$work" "$SM_BUILD/fuzz/crashes"
	seeds=(tests/fuzz/corpus/"$name")
	[ -d tests/fuzz/regress/"$name" ] && seeds+=(tests/fuzz/regress/"$name")
	log=$SM_BUILD/fuzz/$name.log
	# regressions first: each must run clean
	if [ -d tests/fuzz/regress/"$name" ] && ! "$bin" tests/fuzz/regress/"$name"/* >"$log" 2>&1; then
		echo "FAIL fuzz $name: a regression input fails again (see $log)"; fail=$((fail + 1)); continue
	fi
	if timeout -k 5 $((secs + 30)) "$bin" -max_total_time="$secs" -timeout=5 -rss_limit_mb=2048 \
		-artifact_prefix="$SM_BUILD/fuzz/crashes/$name-" "$work" "${seeds[@]}" >"$log" 2>&1; then
		execs=$(grep -oE 'stat::number_of_executed_units: [0-9]+' "$log" | awk '{ print $2 }')
		[ -z "$execs" ] && execs=$(grep -oE '#[0-9]+' "$log" | tail -1 | tr -d '#')
		echo "ok   fuzz $name: ${execs:-?} executions in ${secs}s"
		pass=$((pass + 1))
	else
		echo "FAIL fuzz $name: see $log and $SM_BUILD/fuzz/crashes/"
		grep -E 'ERROR|SUMMARY|deadly' "$log" | head -5
		fail=$((fail + 1))
	fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
