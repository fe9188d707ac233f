#!/bin/bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# The L7 agent end to end: pods dial Service VIPs, connect4 sends HTTP ports
# to the agent's proxy (listening in the node namespace), which routes by
# the VirtualServices and DestinationRules in tests/e2e/policies/l7.yaml.

# shellcheck disable=SC1091
. "$(dirname "$0")/lib.sh"
# shellcheck disable=SC1091
. "$(dirname "$0")/mesh.sh"

e2e_require_root
HTTP=$E2E_TOOLS/sm-http
HREQ=$E2E_TOOLS/sm-hreq
for t in "$HTTP" "$HREQ"; do
	[ -x "$t" ] || { echo "FAIL: $t missing"; exit 1; }
done
MESH_AGENT_L7=1
mesh_up sml7 5 "$E2E_ROOT/tests/e2e/policies/l7.yaml" || { echo "FAIL: mesh_up"; exit 1; }

for p in 2 3 4; do
	sm_pod_spawn "$p" "$HTTP" --port 9080 --id "v$((p - 1))" >"$E2E_TMP/http-$p.out" 2>&1
	echo "$SM_LAST_PID" >"$E2E_TMP/http-$p.pid"
done
sm_pod_spawn 2 "$HTTP" --port 9081 --id v1-bad --status 500 >"$E2E_TMP/http-2b.out" 2>&1
sm_pod_spawn 3 "$HTTP" --port 9081 --id v2-good >"$E2E_TMP/http-3b.out" 2>&1
sm_pod_spawn 4 "$HTTP" --port 9081 --id v3-good >"$E2E_TMP/http-4b.out" 2>&1
for f in "$E2E_TMP"/http-*.out; do
	e2e_wait_for_line "$f" '^ready' 20 || { echo "FAIL: backend $f"; cat "$f"; exit 1; }
done

hreq() { local pod=$1; shift; sm_pod_exec "$pod" "$HREQ" "$@"; }
cnt() { # cnt OUTPUT KEY... -> N (0 when absent)
	local out=$1; shift
	awk -v k="$*" '{ v = $NF; $NF = ""; sub(/ $/, ""); if ($0 == k) { print v; f = 1 } } END { if (!f) print 0 }' <<<"$out"
}

e2e_log "L7 path selection"
e2e_assert_match "services shows reviews on L7" 'default/reviews +10\.96\.1\.20:9080 +L7' "$(ctl services)"
e2e_assert_match "services -o json says why" 'VirtualService default/reviews' \
	"$(ctl services -o json | jq -r '.services[] | select(.name=="default/reviews") | .why')"
e2e_assert_match "routes lists the jason rule first" '#0 +headers\[end-user\] exact jason' "$(ctl routes reviews)"

e2e_log "header route: end-user: jason -> v2 only"
out=$(hreq 1 --addr 10.96.1.20:9080 --count 100 -H 'end-user: jason')
e2e_assert_eq "100 x 200" 100 "$(cnt "$out" status 200)"
e2e_assert_eq "all v2" 100 "$(cnt "$out" backend v2)"
out=$(hreq 1 --addr 10.96.1.20:9080 --count 50 -H 'end-user: jasonx')
e2e_assert_eq "exact match only (jasonx is not jason)" 0 "$(cnt "$out" backend v2)"

e2e_log "90/10 canary over 2000 requests"
out=$(hreq 1 --addr 10.96.1.20:9080 --count 2000 --conns 4)
e2e_assert_range "v1 90% +-3% ($(cnt "$out" backend v1))" 1740 1860 "$(cnt "$out" backend v1)"
e2e_assert_range "v3 10% +-3% ($(cnt "$out" backend v3))" 140 260 "$(cnt "$out" backend v3)"
e2e_assert_eq "all 200" 2000 "$(cnt "$out" status 200)"

e2e_log "rewrite and response headers"
out=$(hreq 1 --addr 10.96.1.20:9080 --path /v3only/x --print)
e2e_assert_match "routed to v3" 'x-backend: v3' "$out"
e2e_assert_match "uri prefix rewritten" 'path=/rewritten/x' "$out"
e2e_assert_match "response header set" 'x-sockmesh-route: v3only' "$out"
e2e_assert_match "x-request-id added" 'hdr x-request-id: [0-9a-f-]{36}' "$out"

