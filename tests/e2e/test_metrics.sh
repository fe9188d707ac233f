#!/bin/bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# /metrics end to end: a known number of requests with known status codes
# and sizes through the L7 proxy, and a known number of L4 connections with
# known payloads (redirected node-local by sk_msg, then over TCP with
# --no-redirect), then a Prometheus scrape over the admin socket must count
# exactly those, with Istio's labels resolved from the policy's Pods.

# shellcheck disable=SC1091
. "$(dirname "$0")/lib.sh"
# shellcheck disable=SC1091
. "$(dirname "$0")/mesh.sh"

e2e_require_root
HTTP=$E2E_TOOLS/sm-http
HREQ=$E2E_TOOLS/sm-hreq
for t in "$HTTP" "$HREQ" "$SRV" "$CLI"; do
	[ -x "$t" ] || { echo "FAIL: $t missing"; exit 1; }
done
command -v curl >/dev/null || { echo "FAIL: curl missing"; exit 1; }
MESH_AGENT_L7=1
mesh_up smmet 4 "$E2E_ROOT/tests/e2e/policies/metrics.yaml" || { echo "FAIL: mesh_up"; exit 1; }

for p in 2 3; do
	sm_pod_spawn "$p" "$HTTP" --port 9080 --id "v$((p - 1))" >"$E2E_TMP/http-$p.out" 2>&1
	e2e_wait_for_line "$E2E_TMP/http-$p.out" '^ready' 20 || { echo "FAIL: backend $p"; exit 1; }
done
mesh_servers 9090 sink 4 || exit 1
mesh_servers 9091 id 4 || exit 1

hreq() { local pod=$1; shift; sm_pod_exec "$pod" "$HREQ" "$@"; }
cnt() { # cnt OUTPUT KEY... -> N (0 when absent)
	local out=$1; shift
	awk -v k="$*" '{ v = $NF; $NF = ""; sub(/ $/, ""); if ($0 == k) { print v; f = 1 } } END { if (!f) print 0 }' <<<"$out"
}
bulk() { # bulk N BYTES PORT: N sequential connections to ratings, each sending BYTES
	local _
	for _ in $(seq 1 "$1"); do
		sm_pod_exec 1 "$CLI" bulk --addr "10.96.1.30:$3" --bytes "$2"
	done
}

e2e_log "before any request: families present, no request series"
m0=$(scrape)
e2e_assert_match "HELP/TYPE for istio_requests_total" '# TYPE istio_requests_total counter' "$m0"
e2e_assert_match "histogram family" '# TYPE istio_request_duration_milliseconds histogram' "$m0"
e2e_assert_eq "no requests yet" 0 "$(msum "$m0" istio_requests_total)"
e2e_assert_match "policy generation" 'sockmesh_policy_generation [1-9]' "$m0"
e2e_assert_match "map fill levels" 'sockmesh_map_entries\{map="sm_svc"\} [1-9]' "$m0"

e2e_log "send 20 x 200 and 7 x 503 to v1, 5 x 200 to v2 (jason)"
out=$(hreq 1 --addr 10.96.1.20:9080 --count 20 --path /ok)
e2e_assert_eq "20 x 200" 20 "$(cnt "$out" status 200)"
out=$(hreq 1 --addr 10.96.1.20:9080 --count 7 --path '/fail?status=503')
e2e_assert_eq "7 x 503" 7 "$(cnt "$out" status 503)"
out=$(hreq 1 --addr 10.96.1.20:9080 --count 5 -H 'end-user: jason')
e2e_assert_eq "5 x 200 from v2" 5 "$(cnt "$out" backend v2)"

# the proxy accounts a request just after its reply: scrape until all are in
scrape_until 32 istio_requests_total || echo "    (requests fell short)"
m=$M
src='reporter="source" source_workload="productpage-v1" source_workload_namespace="default" source_app="productpage"'
dst='destination_service="reviews.default.svc.cluster.local" destination_service_name="reviews" destination_service_namespace="default" request_protocol="http"'
e2e_assert_eq "all 32 requests counted" 32 "$(msum "$m" istio_requests_total)"
# shellcheck disable=SC2086
e2e_assert_eq "200 from reviews-v1: 20" 20 "$(msum "$m" istio_requests_total $src $dst \
	'destination_workload="reviews-v1"' 'response_code="200"')"
