#!/bin/bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# gRPC through the L7 proxy with real peers (python3-grpcio client and
# servers, h2load): every RPC is routed and balanced on its own, HTTP/2 on
# both sides. Policy: tests/e2e/policies/grpc.yaml.
#
#  [VS] istio.io/latest/docs/reference/config/networking/virtual-service/
#       (HTTPRoute weights and header matches, HTTPRetry retryOn gRPC
#       policies, HTTPFaultInjection.Abort.grpcStatus, timeout)
#  [DR] istio.io/latest/docs/reference/config/networking/destination-rule/
#       (OutlierDetection.consecutive5xxErrors, ConnectionPoolSettings
#       .http.http2MaxRequests)
#  [PS] istio.io/latest/docs/ops/configuration/traffic-management/protocol-selection/
#  [EG] envoyproxy.io: gRPC status <-> HTTP status mapping (Grpc::Utility),
#       per-request load balancing of HTTP/2 streams

# shellcheck disable=SC1091
. "$(dirname "$0")/lib.sh"
# shellcheck disable=SC1091
. "$(dirname "$0")/mesh.sh"

e2e_require_root
GRPC=$E2E_ROOT/tests/e2e/grpc_echo.py
PY=/usr/bin/python3
MESH_AGENT_L7=1
mesh_up smgrpc 5 "$E2E_ROOT/tests/e2e/policies/grpc.yaml" || { echo "FAIL: mesh_up"; exit 1; }

sm_pod_spawn 2 $PY "$GRPC" serve 50051 g1 >"$E2E_TMP/grpc-2.out" 2>&1
sm_pod_spawn 3 $PY "$GRPC" serve 50051 g2 >"$E2E_TMP/grpc-3.out" 2>&1
sm_pod_spawn 4 $PY "$GRPC" serve 50051 g3 >"$E2E_TMP/grpc-4.out" 2>&1
G3_PID=$SM_LAST_PID
sm_pod_spawn 5 $PY "$GRPC" serve 50051 bad --fail UNAVAILABLE >"$E2E_TMP/grpc-5.out" 2>&1
sm_pod_spawn 5 $PY "$E2E_ROOT/tests/e2e/stall_peer.py" 50061 stall >"$E2E_TMP/grpc-stall.out" 2>&1
sm_pod_spawn 5 $PY "$E2E_ROOT/tests/e2e/stall_peer.py" 50062 reset >"$E2E_TMP/grpc-reset.out" 2>&1
for p in 2 3 4 5 stall reset; do
	e2e_wait_for_line "$E2E_TMP/grpc-$p.out" '^ready' 30 || { echo "FAIL: backend $p"; cat "$E2E_TMP/grpc-$p.out"; exit 1; }
done

g() { sm_pod_exec 1 timeout 60 $PY "$GRPC" "$@"; }
# field OUTPUT WORD KEY -> the count on the line "WORD KEY COUNT" (0 when absent)
field() { awk -v w="$2" -v k="$3" '$1 == w && $2 == k { print $3; f = 1 } END { if (!f) print 0 }' <<<"$1"; }
pstat() { ctl status -o json | jq -r ".proxy.$1 // 0"; }

e2e_log "[PS] grpc ports (name or appProtocol) are proxied at L7 with an HTTP/2 upstream"
svcs=$(ctl services)
e2e_assert_match "canary (port name grpc) is L7" 'default/canary +10\.96\.7\.10:50051 +L7' "$svcs"
e2e_assert_match "spread (appProtocol grpc) is L7" 'default/spread +10\.96\.7\.11:50051 +L7' "$svcs"

e2e_log "[DR] h2UpgradePolicy UPGRADE: a port declared http reaches the gRPC servers over HTTP/2"
out=$(g par 10.96.7.17:50051 8 Say up)
e2e_assert_eq "upgrade: 8 concurrent calls OK (maxConcurrentStreams 1: more upstream connections)" \
	"status OK 8" "$(grep '^status' <<<"$out")"

