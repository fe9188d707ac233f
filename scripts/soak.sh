#!/bin/bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# sockmesh soak (`sudo make soak`, SOAK_S=seconds, default 120): mixed L4
# and L7 load through a throw-away node (scripts/lib/node.sh, the agent with
# its L7 proxy, tests/e2e/policies/faults.yaml) while
#   - an L7 backend behind retries is killed and restarted every FLAP_S s
#     (sm-http in pods 2-4 in turn; the L7 load goes to web-all, whose
#     VirtualService retries connect-failure, reset and 5xx on other hosts),
#   - the policy is rewritten every RELOAD_S s (alternating weights),
#   - the agent restarts once, half way (SIGTERM with --keep-on-exit, start:
#     it adopts the pinned data path).
# Every second it samples the agent's RSS and open fds. At the end:
#   soak load l4 sent N ok N failed N        (then "soak l4-fail REASON N")
#   soak load l7 sent N ok N failed N        (then "soak l7-fail REASON N")
#   soak l7-restart-window failed N          L7 failures in rounds that
#                                            overlapped the agent restart (the
#                                            proxy's listener is down then)
#   soak agent PID rss_kb FIRST LAST fds FIRST LAST   per agent process,
#                                            first sample after WARM_S s
#   soak maps before JSON / soak maps after JSON      map entries
#   soak sock_hash before N after N established_sockets N
#   soak events reloads N flaps N restarts N
#   soak verdict ok|FAIL: REASONS
# Exit 0 when: no L4 failure, no L7 failure outside the restart window,
# map entries and active counts back to baseline, RSS and fds flat per
# agent process (RSS within +RSS_TOL_KB, fds within +FD_TOL).
# The inner bash -c scripts expand their own arguments:
# shellcheck disable=SC2016
set -u
: "${SOAK_S:=120}"
: "${FLAP_S:=5}"
: "${RELOAD_S:=2}"
: "${WARM_S:=3}"
: "${RSS_TOL_KB:=8192}"
: "${FD_TOL:=32}"
case "$SOAK_S" in '' | *[!0-9]*) echo "soak: SOAK_S must be seconds" >&2; exit 2 ;; esac
[ "$SOAK_S" -ge 10 ] || { echo "soak: SOAK_S must be >= 10" >&2; exit 2; }
# shellcheck disable=SC2034 # read by tests/e2e/lib.sh
E2E_NAME=soak
# shellcheck disable=SC1091
. "$(dirname "$0")/../tests/e2e/lib.sh"
# shellcheck disable=SC1091
. "$E2E_ROOT/tests/e2e/mesh.sh"
sm_require_root
HTTP=$E2E_TOOLS/sm-http
HREQ=$E2E_TOOLS/sm-hreq
for t in "$AGENT" "$CTL" "$SRV" "$CLI" "$HTTP" "$HREQ"; do
	[ -x "$t" ] || { echo "soak: $t missing: run make first" >&2; exit 1; }
done
L4VIP=10.96.6.10:9080
L7VIP=10.96.6.30:80

# shellcheck disable=SC2034 # read by mesh_agent_start
MESH_AGENT_L7=1
mesh_up smsoak 4 "$E2E_ROOT/tests/e2e/policies/faults.yaml" || { echo "soak: mesh_up failed" >&2; exit 1; }
# the restart half way must keep the data path: run with --keep-on-exit
mesh_agent_stop
mesh_agent_start --keep-on-exit || exit 1
POL=$E2E_TMP/policy/faults.yaml
S=$E2E_TMP/soak
mkdir -p "$S"
mesh_servers 9080 id 2 3 4 || exit 1
http_start() {
	sm_pod_spawn "$1" "$HTTP" --port 8080 --id "v$(($1 - 1))" >"$S/http-$1.out" 2>&1
	echo "$SM_LAST_PID" >"$S/http-$1.pid"
	e2e_wait_for_line "$S/http-$1.out" '^ready' 5 || { echo "soak: sm-http in pod $1 did not start" >&2; exit 1; }
}
for p in 2 3 4; do http_start "$p"; done

now() { date +%s.%N; }
maps() { ctl status -o json | jq -c '.map_entries | del(.sm_sock_hash)'; }
sockhash() { ctl status -o json | jq '.map_entries.sm_sock_hash'; }
active_sum() { ctl backends -o json | jq '[.backends[].active] | add // 0'; }
maps_before=$(maps)
sh_before=$(sockhash)

