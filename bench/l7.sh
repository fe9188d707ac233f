# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# shellcheck shell=bash
#
# l7.sh — scenario 2: HTTP/1.1 through one L7 hop. Backends: nginx in pods 3
# (v1) and 4 (v2), 1 KiB bodies, "X-Backend: vN". Every proxy gets the same
# rules: "x-canary: yes" (case-sensitive) -> v2, otherwise 90% v1 / 10% v2,
# keep-alive on both sides. Proxies run one worker on the last CPU; the
# load generator and the backends share CPU 0, so the proxy's CPU time is
# its own. Per contender (sm-bench-http, 8 connections, header
# "x-canary: no" so the match is evaluated and falls through):
#   max req/s        closed loop, S2_SECS
#   req per proxy CPU-s   requests / proxy CPU seconds in that run
#   p50/p99/p99.9 µs open loop at S2_RATE req/s, spread evenly
#   proxy CPU ms / 1000 req   in the open-loop run
#   proxy RSS MB     after both runs (all processes of the proxy)
#   v2 share %       from X-Backend in the open-loop run (should be ~10)

S2_CONNS=8
S2_BODY=$(printf '%1024s' '' | tr ' ' x)

# nginx config: $1 name, $2 server block body; master_process off keeps
# one process, so its PID is the worker's.
c_nginx_conf() {
	local name=$1 body=$2 d=$BENCH_TMP/nginx-$1
	mkdir -p "$d"
	cat >"$d/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 8192; }
http {
	access_log off;
	keepalive_requests 10000000;
	keepalive_timeout 300s;
	client_body_temp_path $d/body;
	proxy_temp_path $d/proxy;
	fastcgi_temp_path $d/fastcgi;
	uwsgi_temp_path $d/uwsgi;
	scgi_temp_path $d/scgi;
	$body
}
EOF
	echo "$d"
}

c_nginx_start() {
	local pod=$1 name=$2 port=$3 body=$4 d
	d=$(c_nginx_conf "$name" "$body")
	c_proxy_start "$pod" "$name" "$port" nginx -e "$d/error.log" -p "$d" -c "$d/nginx.conf"
}

# l7_backends_up NAME PORT [LISTEN_PARAMS [DIRECTIVES]]: nginx v1 and v2
# in pods 3 and 4 answering 1 KiB with X-Backend; PIDs in L7_BACKENDS.
l7_backends_up() {
	local name=$1 port=$2 params=${3:-} extra=${4:-} v ip pod
	for v in v1 v2; do
		if [ "$v" = v1 ]; then ip=$V1_IP pod=$POD_V1; else ip=$V2_IP pod=$POD_V2; fi
		c_nginx_start "$pod" "$name-$v" "$port" "server {
		listen $ip:$port $params;
		$extra
		location / { add_header X-Backend $v; return 200 \"$S2_BODY\"; }
	}" || return 1
	done
	L7_BACKENDS=("${BENCH_PROXIES[@]}")
	BENCH_PROXIES=()
	bench_place load "${L7_BACKENDS[@]}"
}

s2_backends_up() { l7_backends_up backend "$PORT_HTTP"; }

# c_l7_up haproxy|nginx MODE: the proxy in the node netns.
c_l7_up() {
	local kind=$1 cfg=$BENCH_TMP/haproxy-l7.cfg
	case "$kind" in
	haproxy)
		cat >"$cfg" <<EOF
global
	nbthread 1
	maxconn 4000
defaults
	mode http
	option http-keep-alive
	http-reuse always
	timeout connect 5s
	timeout client 60s
	timeout server 60s
	timeout http-keep-alive 300s
frontend fe
	bind $SM_NODE_IP:15080
	use_backend v2 if { req.hdr(x-canary) -m str yes }
	default_backend split
backend split
	balance random
	server v1 $V1_IP:$PORT_HTTP weight 90
	server v2 $V2_IP:$PORT_HTTP weight 10
backend v2
	server v2 $V2_IP:$PORT_HTTP
EOF
		c_proxy_start node haproxy-l7 15080 haproxy -db -f "$cfg" || return 1
		;;
	nginx)
		# map with "~" is a case-sensitive regex (plain strings compare
		# case-insensitively in nginx's map)
		c_nginx_start node proxy-l7 15081 "upstream v1 { server $V1_IP:$PORT_HTTP; keepalive 64; }
	upstream v2 { server $V2_IP:$PORT_HTTP; keepalive 64; }
	split_clients \"\${request_id}\" \$split { 90% v1; * v2; }
	map \$http_x_canary \$route { \"~^yes\$\" v2; default \$split; }
	server {
		listen $SM_NODE_IP:15081;
		location / {
			proxy_pass http://\$route;
			proxy_http_version 1.1;
			proxy_set_header Connection \"\";
		}
	}" || return 1
		;;
	*) return 1 ;;
	esac
	bench_place proxy "${BENCH_PROXIES[@]}"
}

