#!/bin/bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# DestinationRule connectionPool under real keep-alive clients (Python's
# http.client, tests/e2e/ka_load.py): Envoy's circuit breakers as Istio
# configures them (envoyproxy.io "Circuit breaking", cluster
# circuit_breakers thresholds; istio.io ConnectionPoolSettings):
#  - maxConnections bounds upstream connections; HTTP/1.1 carries one
#    request per connection at a time; beyond it a request waits in the
#    pending queue up to http1MaxPendingRequests; beyond that an immediate
#    local 503 with x-envoy-overloaded: true (flag UO);
#  - a pending request is served as soon as a connection frees;
#  - http2MaxRequests bounds requests in flight;
#  - every counter returns to zero when traffic stops: an idle cluster
#    never refuses.
# No request may hang: every client wait is bounded and a timeout fails.

# shellcheck disable=SC1091
. "$(dirname "$0")/lib.sh"
# shellcheck disable=SC1091
. "$(dirname "$0")/mesh.sh"

e2e_require_root
HTTP=$E2E_TOOLS/sm-http
KA=$E2E_ROOT/tests/e2e/ka_load.py
[ -x "$HTTP" ] || { echo "FAIL: $HTTP missing"; exit 1; }
MESH_AGENT_L7=1
mesh_up smpool 4 "$E2E_ROOT/tests/e2e/policies/l7pool.yaml" || { echo "FAIL: mesh_up"; exit 1; }

sm_pod_spawn 2 "$HTTP" --port 9080 --id a >"$E2E_TMP/http-2.out" 2>&1
sm_pod_spawn 3 "$HTTP" --port 9080 --id b >"$E2E_TMP/http-3.out" 2>&1
sm_pod_spawn 4 "$HTTP" --port 9080 --id closer --idle-close 200 >"$E2E_TMP/http-4.out" 2>&1
for f in "$E2E_TMP"/http-*.out; do
	e2e_wait_for_line "$f" '^ready' 20 || { echo "FAIL: backend $f"; cat "$f"; exit 1; }
done

ka() { sm_pod_exec 1 /usr/bin/python3 "$KA" "$@"; }
cnt() { # cnt OUTPUT KEY -> N (0 when absent)
	awk -v k="$2" '{ v = $NF; $NF = ""; sub(/ $/, ""); if ($0 == k) { print v; f = 1 } } END { if (!f) print 0 }' <<<"$1"
}
# Every answer is a 200 or an overload 503; nothing hangs, nothing resets.
check_burst() { # NAME OUTPUT TOTAL
	local name=$1 out=$2 total=$3
	e2e_assert_eq "$name: no request hangs" 0 "$(cnt "$out" timeout)"
	e2e_assert_eq "$name: no request reset" 0 "$(cnt "$out" error)"
	e2e_assert_eq "$name: every request answered" "$total" "$(cnt "$out" "done")"
	e2e_assert_eq "$name: only 200 and 503" "$total" \
		$(( $(cnt "$out" "status 200") + $(cnt "$out" "status 503") ))
	e2e_assert_eq "$name: every 503 carries x-envoy-overloaded" "$(cnt "$out" "status 503")" \
		"$(cnt "$out" overloaded)"
	e2e_assert_ge "$name: some served" 1 "$(cnt "$out" "status 200")"
}
# Pending, in-flight and retry counters of every cluster back at zero (idle
# pooled connections stay open and counted until their idle timeout, as Envoy's).
breakers_zero() {
	[ "$(curl -sS -m 5 --unix-socket "$E2E_TMP/admin.sock" http://localhost/config_dump |
	     jq '[.clusters[].circuit_breakers_in_use | .pending, .requests, .retries] | add // 0')" = 0 ]
}
idle_never_refuses() { # NAME VIP
	local out
	e2e_assert_ok "$1: breaker counters back to zero" e2e_wait_until 20 breakers_zero
	out=$(ka seq "$2" / --requests 12 --timeout 3)
	e2e_assert_eq "$1: idle cluster, 12 sequential requests on one connection: all 200" 12 \
		"$(cnt "$out" "status 200")"
	out=$(ka seq "$2" / --requests 12 --timeout 3 --fresh)
	e2e_assert_eq "$1: idle cluster, 12 sequential new connections: all 200" 12 \
		"$(cnt "$out" "status 200")"
}

