#!/bin/bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Incremental reloads: a change of EndpointSlices, Pod readiness, Services,
# VirtualServices or DestinationRules that come, change or go (files
# rewritten on disk, or `sockmeshctl apply`) is applied as a delta, without
# reloading the policy: only the services those objects feed are
# re-planned and written. Traffic must follow each change at once, the
# maps must end up exactly as a full reload of the same files leaves them,
# and anything else (a bad slice, a Service on another's VIP) takes the
# full path, which says why.
#
#   web   10.96.0.90:8080 -> EndpointSlice web-1 (its own file), port 9100
#   front 10.96.0.91:8080 -> tcp route to web (re-planned with web's slices)
#   api   10.96.0.94:80   -> HTTP (the agent's L7 proxy): EndpointSlice api-1 on 9180;
#                            a delta rebuilds the proxy's clusters too
#   sel   10.96.0.92:8080 -> selector app=sel: Pods 2 and 3 (a file each) on 9101,
#                            whose readiness changes go through deltas too
#   sub   10.96.0.97:8080 -> EndpointSlice sub-1 (Pods 2 and 3 on 9102), a tcp route to
#                            DestinationRule subset a (label track: a): Pods that are
#                            relabelled, deleted or new are deltas that move backends
#                            in and out of the subset
# (a backend is an address: ready when any cluster that lists it says so,
# hence another port for sel)

# shellcheck disable=SC1091
. "$(dirname "$0")/lib.sh"
# shellcheck disable=SC1091
. "$(dirname "$0")/mesh.sh"

e2e_require_root
HTTP=$E2E_TOOLS/sm-http
HREQ=$E2E_TOOLS/sm-hreq
for t in "$SRV" "$CLI" "$HTTP" "$HREQ"; do
	[ -x "$t" ] || { echo "FAIL: $t missing"; exit 1; }
done

POL=$(mktemp -d /tmp/sm-e2e-delta-src.XXXXXX) || exit 1
sm_trap_add "rm -rf -- '$POL'"
cat >"$POL/services.yaml" <<'EOF'
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec: {clusterIP: 10.96.0.90, ports: [{name: tcp-web, port: 8080, targetPort: 9100}]}
---
apiVersion: v1
kind: Service
metadata: {name: front, namespace: default}
spec: {clusterIP: 10.96.0.91, ports: [{name: tcp-front, port: 8080, targetPort: 9100}]}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: front, namespace: default}
spec:
  hosts: [front]
  tcp:
  - route:
    - destination: {host: web, port: {number: 8080}}
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: default}
spec: {clusterIP: 10.96.0.94, ports: [{name: http, port: 80, targetPort: 9180}]}
---
apiVersion: v1
kind: Service
metadata: {name: sel, namespace: default}
spec: {clusterIP: 10.96.0.92, selector: {app: sel}, ports: [{name: tcp-sel, port: 8080, targetPort: 9101}]}
EOF
cat >"$POL/sub.yaml" <<'EOF'
apiVersion: v1
kind: Service
metadata: {name: sub, namespace: default}
spec: {clusterIP: 10.96.0.97, ports: [{name: tcp-sub, port: 8080, targetPort: 9102}]}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: sub, namespace: default}
spec: {host: sub, subsets: [{name: a, labels: {track: a}}, {name: b, labels: {track: b}}]}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: sub, namespace: default}
spec: {hosts: [sub], tcp: [{route: [{destination: {host: sub, subset: a}}]}]}
EOF
# pod N READY [APP [TRACK]]: Pod N as a status update from the API server would write it
# (track: a for Pod 2, b for Pod 3 unless given)
pod() {
	printf 'apiVersion: v1\nkind: Pod\nmetadata: {name: pod-%s, namespace: default, uid: uid-%s, labels: {app: %s, track: %s}}\n' \
		"$1" "$1" "${3:-sel}" "${4:-$([ "$1" = 2 ] && echo a || echo b)}"
	printf 'status: {podIP: %s, phase: Running, conditions: [{type: Ready, status: "%s"}]}\n' \
		"$(sm_pod_ip "$1")" "$2"
}
# a policy with a warning (a slice of a Service it does not have) still gets deltas
printf 'apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: ghost-1, namespace: default, labels: {kubernetes.io/service-name: ghost}}\naddressType: IPv4\nendpoints: []\n' >"$POL/ghost-eps.yaml"
pod 2 True >"$POL/pod-2.yaml"
pod 3 True >"$POL/pod-3.yaml"
printf 'apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: sub-1, namespace: default, labels: {kubernetes.io/service-name: sub}}\naddressType: IPv4\nports: [{name: tcp-sub, port: 9102}]\nendpoints: [{addresses: [%s]}, {addresses: [%s]}]\n' \
	"$(sm_pod_ip 2)" "$(sm_pod_ip 3)" >"$POL/sub-eps.yaml"