e2e_log "[EG] per-request balancing: 30 RPCs on ONE client connection reach all 3 backends (round robin)"
h0=$(pstat downstream_cx_http2)
cx0=$(pstat downstream_cx_total)
cl0=$(pstat downstream_cx_closed)
rq0=$(pstat downstream_rq_total)
out=$(g spread 10.96.7.11:50051 30)
for b in g1 g2 g3; do
	e2e_assert_ge "spread: $b answered on the shared connection" 5 "$(field "$out" backend "$b")"
done
e2e_assert_eq "spread: no errors" "" "$(grep '^error' <<<"$out")"
e2e_assert_eq "spread: exactly one client HTTP/2 connection" $((h0 + 1)) "$(pstat downstream_cx_http2)"
# cx counters count TCP connections, rq counters streams (Envoy's downstream_cx_* / _rq_*)
e2e_assert_eq "spread: downstream_cx_total +1 for 30 streams on one connection" $((cx0 + 1)) \
	"$(pstat downstream_cx_total)"
e2e_assert_eq "spread: downstream_rq_total +30" $((rq0 + 30)) "$(pstat downstream_rq_total)"
cx_closed_one() { [ "$(pstat downstream_cx_closed)" -ge $((cl0 + 1)) ]; }
e2e_wait_until 20 cx_closed_one
e2e_assert_eq "spread: downstream_cx_closed +1 once the client hung up" $((cl0 + 1)) \
	"$(pstat downstream_cx_closed)"

e2e_log "[VS] canary: 90/10 by weight, x-canary: 1 -> v2 (one connection each)"
out=$(g spread 10.96.7.10:50051 200)
v2=$(field "$out" backend g3)
v1=$(( $(field "$out" backend g1) + $(field "$out" backend g2) ))
e2e_assert_eq "canary: 200 answered" 200 $((v1 + v2))
e2e_assert_range "canary: v2 got about 10% (3..50 of 200)" 3 50 "$v2"
e2e_assert_ge "canary: v1 (both pods) carried the rest" 150 "$v1"
out=$(g spread 10.96.7.10:50051 20 --md x-canary=1)
e2e_assert_eq "canary: header x-canary: 1 -> all 20 on v2" 20 "$(field "$out" backend g3)"

e2e_log "[VS] mirror to an HTTP/2 cluster: the copy goes out as HTTP/2 (the gRPC server speaks nothing else)"
m0=$(pstat mirror_rq_sent)
e2e_assert_match "mirror: the call is answered by v1" '^reply g[12]:mirror-probe-1$' \
	"$(g call 10.96.7.18:50051 mirror-probe-1 | grep '^reply')"
e2e_assert_eq "mirror: one mirrored request sent" $((m0 + 1)) "$(pstat mirror_rq_sent)"
e2e_wait_for_line "$E2E_TMP/grpc-4.out" '^say mirror-probe-1$' 20
e2e_assert_eq "mirror: g3 (v2) got the copy over HTTP/2" "say mirror-probe-1" \
	"$(grep '^say mirror-probe' "$E2E_TMP/grpc-4.out")"

# mstreams_ok LABEL VIP N: client streaming (N x 1 kB) and bidi calls, both answered whole by v1
mstreams_ok() {
	local out
	out=$(g mstreams "$2" "$3")
	e2e_assert_match "$1: client streaming ($3 x 1 kB) answered whole by v1" \
		"^client-streaming g[12]:$3:${3}000\$" "$(grep '^client' <<<"$out")"
	e2e_assert_match "$1: bidi answered by v1" '^bidi g[12]:mirror-a g[12]:mirror-b g[12]:mirror-c$' \
		"$(grep '^bidi' <<<"$out")"
}
e2e_log "[VS] mirrors of streaming calls: client streaming (300 x 1 kB, over a window) and bidi, message by message"
s0=$(pstat mirror_rq_sent)
c0=$(pstat mirror_rq_completed)
mstreams_ok mirror 10.96.7.18:50051 300
e2e_assert_eq "mirror: two shadows sent" $((s0 + 2)) "$(pstat mirror_rq_sent)"
e2e_wait_for_line "$E2E_TMP/grpc-4.out" '^chat mirror-c$' 20
e2e_assert_eq "mirror: g3 (v2) got all 300 client-streaming messages (300000 bytes)" "sum 300 300000" \
	"$(grep '^sum ' "$E2E_TMP/grpc-4.out")"
