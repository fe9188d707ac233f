# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# shellcheck shell=bash disable=SC2034 # state is read by the sourcing test
#
# lib.sh — assertions and bounded waits for sockmesh end-to-end tests.
# Source it from a test under tests/e2e/ (it sources scripts/lib/node.sh):
#
#   e2e_require_root                 CI=true: fail (exit 1); else skip (exit 77)
#   e2e_assert_eq NAME EXPECTED ACTUAL
#   e2e_assert_range NAME LO HI ACTUAL      integers, LO <= ACTUAL <= HI
#   e2e_assert_match NAME REGEX TEXT        bash ERE, unanchored
#   e2e_assert_ge NAME MIN ACTUAL           ACTUAL >= MIN
#   e2e_assert_ok NAME CMD...               CMD exits 0
#   e2e_finish                       "E2E <test>: N passed, N failed"; exits
#                                    1 on any failure or when nothing was checked
#   e2e_wait_for_line FILE ERE TIMEOUT      0 once a line of FILE matches
#   e2e_wait_until TIMEOUT CMD...           0 once CMD succeeds
#   e2e_tmpdir                       sets E2E_TMP (removed at exit)
#   e2e_log MSG...                   "# MSG" on stdout
#
# Each assertion prints "  ok NAME" or "  FAIL NAME: expected X, got Y".
# Variables: E2E_ROOT (repo), E2E_NAME (test name), SM_BUILD (build output,
# default $E2E_ROOT/build), E2E_TOOLS ($SM_BUILD/tools), E2E_PASS, E2E_FAIL.
# TIMEOUTs are seconds and may be fractional.

E2E_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
E2E_NAME=${E2E_NAME:-$(basename "$0" .sh)}
: "${SM_BUILD:=$E2E_ROOT/build}"
E2E_TOOLS=${E2E_TOOLS:-$SM_BUILD/tools}
E2E_PASS=0
E2E_FAIL=0

# shellcheck disable=SC1091
. "$E2E_ROOT/scripts/lib/node.sh"

e2e_log() {
	echo "# $*"
}

e2e_require_root() {
	[ "$(id -u)" = 0 ] && return 0
	if [ "${CI:-}" = true ]; then
		echo "FAIL $E2E_NAME: needs root (CI=true)" >&2
		exit 1
	fi
	echo "SKIP $E2E_NAME: needs root"
	exit 77
}

_e2e_ok() {
	E2E_PASS=$((E2E_PASS + 1))
	echo "  ok $1"
}

_e2e_fail() {
	E2E_FAIL=$((E2E_FAIL + 1))
	echo "  FAIL $1: $2"
}

e2e_assert_eq() {
	if [ "$2" = "$3" ]; then
		_e2e_ok "$1"
	else
		_e2e_fail "$1" "expected $2, got $3"
	fi
}

e2e_assert_range() {
	local name=$1 lo=$2 hi=$3 act=$4

	if [[ "$act" =~ ^-?[0-9]+$ ]] && [ "$act" -ge "$lo" ] && [ "$act" -le "$hi" ]; then
		_e2e_ok "$name"
	else
		_e2e_fail "$name" "expected $lo..$hi, got $act"
	fi
}

# e2e_assert_ge NAME MIN ACTUAL
e2e_assert_ge() {
	e2e_assert_range "$1" "$2" 9223372036854775807 "$3"
}

e2e_assert_match() {
	if [[ "$3" =~ $2 ]]; then
		_e2e_ok "$1"
	else
		_e2e_fail "$1" "expected match /$2/, got $3"
	fi
}

e2e_assert_ok() {
	local name=$1 rc=0

	shift
	"$@" || rc=$?
	if [ "$rc" = 0 ]; then
		_e2e_ok "$name"
	else
		_e2e_fail "$name" "expected exit 0, got $rc from $*"
	fi
}

e2e_finish() {
	local rc=0

	echo "E2E $E2E_NAME: $E2E_PASS passed, $E2E_FAIL failed"
	if [ "$E2E_FAIL" -ne 0 ] || [ "$E2E_PASS" -eq 0 ]; then
		rc=1
	fi
	exit "$rc"
}

# Deadline arithmetic in milliseconds so fractional timeouts work.
_e2e_ms_now() {
	local s ns

	read -r s ns < <(date +'%s %N')
	echo $((s * 1000 + 10#$ns / 1000000))
}

_e2e_ms() {
	awk -v t="$1" 'BEGIN { printf "%d", t * 1000 }'
}

e2e_wait_until() {
	local deadline

	deadline=$(($(_e2e_ms_now) + $(_e2e_ms "$1")))
	shift
	while :; do
		"$@" && return 0
		[ "$(_e2e_ms_now)" -ge "$deadline" ] && return 1
		sleep 0.05
	done
}

e2e_wait_for_line() {
	e2e_wait_until "$3" grep -Eq -- "$2" "$1" 2>/dev/null
}

e2e_tmpdir() {
	E2E_TMP=$(mktemp -d "/tmp/sm-e2e-$E2E_NAME.XXXXXX") || return 1
	# shellcheck disable=SC2016
	sm_trap_add 'rm -rf -- "$E2E_TMP"'
}
