#!/bin/bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# The agent on the Kubernetes API: `sockmesh-agent --kubeconfig` against the
# test API server (kube_apiserver.py: TLS with a CA made here, bearer
# tokens, paginated lists, watches with bookmarks, 410 Gone). Objects are
# created, changed and deleted through the server and real connects from a
# pod through the VIPs must follow; faults (server killed and restarted with
# new resourceVersions, 410 mid-watch, a token rotated, a line that is not
# JSON, an object that fails validation, a verb the RBAC does not allow)
# must each converge without the data path ever being emptied.
#
#   web   10.96.0.90:8080 -> EndpointSlice web-1: pods 2, 3 (v1, v2) on 9100
#   front 10.96.0.91:8080 -> EndpointSlice front-1: pod 4 (v3); a VirtualService
#                            (Istio CRDs installed later) sends it to web
#   extra 10.96.0.95:8080 -> created during the test

# shellcheck disable=SC1091
. "$(dirname "$0")/lib.sh"
# shellcheck disable=SC1091
. "$(dirname "$0")/mesh.sh"
# shellcheck disable=SC1091
. "$(dirname "$0")/kube.sh"

e2e_require_root
PY=/usr/bin/python3
for t in "$SRV" "$CLI" "$PY"; do
	[ -x "$t" ] || { echo "FAIL: $t missing"; exit 1; }
done
command -v openssl >/dev/null || { echo "FAIL: openssl missing"; exit 1; }

e2e_tmpdir || exit 1
sm_node_up smkb 4 || { echo "FAIL: node"; exit 1; }
K=$E2E_TMP/kube
mkdir -p "$K" "$E2E_TMP/policy"
kube_certs "$K" || { echo "FAIL: openssl could not make the certificates"; exit 1; }

svc() { # svc NAME VIP [PORT]
	printf '{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "%s", "namespace": "default"}, "spec": {"clusterIP": "%s", "ports": [{"name": "tcp", "port": %s, "targetPort": 9100}]}}' \
		"$1" "$2" "${3:-8080}"
}
slice() { # slice NAME SERVICE ENDPOINT...: ENDPOINT is POD[:READY] or an address
	local name=$1 s=$2 e eps="" ip ready
	shift 2
	for e in "$@"; do
		ip=${e%%:*}
		ready=true
		[ "$ip" = "$e" ] || ready=${e#*:}
		case "$ip" in *.*) ;; *) ip=$(sm_pod_ip "$ip") ;; esac
		eps+="${eps:+, }{\"addresses\": [\"$ip\"], \"conditions\": {\"ready\": $ready}}"
	done
	printf '{"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "%s", "namespace": "default", "labels": {"kubernetes.io/service-name": "%s"}}, "addressType": "IPv4", "ports": [{"name": "tcp", "port": 9100}], "endpoints": [%s]}' \
		"$name" "$s" "$eps"
}
vs_front() { # vs_front [HOST [SPEC]]: front's tcp route sends to HOST (web); SPEC: more of its spec
	printf '{"apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService", "metadata": {"name": "front", "namespace": "default"}, "spec": {%s"hosts": ["front"], "tcp": [{"route": [{"destination": {"host": "%s", "port": {"number": 8080}}}]}]}}' \
		"${2:+$2, }" "${1:-web}"
}
ns_default='{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}}'

api_start
apply "$ns_default" "$(svc web 10.96.0.90)" "$(slice web-1 web 2 3)" "$(svc front 10.96.0.91)" \
	"$(slice front-1 front 4)"
printf 'token-1\n' >"$K/token"
kube_kubeconfig kubeconfig "    tokenFile: token"