# Load: rounds until the stop file exists; each L7 round is stamped with
# its start and end so failures can be put next to the restart window.
rm -f "$S/stop"
sm_pod_spawn 1 bash -c 'while [ ! -e "$1" ]; do "$2" rate --addr "$3" --count 200 --timeout 2; done' \
	l4load "$S/stop" "$CLI" "$L4VIP" >"$S/l4.log" 2>&1
l4_pid=$SM_LAST_PID
sm_pod_spawn 1 bash -c 'while [ ! -e "$1" ]; do t0=$(date +%s.%N)
	timeout 20 "$2" --addr "$3" --count 200 --conns 4 --timeout 5 >"$1.round" 2>&1; rc=$?
	sed "s/^/r /" "$1.round"; echo "round $t0 $(date +%s.%N) rc $rc"; done' \
	l7load "$S/stop" "$HREQ" "$L7VIP" >"$S/l7.log" 2>&1
l7_pid=$SM_LAST_PID

sample() { # sample ELAPSED: "ELAPSED PID RSS_KB FDS"
	local pid=$AGENT_PID rss fds
	[ -n "$pid" ] || return 0
	rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null) || return 0
	fds=$(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
	[ -n "$rss" ] && echo "$1 $pid $rss $fds" >>"$S/samples"
}

t_start=$SECONDS
reloads=0 flaps=0 restarts=0 flap_pod=2 restart_t0='' restart_t1='' started_at=0
next_reload=$RELOAD_S next_flap=$FLAP_S
: >"$S/samples"
while [ $((SECONDS - t_start)) -lt "$SOAK_S" ]; do
	el=$((SECONDS - t_start))
	sample "$el"
	if [ "$el" -ge "$next_reload" ]; then
		next_reload=$((el + RELOAD_S))
		w=$((reloads % 2 ? 50 : 70)); r=$(((100 - w) / 2))
		sed -e "0,/weight: [0-9]*/s//weight: $w/" -e "s/weight: 25\$/weight: $r/; s/weight: 15\$/weight: $r/" \
			"$POL" >"$POL.tmp" && mv "$POL.tmp" "$POL"
		reloads=$((reloads + 1))
	fi
	if [ "$el" -ge "$next_flap" ] && [ "$el" -lt $((SOAK_S - 2)) ]; then
		next_flap=$((el + FLAP_S))
		pid=$(cat "$S/http-$flap_pod.pid")
		{ kill -KILL "$pid"; wait "$pid"; } 2>/dev/null
		sleep 1
		http_start "$flap_pod"
		flaps=$((flaps + 1))
		flap_pod=$((flap_pod % 3 + 2))
	fi
	if [ "$restarts" = 0 ] && [ "$el" -ge $((SOAK_S / 2)) ]; then
		restart_t0=$(now)
		mesh_agent_stop TERM
		mesh_agent_start --keep-on-exit || { echo "soak: agent restart failed" >&2; exit 1; }
		restart_t1=$(now)
		restarts=1 started_at=$el
		adopted=$(ctl status -o json | jq .adopted)
	fi
	sleep 1
done
sample $((SECONDS - t_start))
touch "$S/stop"
e2e_wait_until 30 bash -c "! kill -0 $l4_pid 2>/dev/null && ! kill -0 $l7_pid 2>/dev/null"
wait "$l4_pid" "$l7_pid" 2>/dev/null

# grace deletions of a reload happen 1 s after it; connections are closed
e2e_wait_until 20 bash -c "[ \"\$($CTL --admin-socket $E2E_TMP/admin.sock status -o json | jq -c '.map_entries | del(.sm_sock_hash)')\" = '$maps_before' ]"
e2e_wait_until 20 bash -c "[ \"\$($CTL --admin-socket $E2E_TMP/admin.sock backends -o json | jq '[.backends[].active] | add // 0')\" = 0 ]"
maps_after=$(maps)
sh_after=$(sockhash)
# sm_sock_hash drops a socket when it closes: what stays must be a live
# socket (the proxy's idle upstream pool), never more than are established
live=$(sm_node_exec ss -Htn state established | wc -l)
for p in 1 2 3 4; do live=$((live + $(sm_pod_exec "$p" ss -Htn state established | wc -l))); done
active=$(active_sum)