e2e_assert_eq "mirror: g3 (v2) got the bidi messages, in order" "chat mirror-a chat mirror-b chat mirror-c" \
	"$(grep '^chat' "$E2E_TMP/grpc-4.out" | tr '\n' ' ' | sed 's/ $//')"
completed_two() { [ "$(pstat mirror_rq_completed)" -ge $((c0 + 2)) ]; }
e2e_assert_ok "mirror: both shadows answered (answers dropped)" e2e_wait_until 20 completed_two

e2e_log "[VS] the client cancels a streaming call mid-stream (RST_STREAM): its shadow is reset too"
k0=$(pstat mirror_rq_cancelled)
e2e_assert_match "cancel: the client cancelled the call" '^status CANCELLED$' \
	"$(g mcancel 10.96.7.18:50051)"
cancelled_one() { [ "$(pstat mirror_rq_cancelled)" -ge $((k0 + 1)) ]; }
e2e_assert_ok "cancel: mirror_rq_cancelled +1" e2e_wait_until 20 cancelled_one
e2e_assert_ok "cancel: g3 (v2) saw its shadow stream reset" \
	e2e_wait_for_line "$E2E_TMP/grpc-4.out" '^sum-reset [0-9]+ [0-9]+$' 20
e2e_assert_eq "cancel: and no whole call" "sum 300 300000" "$(grep '^sum ' "$E2E_TMP/grpc-4.out")"

e2e_log "[VS] a mirror that accepts and never reads: abandoned past 1 MiB unsent, the calls go on"
a0=$(pstat mirror_rq_abandoned)
mstreams_ok stall 10.96.7.19:50051 4000
e2e_assert_eq "stall: the client-streaming shadow was abandoned" $((a0 + 1)) "$(pstat mirror_rq_abandoned)"

e2e_log "[VS] a mirror that resets its connections: the shadows fail, the calls do not"
f0=$(pstat mirror_rq_failed)
e2e_assert_eq "reset: 3 calls answered" "ok 3" "$(g call 10.96.7.20:50051 mirror-r --count 3 | grep '^ok')"
failed_three() { [ "$(pstat mirror_rq_failed)" -ge $((f0 + 3)) ]; }
e2e_assert_ok "reset: mirror_rq_failed +3" e2e_wait_until 20 failed_three

e2e_log "streaming RPCs (server, client with 200 kB > one flow-control window, bidi) through the proxy"
out=$(g streams 10.96.7.11:50051)
e2e_assert_match "server streaming: 50 messages" '^server-streaming 50 g[123]:49$' "$(grep '^server' <<<"$out")"
e2e_assert_match "client streaming: 200 messages, 200000 bytes" '^client-streaming g[123]:200:200000$' \
	"$(grep '^client' <<<"$out")"
e2e_assert_match "bidi: 3 echoed" '^bidi g[123]:a g[123]:b g[123]:c$' "$(grep '^bidi' <<<"$out")"
# istio_request/response_messages_total: gRPC messages each way on spread
# (so far: 30 unary calls, then 1 + 50 server streaming, 200 + 1 client
# streaming, 3 + 3 bidi)
msgs() { # msgs request|response -> the spread service's total
	curl -sS -m 5 --unix-socket "$E2E_TMP/admin.sock" http://localhost/metrics |
		awk -v m="istio_$1_messages_total" '$1 ~ "^" m "[{]" && /destination_service_name="spread"/ { s += $2 }
			END { print s + 0 }'
}
# (a call is accounted just after its last frame went out: wait for the last one)
msgs_in() { [ "$(msgs request)" -ge 234 ] && [ "$(msgs response)" -ge 84 ]; }
e2e_wait_until 20 msgs_in || e2e_log "(messages fell short)"
e2e_assert_eq "istio_request_messages_total: 30 + 1 + 200 + 3 client messages" 234 "$(msgs request)"
e2e_assert_eq "istio_response_messages_total: 30 + 50 + 1 + 3 server messages" 84 "$(msgs response)"

