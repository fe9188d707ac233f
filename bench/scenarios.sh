# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# shellcheck shell=bash
#
# scenarios.sh — the measurement loops. Each s<N>_run walks its contender
# table (contenders.sh): setup, BENCH_REPS repetitions, teardown. A
# contender whose setup or run fails is reported as failed and skipped; the
# others still run. Knobs (set by run.sh from QUICK): BENCH_REPS,
# S1_ITERS, S1_BYTES, S2_SECS, S2_RATE, S3_SIZES, S3_COUNT, S4_SERVICES,
# S4_EPS.

# bench_setup "SETUP_FIELD" ARG: runs the setup with its fixed arguments and
# the scenario's own argument (placement or size).
bench_setup() {
	local -a cmd
	read -r -a cmd <<<"$1"
	"${cmd[@]}" "$2"
}

bench_teardown() {
	local -a cmd
	read -r -a cmd <<<"$1"
	"${cmd[@]}"
}

bench_fail() {
	bench_log "  FAILED: $*"
	printf '%s\n' "$*" >>"$BENCH_OUT/failures.txt"
}

# ---- 1: request/response latency and throughput ----
s1_run() {
	local mode spec name label pod echo sink setup teardown r out
	for spec in "${S1_CONTENDERS[@]}"; do
		IFS='|' read -r name label _ <<<"$spec"
		bench_label 1 "$name" "$label"
	done
	for mode in pinned unpinned; do
		bench_log "scenario 1, $mode ($(bench_cpus "$mode"))"
		bench_place "$mode" "$BENCH_SERVER_PID"
		for spec in "${S1_CONTENDERS[@]}"; do
			IFS='|' read -r name label pod echo sink setup teardown <<<"$spec"
			echo=${echo//@TMP@/$BENCH_TMP} sink=${sink//@TMP@/$BENCH_TMP}
			if ! bench_setup "$setup" "$mode"; then
				bench_fail "scenario 1 $mode $name: setup"
				bench_teardown "$teardown"
				continue
			fi
			for ((r = 1; r <= BENCH_REPS; r++)); do
				out=$(bench_client "$mode" "$pod" "$BENCH_TOOL" pingpong --addr "$echo" \
					--size 64 --iters "$S1_ITERS" --warmup "$((S1_ITERS / 10))" --max-secs 30)
				if [[ "$out" != pingpong* ]]; then
					bench_fail "scenario 1 $mode $name pingpong: $out"
					break
				fi
				bench_record 1 "rr mean µs" "$mode" "$name" "$(bench_field "$out" mean_us)"
				bench_record 1 "rr p50 µs" "$mode" "$name" "$(bench_field "$out" p50_us)"
				bench_record 1 "rr p99 µs" "$mode" "$name" "$(bench_field "$out" p99_us)"
				out=$(bench_client "$mode" "$pod" "$BENCH_TOOL" stream --addr "$sink" \
					--bytes "$S1_BYTES" --chunk 65536 --max-secs 30)
				if [[ "$out" != stream* ]]; then
					bench_fail "scenario 1 $mode $name stream: $out"
					break
				fi
				bench_record 1 "throughput MB/s" "$mode" "$name" "$(bench_field "$out" mbps)"
			done
			bench_log "  $name: $(grep -c "^1	rr mean µs	$mode	$name	" "$BENCH_OUT/raw.tsv") reps"
			bench_teardown "$teardown"
		done
	done
	bench_place unpinned "$BENCH_SERVER_PID"
}

# ---- 3: connect() rate with N other services installed ----
s3_run() {
	local n spec name label pod addr setup teardown r out
	for spec in "${S3_CONTENDERS[@]}"; do
		IFS='|' read -r name label _ <<<"$spec"
		bench_label 3 "$name" "$label"
	done
	bench_place pinned "$BENCH_SERVER_PID"
	for n in $S3_SIZES; do
		bench_log "scenario 3, $n other services"
		for spec in "${S3_CONTENDERS[@]}"; do
			IFS='|' read -r name label pod addr setup teardown <<<"$spec"
			if ! bench_setup "$setup" "$n"; then
				bench_fail "scenario 3 $n $name: setup"
				bench_teardown "$teardown"
				continue
			fi
			for ((r = 1; r <= BENCH_REPS; r++)); do
				out=$(bench_client pinned "$pod" "$BENCH_TOOL" connect --addr "$addr" \
					--count "$S3_COUNT" --max-secs 30)
				if [[ "$out" != connect* ]]; then
					bench_fail "scenario 3 $n $name: $out"
					break
				fi
				bench_record 3 "connects/s" "$n other services" "$name" "$(bench_field "$out" rate)"
				bench_record 3 "connect p50 µs" "$n other services" "$name" "$(bench_field "$out" p50_us)"
			done
			bench_teardown "$teardown"
		done
	done
	bench_place unpinned "$BENCH_SERVER_PID"
}

# ---- 4: control plane at scale ----
# Per repetition: a fresh agent on S4_SERVICES x S4_EPS endpoints in files of
# S4_PER_FILE services each, as a GitOps directory or a syncer writing the
# API's objects would hold them (start to ready, and its first "policy
# generation ... applied" line), then one endpoint address changed in one
# watched file (inotify reload: the second line, an incremental one, and the
# wall time from the write to that line, which includes the agent's 100 ms
# debounce), then the RSS.
s4_run() {
	local f=$BENCH_TMP/s4.yaml dir=$BENCH_TMP/s4 old new r l1 l2 rss group t0 t1 tw
	group="$S4_SERVICES svc / $((S4_SERVICES * S4_EPS)) ep"
	bench_label 4 sockmesh "sockmesh agent"
	bench_log "scenario 4, $group, $S4_PER_FILE services per file"
	"$BENCH_DIR/gen-services.sh" yaml "$S4_SERVICES" "$S4_EPS" >"$f" || { bench_fail "scenario 4: generator"; return; }
	s4_split "$f" "$dir" "$S4_PER_FILE" || { bench_fail "scenario 4: split"; return; }
	old=$(awk '/^- \{addresses: \[/ { n++ } n == 5 { sub(/.*\[/, ""); sub(/\].*/, ""); print; exit }' "$f")
	new=10.127.255.254
	for ((r = 1; r <= BENCH_REPS; r++)); do
		t0=$(date +%s%N)
		if ! bench_agent_up "$dir"/*.yaml; then
			bench_fail "scenario 4: agent start"
			return
		fi
		t1=$(date +%s%N)
		if ! l1=$(bench_applied_line 1 60); then
			bench_fail "scenario 4: no applied line"
			bench_agent_down
			return
		fi
		# Steady state first: old versions and the sweep of unclaimed
		# entries are due 1 s after an apply, and the admin API answers
		# only once the agent's loop is free again.
		sleep 1.1
		bench_ctl status >/dev/null 2>&1
		# edit the copy the agent watches; sed -i renames into place (one inotify event)
		tw=$(date +%s%N)
		sed -i "s/addresses: \[$old\]/addresses: [$new]/" "$BENCH_POLICY_DIR/svc-00000.yaml"
		if ! l2=$(bench_applied_line 2 30); then
			bench_fail "scenario 4: the one-endpoint change was not applied"
			bench_agent_down
			return
		fi
		rss=$(awk '/^VmRSS:/ { print $2 / 1024 }' "/proc/$BENCH_AGENT_PID/status")
		bench_agent_down
		bench_record 4 "agent start to ready ms" "$group" sockmesh "$(((t1 - t0) / 1000000))"
		bench_record 4 "full apply: total ms" "$group" sockmesh "$(s4_ms "$l1")"
		bench_record 4 "full apply: parse ms" "$group" sockmesh "$(s4_phase_ms parse "$l1")"
		bench_record 4 "full apply: plan ms" "$group" sockmesh "$(s4_phase_ms plan "$l1")"
		bench_record 4 "full apply: map writes ms" "$group" sockmesh "$(s4_apply_ms "$l1")"
		bench_record 4 "1-endpoint change: file write to applied ms" "$group" sockmesh "$(s4_since "$tw" "$l2")"
		bench_record 4 "1-endpoint change: total ms" "$group" sockmesh "$(s4_ms "$l2")"
		bench_record 4 "1-endpoint change: parse ms" "$group" sockmesh "$(s4_phase_ms parse "$l2")"
		bench_record 4 "1-endpoint change: plan ms" "$group" sockmesh "$(s4_phase_ms plan "$l2")"
		bench_record 4 "1-endpoint change: map writes ms" "$group" sockmesh "$(s4_apply_ms "$l2")"
		bench_record 4 "1-endpoint change: map writes" "$group" sockmesh "$(s4_writes "$l2")"
		bench_record 4 "agent RSS MB" "$group" sockmesh "$rss"
	done
}

# s4_split FILE DIR PER: FILE's documents into DIR/svc-NNNNN.yaml, PER
# services (a Service and its EndpointSlice each) per file.
s4_split() {
	rm -rf "$2" && mkdir -p "$2" || return 1
	awk -v dir="$2" -v per="$3" '
		/^---$/ && d++ % (2 * per) == 0 { if (out) close(out); out = sprintf("%s/svc-%05d.yaml", dir, n++) }
		out { print > out }' "$1"
}

# s4_since T_NS LOGLINE: ms from T_NS (date +%s%N) to the log line's
# HH:MM:SS.mmm time stamp (today, local time).
s4_since() {
	local ts=${2%% *} day
	day=$(date -d "$(date +%F) $ts" +%s%N 2>/dev/null) || { echo NaN; return; }
	echo $(((day - $1) / 1000000))
}

# "... 11 map writes, 0 deletes, 1 of 20000 documents parsed, 1170.12 ms (parse 900.10 ms, plan 200.00 ms, apply 29.01 ms)"
s4_ms() { sed -E 's/.* ([0-9.]+) ms \(parse.*/\1/' <<<"$1"; }
s4_phase_ms() { sed -E "s/.*[(, ]$1 ([0-9.]+) ms.*/\\1/" <<<"$2"; }
s4_apply_ms() { s4_phase_ms apply "$1"; }
s4_writes() { sed -E 's/.* ([0-9]+) map writes.*/\1/' <<<"$1"; }

# ---- 5: the agent on the Kubernetes API ----
# The test API server (tests/e2e/kube_apiserver.py, TLS, one token) holds
# S4_SERVICES Services with one EndpointSlice of S4_EPS endpoints each and a
# VirtualService. The agent starts from a kubeconfig; measured: initial sync
# (first log line to the first applied generation, from the agent's log time
# stamps), then changes made through the server, each timed by the agent
# from the change arriving on its watch to the maps holding it
# (`kubernetes.last_propagation_ms`): S5_CHANGES one-endpoint changes (p50,
# p99), a new slice of a Service and its deletion (a scale-up and down), a
# new Service with its slice, a VirtualService weight change, Pods that
# come, are relabelled and go (s5_pods), a Gateway that comes, changes and
# goes, and this node's Pods (s5_node_pods: a second agent with --node-name
# under a private kubepods cgroup). API
# bytes at rest: bookmarks over S5_REST_S s, scaled to an hour at the real
# API server's one bookmark per watch per minute; against it, the polling
# script's cost: one full list of every kind (what the server sent for the
# initial sync) every 10 s. Last, the admin API at that size: GET /status
# (it reports every map's entries), GET /services and /backends (every
# service and backend), and a GET /healthz sent while they are being
# answered: what the agent's loop waits for meanwhile.
# BENCH_S5_L7=1: then the same rows again (group "..., http") with every
# Service's port named http and the VirtualService's routes http routes,
# the agent with its L7 proxy (listening on loopback; no traffic): the
# HTTP-heavy mesh, where every endpoint change is also an L7 delta (the
# proxy's clusters follow the endpoints). BENCH_S5_L7=only: those alone.
s5_run() {
	[ "${BENCH_S5_L7:-0}" = only ] || S5_PROTO=tcp s5_run_proto
	if [ "${BENCH_S5_L7:-0}" = 1 ] || [ "${BENCH_S5_L7:-0}" = only ]; then
		S5_PROTO=http s5_run_proto
	fi
}

s5_run_proto() {
	local group k=$BENCH_TMP/kube port r l0 l1 rl synced rss cpu i lat vals b0 b1 list_bytes
	group="$S4_SERVICES svc / $((S4_SERVICES * S4_EPS)) ep"
	[ "$S5_PROTO" = tcp ] || group="$group, $S5_PROTO"
	bench_label 5 sockmesh "sockmesh agent (--kubeconfig)"
	bench_log "scenario 5, $group, from the API server"
	mkdir -p "$k"
	/usr/bin/python3 "$BENCH_DIR/gen-kube-state.py" "$S4_SERVICES" "$S4_EPS" bench-token "$S5_PROTO" >"$k/state.json" ||
		{ bench_fail "scenario 5: generator"; return; }
	local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
	openssl req -x509 "${ec[@]}" -keyout "$k/ca.key" -out "$k/ca.crt" -days 1 -subj /CN=bench-ca 2>/dev/null &&
	openssl req "${ec[@]}" -keyout "$k/srv.key" -out "$k/srv.csr" -subj /CN=kube-apiserver 2>/dev/null &&
	openssl x509 -req -in "$k/srv.csr" -CA "$k/ca.crt" -CAkey "$k/ca.key" -CAcreateserial -out "$k/srv.crt" \
		-days 1 -extfile <(printf 'subjectAltName=IP:127.0.0.1') 2>/dev/null ||
		{ bench_fail "scenario 5: openssl"; return; }
	printf 'bench-token\n' >"$k/token"
	"$BENCH_DIR/gen-services.sh" yaml "$S4_SERVICES" "$S4_EPS" >"$k/files.yaml" &&
		s4_split "$k/files.yaml" "$k/files" "$S4_PER_FILE" || rm -rf "$k/files"
	for ((r = 1; r <= BENCH_REPS; r++)); do
		sm_spawn /usr/bin/python3 "$ROOT/tests/e2e/kube_apiserver.py" --listen 127.0.0.1:0 --state "$k/state.json" \
			--no-save --cert "$k/srv.crt" --key "$k/srv.key" --bookmark-s 1 >"$k/api.out" 2>&1
		S5_API_PID=$SM_LAST_PID
		for ((i = 0; i < 600; i++)); do grep -q '^ready' "$k/api.out" && break; sleep 0.05; done
		port=$(sed -n 's/^ready .*:\([0-9]*\)$/\1/p' "$k/api.out")
		[ -n "$port" ] || { bench_fail "scenario 5: API server"; bench_stop "$S5_API_PID"; return; }
		S5_API="https://127.0.0.1:$port"
		printf 'apiVersion: v1\nkind: Config\ncurrent-context: b\nclusters:\n- {name: b, cluster: {server: "%s", certificate-authority: ca.crt}}\ncontexts:\n- {name: b, context: {cluster: b, user: b}}\nusers:\n- {name: b, user: {tokenFile: token}}\n' \
			"$S5_API" >"$k/kubeconfig"
		BENCH_AGENT_SRC=(--kubeconfig "$k/kubeconfig")
		# --keep-on-exit: the agent after it adopts its data path (below)
		BENCH_AGENT_ARGS=(--keep-on-exit)
		[ "$S5_PROTO" = tcp ] || BENCH_AGENT_ARGS+=(--l7-listen "127.0.0.1:$((20000 + RANDOM % 20000))")
		if ! bench_agent_up; then
			bench_fail "scenario 5: agent start"
			BENCH_AGENT_SRC=() BENCH_AGENT_ARGS=()
			bench_stop "$S5_API_PID"
			return
		fi
		BENCH_AGENT_SRC=() BENCH_AGENT_ARGS=()
		l0=$(grep -m1 'objects from the Kubernetes API' "$BENCH_AGENT_LOG")
		l1=$(bench_applied_line 1 60)
		synced=$(sed -n 's/.*every kind synced from the API server in \([0-9.]*\) ms.*/\1/p' "$BENCH_AGENT_LOG")
		list_bytes=$(s5_ctl stats | jq .bytes)
		# the test server's own CPU building the list pages (not the agent's)
		bench_record 5 "initial sync: test API server CPU ms, list pages" "$group" sockmesh \
			"$(s5_ctl stats | jq .list_cpu_ms)"
		# the agent's CPU from exec to ready (BPF load included): what the
		# sync costs the node, apart from the test server's own speed
		cpu=$(awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) * 1000 / hz }' "/proc/$BENCH_AGENT_PID/stat")
		# the agent's own account: from its first LIST request to the first
		# apply attached, wall and CPU (the data path loads meanwhile)
		rl=$(grep -m1 'ready: .* from the first LIST request' "$BENCH_AGENT_LOG")
		sleep 1.1
		rss=$(awk '/^VmRSS:/ { print $2 / 1024 }' "/proc/$BENCH_AGENT_PID/status")
		bench_record 5 "initial sync: agent start to first apply ms" "$group" sockmesh "$(s5_between "$l0" "$l1")"
		bench_record 5 "initial sync: list of every kind ms" "$group" sockmesh "$synced"
		bench_record 5 "initial sync: first apply ms" "$group" sockmesh "$(s4_ms "$l1")"
		bench_record 5 "initial sync: agent CPU ms, start to ready" "$group" sockmesh "$cpu"
		bench_record 5 "initial sync: first LIST to ready ms" "$group" sockmesh \
			"$(sed -E 's/.*ready: ([0-9.]+) ms from.*/\1/' <<<"$rl")"
		bench_record 5 "initial sync: agent CPU ms, first LIST to ready" "$group" sockmesh \
			"$(sed -E 's/.*agent CPU ([0-9.]+) ms in that time.*/\1/' <<<"$rl")"
		bench_record 5 "agent RSS MB" "$group" sockmesh "$rss"
		# one endpoint at a time, 200 ms apart (each alone: applied at once)
		vals=()
		for ((i = 0; i < S5_CHANGES; i++)); do
			lat=$(s5_change "$(s5_slice svc-5 "10.127.$((r % 250)).$((i % 250 + 1))")") || break
			vals+=("$lat")
			sleep 0.2
		done
		if [ "${#vals[@]}" -eq "$S5_CHANGES" ]; then
			bench_record 5 "1-endpoint change: event to maps ms p50" "$group" sockmesh "$(s5_pct 50 "${vals[@]}")"
			bench_record 5 "1-endpoint change: event to maps ms p99" "$group" sockmesh "$(s5_pct 99 "${vals[@]}")"
		else
			bench_fail "scenario 5: an endpoint change was not applied (see $k/fail-$r.json)"
			{ s5_ctl stats; s5_kube; } >"$k/fail-$r.json" 2>&1
		fi
		# each change alone (0.2 s apart: a change right after an apply waits
		# for the debounce window, as a burst would)
		# a scale-up: a second slice of an existing Service, then deleted again
		lat=$(s5_change "$(s5_slice svc-6 "10.127.253.$r" "svc-6-x$r")") &&
			bench_record 5 "new EndpointSlice of a Service: event to maps ms" "$group" sockmesh "$lat"
		sleep 0.2
		lat=$(S5_VERB=delete s5_change "$(s5_slice svc-6 "10.127.253.$r" "svc-6-x$r")") &&
			bench_record 5 "deleted EndpointSlice: event to maps ms" "$group" sockmesh "$lat"
		sleep 0.2
		lat=$(s5_change "$(s5_svc "new-$r" "10.96.250.$r")" "$(s5_slice "new-$r" 10.127.254.1)") &&
			bench_record 5 "new Service: event to maps ms" "$group" sockmesh "$lat"
		sleep 0.2
		lat=$(s5_change "$(s5_vs $((20 + r)) $((80 - r)))") &&
			bench_record 5 "VirtualService weights: event to maps ms" "$group" sockmesh "$lat"
		sleep 0.2
		lat=$(s5_change "$(s5_vs $((30 + r)) $((70 - r)) "new-$r" "new-$r")") &&
			bench_record 5 "new VirtualService: event to maps ms" "$group" sockmesh "$lat"
		sleep 0.2
		lat=$(s5_change "$(s5_vs $((30 + r)) $((70 - r)) "new-$r" "new-$r" http)") &&
			bench_record 5 "VirtualService http route change: event to maps ms" "$group" sockmesh "$lat"
		sleep 0.2
		lat=$(S5_VERB=delete s5_change "$(s5_vs 1 1 "new-$r" "new-$r")") &&
			bench_record 5 "deleted VirtualService: event to maps ms" "$group" sockmesh "$lat"
		sleep 0.2
		lat=$(S5_VERB=delete s5_change "$(s5_svc "new-$r" "10.96.250.$r")" "$(s5_slice "new-$r" 10.127.254.1)") &&
			bench_record 5 "deleted Service (and its slice): event to maps ms" "$group" sockmesh "$lat"
		# Pods: another node's as the metadata watch brings it (labels, no
		# IP), then one whose IP svc-7's slice carries: new, relabelled, deleted
		s5_pods "$r" "$group"
		# a Gateway (it feeds the L7 config's gateway listeners alone)
		s5_step apply "new Gateway" "$group" "$(s5_gw "gw-$r" 8080)"
		s5_step apply "Gateway change" "$group" "$(s5_gw "gw-$r" 8081)"
		s5_step delete "deleted Gateway" "$group" "$(s5_gw "gw-$r" 8081)"
		# which of these changes were not deltas, and why
		grep -o 'not a delta (.*' "$BENCH_AGENT_LOG" | sort | uniq -c | sed 's/^/  scenario 5: /' >&2
		b0=$(s5_kube | jq .bytes_received)
		sleep "$S5_REST_S"
		b1=$(s5_kube | jq .bytes_received)
		# bookmarks came every second here; a real API server sends one a minute
		bench_record 5 "API bytes/hour at rest (bookmarks, 1/min/watch)" "$group" sockmesh \
			"$(((b1 - b0) * 3600 / S5_REST_S / 60))"
		bench_record 5 "API bytes/hour, polling every 10 s (full lists)" "$group" sockmesh "$((list_bytes * 360))"
		# GET /status (it counts every map's entries) and the agent's loop
		# meanwhile: a GET /healthz sent while a /status is being answered
		vals=() lat=()
		for ((i = 0; i < 5; i++)); do
			vals+=("$(s5_admin_ms /status)")
			s5_admin_ms /status >/dev/null &
			sleep 0.05
			lat+=("$(s5_admin_ms /healthz)")
			wait $!
		done
		bench_record 5 "GET /status ms (median of 5)" "$group" sockmesh "$(s5_pct 50 "${vals[@]}")"
		bench_record 5 "GET /healthz during a /status ms (max of 5)" "$group" sockmesh "$(s5_pct 100 "${lat[@]}")"
		# /services and /backends read every service and backend from the
		# maps (tens of MB of JSON at 100k endpoints): their time, and a
		# /healthz sent while both are being answered
		local svc_ms=() be_ms=()
		vals=() lat=()
		for ((i = 0; i < 5; i++)); do
			svc_ms+=("$(s5_admin_ms /services)")
			be_ms+=("$(s5_admin_ms /backends)")
			s5_admin_ms /services >/dev/null &
			local sp=$!
			s5_admin_ms /backends >/dev/null &
			sleep 0.05
			lat+=("$(s5_admin_ms /healthz)")
			wait "$sp" $!
		done
		bench_record 5 "GET /services ms (median of 5)" "$group" sockmesh "$(s5_pct 50 "${svc_ms[@]}")"
		bench_record 5 "GET /backends ms (median of 5)" "$group" sockmesh "$(s5_pct 50 "${be_ms[@]}")"
		bench_record 5 "GET /healthz during a /services and a /backends ms (max of 5)" "$group" sockmesh \
			"$(s5_pct 100 "${lat[@]}")"
		bench_agent_down
		s5_node_pods "$r" "$group" "$k"
		bench_stop "$S5_API_PID"
		# the same Services and slices from files (scenario 4's YAML): the
		# file mode's RSS, measured as above, to set the API feed's against
		if [ "$S5_PROTO" = tcp ] && [ -d "$k/files" ] && bench_agent_up "$k/files"/*.yaml && bench_applied_line 1 60 >/dev/null; then
			# this agent adopted the data path the API-fed one left
			# (--keep-on-exit): it sweeps every map it writes (a syscall or
			# two per entry) a slice per loop turn, 1 s after its first apply
			s5_sweep "$group"
			sleep 1.1
			rss=$(awk '/^VmRSS:/ { print $2 / 1024 }' "/proc/$BENCH_AGENT_PID/status")
			bench_record 5 "agent RSS MB, same Services from files" "$group" sockmesh "$rss"
		fi
		bench_agent_down
	done
}

# s5_sweep GROUP: the sweep of the adopted data path, from the agent's log
# line (its end, length, slices, longest slice in wall and CPU time), and
# GET /healthz sent meanwhile (every ~10 ms from the first apply until the
# line is there: those that overlap the sweep, and those before it, to
# compare; curl's own start is in both)
s5_sweep() {
	local group=$1 i line t0 t1 end took during=() other=() all=()
	for ((i = 0; i < 3000; i++)); do
		line=$(grep -m1 'swept the maps' "$BENCH_AGENT_LOG") && break
		t0=$(date +%s%N)
		all+=("$t0 $(s5_admin_ms /healthz)")
		sleep 0.01
	done
	[ -n "$line" ] || { bench_fail "scenario 5: the adopted data path was not swept"; return; }
	end=$(date -d "$(date +%F) ${line%% *}" +%s%N)
	took=$(sed -E 's/.* deleted in ([0-9.]+) ms.*/\1/' <<<"$line")
	t1=$(awk -v e="$end" -v t="$took" 'BEGIN { printf "%.0f", e - t * 1e6 }')
	for i in "${all[@]}"; do	# "start_ns ms": sent before the end, answered after the start
		if awk -v s="$t1" -v e="$end" '{ exit !($1 <= e + 1e6 && $1 + $2 * 1e6 >= s - 1e6) }' <<<"$i"; then
			during+=("${i#* }")
		else
			other+=("${i#* }")
		fi
	done
	bench_log "scenario 5: $line (GET /healthz: ${#during[@]} sent during it)"
	bench_record 5 "adopted data path sweep: entries walked" "$group" sockmesh \
		"$(sed -E 's/.* of ([0-9]+) deleted.*/\1/' <<<"$line")"
	bench_record 5 "adopted data path sweep: stale entries deleted" "$group" sockmesh \
		"$(sed -E 's/.*swept the maps: ([0-9]+) stale.*/\1/' <<<"$line")"
	bench_record 5 "adopted data path sweep: total ms" "$group" sockmesh "$took"
	bench_record 5 "adopted data path sweep: slices" "$group" sockmesh \
		"$(sed -E 's/.* ms, ([0-9]+) slices.*/\1/' <<<"$line")"
	bench_record 5 "adopted data path sweep: longest slice ms" "$group" sockmesh \
		"$(sed -E 's/.*longest ([0-9.]+) ms.*/\1/' <<<"$line")"
	bench_record 5 "adopted data path sweep: longest slice, agent CPU ms" "$group" sockmesh \
		"$(sed -E 's/.*\(CPU ([0-9.]+) ms\).*/\1/' <<<"$line")"
	[ "${#other[@]}" -gt 0 ] &&
		bench_record 5 "adopted data path sweep: GET /healthz before it ms (median)" "$group" sockmesh \
			"$(s5_pct 50 "${other[@]}")"
	if [ "${#during[@]}" -gt 0 ]; then
		bench_record 5 "adopted data path sweep: GET /healthz during it ms (median)" "$group" sockmesh \
			"$(s5_pct 50 "${during[@]}")"
		bench_record 5 "adopted data path sweep: GET /healthz during it ms (max)" "$group" sockmesh \
			"$(s5_pct 100 "${during[@]}")"
	fi
}

# s5_pods REP GROUP: the Pod rows (each change alone, 0.2 s apart); the
# agent's own log line of each on stderr
s5_pods() {
	local r=$1 group=$2 k ip
	k=$((7 * S4_EPS + 1))	# svc-7's first endpoint (gen-kube-state.py)
	ip="10.$((128 + k / 65536)).$(((k / 256) % 256)).$((k % 256))"
	s5_step apply "new Pod, metadata only (another node's)" "$group" "$(s5_pod "meta-$r" a)"
	s5_step delete "deleted Pod, metadata only" "$group" "$(s5_pod "meta-$r" a)"
	s5_step apply "new Pod whose IP a slice carries" "$group" "$(s5_pod "pod-$r" a "$ip")"
	s5_step apply "relabelled Pod" "$group" "$(s5_pod "pod-$r" b "$ip")"
	s5_step delete "deleted Pod" "$group" "$(s5_pod "pod-$r" b "$ip")"
}

# s5_node_pods REP GROUP DIR: this node's Pod (an agent with --node-name
# bench-node under a private kubepods cgroup, from the same API server): new
# (a member: its cgroup is there, the programs are attached), opted out of
# the redirect, relabelled out of the mesh, deleted; each alone
s5_node_pods() {
	local r=$1 group=$2 kp=$SM_CGROUP/kubepods uid
	uid=$(printf '5e0c1a00-0000-4000-8000-%012d' "$r")
	mkdir -p "$kp/besteffort/pod$uid" || { bench_fail "scenario 5: kubepods cgroup"; return; }
	BENCH_AGENT_SRC=(--kubeconfig "$3/kubeconfig")
	BENCH_AGENT_TARGET=(--kubepods-cgroup "$kp" --node-name bench-node)
	if bench_agent_up && bench_applied_line 1 60 >/dev/null; then
		sleep 1.1	# steady state (see scenario 4)
		s5_step apply "this node's new Pod (joins the mesh)" "$group" "$(s5_npod "$r" "$uid" true)"
		s5_step apply "this node's Pod opts out of the redirect" "$group" \
			"$(s5_npod "$r" "$uid" true ', "annotations": {"sockmesh.io/redirect": "false"}')"
		s5_step apply "this node's Pod relabelled out of the mesh" "$group" "$(s5_npod "$r" "$uid" false)"
		s5_step delete "this node's Pod deleted" "$group" "$(s5_npod "$r" "$uid" false)"
		grep -o 'not a delta (.*' "$BENCH_AGENT_LOG" | sort | uniq -c | sed 's/^/  scenario 5 (node pods): /' >&2
	else
		bench_fail "scenario 5: agent start (--node-name)"
	fi
	bench_agent_down
	BENCH_AGENT_SRC=() BENCH_AGENT_TARGET=()
	rmdir "$kp/besteffort/pod$uid" "$kp/besteffort" "$kp" 2>/dev/null
}

# s5_step VERB ROW GROUP OBJECT...: one change alone (0.2 s after the last:
# a change right after an apply waits for the debounce window, as a burst
# would), its "ROW: event to maps ms" and the agent's log line of it
s5_step() {
	local verb=$1 row=$2 group=$3 lat
	shift 3
	sleep 0.2
	lat=$(S5_VERB=$verb s5_change "$@") &&
		bench_record 5 "$row: event to maps ms" "$group" sockmesh "$lat"
	s5_last_applied "$row"
}

s5_npod() { # s5_npod REP UID INJECT [META]: a Pod of namespace bench on bench-node
	printf '{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "node-pod-%s", "namespace": "bench", "uid": "%s", "labels": {"app": "bench", "sidecar.istio.io/inject": "%s"}%s}, "spec": {"nodeName": "bench-node"}, "status": {"podIP": "10.126.0.%s", "phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}' \
		"$1" "$2" "$3" "${4:-}" "$1"
}

s5_gw() { # s5_gw NAME PORT: a Gateway of namespace bench, one HTTP server for every host
	printf '{"apiVersion": "networking.istio.io/v1", "kind": "Gateway", "metadata": {"name": "%s", "namespace": "bench"}, "spec": {"selector": {"istio": "ingressgateway"}, "servers": [{"port": {"number": %d, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}]}}' \
		"$1" "$2"
}

s5_last_applied() { # s5_last_applied DESC: the agent's last applied line, on stderr
	echo "  scenario 5: $1: $(grep 'policy generation .* applied' "$BENCH_AGENT_LOG" | tail -1 |
		sed -E 's/.* ([0-9.]+ ms \(parse)/\1/')" >&2
}