# The sockmesh L7 proxy (issue 3): the agent with its listener on the node
# side of the pod bridge, one worker, on bench/policies/l7.yaml.
c_l7_sockmesh_up() {
	local i
	[ -z "$BENCH_AGENT_PID" ] || bench_agent_down
	BENCH_AGENT_N=$((BENCH_AGENT_N + 1))
	BENCH_POLICY_DIR=$BENCH_TMP/policy-$BENCH_AGENT_N
	BENCH_AGENT_LOG=$BENCH_TMP/agent-$BENCH_AGENT_N.log
	mkdir -p "$BENCH_POLICY_DIR"
	cp "$BENCH_DIR/policies/l7.yaml" "$BENCH_POLICY_DIR/"
	# S2_CALLGRIND / S6_CALLGRIND: the agent runs under callgrind, which
	# starts it ~50x slower
	# shellcheck disable=SC2206 # a command prefix, split on purpose
	local cg=${S2_CALLGRIND:-}${S6_CALLGRIND:-}
	local wrap=(${cg:+valgrind --tool=callgrind --callgrind-out-file=$BENCH_TMP/callgrind.%p})
	local slow=$([ -n "$cg" ] && echo 20 || echo 1)
	sm_spawn "${wrap[@]}" "$SM_BUILD/sockmesh-agent" --cgroup "$SM_CGROUP" --policy "$BENCH_POLICY_DIR" \
		--pin-path "$SM_PIN" --admin-socket "$BENCH_TMP/admin.sock" \
		--netns "/run/netns/$SM_NODE_NS" --l7-listen "$SM_NODE_IP:15001" --workers 1 \
		>"$BENCH_AGENT_LOG" 2>&1
	BENCH_AGENT_PID=$SM_LAST_PID
	for ((i = 0; i < 200 * slow; i++)); do
		bench_ctl status -o json 2>/dev/null | grep -q '"alive": *true' && break
		kill -0 "$BENCH_AGENT_PID" 2>/dev/null || break
		sleep 0.05
	done
	if ! bench_wait_listen node 15001 $((5 * slow)); then
		sed 's/^/  | /' "$BENCH_AGENT_LOG" >&2
		return 1
	fi
	bench_place proxy "$BENCH_AGENT_PID"
}

