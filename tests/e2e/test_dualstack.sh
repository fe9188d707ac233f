#!/bin/bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Dual-stack clients on the mesh path: AF_INET6 sockets dialling IPv4
# Service VIPs as ::ffff:a.b.c.d (cgroup/connect6, getpeername6; sockops and
# sk_msg under IPv4 4-tuple keys). Real clients: a JVM (OpenJDK, default
# settings: it opens AF_INET6 sockets because the pod has ::1) and Python
# with explicit AF_INET6 sockets; a JVM server on :: (its accepted sockets
# are AF_INET6 with v4-mapped addresses). Pods 1 and 5 are clients, pods
# 2-4 run backends v1-v3 (tests/e2e/policies/l4.yaml + dualstack.yaml).

# shellcheck disable=SC1091
. "$(dirname "$0")/lib.sh"
# shellcheck disable=SC1091
. "$(dirname "$0")/mesh.sh"

e2e_require_root
PY=/usr/bin/python3
HTTP=$E2E_TOOLS/sm-http
for t in java javac "$PY"; do
	command -v "$t" >/dev/null || { echo "FAIL: $t missing (make deps)"; exit 1; }
done
MESH_AGENT_L7=1
mesh_up smds 5 "$E2E_ROOT/tests/e2e/policies/l4.yaml" "$E2E_ROOT/tests/e2e/policies/dualstack.yaml" ||
	{ echo "FAIL: mesh_up"; exit 1; }
JDIR=$E2E_TMP/java
mkdir -p "$JDIR"
javac -d "$JDIR" "$E2E_ROOT/tests/e2e/clients/Dual.java" || { echo "FAIL: javac"; exit 1; }
DUALPY=$E2E_ROOT/tests/e2e/clients/dual.py

mesh_servers 9080 id 2 3 4 || exit 1
mesh_servers 9090 id 2 || exit 1
mesh_servers 9000 sink 2 || exit 1
mesh_servers 9001 echo 2 || exit 1
for p in 2 3 4; do
	sm_pod_spawn "$p" "$HTTP" --port 9085 --id "v$((p - 1))" >"$E2E_TMP/http-$p.out" 2>&1
	e2e_wait_for_line "$E2E_TMP/http-$p.out" '^ready' 20 || { echo "FAIL: http backend $p"; exit 1; }
done

# jv POD ARGS...: the JVM client in POD, defaults untouched (no -Djava.net.*)
jv() { local pod=$1; shift; sm_pod_exec "$pod" java -Xmx64m -XX:TieredStopAtLevel=1 -cp "$JDIR" Dual "$@"; }
jv_spawn() { local pod=$1; shift; sm_pod_spawn "$pod" java -Xmx64m -XX:TieredStopAtLevel=1 -cp "$JDIR" Dual "$@"; }
py() { local pod=$1; shift; sm_pod_exec "$pod" "$PY" "$DUALPY" "$@"; }
py_spawn() { local pod=$1; shift; sm_pod_spawn "$pod" "$PY" "$DUALPY" "$@"; }
tally() { tr ' ' '\n' <<<"$1" | awk -F= -v k="$2" '$1 == k { print $2; f = 1 } END { if (!f) print 0 }'; }

e2e_log "the JVM in a pod dials IPv4 addresses from AF_INET6 sockets"
m0=$(mesh_counter connect_v4mapped)
e2e_assert_eq "Java: exact round robin over 3 backends" "v1=10 v2=10 v3=10 ERR=0" "$(jv 1 who 10.96.0.20 9080 30)"
m1=$(mesh_counter connect_v4mapped)
e2e_assert_eq "every Java connect went through connect6 as ::ffff:VIP" 30 $((m1 - m0))
e2e_assert_eq "Python AF_INET6: exact round robin" "v1=10 v2=10 v3=10 ERR=0" "$(py 1 who 10.96.0.20 9080 30)"
e2e_assert_eq "Python AF_INET6: getpeername is ::ffff:VIP" "::ffff:10.96.0.20 9080" "$(py 1 peer 10.96.0.20 9080)"
e2e_assert_eq "AF_INET getpeername unchanged" "10.96.0.20:9080" "$(sm_pod_exec 1 "$CLI" peer --addr 10.96.0.20:9080)"
n0=$(mesh_counter connect_v6_native)
e2e_assert_eq "native IPv6 (::1) is left alone" "ERR ECONNREFUSED" "$(py 1 native ::1 9)"
e2e_assert_eq "and counted" 1 $(($(mesh_counter connect_v6_native) - n0))
e2e_assert_eq "an ejected backend gets nothing from Java either" "v1=15 v3=15 ERR=0" \
	"$(ctl eject 10.244.0.13:9080 >/dev/null && jv 1 who 10.96.0.20 9080 30)"
