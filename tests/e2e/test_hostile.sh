#!/bin/bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Hostile HTTP clients against the agent's L7 proxy (issue 6). Pod 1 sends
# raw bytes through the VIP of an L7 service (connect4 sends them to the
# proxy); pod 2 runs sm-http behind it (tests/e2e/policies/hostile.yaml).
# The agent runs with a small --l7-max-conns and a short
# --l7-header-timeout. Every case must get its documented answer and the
# proxy must serve a normal request right after. The whole battery runs
# twice; the agent's descriptors and RSS must stay flat across the rounds.

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
VIP=10.96.7.20:80
MAX_CONNS=20
HDR_MS=1500
# shellcheck disable=SC2034 # read by mesh_agent_start
MESH_AGENT_L7=1
# shellcheck disable=SC2034
MESH_AGENT_ARGS=(--l7-max-conns "$MAX_CONNS" --l7-header-timeout "$HDR_MS")
mesh_up smhst 2 "$E2E_ROOT/tests/e2e/policies/hostile.yaml" || { echo "FAIL: mesh_up"; exit 1; }
sm_pod_spawn 2 "$HTTP" --port 8080 --id v1 >"$E2E_TMP/http.out" 2>&1
e2e_wait_for_line "$E2E_TMP/http.out" '^ready' 20 || { echo "FAIL: sm-http"; cat "$E2E_TMP/http.out"; exit 1; }

hreq() { sm_pod_exec 1 "$HREQ" "$@"; }
val() { # val OUTPUT KEY...: the number after "KEY..." in sm-hreq's output (0 when absent)
	local out=$1; shift
	awk -v k="$*" '{ v = $NF; $NF = ""; sub(/ $/, ""); if ($0 == k) { print v; f = 1 } }
		END { if (!f) print 0 }' <<<"$out"
}
pstat() { ctl status -o json | jq ".proxy.$1"; }
idle() { [ "$(pstat downstream_cx_active)" = 0 ]; }
bytes() { # bytes NAME FORMAT [ARGS...]: printf's output into $E2E_TMP/NAME
	local f=$E2E_TMP/$1; shift
	# shellcheck disable=SC2059 # the format is the test input
	printf "$@" >"$f"
}
agent_res() { # "FDS RSS_KB" of the agent
	echo "$(find "/proc/$AGENT_PID/fd" -mindepth 1 | wc -l) $(awk '/^VmRSS/ { print $2 }' "/proc/$AGENT_PID/status")"
}
served() { # served WHAT: a normal request right after
	e2e_assert_eq "$1: then a normal request is served" 1 "$(val "$(hreq --addr "$VIP" --timeout 10)" status 200)"
}
expect() { # expect NAME FILE STATUS: the documented answer, then the connection closes
	local out
	out=$(hreq --addr "$VIP" --raw "$E2E_TMP/$2" --timeout 5)
	e2e_assert_eq "$1 -> $3" 1 "$(val "$out" status "$3")"
	e2e_assert_match "$1: connection closed" '^end (eof|reset) ' "$(grep '^end' <<<"$out")"
	served "$1"
}

e2e_assert_eq "proxy runs with --l7-max-conns" "$MAX_CONNS" "$(pstat max_conns)"
e2e_assert_eq "proxy runs with --l7-header-timeout" "$HDR_MS" "$(pstat header_timeout_ms)"

# --- inputs ---
H='Host: web\r\n'
bytes cl_te 'POST /x HTTP/1.1\r\n'"$H"'Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'
bytes cl_differ 'POST /x HTTP/1.1\r\n'"$H"'Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd'
bytes cl_list 'POST /x HTTP/1.1\r\n'"$H"'Content-Length: 4, 5\r\n\r\nabcd'
bytes cl_equal 'POST /x HTTP/1.1\r\n'"$H"'Content-Length: 4\r\nContent-Length: 4\r\nConnection: close\r\n\r\nabcd'
bytes te_gzip 'POST /x HTTP/1.1\r\n'"$H"'Transfer-Encoding: gzip\r\n\r\nabcd'
bytes te_http10 'POST /x HTTP/1.0\r\n'"$H"'Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n'
bytes obs_fold 'GET /x HTTP/1.1\r\n'"$H"'X-A: a\r\n b\r\n\r\n'
bytes bare_lf 'GET /x HTTP/1.1\nHost: web\n\n'
bytes bare_cr 'GET /x HTTP/1.1\r\nHost: web\rX-A: b\r\n\r\n'
bytes nul_hdr 'GET /x HTTP/1.1\r\n'"$H"'X-A: a\x00b\r\n\r\n'
bytes sp_colon 'GET /x HTTP/1.1\r\nHost : web\r\n\r\n'
bytes no_host 'GET /x HTTP/1.1\r\n\r\n'
bytes two_hosts 'GET /x HTTP/1.1\r\n'"$H$H"'\r\n'
bytes bad_chunk 'POST /x HTTP/1.1\r\n'"$H"'Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n'
bytes http2 'GET /x HTTP/2.0\r\n'"$H"'\r\n'
bytes big_head 'GET /x HTTP/1.1\r\n'"$H"'x-big: %s\r\n\r\n' "$(head -c 70000 /dev/zero | tr '\0' a)"
{ printf 'GET /x HTTP/1.1\r\nHost: web\r\n'; for i in $(seq 1 120); do printf 'x-h%d: v\r\n' "$i"; done
  printf '\r\n'; } >"$E2E_TMP/many_hdrs"
