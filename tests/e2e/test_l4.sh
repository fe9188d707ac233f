#!/bin/bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# The kernel L4 data path end to end: real sockets from pod namespaces to
# Service VIPs through the agent's programs attached to a private cgroup.
# Pods 1 and 5 are clients; pods 2-4 run backends v1-v3.

# shellcheck disable=SC1091
. "$(dirname "$0")/lib.sh"
# shellcheck disable=SC1091
. "$(dirname "$0")/mesh.sh"

e2e_require_root
mesh_up sml4 5 "$E2E_ROOT/tests/e2e/policies/l4.yaml" || { echo "FAIL: mesh_up"; exit 1; }
mesh_servers 9080 id 2 3 4 || exit 1
mesh_servers 9090 id 2 3 4 || exit 1
mesh_servers 9000 sink 2 || exit 1
mesh_servers 9001 echo 2 || exit 1
mesh_servers 9002 order 2 || exit 1

tally() { # tally "v1=10 v2=3" NAME -> N
	tr ' ' '\n' <<<"$1" | awk -F= -v k="$2" '$1 == k { print $2; f = 1 } END { if (!f) print 0 }'
}

e2e_log "services and getpeername"
e2e_assert_match "services table lists reviews" 'default/reviews +10\.96\.0\.20:9080 +L4 +ROUND_ROBIN +3/3' "$(ctl services)"
e2e_assert_eq "getpeername returns the VIP" "10.96.0.20:9080" \
	"$(sm_pod_exec 1 "$CLI" peer --addr 10.96.0.20:9080)"

e2e_log "ROUND_ROBIN: 30 connects over 3 backends"
e2e_assert_eq "exact rotation" "v1=10 v2=10 v3=10 ERR=0" "$(who 1 10.96.0.20:9080 30)"

e2e_log "eject and restore"
e2e_assert_ok "eject v2" ctl eject 10.244.0.13:9080
e2e_assert_match "backends shows ejected" '10\.244\.0\.13:9080 .*ejected' "$(ctl backends reviews)"
e2e_assert_eq "ejected backend gets nothing" "v1=15 v3=15 ERR=0" "$(who 1 10.96.0.20:9080 30)"
e2e_assert_ok "restore v2" ctl restore 10.244.0.13:9080
e2e_assert_eq "restored backend is back" "v1=10 v2=10 v3=10 ERR=0" "$(who 1 10.96.0.20:9080 30)"
# (the kernel compares the deadline with its clock: a fixed wait past it is
# exact; 3 s leave the 10 connects time on a slow machine)
e2e_assert_ok "eject v3 for 3s" ctl eject 10.244.0.14:9080 --for 3s
t_ej=$(date +%s%N)
e2e_assert_eq "timed ejection holds" 0 "$(tally "$(who 1 10.96.0.20:9080 10)" v3)"
sleep "$(awk -v ns="$(($(date +%s%N) - t_ej))" 'BEGIN { s = 3.2 - ns / 1e9; printf "%.3f", (s > 0 ? s : 0) }')"
e2e_assert_eq "timed ejection expires in the kernel" "v1=10 v2=10 v3=10 ERR=0" "$(who 1 10.96.0.20:9080 30)"
ctl eject 10.244.0.12:9080 >/dev/null; ctl eject 10.244.0.13:9080 >/dev/null; ctl eject 10.244.0.14:9080 >/dev/null
e2e_assert_eq "all ejected, minHealthPercent 0: ECONNREFUSED at once" "ERR ECONNREFUSED 5" "$(sm_pod_exec 1 "$CLI" who --addr 10.96.0.20:9080 --count 5)"
for a in 12 13 14; do ctl restore 10.244.0.$a:9080 >/dev/null; done

e2e_log "LEAST_REQUEST: new connections go to the idle backend"
ctl eject 10.244.0.14:9090 >/dev/null
sm_pod_spawn 1 "$CLI" who --addr 10.96.0.30:9080 --count 20 --hold --hold-timeout 30 >"$E2E_TMP/hold.out"
hold_pid=$SM_LAST_PID
e2e_wait_until 30 ctl backends ratings -o json >/dev/null
e2e_wait_until 30 bash -c "[ \$($CTL --admin-socket $E2E_TMP/admin.sock backends ratings -o json | jq '[.backends[].active] | add') -ge 20 ]"
ctl restore 10.244.0.14:9090 >/dev/null
lr=$(who 1 10.96.0.30:9080 60)
v3=$(tally "$lr" v3)
# P2C: v3 is in 2 of the 3 candidate pairs and wins each: ~40 of 60 (sd 3.7)
e2e_assert_range "idle v3 wins most picks ($lr)" 30 60 "$v3"
e2e_assert_ok "v3 beats v1 and v2" test "$v3" -gt "$(tally "$lr" v1)" -a "$v3" -gt "$(tally "$lr" v2)"
kill -USR1 "$hold_pid" 2>/dev/null; wait "$hold_pid" 2>/dev/null

