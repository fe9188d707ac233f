#!/bin/bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Self-test of the "node with pods" topology and the test tools, without BPF
# or agent: pod-to-pod TCP by pod IP, an untranslated VIP dial fails fast
# with ENETUNREACH, a 4 MB checksum and the ordering stress pass over plain
# TCP, and teardown leaves no netns, cgroup or pin dir behind.

# shellcheck disable=SC1091
. "$(dirname "$0")/lib.sh"

e2e_require_root
for t in sm-server sm-client; do
	if [ ! -x "$E2E_TOOLS/$t" ]; then
		echo "FAIL $E2E_NAME: $E2E_TOOLS/$t missing (make tools, or set SM_BUILD)"
		exit 1
	fi
done
SRV=$E2E_TOOLS/sm-server
CLI=$E2E_TOOLS/sm-client
PREFIX=smtopo
NSP=$PREFIX${SM_NS_TAG:-}	# netns names carry SM_NS_TAG (scripts/lib/node.sh)

e2e_tmpdir
sm_node_up "$PREFIX" 3 || { echo "FAIL $E2E_NAME: sm_node_up"; exit 1; }
PREFIX=$SM_PREFIX	# with SM_NS_TAG appended
e2e_log "node up: mode $SM_NET_MODE, cgroup $SM_CGROUP, pins $SM_PIN"
cg=$SM_CGROUP pin=$SM_PIN ns=$SM_PREFIX	# PREFIX + SM_NS_TAG
ip2=$(sm_pod_ip 2) ip3=$(sm_pod_ip 3)

e2e_assert_eq "pod ips" "10.244.0.11 10.244.0.12 10.244.0.13" "${SM_POD_IPS[*]}"
e2e_assert_eq "netns exist" 4 "$(ip netns list | grep -cE "^$NSP-(node|pod[123])( |$)")"
e2e_assert_eq "pin dir" yes "$([ -d "$pin" ] && echo yes)"
e2e_assert_eq "pod route only the pod subnet" "10.244.0.0/24" \
	"$(sm_pod_exec 1 ip -4 route show | awk '{ print $1 }' | sort -u | tr '\n' ' ' | sed 's/ $//')"
# The process must sit in our cgroup while it runs inside the pod netns.
e2e_assert_eq "pod exec joins cgroup" "0::/${cg#"$(sm_cgroup2_root)"/}" \
	"$(sm_pod_exec 1 sh -c 'grep "^0::" /proc/self/cgroup')"
e2e_assert_eq "pod exec enters netns" "$NSP-pod1" "$(sm_pod_exec 1 ip netns identify)"

sm_pod_spawn 2 "$SRV" --port 8080 --id v2 >"$E2E_TMP/s2.out"
s2=$SM_LAST_PID
sm_pod_spawn 3 "$SRV" --port 8080 --id v3 >"$E2E_TMP/s3.out"
sm_pod_spawn 2 "$SRV" --port 9000 --mode sink >"$E2E_TMP/sink.out"
sm_pod_spawn 3 "$SRV" --port 9001 --mode order >"$E2E_TMP/order.out"
sm_pod_spawn 2 "$SRV" --port 9002 --mode echo >"$E2E_TMP/echo.out"
echo_pid=$SM_LAST_PID
for f in s2 s3 sink order echo; do
	e2e_wait_for_line "$E2E_TMP/$f.out" '^ready$' 20 || echo "  (server $f not ready)"
done

e2e_assert_eq "who pod2" "v2 5" "$(sm_pod_exec 1 "$CLI" who --addr "$ip2:8080" --count 5)"
e2e_assert_eq "who pod3" "v3 3" "$(sm_pod_exec 1 "$CLI" who --addr "$ip3:8080" --count 3)"
e2e_assert_eq "peer" "$ip3:8080" "$(sm_pod_exec 1 "$CLI" peer --addr "$ip3:8080")"
e2e_assert_eq "refused" "ERR ECONNREFUSED 2" \
	"$(sm_pod_exec 1 "$CLI" who --addr "$ip2:8081" --count 2)"
e2e_assert_eq "spawned server in cgroup" yes "$(grep -qx "$s2" "$cg/cgroup.procs" && echo yes)"

t0=$(date +%s%N)
out=$(sm_pod_exec 1 "$CLI" peer --addr 10.96.0.10:80 --timeout 5)
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
e2e_assert_eq "VIP without translation: no route" "ERR ENETUNREACH rc=3" "$out rc=$rc"
# (fast: well inside the 5 s connect timeout, with room for a loaded machine's process start)
e2e_assert_range "VIP fails fast (ms)" 0 4000 "$ms"

out=$(sm_pod_exec 1 "$CLI" bulk --addr "$ip2:9000" --bytes 4194304)
e2e_assert_match "bulk 4 MB checksum" '^bulk ok bytes 4194304 fnv [0-9a-f]{16} ' "$out"

out=$(sm_pod_exec 1 "$CLI" order --addr "$ip3:9001" --conns 200)
e2e_assert_eq "order 200 conns" "conns 200 ok 200 bad 0" "$(tail -n1 <<<"$out")"

out=$(sm_pod_exec 1 "$CLI" eagain --addr "$ip2:9002" --transfers 200 --bytes 2000 2>&1)
e2e_assert_match "eagain tool runs" '^transfers 200 eagain [0-9]+ bad 0$' "$out"
kill -USR1 "$echo_pid"
e2e_wait_for_line "$E2E_TMP/echo.out" '^stats ' 20
e2e_assert_match "echo server stats" '^stats conns 104 eagain [0-9]+ bad 0$' \
	"$(grep '^stats ' "$E2E_TMP/echo.out")"

# Hold: connections stay open until released; the server sees them.
sm_pod_spawn 1 "$CLI" who --addr "$ip3:8080" --count 3 --hold --hold-timeout 20 \
	>"$E2E_TMP/hold.out"
hold=$SM_LAST_PID
e2e_wait_for_line "$E2E_TMP/hold.out" '^done$' 20
e2e_assert_eq "hold lines" "conn 1 v3|conn 2 v3|conn 3 v3|done" \
	"$(paste -sd'|' "$E2E_TMP/hold.out")"
kill -TERM "$hold"
wait "$hold"
e2e_assert_eq "hold released with tally" "v3 3" "$(tail -n1 "$E2E_TMP/hold.out")"

sm_node_down
e2e_assert_eq "teardown netns" 0 "$(ip netns list | grep -cE "^$NSP-(node|pod[0-9]+)( |$)")"
e2e_assert_eq "teardown cgroup" gone "$([ -e "$cg" ] && echo present || echo gone)"
e2e_assert_eq "teardown pin dir" gone "$([ -e "$pin" ] && echo present || echo gone)"
e2e_assert_eq "teardown servers" gone "$(kill -0 "$s2" 2>/dev/null && echo alive || echo gone)"
sm_node_down
e2e_assert_eq "second teardown is a no-op" 0 "$?"

e2e_finish
