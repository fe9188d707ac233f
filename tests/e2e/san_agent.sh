#!/bin/bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Run an e2e test with the agent built under ASan+UBSan+LeakSanitizer
# (build/sockmesh-agent-san): the test must pass and no agent process may
# leave a sanitizer report. Usage: tests/e2e/san_agent.sh TEST_NAME
set -u
cd "$(dirname "$0")/../.." || exit 1
: "${SM_BUILD:=build}"
name=${1:-test_l7}
agent=$SM_BUILD/sockmesh-agent-san
if [ ! -x "$agent" ]; then
	echo "FAIL: $agent missing (make $agent)"; echo "0 passed, 1 failed"; exit 1
fi
logs=$(mktemp -d /tmp/sm-san-agent.XXXXXX)
trap 'rm -rf -- "$logs"' EXIT
SM_AGENT=$(cd "$(dirname "$agent")" && pwd)/$(basename "$agent") \
ASAN_OPTIONS=detect_leaks=1:log_path=$logs/asan \
UBSAN_OPTIONS=print_stacktrace=1:log_path=$logs/ubsan \
	timeout --foreground -k 10 800 bash "tests/e2e/$name.sh" | tee "$logs/out"
rc=${PIPESTATUS[0]}
reports=$(cat "$logs"/asan* "$logs"/ubsan* 2>/dev/null)
if [ -n "$reports" ]; then
	echo "FAIL: sanitizer reports from the agent:"
	echo "$reports" | head -60
	rc=1
fi
p=$(grep -oE '[0-9]+ passed, [0-9]+ failed' "$logs/out" | tail -1 | awk '{ print $1 }')
f=$(grep -oE '[0-9]+ passed, [0-9]+ failed' "$logs/out" | tail -1 | awk '{ print $3 }')
[ -n "$reports" ] && f=$(( ${f:-0} + 1 ))
echo "E2E $name under ASan: ${p:-0} passed, ${f:-1} failed"
[ "$rc" -eq 0 ]