e2e_log "closed loop: 8 keep-alive clients x 6 requests of 100 ms, maxConnections 2 + 2 pending"
out=$(ka closed 10.96.3.10:9080 "/?delay_ms=100" --clients 8 --requests 6 --timeout 5)
check_burst "closed loop" "$out" 48
e2e_assert_ge "closed loop: the excess overflows" 1 "$(cnt "$out" overloaded)"
idle_never_refuses "after the closed loop" 10.96.3.10:9080

e2e_log "queued requests are served as connections free: 4 clients = 2 active + 2 pending"
out=$(ka closed 10.96.3.10:9080 "/?delay_ms=300" --clients 4 --requests 3 --timeout 5)
check_burst "exactly at the limit" "$out" 12
e2e_assert_eq "exactly at the limit: nothing refused" 12 "$(cnt "$out" "status 200")"

e2e_log "clients that give up: 8 requests of 1.5 s abandoned after 0.4 s"
out=$(ka abandon 10.96.3.10:9080 "/?delay_ms=1500" --clients 8 --timeout 0.4)
e2e_assert_eq "abandon: the refused got 503 at once, the others timed out" 8 \
	$(( $(cnt "$out" overloaded) + $(cnt "$out" timeout) ))
sleep 1.6
idle_never_refuses "after abandoned requests" 10.96.3.10:9080

e2e_log "open loop: 60 req/s for 2 s of 150 ms requests (about 9 in flight, limit 2 + 2)"
out=$(ka open 10.96.3.10:9080 "/?delay_ms=150" --rate 60 --duration 2 --timeout 5)
check_burst "open loop" "$out" 120
idle_never_refuses "after the open loop" 10.96.3.10:9080

e2e_log "a peer that closes idle connections: clients closing every 2 requests, server after 200 ms"
out=$(ka closed 10.96.3.20:9080 "/?delay_ms=50" --clients 6 --requests 8 --timeout 5 --close-every 2)
check_burst "closing peers" "$out" 48
sleep 0.5	# the server closes every pooled connection
out=$(ka closed 10.96.3.20:9080 "/?delay_ms=50" --clients 5 --requests 4 --timeout 5)
check_burst "pool of server-closed connections" "$out" 20
idle_never_refuses "after closing peers" 10.96.3.20:9080

e2e_log "http2MaxRequests 3: requests in flight bounded, the rest 503 at once"
# (3 s: the 6 are in flight together on a slow machine too)
out=$(ka closed 10.96.3.30:9080 "/?delay_ms=3000" --clients 6 --requests 1 --timeout 10)
check_burst "http2MaxRequests" "$out" 6
e2e_assert_eq "http2MaxRequests: 3 served" 3 "$(cnt "$out" "status 200")"
e2e_assert_eq "http2MaxRequests: 3 overflow" 3 "$(cnt "$out" overloaded)"
idle_never_refuses "after http2MaxRequests" 10.96.3.30:9080

e2e_log "graceful drain (agent SIGTERM) with keep-alive HTTP/1.1 clients"
# Envoy's HTTP/1 drain: the request in flight completes and its response
# carries Connection: close; the kept-alive connection idle between requests
# is closed at once, before that response (ordered events, not timings).
mesh_agent_stop
mesh_agent_start --keep-on-exit --l7-drain-time 10000 || exit 1
ka drain 10.96.3.10:9080 "/?delay_ms=1500" --timeout 8 >"$E2E_TMP/drain.out" 2>&1 &
dr_pid=$!
e2e_wait_for_line "$E2E_TMP/drain.out" '^started' 30 || { echo "FAIL: drain client"; cat "$E2E_TMP/drain.out"; }
mesh_agent_stop
wait "$dr_pid"
e2e_assert_eq "drain: the idle kept-alive connection closed first, the request in flight answered 200 with Connection: close" \
	"idle closed|inflight 200 connection=close" \
	"$(grep -E '^(idle|inflight)' "$E2E_TMP/drain.out" | tr '\n' '|' | sed 's/|$//')"
mesh_agent_start || exit 1

e2e_finish
