# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# shellcheck shell=bash
#
# h2.sh — scenario 6: unary gRPC-shaped requests over h2c through one L7
# hop. Backends: nginx with h2c (prior knowledge) in pods 3 (v1) and 4 (v2)
# on PORT_H2, 1 KiB bodies; the same rules as scenario 2 ("x-canary: yes"
# -> v2, otherwise 90/10). Each proxy speaks HTTP/2 on both sides: HAProxy
# (bind/server proto h2), nginx (listen http2, grpc_pass), sockmesh (a
# Service port named grpc: h2c upstream). POSTs of 1 KiB with content-type
# application/grpc from the client pod. Per contender, three tables:
#
# closed loop (h2load, S6_CONNS connections x S6_STREAMS streams, S6_REQS):
#   max req/s            h2load's rate
#   req per proxy CPU-s  requests / proxy CPU seconds in that run
#   mean µs per request  h2load's "time for request" mean
#   proxy RSS MB         after all runs (all processes of the proxy)
# open loop (sm-bench-h2 load, S6_RATE req/s for S6_RATE_SECS over the same
# connections, at most S6_STREAMS streams each; latency from each request's
# due time to the end of its response, no coordinated omission):
#   p50/p99/p99.9 µs, proxy CPU ms / 1000 req, failed requests,
#   p99 ÷ HAProxy p99 (medians of the repetitions), and the generator's
#   own lag p99 (how late it noticed requests were due: on a busy machine
#   the floor under every latency figure)
# held streams (once per proxy, after the repetitions): sm-bench-h2 hold
# opens N (each of S6_HOLD) streams, S6_HOLD_PER_CONN per client
# connection, to a path routed to sm-bench-h2 serve on PORT_H2_HOLD in pod
# 3, which answers each with its response head at once and ends it only
# when the request ends: every stream is open end to end through the proxy.
# The proxy's VmRSS (all its processes) is read at rest and once every
# stream has its response head:
#   KiB per 1000 streams, N open   (RSS open - RSS at rest) x 1000 / N
#   proxy RSS MB, N open / at rest; proxy fds, N open (descriptors: the
#   agent's open-file limit bounds how many streams it can hold)
# Kernel socket buffers are not in RSS. S6_HOLD stops at 4000: the
# sockmesh engine of today takes ~4 descriptors per stream (two
# socketpairs), and 5000 streams meet a hard open-file limit of 20000 (the
# streams over it wait until descriptors free).

S6_CONNS=4
S6_STREAMS=16
PORT_H2=8081
PORT_H2_HOLD=8082
S6_HOLD_PATH=/sm.Hold/Stream	# routed to the hold backend by every proxy
: "${S6_RATE:=5000}"		# req/s of the open-loop run
: "${S6_HOLD:=1000 4000}"	# streams held open at once (see below)
: "${S6_HOLD_PER_CONN:=100}"	# HAProxy's default SETTINGS_MAX_CONCURRENT_STREAMS

s6_backends_up() {
	l7_backends_up backend-h2 "$PORT_H2" http2 "keepalive_requests 10000000;" || return 1
	bench_spawn "$POD_V1" "$BENCH_H2" serve --listen "$V1_IP:$PORT_H2_HOLD" \
		>"$BENCH_TMP/hold-backend.log" 2>&1
	L7_BACKENDS+=("$SM_LAST_PID")
	bench_wait_listen "$POD_V1" "$PORT_H2_HOLD" 5 "$SM_LAST_PID" || return 1
	bench_place load "$SM_LAST_PID"
}

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
	use_backend hold if { path_beg /sm.Hold/ }
	use_backend v2 if { req.hdr(x-canary) -m str yes }
	default_backend split
backend split
	balance random
	server v1 $V1_IP:$PORT_H2 weight 90 proto h2
	server v2 $V2_IP:$PORT_H2 weight 10 proto h2
backend v2
	server v2 $V2_IP:$PORT_H2 proto h2
backend hold
	server h1 $V1_IP:$PORT_H2_HOLD proto h2
