#!/bin/bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# A matrix of Istio L7 behaviours, one scenario per documented behaviour,
# each with the Istio/Envoy document it comes from; real clients (curl,
# sm-hreq, Python gRPC) dial Service VIPs from a pod through connect4 and
# the agent's proxy. Policy: tests/e2e/policies/l7matrix.yaml.
#
# Docs cited:
#  [VS]   istio.io/latest/docs/reference/config/networking/virtual-service/
#  [DR]   istio.io/latest/docs/reference/config/networking/destination-rule/
#  [PS]   istio.io/latest/docs/ops/configuration/traffic-management/protocol-selection/
#  [HM]   envoyproxy.io config.route.v3.HeaderMatcher (invert_match,
#         treat_missing_header_as_empty), as Istio's route translation sets it
#  [FI]   istio.io/latest/docs/tasks/traffic-management/fault-injection/
#  [STD]  istio.io/latest/docs/reference/config/metrics/ (istio_requests_total labels)
#  [RF]   envoyproxy.io access log format, %RESPONSE_FLAGS%

# shellcheck disable=SC1091
. "$(dirname "$0")/lib.sh"
# shellcheck disable=SC1091
. "$(dirname "$0")/mesh.sh"

e2e_require_root
HTTP=$E2E_TOOLS/sm-http
HREQ=$E2E_TOOLS/sm-hreq
GRPC=$E2E_ROOT/tests/e2e/grpc_echo.py
for t in "$HTTP" "$HREQ"; do
	[ -x "$t" ] || { echo "FAIL: $t missing"; exit 1; }
done
MESH_AGENT_L7=1
mesh_up smmx 3 "$E2E_ROOT/tests/e2e/policies/l7matrix.yaml" || { echo "FAIL: mesh_up"; exit 1; }

sm_pod_spawn 2 "$HTTP" --port 9080 --id v1 >"$E2E_TMP/http-2.out" 2>&1
sm_pod_spawn 3 "$HTTP" --port 9080 --id v2 --log >"$E2E_TMP/http-3.out" 2>&1
V2_PID=$SM_LAST_PID
sm_pod_spawn 3 /usr/bin/python3 "$E2E_ROOT/tests/e2e/stall_peer.py" 9091 stall >"$E2E_TMP/peer-stall.out" 2>&1
sm_pod_spawn 3 /usr/bin/python3 "$E2E_ROOT/tests/e2e/stall_peer.py" 9092 reset >"$E2E_TMP/peer-reset.out" 2>&1
sm_pod_spawn 2 /usr/bin/python3 "$GRPC" serve 50051 g1 >"$E2E_TMP/grpc-2.out" 2>&1
for f in "$E2E_TMP"/http-*.out "$E2E_TMP"/grpc-2.out "$E2E_TMP"/peer-*.out; do
	e2e_wait_for_line "$f" '^ready' 30 || { echo "FAIL: backend $f"; cat "$f"; exit 1; }
done

