#!/bin/bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Runs every suite and ends with one line CI can read: "N passed, N failed".
#   tests/run.sh            unit, unit under ASan/UBSan, bpf, e2e
#   tests/run.sh e2e [NAME] only the e2e tests (matching NAME)
# Suites that need root fail (not skip) when CI=true and we are not root.
set -u
cd "$(dirname "$0")/.." || exit 1
: "${SM_BUILD:=build}"
export SM_BUILD=$(cd "$SM_BUILD" && pwd)

total_pass=0 total_fail=0
failed_suites=()

# run_suite NAME CMD...: runs CMD, adds its "N passed, N failed" line(s).
run_suite() {
	local name=$1 out rc p f line t0=$SECONDS
	shift
	echo "=== $name"
	out=$(mktemp)
	"$@" 2>&1 | tee "$out"
	rc=${PIPESTATUS[0]}
	line=$(grep -oE '[0-9]+ passed, [0-9]+ failed' "$out" | tail -1)
	if [ "$rc" -eq 77 ] && [ "${CI:-}" != true ]; then
		echo "--- $name: skipped (needs root)"
		rm -f "$out"
		return
	fi
	if [ -n "$line" ]; then
		p=$(awk '{ print $1 }' <<<"$line")
		f=$(awk '{ print $3 }' <<<"$line")
	else
		p=0 f=0
	fi
	# a crash or a non-zero exit without a failure counted is one failure
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
	fi
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + f))
	[ "$f" -ne 0 ] && failed_suites+=("$name")
	echo "--- $name: $p passed, $f failed (exit $rc, $((SECONDS - t0)) s)"
	rm -f "$out"
}

need_root() {
	if [ "$(id -u)" -ne 0 ]; then
		if [ "${CI:-}" = true ]; then
			echo "FAIL: the $1 tests need root (CI=true)"; return 1
		fi
		echo "SKIP: the $1 tests need root"; return 77
	fi
}

run_e2e() {
	local filter=${1:-}
	for t in tests/e2e/test_*.sh; do
		[ -n "$filter" ] && [[ $t != *"$filter"* ]] && continue
		# (a bound for a hang, twice what the slowest takes on a loaded 2-core machine)
		run_suite "e2e $(basename "$t" .sh)" timeout --foreground -k 10 600 bash "$t"
	done
}

start=$(date +%s)
case "${1:-all}" in
e2e)
	run_e2e "${2:-}"
	;;
all)
	run_suite unit "$SM_BUILD/unit-tests"
	run_suite "unit (ASan+UBSan)" env ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 "$SM_BUILD/unit-tests-san"
	if need_root bpf; then
		run_suite bpf "$SM_BUILD/bpf-tests"
		run_suite "bpf (ASan+UBSan)" env ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
			UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 "$SM_BUILD/bpf-tests-san"
	else
		rc=$?
		[ "$rc" -eq 77 ] || { total_fail=$((total_fail + 1)); failed_suites+=(bpf); }
	fi
	run_suite "fuzz (libFuzzer smoke, ${SM_FUZZ_SECS:-8}s per target)" tests/fuzz/run.sh "${SM_FUZZ_SECS:-8}"
	run_e2e
	run_suite "e2e test_l7 (agent under ASan+UBSan+LSan)" tests/e2e/san_agent.sh test_l7
	run_suite "e2e test_delta (agent under ASan+UBSan+LSan)" tests/e2e/san_agent.sh test_delta
	run_suite "e2e test_l7_pool (agent under ASan+UBSan+LSan)" tests/e2e/san_agent.sh test_l7_pool
	run_suite "e2e test_grpc (agent under ASan+UBSan+LSan)" tests/e2e/san_agent.sh test_grpc
	run_suite "e2e test_kube_api (agent under ASan+UBSan+LSan)" tests/e2e/san_agent.sh test_kube_api
	;;
*)
	echo "usage: tests/run.sh [all|e2e [NAME]]" >&2; exit 2
	;;
esac

echo
echo "suites took $(( $(date +%s) - start )) s"
[ ${#failed_suites[@]} -gt 0 ] && echo "failed suites: ${failed_suites[*]}"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