# shellcheck disable=SC2086
e2e_assert_eq "503 from reviews-v1: 7" 7 "$(msum "$m" istio_requests_total $src $dst \
	'destination_workload="reviews-v1"' 'response_code="503"')"
# shellcheck disable=SC2086
e2e_assert_eq "200 from reviews-v2: 5" 5 "$(msum "$m" istio_requests_total $src $dst \
	'destination_workload="reviews-v2"' 'response_code="200"')"
e2e_assert_eq "no response flags on these" 32 "$(msum "$m" istio_requests_total 'response_flags="-"')"
e2e_assert_eq "histogram _count agrees" 32 "$(msum "$m" istio_request_duration_milliseconds_count)"
e2e_assert_eq "+Inf bucket agrees" 32 "$(msum "$m" istio_request_duration_milliseconds_bucket 'le="+Inf"')"
e2e_assert_match "Istio's bucket bounds" 'le="3600000"' "$m"
e2e_assert_eq "no istio_tcp_* series for the HTTP service (Istio: TCP traffic only)" 0 \
	"$(msum "$m" istio_tcp_connections_opened_total 'destination_service="reviews.default.svc.cluster.local"')"
e2e_assert_eq "content type 0.0.4" "text/plain; version=0.0.4; charset=utf-8" \
	"$(curl -sS -m 5 -o /dev/null -w '%{content_type}' --unix-socket "$E2E_TMP/admin.sock" http://localhost/metrics)"

e2e_log "a second scrape after more traffic only grows"
hreq 1 --addr 10.96.1.20:9080 --count 3 --path '/fail?status=404' >/dev/null
scrape_until 35 istio_requests_total || echo "    (requests fell short)"
m=$M
e2e_assert_eq "404 counted" 3 "$(msum "$m" istio_requests_total 'response_code="404"')"
e2e_assert_eq "total 35" 35 "$(msum "$m" istio_requests_total)"

e2e_log "graph: edges from the same series"
g=$(ctl graph -o dot)
echo "$g" | grep -- '->' | sed 's/^/    | /'
e2e_assert_match "client -> service edge, red (7 of 35 failed)" \
	'"default/productpage-v1" -> "reviews\.default\.svc\.cluster\.local" \[label="[0-9.]+ rps\\n20\.0% err", color="red"' "$g"
e2e_assert_match "service -> v2 workload edge, green" \
	'"reviews\.default\.svc\.cluster\.local" -> "default/reviews-v2" \[label="[0-9.]+ rps\\n0\.0% err", color="darkgreen"' "$g"
e2e_assert_eq "graph -o json: requests on the client edge" 35 \
	"$(ctl graph -o json | jq '.edges[] | select(.source=="default/productpage-v1") | .requests')"
if command -v dot >/dev/null; then
	e2e_assert_match "graph -o svg renders" '<svg' "$(ctl graph -o svg)"
	ctl graph -o png --out "$E2E_TMP/graph.png"
	e2e_assert_eq "graph -o png writes a PNG" PNG "$(head -c 4 "$E2E_TMP/graph.png" | tail -c 3)"
elif [ "${CI:-}" = true ]; then
	e2e_assert_eq "graphviz installed (make deps)" yes no
else
	echo "SKIP svg/png: graphviz not installed (make deps installs it)"
fi

e2e_log "/services, /backends, /top: answered off the agent's loop, the same content"
# the kernel's part of each row, as sockmeshctl reads the pinned maps with
# the agent down (the code that answered on the loop before), against the
# admin worker's answer; the L7 facts are the agent's own additions
pinned() { "$CTL" --admin-socket "$E2E_TMP/no-agent.sock" --pin-path "$SM_PIN" -o json "$@"; }
admin_get() { curl -sS -m 10 --unix-socket "$E2E_TMP/admin.sock" "http://localhost$1"; }
sv=$(admin_get /services)
e2e_assert_eq "/services: the kernel's rows as read from the pinned maps" \
	"$(pinned services | jq -S 'del(.agent)')" \
	"$(jq -S '.services |= map(del(.why, .l7_proxy, .l4_why))' <<<"$sv")"
