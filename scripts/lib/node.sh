# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# shellcheck shell=bash disable=SC2034 # state is read by the sourcing script
#
# node.sh — a throw-away "node with pods" for the demo, tests and benchmarks.
# Source it from bash, then:
#
#   sm_node_up PREFIX NPODS    netns PREFIX-node + PREFIX-pod1..N, a private
#                              cgroup v2 child and bpffs pin dir; installs the
#                              teardown trap (EXIT INT TERM)
#   sm_pod_exec N CMD...       run CMD in pod N (its netns and the cgroup)
#   sm_pod_spawn N CMD...      same, in the background; PID kept for teardown
#   sm_pod_cgroup N [DIR]      later sm_pod_exec/spawn of pod N join cgroup DIR
#                              (below SM_CGROUP, made if missing: a pod's own
#                              cgroup, as the kubelet makes one per pod) instead
#                              of SM_CGROUP; without DIR, back to SM_CGROUP
#   sm_node_exec CMD...        run CMD in the node netns (not in the cgroup)
#   sm_node_spawn CMD...       same, in the background; PID kept for teardown
#   sm_spawn CMD...            background in the caller's namespaces (e.g. the
#                              agent); PID kept for teardown
#   sm_pod_ip N                print pod N's address
#   sm_node_down               tear everything down; idempotent
#   sm_trap_add CMD            run CMD at EXIT/INT/TERM (last added runs first;
#                              an EXIT trap set before is kept and runs last)
#
# Exported state: SM_PREFIX SM_NPODS SM_CGROUP SM_PIN SM_NODE_NS SM_NODE_IP
# SM_POD_SUBNET SM_NET_MODE (bridge|routed), arrays SM_POD_IPS[1..N],
# SM_POD_NS[1..N], SM_POD_CG[1..N] (set by sm_pod_cgroup), SM_PIDS;
# SM_LAST_PID is the PID of the last *_spawn.
#
# Topology: every pod has eth0 (veth) with 10.244.0.(10+N)/24 and no default
# route, so a dial to an untranslated VIP fails with ENETUNREACH instead of
# leaving the machine. The node netns holds the veth peers on bridge br0
# (10.244.0.1/24); without the bridge driver (or with SM_NODE_ROUTED=1) it
# falls back to routed /32s with proxy ARP.
#
# Only what this file created is ever touched: names carry PREFIX and $$,
# netns that already exist make sm_node_up fail, and teardown kills by PID
# (our spawned children, and the processes inside our own cgroup).

SM_POD_SUBNET=10.244.0.0/24
SM_NODE_IP=10.244.0.1
SM_BPFFS=/sys/fs/bpf
: "${SM_KILL_TIMEOUT:=3}"	# seconds between SIGTERM and SIGKILL

declare -ga SM_PIDS=() SM_POD_IPS=() SM_POD_NS=() SM_POD_CG=() _SM_NETNS=() _SM_TRAP_CMDS=()
_SM_TRAP_INSTALLED=0
_SM_UP=0

_sm_err() { echo "node.sh: $*" >&2; }

# Not root: under CI=true this is a failure, elsewhere a skip (exit 77).
sm_require_root() {
	[ "$(id -u)" = 0 ] && return 0
	if [ "${CI:-}" = true ]; then
		echo "FAIL ${0##*/}: needs root (CI=true)" >&2
		exit 1
	fi
	echo "SKIP ${0##*/}: needs root"
	exit 77
}

