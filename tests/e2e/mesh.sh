# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# shellcheck shell=bash
#
# Sourced by e2e tests that run the real agent: a node with pods (lib.sh,
# scripts/lib/node.sh), a policy directory, the agent attached to the
# node's private cgroup, and sockmeshctl pointed at it.
#
#   mesh_up PREFIX NPODS POLICY...  node + policy dir + agent; waits for /ready
#   mesh_agent_start [ARGS...]      (re)start the agent (AGENT_PID); MESH_AGENT_L7=1
#                                   adds the L7 proxy in the node namespace; the
#                                   array MESH_AGENT_ARGS is added to every start;
#                                   MESH_KUBEPODS=DIR attaches per mesh pod under DIR
#                                   (--kubepods-cgroup) instead of to SM_CGROUP;
#                                   the array MESH_AGENT_SRC replaces --policy DIR
#                                   (e.g. --kubeconfig FILE)
#   mesh_agent_stop [SIGNAL]        stop it and wait
#   ctl ARGS...                     sockmeshctl for this node
#   mesh_servers PORT MODE POD...   sm-server in pods (id = pod's version name;
#                                   extra args in MESH_SRV_ARGS; PID in srv-POD-PORT.pid)
#   mesh_server_stats POD PORT      the server's "stats ..." line (SIGUSR1)
#   mesh_counter NAME               a counter from `sockmeshctl status -o json`
#   who POD VIP:PORT COUNT          connects from POD: "v1=N v2=N ERR=N" (sorted names)
#   scrape                          the agent's /metrics
#   msum TEXT METRIC LABEL="v"...   sum of METRIC's samples carrying every label
#   scrape_until N METRIC LABEL...  scrape (into M) until that sum is N (20 s)
#   mesh_plant_stale N PORT         what a crashed agent could leave in the pinned
#                                   maps: N L7 service ports 10.96.254.i:PORT, each
#                                   with its cluster, set, route, backend and name
#   mesh_stale_left                 how many of those the maps still hold
#   mesh_sweep_probe ROUNDS CMD...  until the agent says its sweep is done (and one
#                                   round more): GET /healthz and CMD, a line each
#   mesh_sweep_assert PROBE WHAT    asserts on that output (every round answered:
#                                   WHAT names CMD's success), the stale entries gone

AGENT=${SM_AGENT:-$SM_BUILD/sockmesh-agent}	# SM_AGENT: e.g. the ASan build
[ -n "${MESH_AGENT_ARGS+x}" ] || MESH_AGENT_ARGS=()
CTL=$SM_BUILD/sockmeshctl
SRV=$E2E_TOOLS/sm-server
CLI=$E2E_TOOLS/sm-client

MESH_AGENT_ARGS=()

ctl() {
	"$CTL" --admin-socket "$E2E_TMP/admin.sock" --pin-path "$SM_PIN" "$@"
}

mesh_agent_start() {
	local l7=()
	# L7 tests: the agent's proxy listens on the node side of the pod bridge
	if [ -n "${MESH_AGENT_L7:-}" ]; then
		l7=(--netns "/run/netns/$SM_NODE_NS" --l7-listen "$SM_NODE_IP:15001"
		    --gateway-bind "$SM_NODE_IP" --workers 2)
	fi
	local target=(--cgroup "$SM_CGROUP")
	[ -n "${MESH_KUBEPODS:-}" ] && target=(--kubepods-cgroup "$MESH_KUBEPODS")
	local src=(--policy "$E2E_TMP/policy")
	[ -n "${MESH_AGENT_SRC+x}" ] && src=("${MESH_AGENT_SRC[@]}")
	sm_spawn "$AGENT" "${target[@]}" "${src[@]}" \
		--pin-path "$SM_PIN" --admin-socket "$E2E_TMP/admin.sock" "${l7[@]}" \
		"${MESH_AGENT_ARGS[@]}" "$@" \
		>>"$E2E_TMP/agent.log" 2>&1
	AGENT_PID=$SM_LAST_PID
	local i
	# up to 30 s: loading and verifying the programs is the slow part
	for i in $(seq 1 300); do
		if ctl status >/dev/null 2>&1 && [ "$(ctl status -o json | jq -r .alive)" = true ]; then
			return 0
		fi
		kill -0 "$AGENT_PID" 2>/dev/null || break
		sleep 0.1
	done
	echo "agent did not come up; log:"; sed 's/^/  | /' "$E2E_TMP/agent.log"
	return 1
}