EOC
		c_proxy_start node haproxy-h2 15082 haproxy -db -f "$cfg" || return 1
		;;
	nginx)
		c_nginx_start node proxy-h2 15083 "upstream v1 { server $V1_IP:$PORT_H2; keepalive 64; keepalive_requests 10000000; }
	upstream v2 { server $V2_IP:$PORT_H2; keepalive 64; keepalive_requests 10000000; }
	upstream hold { server $V1_IP:$PORT_H2_HOLD; keepalive 64; }
	split_clients \"\${request_id}\" \$split { 90% v1; * v2; }
	map \$http_x_canary \$route { \"~^yes\$\" v2; default \$split; }
	server {
		listen $SM_NODE_IP:15083 http2;
		keepalive_requests 10000000;
		location / { grpc_pass grpc://\$route; }
		location /sm.Hold/ { grpc_pass grpc://hold; }
	}" || return 1
		;;
	*) return 1 ;;
	esac
	bench_place proxy "${BENCH_PROXIES[@]}"
}

# One repetition of scenario 6 for contender $1 at $2: the closed loop
# (h2load), then the open loop at S6_RATE (sm-bench-h2).
s6_rep() {
	local name=$1 addr=$2 g=$3 out t0 t1 reqs errs
	shift 3
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
		bench_record 6 "req per proxy CPU-s" "$g" "$name" "$(l7_req_per_cpu_s "$reqs" $((t1 - t0)))"
	bench_record 6 "mean µs per request" "$g" "$name" \
		"$(awk '/^time for request:/ { v = $5; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v);
			f = u == "ms" ? 1000 : u == "s" ? 1e6 : 1; printf "%.0f", v * f }' <<<"$out")"

	t0=$(s2_cpu_ticks "$@")
	out=$(bench_client load "$POD_CLIENT" timeout 120 "$BENCH_H2" load --addr "$addr" \
		--conns "$S6_CONNS" --streams "$S6_STREAMS" --rate "$S6_RATE" --secs "$S6_RATE_SECS" \
		--path /sm.Echo/Say --body 1024 -H 'x-canary: no')
	t1=$(s2_cpu_ticks "$@")
	if [[ "$out" != h2* ]]; then
		bench_fail "scenario 6 $name at $S6_RATE/s: $out"
		return 1
	fi
	reqs=$(bench_field "$out" requests) errs=$(bench_field "$out" errors)
	bench_record 6 "failed requests" "$S6_RATE_G" "$name" "$errs"
	if [ "$errs" != 0 ]; then
		bench_log "scenario 6 $name at $S6_RATE/s: $errs requests failed"
		[ "$name" = sockmesh ] && bench_fail "scenario 6 $name: $errs requests failed at $S6_RATE/s"
	fi
	bench_record 6 "p50 µs" "$S6_RATE_G" "$name" "$(bench_field "$out" p50_us)"
	bench_record 6 "p99 µs" "$S6_RATE_G" "$name" "$(bench_field "$out" p99_us)"
	bench_record 6 "p99.9 µs" "$S6_RATE_G" "$name" "$(bench_field "$out" p999_us)"
	bench_record 6 "client lag p99 µs" "$S6_RATE_G" "$name" "$(bench_field "$out" lag_p99_us)"
	[ $# -gt 0 ] &&
		bench_record 6 "proxy CPU ms / 1000 req" "$S6_RATE_G" "$name" "$(l7_cpu_ms_per_kreq "$reqs" $((t1 - t0)))"
	return 0
}

# Open file descriptors of PIDs and their child processes.
s6_fds() {
	local pid total=0
	while read -r pid; do
		total=$((total + $(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)))
	done < <(s2_tree "$@")
	echo "$total"
}

# s6_hold NAME ADDR GROUP PID...: once per proxy, the proxy's RSS at rest
# and with each of S6_HOLD streams open through it.
s6_hold() {
	local name=$1 addr=$2 n rest open fds pid f i line
	shift 3
	[ $# -gt 0 ] || return 0
	rest=$(s2_rss_kib "$@")
	bench_record 6 "proxy RSS MB at rest" "$S6_HOLD_G" "$name" "$(awk -v k="$rest" 'BEGIN { printf "%.1f", k / 1024 }')"
	for n in $S6_HOLD; do
		f=$BENCH_TMP/hold-$name-$n.out
		# hold-secs and max-secs bound it; SIGUSR1 ends the hold early
		bench_spawn "$POD_CLIENT" taskset -c "$(bench_cpus load)" "$BENCH_H2" hold \
			--addr "$addr" --total "$n" --conns $(((n + S6_HOLD_PER_CONN - 1) / S6_HOLD_PER_CONN)) \
			--path "$S6_HOLD_PATH" -H 'x-canary: no' --hold-secs 30 --max-secs 30 >"$f" 2>&1
		pid=$SM_LAST_PID
		for ((i = 0; i < 600; i++)); do
			grep -q '^open ' "$f" && break
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.05
		done
		open=$(s2_rss_kib "$@") fds=$(s6_fds "$@")
		kill -USR1 "$pid" 2>/dev/null
		for ((i = 0; i < 400; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.05
		done
		bench_stop "$pid"
		# the RSS was read with every stream open only if all were by then
		line=$(grep '^open ' "$f")
		if [ "$(bench_field "$line" opened)" != "$n" ] ||
			[ "$(bench_field "$(grep '^hold ' "$f")" completed)" != "$n" ]; then
			bench_fail "scenario 6 $name: $n held streams ($fds proxy fds, open-file limit $(ulimit -n)): $(tr '\n' ' ' <"$f")"
			continue
		fi
		bench_log "  $name: $n streams open in $(bench_field "$line" secs) s, RSS $rest -> $open KiB, $fds fds"
		bench_record 6 "KiB per 1000 streams, $n open" "$S6_HOLD_G" "$name" \
			"$(awk -v a="$rest" -v b="$open" -v n="$n" 'BEGIN { printf "%.0f", (b - a) * 1000 / n }')"
		bench_record 6 "proxy RSS MB, $n open" "$S6_HOLD_G" "$name" "$(awk -v k="$open" 'BEGIN { printf "%.1f", k / 1024 }')"
		bench_record 6 "proxy fds, $n open" "$S6_HOLD_G" "$name" "$fds"
	done
}

# S6_CALLGRIND=N: instead of the tables above, the sockmesh agent alone
# under callgrind (user-space instructions; the machine's noise does not
# move them): counters zeroed, N closed-loop requests (h2load as above),
# counters dumped; "proxy instructions per request" = all the agent's
# threads' instructions in that window / N. One repetition.
s6_callgrind_rep() {
	local name=$1 addr=$2 g=$3 pid=$4 ok
	bench_callgrind_window "$pid" bench_client load "$POD_CLIENT" timeout 600 h2load \
		-n "$S6_CALLGRIND" -c "$S6_CONNS" -m "$S6_STREAMS" -d "$S6_BODY_FILE" \
		-H 'content-type: application/grpc' -H 'x-canary: no' "http://$addr/sm.Echo/Say" || return 1
	ok=$(sed -nE 's/^requests: .* ([0-9]+) succeeded.*/\1/p' <<<"$BENCH_CG_OUT")
	bench_record 6 "failed requests" "$g" "$name" "$((S6_CALLGRIND - ${ok:-0}))"
	bench_record 6 "proxy instructions per request" "$g" "$name" "$((BENCH_CG_IR / S6_CALLGRIND))"
	return 1	# one repetition
}

# S6_PERF=N: the sockmesh agent alone (not under callgrind), N closed-loop
# requests under `perf record -g` (cpu-clock: this VM has no hardware
# counters); the profile goes to $BENCH_OUT/perf.s6.data (perf report -i).
s6_perf_rep() {
	local name=$1 addr=$2 g=$3 pid=$4 perf_pid stat_pid out
	perf record -q -g -e cpu-clock -p "$pid" -o "$BENCH_OUT/perf.s6.data" >/dev/null 2>&1 &
	perf_pid=$!
	# syscalls of the run (in the log, with the request count)
	perf stat -x, -e syscalls:sys_enter_read,syscalls:sys_enter_write,syscalls:sys_enter_writev \
		-e syscalls:sys_enter_epoll_wait,syscalls:sys_enter_epoll_ctl,syscalls:sys_enter_recvfrom \
		-e syscalls:sys_enter_sendto,syscalls:sys_enter_sendmsg -p "$pid" \
		-o "$BENCH_OUT/perf.s6.syscalls" &
	stat_pid=$!
	sleep 1
	out=$(bench_client load "$POD_CLIENT" timeout 120 h2load -n "$S6_PERF" -c "$S6_CONNS" \
		-m "$S6_STREAMS" -d "$S6_BODY_FILE" -H 'content-type: application/grpc' \
		-H 'x-canary: no' "http://$addr/sm.Echo/Say" 2>&1)
	kill -INT "$perf_pid" "$stat_pid"
	wait "$perf_pid" "$stat_pid"
	bench_log "  perf: $S6_PERF requests; syscalls: $(awk -F, '/syscalls:/ { sub(/.*sys_enter_/, "", $3); printf "%s %s ", $3, $1 }' "$BENCH_OUT/perf.s6.syscalls")"
	bench_record 6 "failed requests" "$g" "$name" "$((S6_PERF - $(sed -nE 's/^requests: .* ([0-9]+) succeeded.*/\1/p' <<<"$out")))"
	return 1	# one repetition
}

# The median of the numbers on stdin.
s6_median() {
	sort -g | awk '{ a[NR] = $1 } END { if (NR) print NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# s6_p99 NAME: the median of NAME's open-loop p99s.
s6_p99() {
	awk -F'\t' -v g="$S6_RATE_G" -v c="$1" '$1 == 6 && $2 == "p99 µs" && $3 == g && $4 == c { print $5 }' \
		"$BENCH_OUT/raw.tsv" | s6_median
}

# Each proxy's open-loop p99 over HAProxy's (medians of the repetitions).
s6_p99_vs_haproxy() {
	local name h v
	h=$(s6_p99 haproxy)
	[ -n "$h" ] || return 0
	for name in haproxy nginx sockmesh; do
		v=$(s6_p99 "$name")
		[ -n "$v" ] && bench_record 6 "p99 ÷ HAProxy p99" "$S6_RATE_G" "$name" \
			"$(awk -v a="$v" -v b="$h" 'BEGIN { printf "%.2f", b ? a / b : 0 }')"
	done
	return 0
}

s6_run() {
	S6_BODY_FILE=$BENCH_TMP/h2-body.bin
	S6_RATE_G="open loop at $S6_RATE req/s, $S6_CONNS conns x <= $S6_STREAMS streams, 1 KiB"
	S6_HOLD_G="streams held open, $S6_HOLD_PER_CONN per client connection"
	printf '%1024s' '' | tr ' ' x >"$S6_BODY_FILE"
	if [ -n "${S6_PERF:-}" ]; then
		l7_scenario 6 "h2c, $S6_CONNS conns x $S6_STREAMS streams, 1 KiB, perf" \
			s6_backends_up s6_perf_rep : "${S6_CONTENDERS[@]: -1}"
		return
	fi
	if [ -n "${S6_CALLGRIND:-}" ]; then
		l7_scenario 6 "h2c, $S6_CONNS conns x $S6_STREAMS streams, 1 KiB, callgrind" \
			s6_backends_up s6_callgrind_rep : "${S6_CONTENDERS[@]: -1}"
		return
	fi
	l7_scenario 6 "h2c, $S6_CONNS conns x $S6_STREAMS streams, 1 KiB" s6_backends_up s6_rep \
		s6_hold "${S6_CONTENDERS[@]}"
	s6_p99_vs_haproxy
}