# slice POD:READY... -> the EndpointSlice web-1 with those pods on 9100
slice() {
	local e
	printf 'apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n'
	printf 'metadata: {name: web-1, namespace: default, labels: {kubernetes.io/service-name: web}}\n'
	printf 'addressType: IPv4\nports: [{name: tcp-web, port: 9100}]\nendpoints:\n'
	for e in "$@"; do
		printf -- '- {addresses: [%s], conditions: {ready: %s}}\n' "$(sm_pod_ip "${e%%:*}")" "${e##*:}"
	done
}
slice 2:true >"$POL/web-eps.yaml"
# api_slice POD: the EndpointSlice api-1 with that pod on 9180
api_slice() {
	printf 'apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n'
	printf 'metadata: {name: api-1, namespace: default, labels: {kubernetes.io/service-name: api}}\n'
	printf 'addressType: IPv4\nports: [{name: http, port: 9180}]\nendpoints: [{addresses: [%s]}]\n' "$(sm_pod_ip "$1")"
}
api_slice 2 >"$POL/api-eps.yaml"

# no debounce: each rename is applied as it comes (the default waits 100 ms)
MESH_AGENT_ARGS=(--reload-debounce 0)
MESH_AGENT_L7=1
mesh_up smdl 4 "$POL"/*.yaml || { echo "FAIL: mesh_up"; exit 1; }
mesh_servers 9100 id 2 3 4 || exit 1
mesh_servers 9101 id 2 3 || exit 1
mesh_servers 9102 id 2 3 || exit 1
for p in 2 3; do
	sm_pod_spawn "$p" "$HTTP" --port 9180 --id "v$((p - 1))" >"$E2E_TMP/http-$p.out" 2>&1
	e2e_wait_for_line "$E2E_TMP/http-$p.out" '^ready' 20 || { echo "FAIL: http backend $p"; exit 1; }
done
# backends API_SLICE_REQUESTS: "backend NAME N" lines of 20 requests through the proxy
api_backends() { sm_pod_exec 1 "$HREQ" --addr 10.96.0.94:80 --count 20 | grep -E '^(backend|ERR)' | tr '\n' ' '; }

st() { ctl status -o json | jq -r "$1"; }
# put NAME: write the slice from stdin into the watched directory at once
put() {
	cat >"$E2E_TMP/policy/.$1.tmp" && mv "$E2E_TMP/policy/.$1.tmp" "$E2E_TMP/policy/$1"
}
wait_gen() { # wait_gen N: the agent applied a generation above N
	e2e_wait_until 20 bash -c "[ \$($CTL --admin-socket $E2E_TMP/admin.sock status -o json | jq .generation) -gt $1 ]"
}
applied() { grep 'policy generation .* applied' "$E2E_TMP/agent.log" | tail -1; }
# state: what a reload decides (services, backends and their readiness),
# without the traffic counters
state() {
	ctl services -o json | jq -c '[.services[] | {vip, name, lb, ready, total}] | sort_by(.vip)'
	ctl backends -o json | jq -c '[.backends[] | {service, address, state}] | sort_by(.service, .address)'
}
entries() { # map entries once superseded versions are gone (1 s grace)
	sleep 1.2
	st '.map_entries | "cluster \(.sm_cluster) backend \(.sm_backend) bset \(.sm_bset) route \(.sm_route)"'
}

e2e_assert_eq "web serves from v1" "v1=6 ERR=0" "$(who 1 10.96.0.90:8080 6)"
e2e_assert_match "the policy has its warning" 'Service default/ghost is not in the policy' "$(cat "$E2E_TMP/agent.log")"
e2e_assert_eq "front routes to web" "v1=6 ERR=0" "$(who 1 10.96.0.91:8080 6)"

e2e_log "an endpoint added: a delta re-plans web and the service routed to it"
gen=$(st .generation)
slice 2:true 3:true | put web-eps.yaml
wait_gen "$gen"
e2e_assert_match "applied incrementally ($(applied))" \
	'1 of [0-9]+ documents parsed.*incremental: 1 EndpointSlices, 0 Pods, 0 Services, 0 VirtualServices, 0 DestinationRules; 2 service ports re-planned' "$(applied)"
e2e_assert_match "/status keeps the policy's warning" 'ghost-eps\.yaml:[0-9]+:[0-9]+: warning' \
	"$(ctl status -o json | jq -r '.diagnostics[]')"
out=$(who 1 10.96.0.90:8080 30)
e2e_assert_match "web reaches v1 and v2 ($out)" '^v1=[0-9]+ v2=[0-9]+ ERR=0$' "$out"
out=$(who 1 10.96.0.91:8080 30)
e2e_assert_match "front follows ($out)" '^v1=[0-9]+ v2=[0-9]+ ERR=0$' "$out"

e2e_log "a backend not ready, another added: readiness goes through the delta"
gen=$(st .generation)
slice 2:false 3:true 4:true | put web-eps.yaml
wait_gen "$gen"
e2e_assert_match "applied incrementally" 'incremental: 1 EndpointSlices' "$(applied)"
out=$(who 1 10.96.0.90:8080 30)
e2e_assert_match "web avoids v1 ($out)" '^v2=[0-9]+ v3=[0-9]+ ERR=0$' "$out"
e2e_assert_match "v1 is not ready" '10\.244\.0\.12:9100 .*not-ready' "$(ctl backends web)"

e2e_log "an HTTP service: the delta rebuilds the L7 proxy's clusters"
e2e_assert_eq "api through the proxy: v1" "backend v1 20 " "$(api_backends)"
gen=$(st .generation)
api_slice 3 | put api-eps.yaml
wait_gen "$gen"
e2e_assert_match "applied incrementally" 'incremental: 1 EndpointSlices, 0 Pods, 0 Services, 0 VirtualServices, 0 DestinationRules; 1 service ports re-planned' "$(applied)"
e2e_assert_eq "the proxy sends to the new endpoint: v2" "backend v2 20 " "$(api_backends)"

e2e_log "a pod's readiness: a delta re-plans the services that select it"
e2e_assert_match "sel reaches both pods" '^v1=[0-9]+ v2=[0-9]+ ERR=0$' "$(who 1 10.96.0.92:8080 20)"
gen=$(st .generation)
pod 3 False | put pod-3.yaml
wait_gen "$gen"
e2e_assert_match "applied incrementally ($(applied))" \
	'incremental: 0 EndpointSlices, 1 Pods, 0 Services, 0 VirtualServices, 0 DestinationRules; 1 service ports re-planned' "$(applied)"
e2e_assert_eq "sel avoids the pod that is not ready" "v1=10 ERR=0" "$(who 1 10.96.0.92:8080 10)"
gen=$(st .generation)
pod 3 True | put pod-3.yaml
wait_gen "$gen"
e2e_assert_match "ready again: a delta" '1 Pods' "$(applied)"
e2e_assert_match "sel reaches both again" '^v1=[0-9]+ v2=[0-9]+ ERR=0$' "$(who 1 10.96.0.92:8080 20)"

e2e_log "a relabelled, deleted or new Pod: a delta moves its backend in and out of subsets"
e2e_assert_eq "sub's subset a is Pod 2 alone" "v1=10 ERR=0" "$(who 1 10.96.0.97:8080 10)"
gen=$(st .generation)
pod 3 True sel a | put pod-3.yaml
wait_gen "$gen"
# (the services whose slices carry its IP: web, front's route to it, api, sub; sel's selector)
e2e_assert_match "relabelled: applied incrementally ($(applied))" \
	'incremental: 0 EndpointSlices, 1 Pods, 0 Services, 0 VirtualServices, 0 DestinationRules; 5 service ports re-planned' "$(applied)"
e2e_assert_match "Pod 3 joined subset a" '^v1=[0-9]+ v2=[0-9]+ ERR=0$' "$(who 1 10.96.0.97:8080 20)"
gen=$(st .generation)
rm "$E2E_TMP/policy/pod-3.yaml"
wait_gen "$gen"
e2e_assert_match "deleted: applied incrementally ($(applied))" \
	'incremental: 0 EndpointSlices, 1 Pods, .* service ports re-planned \(0 new, 0 gone\)' "$(applied)"
e2e_assert_eq "without its Pod the address is in no subset" "v1=10 ERR=0" "$(who 1 10.96.0.97:8080 10)"
e2e_assert_eq "and sel lost it" "v1=10 ERR=0" "$(who 1 10.96.0.92:8080 10)"
gen=$(st .generation)
pod 3 True sel a | put pod-3.yaml
wait_gen "$gen"
e2e_assert_match "new: applied incrementally ($(applied))" 'incremental: 0 EndpointSlices, 1 Pods' "$(applied)"
e2e_assert_match "back in subset a" '^v1=[0-9]+ v2=[0-9]+ ERR=0$' "$(who 1 10.96.0.97:8080 20)"
gen=$(st .generation)
pod 3 True other | put pod-3.yaml
wait_gen "$gen"
e2e_assert_match "out of sel's selector and subset a: a delta ($(applied))" \
	'incremental: 0 EndpointSlices, 1 Pods, 0 Services, 0 VirtualServices, 0 DestinationRules; 5 service ports re-planned' "$(applied)"
e2e_assert_eq "sel lost the relabelled pod" "v1=10 ERR=0" "$(who 1 10.96.0.92:8080 10)"
e2e_assert_eq "so did subset a" "v1=10 ERR=0" "$(who 1 10.96.0.97:8080 10)"
gen=$(st .generation)
printf 'apiVersion: v1\nkind: Pod\nmetadata: {name: pod-9, namespace: default, labels: {app: lone}}\nstatus: {podIP: 10.244.99.9}\n' | put pod-9.yaml
wait_gen "$gen"
e2e_assert_match "a new Pod no slice or selector names re-plans nothing ($(applied))" \
	'incremental: 0 EndpointSlices, 1 Pods, .*; 0 service ports re-planned' "$(applied)"
gen=$(st .generation)
rm "$E2E_TMP/policy/pod-9.yaml"
wait_gen "$gen"
e2e_assert_match "deleted: the same ($(applied))" \
	'incremental: 0 EndpointSlices, 1 Pods, .*; 0 service ports re-planned' "$(applied)"

# as_full DESC: what the deltas left equals what a full reload (SIGHUP) of the same files writes
# diags: what /status says of the policy (order aside)
diags() { ctl status -o json | jq -r '.diagnostics[]' | sort; }
as_full() {
	local d_state d_entries d_diags gen
	d_state=$(state)
	d_entries=$(entries)
	d_diags=$(diags)
	gen=$(st .generation)
	kill -HUP "$AGENT_PID"
	wait_gen "$gen"
	e2e_assert_match "SIGHUP reloads everything" 'documents parsed, [0-9.]+ ms \(parse [0-9.]+ ms, plan [0-9.]+ ms, apply [0-9.]+ ms\)$' "$(applied)"
	e2e_assert_eq "$1: same services and backends" "$d_state" "$(state)"
	e2e_assert_eq "$1: same map entries ($d_entries)" "$d_entries" "$(entries)"
	e2e_assert_eq "$1: same diagnostics" "$d_diags" "$(diags)"
}

e2e_log "after deltas the maps hold what a full reload of the same files writes"
as_full "after endpoint and readiness deltas"

e2e_log "a backend removed: deleted from sm_backend by the delta"
gen=$(st .generation)
slice 3:true 4:true | put web-eps.yaml
wait_gen "$gen"
e2e_assert_match "applied incrementally, 1 delete" 'incremental: 1 EndpointSlices' "$(applied)"
out=$(who 1 10.96.0.90:8080 10)
e2e_assert_match "web: v2 and v3 ($out)" '^v2=[0-9]+ v3=[0-9]+ ERR=0$' "$out"
e2e_assert_eq "v1 gone from the backends" "" "$(ctl backends web | grep '10\.244\.0\.12:')"
e2e_assert_match "2 backends, 2 in the list (and sel's and api's 1, sub's 2 in its clusters)" 'cluster 7 backend 6 bset 8 route 0' "$(entries)"

e2e_log "sockmeshctl apply of a slice file is a delta too"
gen=$(st .generation)
slice 2:true 3:true 4:true >"$E2E_TMP/web-eps.yaml"
out=$(ctl apply -f "$E2E_TMP/web-eps.yaml" 2>&1)
e2e_assert_ok "apply succeeds ($out)" test "$(st .generation)" -gt "$gen"
e2e_assert_match "applied incrementally" 'incremental: 1 EndpointSlices' "$(applied)"
e2e_assert_eq "written to the policy directory" "$(cat "$E2E_TMP/web-eps.yaml")" "$(cat "$E2E_TMP/policy/web-eps.yaml")"
out=$(who 1 10.96.0.90:8080 30)
e2e_assert_match "web reaches all three ($out)" '^v1=[0-9]+ v2=[0-9]+ v3=[0-9]+ ERR=0$' "$out"

e2e_log "a new slice file (a scale-up) and its removal: deltas"
gen=$(st .generation)
slice 2:true | put web-eps.yaml
wait_gen "$gen"
gen=$(st .generation)
slice 3:true | sed 's/name: web-1/name: web-2/' | put web-eps-2.yaml
wait_gen "$gen"
e2e_assert_match "the new file applied incrementally ($(applied))" \
	'1 of [0-9]+ documents parsed.*incremental: 1 EndpointSlices, 0 Pods, 0 Services, 0 VirtualServices, 0 DestinationRules; 2 service ports re-planned' "$(applied)"
out=$(who 1 10.96.0.90:8080 20)
e2e_assert_match "web reaches both slices ($out)" '^v1=[0-9]+ v2=[0-9]+ ERR=0$' "$out"
gen=$(st .generation)
rm "$E2E_TMP/policy/web-eps-2.yaml"
wait_gen "$gen"
e2e_assert_match "the removed file applied incrementally ($(applied))" \
	'incremental: 1 EndpointSlices, 0 Pods, 0 Services, 0 VirtualServices, 0 DestinationRules; 2 service ports re-planned' "$(applied)"
e2e_assert_eq "web: v1 only" "v1=6 ERR=0" "$(who 1 10.96.0.90:8080 6)"
gen=$(st .generation)
slice 2:true 3:true 4:true | put web-eps.yaml
wait_gen "$gen"

e2e_log "a new file with a slice name another file holds: not a delta, rejected as a duplicate"
gen=$(st .generation)
slice 3:true | put web-eps-dup.yaml
e2e_wait_until 20 bash -c "$CTL --admin-socket $E2E_TMP/admin.sock status -o json | jq -e '.last_error != \"\"' >/dev/null"
e2e_assert_match "the duplicate is named" 'duplicate EndpointSlice default/web-1' \
	"$(ctl status -o json | jq -r '.diagnostics[]?'; grep error "$E2E_TMP/agent.log" | tail -2)"
e2e_assert_eq "generation unchanged" "$gen" "$(st .generation)"
rm "$E2E_TMP/policy/web-eps-dup.yaml"
wait_gen "$gen"
out=$(who 1 10.96.0.90:8080 30)
e2e_assert_match "without it web reaches all three ($out)" '^v1=[0-9]+ v2=[0-9]+ v3=[0-9]+ ERR=0$' "$out"

e2e_log "a Service edit (the documents after it move too) is a delta"
gen=$(st .generation)
sed 's/targetPort: 9100}]}/targetPort: 9100}]}\n  # edited/' "$E2E_TMP/policy/services.yaml" | put services.yaml
wait_gen "$gen"
e2e_assert_match "incremental ($(applied))" 'incremental: 0 EndpointSlices, 0 Pods, 4 Services, 1 VirtualServices' "$(applied)"
out=$(who 1 10.96.0.91:8080 30)
e2e_assert_match "front still routes to web ($out)" '^v1=[0-9]+ v2=[0-9]+ v3=[0-9]+ ERR=0$' "$out"
e2e_assert_eq "api still through the proxy" "backend v2 20 " "$(api_backends)"

e2e_log "a bad slice is rejected with file:line:col; the running config stays"
gen=$(st .generation)
{ slice 3:true; echo '- {addresses: [10.244.0.300], conditions: {ready: true}}'; } | put web-eps.yaml
e2e_wait_until 20 bash -c "$CTL --admin-socket $E2E_TMP/admin.sock status -o json | jq -e '.last_error != \"\"' >/dev/null"
e2e_assert_match "error names the file" 'web-eps\.yaml:[0-9]+:[0-9]+' "$(ctl status -o json | jq -r '.diagnostics[]?' ; grep error "$E2E_TMP/agent.log" | tail -2)"
e2e_assert_eq "generation unchanged" "$gen" "$(st .generation)"
out=$(who 1 10.96.0.90:8080 30)
e2e_assert_match "old endpoints still serve ($out)" '^v1=[0-9]+ v2=[0-9]+ v3=[0-9]+ ERR=0$' "$out"
slice 4:true | put web-eps.yaml
wait_gen "$gen"
e2e_assert_eq "the fix applies (after a rejected load: full path)" "v3=6 ERR=0" "$(who 1 10.96.0.90:8080 6)"
gen=$(st .generation)
slice 3:true | put web-eps.yaml
wait_gen "$gen"
e2e_assert_match "and deltas resume" 'incremental: 1 EndpointSlices' "$(applied)"
e2e_assert_eq "web: v2 only" "v2=6 ERR=0" "$(who 1 10.96.0.90:8080 6)"

e2e_log "a new Service with its slice (one file): a delta; its VIP works at once"
new_svc() { # new_svc NAME VIP POD: a Service and its slice, one file
	printf 'apiVersion: v1\nkind: Service\nmetadata: {name: %s, namespace: default}\n' "$1"
	printf 'spec: {clusterIP: %s, ports: [{name: tcp, port: 8080, targetPort: 9100}]}\n---\n' "$2"
	printf 'apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n'
	printf 'metadata: {name: %s-1, namespace: default, labels: {kubernetes.io/service-name: %s}}\n' "$1" "$1"
	printf 'addressType: IPv4\nports: [{name: tcp, port: 9100}]\nendpoints: [{addresses: [%s]}]\n' "$(sm_pod_ip "$3")"
}
e2e_assert_match "no VIP yet" 'ERR=3$' "$(who 1 10.96.0.95:8080 3)"
gen=$(st .generation)
new_svc neu 10.96.0.95 4 | put neu.yaml
wait_gen "$gen"
e2e_assert_match "applied incrementally ($(applied))" \
	'incremental: 1 EndpointSlices, 0 Pods, 1 Services, 0 VirtualServices, 0 DestinationRules; 1 service ports re-planned \(1 new, 0 gone\)' "$(applied)"
e2e_assert_eq "the new VIP serves from its pod" "v3=6 ERR=0" "$(who 1 10.96.0.95:8080 6)"
e2e_assert_match "listed" 'default/neu' "$(ctl services)"

e2e_log "a Service on another Service's VIP: rejected with why, nothing else changes"
gen=$(st .generation)
new_svc clash 10.96.0.90 2 | put clash.yaml
e2e_wait_until 20 grep -q 'not a delta (Service default/clash: clusterIP 10.96.0.90 is already the VIP of Service default/web' "$E2E_TMP/agent.log"
e2e_assert_match "the log says why the delta was not taken" \
	'not a delta \(Service default/clash: clusterIP 10\.96\.0\.90 is already the VIP' "$(cat "$E2E_TMP/agent.log")"
e2e_wait_until 20 bash -c "$CTL --admin-socket $E2E_TMP/admin.sock status -o json | jq -e '.last_error != \"\"' >/dev/null"
e2e_assert_match "/status names it" 'error: Service default/(clash|web): clusterIP 10\.96\.0\.90 is already the VIP of Service default/(web|clash)' \
	"$(ctl status -o json | jq -r '.diagnostics[]?')"
e2e_assert_eq "generation unchanged" "$gen" "$(st .generation)"
e2e_assert_eq "web still serves" "v2=6 ERR=0" "$(who 1 10.96.0.90:8080 6)"
e2e_assert_eq "neu still serves" "v3=6 ERR=0" "$(who 1 10.96.0.95:8080 6)"
rm "$E2E_TMP/policy/clash.yaml"
wait_gen "$gen"

e2e_log "a new VirtualService (the set holds a warning): a delta; its route applies"
gen=$(st .generation)
printf 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: neu, namespace: default}\nspec: {hosts: [neu], tcp: [{route: [{destination: {host: web, port: {number: 8080}}}]}]}\n' | put neu-vs.yaml
wait_gen "$gen"
e2e_assert_match "applied incrementally ($(applied))" 'incremental: 0 EndpointSlices, 0 Pods, 0 Services, 1 VirtualServices' "$(applied)"
e2e_assert_eq "neu now goes to web's endpoint" "v2=6 ERR=0" "$(who 1 10.96.0.95:8080 6)"
e2e_assert_match "/status keeps the policy's warning" 'ghost-eps\.yaml:[0-9]+:[0-9]+: warning' \
	"$(ctl status -o json | jq -r '.diagnostics[]')"
gen=$(st .generation)
rm "$E2E_TMP/policy/neu-vs.yaml"
wait_gen "$gen"
e2e_assert_match "the deleted VirtualService: a delta ($(applied))" 'incremental: 0 EndpointSlices, 0 Pods, 0 Services, 1 VirtualServices' "$(applied)"
e2e_assert_eq "its route is gone" "v3=6 ERR=0" "$(who 1 10.96.0.95:8080 6)"

e2e_log "a DestinationRule for a host the policy lacks: a warning; the Service comes: it goes"
gen=$(st .generation)
printf 'apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: later, namespace: default}\nspec: {host: later, trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}}\n' | put later-dr.yaml
wait_gen "$gen"
e2e_assert_match "a delta ($(applied))" 'incremental: .*1 DestinationRules' "$(applied)"
e2e_assert_match "its warning is in /status" 'later-dr\.yaml:[0-9]+:[0-9]+: warning: DestinationRule later: host later\.default\.svc\.cluster\.local matches no Service' \
	"$(ctl status -o json | jq -r '.diagnostics[]')"
gen=$(st .generation)
new_svc later 10.96.0.96 3 | put later.yaml
wait_gen "$gen"
e2e_assert_match "the Service: a delta ($(applied))" 'incremental: 1 EndpointSlices, 0 Pods, 1 Services' "$(applied)"
e2e_assert_eq "the warning is gone" "" "$(ctl status -o json | jq -r '.diagnostics[]' | grep 'DestinationRule later')"
e2e_assert_eq "later serves" "v2=6 ERR=0" "$(who 1 10.96.0.96:8080 6)"
gen=$(st .generation)
rm "$E2E_TMP/policy/later-dr.yaml"
wait_gen "$gen"

e2e_log "a planning warning about an object the delta did not touch: it goes when the change answers it"
# later's tcp route sends to its subset v1. Another namespace's rule defines v1 (so validation,
# which asks whether any rule does, is content), but Istio applies later's own namespace's rule
# when there is one: while that one lacks v1 the plan warns at the route's destination.
# later_dr SUBSET: later's own rule
later_dr() {
	printf 'apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: later-own, namespace: default}\n'
	printf 'spec: {host: later, subsets: [{name: %s, labels: {app: later}}]}\n' "$1"
}
gen=$(st .generation)
printf 'apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: later-all, namespace: other}\nspec: {host: later.default.svc.cluster.local, subsets: [{name: v1, labels: {app: later}}]}\n' | put a-later-all-dr.yaml
wait_gen "$gen"
gen=$(st .generation)
printf 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: later, namespace: default}\nspec: {hosts: [later], tcp: [{route: [{destination: {host: later, subset: v1}}]}]}\n' | put later-vs.yaml
wait_gen "$gen"
gen=$(st .generation)
later_dr v2 | put later-own-dr.yaml
wait_gen "$gen"
e2e_assert_match "a delta ($(applied))" 'incremental: .*1 DestinationRules' "$(applied)"
subset_warning='later-vs\.yaml:[0-9]+:[0-9]+: warning: subset "v1" of later\.default\.svc\.cluster\.local is not defined by a DestinationRule'
e2e_assert_match "the plan warns about the VirtualService the delta did not touch" "$subset_warning" "$(diags)"
warnings=$(diags | grep -c ': warning: ')
gen=$(st .generation)
later_dr v1 | put later-own-dr.yaml
wait_gen "$gen"
e2e_assert_match "the rule defining v1: a delta ($(applied))" 'incremental: .*1 DestinationRules' "$(applied)"
e2e_assert_eq "the warning is gone" "" "$(diags | grep -E "$subset_warning")"
e2e_assert_eq "one warning less" "$((warnings - 1))" "$(diags | grep -c ': warning: ')"
as_full "after a changed DestinationRule answered a planning warning"
gen=$(st .generation)
later_dr v2 | put later-own-dr.yaml
wait_gen "$gen"
e2e_assert_match "v1 undefined again: the warning is back" "$subset_warning" "$(diags)"
as_full "after a changed DestinationRule brought a planning warning back"
for f in later-own-dr later-vs a-later-all-dr; do
	gen=$(st .generation)
	rm "$E2E_TMP/policy/$f.yaml"
	wait_gen "$gen"
done
e2e_assert_eq "the route and its warning gone" "" "$(diags | grep -E "$subset_warning")"
e2e_assert_eq "later serves again" "v2=6 ERR=0" "$(who 1 10.96.0.96:8080 6)"

e2e_log "objects whose documents have warnings of their own: deltas; the warnings come and go with them"
# api_vs DELEGATE: api's VirtualService; DELEGATE 1: a route delegates (not implemented: a warning)
api_vs() {
	printf 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: api, namespace: default}\n'
	printf 'spec:\n  hosts: [api]\n  http:\n'
	[ "$1" = 1 ] && printf '  - match: [{uri: {prefix: /delegated}}]\n    delegate: {name: reviews, namespace: default}\n'
	printf '  - route: [{destination: {host: api}}]\n'
}
# gw HTTPS: a Gateway; HTTPS 1: its server is HTTPS (TLS is not implemented: a warning)
gw() {
	printf 'apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: edge, namespace: default}\n'
	printf 'spec:\n  selector: {istio: ingressgateway}\n  servers:\n'
	if [ "$1" = 1 ]; then
		printf '  - port: {number: 443, name: https, protocol: HTTPS}\n    hosts: ["*"]\n'
		printf '    tls: {mode: SIMPLE, credentialName: edge-cert}\n'
	else
		printf '  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: ["*"]\n'
	fi
}
delegate_warning='api-vs\.yaml:[0-9]+:[0-9]+: warning: VirtualService api: spec\.http\[0\]\.delegate is not implemented'
put_vs() { api_vs "$1" | put api-vs.yaml; }
put_gw() { gw "$1" | put gw.yaml; }
# step DESC RE CMD...: CMD changes the policy; applied as a delta whose line matches RE
step() {
	local gen l0
	gen=$(st .generation)
	l0=$(wc -l <"$E2E_TMP/agent.log")
	"${@:3}"
	wait_gen "$gen"
	e2e_assert_match "$1: a delta ($(applied))" "$2" "$(applied)"
	e2e_assert_eq "$1: no full reload" "" "$(tail -n +"$((l0 + 1))" "$E2E_TMP/agent.log" | grep 'reloading everything')"
}
vs_delta='incremental: 0 EndpointSlices, 0 Pods, 0 Services, 1 VirtualServices'
step "a new VirtualService with a warning" "$vs_delta" put_vs 1
e2e_assert_match "its warning in /status" "$delegate_warning" "$(diags)"
e2e_assert_eq "the warnings counted once" "$(diags | grep -c ': warning: ')" "$(applied | sed -E 's/.* ([0-9]+) warnings.*/\1/')"
e2e_assert_eq "api still through the proxy" "backend v2 20 " "$(api_backends)"
as_full "with a VirtualService's own warning"
step "the VirtualService fixed" "$vs_delta" put_vs 0
e2e_assert_eq "its warning is gone" "" "$(diags | grep -E "$delegate_warning")"
step "broken again" "$vs_delta" put_vs 1
e2e_assert_match "the warning is back" "$delegate_warning" "$(diags)"
step "and deleted" "$vs_delta" rm "$E2E_TMP/policy/api-vs.yaml"
e2e_assert_eq "its warning went with it" "" "$(diags | grep -E "$delegate_warning")"
e2e_assert_eq "api through the proxy" "backend v2 20 " "$(api_backends)"
step "a Gateway with an HTTPS server" 'incremental: .*, 1 Gateways' put_gw 1
e2e_assert_match "its warning in /status" 'gw\.yaml:[0-9]+:[0-9]+: warning: .*tls is not implemented' "$(diags)"
as_full "with a Gateway's own warning"
step "the Gateway's server made HTTP" 'incremental: .*, 1 Gateways' put_gw 0
e2e_assert_eq "the warning is gone" "" "$(diags | grep 'gw\.yaml')"
step "the Gateway deleted" 'incremental: .*, 1 Gateways' rm "$E2E_TMP/policy/gw.yaml"
gen=$(st .generation)
printf 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: api, namespace: default}\nspec: {hosts: [api], http: [{route: [{destination: {host: api, port: {number: 99999}}}]}]}\n' | put api-vs.yaml
e2e_wait_until 20 grep -q 'api-vs\.yaml:.*error' "$E2E_TMP/agent.log"
e2e_assert_match "a changed document with an error: the full reload says where" \
	'api-vs\.yaml:[0-9]+:[0-9]+: error: ' "$(cat "$E2E_TMP/agent.log")"