# Runs the registered commands last-in first-out, once.
_sm_trap_run() {
	local rc=$? i
	local -a cmds=("${_SM_TRAP_CMDS[@]}")

	_SM_TRAP_CMDS=()
	for ((i = ${#cmds[@]} - 1; i >= 0; i--)); do
		eval "${cmds[i]}" || true
	done
	return "$rc"
}

sm_trap_add() {
	local cmd="$*" prev

	if [ "$_SM_TRAP_INSTALLED" = 0 ]; then
		prev=$(trap -p EXIT)
		if [ -n "$prev" ]; then
			eval "set -- $prev"
			_SM_TRAP_CMDS+=("$3")
		fi
		trap _sm_trap_run EXIT
		# exit runs the EXIT trap, which does the cleanup once.
		trap 'exit 130' INT
		trap 'exit 143' TERM
		_SM_TRAP_INSTALLED=1
	fi
	_SM_TRAP_CMDS+=("$cmd")
}

sm_cgroup2_root() {
	awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts
}

sm_pod_ip() {
	echo "10.244.0.$((10 + $1))"
}

_sm_check_pod() {
	if [ "$_SM_UP" != 1 ]; then
		_sm_err "node is not up"
		return 1
	fi
	case "$1" in
	'' | *[!0-9]*) _sm_err "bad pod number '$1'"; return 1 ;;
	esac
	if [ "$1" -lt 1 ] || [ "$1" -gt "$SM_NPODS" ]; then
		_sm_err "no pod $1 (have 1..$SM_NPODS)"
		return 1
	fi
}

# The process joins the cgroup before it enters the netns: `ip netns exec`
# remounts /sys, where the cgroup would vanish; nsenter --net does not.
# shellcheck disable=SC2016 # expanded by the inner sh
_SM_POD_SH='echo $$ > "$1/cgroup.procs" || exit 125; ns=$2; shift 2; exec nsenter --net="$ns" "$@"'

sm_pod_cgroup() {
	_sm_check_pod "$1" || return 125
	case ${2:-} in
	'') SM_POD_CG[$1]= ; return 0 ;;
	"$SM_CGROUP"/*) ;;
	*) _sm_err "pod cgroup $2 is not below $SM_CGROUP"; return 125 ;;
	esac
	case /$2/ in
	*/../*) _sm_err "pod cgroup $2: no '..'"; return 125 ;;
	esac
	mkdir -p -- "$2" || return 125
	SM_POD_CG[$1]=$2
}

sm_pod_exec() {
	_sm_check_pod "$1" || return 125
	local n=$1
	shift
	sh -c "$_SM_POD_SH" sm-pod "${SM_POD_CG[n]:-$SM_CGROUP}" "/run/netns/${SM_POD_NS[n]}" "$@"
}

# Backgrounded directly (not through sm_pod_exec) so that $! is the PID that
# becomes CMD: sh execs nsenter, which execs CMD.
sm_pod_spawn() {
	_sm_check_pod "$1" || return 125
	local n=$1
	shift
	sh -c "$_SM_POD_SH" sm-pod "${SM_POD_CG[n]:-$SM_CGROUP}" "/run/netns/${SM_POD_NS[n]}" "$@" &
	SM_LAST_PID=$!
	SM_PIDS+=("$SM_LAST_PID")
}

sm_node_exec() {
	[ "$_SM_UP" = 1 ] || { _sm_err "node is not up"; return 125; }
	nsenter --net="/run/netns/$SM_NODE_NS" "$@"
}

sm_node_spawn() {
	[ "$_SM_UP" = 1 ] || { _sm_err "node is not up"; return 125; }
	nsenter --net="/run/netns/$SM_NODE_NS" "$@" &
	SM_LAST_PID=$!
	SM_PIDS+=("$SM_LAST_PID")
}

sm_spawn() {
	"$@" &
	SM_LAST_PID=$!
	SM_PIDS+=("$SM_LAST_PID")
}

_sm_netns_add() {
	if [ -e "/run/netns/$1" ]; then
		_sm_err "netns $1 already exists and is not ours; pick another prefix"
		return 1
	fi
	ip netns add "$1" || return 1
	_SM_NETNS+=("$1")
	ip -n "$1" link set lo up
}

_sm_sysctl() {
	local ns=$1
	shift
	nsenter --net="/run/netns/$ns" sysctl -q -w "$@" >/dev/null
}

_sm_node_setup() {
	local prefix=$1 npods=$2 cg2 i ip pod node

	if ! command -v ip >/dev/null || ! command -v nsenter >/dev/null; then
		_sm_err "needs ip (iproute2) and nsenter (util-linux)"
		return 1
	fi
	cg2=$(sm_cgroup2_root)
	if [ -z "$cg2" ]; then
		_sm_err "no cgroup v2 mount in /proc/mounts (cgroup v1 only?)"
		return 1
	fi
	SM_CGROUP="$cg2/sockmesh-$prefix-$$"
	mkdir "$SM_CGROUP" || return 1
	_SM_OWN_CGROUP=$SM_CGROUP

	if ! awk -v p="$SM_BPFFS" '$2 == p && $3 == "bpf" { f = 1 } END { exit !f }' /proc/mounts; then
		mount -t bpf bpf "$SM_BPFFS" || return 1
	fi
	SM_PIN="$SM_BPFFS/sockmesh-$prefix-$$"
	mkdir "$SM_PIN" || return 1
	_SM_OWN_PIN=$SM_PIN

	node="$prefix-node"
	SM_NODE_NS=$node
	_sm_netns_add "$node" || return 1
	SM_NET_MODE=bridge
	if [ "${SM_NODE_ROUTED:-0}" = 1 ] ||
	   ! ip -n "$node" link add br0 type bridge 2>/dev/null; then
		SM_NET_MODE=routed
		_sm_sysctl "$node" net.ipv4.ip_forward=1 || return 1
	else
		ip -n "$node" addr add "$SM_NODE_IP/24" dev br0 &&
		ip -n "$node" link set br0 up || return 1
	fi

	for ((i = 1; i <= npods; i++)); do
		pod="$prefix-pod$i"
		ip=$(sm_pod_ip "$i")
		_sm_netns_add "$pod" || return 1
		SM_POD_NS[i]=$pod
		SM_POD_IPS[i]=$ip
		ip -n "$node" link add "veth$i" type veth peer name eth0 netns "$pod" || return 1
		if [ "$SM_NET_MODE" = bridge ]; then
			ip -n "$node" link set "veth$i" master br0 up &&
			ip -n "$pod" addr add "$ip/24" dev eth0 &&
			ip -n "$pod" link set eth0 up || return 1
		else
			_sm_sysctl "$node" "net.ipv4.conf.veth$i.proxy_arp=1" &&
			ip -n "$node" addr add "$SM_NODE_IP/32" dev "veth$i" &&
			ip -n "$node" link set "veth$i" up &&
			ip -n "$node" route add "$ip/32" dev "veth$i" &&
			ip -n "$pod" addr add "$ip/32" dev eth0 &&
			ip -n "$pod" link set eth0 up &&
			ip -n "$pod" route add "$SM_POD_SUBNET" dev eth0 src "$ip" || return 1
		fi
		# Connect loops in tests and benches must not run out of ports.
		_sm_sysctl "$pod" net.ipv4.tcp_tw_reuse=1 \
			"net.ipv4.ip_local_port_range=10000 65000" || return 1
	done
}

sm_node_up() {
	# SM_NS_TAG (a-z0-9, optional) is appended to the prefix so that two
	# checkouts can run the same test at once without netns name clashes.
	local prefix=$1${SM_NS_TAG:-} npods=$2

	sm_require_root
	if [ "$_SM_UP" = 1 ]; then
		_sm_err "a node is already up ($SM_PREFIX)"
		return 1
	fi
	if ! [[ "$prefix" =~ ^[a-z][a-z0-9-]{0,19}$ ]] || ! [[ "$npods" =~ ^[1-9][0-9]?$ ]]; then
		_sm_err "usage: sm_node_up PREFIX(a-z0-9-, <=20) NPODS(1..99)"
		return 1
	fi
	SM_PREFIX=$prefix
	SM_NPODS=$npods
	SM_PIDS=() SM_POD_IPS=() SM_POD_NS=() SM_POD_CG=() _SM_NETNS=()
	_SM_UP=1
	sm_trap_add sm_node_down
	if ! _sm_node_setup "$prefix" "$npods"; then
		_sm_err "setup failed; tearing down"
		sm_node_down
		return 1
	fi
	export SM_PREFIX SM_NPODS SM_CGROUP SM_PIN SM_NODE_NS SM_NODE_IP SM_POD_SUBNET SM_NET_MODE
}

_sm_alive() {
	local st

	[ -r "/proc/$1/stat" ] || return 1
	{ read -r st < "/proc/$1/stat"; } 2>/dev/null || return 1
	st=${st##*) }
	[ "${st%% *}" != Z ]
}

# Our spawned children: TERM, then KILL after SM_KILL_TIMEOUT, then reap.
# A PID whose parent is no longer this shell was reaped and maybe reused:
# it is not ours any more and is left alone.
_sm_kill_spawned() {
	local pid ppid deadline alive
	local -a ours=()

	for pid in "${SM_PIDS[@]}"; do
		ppid=$(awk '{ sub(/.*\) /, ""); print $2 }' "/proc/$pid/stat" 2>/dev/null || true)
		[ "$ppid" = "$$" ] && ours+=("$pid")
	done
	SM_PIDS=()
	[ ${#ours[@]} -eq 0 ] && return 0
	kill -TERM "${ours[@]}" 2>/dev/null || true
	deadline=$((SECONDS + SM_KILL_TIMEOUT))
	while :; do
		alive=()
		for pid in "${ours[@]}"; do
			_sm_alive "$pid" && alive+=("$pid")
		done
		[ ${#alive[@]} -eq 0 ] && break
		if [ "$SECONDS" -ge "$deadline" ]; then
			kill -KILL "${alive[@]}" 2>/dev/null || true
			break
		fi
		sleep 0.05
	done
	for pid in "${ours[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	return 0
}

# Everything left inside our cgroup (and any child cgroup someone made in
# it) was started by us; kill by PID, bounded.
_sm_cgroup_remove() {
	local cg=$1 pid i f left

	[ -d "$cg" ] || return 0
	for ((i = 0; i < 100; i++)); do
		left=0
		while IFS= read -r f; do
			while read -r pid; do
				[ "$pid" = "$$" ] && continue
				left=1
				kill -KILL "$pid" 2>/dev/null || true
			done < "$f"
		done < <(find "$cg" -name cgroup.procs 2>/dev/null)
		[ "$left" = 0 ] && break
		sleep 0.05
	done
	for ((i = 0; i < 100; i++)); do
		find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null || true
		[ -d "$cg" ] || return 0
		sleep 0.05
	done
	_sm_err "could not remove cgroup $cg"
	return 1
}

sm_node_down() {
	local rc=0 i

	[ "$_SM_UP" = 1 ] || return 0
	_sm_kill_spawned

	if [ -n "${_SM_OWN_CGROUP:-}" ] && [[ "$_SM_OWN_CGROUP" == */sockmesh-"$SM_PREFIX"-$$ ]]; then
		_sm_cgroup_remove "$_SM_OWN_CGROUP" || rc=1
	fi
	_SM_OWN_CGROUP=

	# Removing the pins releases pinned links and maps (attachments go with them).
	if [ -n "${_SM_OWN_PIN:-}" ] && [[ "$_SM_OWN_PIN" == "$SM_BPFFS"/sockmesh-"$SM_PREFIX"-$$ ]]; then
		rm -rf -- "$_SM_OWN_PIN" || rc=1
	fi
	_SM_OWN_PIN=

	# Pods first, node last: each veth pair goes with the pod's netns.
	for ((i = ${#_SM_NETNS[@]} - 1; i >= 0; i--)); do
		ip netns del "${_SM_NETNS[i]}" 2>/dev/null || {
			_sm_err "could not delete netns ${_SM_NETNS[i]}"
			rc=1
		}
	done
	_SM_NETNS=()
	_SM_UP=0
	return "$rc"
}