e2e_assert_eq "/services: reviews is L7, with why" "L7 true" \
	"$(jq -r '.services[] | select(.name=="default/reviews") | "\(.path) \(.why != "")"' <<<"$sv")"
be=$(admin_get /backends)
e2e_assert_eq "/backends: the kernel's rows as read from the pinned maps" \
	"$(pinned backends | jq -S 'del(.agent) | .backends |= map(del(.eject_remaining_ms))')" \
	"$(jq -S '.backends |= map(del(.times_ejected, .active_requests, .requests, .returns_in_ms,
	       .eject_remaining_ms))' <<<"$be")"
e2e_assert_eq "/backends: the proxy's request counts (v1 and v2 served)" "true" \
	"$(jq '[.backends[] | select(.service=="default/reviews") | .requests > 0] | all' <<<"$be")"
e2e_assert_eq "/backends?service=: one service's rows" \
	"$(jq -S '[.backends[] | select(.service=="default/reviews")]' <<<"$be")" \
	"$(admin_get '/backends?service=default/reviews' | jq -S '.backends')"
tp=$(admin_get /top)
e2e_assert_eq "/top: a row per /services row" "$(jq '.services | length' <<<"$sv")" \
	"$(jq '.services | length' <<<"$tp")"
e2e_assert_eq "/top: reviews' requests (the proxy's series)" 35 \
	"$(jq '.services[] | select(.service=="default/reviews") | .requests' <<<"$tp")"
# more at once than the worker queues: each answered whole or 503 busy, the
# loop free meanwhile (/healthz answers)
par=()
for i in $(seq 1 12); do
	curl -sS -m 20 -o "$E2E_TMP/par-$i.json" -w '%{http_code}\n' --unix-socket "$E2E_TMP/admin.sock" \
		http://localhost/services >"$E2E_TMP/par-$i.code" &
	par+=($!)
done
e2e_assert_eq "/healthz while 12 /services are in flight" ok "$(admin_get /healthz | jq -r .status)"
wait "${par[@]}"
n200=0 n503=0 bad=0
for i in $(seq 1 12); do
	case "$(cat "$E2E_TMP/par-$i.code")" in
	200) cmp -s <(jq -S . "$E2E_TMP/par-$i.json") <(jq -S . <<<"$sv") && n200=$((n200 + 1)) || bad=$((bad + 1)) ;;
	503) grep -q busy "$E2E_TMP/par-$i.json" && n503=$((n503 + 1)) || bad=$((bad + 1)) ;;
	*) bad=$((bad + 1)) ;;
	esac
done
e2e_assert_eq "12 at once: whole answers or 503 busy" "12 0" "$((n200 + n503)) $bad"
# the loop may queue all 12 before the worker takes the first: the queue's
# 8 (ADMINWORK_QUEUE_MAX) are the floor, not 9
e2e_assert_ge "12 at once: at least the worker's queue answered" 8 "$n200"

e2e_log "top --once: one window's rate, error share and percentiles"
# The window is what the requests between top's two GETs of /top added: send
# them once top sleeps after its first GET (its usleep: clock_nanosleep or
# nanosleep, syscalls 230 and 35 on x86-64, 115 and 101 on arm64), with a
# window that holds them on a slow machine too.
"$CTL" --admin-socket "$E2E_TMP/admin.sock" --pin-path "$SM_PIN" top --once --interval 10 >"$E2E_TMP/top.out" 2>&1 &
top_pid=$!
top_sleeps() {
	local nr _
	read -r nr _ <"/proc/$top_pid/syscall" 2>/dev/null || return 1
	case "$(uname -m):$nr" in x86_64:230 | x86_64:35 | aarch64:115 | aarch64:101) return 0 ;; esac
	return 1
}
e2e_wait_until 20 top_sleeps || echo "    (top did not reach its sleep)"
hreq 1 --addr 10.96.1.20:9080 --count 6 --path /ok >/dev/null
hreq 1 --addr 10.96.1.20:9080 --count 6 --path '/fail?status=503' >/dev/null
wait "$top_pid"
sed 's/^/    | /' "$E2E_TMP/top.out"
e2e_assert_match "reviews row: L7, 12 requests in the window, 50 % errors" \
	'default/reviews:9080 +L7 +[0-9.]+ +50\.0 +[0-9.]+ +[0-9.]+ +[0-9]+ +0/2' "$(cat "$E2E_TMP/top.out")"