s5_pod() { # s5_pod NAME TRACK [IP]: a Pod of namespace bench; without IP, as the metadata watch has it
	local status=""
	[ -n "${3:-}" ] && status=", \"status\": {\"podIP\": \"$3\", \"phase\": \"Running\", \"conditions\": [{\"type\": \"Ready\", \"status\": \"True\"}]}"
	printf '{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "%s", "namespace": "bench", "labels": {"app": "bench", "track": "%s"}}%s}' \
		"$1" "$2" "$status"
}

s5_ctl() { # s5_ctl VERB [JSON]: the test API server's control
	if [ "$1" = stats ]; then
		curl -sS --cacert "$BENCH_TMP/kube/ca.crt" "$S5_API/_control/stats"
	else
		curl -sS --fail --cacert "$BENCH_TMP/kube/ca.crt" -X POST "$S5_API/_control/$1" -d "$2" >/dev/null
	fi
}

# s5_kube: the agent's GET /kubernetes (the kubernetes part of /status alone)
s5_kube() {
	curl -sS -m 5 --unix-socket "$BENCH_TMP/admin.sock" http://localhost/kubernetes
}

# s5_admin_ms PATH: one GET of the agent's admin API, its time in ms
s5_admin_ms() {
	curl -sS -m 10 -o /dev/null -w '%{time_total}' --unix-socket "$BENCH_TMP/admin.sock" "http://localhost$1" |
		awk '{ printf "%.2f\n", $1 * 1000 }'
}