fail=()
echo "soak: ${SOAK_S}s mixed L4 ($L4VIP) + L7 ($L7VIP, retries) load; agent restarted at ${started_at}s (adopted: ${adopted:-?})"
read -r l4_sent l4_fail < <(awk '$1 == "connects" { c += $2; f += $4 } END { printf "%d %d\n", c, f }' "$S/l4.log")
echo "soak load l4 sent $l4_sent ok $((l4_sent - l4_fail)) failed $l4_fail"
awk '$1 == "ERR" { n[$2] += $3 } END { for (k in n) print "soak l4-fail", k, n[k] }' "$S/l4.log" | sort
# An L7 round's failures: non-200 statuses, ERR lines, and any request a
# hung round (rc 124) never reported.
awk -v r0="${restart_t0:-0}" -v r1="${restart_t1:-0}" '
	$1 == "r" && $2 == "done" { rd += $3 }
	$1 == "r" && $2 == "status" { if ($3 == 200) rok += $4; else { rbad += $4; why["status_" $3] += $4 } }
	$1 == "r" && $2 == "ERR" { rerr += $4; why[$3] += $4 }
	$1 == "round" {
		if ($6 == 124) { why["hung_round"]++; hung++ }
		n = rbad + rerr
		if ($2 <= r1 + 1 && $3 >= r0) { rw += n; for (k in why) rwhy[k] += why[k] }
		else { out += n; for (k in why) reason[k] += why[k] }
		sent += rd + rerr; ok += rok
		rd = rok = rbad = rerr = 0; delete why
	}
	END {
		printf "soak load l7 sent %d ok %d failed %d\n", sent, ok, out + rw
		for (k in reason) printf "soak l7-fail %s %d\n", k, reason[k]
		printf "soak l7-restart-window failed %d\n", rw
		for (k in rwhy) printf "soak l7-restart-window-fail %s %d\n", k, rwhy[k]
		printf "soak l7-outside-restart failed %d hung %d\n", out, hung
	}' "$S/l7.log" | sort >"$S/l7.sum"
cat "$S/l7.sum"
l7_sent=$(awk '/^soak load l7/ { print $5 }' "$S/l7.sum")
l7_out=$(awk '/^soak l7-outside-restart/ { print $4 }' "$S/l7.sum")
l7_hung=$(awk '/^soak l7-outside-restart/ { print $6 }' "$S/l7.sum")
# per agent process: first sample after WARM_S s of its life, and the last
awk -v w="$WARM_S" '
	!($2 in start) { start[$2] = $1; order[++n] = $2 }
	$1 - start[$2] >= w && !($2 in frss) { frss[$2] = $3; ffd[$2] = $4 }
	{ lrss[$2] = $3; lfd[$2] = $4; if ($3 > mrss[$2]) mrss[$2] = $3 }
	END { for (i = 1; i <= n; i++) { p = order[i]; if (!(p in frss)) continue
		printf "soak agent %s rss_kb %d %d fds %d %d max_rss_kb %d\n", p, frss[p], lrss[p], ffd[p], lfd[p], mrss[p] } }' \
	"$S/samples" | tee "$S/agents"
echo "soak maps before $maps_before"
echo "soak maps after  $maps_after"
echo "soak sock_hash before $sh_before after $sh_after established_sockets $live"
echo "soak active_after $active"
echo "soak events reloads $reloads flaps $flaps restarts $restarts"
echo "soak restart_gap_ms $(awk -v a="${restart_t0:-0}" -v b="${restart_t1:-0}" 'BEGIN { printf "%d", (b - a) * 1000 }')"

[ "$l4_sent" -gt 0 ] || fail+=("no L4 load")
[ "${l7_sent:-0}" -gt 0 ] || fail+=("no L7 load")
[ "$l4_fail" = 0 ] || fail+=("$l4_fail L4 connects failed")
[ "${l7_out:-1}" = 0 ] || fail+=("$l7_out L7 requests failed outside the restart window")
[ "${l7_hung:-1}" = 0 ] || fail+=("$l7_hung L7 rounds hung")
[ "$maps_after" = "$maps_before" ] || fail+=("map entries $maps_before -> $maps_after")
[ "$sh_after" -le "$((sh_before + live))" ] || fail+=("sock_hash entries $sh_before -> $sh_after with $live sockets established")
[ "$active" = 0 ] || fail+=("active connection counts $active, want 0")
[ "$restarts" = 1 ] && [ "${adopted:-}" = true ] || fail+=("the restarted agent did not adopt the data path")
[ -s "$S/agents" ] || fail+=("no RSS/fd samples")
while read -r _ _ pid _ r0 r1 _ f0 f1 _; do
	[ $((r1 - r0)) -le "$RSS_TOL_KB" ] || fail+=("agent $pid RSS grew $r0 -> $r1 kB")
	[ $((f1 - f0)) -le "$FD_TOL" ] || fail+=("agent $pid fds grew $f0 -> $f1")
done <"$S/agents"
if [ "${#fail[@]}" = 0 ]; then
	echo "soak verdict ok"
	exit 0
fi
echo "soak verdict FAIL: $(IFS=';'; echo "${fail[*]}")"
exit 1
