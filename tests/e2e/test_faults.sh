#!/bin/bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Faults under load (issue 6): the agent SIGKILLed and restarted while pods
# connect, policy reloads every 0.3 s under L4 and L7 load, hostile HTTP
# input (slowloris, pipelined flood, oversize head), backends killed while
# L7 requests run. Pod 1 is the client; pods 2-4 run sm-server (L4, 9080)
# and sm-http (L7, 8080) as v1-v3 (tests/e2e/policies/faults.yaml).

# The inner bash -c scripts expand their own arguments:
# shellcheck disable=SC2016
# shellcheck disable=SC1091
. "$(dirname "$0")/lib.sh"
# shellcheck disable=SC1091
. "$(dirname "$0")/mesh.sh"

e2e_require_root
HTTP=$E2E_TOOLS/sm-http
HREQ=$E2E_TOOLS/sm-hreq
for t in "$HTTP" "$HREQ" "$CLI" "$SRV"; do
	[ -x "$t" ] || { echo "FAIL: $t missing"; exit 1; }
done
L4VIP=10.96.6.10:9080
L7VIP=10.96.6.20
# shellcheck disable=SC2034 # read by mesh_agent_start
MESH_AGENT_L7=1
mesh_up smflt 4 "$E2E_ROOT/tests/e2e/policies/faults.yaml" || { echo "FAIL: mesh_up"; exit 1; }
POL=$E2E_TMP/policy/faults.yaml
mesh_servers 9080 id 2 3 4 || exit 1

http_start() { # http_start POD: sm-http v(POD-1) on 8080
	sm_pod_spawn "$1" "$HTTP" --port 8080 --id "v$(($1 - 1))" >"$E2E_TMP/http-$1.out" 2>&1
	echo "$SM_LAST_PID" >"$E2E_TMP/http-$1.pid"
	e2e_wait_for_line "$E2E_TMP/http-$1.out" '^ready' 20 || { echo "FAIL: sm-http in pod $1"; cat "$E2E_TMP/http-$1.out"; exit 1; }
}
for p in 2 3 4; do http_start "$p"; done

# Load loops run in pod 1 until their stop file exists; every round's
# output is appended to the log, summed afterwards.
l4_loop_start() { # l4_loop_start NAME
	rm -f "$E2E_TMP/$1.stop"
	sm_pod_spawn 1 bash -c 'while [ ! -e "$1" ]; do "$2" rate --addr "$3" --count 200 --timeout 2; done' \
		l4loop "$E2E_TMP/$1.stop" "$CLI" "$L4VIP" >"$E2E_TMP/$1.log" 2>&1
	echo "$SM_LAST_PID" >"$E2E_TMP/$1.pid"
}
l7_loop_start() { # l7_loop_start NAME COUNT [VIP]: sm-hreq rounds; "rc N" per round (124 = hang)
	rm -f "$E2E_TMP/$1.stop"
	sm_pod_spawn 1 bash -c 'while [ ! -e "$1" ]; do timeout 20 "$2" --addr "$3" --count "$4" --conns 4 --timeout 5; echo "rc $?"; done' \
		l7loop "$E2E_TMP/$1.stop" "$HREQ" "${3:-$L7VIP}:80" "$2" >"$E2E_TMP/$1.log" 2>&1
	echo "$SM_LAST_PID" >"$E2E_TMP/$1.pid"
}
loop_stop() { # loop_stop NAME: the round in flight finishes
	local pid
	touch "$E2E_TMP/$1.stop"
	pid=$(cat "$E2E_TMP/$1.pid")
	e2e_wait_until 30 bash -c "! kill -0 $pid 2>/dev/null"
	wait "$pid" 2>/dev/null
}
l4_sum() { # l4_sum NAME -> "CONNECTS FAILED"
	awk '$1 == "connects" { c += $2; f += $4 } END { printf "%d %d\n", c, f }' "$E2E_TMP/$1.log"
}
l7_past() { # l7_past NAME N: the loop's finished rounds did more than N requests
	[ "$(l7_sum "$1" | cut -d' ' -f1)" -gt "$2" ]
}
l4_past() { # l4_past NAME N: the loop's finished rounds made more than N connects
	[ "$(l4_sum "$1" | cut -d' ' -f1)" -gt "$2" ]
}
l7_sum() { # l7_sum NAME -> "DONE OK NON200 ERR HANGS ROUNDS"
	awk '$1 == "done" { d += $2 } $1 == "status" && $2 == 200 { ok += $3 }
	     $1 == "status" && $2 != 200 { bad += $3 } $1 == "ERR" { e += $3 }
	     $1 == "rc" { r++; if ($2 == 124) h++ }
	     END { printf "%d %d %d %d %d %d\n", d, ok, bad, e, h, r }' "$E2E_TMP/$1.log"
}
active_sum() { ctl backends -o json | jq '[.backends[].active] | add // 0'; }
maps() { ctl status -o json | jq -c '.map_entries | del(.sm_sock_hash)'; }

