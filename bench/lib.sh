# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# shellcheck shell=bash disable=SC2034,SC2153 # state shared with run.sh
#
# lib.sh — helpers for bench/run.sh: placement (pinned / unpinned), the
# agent, user-space proxies, bounded waits and the raw results file.
# Sourced after scripts/lib/node.sh; the node must be up before any helper
# that runs something in a pod.
#
#   bench_log MSG...                  "[  12s] MSG" on stdout
#   bench_cpus MODE                   CPU list of a placement: pinned -> 0,
#                                     unpinned -> every CPU; scenario 2: load
#                                     (clients, backends) -> 0, proxy -> the last
#   bench_in POD CMD...               CMD in POD, or in the node netns for "node"
#   bench_place MODE PID...           move PID, its threads and its child
#                                     processes to MODE's CPUs
#   bench_client MODE POD CMD...      run CMD in POD (netns + cgroup) on MODE's CPUs
#   bench_spawn POD CMD...            long-running helper (server, proxy) in POD or node,
#                                     PID appended to BENCH_SPAWNED
#   bench_stop PID...                 TERM, wait (bounded), KILL; only PIDs we spawned
#   bench_wait_listen POD PORT SECS [PID]  0 once something listens on PORT in
#                                     POD; 1 at once if PID exits
#   bench_agent_up POLICY...          the agent on these files (copied to a fresh
#                                     policy dir), waits for the first applied policy
#   bench_agent_down                  SIGTERM (detach, unpin) and wait
#   bench_applied_line N SECS         the Nth "policy generation ... applied" log line
#   bench_field LINE KEY              the word after KEY in LINE
#   bench_record SCEN METRIC GROUP CONTENDER VALUE   one sample into raw.tsv
#   bench_label SCEN CONTENDER LABEL  display name of a contender
#
# Globals the caller sets: BENCH_TMP, BENCH_OUT, SM_BUILD, BENCH_TOOL.

BENCH_T0=$SECONDS
BENCH_NCPU=$(nproc)
declare -ga BENCH_SPAWNED=()
declare -ga BENCH_AGENT_ARGS=()	# extra sockmesh-agent flags for bench_agent_up
declare -ga BENCH_AGENT_SRC=()	# replaces --policy DIR (e.g. --kubeconfig FILE)
declare -ga BENCH_AGENT_TARGET=()	# replaces --cgroup SM_CGROUP (e.g. --kubepods-cgroup DIR)
BENCH_AGENT_PID=
BENCH_AGENT_LOG=
BENCH_AGENT_N=0

bench_log() {
	printf '[%4ds] %s\n' "$((SECONDS - BENCH_T0))" "$*"
}

bench_cpus() {
	case "$1" in
	pinned | load) echo 0 ;;
	unpinned) echo "0-$((BENCH_NCPU - 1))" ;;
	proxy) echo "$((BENCH_NCPU - 1))" ;;
	*) echo "bench_cpus: bad mode $1" >&2; return 1 ;;
	esac
}