hreq() { sm_pod_exec 1 "$HREQ" --addr 10.96.4.10:9080 "$@"; }
cnt() { # cnt OUTPUT KEY... -> N (0 when absent)
	local out=$1; shift
	awk -v k="$*" '{ v = $NF; $NF = ""; sub(/ $/, ""); if ($0 == k) { print v; f = 1 } } END { if (!f) print 0 }' <<<"$out"
}
# to NAME PATH [sm-hreq args...]: 5 requests all answered by backend NAME
to() {
	local name=$1 path=$2 out
	shift 2
	out=$(hreq --path "$path" --count 5 "$@")
	e2e_assert_eq "$path ${*:-} -> $name" 5 "$(cnt "$out" backend "$name")"
}
metrics() { curl -sS -m 5 --unix-socket "$E2E_TMP/admin.sock" http://localhost/metrics; }

e2e_log "[VS] HTTPMatchRequest.withoutHeaders; [HM] invert_match + treat_missing_header_as_empty"
to v2 /wo-exact					# absent: "" is not "1" -> matches
to v1 /wo-exact -H 'x-legacy: 1'
to v2 /wo-exact -H 'x-legacy: 2'
to v2 /wo-prefix
to v1 /wo-prefix -H 'x-legacy: abc'
to v2 /wo-regex					# "" does not match a+
to v1 /wo-regex -H 'x-legacy: aaa'
to v2 /wo-present				# {}: matches only when absent
to v1 /wo-present -H 'x-legacy: x'

e2e_log "[VS] HTTPMatchRequest.headers: exact (case-sensitive value), presence {}, regex (whole value)"
to v2 /h-exact -H 'end-user: jason'
to v1 /h-exact -H 'end-user: Jason'
to v1 /h-exact
to v2 /h-present -H 'x-present: '
to v1 /h-present
to v2 /h-regex -H 'x-re: abbbc'
to v1 /h-regex -H 'x-re: abcd'

e2e_log "[VS] uri exact / prefix with ignoreUriCase / regex (RE2 full match), queryParams, method"
to v2 /exact
to v1 /exact/
to v2 /CI/x
to v2 /re/42
to v1 /re/42x
to v2 "/q?v=2"
to v1 "/q?v=20"
to v2 /m --method POST
to v1 /m

e2e_log "[VS] match blocks are ORed, http[] first match wins"
to v2 /or-a
to v2 /or-b/x
to v1 /other

e2e_log "[VS] HTTPRouteDestination.weight: 0 takes nothing"
to v2 /split

e2e_log "[VS] HTTPRewrite.uri replaces the matched prefix"
out=$(hreq --path /rw/x --print)
e2e_assert_match "/rw/x arrives as /new/x" 'path=/new/x' "$out"

e2e_log "[VS] Headers: request set, response add"
out=$(hreq --path /hs --print)
e2e_assert_match "request header set" 'hdr x-added: yes' "$out"
e2e_assert_match "response header added" '[Xx]-[Rr]esp: r' "$out"

e2e_log "[VS] HTTPDirectResponse and HTTPRedirect"
out=$(hreq --path /dr --print)
e2e_assert_match "direct response 299" '^HTTP/1.1 299' "$out"
out=$(hreq --path /old --print)
e2e_assert_match "redirect 301" '^HTTP/1.1 301' "$out"
e2e_assert_match "redirect location /new" '[Ll]ocation: http://[^/]*/new' "$out"

e2e_log "[VS] HTTPRoute.timeout: 504 UT; [VS] HTTPRetry: 5xx retried, attempts 0 = none"
out=$(hreq --path "/to?delay_ms=2000" --count 1)
e2e_assert_eq "timeout 0.3s -> 504" 1 "$(cnt "$out" status 504)"
out=$(hreq --path "/retry/a?flaky=2" --count 1)
e2e_assert_eq "two 503s retried -> 200" 1 "$(cnt "$out" status 200)"
out=$(hreq --path "/noretry/a?flaky=1" --count 1)
e2e_assert_eq "attempts 0: the 503 comes through" 1 "$(cnt "$out" status 503)"

e2e_log "[FI] fault abort; [VS] no matching route -> 404 NR"
out=$(hreq --path /fi --count 3)
e2e_assert_eq "abort 100% -> 418" 3 "$(cnt "$out" status 418)"
out=$(sm_pod_exec 1 "$HREQ" --addr 10.96.4.11:9080 --path /nope --count 2)
e2e_assert_eq "unmatched -> 404" 2 "$(cnt "$out" status 404)"

e2e_log "[VS] HTTPMirrorPolicy: 100% mirrored to v2, the answer comes from v1"
v2_requests() { # requests v2 has served (sm-http prints its count on SIGUSR1)
	local n
	n=$(grep -c '^stats requests' "$E2E_TMP/http-3.out")
	kill -USR1 "$V2_PID"
	e2e_wait_until 20 bash -c "[ \$(grep -c '^stats requests' '$E2E_TMP/http-3.out') -gt $n ]"
	grep '^stats requests' "$E2E_TMP/http-3.out" | tail -1 | awk '{ print $3 }'
}
mirrored() { [ "$(v2_requests)" -ge $((before + 5)) ]; }
before=$(v2_requests)
to v1 /mirror
e2e_assert_ok "v2 got the 5 mirrored requests (fire and forget: waited for)" e2e_wait_until 20 mirrored
e2e_assert_eq "and no more" $((before + 5)) "$(v2_requests)"

e2e_log "[VS] HTTPMirrorPolicy streams bodies of any size to the mirror (1 MiB Content-Length, chunked)"
pstat() { ctl status -o json | jq -r ".proxy.$1 // 0"; }
head -c 1048576 /dev/zero >"$E2E_TMP/1m.bin"
head -c 4194304 /dev/zero >"$E2E_TMP/4m.bin"
up() { # up PATH FILE [curl args...]: POST FILE, print v1's body_bytes_received line
	local path=$1 file=$2
	shift 2
	sm_pod_exec 1 curl -sS -m 30 "$@" --data-binary @"$file" "http://10.96.4.10:9080$path" |
		grep '^body_bytes_received'
}
e2e_assert_eq "1 MiB upload answered by v1" "body_bytes_received=1048576" "$(up /upmirror/big "$E2E_TMP/1m.bin")"
e2e_assert_ok "v2 got the whole 1 MiB as the mirror (authority -shadow)" e2e_wait_for_line \
	"$E2E_TMP/http-3.out" '^req POST /upmirror/big host=10\.96\.4\.10-shadow:9080 body_bytes=1048576$' 20
e2e_assert_eq "1 MiB chunked upload answered by v1" "body_bytes_received=1048576" \
	"$(up /upmirror/chunked "$E2E_TMP/1m.bin" -H 'Transfer-Encoding: chunked')"
e2e_assert_ok "v2 got the whole chunked body as the mirror" e2e_wait_for_line \
	"$E2E_TMP/http-3.out" '^req POST /upmirror/chunked host=10\.96\.4\.10-shadow:9080 body_bytes=1048576$' 20

e2e_assert_eq "1 MiB h2c upload (an HTTP/2 client) answered by v1" "body_bytes_received=1048576" \
	"$(up /upmirror/h2 "$E2E_TMP/1m.bin" --http2-prior-knowledge)"
e2e_assert_ok "v2 (HTTP/1.1) got the HTTP/2 client's whole body as the mirror" e2e_wait_for_line \
	"$E2E_TMP/http-3.out" '^req POST /upmirror/h2 host=10\.96\.4\.10-shadow:9080 body_bytes=1048576$' 20
printf '\000\000\000\000\013mirror-h1-x' >"$E2E_TMP/grpc-msg.bin"
sm_pod_exec 1 curl -sS -m 10 -o /dev/null -H 'content-type: application/grpc' -H 'te: trailers' \
	--data-binary @"$E2E_TMP/grpc-msg.bin" http://10.96.4.10:9080/sm.Echo/Say
e2e_assert_ok "an HTTP/1.1 client's gRPC call mirrored to the gRPC server over HTTP/2" \
	e2e_wait_for_line "$E2E_TMP/grpc-2.out" '^say mirror-h1-x$' 20

e2e_log "[VS] a mirror that accepts and never reads: abandoned past 1 MiB unsent, the upload goes on"
a0=$(pstat mirror_rq_abandoned)
e2e_assert_eq "4 MiB upload answered whole by v1" "body_bytes_received=4194304" \
	"$(up /upstall/x "$E2E_TMP/4m.bin")"
e2e_assert_eq "its shadow was abandoned" $((a0 + 1)) "$(pstat mirror_rq_abandoned)"

e2e_log "[VS] a mirror that resets: the shadow fails, the request does not"
f0=$(pstat mirror_rq_failed)
e2e_assert_eq "1 MiB upload answered by v1" "body_bytes_received=1048576" "$(up /upreset/x "$E2E_TMP/1m.bin")"
failed_one() { [ "$(pstat mirror_rq_failed)" -ge $((f0 + 1)) ]; }
e2e_assert_ok "its shadow failed" e2e_wait_until 20 failed_one

e2e_log "[VS] CorsPolicy: preflight answered by the proxy, allowed origin echoed"
out=$(sm_pod_exec 1 curl -sS -m 5 -i -X OPTIONS -H 'Origin: http://ok.example' \
	-H 'Access-Control-Request-Method: POST' http://10.96.4.10:9080/cors)
e2e_assert_match "preflight 200" '^HTTP/1.1 200' "$out"
e2e_assert_match "allow-origin" '[Aa]ccess-[Cc]ontrol-[Aa]llow-[Oo]rigin: http://ok.example' "$out"
e2e_assert_match "allow-methods" '[Aa]ccess-[Cc]ontrol-[Aa]llow-[Mm]ethods: GET, ?POST' "$out"
out=$(sm_pod_exec 1 curl -sS -m 5 -i -X OPTIONS -H 'Origin: http://evil.example' \
	-H 'Access-Control-Request-Method: POST' http://10.96.4.10:9080/cors)
e2e_assert_eq "other origin: no allow-origin" "" "$(grep -i '^access-control-allow-origin' <<<"$out")"

e2e_log "[VS] sourceLabels select the client workload; authority; rewrite.authority; headers.request.remove"
to v2 /src
to v1 /othersrc
to v2 /auth --host matrix.example
to v1 /auth
out=$(hreq --path /rwauth --print)
e2e_assert_match "authority rewritten" 'host=rewritten.example' "$out"
out=$(hreq --path /hrm --print -H 'x-secret: s' -H 'x-kept: k')
e2e_assert_eq "x-secret removed" "" "$(grep 'hdr x-secret' <<<"$out")"
e2e_assert_match "x-kept kept" 'hdr x-kept: k' "$out"

e2e_log "[VS] HTTPRedirect: derivePort FROM_REQUEST_PORT, scheme (default port dropped), authority + port, redirectCode"
out=$(hreq --path /rd-port --host matrix.example --print)
e2e_assert_match "derivePort FROM_REQUEST_PORT: the request's port" '[Ll]ocation: http://matrix\.example:9080/new' "$out"
out=$(hreq --path /rd-port --host matrix.example:9080 --print)
e2e_assert_match "derivePort with a port in Host: one port" '[Ll]ocation: http://matrix\.example:9080/new' "$out"
out=$(hreq --path "/rd-https?a=1" --host matrix.example:80 --print)
e2e_assert_match "scheme https: 308" '^HTTP/1.1 308' "$out"
e2e_assert_match "scheme https: :80 dropped, path and query kept" '[Ll]ocation: https://matrix\.example/rd-https\?a=1' "$out"
out=$(hreq --path /rd-fixed --host matrix.example:9080 --print)
e2e_assert_match "authority + port: 302" '^HTTP/1.1 302' "$out"
e2e_assert_match "authority + port" '[Ll]ocation: http://other\.example:8443/rd-fixed' "$out"

e2e_log "[VS] HTTPRetry.retryOn (Envoy x-envoy-retry-on): the upstream sees x-envoy-attempt-count"
# tries PATH N DESC: the last try the upstream saw was number N
tries() {
	out=$(hreq --path "$1" --print)
	e2e_assert_eq "$3" "$2" "$(grep -o 'hdr x-envoy-attempt-count: [0-9]*' <<<"$out" | awk '{ print $3 }')"
}
tries "/r4xx?status=409" 3 "retriable-4xx: 409 retried twice"
tries "/r4xx?status=400" 1 "retriable-4xx: 400 not retried"
tries "/rgw?status=502" 3 "gateway-error: 502 retried"
tries "/rgw?status=500" 1 "gateway-error: 500 not retried"
tries "/rcode?status=418" 2 "retryOn \"418\": a status code"
tries "/rnoon?status=503" 4 "attempts without retryOn: Istio's default retryOn (503)"
tries "/rnoon?status=500" 1 "attempts without retryOn: 500 not retried"
tries "/default?status=503" 3 "no retries: Istio's default, 2 retries on 503"
e2e_assert_match "exhausted: the upstream's 503 passes" '^HTTP/1.1 503' "$out"
out=$(hreq --path "/ptt?delay_ms=1500" --print)
e2e_assert_match "perTryTimeout, retries exhausted: 504" '^HTTP/1.1 504' "$out"
e2e_assert_match "... upstream request timeout" 'upstream request timeout' "$out"

e2e_log "[VS] Headers on the route and on a destination, request and response; [VS] uriRegexRewrite"
out=$(hreq --path /hresp --print)
e2e_assert_match "response set replaces the upstream's header" '[Xx]-[Bb]ackend: overridden' "$out"
e2e_assert_eq "response remove" "" "$(grep -i '^content-type' <<<"$out")"
e2e_assert_match "destination request set" 'hdr x-dest: d' "$out"
e2e_assert_match "destination response add" '[Xx]-[Dd]est-[Rr]esp: dr' "$out"
out=$(hreq --path /hhost --print)
e2e_assert_match "headers.request.set host: the host rewrite (Istio)" 'host=set\.example' "$out"
out=$(hreq --path /dhost --print)
e2e_assert_match "a destination's host over the route's" 'host=dest\.example' "$out"
to v2 /srcns
to v1 /othns
to v2 /mport
to v1 /oport
out=$(hreq --path "/rreset?reset=1" --print)
e2e_assert_match "reset retried, exhausted: 503" '^HTTP/1.1 503' "$out"
e2e_assert_match "... Envoy's body after retries" 'upstream connect error or disconnect/reset before headers\. retried and the latest reset reason: connection termination' "$out"
out=$(hreq --path "/plain?reset=1" --print)
e2e_assert_match "default policy, reset not retried: 503 UC" 'before headers\. reset reason: connection termination' "$out"
out=$(sm_pod_exec 1 curl -sS -m 5 -i -X OPTIONS -H 'Origin: http://ok.example' \
	-H 'Access-Control-Request-Method: POST' http://10.96.4.10:9080/cors)
e2e_assert_match "preflight max-age" '[Aa]ccess-[Cc]ontrol-[Mm]ax-[Aa]ge: 60' "$out"
out=$(hreq --path /rx/abc/def/g --print)
e2e_assert_match "uriRegexRewrite with groups" 'path=/v2/def/g/abc' "$out"
to v2 "/qre?v=123"
to v1 "/qre?v=12a"
to v2 /hpre -H 'x-p: abc'
to v1 /hpre -H 'x-p: xab'
to v2 /dly

e2e_log "Envoy: x-forwarded-proto, x-request-id upstream; x-envoy-upstream-service-time; local reply bodies"
out=$(hreq --path /plain --print)
e2e_assert_match "x-forwarded-proto: http" 'hdr x-forwarded-proto: http' "$out"
e2e_assert_match "x-request-id generated" 'hdr x-request-id: [0-9a-f-]{36}' "$out"
e2e_assert_match "x-envoy-upstream-service-time" '[Xx]-[Ee]nvoy-[Uu]pstream-[Ss]ervice-[Tt]ime: [0-9]+' "$out"
out=$(hreq --path /plain -H 'x-request-id: keep-me' --print)
e2e_assert_match "x-request-id kept" 'hdr x-request-id: keep-me' "$out"
out=$(hreq --path /fi --print)
e2e_assert_match "abort body: fault filter abort" 'fault filter abort' "$out"
out=$(hreq --path "/to?delay_ms=2000" --print)
e2e_assert_match "timeout body: upstream request timeout" 'upstream request timeout' "$out"
out=$(hreq --path /nc --print)
e2e_assert_match "route to a host no Service has: 503 (Envoy: cluster not found)" '^HTTP/1.1 503' "$out"
out=$(hreq --path "/to?delay_ms=1000" -H 'x-envoy-upstream-rq-timeout-ms: 4000' --count 1)
e2e_assert_eq "x-envoy-upstream-rq-timeout-ms replaces the route timeout (longer)" 1 "$(cnt "$out" status 200)"
out=$(hreq --path "/plain?delay_ms=1500" -H 'x-envoy-upstream-rq-timeout-ms: 200' --print)
e2e_assert_match "... and sets one where the route has none: 504" '^HTTP/1.1 504' "$out"
out=$(hreq --path /plain -H 'x-envoy-upstream-rq-timeout-ms: 4000' --print)
e2e_assert_eq "... consumed, not forwarded" "" "$(grep 'hdr x-envoy-upstream-rq-timeout-ms' <<<"$out")"
out=$(hreq --path /dr0 --print)
e2e_assert_match "directResponse 204 without body" '^HTTP/1.1 204' "$out"

e2e_log "[DR] LoadBalancerSettings: consistentHash on a header sticks; ROUND_ROBIN alternates"
for u in alice bob carol; do
	out=$(sm_pod_exec 1 "$HREQ" --addr 10.96.4.12:9080 --count 20 -H "x-user: $u")
	e2e_assert_eq "x-user $u: one backend for all 20" 20 \
		$(( $(cnt "$out" backend v1) > $(cnt "$out" backend v2) ? $(cnt "$out" backend v1) : $(cnt "$out" backend v2) ))
done
out=$(sm_pod_exec 1 "$HREQ" --addr 10.96.4.13:9080 --count 20)
e2e_assert_eq "ROUND_ROBIN: 10 each" "10 10" "$(cnt "$out" backend v1) $(cnt "$out" backend v2)"

e2e_log "[DR] consistentHash.httpCookie with ttl: set when absent (Envoy's Set-Cookie), then sticky"
out=$(sm_pod_exec 1 curl -sS -m 5 -i http://10.96.4.16:9080/a)
e2e_assert_match "Set-Cookie name=\"value\"; Max-Age; Path; HttpOnly" \
	'set-cookie: sm-user="[0-9a-f]{16}"; Max-Age=60; Path=/; HttpOnly' "$out"
first=$(grep -i '^x-backend:' <<<"$out" | tr -d '\r' | awk '{ print $2 }')
ck=$(grep -io '^set-cookie: sm-user="[0-9a-f]*"' <<<"$out" | sed 's/^[^:]*: //')
out=$(sm_pod_exec 1 "$HREQ" --addr 10.96.4.16:9080 --count 20 -H "cookie: $ck")
e2e_assert_eq "the cookie sent back: all 20 on the backend that set it" 20 "$(cnt "$out" backend "$first")"
out=$(sm_pod_exec 1 curl -sS -m 5 -i -H 'cookie: sm-user=abc' http://10.96.4.16:9080/a)
e2e_assert_eq "a request with the cookie gets no Set-Cookie" "" "$(grep -i '^set-cookie' <<<"$out")"

e2e_log "[STD][RF] local replies count under the service they were addressed to"
m=$(metrics)
e2e_assert_match "FI 418 under matrix" \
	'istio_requests_total\{[^}]*destination_service="matrix\.default\.svc\.cluster\.local"[^}]*response_code="418"[^}]*response_flags="FI"' "$m"
e2e_assert_match "NR 404 under nr" \
	'istio_requests_total\{[^}]*destination_service="nr\.default\.svc\.cluster\.local"[^}]*response_code="404"[^}]*response_flags="NR"' "$m"
e2e_assert_match "UT 504 under matrix" \
	'istio_requests_total\{[^}]*destination_service="matrix\.default\.svc\.cluster\.local"[^}]*response_code="504"[^}]*response_flags="UT"' "$m"
e2e_assert_match "NC 503: no cluster found" \
	'istio_requests_total\{[^}]*response_code="503"[^}]*response_flags="NC"' "$m"
e2e_assert_eq "no local reply is unknown" "" \
	"$(grep -E '^istio_requests_total\{' <<<"$m" | grep 'destination_service="unknown"')"

e2e_log "[PS] a port named grpc / appProtocol grpc is HTTP/2: proxied at L7, HTTP/2 upstream"
svcs=$(ctl services)
e2e_assert_match "services: grpc port on L7" 'default/grpc +10\.96\.4\.20:50051 +L7' "$svcs"
e2e_assert_match "services says why" 'VirtualService default/grpc has http routes' "$svcs"
e2e_assert_match "services: appProtocol grpc on L7" 'default/grpc-app +10\.96\.4\.21:50051 +L7' "$svcs"
e2e_assert_eq "no 'declares HTTP/2' warning any more" 0 "$(grep -c 'declares HTTP/2' "$E2E_TMP/agent.log")"
# gRPC C-core dials IPv4 through an AF_INET6 socket (::ffff:VIP) whenever the
# namespace has IPv6 (::1 on lo is enough): connect6 translates it as
# connect4 would (README, dual-stack). The pod keeps its IPv6 on purpose.
m0=$(mesh_counter connect_v4mapped)
out=$(sm_pod_exec 1 /usr/bin/python3 "$GRPC" call 10.96.4.20:50051 hello --count 20)
e2e_assert_eq "real gRPC client through the grpc port: 20 calls" "ok 20" "$(grep '^ok' <<<"$out")"
e2e_assert_eq "gRPC reply" "reply g1:hello" "$(grep '^reply' <<<"$out")"
e2e_assert_ge "gRPC C-core dialled ::ffff:VIP (connect6 translated it)" $((m0 + 1)) "$(mesh_counter connect_v4mapped)"
out=$(sm_pod_exec 1 /usr/bin/python3 "$GRPC" call 10.96.4.21:50051 hi --count 5)
e2e_assert_eq "appProtocol grpc port: 5 calls" "ok 5" "$(grep '^ok' <<<"$out")"

e2e_log "h2c (prior knowledge) on a port declared http: each stream is an HTTP/1.1 request upstream"
e2e_assert_match "services: h2c port is L7 (declared http)" 'default/h2c +10\.96\.4\.30:50051 +L7' "$svcs"
out=$(sm_pod_exec 1 curl -sS -m 5 --http2-prior-knowledge -D - -o /dev/null http://10.96.4.30:50051/a)
e2e_assert_match "curl --http2-prior-knowledge: HTTP/2 200 from the HTTP/1.1 backend" '^HTTP/2 200' "$out"
e2e_assert_match "routed by the proxy (x-envoy-upstream-service-time)" 'x-envoy-upstream-service-time' "$out"
# a gRPC request answered by a non-gRPC backend: its response passes as it is
# (the client maps the HTTP status), only the proxy's own replies become
# trailers-only grpc-status responses, as Envoy's local replies
out=$(sm_pod_exec 1 curl -sS -m 5 --http2-prior-knowledge -D - -H 'content-type: application/grpc' \
	--data-binary x "http://10.96.4.30:50051/a?status=503")
e2e_assert_match "gRPC request, backend 503: HTTP/2 503 passed on" '^HTTP/2 503' "$out"
e2e_assert_match "... with the backend's body" 'id=' "$out"
e2e_assert_eq "... and no grpc-status made up by the proxy" "" "$(grep -i '^grpc-status' <<<"$out")"
e2e_assert_eq "... nor the proxy's internal mark" "" "$(grep -i '^x-sockmesh-local' <<<"$out")"
# h2load: 20 requests, one connection, one at a time then 4 in flight
out=$(sm_pod_exec 1 timeout 20 h2load -n 20 -c 1 -m 1 http://10.96.4.30:50051/a)
e2e_assert_match "h2load -m 1: 20 succeeded on one connection" '20 succeeded, 0 failed' "$out"
out=$(sm_pod_exec 1 timeout 20 h2load -n 20 -c 1 -m 4 http://10.96.4.30:50051/a)
e2e_assert_match "h2load -m 4: 20 succeeded on one connection" '20 succeeded, 0 failed' "$out"
e2e_assert_ge "counted: downstream_cx_http2" 1 \
	"$(ctl status -o json | jq '.proxy.downstream_cx_http2 // 0')"

e2e_finish