e2e_log "retries turn a flaky backend's 503s into 200s"
out=$(hreq 1 --addr 10.96.1.30:9080 --path "/retry/a?flaky=2" --count 1)
e2e_assert_eq "200 after two 503s" 1 "$(cnt "$out" status 200)"

e2e_log "timeout: 504 on time"
t0=$(date +%s%N)
out=$(hreq 1 --addr 10.96.1.30:9080 --path "/timeout?delay_ms=3000" --count 1)
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
e2e_assert_eq "504" 1 "$(cnt "$out" status 504)"
e2e_assert_range "after ~0.5 s (${ms} ms)" 400 1500 "$ms"

e2e_log "fault injection"
out=$(hreq 1 --addr 10.96.1.30:9080 --path /abort --count 1000 --conns 4)
e2e_assert_range "abort 418 at 30% +-5% ($(cnt "$out" status 418))" 250 350 "$(cnt "$out" status 418)"
t0=$(date +%s%N)
out=$(hreq 1 --addr 10.96.1.30:9080 --path /delay --count 3)
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
e2e_assert_eq "delayed requests succeed" 3 "$(cnt "$out" status 200)"
e2e_assert_range "3 x 300 ms delay (${ms} ms)" 850 2500 "$ms"

e2e_log "direct response and redirect"
out=$(hreq 1 --addr 10.96.1.30:9080 --path /direct --print)
e2e_assert_match "direct 299" '^HTTP/1.1 299' "$out"
e2e_assert_match "direct body" 'hello from sockmesh' "$out"
out=$(hreq 1 --addr 10.96.1.30:9080 --path /moved --print)
e2e_assert_match "redirect 308" '^HTTP/1.1 308' "$out"
e2e_assert_match "location" '[Ll]ocation: http://[^/]*/new-home' "$out"

# Envoy's pools are per worker (the agent runs 2): a pool with no connection
# always gets one ("Circuit breaking": at most one connection per pool over
# maxConnections), so a second worker may admit one more than 1 + 1.
e2e_log "circuit breaker: maxConnections 1, http1MaxPendingRequests 1, slow backend"
# (3 s: all 5 arrive while the first is in flight, on a slow machine too)
out=$(hreq 1 --addr 10.96.1.40:9080 --path "/slow?delay_ms=3000" --count 5 --conns 5)
e2e_assert_range "admitted: one active (per worker pool) + one pending succeed" 2 3 "$(cnt "$out" status 200)"
e2e_assert_eq "the excess gets 503 at once" $((5 - $(cnt "$out" status 200))) "$(cnt "$out" status 503)"
e2e_assert_eq "with x-envoy-overloaded: true" "$(cnt "$out" status 503)" "$(cnt "$out" header x-envoy-overloaded: true)"

e2e_log "outlier detection: 3 consecutive 500s eject v1 (L7 and L4) for 6 s"
out=$(hreq 1 --addr 10.96.1.50:9080 --count 12)
e2e_assert_eq "v1 answered exactly 3 times before ejection" 3 "$(cnt "$out" backend v1-bad)"
e2e_assert_match "backends shows the ejection" '10\.244\.0\.12:9081 .*ejected' "$(ctl backends flaky)"
out=$(hreq 1 --addr 10.96.1.50:9080 --count 20)
e2e_assert_eq "no L7 traffic to the ejected host" 0 "$(cnt "$out" backend v1-bad)"
e2e_assert_ge "backends counts the L7 requests per backend" 3 \
	"$(ctl backends flaky -o json | jq -r '.backends[] | select(.address=="10.244.0.12" and .port==9081) | .requests')"
e2e_assert_eq "kernel map: ejected for L4 too" ejected \
	"$(ctl backends flaky -o json | jq -r '.backends[] | select(.address=="10.244.0.12" and .port==9081) | .state')"
e2e_wait_until 30 bash -c "$CTL --admin-socket $E2E_TMP/admin.sock backends flaky | grep -q '10.244.0.12:9081 .* ready '"
out=$(hreq 1 --addr 10.96.1.50:9080 --count 6)
e2e_assert_ge "returned after baseEjectionTime" 1 "$(cnt "$out" backend v1-bad)"