ctl restore 10.244.0.13:9080 >/dev/null

e2e_log "weighted tcp route 80/20, 1000 connects from AF_INET6 sockets"
w=$(py 1 who 10.96.0.50 9080 1000)
e2e_assert_range "v1 ~80% ($w)" 720 880 "$(tally "$w" v1)"
e2e_assert_range "v2 ~20% ($w)" 120 280 "$(tally "$w" v2)"
e2e_assert_eq "v3 never (not in the route)" 0 "$(tally "$w" v3)"

e2e_log "maxConnections = 3 per client pod, shared by AF_INET and AF_INET6 sockets"
sm_pod_spawn 1 "$CLI" who --addr 10.96.0.40:9080 --count 2 --hold --hold-timeout 30 >"$E2E_TMP/h4.out"
h4=$SM_LAST_PID
e2e_wait_for_line "$E2E_TMP/h4.out" '^done' 30
e2e_assert_eq "AF_INET holds 2" 2 "$(grep -c '^conn [0-9]* v1' "$E2E_TMP/h4.out")"
py_spawn 1 hold 10.96.0.40 9080 2 "$E2E_TMP/release" >"$E2E_TMP/h6.out"
e2e_wait_for_line "$E2E_TMP/h6.out" '^done' 30
e2e_assert_eq "Python AF_INET6: the 3rd is admitted, the 4th refused with ENOBUFS" \
	"$(printf 'conn 1 v1\nconn 2 ERR ENOBUFS')" "$(grep '^conn' "$E2E_TMP/h6.out")"
touch "$E2E_TMP/now"
e2e_assert_match "Java: refused too (ENOBUFS)" '^conn 1 ERR No buffer space available' \
	"$(jv 1 hold 10.96.0.40 9080 1 "$E2E_TMP/now" | grep '^conn')"
e2e_assert_eq "another pod's JVM is still admitted" "v1=1 ERR=0" "$(jv 5 who 10.96.0.40 9080 1)"
touch "$E2E_TMP/release"
kill -USR1 "$h4" 2>/dev/null; wait "$h4" 2>/dev/null
e2e_assert_ok "counts given back on close" e2e_wait_until 20 bash -c \
	"[ \$($CTL --admin-socket $E2E_TMP/admin.sock backends limited -o json | jq '[.backends[].active] | add') -eq 0 ]"
rm -f "$E2E_TMP/release"
jv_spawn 1 hold 10.96.0.40 9080 4 "$E2E_TMP/release" >"$E2E_TMP/hj.out"
e2e_wait_for_line "$E2E_TMP/hj.out" '^done' 60
e2e_assert_eq "Java alone: 3 admitted, the 4th refused" "3 1" \
	"$(grep -c '^conn [0-9] v1' "$E2E_TMP/hj.out") $(grep -c '^conn 4 ERR No buffer space' "$E2E_TMP/hj.out")"
touch "$E2E_TMP/release"
e2e_assert_ok "no leaked counts" e2e_wait_until 30 bash -c \
	"[ \$($CTL --admin-socket $E2E_TMP/admin.sock backends -o json | jq '[.backends[].active] | add') -eq 0 ]"

e2e_log "L7: HTTP through the agent's proxy from v4-mapped sockets"
e2e_assert_match "services shows web on L7" 'default/web +10\.96\.0\.90:80 +L7' "$(ctl services)"
l0=$(mesh_counter connect_l7)
out=$(jv 1 http 10.96.0.90 80 /java)
e2e_assert_match "Java GET: 200 from a backend ($out)" $'^HTTP/1.1 200 OK\nid=v[123] method=GET path=/java' "$out"
out=$(py 1 http 10.96.0.90 80 /python)
e2e_assert_match "Python GET: 200 from a backend ($out)" $'^HTTP/1.1 200 OK\nid=v[123] method=GET path=/python' "$out"
e2e_assert_eq "both went to the listener" 2 $(($(mesh_counter connect_l7) - l0))
e2e_assert_eq "getpeername of an L7 socket is ::ffff:VIP" "::ffff:10.96.0.90 80" "$(py 1 peer 10.96.0.90 80)"
l7=('source_workload="client"' 'destination_service_name="web"' 'response_code="200"')
e2e_assert_ok "istio_requests_total attributes them to the client pod" scrape_until 2 istio_requests_total "${l7[@]}"