e2e_assert_match "not a delta: the full reload reports it" \
	'not a delta \([^)]*api-vs\.yaml:[0-9]+: a changed document has errors\): reloading everything' "$(cat "$E2E_TMP/agent.log")"
e2e_assert_eq "and keeps the running config" "$gen" "$(st .generation)"
rm "$E2E_TMP/policy/api-vs.yaml"
wait_gen "$gen"
as_full "after objects with warnings of their own"

e2e_log "a deleted Service (and its slice): a delta; its VIP stops"
for f in later neu; do
	gen=$(st .generation)
	rm "$E2E_TMP/policy/$f.yaml"
	wait_gen "$gen"
	e2e_assert_match "$f deleted incrementally ($(applied))" \
		'incremental: 1 EndpointSlices, 0 Pods, 1 Services, .*\(0 new, 1 gone\)' "$(applied)"
done
e2e_assert_match "no VIP any more" 'ERR=3$' "$(who 1 10.96.0.95:8080 3)"
e2e_assert_eq "gone from the services" "" "$(ctl services | grep 'default/neu')"
as_full "after Services and routes came and went"


e2e_log "sockmeshctl apply -f: create or update by kind/namespace/name, as kubectl apply"
S=$(cd "$(dirname "$0")/../compat/istio-samples" && pwd)
cat >"$E2E_TMP/bookinfo-vips.yaml" <<'EOF'
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Service, metadata: {name: productpage, namespace: default}, spec: {clusterIP: 10.96.1.1, ports: [{name: http, port: 9080}]}}
- {apiVersion: v1, kind: Service, metadata: {name: reviews, namespace: default}, spec: {clusterIP: 10.96.1.2, ports: [{name: http, port: 9080}]}}
- {apiVersion: v1, kind: Service, metadata: {name: ratings, namespace: default}, spec: {clusterIP: 10.96.1.3, ports: [{name: http, port: 9080}]}}
- {apiVersion: v1, kind: Service, metadata: {name: details, namespace: default}, spec: {clusterIP: 10.96.1.4, ports: [{name: http, port: 9080}]}}
EOF
e2e_assert_ok "bookinfo's services" ctl apply -f "$E2E_TMP/bookinfo-vips.yaml"
e2e_assert_ok "destination-rule-all.yaml" ctl apply -f "$S/destination-rule-all.yaml"
e2e_assert_ok "virtual-service-all-v1.yaml" ctl apply -f "$S/virtual-service-all-v1.yaml"
gen=$(st .generation)
out=$(ctl apply -f "$S/fault-injection-details-v1.yaml" 2>&1)
e2e_assert_ok "fault-injection-details-v1.yaml replaces the details VirtualService and DestinationRule ($out)" \
	test "$(st .generation)" -gt "$gen"