e2e_log "maxConnections = 3 per client pod"
lim_out=$E2E_TMP/lim.out
sm_pod_spawn 1 "$CLI" who --addr 10.96.0.40:9080 --count 4 --hold --hold-timeout 30 >"$lim_out"
lim_pid=$SM_LAST_PID
e2e_wait_for_line "$lim_out" '^done' 30
e2e_assert_eq "3 admitted" 3 "$(grep -c '^conn [0-9]* v1' "$lim_out")"
e2e_assert_match "4th refused at once with ENOBUFS" '^conn 4 ERR ENOBUFS' "$(grep '^conn 4' "$lim_out")"
e2e_assert_eq "another pod still admitted" "v1=1 ERR=0" "$(who 5 10.96.0.40:9080 1)"
e2e_assert_eq "overflow counted" 1 "$(ctl services -o json | jq '.services[] | select(.name=="default/limited") | .overflows')"
kill -USR1 "$lim_pid" 2>/dev/null; wait "$lim_pid" 2>/dev/null
e2e_assert_eq "admitted again after close (no leaked count)" "v1=3 ERR=0" \
	"$(sm_pod_exec 1 "$CLI" who --addr 10.96.0.40:9080 --count 3 | awk '{ if ($1 == "ERR") e += $3; else printf "%s=%s ", $1, $2 } END { printf "ERR=%d\n", e }')"

e2e_log "weighted tcp route 80/20 over 2000 connects"
w=$(who 1 10.96.0.50:9080 2000)
e2e_assert_range "v1 ~80% ($w)" 1500 1700 "$(tally "$w" v1)"
e2e_assert_range "v2 ~20% ($w)" 300 500 "$(tally "$w" v2)"
e2e_assert_eq "v3 never (not in the route)" 0 "$(tally "$w" v3)"

e2e_log "consistentHash useSourceIp (Maglev)"
m1=$(who 1 10.96.0.60:9080 20)
e2e_assert_match "pod1 always lands on one backend ($m1)" '^v[123]=20 ERR=0$' "$m1"
m5=$(who 5 10.96.0.60:9080 20)
e2e_assert_match "pod5 always lands on one backend ($m5)" '^v[123]=20 ERR=0$' "$m5"

e2e_log "sk_msg redirect across two pod namespaces"
r0=$(mesh_counter redirect)
e2e_assert_match "8 MB intact through the VIP" '^bulk ok' \
	"$(sm_pod_exec 1 "$CLI" bulk --addr 10.96.0.70:9000 --bytes 8388608)"
r1=$(mesh_counter redirect)
e2e_assert_ok "redirect counter rose ($r0 -> $r1)" test "$r1" -gt "$r0"

e2e_log "hazard 1: writes right after connect stay in order"
e2e_assert_match "3000 connections in order" 'conns 3000 ok 3000 bad 0' \
	"$(sm_pod_exec 1 "$CLI" order --addr 10.96.0.70:9002 --conns 3000)"

e2e_log "hazard 2: blocking reads on redirected sockets never see EAGAIN"
ea=$(sm_pod_exec 1 "$CLI" eagain --addr 10.96.0.70:9001 --transfers 20000 --bytes 4096)
e2e_assert_match "20000 transfers, no EAGAIN at the client ($ea)" 'transfers 20000 eagain 0 bad 0' "$ea"
st=$(mesh_server_stats 2 9001)
e2e_assert_match "no EAGAIN at the server either ($st)" ' eagain 0 ' "$st "

e2e_log "in-pod loopback is redirected, and two pods on 127.0.0.1 never meet"
MESH_SRV_ARGS=(--bind 127.0.0.1)
mesh_servers 9004 id 2 3 || exit 1
MESH_SRV_ARGS=()
r0=$(mesh_counter redirect)
e2e_assert_eq "pod 3 reaches its own loopback server" "v2 5" \
	"$(sm_pod_exec 3 "$CLI" who --addr 127.0.0.1:9004 --count 5)"
e2e_assert_eq "pod 2 reaches its own loopback server" "v1 5" \
	"$(sm_pod_exec 2 "$CLI" who --addr 127.0.0.1:9004 --count 5)"
r1=$(mesh_counter redirect)
e2e_assert_ok "loopback traffic redirected ($r0 -> $r1)" test "$r1" -gt "$r0"