e2e_log "baseline"
e2e_assert_match "L4 service" 'default/tcp-echo +10\.96\.6\.10:9080 +L4' "$(ctl services)"
e2e_assert_match "L7 service" 'default/web +10\.96\.6\.20:80 +L7' "$(ctl services)"
base_maps=$(maps)
e2e_log "map entries: $base_maps"

e2e_log "a) SIGKILL the agent under L4 load, restart it on the same pins"
hold=$E2E_TMP/hold
sm_pod_spawn 1 bash -c 'exec 3<>"/dev/tcp/${2%:*}/${2#*:}" || exit 1; read -r -t 10 id <&3; echo "id $id"
	while [ ! -e "$1.go" ]; do sleep 0.05; done
	echo ping >&3; read -r -t 10 r <&3; echo "echo $r"' hold "$hold" "$L4VIP" >"$hold.out" 2>&1
hold_pid=$SM_LAST_PID
e2e_wait_for_line "$hold.out" '^id v' 20
l4_loop_start kill
# (rounds of 200 connects, each counted when it ends: wait for them, not for
# a time that is enough on a fast machine)
e2e_wait_until 60 l4_past kill 0 || echo "    (no round before the kill)"
agent_pid_before=$AGENT_PID
mesh_agent_stop KILL 2>/dev/null
e2e_assert_eq "agent is gone" no "$(kill -0 "$agent_pid_before" 2>/dev/null && echo yes || echo no)"
c0=$(l4_sum kill | cut -d' ' -f1)
e2e_wait_until 60 l4_past kill "$((c0 + 200))"
c1=$(l4_sum kill | cut -d' ' -f1)
e2e_assert_ok "new connects translated while the agent is dead ($c0 -> $c1)" test "$c1" -gt "$c0"
e2e_assert_eq "a fresh client too: 10 connects, 0 errors" "10 0" \
	"$(sm_pod_exec 1 "$CLI" who --addr "$L4VIP" --count 10 | awk '$1 == "ERR" { e += $3; next } { n += $2 } END { print n + 0, e + 0 }')"
touch "$hold.go"
e2e_wait_for_line "$hold.out" '^echo' 20
e2e_assert_eq "established connection still echoes" "echo ping" "$(grep '^echo' "$hold.out")"
wait "$hold_pid" 2>/dev/null
mesh_agent_start || { echo "FAIL: restart"; exit 1; }
e2e_assert_eq "new agent adopted the pinned data path" true "$(ctl status -o json | jq .adopted)"
# a whole round after the restart, and 1000 connects in all
c2=$(l4_sum kill | cut -d' ' -f1)
e2e_wait_until 60 l4_past kill "$((c2 + 200))"
e2e_wait_until 60 l4_past kill 999
loop_stop kill
read -r conns fails < <(l4_sum kill)
e2e_log "restart gap: $conns connects, $fails failed (SIGKILL after a round, dead for two, restart)"
e2e_assert_ok "load ran ($conns connects)" test "$conns" -ge 1000
e2e_assert_eq "zero failed connects across kill and restart" 0 "$fails"
e2e_assert_eq "no errors reported" "" "$(grep '^ERR' "$E2E_TMP/kill.log" | sort | uniq -c | tr '\n' ' ')"