mesh_agent_stop() {
	local sig=${1:-TERM} i
	[ -n "${AGENT_PID:-}" ] || return 0
	kill "-$sig" "$AGENT_PID" 2>/dev/null
	for i in $(seq 1 200); do
		kill -0 "$AGENT_PID" 2>/dev/null || break
		sleep 0.1
	done
	wait "$AGENT_PID" 2>/dev/null
	AGENT_PID=
}

mesh_up() {
	local prefix=$1 npods=$2 f
	shift 2
	e2e_tmpdir || return 1
	mkdir -p "$E2E_TMP/policy"
	for f in "$@"; do cp "$f" "$E2E_TMP/policy/"; done
	sm_node_up "$prefix" "$npods" || return 1
	mesh_agent_start
}

MESH_SRV_ARGS=()
mesh_servers() {
	local port=$1 mode=$2 pod out
	shift 2
	for pod in "$@"; do
		out=$E2E_TMP/srv-$pod-$port.out
		sm_pod_spawn "$pod" "$SRV" --port "$port" --id "v$((pod - 1))" --mode "$mode" "${MESH_SRV_ARGS[@]}" >"$out" 2>&1
		echo "$SM_LAST_PID" >"$E2E_TMP/srv-$pod-$port.pid"
		e2e_wait_for_line "$out" '^ready' 20 || { echo "server in pod $pod did not start"; cat "$out"; return 1; }
	done
}

mesh_counter() {
	ctl status -o json | jq -r ".counters.$1"
}

mesh_server_stats() {
	local f=$E2E_TMP/srv-$1-$2.out n
	n=$(grep -c '^stats' "$f")
	kill -USR1 "$(cat "$E2E_TMP/srv-$1-$2.pid")"
	e2e_wait_until 20 bash -c "[ \$(grep -c '^stats' '$f') -gt $n ]"
	grep '^stats' "$f" | tail -1
}

who() {
	sm_pod_exec "$1" "$CLI" who --addr "$2" --count "$3" |
		awk '{ if ($1 == "ERR") e += $3; else printf "%s=%s ", $1, $2 } END { printf "ERR=%d\n", e }'
}