# Child processes are found through /proc/PID/task/*/children (nginx's
# workers); taskset -a covers every thread of each.
bench_place() {
	local cpus pid
	local -a todo
	cpus=$(bench_cpus "$1") || return 1
	shift
	todo=("$@")
	while [ ${#todo[@]} -gt 0 ]; do
		pid=${todo[0]}
		todo=("${todo[@]:1}")
		[ -d "/proc/$pid" ] || continue
		taskset -a -p -c "$cpus" "$pid" >/dev/null 2>&1 || true
		# shellcheck disable=SC2207 # a list of PIDs
		todo+=($(cat /proc/"$pid"/task/*/children 2>/dev/null))
	done
	return 0
}

bench_client() {
	local cpus pod=$2
	cpus=$(bench_cpus "$1") || return 1
	shift 2
	sm_pod_exec "$pod" taskset -c "$cpus" "$@"
}

# POD "node": the node netns (outside the mesh cgroup).
bench_in() {
	local pod=$1
	shift
	if [ "$pod" = node ]; then sm_node_exec "$@"; else sm_pod_exec "$pod" "$@"; fi
}

bench_spawn() {
	local pod=$1
	shift
	if [ "$pod" = node ]; then sm_node_spawn "$@"; else sm_pod_spawn "$pod" "$@"; fi
	BENCH_SPAWNED+=("$SM_LAST_PID")
}

bench_stop() {
	local pid i alive
	for pid in "$@"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for ((i = 0; i < 50; i++)); do
		alive=0
		for pid in "$@"; do
			kill -0 "$pid" 2>/dev/null && alive=1
		done
		[ "$alive" = 0 ] && break
		sleep 0.1
	done
	for pid in "$@"; do
		kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	return 0
}

bench_wait_listen() {
	local pod=$1 port=$2 secs=$3 pid=${4:-} i
	for ((i = 0; i < secs * 20; i++)); do
		[ -n "$(bench_in "$pod" ss -Hltn "sport = :$port" 2>/dev/null)" ] && return 0
		if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
			echo "bench: the process that should listen on port $port in pod $pod exited" >&2
			return 1
		fi
		sleep 0.05
	done
	echo "bench: nothing listens on port $port in pod $pod after ${secs}s" >&2
	return 1
}

bench_ctl() {
	"$SM_BUILD/sockmeshctl" --admin-socket "$BENCH_TMP/admin.sock" --pin-path "$SM_PIN" "$@"
}

bench_agent_up() {
	local f i
	[ -z "$BENCH_AGENT_PID" ] || bench_agent_down
	BENCH_AGENT_N=$((BENCH_AGENT_N + 1))
	BENCH_POLICY_DIR=$BENCH_TMP/policy-$BENCH_AGENT_N
	BENCH_AGENT_LOG=$BENCH_TMP/agent-$BENCH_AGENT_N.log
	mkdir -p "$BENCH_POLICY_DIR"
	for f in "$@"; do cp "$f" "$BENCH_POLICY_DIR/"; done
	local src=(--policy "$BENCH_POLICY_DIR")
	[ "${#BENCH_AGENT_SRC[@]}" -eq 0 ] || src=("${BENCH_AGENT_SRC[@]}")
	local target=(--cgroup "$SM_CGROUP")
	[ "${#BENCH_AGENT_TARGET[@]}" -eq 0 ] || target=("${BENCH_AGENT_TARGET[@]}")
	sm_spawn "$SM_BUILD/sockmesh-agent" "${target[@]}" "${src[@]}" \
		--pin-path "$SM_PIN" --admin-socket "$BENCH_TMP/admin.sock" \
		"${BENCH_AGENT_ARGS[@]}" >"$BENCH_AGENT_LOG" 2>&1
	BENCH_AGENT_PID=$SM_LAST_PID
	# the admin socket answers once programs are attached and the policy applied
	for ((i = 0; i < 600; i++)); do
		if bench_ctl status -o json 2>/dev/null | grep -q '"alive": *true'; then
			return 0
		fi
		kill -0 "$BENCH_AGENT_PID" 2>/dev/null || break
		sleep 0.05
	done
	echo "bench: the agent did not come up; log:" >&2
	sed 's/^/  | /' "$BENCH_AGENT_LOG" >&2
	bench_agent_down
	return 1
}

bench_agent_down() {
	[ -n "$BENCH_AGENT_PID" ] || return 0
	bench_stop "$BENCH_AGENT_PID"
	BENCH_AGENT_PID=
}

bench_applied_line() {
	local n=$1 secs=$2 i line
	for ((i = 0; i < secs * 20; i++)); do
		line=$(grep 'policy generation .* applied:' "$BENCH_AGENT_LOG" | sed -n "${n}p")
		if [ -n "$line" ]; then
			echo "$line"
			return 0
		fi
		sleep 0.05
	done
	return 1
}

bench_field() {
	awk -v k="$2" '{ for (i = 1; i < NF; i++) if ($i == k) { print $(i + 1); exit } }' <<<"$1"
}

bench_record() {
	printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$BENCH_OUT/raw.tsv"
}

bench_label() {
	printf '%s\t%s\t%s\n' "$@" >>"$BENCH_OUT/labels.tsv"
}

# bench_callgrind_window PID CMD...: PID runs under callgrind (the agent with
# S2_CALLGRIND / S6_CALLGRIND): its counters are zeroed, CMD runs (its
# output in BENCH_CG_OUT), the counters are dumped; BENCH_CG_IR = the
# instructions all of PID's threads ran meanwhile. The dump is kept as
# $BENCH_OUT/callgrind.out (callgrind_annotate).
bench_callgrind_window() {
	local pid=$1 f
	shift
	BENCH_CG_IR=
	callgrind_control -z "$pid" >/dev/null || return 1
	BENCH_CG_OUT=$("$@" 2>&1)
	rm -f "$BENCH_TMP/callgrind.$pid".*
	callgrind_control -d "$pid" >/dev/null || return 1
	f=$(ls -t "$BENCH_TMP/callgrind.$pid".* 2>/dev/null | head -1)
	BENCH_CG_IR=$(sed -nE 's/^(summary|totals): ([0-9]+).*/\2/p' "$f" 2>/dev/null | head -1)
	if [ -z "$BENCH_CG_IR" ]; then
		bench_fail "callgrind: no totals in ${f:-no dump}"
		return 1
	fi
	cp "$f" "$BENCH_OUT/callgrind.out"
}
