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