# s5_change OBJECT...: apply the objects; the agent's propagation time (ms)
s5_change() {
	local gen i now
	# the loop answers at once, also while the agent sweeps an adopted
	# data path (a slice per loop turn)
	gen=$(s5_kube | jq .generation) && [ -n "$gen" ] || return 1
	s5_ctl "${S5_VERB:-apply}" "{\"objects\": [$(IFS=,; echo "$*")]}" || return 1
	for ((i = 0; i < 500; i++)); do
		now=$(s5_kube | jq .generation)
		if [ -n "$now" ] && [ "$now" -gt "$gen" ]; then
			s5_kube | jq .last_propagation_ms
			return 0
		fi
		sleep 0.01
	done
	return 1
}

s5_slice() { # s5_slice SERVICE ADDRESS [NAME]
	printf '{"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "%s", "namespace": "bench", "labels": {"kubernetes.io/service-name": "%s"}}, "addressType": "IPv4", "ports": [{"name": "%s", "port": 8080}], "endpoints": [{"addresses": ["%s"], "conditions": {"ready": true}}]}' "${3:-$1-1}" "$1" "${S5_PROTO:-tcp}" "$2"
}
s5_svc() {
	printf '{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "%s", "namespace": "bench"}, "spec": {"clusterIP": "%s", "ports": [{"name": "%s", "port": 80, "targetPort": 8080}]}}' "$1" "$2" "${S5_PROTO:-tcp}"
}
s5_vs() { # s5_vs W1 W2 [NAME [HOST [http]]]: a route of HOST (svc-0) to svc-1 and svc-2
	local kind=${S5_PROTO:-tcp}
	[ "${5:-}" = http ] && kind=http
	printf '{"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "%s", "namespace": "bench"}, "spec": {"hosts": ["%s"], "%s": [{"route": [{"destination": {"host": "svc-1", "port": {"number": 80}}, "weight": %d}, {"destination": {"host": "svc-2", "port": {"number": 80}}, "weight": %d}]}]}}' \
		"${3:-svc-0}" "${4:-svc-0}" "$kind" "$1" "$2"
}

# s5_pct P V...: the P-th percentile (nearest rank)
s5_pct() {
	local p=$1
	shift
	printf '%s\n' "$@" | sort -g | awk -v p="$p" '{ v[NR] = $1 } END { i = int((p * NR + 99) / 100); if (i < 1) i = 1; print v[i] }'
}

# s5_between LINE1 LINE2: ms between two log lines' HH:MM:SS.mmm stamps
s5_between() {
	local a b
	a=$(date -d "$(date +%F) ${1%% *}" +%s%N 2>/dev/null) || { echo NaN; return; }
	b=$(date -d "$(date +%F) ${2%% *}" +%s%N 2>/dev/null) || { echo NaN; return; }
	echo $(((b - a) / 1000000))
}