e2e_log "b) policy reloaded every 0.3 s under L4 + L7 load"
gen0=$(ctl status -o json | jq .generation)
l4_loop_start reload4
l7_loop_start reload7 300
# each rewrite waits for the agent to apply the one before (a slow agent
# would merge rewrites that come faster than it reloads)
sm_spawn bash -c 'gen() { "$2" --admin-socket "$3" status -o json | jq .generation; }
	for i in $(seq 1 16); do
	g=$(gen "$@")
	w=$((i % 2 ? 70 : 50)); r=$(((100 - w) / 2))
	sed -e "0,/weight: [0-9]*/s//weight: $w/" -e "s/weight: 25\$/weight: $r/; s/weight: 15\$/weight: $r/" "$1" >"$1.tmp"
	mv "$1.tmp" "$1"
	for _ in $(seq 1 400); do [ "$(gen "$@")" -gt "$g" ] && break; sleep 0.05; done
	sleep 0.3; done' reloader "$POL" "$CTL" "$E2E_TMP/admin.sock"
rel_pid=$SM_LAST_PID
e2e_wait_until 240 bash -c "! kill -0 $rel_pid 2>/dev/null"
wait "$rel_pid" 2>/dev/null
# load through the reloads, and enough of it to judge (rounds end when they end)
e2e_wait_until 60 l4_past reload4 499
e2e_wait_until 60 l7_past reload7 299
loop_stop reload4
loop_stop reload7
read -r conns fails < <(l4_sum reload4)
read -r ndone ok bad err hangs rounds < <(l7_sum reload7)
gen1=$(ctl status -o json | jq .generation)
e2e_log "reloads: generation $gen0 -> $gen1; L4 $conns connects $fails failed; L7 $ndone requests $ok ok $bad non-200 $err errors in $rounds rounds"
e2e_assert_range "reloads applied (generation +$((gen1 - gen0)))" 8 100 $((gen1 - gen0))
e2e_assert_eq "no reload failed" '""' "$(ctl status -o json | jq .last_error)"
e2e_assert_ok "L4 load ran ($conns)" test "$conns" -ge 500
e2e_assert_eq "zero failed connects during reloads" 0 "$fails"
e2e_assert_ok "L7 load ran ($ndone)" test "$ndone" -ge 300
e2e_assert_eq "every L7 request answered 200" "$ndone" "$ok"
e2e_assert_eq "zero L7 errors, zero hangs" "0 0" "$err $hangs"
e2e_assert_ok "both weights were live" grep -q 'weight: [57]0' "$POL"
e2e_wait_until 20 bash -c "[ \"\$($CTL --admin-socket $E2E_TMP/admin.sock status -o json | jq -c '.map_entries | del(.sm_sock_hash)')\" = '$base_maps' ]"
e2e_assert_eq "map entries back to baseline after grace deletions" "$base_maps" "$(maps)"
e2e_wait_until 20 bash -c "[ \"\$($CTL --admin-socket $E2E_TMP/admin.sock backends -o json | jq '[.backends[].active] | add // 0')\" = 0 ]"
e2e_assert_eq "active counts back to 0" 0 "$(active_sum)"

e2e_log "c) hostile L7 input"
# 50 slow heads: a byte line per second, never the blank line; each is
# reported closed when the proxy closes it (header timeout 10 s).
slow=$E2E_TMP/slow.out
sm_pod_spawn 1 bash -c 'trap "" PIPE; declare -a fds closed; n=0
	for i in $(seq 1 50); do exec {fd}<>"/dev/tcp/$1/80" && { fds[i]=$fd; n=$((n + 1)); }
		printf "GET /slow HTTP/1.1\r\nHost: web\r\n" >&"${fds[i]}"; done
	echo "open $n"; t0=$SECONDS
	while [ $((SECONDS - t0)) -lt 30 ]; do c=0
		for i in $(seq 1 50); do
			if [ -z "${closed[i]}" ]; then
				printf "x-slow: 1\r\n" >&"${fds[i]}" 2>/dev/null || closed[i]=$((SECONDS - t0))
			fi
			[ -n "${closed[i]}" ] && c=$((c + 1))
		done
		[ "$c" = 50 ] && break; sleep 1; done
	echo "closed $c after $((SECONDS - t0)) s"' slowloris "$L7VIP" >"$slow" 2>&1