bytes slow 'GET /slow HTTP/1.1\r\n'"$H"'x-slow: %s' "$(head -c 100 /dev/zero | tr '\0' s)"
bytes get 'GET /direct HTTP/1.1\r\n'"$H"'\r\n'
FLOOD=2000
{ for i in $(seq 1 $((FLOOD - 1))); do printf 'GET /p/%d HTTP/1.1\r\nHost: web\r\n\r\n' "$i"; done
  printf 'GET /p/%d HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n' "$FLOOD"; } >"$E2E_TMP/flood"

hostile_round() { # hostile_round N
	local r="[$1]" out i ms ov0 nr0 t0 pids=()

	e2e_log "$r malformed heads and smuggling: 400 and close (RFC 9112, Envoy's defaults)"
	expect "$r CL + TE" cl_te 400
	expect "$r two differing Content-Lengths" cl_differ 400
	expect "$r Content-Length list 4, 5" cl_list 400
	expect "$r Transfer-Encoding other than chunked" te_gzip 400
	expect "$r Transfer-Encoding in HTTP/1.0" te_http10 400
	expect "$r obs-fold" obs_fold 400
	expect "$r bare LF line ends" bare_lf 400
	expect "$r bare CR" bare_cr 400
	expect "$r NUL in a header value" nul_hdr 400
	expect "$r space before the colon" sp_colon 400
	expect "$r HTTP/1.1 without Host" no_host 400
	expect "$r two Host headers" two_hosts 400
	expect "$r bad chunk size line" bad_chunk 400
	expect "$r HTTP/2.0 request line" http2 505
	e2e_log "$r identical Content-Lengths are one (RFC 9110 8.6): forwarded"
	out=$(hreq --addr "$VIP" --raw "$E2E_TMP/cl_equal" --out "$E2E_TMP/cl_equal.resp" --timeout 5)
	e2e_assert_eq "$r CL 4 twice -> 200" 1 "$(val "$out" status 200)"
	e2e_assert_ok "$r the backend got the 4 body bytes" grep -aq 'body_bytes_received=4' "$E2E_TMP/cl_equal.resp"

	e2e_log "$r oversized heads: 431 and close"
	expect "$r 70 KB head (limit 64 KiB)" big_head 431
	expect "$r 120 headers (limit 100)" many_hdrs 431

	e2e_log "$r slow heads: one byte per 100 ms, never the blank line; 408 and close after ${HDR_MS} ms"
	for i in 1 2 3 4 5; do
		sm_pod_spawn 1 "$HREQ" --addr "$VIP" --raw "$E2E_TMP/slow" --trickle 100 --timeout 8 \
			>"$E2E_TMP/slow-$i.out" 2>&1
		pids+=("$SM_LAST_PID")
	done
	sleep 0.3
	served "$r while 5 slow heads trickle"
	for i in 1 2 3 4 5; do
		e2e_wait_for_line "$E2E_TMP/slow-$i.out" '^done' 30
		out=$(cat "$E2E_TMP/slow-$i.out")
		ms=$(awk '$1 == "end" { print $3 }' <<<"$out")
		e2e_assert_eq "$r slow head $i: 408" 1 "$(val "$out" status 408)"
		e2e_assert_match "$r slow head $i: closed" '^end eof ' "$(grep '^end' <<<"$out")"
		# (not before the timeout; after it with room for a loaded machine, far below the 10 s default)
		e2e_assert_range "$r slow head $i: after ~${HDR_MS} ms (${ms} ms)" $((HDR_MS - 100)) $((HDR_MS + 2500)) "$ms"
	done
	wait "${pids[@]}" 2>/dev/null

	e2e_log "$r $FLOOD pipelined GETs on one connection: all answered, in order"
	t0=$(date +%s%N)
	out=$(hreq --addr "$VIP" --raw "$E2E_TMP/flood" --out "$E2E_TMP/flood.resp" --timeout 20)
	e2e_log "$r flood: $(val "$out" "done") responses in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
	e2e_assert_eq "$r $FLOOD x 200" "$FLOOD" "$(val "$out" status 200)"
	e2e_assert_match "$r closed after the last (Connection: close)" '^end eof ' "$(grep '^end' <<<"$out")"
	e2e_assert_eq "$r in order" in-order \
		"$(grep -ao 'path=/p/[0-9]*' "$E2E_TMP/flood.resp" | cut -d/ -f3 | cmp -s - <(seq 1 "$FLOOD") && echo in-order)"
	served "$r flood"

	e2e_log "$r more than --l7-max-conns ($MAX_CONNS) idle connections"
	e2e_wait_until 20 idle
	ov0=$(pstat downstream_cx_overflow)
	# (watched 2 s: the proxy accepts and closes the 10 before any request, however slow the machine)
	out=$(hreq --addr "$VIP" --hold $((MAX_CONNS + 10)) --hold-ms 2000 --path /held --timeout 5)
	e2e_assert_eq "$r $((MAX_CONNS + 10)) connects complete" $((MAX_CONNS + 10)) "$(val "$out" connected)"
	e2e_assert_eq "$r the 10 over the limit are closed at once" 10 "$(val "$out" closed)"
	e2e_assert_eq "$r the $MAX_CONNS admitted are served" "$MAX_CONNS" "$(val "$out" status 200)"
	e2e_assert_eq "$r counted as downstream_cx_overflow" 10 $(($(pstat downstream_cx_overflow) - ov0))
	e2e_wait_until 20 idle
	out=$(hreq --addr "$VIP" --hold "$MAX_CONNS" --hold-ms 0 --path /again --timeout 5)
	e2e_assert_eq "$r slots come back: $MAX_CONNS new connections served" "$MAX_CONNS 0" \
		"$(val "$out" status 200) $(val "$out" closed)"

	e2e_log "$r a direct connect to the listener (no VIP, no original destination)"
	nr0=$(pstat downstream_cx_refused_no_orig_dst)
	out=$(hreq --addr "$SM_NODE_IP:15001" --raw "$E2E_TMP/get" --timeout 3)
	e2e_assert_eq "$r refused: no response" 0 "$(val "$out" "done")"
	e2e_assert_match "$r refused: closed" '^end (eof|reset) ' "$(grep '^end' <<<"$out")"
	e2e_assert_eq "$r counted as downstream_cx_refused_no_orig_dst" 1 $(($(pstat downstream_cx_refused_no_orig_dst) - nr0))
	served "$r direct connect"
	e2e_wait_until 20 idle
}