scrape() { curl -sS -m 5 --unix-socket "$E2E_TMP/admin.sock" http://localhost/metrics; }
# msum TEXT METRIC LABEL="v"... -> sum of the samples of METRIC carrying every given label
msum() {
	local text=$1 metric=$2
	shift 2
	awk -v m="$metric" -v want="$*" '
		BEGIN { n = split(want, w, " ") }
		/^#/ { next }
		{ name = $1; sub(/\{.*/, "", name); if (name != m) next
		  for (i = 1; i <= n; i++) if (index($1, w[i]) == 0) next
		  s += $NF }
		END { printf "%d\n", s }' <<<"$text"
}
# scrape_until N METRIC LABEL="v"...: scrape until the sum is N (20 s; the proxy
# accounts a request just after its reply, the kernel a close at TCP_CLOSE)
scrape_until() {
	local want=$1 _
	shift
	for _ in $(seq 1 200); do
		M=$(scrape)
		[ "$(msum "$M" "$@")" = "$want" ] && return 0
		sleep 0.1
	done
	return 1
}

# hex bytes of V, N bytes little-endian
_mesh_le() {
	local v=$1 n=$2 k
	for ((k = 0; k < n; k++)); do printf ' %02x' $(((v >> (8 * k)) & 255)); done
}
_mesh_zeros() { local k; for ((k = 0; k < $1; k++)); do printf ' 00'; done; }
_mesh_vsize() { bpftool -j map show pinned "$SM_PIN/maps/$1" | jq .bytes_value; }

# Stale entries (ids 0x7ffe0000 + i, backends 10.253.0.i:9999), nobody's:
# the sweep of the agent that adopts the maps must delete every one and
# nothing else.
mesh_plant_stale() {
	local n=$1 port=$2 f=$E2E_TMP/stale.batch i id m
	local -A vs
	for m in sm_cluster sm_bset sm_route sm_backend sm_meta; do vs[$m]=$(_mesh_vsize $m); done
	: >"$f"
	for ((i = 1; i <= n; i++)); do
		id=$((0x7ffe0000 + i))
		m=$SM_PIN/maps
		echo "map update pinned $m/sm_svc key hex 0a 60 fe $(printf %02x "$i") $(printf '%02x %02x' $((port >> 8)) $((port & 255))) 06 00" \
			"value hex$(_mesh_le "$id" 8)$(_mesh_zeros 6) 01 00" >>"$f"
		echo "map update pinned $m/sm_cluster key hex$(_mesh_le "$id" 8) value hex$(_mesh_zeros "${vs[sm_cluster]}")" >>"$f"
		echo "map update pinned $m/sm_bset key hex$(_mesh_le "$id" 4)$(_mesh_zeros 4) value hex 0a fd 00 $(printf %02x "$i") 27 0f 00 00" >>"$f"
		echo "map update pinned $m/sm_route key hex$(_mesh_le "$id" 4)$(_mesh_zeros 4) value hex$(_mesh_zeros "${vs[sm_route]}")" >>"$f"
		echo "map update pinned $m/sm_backend key hex 0a fd 00 $(printf %02x "$i") 27 0f 00 00 value hex$(_mesh_zeros "${vs[sm_backend]}")" >>"$f"
		echo "map update pinned $m/sm_meta key hex 02 00 00 00 00 00 00 00$(_mesh_le "$id" 8) value hex$(_mesh_zeros "${vs[sm_meta]}")" >>"$f"
	done
	bpftool batch file "$f" >/dev/null
	MESH_STALE_N=$((6 * n))
}

mesh_stale_left() {
	local m re n=0 c
	local -A pat=(
		[sm_svc]='^0x0a 0x60 0xfe '
		[sm_cluster]='^0x.. 0x.. 0xfe 0x7f 0x00 0x00 0x00 0x00$'
		[sm_bset]='^0x0a 0xfd 0x00 '	# (by value: the adopting agent numbers its sets above these)
		[sm_route]='^0x.. 0x.. 0xfe 0x7f '	# (and an empty value: the adopting agent numbers its routes above these)
		[sm_backend]='^0x0a 0xfd 0x00 '
		[sm_meta]=' 0xfe 0x7f 0x00 0x00 0x00 0x00$'
	)
	for m in "${!pat[@]}"; do
		re=${pat[$m]}
		c=$(bpftool -j map dump pinned "$SM_PIN/maps/$m" |
			jq --arg re "$re" --arg m "$m" \
				'[.[] | select((if $m == "sm_bset" then .value else .key end) | join(" ") | test($re))
				 | select($m != "sm_route" or all(.value[]; . == "0x00"))] | length')
		n=$((n + c))
	done
	echo "$n"
}

# mesh_sweep_probe ROUNDS CMD...: "healthz CODE" and "probe RC STATE" per round
mesh_sweep_probe() {
	local rounds=$1 r state last=
	shift
	for ((r = 0; r < rounds; r++)); do
		state=$(ctl status -o json 2>/dev/null | jq -r '.sweep.state // "?"')
		echo "healthz $(curl -s -m 5 -o /dev/null -w '%{http_code}' --unix-socket "$E2E_TMP/admin.sock" http://x/healthz)"
		"$@" >/dev/null 2>&1
		echo "probe $? $state"
		[ -n "$last" ] && break
		[ "$state" = done ] && last=1
	done
}

mesh_sweep_assert() {
	local probe=$1 what=$2
	e2e_log "sweep state at each probe: $(awk '$1 == "probe" { printf "%s ", $3 }' <<<"$probe")"
	e2e_assert_eq "the sweep ran to its end while probed" done \
		"$(awk '$1 == "probe" { s = $3 } END { print s }' <<<"$probe")"
	e2e_assert_eq "every GET /healthz answered 200 meanwhile" "$(grep -c '^healthz' <<<"$probe")" \
		"$(grep -c '^healthz 200$' <<<"$probe")"
	e2e_assert_eq "every probe: $what" "$(grep -c '^probe' <<<"$probe")" "$(grep -c '^probe 0 ' <<<"$probe")"
	e2e_assert_eq "the stale entries are gone" 0 "$(mesh_stale_left)"
	e2e_assert_ge "/status: the sweep deleted them" "$MESH_STALE_N" "$(ctl status -o json | jq .sweep.deleted)"
}