e2e_log "status codes travel in trailers; deadlines"
e2e_assert_eq "NOT_FOUND from the server" "status NOT_FOUND" "$(g status 10.96.7.11:50051 Fail NOT_FOUND)"
e2e_assert_eq "PERMISSION_DENIED from the server" "status PERMISSION_DENIED" \
	"$(g status 10.96.7.11:50051 Fail PERMISSION_DENIED)"
e2e_assert_eq "unknown method: UNIMPLEMENTED" "status UNIMPLEMENTED" "$(g status 10.96.7.11:50051 Nope x)"
ut0=$(pstat response_flags.UT)
# the client's deadline travels as grpc-timeout: the proxy gives up then too
out=$(g status 10.96.7.11:50051 Sleep 3 --timeout 0.5)
e2e_assert_match "client deadline 0.5 s on a 3 s call ends it" '^status (DEADLINE_EXCEEDED|UNAVAILABLE)$' "$out"
# the proxy's deadline is the client's plus the hop (and ms rounding): wait for it to pass
ut_after() { [ "$(pstat response_flags.UT)" -gt "$ut0" ]; }
e2e_wait_until 20 ut_after
e2e_assert_ge "the proxy timed it out too (grpc-timeout honoured: UT)" $((ut0 + 1)) "$(pstat response_flags.UT)"
e2e_assert_eq "[VS] route timeout 300 ms -> UNAVAILABLE (Envoy maps 504)" "status UNAVAILABLE" \
	"$(g status 10.96.7.10:50051 Sleep 3 --timeout 10)"

e2e_log "[VS] retries: retryOn unavailable hides the backend that answers UNAVAILABLE"
r0=$(pstat upstream_rq_retry)
out=$(g spread 10.96.7.12:50051 20)
e2e_assert_eq "retry: 20 answered by g1" 20 "$(field "$out" backend g1)"
e2e_assert_eq "retry: no errors" "" "$(grep '^error' <<<"$out")"
e2e_assert_ge "retry: the proxy retried" $((r0 + 5)) "$(pstat upstream_rq_retry)"
out=$(g spread 10.96.7.13:50051 20)
e2e_assert_ge "no retries (attempts: 0): UNAVAILABLE reaches the client" 5 "$(field "$out" error UNAVAILABLE)"

e2e_log "[DR] outlier detection: 2 consecutive UNAVAILABLE (503 to Envoy) eject the bad backend"
out=$(g spread 10.96.7.14:50051 40)
e2e_assert_range "outlier: 1..3 failures before the ejection" 1 3 "$(field "$out" error UNAVAILABLE)"
e2e_assert_ge "outlier: g1 answered the rest" 37 "$(field "$out" backend g1)"

e2e_log "[VS] fault abort.grpcStatus"
e2e_assert_eq "Say aborted with RESOURCE_EXHAUSTED" "status RESOURCE_EXHAUSTED" "$(g status 10.96.7.15:50051 Say x)"
e2e_assert_eq "another method passes" "status OK" "$(g status 10.96.7.15:50051 Sleep 0)"

e2e_log "[DR] http2MaxRequests 1: concurrent RPCs overflow as UNAVAILABLE (503 + x-envoy-overloaded)"
uo0=$(pstat response_flags.UO)
out=$(g par 10.96.7.16:50051 6 Sleep 2)	# (2 s: they overlap on a slow machine too)
e2e_assert_ge "overflow: at least one call completed" 1 "$(field "$out" status OK)"
e2e_assert_ge "overflow: others got UNAVAILABLE" 1 "$(field "$out" status UNAVAILABLE)"
e2e_assert_ge "overflow: counted as UO" $((uo0 + 1)) "$(pstat response_flags.UO)"