e2e_assert_eq "fits 80 columns" 0 "$(awk 'length > 80' "$E2E_TMP/top.out" | wc -l)"

e2e_log "/config_dump: the effective config after defaults"
cd=$(curl -sS -m 5 --unix-socket "$E2E_TMP/admin.sock" http://localhost/config_dump)
e2e_assert_eq "v2 subset cluster with its default LB" LEAST_REQUEST \
	"$(jq -r '.clusters[] | select(.subset=="v2") | .lb' <<<"$cd")"
e2e_assert_eq "default connect timeout filled in" 10000 \
	"$(jq -r '.clusters[] | select(.subset=="v2") | .connection_pool.connect_timeout_ms' <<<"$cd")"
e2e_assert_eq "routes in order, jason first" "jason default" \
	"$(jq -r '[.services[] | select(.service=="default/reviews") | .routes[].name] | join(" ")' <<<"$cd")"

e2e_log "explain: the jason route, the routes before it, the destinations"
ex=$(ctl explain --from default/productpage-v1 --to http://reviews:9080/productpage -H 'End-User: jason')
echo "$ex" | sed 's/^/    | /'
e2e_assert_match "service and path" 'default/reviews 10\.96\.1\.20:9080' "$ex"
e2e_assert_match "L7 and why" 'path: L7 \(VirtualService' "$ex"
e2e_assert_match "jason matched" '#0 jason: MATCHED' "$ex"
e2e_assert_match "subset v2, all of the weight" 'subset v2 weight 100 \(100\.0%\)' "$ex"
e2e_assert_match "v2 backend eligible" '10\.244\.0\.13:9080 +default/reviews-v2-7f9c8d6b5-fghij +eligible' "$ex"
ex=$(ctl explain --from productpage-v1 --to 10.96.1.20:9080/x)
e2e_assert_match "without the header jason does not match" '#0 jason: not matched \(its match block' "$ex"
e2e_assert_match "... and the default route does" '#1 default: MATCHED' "$ex"
e2e_assert_match "subset v1" 'subset v1 weight' "$ex"
e2e_assert_eq "-o json: matched route index" 1 \
	"$(ctl explain --from productpage-v1 --to http://reviews.default:9080/ -o json | jq .matched_route)"
e2e_assert_match "not a mesh service" 'not touched' "$(ctl explain --to http://10.96.9.9:80/)"
e2e_assert_ok "unknown pod is an error" bash -c "! $CTL --admin-socket $E2E_TMP/admin.sock explain --from nope --to http://reviews:9080/ 2>/dev/null"

e2e_log "L7 sizes: 10 POSTs with 2000 body bytes, 5000-byte bodies back (status 201 marks them)"
out=$(hreq 1 --addr 10.96.1.20:9080 --count 10 --method POST --body-bytes 2000 \
	--path '/ok?status=201&body_bytes=5000')
e2e_assert_eq "10 x 201" 10 "$(cnt "$out" status 201)"
read -r sent got < <(awk '$1 == "bytes" { print $3, $5 }' <<<"$out")
c201='response_code="201"'
scrape_until 10 istio_request_bytes_count "$c201"
e2e_assert_eq "istio_request_bytes_count" 10 "$(msum "$M" istio_request_bytes_count "$c201")"
e2e_assert_eq "istio_response_bytes_count" 10 "$(msum "$M" istio_response_bytes_count "$c201")"
e2e_assert_eq "request bytes _sum = every byte the client sent" "$sent" \
	"$(msum "$M" istio_request_bytes_sum "$c201")"
e2e_assert_eq "response bytes _sum = every byte the client read" "$got" \
	"$(msum "$M" istio_response_bytes_sum "$c201")"
e2e_assert_eq "requests (2000 + head) all in (1000, 2500]" "0 10" \
	"$(msum "$M" istio_request_bytes_bucket "$c201" 'le="1000"') $(msum "$M" istio_request_bytes_bucket "$c201" 'le="2500"')"
e2e_assert_eq "responses (5000 + head) all in (5000, 10000]" "0 10" \
	"$(msum "$M" istio_response_bytes_bucket "$c201" 'le="5000"') $(msum "$M" istio_response_bytes_bucket "$c201" 'le="10000"')"
e2e_assert_match "with the request's labels" 'istio_request_bytes_sum\{reporter="source",source_workload="productpage-v1",.*destination_workload="reviews-v1",.*request_protocol="http",response_code="201",grpc_response_status="",response_flags="-"\}' "$M"

# The sink replies "<bytes> <fnv1a64 %016llx>\n": 22 bytes for 5000 received.
l4=('reporter="source"' 'source_workload="productpage-v1"' 'source_workload_namespace="default"'
    'source_app="productpage"' 'destination_workload="ratings-v1"' 'destination_workload_namespace="default"'
    'destination_app="ratings"' 'destination_service="ratings.default.svc.cluster.local"'
    'destination_service_name="ratings"' 'destination_service_namespace="default"'
    'request_protocol="tcp"' 'response_flags="-"')
# l4_check WHAT "OPENED CLOSED RECEIVED SENT": the ratings flow has exactly these, and nothing else counts
l4_check() {
	local want=$2
	scrape_until "${want%% *}" istio_tcp_connections_closed_total "${l4[@]}" || echo "    (closed fell short)"
	e2e_assert_eq "$1: opened / closed / received / sent" "$want" \
		"$(msum "$M" istio_tcp_connections_opened_total "${l4[@]}") $(msum "$M" istio_tcp_connections_closed_total "${l4[@]}") $(msum "$M" istio_tcp_received_bytes_total "${l4[@]}") $(msum "$M" istio_tcp_sent_bytes_total "${l4[@]}")"
	e2e_assert_eq "$1: nothing else counted" "$want" \
		"$(msum "$M" istio_tcp_connections_opened_total) $(msum "$M" istio_tcp_connections_closed_total) $(msum "$M" istio_tcp_received_bytes_total) $(msum "$M" istio_tcp_sent_bytes_total)"
}
# then 1 MiB on one connection (many sendmsg chunks and TCP segments): "1048576 <hash>\n" = 25 back
MIB=1048576

e2e_log "L4, redirected node-local: 5 connections x 5000 bytes up, 22 back"
r0=$(mesh_counter redirect)
out=$(bulk 5 5000 9090)
e2e_assert_eq "5 transfers ok" 5 "$(grep -c '^bulk ok bytes 5000 ' <<<"$out")"
r1=$(mesh_counter redirect)
e2e_log "sk_msg redirected $((r1 - r0)) messages"
# one message each way per connection: both directions went socket to socket
e2e_assert_eq "the bytes took the sk_msg short cut, both ways" 10 "$((r1 - r0))"
l4_check "redirected" "5 5 25000 110"

e2e_log "graph: L4 edges per source workload, dashed, connections and bytes"
g=$(ctl graph -o dot)
echo "$g" | grep -- 'style=dashed' | sed 's/^/    | /'
e2e_assert_match "productpage -> ratings (dashed, cps and bytes)" \
	'"default/productpage-v1" -> "ratings\.default\.svc\.cluster\.local" \[style=dashed, label="[0-9.]+ cps\\n[0-9.]+ (B|KiB)/s tcp"\]' "$g"
e2e_assert_match "ratings -> ratings-v1 (dashed)" \
	'"ratings\.default\.svc\.cluster\.local" -> "default/ratings-v1" \[style=dashed' "$g"
e2e_assert_eq "graph -o json: the L4 edge's connections and bytes" "5 110 25000" \
	"$(ctl graph -o json | jq -r '.edges[] | select(.source=="default/productpage-v1" and .protocol=="tcp") | "\(.connections) \(.bytes_sent) \(.bytes_received)"')"
e2e_log "... and 1 MiB on one more redirected connection"
e2e_assert_match "1 MiB transfer ok" "^bulk ok bytes $MIB " "$(bulk 1 $MIB 9090)"
l4_check "redirected, 1 MiB" "6 6 $((25000 + MIB)) 135"

e2e_log "maxConnections 2: the 3rd held connection is refused, counted per source and cluster"
sm_pod_spawn 1 "$CLI" who --addr 10.96.1.30:9091 --count 3 --hold --hold-timeout 20 >"$E2E_TMP/hold.out"
hold_pid=$SM_LAST_PID
e2e_wait_for_line "$E2E_TMP/hold.out" '^done' 20
e2e_assert_match "3rd refused with ENOBUFS" 'conn 3 ERR ENOBUFS' "$(cat "$E2E_TMP/hold.out")"
m=$(scrape)
e2e_assert_eq "sockmesh_connect_overflows_total{productpage-v1, ratings:9091}" 1 \
	"$(msum "$m" sockmesh_connect_overflows_total 'source_workload="productpage-v1"' \
		'destination_service="ratings.default.svc.cluster.local"' 'destination_service_port="9091"' \
		'destination_cluster="outbound|9091||ratings.default.svc.cluster.local"')"
e2e_assert_eq "no other overflow" 1 "$(msum "$m" sockmesh_connect_overflows_total)"
kill -USR1 "$hold_pid" 2>/dev/null
wait "$hold_pid" 2>/dev/null

e2e_log "--no-redirect (and --admin-listen): the same L4 traffic over TCP, counted from TCP's counters"
mesh_agent_stop
mesh_agent_start --no-redirect --admin-listen 127.0.0.1:15000 || { echo "FAIL: restart"; exit 1; }
out=$(bulk 5 5000 9090; bulk 1 $MIB 9090)
e2e_assert_eq "5 transfers ok" 5 "$(grep -c '^bulk ok bytes 5000 ' <<<"$out")"
e2e_assert_match "1 MiB transfer ok" "bulk ok bytes $MIB " "$out"
e2e_assert_eq "no redirect" 0 "$(mesh_counter redirect)"
l4_check "over TCP" "6 6 $((25000 + MIB)) 135"
e2e_log "connects the backend refuses: opened, and closed with response_flags UF"
e2e_assert_eq "refused twice" "ERR ECONNREFUSED 2" "$(sm_pod_exec 1 "$CLI" who --addr 10.96.1.30:9092 --count 2)"
uf=('source_workload="productpage-v1"' 'destination_workload="ratings-v1"' 'response_flags="UF"')
scrape_until 2 istio_tcp_connections_closed_total "${uf[@]}"
e2e_assert_eq "closed{UF} / opened / closed{-}" "2 8 6" \
	"$(msum "$M" istio_tcp_connections_closed_total "${uf[@]}") $(msum "$M" istio_tcp_connections_opened_total) $(msum "$M" istio_tcp_connections_closed_total 'response_flags="-"')"

e2e_log "--admin-listen: the GET API over TCP (in the agent's namespace), read-only"
tcp() { ip netns exec "$SM_NODE_NS" curl -sS -m 5 "$@"; }
e2e_assert_match "metrics over TCP" '# TYPE istio_requests_total counter' "$(tcp http://127.0.0.1:15000/metrics)"
e2e_assert_eq "healthz over TCP" ok "$(tcp http://127.0.0.1:15000/healthz | jq -r .status)"
e2e_assert_eq "POST refused over TCP" 405 "$(tcp -o /dev/null -w '%{http_code}' -X POST http://127.0.0.1:15000/reload)"
e2e_assert_eq "POST still works on the unix socket" true \
	"$(curl -sS -m 5 -X POST --unix-socket "$E2E_TMP/admin.sock" http://localhost/reload | jq -r .applied)"
e2e_finish