# Warm up: both workers get a pooled upstream connection, the allocator its arenas.
hreq --addr "$VIP" --hold 10 --hold-ms 0 >/dev/null
read -r fd0 rss0 < <(agent_res)
hostile_round 1
read -r fd1 rss1 < <(agent_res)
hostile_round 2
read -r fd2 rss2 < <(agent_res)
e2e_log "agent descriptors $fd0 -> $fd1 -> $fd2, RSS $rss0 -> $rss1 -> $rss2 KB"
e2e_assert_range "descriptors flat across round 1 ($fd0 -> $fd1)" 0 $((fd0 + 2)) "$fd1"
e2e_assert_range "descriptors flat across round 2 ($fd1 -> $fd2)" 0 $((fd0 + 2)) "$fd2"
e2e_assert_range "RSS flat across round 2 ($rss1 -> $rss2 KB, slack 1 MiB)" 0 $((rss1 + 1024)) "$rss2"

e2e_log "counters and metrics"
m=$(curl -sS -m 5 --unix-socket "$E2E_TMP/admin.sock" http://localhost/metrics)
e2e_assert_match "metric: refused over max_conns" \
	"sockmesh_proxy_downstream_cx_refused_total\{reason=\"max_conns\"\} 20" "$m"
e2e_assert_match "metric: refused without original destination" \
	"sockmesh_proxy_downstream_cx_refused_total\{reason=\"no_orig_dst\"\} 2" "$m"
e2e_assert_match "metric: bad requests (16 a round)" \
	"sockmesh_proxy_downstream_rq_rejected_total\{reason=\"bad_request\"\} 32" "$m"
e2e_assert_match "metric: header timeouts (5 a round)" \
	"sockmesh_proxy_downstream_rq_rejected_total\{reason=\"header_timeout\"\} 10" "$m"
e2e_assert_match "metric: the limit" "sockmesh_proxy_downstream_cx_limit $MAX_CONNS" "$m"
e2e_assert_eq "agent alive" true "$(ctl status -o json | jq .alive)"
e2e_finish
