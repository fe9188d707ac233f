#!/bin/bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Hostile policy input. Every file in tests/e2e/bad-policies/ says in its
# header what must happen to it:
#   # expect: ERE          rejected: exactly one error, matching ERE (file:line:col)
#   # expect-warning: ERE  valid (Istio accepts it), with this warning
#   # flags: ARGS          extra arguments (--max-* capacities)
# a) `sockmeshctl validate` on every file (no root needed).
# b) A running agent (the L4 test policy, --max-services 16): one file per
#    class dropped into the watched policy directory is rejected with its
#    file:line:col in the log and in /status, the generation and the map
#    fill stay, connects through the VIP go on; after the file is removed, a
#    good change still applies.

# shellcheck disable=SC1091
. "$(dirname "$0")/lib.sh"
CTL=$SM_BUILD/sockmeshctl
D=$E2E_ROOT/tests/e2e/bad-policies

hdr() { # hdr KEY FILE -> the header's value
	sed -n "s/^# $1: //p" "$2"
}
n_errors() {
	grep -c ': error: ' <<<"$1"
}

e2e_log "a) sockmeshctl validate on $(find "$D" -name '*.yaml' | wc -l) bad policies"
for f in "$D"/*.yaml; do
	name=$(basename "$f" .yaml)
	expect=$(hdr expect "$f")
	warn=$(hdr expect-warning "$f")
	# shellcheck disable=SC2046 # flags are words
	out=$("$CTL" validate -f "$f" $(hdr flags "$f") 2>&1)
	rc=$?
	if [ -n "$expect" ]; then
		e2e_assert_eq "$name: exit 1, one error" "1 1" "$rc $(n_errors "$out")"
		e2e_assert_match "$name: file:line:col and message" "$expect" "$out"
	else
		e2e_assert_eq "$name: valid (exit 0), no error" "0 0" "$rc $(n_errors "$out")"
		e2e_assert_match "$name: the warning" "$warn" "$out"
	fi
done
out=$("$CTL" validate -f "$D/capacity-services.yaml" 2>&1)
e2e_assert_eq "capacity-services fits the default --max-services" 0 $?
e2e_assert_eq "a capacity flag out of range is refused" 1 \
	"$("$CTL" validate -f "$D/capacity-services.yaml" --max-services 3 >/dev/null 2>&1; echo $?)"

if [ "$(id -u)" != 0 ] && [ "${CI:-}" != true ]; then
	e2e_log "b) skipped: the agent part needs root"
	e2e_finish
fi
e2e_require_root
# shellcheck disable=SC1091
. "$(dirname "$0")/mesh.sh"

e2e_log "b) the agent keeps serving through bad policies"
# shellcheck disable=SC2034 # read by mesh_agent_start
MESH_AGENT_ARGS=(--max-services 16)
mesh_up smbp 5 "$E2E_ROOT/tests/e2e/policies/l4.yaml" || { echo "FAIL: mesh_up"; exit 1; }
mesh_servers 9080 id 2 3 4 || exit 1

st() { # st JQ -> from /status
	ctl status -o json | jq -r "$1"
}
maps() { # what the agent writes (connects add to the BPF-written maps)
	st '.map_entries | "svc \(.sm_svc) cluster \(.sm_cluster) backend \(.sm_backend) bset \(.sm_bset) route \(.sm_route) maglev \(.sm_maglev)"'
}
counter_above() { # counter_above NAME N: /status NAME > N
	[ "$(st ".$1")" -gt "$2" ]
}
# put FILE NAME: into the watched directory at once (rename), as kubectl-
# style tools do
put() {
	cp "$1" "$E2E_TMP/policy/.$2.tmp" && mv "$E2E_TMP/policy/.$2.tmp" "$E2E_TMP/policy/$2"
}

gen=$(st .generation)
base_maps=$(maps)
base_svcs=$(st .map_entries.sm_svc)
e2e_assert_eq "reviews serves" "v1=2 v2=2 v3=2 ERR=0" "$(who 1 10.96.0.20:9080 6)"

for name in syntax-unclosed-flow type-port-string unknown-key-deep value-regex \
	    dangling-subset dup-cluster-ip capacity-services; do
	f=$D/$name.yaml
	expect=$(hdr expect "$f")
	failed=$(st .reloads_failed)
	ok=$(st .reloads_ok)
	put "$f" "$name.yaml"
	e2e_assert_ok "$name: reload rejected" e2e_wait_until 20 counter_above reloads_failed "$failed"
	diags=$(st '.diagnostics[]')
	e2e_assert_eq "$name: one error in /status" 1 "$(n_errors "$diags")"
	e2e_assert_match "$name: /status has file:line:col" "$expect" "$diags"
	e2e_assert_match "$name: /status says nothing changed" \
		'policy rejected: 1 error\(s\); the running config is unchanged' "$(st .last_error)"
	e2e_assert_ok "$name: the log has file:line:col" grep -Eq -- "$expect" "$E2E_TMP/agent.log"
	e2e_assert_eq "$name: generation unchanged" "$gen" "$(st .generation)"
	e2e_assert_eq "$name: map entries unchanged" "$base_maps" "$(maps)"
	e2e_assert_eq "$name: connects through the VIP" "v1=2 v2=2 v3=2 ERR=0" "$(who 1 10.96.0.20:9080 6)"
	rm -f "$E2E_TMP/policy/$name.yaml"
	e2e_assert_ok "$name removed: reload applies" e2e_wait_until 20 counter_above reloads_ok "$ok"
	e2e_assert_eq "$name removed: same maps" "$base_maps" "$(maps)"
	gen=$(st .generation)
done

e2e_log "the same through POST /apply (sockmeshctl apply)"
out=$(ctl apply -f "$D/value-duration.yaml" 2>&1)
e2e_assert_eq "apply of a bad file exits 1" 1 $?
e2e_assert_match "apply reports file:line:col" "$(hdr expect "$D/value-duration.yaml")" "$out"
e2e_assert_eq "apply: generation unchanged" "$gen" "$(st .generation)"
e2e_assert_ok "apply: nothing written to the policy directory" \
	test ! -e "$E2E_TMP/policy/value-duration.yaml"

e2e_log "a good change still applies"
ok=$(st .reloads_ok)
cat >"$E2E_TMP/extra.yaml" <<'Y'
apiVersion: v1
kind: Service
metadata: {name: extra, namespace: default}
spec:
  clusterIP: 10.96.0.99
  selector: {app: be, version: v1}
  ports: [{name: tcp, port: 9080, targetPort: 9080}]
Y
put "$E2E_TMP/extra.yaml" zz-extra.yaml
e2e_assert_ok "good change applied" e2e_wait_until 20 counter_above reloads_ok "$ok"
e2e_assert_eq "generation +1" $((gen + 1)) "$(st .generation)"
e2e_assert_eq "one service port more" $((base_svcs + 1)) "$(st .map_entries.sm_svc)"
e2e_assert_eq "connects to the new VIP" "v1=3 ERR=0" "$(who 1 10.96.0.99:9080 3)"
e2e_assert_eq "last_error cleared" "" "$(st .last_error)"
e2e_finish