e2e_assert_eq "moved out of virtual-service-all-v1.yaml" "0" \
	"$(grep -c 'name: details' "$E2E_TMP/policy/virtual-service-all-v1.yaml")"
e2e_assert_eq "and out of destination-rule-all.yaml" "0" \
	"$(grep -c 'name: details' "$E2E_TMP/policy/destination-rule-all.yaml")"
e2e_assert_eq "the other objects of those files stay" "3 3" \
	"$(grep -c '^kind: VirtualService' "$E2E_TMP/policy/virtual-service-all-v1.yaml") $(grep -c '^kind: DestinationRule' "$E2E_TMP/policy/destination-rule-all.yaml")"
faults() { ctl routes details -o json | jq '[.. | objects | select(has("fault")) | .fault.abort_status] | add // 0'; }
e2e_assert_eq "details now has the fault (abort 555)" "555" "$(faults)"
gen=$(st .generation)
n_unchanged=$(grep -c 'policy unchanged' "$E2E_TMP/agent.log")
out=$(ctl delete -f "$S/fault-injection-details-v1.yaml" 2>&1)
e2e_assert_ok "sockmeshctl delete -f ($out)" test "$(st .generation)" -gt "$gen"
e2e_assert_ok "the file that held only those objects is gone" test ! -e "$E2E_TMP/policy/fault-injection-details-v1.yaml"
e2e_assert_eq "details has no fault any more" "0" "$(faults)"
out=$(ctl delete -f "$S/fault-injection-details-v1.yaml" 2>&1); rc=$?
e2e_assert_ok "deleting it again fails ($out)" test "$rc" -ne 0
e2e_assert_match "says which object is not found" '(DestinationRule|VirtualService) default/details not found' "$out"
# the files the delete wrote come back through inotify: a reload that finds
# nothing new; done before the next change
e2e_wait_until 20 bash -c "[ \$(grep -c 'policy unchanged' '$E2E_TMP/agent.log') -gt $n_unchanged ]" ||
	e2e_log "(no reload of the written files seen)"
gen=$(st .generation)
put dr-copy.yaml <"$S/destination-rule-all.yaml"
e2e_wait_until 20 grep -q 'duplicate DestinationRule default/productpage' "$E2E_TMP/agent.log"
e2e_assert_match "two files of the directory defining one object stay an error" \
	'duplicate DestinationRule default/productpage' "$(cat "$E2E_TMP/agent.log")"
e2e_assert_eq "generation unchanged" "$gen" "$(st .generation)"
rm -f "$E2E_TMP/policy/dr-copy.yaml"

e2e_finish