slow_pid=$SM_LAST_PID
e2e_wait_for_line "$slow" '^open' 20
e2e_assert_eq "50 slow connections open" "open 50" "$(grep '^open' "$slow")"
out=$(sm_pod_exec 1 timeout 10 "$HREQ" --addr "$L7VIP:80" --count 20 --timeout 3)
e2e_assert_match "normal requests served meanwhile" 'status 200 20' "$out"

pipe=$(sm_pod_exec 1 bash -c 'exec 3<>"/dev/tcp/$1/80" || exit 1; r=""
	for i in $(seq 1 99); do r+="GET /p/$i HTTP/1.1\r\nHost: web\r\n\r\n"; done
	r+="GET /p/100 HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n"
	printf "$r" >&3; timeout 10 cat <&3' pipe "$L7VIP")
e2e_assert_eq "100 pipelined requests: 100 responses" 100 "$(grep -c '^HTTP/1.1 200' <<<"$pipe")"
e2e_assert_eq "answered in order" "$(seq 1 100 | tr '\n' ' ')" \
	"$(grep -oE 'path=/p/[0-9]+' <<<"$pipe" | sed 's,.*/,,' | tr '\n' ' ')"

big=$(sm_pod_exec 1 bash -c 'exec 3<>"/dev/tcp/$1/80" || exit 1
	printf "GET / HTTP/1.1\r\nHost: web\r\nx-big: %s\r\n\r\n" "$(head -c 70000 /dev/zero | tr "\0" a)" >&3 2>/dev/null
	timeout 5 head -c 12 <&3' big "$L7VIP")
e2e_assert_eq "oversize head -> 431" "HTTP/1.1 431" "$big"
out=$(sm_pod_exec 1 timeout 10 "$HREQ" --addr "$L7VIP:80" --count 20 --timeout 3)
e2e_assert_match "still serving after hostile input" 'status 200 20' "$out"

flap() { # flap NAME VIP POD: kill POD's sm-http under L7 load, restart it
	local pid
	l7_loop_start "$1" 200 "$2"
	sleep 0.7
	pid=$(cat "$E2E_TMP/http-$3.pid")
	{ kill -KILL "$pid"; wait "$pid"; } 2>/dev/null
	sleep 1.5
	http_start "$3"
	sleep 1
	loop_stop "$1"
	read -r ndone ok bad err hangs rounds < <(l7_sum "$1")
	e2e_log "backend flap: $ndone requests, $ok ok, $bad non-200 ($(awk '$1 == "status" && $2 != 200 { n[$2] += $3 } END { for (k in n) printf "%s x%d ", k, n[k] }' "$E2E_TMP/$1.log")), $err errors, $rounds rounds"
	e2e_assert_ok "load ran ($ndone)" test "$ndone" -ge 200
	e2e_assert_eq "no round hung (every sm-hreq finished in time)" 0 "$hangs"
	e2e_assert_eq "every request got a response" 0 "$err"
	e2e_assert_eq "agent alive" true "$(ctl status -o json | jq .alive)"
}
e2e_log "d) a backend killed and restarted while L7 requests run"
e2e_log "subset v2 (one host) of web: its requests cannot go elsewhere"
flap flap1 "$L7VIP" 3
e2e_assert_ok "failures bounded: non-200 $bad of $ndone (< 5%)" test $((bad * 20)) -lt "$ndone"
out=$(sm_pod_exec 1 timeout 10 "$HREQ" --addr "$L7VIP:80" --count 30 --timeout 3)
e2e_assert_match "the restarted backend serves again" 'backend v2 [0-9]+' "$out"
e2e_log "web-all (3 hosts, retries on connect-failure/reset/5xx): retried on other hosts"
flap flap2 10.96.6.30 4
e2e_assert_eq "zero non-200 with retries across hosts" 0 "$bad"

e2e_log "slowloris connections closed by the header timeout"
e2e_wait_for_line "$slow" '^closed' 40
# not before the 10 s; after it as soon as a slow machine's write loop sees it
e2e_assert_match "all 50 closed after ~10 s ($(grep '^closed' "$slow"))" '^closed 50 after (9|1[0-9]|2[0-9]) s' "$(grep '^closed' "$slow")"
wait "$slow_pid" 2>/dev/null
e2e_assert_eq "agent survived it all" true "$(ctl status -o json | jq .alive)"
e2e_finish