e2e_log "[STD] telemetry: request_protocol=\"grpc\", grpc_response_status from trailers and trailers-only replies"
M=$(curl -sS -m 5 --unix-socket "$E2E_TMP/admin.sock" http://localhost/metrics)
e2e_assert_match "gRPC OK counted (status in trailers)" \
	'istio_requests_total\{[^}]*destination_service_name="spread"[^}]*request_protocol="grpc",response_code="200",grpc_response_status="0"' "$M"
e2e_assert_match "gRPC UNAVAILABLE counted (trailers-only from the backend)" \
	'istio_requests_total\{[^}]*destination_service_name="noretry"[^}]*request_protocol="grpc",response_code="200",grpc_response_status="14"' "$M"
e2e_assert_match "gRPC fault abort counted with its grpc-status" \
	'istio_requests_total\{[^}]*destination_service_name="fault"[^}]*request_protocol="grpc",response_code="200",grpc_response_status="8"' "$M"
e2e_assert_match "gRPC overflow: 503 UO reported as UNAVAILABLE" \
	'istio_requests_total\{[^}]*destination_service_name="overflow"[^}]*request_protocol="grpc",response_code="503",grpc_response_status="14",response_flags="UO"' "$M"

e2e_log "hostile HTTP/2 clients get a bounded answer; the proxy keeps serving others"
HOSTILE=$E2E_ROOT/tests/e2e/h2_hostile.py
hostile() { sm_pod_exec 1 timeout 30 $PY "$HOSTILE" 10.96.7.11:50051 "$@"; }
# nghttp2's stream reset rate limit ends the session (GOAWAY INTERNAL_ERROR in 1.52)
e2e_assert_match "rapid reset (5000 x HEADERS+RST_STREAM): connection ended" \
	'^(goaway [0-9]+|closed)$' "$(hostile rapid-reset 5000)"
e2e_assert_match "CONTINUATION flood (200 frames): connection ended" '^(goaway [0-9]+|closed)$' \
	"$(hostile continuation 200)"
e2e_assert_eq "header list over 64 KiB (5 x 16 kB fields): the stream is reset, the connection stays" \
	alive "$(hostile big-headers 80000)"
e2e_assert_match "PING flood, ACKs unread (100000): connection ended" '^(goaway [0-9]+|closed)$' \
	"$(hostile ping-flood 100000)"
e2e_assert_match "SETTINGS flood, ACKs unread (100000): connection ended" '^(goaway [0-9]+|closed)$' \
	"$(hostile settings-flood 100000)"
out=$(g call 10.96.7.11:50051 still --count 5)
e2e_assert_eq "gRPC still served after the attacks" "ok 5" "$(grep '^ok' <<<"$out")"

printf '\0\0\0\0\1x' >"$E2E_TMP/req.bin"
e2e_log "an HTTP/1.1 client reaches the HTTP/2 backend (translated both ways, trailers included)"
out=$(sm_pod_exec 1 curl -sS -m 5 --http1.1 --raw -D - -H 'content-type: application/grpc' -H 'te: trailers' \
	--data-binary @"$E2E_TMP/req.bin" http://10.96.7.11:50051/sm.Echo/Say | tr -d '\0\r')
e2e_assert_match "HTTP/1.1 200, chunked" 'HTTP/1.1 200 OK.*transfer-encoding: chunked' "$(tr '\n' ' ' <<<"$out")"
e2e_assert_match "the gRPC message came back" 'g[123]:x' "$out"
e2e_assert_match "grpc-status 0 in the chunked trailers" 'grpc-status: 0' "$out"

e2e_log "h2load: a small bounded run of gRPC-shaped POSTs on 2 connections x 4 streams"
out=$(sm_pod_exec 1 timeout 30 h2load -n 200 -c 2 -m 4 -d "$E2E_TMP/req.bin" \
	-H 'content-type: application/grpc' -H 'te: trailers' http://10.96.7.11:50051/sm.Echo/Say)
e2e_assert_match "h2load: 200 succeeded" '200 succeeded, 0 failed' "$out"

e2e_log "every shadow ends counted once: sent = completed + failed + abandoned + cancelled"
mirror_settled() {
	local o
	o=$(ctl status -o json | jq -r '.proxy | .mirror_rq_sent - .mirror_rq_completed -
		.mirror_rq_failed - .mirror_rq_abandoned - .mirror_rq_cancelled')
	[ "$o" = 0 ]
}
# the stall mirror's bidi shadow is whole but never answered: it times out (10 s)
e2e_assert_ok "mirror: no shadow left in flight, each counted once" e2e_wait_until 40 mirror_settled
prom_mirror() { # prom_mirror RESULT -> sockmesh_proxy_mirror_requests_total{result=RESULT}
	curl -sS -m 5 --unix-socket "$E2E_TMP/admin.sock" http://localhost/metrics |
		awk -v k="sockmesh_proxy_mirror_requests_total{result=\"$1\"}" '$1 == k { print $2 }'
}
for k in sent completed failed abandoned cancelled; do
	e2e_assert_eq "metrics: sockmesh_proxy_mirror_requests_total{result=\"$k\"} = mirror_rq_$k" \
		"$(pstat "mirror_rq_$k")" "$(prom_mirror "$k")"
done

e2e_log "agent restart (--keep-on-exit) under gRPC load: GOAWAY, in-flight streams finish, clients reconnect"
# What is asserted, and why it is exact rather than timed:
#  - a server stream (20 messages, 0.1 s apart) that is in flight when the
#    agent gets SIGTERM delivers all 20: the proxy sends GOAWAY and keeps the
#    connection until its streams complete (--l7-drain-time 10 s bounds it);
#  - a client doing 300 unary RPCs, 4 in flight, retries off client-side, has
#    0 failures across the restart: GOAWAY(2^31-1) first, the final GOAWAY
#    (last processed stream) 100 ms later, so no stream the client sent is
#    refused; its new connection is made while no agent runs (the kernel
#    balances L7 ports at L4 then) or to the new agent;
#  - a raw HTTP/2 client with an 8 s call in flight (started first, so it
#    is still in flight when the other clients are up on a slow machine) sees exactly Envoy's
#    sequence: GOAWAY(2^31-1, NO_ERROR), GOAWAY(1 = its stream, NO_ERROR), the
#    response ending on stream 1, then the close;
#  - connections opened once the new agent is up are served by its proxy;
#  - the new agent adopts the pinned maps, plus stale entries a crashed
#    agent could have left (40 L7 service ports with their clusters, sets,
#    routes, backends and names): its sweep, a slice per loop turn, deletes
#    every stale entry and nothing that serves: from its start until it is
#    done (and once after), each round a GET /healthz answers and 3 RPCs on
#    a new connection to an L7 VIP are answered.
mesh_agent_stop
mesh_agent_start --keep-on-exit --l7-drain-time 10000 || exit 1
sm_pod_exec 1 timeout 60 $PY "$GRPC" count 10.96.7.10:50051 20 0.1 --md x-canary=1 >"$E2E_TMP/rs-count.out" 2>&1 &
rs_cpid=$!
sm_pod_exec 1 timeout 60 $PY "$GRPC" load 10.96.7.11:50051 300 4 0.05 >"$E2E_TMP/rs-load.out" 2>&1 &
rs_lpid=$!
sm_pod_exec 1 timeout 60 $PY "$E2E_ROOT/tests/e2e/h2_hostile.py" 10.96.7.11:50051 goaway-watch 8000 \
	>"$E2E_TMP/rs-watch.out" 2>&1 &
rs_wpid=$!
e2e_wait_for_line "$E2E_TMP/rs-watch.out" '^ready' 30 || { echo "FAIL: watch did not start"; cat "$E2E_TMP/rs-watch.out"; }
e2e_wait_for_line "$E2E_TMP/rs-count.out" '^first' 30 || { echo "FAIL: stream did not start"; cat "$E2E_TMP/rs-count.out"; }
e2e_wait_for_line "$E2E_TMP/rs-load.out" '^started' 30 || { echo "FAIL: load did not start"; cat "$E2E_TMP/rs-load.out"; }
mesh_agent_stop
e2e_assert_eq "pins stay (--keep-on-exit)" yes "$([ -e "$SM_PIN/maps/sm_svc" ] && echo yes)"
mesh_plant_stale 40 50051
e2e_assert_eq "stale entries planted in the pinned maps" 240 "$(mesh_stale_left)"
mesh_agent_start || exit 1
sweep_rpc() { # 3 RPCs on a new connection, all answered
	local out
	out=$(g spread 10.96.7.11:50051 3)
	[ $(( $(field "$out" backend g1) + $(field "$out" backend g2) + $(field "$out" backend g3) )) -eq 3 ]
}
mesh_sweep_probe 60 sweep_rpc >"$E2E_TMP/sweep-probe.out" 2>&1 &
rs_ppid=$!
wait "$rs_cpid"
wait "$rs_lpid"
wait "$rs_wpid"
wait "$rs_ppid"
mesh_sweep_assert "$(cat "$E2E_TMP/sweep-probe.out")" "3 RPCs on a new connection answered"
e2e_assert_eq "the L7 service ports are all there (as before the restart)" \
	"$(grep -c ' L7 ' <<<"$svcs")" "$(ctl services | grep -c ' L7 ')"
e2e_assert_eq "raw h2 client: GOAWAY 2^31-1, then GOAWAY with its stream 1 as the last, both NO_ERROR" \
	"goaway 2147483647 0 goaway 1 0" "$(grep '^goaway' "$E2E_TMP/rs-watch.out" | tr '\n' ' ' | sed 's/ $//')"
e2e_assert_eq "raw h2 client: its call in flight completed, then the proxy closed" "end 1 closed" \
	"$(grep -E '^(end|reset|closed|timeout)' "$E2E_TMP/rs-watch.out" | tr '\n' ' ' | sed 's/ $//')"
e2e_assert_eq "the stream in flight at the GOAWAY got all 20 messages" "count 20 g3:19" \
	"$(grep -E '^(count|error)' "$E2E_TMP/rs-count.out")"
e2e_assert_eq "load across the restart: 300 RPCs, 0 failed" "status OK 300" \
	"$(grep '^status' "$E2E_TMP/rs-load.out" | tr '\n' ' ' | sed 's/ $//')"
out=$(g spread 10.96.7.11:50051 30)
e2e_assert_eq "after the restart: 30 RPCs answered on a new connection" 30 \
	$(( $(field "$out" backend g1) + $(field "$out" backend g2) + $(field "$out" backend g3) ))
e2e_assert_ge "... through the new agent's proxy (its HTTP/2 client connections)" 1 \
	"$(pstat downstream_cx_http2)"

e2e_log "a backend's GOAWAY mid-stream (graceful stop): the stream in flight completes, new RPCs go elsewhere"
sm_pod_exec 1 timeout 60 $PY "$GRPC" count 10.96.7.10:50051 20 0.1 --md x-canary=1 >"$E2E_TMP/count.out" 2>&1 &
cpid=$!
e2e_wait_for_line "$E2E_TMP/count.out" '^first' 30 || { echo "FAIL: stream did not start"; cat "$E2E_TMP/count.out"; }
kill -TERM "$G3_PID"
e2e_wait_for_line "$E2E_TMP/grpc-4.out" '^stopping' 30 || echo "FAIL: g3 did not start stopping"
wait "$cpid"
e2e_assert_eq "the stream on g3 got all 20 messages across g3's GOAWAY" "count 20 g3:19" \
	"$(grep -E '^(count|error)' "$E2E_TMP/count.out")"
wait_gone() { ! sm_pod_exec 4 bash -c 'exec 3<>/dev/tcp/127.0.0.1/50051' 2>/dev/null; }
e2e_wait_until 30 wait_gone || echo "FAIL: g3 still listening"
out=$(g spread 10.96.7.11:50051 30)
e2e_assert_eq "g3 gone: its connect failures are retried (Istio default connect-failure) onto g1/g2" 30 \
	$(( $(field "$out" backend g1) + $(field "$out" backend g2) ))

e2e_finish