e2e_log "a pod annotated sockmesh.io/redirect: \"false\" keeps plain TCP"
r0=$(mesh_counter redirect)
e2e_assert_match "8 MB from the opted-out pod intact" '^bulk ok' \
	"$(sm_pod_exec 5 "$CLI" bulk --addr 10.96.0.70:9000 --bytes 8388608)"
e2e_assert_eq "no redirect for its sockets" "$r0" "$(mesh_counter redirect)"

e2e_log "connect() again on a socket whose VIP connect failed: it is no VIP's any more"
printf 'apiVersion: v1\nkind: Service\nmetadata: {name: dead, namespace: default}\nspec: {clusterIP: 10.96.0.80, selector: {version: v1}, ports: [{name: tcp, port: 9080, targetPort: 9199}]}\n' >"$E2E_TMP/dead.yaml"
n_unchanged=$(grep -c 'policy unchanged' "$E2E_TMP/agent.log")
e2e_assert_ok "apply a service whose backend listens nowhere" ctl apply -f "$E2E_TMP/dead.yaml"
# the file it wrote comes back through inotify: a reload that finds nothing new
e2e_assert_ok "the written file reloads as unchanged" e2e_wait_until 20 bash -c \
	"[ \$(grep -c 'policy unchanged' '$E2E_TMP/agent.log') -gt $n_unchanged ]"
out=$(sm_pod_exec 1 "$CLI" peer --first 10.96.0.80:9080 --addr 10.244.0.13:9080)
e2e_assert_eq "refused through the VIP, then getpeername is the direct peer" \
	"$(printf 'first ECONNREFUSED\n10.244.0.13:9080')" "$out"
opened() { curl -sS -m 5 --unix-socket "$E2E_TMP/admin.sock" http://localhost/metrics |
	awk '/^istio_tcp_connections_opened_total\{/ && /destination_service="dead\./ { s += $NF } END { print s + 0 }'; }
e2e_assert_eq "the direct connection is not counted as dead's (only the refused attempt)" 1 "$(opened)"

e2e_log "no leaked counts once everything is closed"
e2e_wait_until 20 bash -c "[ \$($CTL --admin-socket $E2E_TMP/admin.sock backends -o json | jq '[.backends[].active] | add') -eq 0 ]"
e2e_assert_eq "active connections back to 0" 0 "$(ctl backends -o json | jq '[.backends[].active] | add')"

e2e_log "a bad policy is rejected, traffic keeps flowing on the old one"
gen=$(ctl status -o json | jq .generation)
printf 'apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: bad, namespace: default}\nspec:\n  host: reviews\n  trafficPolicy:\n    loadBalancer: {simpel: ROUND_ROBIN}\n' >"$E2E_TMP/bad.yaml"
out=$(ctl apply -f "$E2E_TMP/bad.yaml" 2>&1); rc=$?
e2e_assert_eq "apply of a bad file fails" 1 "$rc"
e2e_assert_match "error names file:line:col" 'bad\.yaml:7:[0-9]+: error' "$out"
cp "$E2E_TMP/bad.yaml" "$E2E_TMP/policy/zz-bad.yaml"
e2e_wait_until 20 bash -c "$CTL --admin-socket $E2E_TMP/admin.sock status -o json | jq -e '.last_error != \"\"' >/dev/null"
e2e_assert_eq "generation unchanged" "$gen" "$(ctl status -o json | jq .generation)"
e2e_assert_eq "old config still serves" "v1=10 v2=10 v3=10 ERR=0" "$(who 1 10.96.0.20:9080 30)"
rm -f "$E2E_TMP/policy/zz-bad.yaml"
e2e_wait_until 20 bash -c "$CTL --admin-socket $E2E_TMP/admin.sock status -o json | jq -e '.last_error == \"\"' >/dev/null"
e2e_assert_ok "reload after the fix succeeds" test "$(ctl status -o json | jq .generation)" -gt "$gen"

e2e_log "agent restart with --keep-on-exit drops no established connection"
mesh_agent_stop
mesh_agent_start --keep-on-exit || exit 1
keep_out=$E2E_TMP/keep.out
sm_pod_spawn 1 "$CLI" who --addr 10.96.0.20:9080 --count 6 --hold --hold-timeout 60 >"$keep_out"
keep_pid=$SM_LAST_PID
e2e_wait_for_line "$keep_out" '^done' 30
est() { sm_pod_exec 1 ss -Htn state established dst 10.244.0.0/24 | wc -l; }
e2e_assert_eq "6 connections established" 6 "$(est)"
mesh_agent_stop
e2e_assert_eq "pins stay after exit" yes "$([ -e "$SM_PIN/links" ] && ls "$SM_PIN/links" | grep -q connect4 && echo yes)"
e2e_assert_eq "VIPs still translated with the agent down" "v1=1 v2=1 v3=1 ERR=0" "$(who 1 10.96.0.20:9080 3)"
e2e_assert_match "sockmeshctl reads pinned maps when the agent is down" 'default/reviews' "$(ctl services)"

