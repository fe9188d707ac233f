#!/bin/bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# shellcheck disable=SC2034 # knobs are read by the sourced scenario files
#
# bench/run.sh — `make bench [QUICK=1]`: sockmesh side by side with what
# users would run instead, on this machine, in one run. Needs root.
#
# Everything happens in a throw-away node (scripts/lib/node.sh): its own
# network namespaces, a private cgroup v2 child and bpffs pin dir, torn down
# on exit, failure or Ctrl-C. iptables rules go into the bench's pod
# namespaces only. Writes $SM_BUILD/bench/results.md (median of BENCH_REPS
# repetitions, min-max, ratio to the scenario's baseline), raw.tsv (every
# sample), summary.tsv and one chart per metric (*.png, gnuplot).
#
# Environment: SM_BUILD (build dir, default build), QUICK=1 (fewer
# iterations, < 60 s), BENCH_SCENARIOS (default "1 2 3 4 5 6"), BENCH_REPS,
# BENCH_L7_SOCKMESH=0 (leaves the sockmesh L7 proxy out of scenarios 2 and 6),
# S6_RATE (scenario 6's open-loop rate, default 5000 req/s), S6_HOLD
# (streams held open, default "1000 4000"), S6_HOLD_PER_CONN (default 100),
# BENCH_KEEP_TMP=1 (keep the agent logs and configs in /tmp/sm-bench.*),
# S6_CALLGRIND=N (scenario 6: only the sockmesh agent, under callgrind, its
# instructions per request over N h2load requests), S6_PERF=N (the same
# under perf record -g, with syscall counts; bench/h2.sh), S2_CALLGRIND=SECS
# (scenario 2's closed loop for SECS against the agent under callgrind).
set -uo pipefail

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
: "${SM_BUILD:=build}"
[[ "$SM_BUILD" = /* ]] || SM_BUILD=$ROOT/$SM_BUILD
BENCH_OUT=$SM_BUILD/bench
BENCH_TOOL=$SM_BUILD/tools/sm-bench
BENCH_HTTP=$SM_BUILD/tools/sm-bench-http
BENCH_H2=$SM_BUILD/tools/sm-bench-h2

# shellcheck disable=SC1091
. "$ROOT/scripts/lib/node.sh"
# shellcheck disable=SC1091
. "$BENCH_DIR/lib.sh"
# shellcheck disable=SC1091
. "$BENCH_DIR/contenders.sh"
# shellcheck disable=SC1091
. "$BENCH_DIR/scenarios.sh"
# shellcheck disable=SC1091
. "$BENCH_DIR/l7.sh"
# shellcheck disable=SC1091
. "$BENCH_DIR/h2.sh"

sm_require_root

if [ "${QUICK:-}" = 1 ]; then
	: "${BENCH_REPS:=3}"
	S1_ITERS=2000 S1_BYTES=$((64 << 20))
	S2_SECS=0.5 S2_RATE=1000 S6_REQS=5000 S6_RATE_SECS=2
	S3_SIZES="1 1000 10000" S3_COUNT=2000
	# a smaller node: one agent start at 100k endpoints takes ~9 s
	S4_SERVICES=3000 S4_EPS=10
else
	: "${BENCH_REPS:=5}"
	S1_ITERS=20000 S1_BYTES=$((512 << 20))
	S2_SECS=5 S2_RATE=1000 S6_REQS=100000 S6_RATE_SECS=5
	S3_SIZES="1 1000 10000" S3_COUNT=20000
	S4_SERVICES=10000 S4_EPS=10
fi
: "${S4_PER_FILE:=100}"	# services per policy file in scenario 4
: "${BENCH_SCENARIOS:=1 2 3 4 5 6}"
: "${S5_CHANGES:=$([ "${QUICK:-}" = 1 ] && echo 20 || echo 50)}"	# endpoint changes per rep (p50, p99)
: "${S5_REST_S:=5}"	# seconds of API traffic at rest

for f in "$SM_BUILD/sockmesh-agent" "$SM_BUILD/sockmeshctl" "$BENCH_TOOL" "$BENCH_HTTP" "$BENCH_H2"; do
	[ -x "$f" ] || { echo "bench: $f missing; run make bench" >&2; exit 1; }
done
for c in haproxy nginx iptables-nft iptables-legacy gnuplot taskset ss; do
	command -v "$c" >/dev/null || { echo "bench: $c missing; run make deps-bench" >&2; exit 1; }
done

mkdir -p "$BENCH_OUT"
rm -f "$BENCH_OUT"/raw.tsv "$BENCH_OUT"/labels.tsv "$BENCH_OUT"/failures.txt "$BENCH_OUT"/*.png
: >"$BENCH_OUT/raw.tsv"
BENCH_TMP=$(mktemp -d /tmp/sm-bench.XXXXXX)
# shellcheck disable=SC2016 # expanded when the trap runs
[ "${BENCH_KEEP_TMP:-0}" = 1 ] || sm_trap_add 'rm -rf -- "$BENCH_TMP"'

bench_versions() {
	echo "kernel          $(uname -r) ($(nproc) CPUs)"
	echo "sockmesh        $("$SM_BUILD/sockmesh-agent" --version 2>/dev/null || echo "agent from $SM_BUILD ($(sha256sum "$SM_BUILD/sockmesh-agent" | cut -c1-12))")"
	echo "haproxy         $(haproxy -v 2>&1 | head -1)"
	echo "nginx           $(nginx -v 2>&1)"
	echo "iptables-nft    $(iptables-nft -V 2>&1)"
	echo "iptables-legacy $(iptables-legacy -V 2>&1)"
	echo "gnuplot         $(gnuplot -V 2>&1)"
}
bench_versions | tee "$BENCH_OUT/versions.txt"
echo "reps $BENCH_REPS; scenarios $BENCH_SCENARIOS$([ "${QUICK:-}" = 1 ] && echo '; QUICK')" | tee -a "$BENCH_OUT/versions.txt"

sm_node_up smbench "$BENCH_NPODS" || exit 1
sm_trap_add 'bench_agent_down; c_proxies_down'

# A connect loop can outrun the accepting thread when both share a CPU: a
# deep accept queue keeps a full queue (dropped SYN, 1 s retransmit) out of
# the connect figures. The sysctls are per netns: the server pod's own.
sm_pod_exec "$POD_SERVER" sysctl -q -w net.core.somaxconn=65535 net.ipv4.tcp_max_syn_backlog=65535 || exit 1
bench_spawn "$POD_SERVER" "$BENCH_TOOL" serve \
	--listen "echo@0.0.0.0:$PORT_ECHO" --listen "sink@0.0.0.0:$PORT_SINK" \
	--listen "accept@0.0.0.0:$PORT_ACCEPT" \
	--listen "echo@unix:$BENCH_TMP/echo.sock" --listen "sink@unix:$BENCH_TMP/sink.sock" \
	>"$BENCH_TMP/server.log" 2>&1
BENCH_SERVER_PID=$SM_LAST_PID
bench_wait_listen "$POD_SERVER" "$PORT_ACCEPT" 5 || exit 1

for s in $BENCH_SCENARIOS; do
	case "$s" in
	1) s1_run ;;
	2) s2_run ;;
	3) s3_run ;;
	4) s4_run ;;
	5) s5_run ;;
	6) s6_run ;;
	*) echo "bench: no scenario $s" >&2 ;;
	esac
done

bench_log "report"
"$BENCH_DIR/report.sh" "$BENCH_OUT" || exit 1
bench_log "done: $BENCH_OUT/results.md"
[ ! -s "$BENCH_OUT/failures.txt" ] || { echo "bench: some contenders failed:" >&2; cat "$BENCH_OUT/failures.txt" >&2; exit 1; }