# PIDs and their child processes (nginx's worker under a master).
s2_tree() {
	local pid
	for pid in "$@"; do
		echo "$pid"
		cat /proc/"$pid"/task/*/children 2>/dev/null | tr ' ' '\n' | grep .
	done
}

# CPU ticks (utime + stime) of PIDs and their child processes.
s2_cpu_ticks() {
	local pid total=0
	while read -r pid; do
		total=$((total + $(awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$pid/stat" 2>/dev/null || echo 0)))
	done < <(s2_tree "$@")
	echo "$total"
}

# VmRSS KiB of PIDs and their child processes.
s2_rss_kib() {
	local pid total=0
	while read -r pid; do
		total=$((total + $(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || echo 0)))
	done < <(s2_tree "$@")
	echo "$total"
}

# Requests per proxy CPU second, and proxy CPU ms per 1000 requests: N
# requests in TICKS clock ticks (utime + stime).
l7_req_per_cpu_s() {
	awk -v n="$1" -v t="$2" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.0f", n / (t / hz) }'
}

l7_cpu_ms_per_kreq() {
	awk -v n="$1" -v t="$2" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t * 1000 / hz / (n / 1000) }'
}

s2_rss_mb() {
	awk -v k="$(s2_rss_kib "$@")" 'BEGIN { printf "%.1f", k / 1024 }'
}

# l7_scenario N GROUP BACKENDS_UP ONE_REP ONCE CONTENDER...: the frame
# scenarios 2 and 6 share. BACKENDS_UP starts the backends (their PIDs in
# L7_BACKENDS); per contender: setup, BENCH_REPS x "ONE_REP NAME ADDR GROUP
# PID..." (non-zero: stop repeating), proxy RSS, "ONCE NAME ADDR GROUP
# PID..." (or ':'), teardown.
l7_scenario() {
	local n=$1 g=$2 up=$3 rep=$4 once=$5 spec name label addr setup teardown r pids
	shift 5
	for spec in "$@"; do
		IFS='|' read -r name label _ <<<"$spec"
		bench_label "$n" "$name" "$label"
	done
	bench_log "scenario $n (proxy on CPU $(bench_cpus proxy), load and backends on CPU $(bench_cpus load))"
	if ! "$up"; then
		bench_fail "scenario $n: backends"
		c_proxies_down
		return
	fi
	for spec in "$@"; do
		IFS='|' read -r name label addr setup teardown <<<"$spec"
		if ! bench_setup "$setup" proxy; then
			bench_fail "scenario $n $name: setup"
			bench_teardown "$teardown"
			continue
		fi
		pids=("${BENCH_PROXIES[@]}")
		[ "$name" = sockmesh ] && pids=("$BENCH_AGENT_PID")
		for ((r = 1; r <= BENCH_REPS; r++)); do
			"$rep" "$name" "$addr" "$g" "${pids[@]}" || break
		done
		[ ${#pids[@]} -gt 0 ] && bench_record "$n" "proxy RSS MB" "$g" "$name" "$(s2_rss_mb "${pids[@]}")"
		"$once" "$name" "$addr" "$g" "${pids[@]}"
		bench_log "  $name done"
		bench_teardown "$teardown"
	done
	bench_stop "${L7_BACKENDS[@]}"
}

# One repetition of scenario 2 for contender $1 at $2.
s2_rep() {
	local name=$1 addr=$2 g=$3 out t0 t1 reqs
	shift 3
	t0=$(s2_cpu_ticks "$@")
	out=$(bench_client load "$POD_CLIENT" "$BENCH_HTTP" --addr "$addr" --conns "$S2_CONNS" \
		--rate 0 --secs "$S2_SECS" -H "x-canary: no" | head -1)
	t1=$(s2_cpu_ticks "$@")
	if [[ "$out" != http* ]]; then
		bench_fail "scenario 2 $name max: $out"
		return 1
	fi
	reqs=$(bench_field "$out" requests)
	bench_record 2 "max req/s" "$g" "$name" "$(bench_field "$out" rps)"
	[ $# -gt 0 ] && [ "$t1" -gt "$t0" ] &&
		bench_record 2 "req per proxy CPU-s" "$g" "$name" "$(l7_req_per_cpu_s "$reqs" $((t1 - t0)))"
	t0=$(s2_cpu_ticks "$@")
	out=$(bench_client load "$POD_CLIENT" "$BENCH_HTTP" --addr "$addr" --conns "$S2_CONNS" \
		--rate "$S2_RATE" --secs "$S2_SECS" -H "x-canary: no")
	t1=$(s2_cpu_ticks "$@")
	if [[ "$out" != http* ]]; then
		bench_fail "scenario 2 $name at $S2_RATE/s: $out"
		return 1
	fi
	reqs=$(bench_field "$(head -1 <<<"$out")" requests)
	bench_record 2 "p50 µs @${S2_RATE}/s" "$g" "$name" "$(bench_field "$out" p50_us)"
	bench_record 2 "p99 µs @${S2_RATE}/s" "$g" "$name" "$(bench_field "$out" p99_us)"
	bench_record 2 "p99.9 µs @${S2_RATE}/s" "$g" "$name" "$(bench_field "$out" p999_us)"
	[ $# -gt 0 ] &&
		bench_record 2 "proxy CPU ms / 1000 req" "$g" "$name" "$(l7_cpu_ms_per_kreq "$reqs" $((t1 - t0)))"
	bench_record 2 "v2 share %" "$g" "$name" \
		"$(awk '$1 == "backend" { n[$2] = $3; s += $3 } END { printf "%.1f", s ? 100 * n["v2"] / s : 0 }' <<<"$out")"
}

# S2_CALLGRIND=SECS: the sockmesh agent alone under callgrind, the closed
# loop for SECS; "proxy instructions per request" = its instructions in that
# window / the requests the client completed (bench_callgrind_window).
s2_callgrind_rep() {
	local name=$1 addr=$2 g=$3 pid=$4 reqs
	bench_callgrind_window "$pid" bench_client load "$POD_CLIENT" "$BENCH_HTTP" --addr "$addr" \
		--conns "$S2_CONNS" --rate 0 --secs "$S2_CALLGRIND" -H "x-canary: no" || return 1
	reqs=$(bench_field "$(head -1 <<<"$BENCH_CG_OUT")" requests)
	if [ "${reqs:-0}" -le 0 ]; then
		bench_fail "scenario 2 callgrind: $BENCH_CG_OUT"
		return 1
	fi
	bench_record 2 "proxy instructions per request" "$g" "$name" "$((BENCH_CG_IR / reqs))"
	return 1	# one repetition
}

s2_run() {
	if [ -n "${S2_CALLGRIND:-}" ]; then
		l7_scenario 2 "$S2_CONNS conns, 1 KiB, callgrind" s2_backends_up s2_callgrind_rep : \
			"${S2_CONTENDERS[@]: -1}"
		return
	fi
	l7_scenario 2 "$S2_CONNS conns, 1 KiB" s2_backends_up s2_rep : "${S2_CONTENDERS[@]}"
}