e2e_log "upgrade: pinned maps of another layout (an older release, another --max-* size)"
# A map with state the kernel wrote (connection counts) must match: refused,
# naming the map. The real one is unpinned meanwhile (the attached programs
# keep it alive) and pinned back by id.
minfo() { bpftool map show pinned "$SM_PIN/maps/$1" -j; }
cl_id=$(minfo sm_conn_limit | jq .id)
read -r ks vs n < <(minfo sm_conn_limit | jq -r '"\(.bytes_key) \(.bytes_value) \(.max_entries)"')
rm "$SM_PIN/maps/sm_conn_limit"
bpftool map create "$SM_PIN/maps/sm_conn_limit" type hash key "$ks" value "$((vs + 8))" \
	entries "$n" name sm_conn_limit flags 1
out=$(timeout 20 "$AGENT" --cgroup "$SM_CGROUP" --policy "$E2E_TMP/policy" --pin-path "$SM_PIN" \
	--admin-socket "$E2E_TMP/admin-up.sock" 2>&1); rc=$?
e2e_assert_eq "a kernel-written map of another layout is refused" 1 "$rc"
e2e_assert_match "the refusal names the map" "pinned map $SM_PIN/maps/sm_conn_limit has another layout" "$out"
rm "$SM_PIN/maps/sm_conn_limit"
bpftool map pin id "$cl_id" "$SM_PIN/maps/sm_conn_limit"
e2e_assert_eq "VIPs still translated after the refused start" "v1=1 v2=1 v3=1 ERR=0" "$(who 1 10.96.0.20:9080 3)"
# sm_maglev as a release before BPF_F_NO_PREALLOC pinned it: the agent
# writes all of it from the plan, so it is replaced and filled before the
# programs are swapped; consistentHash (sticky, 10.96.0.60) keeps working.
read -r ks vs n < <(minfo sm_maglev | jq -r '"\(.bytes_key) \(.bytes_value) \(.max_entries)"')
rm "$SM_PIN/maps/sm_maglev"
bpftool map create "$SM_PIN/maps/sm_maglev" type hash key "$ks" value "$vs" entries 4096 name sm_maglev
mesh_agent_start || exit 1
e2e_assert_eq "new agent adopted the data path" true "$(ctl status -o json | jq .adopted)"
e2e_assert_eq "sm_maglev of another layout replaced" '["sm_maglev"]' "$(ctl status -o json | jq -c .replaced_maps)"
e2e_assert_match "the log says so" 'pinned map sm_maglev had another layout' "$(cat "$E2E_TMP/agent.log")"
e2e_assert_eq "the new sm_maglev is the agent's" 1 "$(minfo sm_maglev | jq '.flags')"
e2e_assert_match "consistentHash through the new sm_maglev: one backend per source" '^v[123]=10 ERR=0$' \
	"$(who 1 10.96.0.60:9080 10)"
e2e_assert_eq "established connections survived" 6 "$(est)"
e2e_assert_eq "traffic after adoption" "v1=10 v2=10 v3=10 ERR=0" "$(who 1 10.96.0.20:9080 30)"

e2e_log "a reload that takes a backend away leaves its connections alone"
sed -i '/name: be-v3/,/conditions/ s/status: "True"/status: "False"/' "$E2E_TMP/policy/l4.yaml"
e2e_wait_until 20 bash -c "$CTL --admin-socket $E2E_TMP/admin.sock backends reviews | grep -q '10.244.0.14:9080 .*not-ready'"
e2e_assert_match "v3 is not ready after the reload" '10\.244\.0\.14:9080 .*not-ready' "$(ctl backends reviews)"
e2e_assert_eq "new connections avoid it" "v1=15 v2=15 ERR=0" "$(who 1 10.96.0.20:9080 30)"
e2e_assert_eq "established connections (v3's too) untouched" 6 "$(est)"
kill -USR1 "$keep_pid" 2>/dev/null; wait "$keep_pid" 2>/dev/null

e2e_log "SIGTERM detaches and unpins"
mesh_agent_stop
e2e_assert_eq "no program left on the cgroup" "" "$(bpftool cgroup show "$SM_CGROUP" 2>/dev/null | grep -v '^ID')"
e2e_assert_eq "pins removed" "" "$(ls -A "$SM_PIN" 2>/dev/null)"
e2e_assert_match "VIP no longer translated (no route out of the pod)" 'ERR ENETUNREACH' \
	"$(sm_pod_exec 1 "$CLI" who --addr 10.96.0.20:9080 --count 1)"

e2e_finish
