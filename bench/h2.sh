# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# shellcheck shell=bash
#
# h2.sh — scenario 6: unary gRPC-shaped requests over h2c through one L7
# hop. Backends: nginx with h2c (prior knowledge) in pods 3 (v1) and 4 (v2)
# on PORT_H2, 1 KiB bodies; the same rules as scenario 2 ("x-canary: yes"
# -> v2, otherwise 90/10). Each proxy speaks HTTP/2 on both sides: HAProxy
# (bind/server proto h2), nginx (listen http2, grpc_pass), sockmesh (a
# Service port named grpc: h2c upstream). h2load in the client pod, S6_CONNS
# connections x S6_STREAMS streams, POST of 1 KiB with content-type
# application/grpc. Per contender:
#   max req/s            h2load's rate for S6_REQS requests (closed loop)
#   req per proxy CPU-s  requests / proxy CPU seconds in that run
#   mean µs per request  h2load's "time for request" mean
#   proxy RSS MB         after the run (all processes of the proxy)
# No fixed-rate percentiles here (h2load has none): scenario 2 has them for
# HTTP/1.1.

S6_CONNS=4
S6_STREAMS=16
PORT_H2=8081

s6_backends_up() { l7_backends_up backend-h2 "$PORT_H2" http2 "keepalive_requests 10000000;"; }

# c_h2_up haproxy|nginx: the proxy in the node netns.
c_h2_up() {
	local kind=$1 cfg=$BENCH_TMP/haproxy-h2.cfg
	case "$kind" in
	haproxy)
		cat >"$cfg" <<EOC
global
	nbthread 1
	maxconn 4000
defaults
	mode http
	http-reuse always
	timeout connect 5s
	timeout client 60s
	timeout server 60s
frontend fe
	bind $SM_NODE_IP:15082 proto h2
	use_backend v2 if { req.hdr(x-canary) -m str yes }
	default_backend split
backend split
	balance random
	server v1 $V1_IP:$PORT_H2 weight 90 proto h2
	server v2 $V2_IP:$PORT_H2 weight 10 proto h2
backend v2
	server v2 $V2_IP:$PORT_H2 proto h2
EOC
		c_proxy_start node haproxy-h2 15082 haproxy -db -f "$cfg" || return 1
		;;
	nginx)
		c_nginx_start node proxy-h2 15083 "upstream v1 { server $V1_IP:$PORT_H2; keepalive 64; keepalive_requests 10000000; }
	upstream v2 { server $V2_IP:$PORT_H2; keepalive 64; keepalive_requests 10000000; }
	split_clients \"\${request_id}\" \$split { 90% v1; * v2; }
	map \$http_x_canary \$route { \"~^yes\$\" v2; default \$split; }
	server {
		listen $SM_NODE_IP:15083 http2;
		keepalive_requests 10000000;
		location / { grpc_pass grpc://\$route; }
	}" || return 1
		;;
	*) return 1 ;;
	esac
	bench_place proxy "${BENCH_PROXIES[@]}"
}

# One repetition of scenario 6 for contender $1 at $2.
s6_rep() {
	local name=$1 addr=$2 g=$3 out t0 t1 hz reqs
	shift 3
	hz=$(getconf CLK_TCK)
	t0=$(s2_cpu_ticks "$@")
	out=$(bench_client load "$POD_CLIENT" timeout 120 h2load -n "$S6_REQS" -c "$S6_CONNS" \
		-m "$S6_STREAMS" -d "$S6_BODY_FILE" -H 'content-type: application/grpc' \
		-H 'x-canary: no' "http://$addr/sm.Echo/Say" 2>&1)
	t1=$(s2_cpu_ticks "$@")
	reqs=$(sed -nE 's/^requests: .* ([0-9]+) succeeded.*/\1/p' <<<"$out")
	# A contender's failed requests are reported in its row, not fatal:
	# nginx's grpc_pass answers a few 502 against plain h2c backends (the
	# backends send no grpc-status). sockmesh failing one is a failure.
	bench_record 6 "failed requests" "$g" "$name" "$((S6_REQS - ${reqs:-0}))"
	if [ "${reqs:-0}" -lt "$S6_REQS" ]; then
		bench_log "scenario 6 $name: $(grep -E '^(requests|status)' <<<"$out" | tr '\n' ' ')"
		if [ "$name" = sockmesh ] || [ "${reqs:-0}" = 0 ]; then
			bench_fail "scenario 6 $name: $((S6_REQS - ${reqs:-0})) of $S6_REQS requests failed"
			return 1
		fi
	fi
	bench_record 6 "max req/s" "$g" "$name" "$(sed -nE 's/^finished in .*, ([0-9.]+) req\/s.*/\1/p' <<<"$out")"
	[ $# -gt 0 ] && [ "$t1" -gt "$t0" ] &&
		bench_record 6 "req per proxy CPU-s" "$g" "$name" \
			"$(awk -v n="$reqs" -v t=$((t1 - t0)) -v hz="$hz" 'BEGIN { printf "%.0f", n / (t / hz) }')"
	bench_record 6 "mean µs per request" "$g" "$name" \
		"$(awk '/^time for request:/ { v = $5; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v);
			f = u == "ms" ? 1000 : u == "s" ? 1e6 : 1; printf "%.0f", v * f }' <<<"$out")"
}

s6_run() {
	S6_BODY_FILE=$BENCH_TMP/h2-body.bin
	printf '%1024s' '' | tr ' ' x >"$S6_BODY_FILE"
	l7_scenario 6 "h2c, $S6_CONNS conns x $S6_STREAMS streams, 1 KiB" s6_backends_up s6_rep \
		"${S6_CONTENDERS[@]}"
}