e2e_log "sk_msg: v4-mapped client <-> AF_INET server, byte-exact both ways"
bulk=('source_workload="client"' 'destination_service_name="bulk"')
M=$(scrape)
rx0=$(msum "$M" istio_tcp_received_bytes_total "${bulk[@]}")
tx0=$(msum "$M" istio_tcp_sent_bytes_total "${bulk[@]}")
r0=$(mesh_counter redirect)
e2e_assert_eq "Java: 8 MiB to the sink, hash matches" "bulk ok 8388608" "$(jv 1 bulk 10.96.0.70 9000 8388608)"
e2e_assert_eq "Python: 1 MiB to the sink, hash matches" "bulk ok 1048576" "$(py 1 bulk 10.96.0.70 9000 1048576)"
e2e_assert_eq "Java: 4 MiB echoed back intact" "echo ok 4194304" "$(jv 1 echo 10.96.0.70 9001 4194304)"
e2e_assert_eq "Python: 1 MiB echoed back intact" "echo ok 1048576" "$(py 1 echo 10.96.0.70 9001 1048576)"
r1=$(mesh_counter redirect)
e2e_assert_ok "redirect counter rose ($r0 -> $r1)" test "$r1" -gt "$r0"
# ports 9000 (sink) and 9001 (echo) are one service: 8+1+4+1 MiB from the client,
# 4+1 MiB echoed plus the sink's two "<bytes> <fnv1a64>\n" (25 bytes each) back
e2e_assert_ok "flow bytes from the client pod: exactly what it sent" \
	scrape_until $((rx0 + 14680064)) istio_tcp_received_bytes_total "${bulk[@]}"
e2e_assert_eq "flow bytes to the client pod: exactly what it read" $((tx0 + 5242880 + 50)) \
	"$(msum "$M" istio_tcp_sent_bytes_total "${bulk[@]}")"

e2e_log "sk_msg: a JVM server on :: (accepted sockets are v4-mapped AF_INET6)"
jv_spawn 2 serve 9005 >"$E2E_TMP/jsrv.out" 2>&1
e2e_wait_for_line "$E2E_TMP/jsrv.out" '^ready' 20 || { echo "FAIL: Java server"; cat "$E2E_TMP/jsrv.out"; }
e2e_assert_match "it listens on :: (dual stack)" '^LISTEN .* \*:9005 ' \
	"$(sm_pod_exec 2 ss -Htln '( sport = :9005 )') "
dual=('source_workload="client"' 'destination_service_name="dual"')
M=$(scrape)
rx0=$(msum "$M" istio_tcp_received_bytes_total "${dual[@]}")
tx0=$(msum "$M" istio_tcp_sent_bytes_total "${dual[@]}")
r0=$(mesh_counter redirect)
e2e_assert_eq "v4-mapped <-> v4-mapped: Java client, 4 MiB echoed intact" "echo ok 4194304" \
	"$(jv 1 echo 10.96.0.75 9005 4194304)"
e2e_assert_eq "v4-mapped <-> v4-mapped: Python client, 1 MiB echoed intact" "echo ok 1048576" \
	"$(py 1 echo 10.96.0.75 9005 1048576)"
r1=$(mesh_counter redirect)
e2e_assert_ok "redirect counter rose ($r0 -> $r1)" test "$r1" -gt "$r0"
ea=$(sm_pod_exec 1 "$CLI" eagain --addr 10.96.0.75:9005 --transfers 2000 --bytes 4096)
e2e_assert_match "AF_INET client <-> v4-mapped server: 2000 echoes intact ($ea)" 'transfers 2000 eagain 0 bad 0' "$ea"
r2=$(mesh_counter redirect)
e2e_assert_ok "redirect counter rose ($r1 -> $r2)" test "$r2" -gt "$r1"
# 4 MiB + 1 MiB + 2000 x 4 KiB each way, whichever family each end had
e2e_assert_ok "flow bytes from the client pod: exact" \
	scrape_until $((rx0 + 4194304 + 1048576 + 8192000)) istio_tcp_received_bytes_total "${dual[@]}"
e2e_assert_eq "flow bytes back from the v4-mapped server: exact" $((tx0 + 4194304 + 1048576 + 8192000)) \
	"$(msum "$M" istio_tcp_sent_bytes_total "${dual[@]}")"
rm -f "$E2E_TMP/release"
py_spawn 1 hold 10.96.0.75 9005 1 "$E2E_TMP/release" quiet >"$E2E_TMP/hs.out"
e2e_wait_for_line "$E2E_TMP/hs.out" '^done' 30
e2e_assert_match "the server's accepted socket is AF_INET6 ::ffff:" '\[::ffff:10\.244\.0\.12\]:9005' \
	"$(sm_pod_exec 2 ss -Htn state established '( sport = :9005 )')"
touch "$E2E_TMP/release"

e2e_log "nothing leaked"
e2e_assert_ok "active connections back to 0" e2e_wait_until 30 bash -c \
	"[ \$($CTL --admin-socket $E2E_TMP/admin.sock backends -o json | jq '[.backends[].active] | add') -eq 0 ]"
e2e_assert_eq "no connect failed open" 0 "$(mesh_counter connect_error)"

e2e_finish