e2e_log "Gateway routes by host and path"
out=$(hreq 1 --addr 10.244.0.1:8080 --host bookinfo.example.com --path /reviews/1 --count 5)
e2e_assert_eq "/reviews -> v2" 5 "$(cnt "$out" backend v2)"
out=$(hreq 1 --addr 10.244.0.1:8080 --host bookinfo.example.com --path /details/1 --count 5)
e2e_assert_eq "/details -> details (v1)" 5 "$(cnt "$out" backend v1)"
out=$(hreq 1 --addr 10.244.0.1:8080 --host other.example.com --path /reviews/1 --count 1)
e2e_assert_eq "unknown host -> 404" 1 "$(cnt "$out" status 404)"

e2e_log "HTTP/1.1 features through the proxy"
out=$(hreq 1 --addr 10.96.1.20:9080 --count 200 -H 'end-user: jason')
e2e_assert_eq "keep-alive: 200 requests" 200 "$(cnt "$out" status 200)"
out=$(hreq 1 --addr 10.96.1.20:9080 --path "/c?chunked=1&body_bytes=300000" --count 3 -H 'end-user: jason')
e2e_assert_eq "chunked responses" 3 "$(cnt "$out" status 200)"
head -c 200000 /dev/urandom >"$E2E_TMP/body"
out=$(sm_pod_exec 1 curl -sS -m 10 -H 'end-user: jason' -H 'Expect: 100-continue' \
	--data-binary @"$E2E_TMP/body" http://10.96.1.20:9080/upload)
e2e_assert_match "100-continue upload, body arrives whole" 'body_bytes_received=200000' "$out"
out=$(sm_pod_exec 1 curl -sS -m 10 -H 'end-user: jason' -H 'Transfer-Encoding: chunked' \
	--data-binary @"$E2E_TMP/body" http://10.96.1.20:9080/upload)
e2e_assert_match "chunked upload" 'body_bytes_received=200000' "$out"
out=$(sm_pod_exec 1 curl -sS -m 10 --http1.0 -H 'end-user: jason' http://10.96.1.20:9080/old)
e2e_assert_match "HTTP/1.0 client" 'id=v2' "$out"
ws=$(sm_pod_exec 1 bash -c 'exec 3<>/dev/tcp/10.96.1.20/9080
printf "GET /ws HTTP/1.1\r\nHost: reviews\r\nend-user: jason\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n" >&3
timeout 10 head -c 129 <&3 >/tmp/.ws.$$ & sleep 0.3; printf "ping-through-tunnel" >&3; wait; cat /tmp/.ws.$$; rm -f /tmp/.ws.$$')
e2e_assert_match "websocket: 101" 'HTTP/1.1 101' "$ws"
e2e_assert_match "websocket: accept key" 's3pPLMBiTxaQ9kYGzzhZRbK\+xOo=' "$ws"

e2e_log "hostile input"
bad=$(sm_pod_exec 1 bash -c 'exec 3<>/dev/tcp/10.96.1.20/9080
printf "POST / HTTP/1.1\r\nHost: r\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" >&3; timeout 10 head -c 12 <&3')
e2e_assert_eq "CL+TE smuggling -> 400" "HTTP/1.1 400" "$bad"
out=$(hreq 1 --addr 10.96.1.20:9080 --count 5 -H 'end-user: jason')
e2e_assert_eq "the next connection still works" 5 "$(cnt "$out" status 200)"
direct=$(sm_pod_exec 1 bash -c 'exec 3<>/dev/tcp/10.244.0.1/15001 || exit 0
printf "GET / HTTP/1.1\r\nHost: x\r\n\r\n" >&3; timeout 3 cat <&3 2>/dev/null | head -c 20')
e2e_assert_eq "direct connect to the listener: refused (no open relay)" "" "$direct"

e2e_log "a real server (nginx) behind the proxy"
if command -v nginx >/dev/null 2>&1; then
	mkdir -p "$E2E_TMP/nginx/www"
	head -c 1024 /dev/zero | tr '\0' 'n' >"$E2E_TMP/nginx/www/index.html"
	cat >"$E2E_TMP/nginx/nginx.conf" <<NGX
daemon off; master_process off; worker_processes 1; user root;
pid $E2E_TMP/nginx/nginx.pid; error_log $E2E_TMP/nginx/error.log;
events { worker_connections 256; }
http { access_log off; keepalive_requests 100000;
  client_body_temp_path $E2E_TMP/nginx; proxy_temp_path $E2E_TMP/nginx;
  fastcgi_temp_path $E2E_TMP/nginx; uwsgi_temp_path $E2E_TMP/nginx; scgi_temp_path $E2E_TMP/nginx;
  server { listen 9082; root $E2E_TMP/nginx/www; } }
NGX
	sm_pod_spawn 3 nginx -c "$E2E_TMP/nginx/nginx.conf" -p "$E2E_TMP/nginx" >"$E2E_TMP/nginx/out" 2>&1
	e2e_wait_until 20 sm_pod_exec 3 curl -s -o /dev/null http://127.0.0.1:9082/
	out=$(hreq 1 --addr 10.96.1.60:80 --count 500 --conns 4)
	e2e_assert_eq "500 keep-alive requests to nginx through the VIP" 500 "$(cnt "$out" status 200)"
	e2e_assert_eq "curl gets the 1 KiB page" 1024 \
		"$(sm_pod_exec 1 curl -s -m 5 http://10.96.1.60/index.html | wc -c)"
elif [ "${CI:-}" = true ]; then
	e2e_assert_eq "nginx installed (make deps)" yes no
else
	echo "SKIP nginx part: nginx not installed (make deps installs it)"
fi

e2e_log "the proxy's hops ride the sk_msg short cut"
r0=$(mesh_counter redirect)
out=$(hreq 1 --addr 10.96.1.20:9080 --count 300 -H 'end-user: jason')
r1=$(mesh_counter redirect)
e2e_assert_eq "300 requests" 300 "$(cnt "$out" status 200)"
e2e_assert_ok "redirects rose by at least 2 per request ($r0 -> $r1)" test $((r1 - r0)) -ge 600
e2e_assert_eq "proxy sockets joined the sockhash" "" "$(grep 'not added to sm_sock_hash' "$E2E_TMP/agent.log")"

e2e_log "the agent's counters"
e2e_assert_ok "connect_l7 counted" test "$(mesh_counter connect_l7)" -gt 0
e2e_assert_ok "ejection counted" test "$(ctl status -o json | jq .outlier_ejections)" -ge 1
e2e_log "agent down: L7 ports fall back to the kernel at L4 instead of failing"
mesh_agent_stop
mesh_agent_start --keep-on-exit || exit 1
mesh_agent_stop
e2e_assert_eq "pins stay (--keep-on-exit)" yes "$([ -e "$SM_PIN/maps/sm_svc" ] && echo yes)"
out=$(hreq 1 --addr 10.96.1.20:9080 --count 30)
e2e_assert_eq "requests still answered by a reviews pod" 30 "$(cnt "$out" status 200)"
e2e_assert_ok "counted as L7 fallback (one keep-alive connection)" test "$(ctl status -o json | jq .counters.l7_fallback_l4)" -ge 1
e2e_log "the new agent adopts the maps (and stale entries a crash could leave) and sweeps them while serving"
mesh_plant_stale 40 9080
e2e_assert_eq "stale entries planted in the pinned maps" 240 "$(mesh_stale_left)"
mesh_agent_start || exit 1
sweep_req() { # 3 requests on a new connection, routed by the new agent's proxy
	[ "$(cnt "$(hreq 1 --addr 10.96.1.20:9080 --count 3 -H 'end-user: jason')" backend v2)" = 3 ]
}
mesh_sweep_assert "$(mesh_sweep_probe 60 sweep_req)" "3 requests routed (end-user: jason -> v2)"
out=$(hreq 1 --addr 10.96.1.20:9080 --count 20 -H 'end-user: jason')
e2e_assert_eq "L7 routing back with the new agent" 20 "$(cnt "$out" backend v2)"
e2e_finish