mesh_servers 9100 id 2 3 4 || exit 1
export SM_KUBE_ABSENT_RECHECK_MS=1000
MESH_AGENT_SRC=(--kubeconfig "$K/kubeconfig")
MESH_AGENT_ARGS=(--reload-debounce 50)
# Services cannot be listed at first: the admin API is up meanwhile and
# /ready says what is still syncing; granting the permission lets it start.
api forbid '{"resource": "services", "verb": "list"}'
(
	for i in $(seq 1 300); do
		r=$(curl -s -m 2 --unix-socket "$E2E_TMP/admin.sock" http://x/ready 2>/dev/null | tr -d ' \n')
		case "$r" in *'"ready":false'*ervice*) break ;; esac
		sleep 0.1
	done
	printf '%s\n' "$r" >"$K/ready-syncing"
	curl -s -m 2 --unix-socket "$E2E_TMP/admin.sock" http://x/services >"$K/services-syncing" 2>/dev/null
	api forbid '{"resource": "services", "verb": ""}'
) &
SYNC_PROBE=$!
mesh_agent_start || exit 1
wait "$SYNC_PROBE"

st() { ctl status -o json | jq -r "$1"; }
scrape() { curl -sS -m 5 --unix-socket "$E2E_TMP/admin.sock" http://localhost/metrics; }
kst() { st ".kubernetes$1"; }
# (traffic can follow a change before its "applied" line is logged, a moment
# later on the agent's loop: a /status round trip on that loop comes after it)
applied() { ctl status >/dev/null; grep 'policy generation .* applied' "$E2E_TMP/agent.log" | tail -1; }
wait_gen() { # wait_gen N: a generation above N applied
	e2e_wait_until 30 bash -c "[ \$($CTL --admin-socket $E2E_TMP/admin.sock status -o json | jq .generation) -gt $1 ]"
}
both='^v1=[0-9]+ v2=[0-9]+ ERR=0$'

e2e_log "initial sync: every kind listed; Istio's CRDs not installed yet"
e2e_assert_match "while syncing, /ready lists the kinds still syncing ($(cat "$K/ready-syncing"))" \
	'"ready":false.*"syncing":\[[^]]*[Ss]ervice' "$(cat "$K/ready-syncing")"
e2e_assert_match "while syncing, the rest of the admin API says why it cannot answer" \
	'starting' "$(cat "$K/services-syncing")"
e2e_assert_match "ready, nothing syncing" '"ready":true' "$(curl -s --unix-socket "$E2E_TMP/admin.sock" http://x/ready | tr -d ' ')"
e2e_assert_eq "VirtualServices: absent" "true" "$(kst '.kinds[] | select(.kind == "VirtualService") | .absent')"
e2e_assert_match "one warning for the missing CRD" 'VirtualService: not served by the API server' "$(cat "$E2E_TMP/agent.log")"
out=$(who 1 10.96.0.90:8080 30)
e2e_assert_match "web reaches both endpoints ($out)" "$both" "$out"
e2e_assert_eq "front reaches its own endpoint" "v3=6 ERR=0" "$(who 1 10.96.0.91:8080 6)"
e2e_assert_match "TLS to the server with the kubeconfig's CA" 'https://127.0.0.1' "$(kst .server)"

e2e_log "an endpoint removed (a scaled-down Deployment): a delta, applied at once"
gen=$(st .generation)
apply "$(slice web-1 web 2)"
wait_gen "$gen"
e2e_assert_match "applied incrementally ($(applied))" 'incremental: 1 EndpointSlices' "$(applied)"
converge "the removed endpoint gets no connects" 1 10.96.0.90:8080 "v1=10 ERR=0"
gen=$(st .generation)
apply "$(slice web-1 web 2 3)"
wait_gen "$gen"
out=$(who 1 10.96.0.90:8080 30)
e2e_assert_match "added back ($out)" "$both" "$out"

e2e_log "a scale-up: a new slice of web (an object of its own): a delta; deleting it too"
# web_2 apply|delete DESC RE: web-2 (pod 4) comes or goes as a delta, web's connects match RE
web_2() {
	local gen out i
	gen=$(st .generation)
	"$1" "$(slice web-2 web 4)"
	wait_gen "$gen"
	e2e_assert_match "$2: applied incrementally ($(applied))" \
		'incremental: 1 EndpointSlices, 0 Pods, 0 Services, 0 VirtualServices, 0 DestinationRules; 1 service ports re-planned' "$(applied)"
	for i in $(seq 1 300); do out=$(who 1 10.96.0.90:8080 40); [[ "$out" =~ $3 ]] && break; sleep 0.1; done
	e2e_assert_match "$2: web's connects ($out)" "$3" "$out"
}
web_2 apply "new slice" '^v1=[0-9]+ v2=[0-9]+ v3=[0-9]+ ERR=0$'
web_2 delete "deleted slice" "$both"

# deltas_since LINE: the "policy generation ... applied" lines of the log after line LINE
deltas_since() { ctl status >/dev/null; tail -n +"$(($1 + 1))" "$E2E_TMP/agent.log" | grep 'policy generation .* applied'; }
log_lines() { wc -l <"$E2E_TMP/agent.log"; }

e2e_log "a new Service and its slice: a delta; the VIP works"
l0=$(log_lines)
apply "$(svc extra 10.96.0.95)" "$(slice extra-1 extra 4)"
converge "extra's VIP" 1 10.96.0.95:8080 "v3=6 ERR=0"
e2e_assert_match "the new Service went through a delta ($(deltas_since "$l0" | tail -1))" \
	'incremental: [01] EndpointSlices, 0 Pods, 1 Services, .*\(1 new, 0 gone\)' "$(deltas_since "$l0")"

e2e_log "the Service and its slice deleted: a delta; the VIP stops; back again"
l0=$(log_lines)
delete "$(svc extra 10.96.0.95)" "$(slice extra-1 extra 4)"
converge "extra's VIP is gone" 1 10.96.0.95:8080 "ERR=6"
e2e_assert_match "the deleted Service went through a delta ($(deltas_since "$l0" | tail -1))" \
	'incremental: [01] EndpointSlices, 0 Pods, 1 Services, .*\(0 new, 1 gone\)' "$(deltas_since "$l0")"
e2e_assert_eq "no full reload for it" "" "$(deltas_since "$l0" | grep -v incremental)"
apply "$(svc extra 10.96.0.95)" "$(slice extra-1 extra 4)"
converge "extra's VIP again" 1 10.96.0.95:8080 "v3=6 ERR=0"

e2e_log "Istio's CRDs installed (v1beta1 served): found within the recheck; a VirtualService routes"
api crds '{"installed": true, "versions": ["v1beta1", "v1alpha3"]}'
apply "$(vs_front)"
for i in $(seq 1 300); do
	out=$(who 1 10.96.0.91:8080 20)
	[[ "$out" =~ $both ]] && break
	sleep 0.1
done
e2e_assert_match "front -> web's endpoints ($out)" "$both" "$out"
e2e_assert_eq "VirtualService served as v1beta1" "v1beta1" "$(kst '.kinds[] | select(.kind == "VirtualService") | .version')"
gen=$(st .generation)
apply "$(vs_front extra)"
converge "the changed route sends front to extra" 1 10.96.0.91:8080 "v3=6 ERR=0"
e2e_assert_match "a route change is a delta ($(applied))" \
	'incremental: 0 EndpointSlices, 0 Pods, 0 Services, 1 VirtualServices, 0 DestinationRules; 1 service ports re-planned' \
	"$(applied)"
# back to web with a field sockmesh does not implement: a warning of its own, still a delta
l0=$(log_lines)
apply "$(vs_front web '"exportTo": ["."]')"
for i in $(seq 1 300); do out=$(who 1 10.96.0.91:8080 20); [[ "$out" =~ $both ]] && break; sleep 0.1; done
e2e_assert_match "and back to web ($out)" "$both" "$out"
e2e_assert_match "a VirtualService with a warning of its own is a delta ($(deltas_since "$l0" | tail -1))" \
	'[0-9]+ warnings, .*incremental: 0 EndpointSlices, 0 Pods, 0 Services, 1 VirtualServices' "$(deltas_since "$l0")"
e2e_assert_eq "no full reload for it" "" "$(tail -n +"$((l0 + 1))" "$E2E_TMP/agent.log" | grep 'reloading everything')"
e2e_assert_match "its warning is logged" 'VirtualService default/front: warning: VirtualService front: spec\.exportTo is not implemented' \
	"$(tail -n +"$((l0 + 1))" "$E2E_TMP/agent.log")"
e2e_assert_match "and in /status" '^VirtualService default/front: warning: VirtualService front: spec\.exportTo is not implemented' \
	"$(st '.diagnostics[]')"
l0=$(log_lines)
delete "$(vs_front)"
converge "the deleted VirtualService's route goes" 1 10.96.0.91:8080 "v3=6 ERR=0"
e2e_assert_match "a deleted VirtualService is a delta ($(deltas_since "$l0" | tail -1))" \
	'incremental: 0 EndpointSlices, 0 Pods, 0 Services, 1 VirtualServices, 0 DestinationRules' "$(deltas_since "$l0")"
e2e_assert_eq "its warning went with it" "" "$(st '.diagnostics[]' | grep 'VirtualService default/front')"
l0=$(log_lines)
apply "$(vs_front extra)"
converge "a new VirtualService's route applies" 1 10.96.0.91:8080 "v3=6 ERR=0"
e2e_assert_match "a new VirtualService is a delta ($(deltas_since "$l0" | tail -1))" \
	'incremental: 0 EndpointSlices, 0 Pods, 0 Services, 1 VirtualServices, 0 DestinationRules' "$(deltas_since "$l0")"
delete "$(vs_front)"
converge "deleted again" 1 10.96.0.91:8080 "v3=6 ERR=0"

e2e_log "fault: 410 in the middle of every watch (etcd compacted): relist and diff"
relists=$(st '[.kubernetes.kinds[].relists] | add')
api compact '{}'
apply "$(slice web-1 web 3)"
converge "a change after the relist applies" 1 10.96.0.90:8080 "v2=10 ERR=0"
e2e_assert_ok "the reflectors relisted" test "$(st '[.kubernetes.kinds[].relists] | add')" -gt "$relists"

e2e_log "fault: a line that is not JSON in the watch streams: resumed from the last event"
api garbage '{}'
apply "$(slice web-1 web 2 3)"
out=""
for i in $(seq 1 300); do out=$(who 1 10.96.0.90:8080 20); [[ "$out" =~ $both ]] && break; sleep 0.1; done
e2e_assert_match "converged after the broken stream ($out)" "$both" "$out"

e2e_log "fault: an object that fails validation is rejected alone"
gen=$(st .generation)
l0=$(log_lines)
apply "$(slice web-1 web 2 10.244.0.300)" "$(svc other 10.96.0.96)" "$(slice other-1 other 4)"
e2e_wait_until 30 bash -c "$CTL --admin-socket $E2E_TMP/admin.sock status -o json | jq -e '.kubernetes.rejected[\"EndpointSlice default/web-1\"]' >/dev/null"
e2e_assert_ok "logged as kind ns/name: field.path: message" grep -qE \
	'error: EndpointSlice default/web-1: endpoints\[1\]\.addresses\[0\]: "10\.244\.0\.300" is not an IPv4 address$' \
	"$E2E_TMP/agent.log"
e2e_assert_eq "/status: field.path: message" 'endpoints[1].addresses[0]: "10.244.0.300" is not an IPv4 address' \
	"$(kst '.rejected["EndpointSlice default/web-1"]')"
e2e_assert_eq "a metric counts it" "1" "$(scrape | awk '$1 == "sockmesh_kube_rejected_objects" { print $2 }' || true)"
out=$(who 1 10.96.0.90:8080 30)
e2e_assert_match "web keeps its last good endpoints ($out)" "$both" "$out"
converge "the rest of the change applies (other's VIP)" 1 10.96.0.96:8080 "v3=6 ERR=0"
e2e_assert_match "rejected by the delta" 'not a delta \(.*\): EndpointSlice default/web-1 fails validation' \
	"$(tail -n +"$((l0 + 1))" "$E2E_TMP/agent.log")"
e2e_assert_eq "no full reload for it" "" "$(tail -n +"$((l0 + 1))" "$E2E_TMP/agent.log" | grep 'reloading everything')"
apply "$(slice web-1 web 2)"
converge "the fixed object applies" 1 10.96.0.90:8080 "v1=10 ERR=0"
e2e_assert_eq "no longer rejected" "0" "$(kst '.rejected | length')"
apply "$(slice web-1 web 2 3)"

e2e_log "fault: a Service on another Service's clusterIP is rejected alone"
apply "$(svc clash 10.96.0.90)" "$(slice other-1 other 3)"
e2e_wait_until 30 bash -c "$CTL --admin-socket $E2E_TMP/admin.sock status -o json | jq -e '.kubernetes.rejected[\"Service default/clash\"]' >/dev/null"
e2e_assert_match "/status: why" 'clusterIP 10\.96\.0\.90 is already the VIP of Service default/(web|clash)' \
	"$(kst '.rejected["Service default/clash"]')"
e2e_assert_match "the log says why it was not a delta" \
	'not a delta \(Service default/clash: clusterIP 10\.96\.0\.90 is already the VIP of Service default/web' "$(cat "$E2E_TMP/agent.log")"
converge "the rest of the change applies (other's new endpoint)" 1 10.96.0.96:8080 "v2=6 ERR=0"
out=$(who 1 10.96.0.90:8080 30)
e2e_assert_match "web keeps its VIP ($out)" "$both" "$out"
delete "$(svc clash 10.96.0.90)"
e2e_wait_until 30 bash -c "[ \$($CTL --admin-socket $E2E_TMP/admin.sock status -o json | jq '.kubernetes.rejected | length') = 0 ]"
e2e_assert_eq "deleted: no longer rejected" "0" "$(kst '.rejected | length')"

e2e_log "fault: the API server killed: the data path keeps serving; restarted with new resourceVersions"
kill "$API_PID"; wait "$API_PID" 2>/dev/null
api_pid_old=$API_PID
e2e_wait_until 20 bash -c "$CTL --admin-socket $E2E_TMP/admin.sock status -o json | jq -e '.kubernetes.reachable == false' >/dev/null"
e2e_assert_eq "status says the API server is unreachable" "false" "$(kst .reachable)"
e2e_assert_match "and what is served" 'last applied config' "$(kst .serving)"
e2e_assert_eq "a metric says so" "0" "$(scrape | awk '$1 == "sockmesh_kube_api_reachable" { print $2 }')"
out=$(who 1 10.96.0.90:8080 30)
e2e_assert_match "web still serves ($out)" "$both" "$out"
e2e_assert_eq "extra still serves" "v3=6 ERR=0" "$(who 1 10.96.0.95:8080 6)"
# while it is down, the cluster changes: extra is deleted, web loses pod 3
"$PY" - "$K/state.json" <<'PY'
import json, sys
p = sys.argv[1]
d = json.load(open(p))
d["objects"] = [o for o in d["objects"] if o["metadata"]["name"] not in ("extra", "extra-1")]
for o in d["objects"]:
    if o["metadata"]["name"] == "web-1":
        o["endpoints"] = o["endpoints"][:1]
json.dump(d, open(p, "w"))
PY
# the new server also speaks HTTP/2: the agent's lists and watches go over it
api_start "$PORT" --h2
e2e_assert_ok "a new server process" test "$API_PID" != "$api_pid_old"
converge "the relist deletes what is gone (web)" 1 10.96.0.90:8080 "v1=10 ERR=0"
converge "extra's VIP is gone" 1 10.96.0.95:8080 "ERR=6"
e2e_wait_until 30 bash -c "$CTL --admin-socket $E2E_TMP/admin.sock status -o json | jq -e '.kubernetes.reachable' >/dev/null"
e2e_assert_eq "reachable again" "true" "$(kst .reachable)"
stats() { curl -sS --cacert "$K/ca.crt" "https://127.0.0.1:$PORT/_control/stats"; }
e2e_wait_until 30 bash -c "[ \$(curl -sS --cacert '$K/ca.crt' https://127.0.0.1:$PORT/_control/stats | jq .watches) -ge 7 ]"
e2e_assert_eq "HTTP/2: every list and watch on one connection" 1 "$(stats | jq .h2_connections)"
e2e_assert_ge "HTTP/2: the 7 watches open side by side as streams" 7 "$(stats | jq .h2_max_open_streams)"
e2e_assert_eq "no HTTP/1.1 request from the agent" 0 "$(stats | jq .http1_requests)"

e2e_log "fault: the token rotated: 401, the token file is read again"
api tokens '{"tokens": ["token-2"]}'
api close '{}'
e2e_wait_until 30 grep -q '401 Unauthorized' "$E2E_TMP/agent.log"
e2e_assert_match "the 401 is logged" '401 Unauthorized' "$(cat "$E2E_TMP/agent.log")"
printf 'token-2\n' >"$K/token.new" && mv "$K/token.new" "$K/token"
apply "$(slice web-1 web 2 3)"
out=""
for i in $(seq 1 400); do out=$(who 1 10.96.0.90:8080 20); [[ "$out" =~ $both ]] && break; sleep 0.1; done
e2e_assert_match "converged with the new token ($out)" "$both" "$out"

e2e_log "fault: RBAC without watch on services: 403 said, recovers when granted"
api forbid '{"resource": "services", "verb": "watch"}'
api close '{}'
e2e_wait_until 30 bash -c "$CTL --admin-socket $E2E_TMP/admin.sock status -o json | jq -e '.kubernetes.kinds[] | select(.kind == \"Service\") | .last_error | test(\"403\")' >/dev/null"
e2e_assert_match "status names the missing permission" '403 Forbidden \(RBAC: the agent needs get/list/watch on services' \
	"$(kst '.kinds[] | select(.kind == "Service") | .last_error')"
api forbid '{"resource": "services", "verb": ""}'
apply "$(svc extra 10.96.0.95)" "$(slice extra-1 extra 4)"
converge "a new Service after the permission is back" 1 10.96.0.95:8080 "v3=6 ERR=0"
out=$(who 1 10.96.0.90:8080 30)
e2e_assert_match "web served throughout ($out)" "$both" "$out"

e2e_log "API traffic at rest: bookmarks only"
b0=$(kst .bytes_received)
sleep 2
b1=$(kst .bytes_received)
e2e_log "bytes received in 2 s at rest (bookmarks every 0.5 s on 8 watches): $((b1 - b0))"
e2e_assert_ok "far below one list of everything per interval" test $((b1 - b0)) -lt 20000

e2e_log "sockmeshctl get: what the agent holds, as YAML"
out=$(ctl get endpointslices default/web-1)
e2e_assert_match "one slice, as YAML" 'kind: EndpointSlice' "$out"
e2e_assert_match "its endpoints" '10\.244\.0\.13' "$out"
e2e_assert_eq "without the server's managedFields" "" "$(grep managedFields <<<"$out")"
e2e_assert_eq "by kind, kubectl's names" "extra front other web" "$(ctl get svc -o json | jq -r '[.[].metadata.name] | sort | join(" ")')"
ctl get all >"$E2E_TMP/all.yaml"
e2e_assert_ok "everything it holds validates as files (GitOps)" "$CTL" validate -f "$E2E_TMP/all.yaml"
e2e_assert_match "a missing object is an error" 'not found' "$(ctl get vs default/nope 2>&1)"

e2e_log "refused: --kubeconfig with --policy"
out=$("$AGENT" --cgroup "$SM_CGROUP" --policy "$E2E_TMP/policy" --kubeconfig "$K/kubeconfig" 2>&1)
e2e_assert_match "one line" 'exclude each other' "$out"
e2e_assert_eq "only one line" 1 "$(wc -l <<<"$out")"

mesh_agent_stop
e2e_finish
