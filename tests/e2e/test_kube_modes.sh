#!/bin/bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# How the agent connects to the Kubernetes API, end to end against the test
# API server (kube_apiserver.py, TLS, --strict-accept: Accept negotiated as
# kube-apiserver does), the agent attaching per mesh pod (--kubepods-cgroup,
# the DaemonSet's mode) on a private kubepods tree:
#
#  a) --node-name node-1: this node's Pods listed in full
#     (fieldSelector=spec.nodeName=node-1), every other Pod as metadata only
#     (spec.nodeName!=node-1, as=PartialObjectMetadataList / as=PartialObjectMetadata);
#     the other node's Pods' labels still pick a DestinationRule's subsets
#     (relabelled, deleted, added: deltas);
#     this node's Pods join the mesh (their cgroups get the programs), and
#     leave and join it again as their Namespace's label goes and comes (deltas).
#  b) --in-cluster: KUBERNETES_SERVICE_HOST/PORT and the service account's
#     token and CA at /var/run/secrets/kubernetes.io/serviceaccount, on a tmpfs
#     in the agent's own mount namespace (the host's path is never touched),
#     laid out as the kubelet projects it (..data symlink swapped atomically);
#     the token rotated: the server rejects the old one, the agent keeps watching.
#  c) client certificates from a kubeconfig (client-certificate-data/-key-data,
#     then client-certificate/client-key files), the server verifying them
#     against its CA (--client-ca); a certificate of another CA: a clear error,
#     and the mesh is never emptied.
#
#   web 10.96.0.70:8080 -> EndpointSlice web-1: Pods web-v1 (pod 2), web-v2
#        (pod 3), both on node-2; DestinationRule subsets by label version;
#        VirtualService web's tcp route picks a subset
#   pods 1 (client-a) and 4 (late) are node-1's, in namespace default
#        (istio-injection=enabled), each in its own pod cgroup

# shellcheck disable=SC1091
. "$(dirname "$0")/lib.sh"
# shellcheck disable=SC1091
. "$(dirname "$0")/mesh.sh"
# shellcheck disable=SC1091
. "$(dirname "$0")/kube.sh"

e2e_require_root
for t in "$SRV" "$CLI" /usr/bin/python3 openssl unshare jq bpftool; do
	command -v "$t" >/dev/null || { echo "FAIL: $t missing"; exit 1; }
done

e2e_tmpdir || exit 1
sm_node_up smkm 4 || { echo "FAIL: node"; exit 1; }
K=$E2E_TMP/kube
mkdir -p "$K"
kube_certs "$K" &&
kube_client_cert "$K" agent sockmesh-agent &&
kube_client_cert "$K" stranger sockmesh-agent self ||
	{ echo "FAIL: openssl could not make the certificates"; exit 1; }

VIP=10.96.0.70:8080
ROOT=$SM_CGROUP/kubepods
PROGS="sm_connect4 sm_connect6 sm_getpeer4 sm_getpeer6 sm_sock_rel sm_sockops "
# the UID the API server gave Pod NAME (kept in its state across restarts)
uid() { jq -r ".objects[] | select(.kind == \"Pod\" and .metadata.name == \"$1\") | .metadata.uid" "$K/state.json"; }
pod_cg() { echo "$ROOT/besteffort/pod$(uid "$1")"; }	# the kubelet's cgroupfs layout
progs() { bpftool -j cgroup show "$1" 2>/dev/null | jq -r '.[].name' | sort | tr '\n' ' '; }

# pod NAME N NODE VERSION [APP]: Pod NAME (pod N's address) as the API server holds it
pod() {
	printf '{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "%s", "namespace": "default", "labels": {"app": "%s", "version": "%s"}}, "spec": {"nodeName": "%s", "containers": [{"name": "c", "image": "x"}]}, "status": {"podIP": "%s", "phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}' \
		"$1" "${5:-web}" "$4" "$3" "$(sm_pod_ip "$2")"
}
slice() { # slice POD_NAME:N...: EndpointSlice web-1, each endpoint with its targetRef
	local e eps=""
	for e in "$@"; do
		eps+="${eps:+, }{\"addresses\": [\"$(sm_pod_ip "${e#*:}")\"], \"conditions\": {\"ready\": true}, \"targetRef\": {\"kind\": \"Pod\", \"namespace\": \"default\", \"name\": \"${e%%:*}\"}}"
	done
	printf '{"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "web-1", "namespace": "default", "labels": {"kubernetes.io/service-name": "web"}}, "addressType": "IPv4", "ports": [{"name": "tcp", "port": 9100}], "endpoints": [%s]}' "$eps"
}
vs() { # vs SUBSET: web's tcp route to that subset
	printf '{"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "web", "namespace": "default"}, "spec": {"hosts": ["web"], "tcp": [{"route": [{"destination": {"host": "web", "subset": "%s", "port": {"number": 8080}}}]}]}}' "$1"
}
ns='{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default", "labels": {"istio-injection": "enabled"}}}'
svc='{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"}, "spec": {"clusterIP": "10.96.0.70", "selector": {"app": "web"}, "ports": [{"name": "tcp", "port": 8080, "targetPort": 9100}]}}'
dr='{"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule", "metadata": {"name": "web", "namespace": "default"}, "spec": {"host": "web", "subsets": [{"name": "v1", "labels": {"version": "v1"}}, {"name": "v2", "labels": {"version": "v2"}}]}}'

st() { ctl status -o json | jq -r "$1"; }
kst() { st ".kubernetes$1"; }
mb() { st ".membership | $1"; }
state_is() { [ "$(mb ".pods[] | select(.name == \"$1\") | .state")" = "$2" ]; }
held() { ctl get pods -o json | jq -c ".[] | select(.metadata.name == \"$1\")"; }
# requests JQ_FILTER: the API requests the server recorded, through a jq filter
requests() { api_get requests | jq -c "$1"; }
# converge_match DESC POD VIP N ERE: connects until their summary matches (300 tries)
converge_match() {
	local _ out
	for _ in $(seq 1 300); do
		out=$(who "$2" "$3" "$4")
		[[ "$out" =~ $5 ]] && break
		sleep 0.1
	done
	e2e_assert_match "$1 ($out)" "$5" "$out"
}
both='^v1=[0-9]+ v2=[0-9]+ ERR=0$'
ready_json() { curl -s -m 2 --unix-socket "$E2E_TMP/admin.sock" http://x/ready | tr -d ' \n'; }

mesh_servers 9100 id 2 3 || exit 1
api_start 0 --crds --strict-accept
apply "$ns" "$svc" "$dr" "$(vs v2)" "$(slice web-v1:2 web-v2:3)" \
	"$(pod client-a 1 node-1 v0 client)" "$(pod web-v1 2 node-2 v1)" "$(pod web-v2 3 node-2 v2)"
sm_pod_cgroup 1 "$(pod_cg client-a)" || { echo "FAIL: pod cgroup"; exit 1; }
printf 'token-1\n' >"$K/token"
kube_kubeconfig token.kubeconfig "    tokenFile: token"
# shellcheck disable=SC2034 # read by mesh.sh
MESH_KUBEPODS=$ROOT
MESH_AGENT_ARGS=(--node-name node-1 --reload-debounce 20)

# ---------------------------------------------------------------------------
e2e_log "a) --node-name: this node's Pods in full, the others' as metadata"
MESH_AGENT_SRC=(--kubeconfig "$K/token.kubeconfig")
mesh_agent_start || { echo "FAIL: agent"; exit 1; }
# each kind's watch follows its list: wait for both Pod watches (this
# node's, the others') before reading what was asked
pod_watches() { [ "$(requests '[.requests[] | select(.path == "/api/v1/pods" and .verb == "watch") | .query.fieldSelector] | unique | length')" -ge 2 ]; }
e2e_wait_until 30 pod_watches || e2e_log "(the Pod watches did not both start)"
pods=$(requests '[.requests[] | select(.path == "/api/v1/pods") | {verb, sel: .query.fieldSelector, accept, code}] | unique | .[]')
e2e_log "Pod requests: $(tr '\n' ' ' <<<"$pods")"
full_list='{"verb":"list","sel":"spec.nodeName=node-1","accept":"application/json","code":200}'
full_watch='{"verb":"watch","sel":"spec.nodeName=node-1","accept":"application/json","code":200}'
meta_list='{"verb":"list","sel":"spec.nodeName!=node-1","accept":"application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json","code":200}'
meta_watch='{"verb":"watch","sel":"spec.nodeName!=node-1","accept":"application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json","code":200}'
e2e_assert_ok "this node's Pods listed in full (fieldSelector=spec.nodeName=node-1)" grep -qxF "$full_list" <<<"$pods"
e2e_assert_ok "... and watched in full" grep -qxF "$full_watch" <<<"$pods"
e2e_assert_ok "the other Pods listed as PartialObjectMetadataList" grep -qxF "$meta_list" <<<"$pods"
pods=$(requests '[.requests[] | select(.path == "/api/v1/pods") | {verb, sel: .query.fieldSelector, accept, code}] | unique | .[]')
e2e_assert_ok "... and watched as PartialObjectMetadata" grep -qxF "$meta_watch" <<<"$pods"
e2e_assert_eq "no other Pod request (never every Pod in full)" 4 "$(wc -l <<<"$pods")"
e2e_assert_eq "no 406: the server served what the agent asked for" 0 \
	"$(requests '[.requests[] | select(.code == 406)] | length')"
e2e_assert_eq "client-a (node-1) held in full" "node-1 10.244.0.11" \
	"$(held client-a | jq -r '"\(.spec.nodeName) \(.status.podIP)"')"
e2e_assert_eq "web-v2 (node-2) held as metadata: labels, no spec, no status" '{"app":"web","version":"v2"} false false' \
	"$(held web-v2 | jq -c '.metadata.labels, has("spec"), has("status")' | tr '\n' ' ' | sed 's/ $//')"
converge "VirtualService -> subset v2: only web-v2 (other node) is picked by its label" 1 "$VIP" "v2=10 ERR=0"
apply "$(vs v1)"
converge "subset v1: only web-v1" 1 "$VIP" "v1=10 ERR=0"
apply "$(pod web-v2 3 node-2 v1)"
converge_match "web-v2 relabelled version=v1 (a metadata MODIFIED event): subset v1 has both" 1 "$VIP" 30 "$both"
e2e_assert_match "the label change came on the metadata watch" '"events":[1-9]' \
	"$(kst '.kinds[] | select(.kind == "Pod (metadata)")' | tr -d ' \n')"
# (traffic can follow a change before its "applied" line is logged, a moment
# later on the agent's loop: a /status round trip on that loop comes after it)
applied() { ctl status >/dev/null; grep 'policy generation .* applied' "$E2E_TMP/agent.log" | tail -1; }
e2e_assert_match "another node's Pod relabelled: a delta ($(applied))" \
	'incremental: 0 EndpointSlices, 1 Pods, 0 Services, 0 VirtualServices, 0 DestinationRules; 1 service ports re-planned' \
	"$(applied)"
delete "$(pod web-v1 2 node-2 v1)"
converge "web-v1's Pod deleted (its address in no subset): subset v1 is web-v2" 1 "$VIP" "v2=10 ERR=0"
e2e_assert_match "a delta ($(applied))" 'incremental: 0 EndpointSlices, 1 Pods, 0 Services' "$(applied)"
apply "$(pod web-v1 2 node-2 v1)"
converge_match "web-v1's Pod back (ADDED): a delta, subset v1 has both again" 1 "$VIP" 30 "$both"
e2e_assert_match "a delta ($(applied))" 'incremental: 0 EndpointSlices, 1 Pods, 0 Services' "$(applied)"

e2e_log "a) this node's Pods join the mesh"
e2e_assert_ok "client-a attached" e2e_wait_until 20 state_is client-a attached
e2e_assert_eq "client-a's pod cgroup has the programs" "$PROGS" "$(progs "$(pod_cg client-a)")"
e2e_assert_eq "nothing on the kubepods root" "" "$(progs "$ROOT")"
e2e_assert_eq "another node's Pods are not members" "" "$(mb '.pods[] | select(.name | startswith("web-")) | .name')"
e2e_assert_eq "one member, attached" "1 1 0" "$(mb '"\(.members) \(.attached) \(.pending)"')"
e2e_assert_eq "pod 4 (no Pod yet) is not translated" "ERR ENETUNREACH 3" \
	"$(sm_pod_exec 4 "$CLI" who --addr "$VIP" --count 3 --timeout 2)"
l0=$(wc -l <"$E2E_TMP/agent.log")
apply "$(pod late 4 node-1 v0 client)"
e2e_assert_ok "a new Pod of this node (ADDED on the full watch): known, its cgroup not made yet" \
	e2e_wait_until 30 state_is late pending
e2e_assert_match "this node's new Pod: a delta ($(applied))" 'incremental: 0 EndpointSlices, 1 Pods' "$(applied)"
late_cg=$(pod_cg late)
sm_pod_cgroup 4 "$late_cg" || { echo "FAIL: pod cgroup"; exit 1; }	# the kubelet starts it
e2e_assert_ok "its cgroup made: attached" e2e_wait_until 30 state_is late attached
e2e_assert_eq "its pod cgroup has the programs" "$PROGS" "$(progs "$late_cg")"
converge_match "its connects are translated" 4 "$VIP" 30 "$both"
apply "$(pod late 4 node-1 v9 client)"
e2e_assert_ok "relabelled (MODIFIED on the full watch): a delta" \
	e2e_wait_until 30 bash -c "grep 'policy generation .* applied' '$E2E_TMP/agent.log' | tail -1 | grep -q 'incremental: 0 EndpointSlices, 1 Pods'"
e2e_assert_ok "relabelled: still attached" state_is late attached
converge_match "relabelled: its connects still translated" 4 "$VIP" 30 "$both"
delete "$(pod late 4 node-1 v9 client)"
e2e_assert_ok "the Pod deleted (DELETED on the full watch): detached" \
	e2e_wait_until 30 bash -c "[ -z \"\$(bpftool -j cgroup show '$late_cg' | jq -r '.[].name')\" ]"
e2e_assert_match "deleted: a delta ($(applied))" 'incremental: 0 EndpointSlices, 1 Pods' "$(applied)"
e2e_assert_eq "deleted: no longer listed" "" "$(mb '.pods[] | select(.name == "late") | .name')"
gw='{"apiVersion": "networking.istio.io/v1", "kind": "Gateway", "metadata": {"name": "gw", "namespace": "default"}, "spec": {"servers": [{"port": {"number": 8000, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}]}}'
apply "$gw"
e2e_assert_ok "a Gateway: a delta" e2e_wait_until 30 bash -c \
	"grep 'policy generation .* applied' '$E2E_TMP/agent.log' | tail -1 | grep -q '1 Gateways; 0 service ports re-planned'"
delete "$gw"
e2e_assert_ok "the Gateway deleted: a delta" e2e_wait_until 30 bash -c \
	"tail -n +$((l0 + 1)) '$E2E_TMP/agent.log' | grep 'policy generation .* applied' | grep -c '1 Gateways;' | grep -qx 2"
e2e_assert_eq "this node's Pods and the Gateway: no full reload" "" \
	"$(tail -n +"$((l0 + 1))" "$E2E_TMP/agent.log" | grep 'not a delta')"
e2e_log "a) a Namespace relabelled: a delta; its pods leave the mesh and join again"
apply '{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}}'
e2e_assert_ok "istio-injection removed: client-a detached" \
	e2e_wait_until 30 bash -c "[ -z \"\$(bpftool -j cgroup show '$(pod_cg client-a)' | jq -r '.[].name')\" ]"
e2e_assert_match "a delta ($(applied))" \
	'incremental: 0 EndpointSlices, 0 Pods, 0 Services, 0 VirtualServices, 0 DestinationRules, 1 Namespaces; 0 service ports re-planned' \
	"$(applied)"
apply "$ns"
e2e_assert_ok "labelled again: client-a attached" e2e_wait_until 30 state_is client-a attached
e2e_assert_eq "its pod cgroup has the programs again" "$PROGS" "$(progs "$(pod_cg client-a)")"
e2e_assert_match "a delta ($(applied))" '1 Namespaces; 0 service ports re-planned' "$(applied)"
apply "$(pod web-v2 3 node-2 v2)" "$(vs v2)"
converge "back to subset v2" 1 "$VIP" "v2=10 ERR=0"
# the pinned data path serves while the next agents start
mesh_agent_stop TERM
MESH_AGENT_ARGS+=(--keep-on-exit)

# ---------------------------------------------------------------------------
e2e_log "b) --in-cluster: the service account's token and CA on a tmpfs in the agent's mount namespace"
SA=/var/run/secrets/kubernetes.io/serviceaccount
host_sa_before=$(test -e /run/secrets && echo present || echo absent)
mkdir -p "$K/sa"
cp "$K/ca.crt" "$K/sa/ca.crt"
printf 'sa-token-1' >"$K/sa/token"
printf 'default' >"$K/sa/namespace"
# The agent as in a pod: a private mount namespace; a tmpfs on /run (so the
# host's /run is never written) and one at the kubelet's path holding the
# projected volume: a timestamped directory, ..data -> it, token -> ..data/token.
cat >"$K/in-pod.sh" <<EOF
#!/bin/bash
exec unshare -m --propagation private /bin/bash -c '
	set -e
	mount -t tmpfs -o size=1m,mode=0755 sm-run /run
	mkdir -p $SA
	mount -t tmpfs -o size=1m,mode=0755 sm-sa $SA
	cd $SA
	mkdir ..v1
	cp "$K/sa/ca.crt" "$K/sa/token" "$K/sa/namespace" ..v1/
	ln -s ..v1 ..data
	for f in ca.crt token namespace; do ln -s ..data/\$f \$f; done
	exec "\$@"' in-pod "$AGENT" "\$@"
EOF
chmod +x "$K/in-pod.sh"
# sa_rotate TOKEN: the kubelet's atomic update, from outside through the
# agent's root (/proc/PID/root/run: no symlink that would lead back to the host)
sa_rotate() {
	local d=/proc/$AGENT_PID/root/run/secrets/kubernetes.io/serviceaccount v=..v$RANDOM
	[ -L "$d/..data" ] || { echo "no projected volume at $d"; return 1; }
	mkdir "$d/$v" && cp "$K/ca.crt" "$d/$v/ca.crt" && printf '%s' "$1" >"$d/$v/token" &&
		printf 'default' >"$d/$v/namespace" && ln -s "$v" "$d/..data_tmp" && mv -T "$d/..data_tmp" "$d/..data"
}
api tokens '{"tokens": ["sa-token-1"]}'
n0=$(requests '.requests | length')
agent_real=$AGENT
AGENT=$K/in-pod.sh
MESH_AGENT_SRC=(--in-cluster)
KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT=$PORT mesh_agent_start ||
	{ echo "FAIL: in-cluster agent"; exit 1; }
AGENT=$agent_real
e2e_assert_eq "context in-cluster" "in-cluster" "$(kst .context)"
e2e_assert_eq "server from KUBERNETES_SERVICE_HOST/PORT" "https://127.0.0.1:$PORT" "$(kst .server)"
e2e_assert_eq "every kind synced" "true" "$(ready_json | jq .ready)"
e2e_assert_ok "the token is in the agent's mount namespace" \
	test "$(cat "/proc/$AGENT_PID/root/run/secrets/kubernetes.io/serviceaccount/token")" = sa-token-1
e2e_assert_eq "the host's /run/secrets is as before ($host_sa_before)" "$host_sa_before" \
	"$(test -e /run/secrets && echo present || echo absent)"
e2e_assert_eq "requests carry the service account's token" '["token:sa-token-1"]' \
	"$(requests "[.requests[$n0:][].user] | unique")"
converge "traffic: subset v2" 1 "$VIP" "v2=10 ERR=0"

e2e_log "b) the token rotated (the kubelet's atomic swap); the server rejects the old one"
n0=$(requests '.requests | length')
e2e_assert_ok "token rotated in the projected volume" sa_rotate sa-token-2
api tokens '{"tokens": ["sa-token-2"]}'
apply "$(vs v1)"
converge "the open watches keep delivering (subset v1)" 1 "$VIP" "v1=10 ERR=0"
api close '{}'	# every watch ends (as at its timeoutSeconds): new requests, new token
e2e_wait_until 30 bash -c "[ \$(curl -sS --cacert '$K/ca.crt' https://127.0.0.1:$PORT/_control/stats | jq .watches) -ge 8 ]"
apply "$(vs v2)"
converge "watching again after the rotation (subset v2)" 1 "$VIP" "v2=10 ERR=0"
e2e_assert_eq "the new watches carry the new token, none was refused" '["token:sa-token-2"] 0' \
	"$(requests "[.requests[$n0:][].user] | unique" | tr -d '\n') $(requests "[.requests[$n0:][] | select(.code == 401)] | length")"
mesh_agent_stop TERM
e2e_assert_eq "the host's /run/secrets is still as before" "$host_sa_before" \
	"$(test -e /run/secrets && echo present || echo absent)"

# ---------------------------------------------------------------------------
e2e_log "c) client certificates: the server verifies them against its CA"
api_stop
api_start "$PORT" --crds --strict-accept --client-ca "$K/ca.crt"
e2e_log "c) a certificate of another CA at start: a clear error, never ready; the pinned data path serves"
kube_kubeconfig stranger.kubeconfig "    client-certificate: stranger.crt
    client-key: stranger.key"
# start_unready KUBECONFIG: an agent that never gets ready (not mesh_agent_start);
# its admin API answers meanwhile. ERR: its first kind's last error, once there is one.
start_unready() {
	sm_spawn "$AGENT" --kubepods-cgroup "$ROOT" --kubeconfig "$1" --pin-path "$SM_PIN" \
		--admin-socket "$E2E_TMP/admin.sock" "${MESH_AGENT_ARGS[@]}" >>"$E2E_TMP/agent.log" 2>&1
	AGENT_PID=$SM_LAST_PID
	e2e_wait_until 30 bash -c "curl -s --unix-socket '$E2E_TMP/admin.sock' http://x/healthz | grep -q ok" ||
		{ echo "FAIL: agent ($1) admin API"; cat "$E2E_TMP/agent.log"; exit 1; }
	e2e_wait_until 30 bash -c "curl -s --unix-socket '$E2E_TMP/admin.sock' http://x/kubernetes | jq -e '.kinds[0].last_error != \"\"' >/dev/null"
	ERR=$(curl -s --unix-socket "$E2E_TMP/admin.sock" http://x/kubernetes | jq -r '.kinds[0].last_error')
}
# stop_unready: no signal handling before the first apply: killed as a replaced pod would be
stop_unready() {
	mesh_agent_stop KILL 2>/dev/null
	rm -f "$E2E_TMP/admin.sock"
}
start_unready "$K/stranger.kubeconfig"
e2e_assert_match "the error names the client certificate ($ERR)" 'client certificate .*stranger\.crt' "$ERR"
e2e_assert_match "and says it was refused in the TLS handshake" 'TLS' "$ERR"
e2e_assert_match "logged" 'kubernetes: .*client certificate' "$(cat "$E2E_TMP/agent.log")"
e2e_assert_match "/ready: not ready, every kind still syncing" '"ready":false.*"syncing":\[.*Service' "$(ready_json)"
e2e_assert_eq "the mesh is not emptied: client-a still reaches subset v2" "v2=10 ERR=0" "$(who 1 "$VIP" 10)"
e2e_assert_eq "client-a's pinned programs stay" "$PROGS" "$(progs "$(pod_cg client-a)")"
stop_unready
e2e_log "c) a client key that is not the certificate's: a clear local error"
kube_kubeconfig mismatch.kubeconfig "    client-certificate: agent.crt
    client-key: stranger.key"
start_unready "$K/mismatch.kubeconfig"
e2e_assert_match "the error names the certificate and the key ($ERR)" \
	'client certificate .*agent\.crt: .*private key' "$ERR"
e2e_assert_eq "the mesh is not emptied" "v2=10 ERR=0" "$(who 1 "$VIP" 10)"
stop_unready

e2e_log "c) client-certificate-data / client-key-data"
kube_kubeconfig data.kubeconfig "    client-certificate-data: $(base64 -w0 "$K/agent.crt")
    client-key-data: $(base64 -w0 "$K/agent.key")"
MESH_AGENT_SRC=(--kubeconfig "$K/data.kubeconfig")
n0=$(requests '.requests | length')
mesh_agent_start || { echo "FAIL: agent (cert data)"; exit 1; }
e2e_assert_eq "synced with the certificate (-data)" "true" "$(ready_json | jq .ready)"
e2e_assert_eq "adopted the pinned data path" "true" "$(st .adopted)"
e2e_assert_eq "every request authenticated by the certificate (CN), no token" '["cert:sockmesh-agent"]' \
	"$(requests "[.requests[$n0:][] | .user] | unique")"
apply "$(vs v1)"
converge "a change applies" 1 "$VIP" "v1=10 ERR=0"
mesh_agent_stop TERM

e2e_log "c) client-certificate / client-key files"
kube_kubeconfig files.kubeconfig "    client-certificate: agent.crt
    client-key: agent.key"
MESH_AGENT_SRC=(--kubeconfig "$K/files.kubeconfig")
n0=$(requests '.requests | length')
mesh_agent_start || { echo "FAIL: agent (cert files)"; exit 1; }
e2e_assert_eq "synced with the certificate files" "true" "$(ready_json | jq .ready)"
e2e_assert_eq "authenticated by the certificate" '["cert:sockmesh-agent"]' \
	"$(requests "[.requests[$n0:][] | .user] | unique")"
apply "$(vs v2)"
converge "a change applies" 1 "$VIP" "v2=10 ERR=0"

e2e_log "c) the certificate file replaced by one of another CA, the server restarted: errors, the mesh keeps serving"
cp "$K/agent.crt" "$K/agent.crt.good"; cp "$K/agent.key" "$K/agent.key.good"
cp "$K/stranger.crt" "$K/agent.crt"; cp "$K/stranger.key" "$K/agent.key"
api_stop
api_start "$PORT" --crds --strict-accept --client-ca "$K/ca.crt"
e2e_wait_until 15 bash -c "$CTL --admin-socket $E2E_TMP/admin.sock status -o json | jq -e '.kubernetes.kinds[0].last_error | test(\"client certificate\")' >/dev/null"
e2e_assert_match "status names the refused certificate" 'client certificate .*agent\.crt' "$(kst '.kinds[0].last_error')"
e2e_assert_eq "the last applied config stays (subset v2)" "v2=10 ERR=0" "$(who 1 "$VIP" 10)"
e2e_assert_ok "nothing was emptied: web keeps its service entry" test "$(st .map_entries.sm_svc)" -ge 1
cp "$K/agent.crt.good" "$K/agent.crt"; cp "$K/agent.key.good" "$K/agent.key"
e2e_assert_ok "the right certificate back: the API server answers again (backoff)" e2e_wait_until 70 \
	bash -c "$CTL --admin-socket $E2E_TMP/admin.sock status -o json | jq -e '[.kubernetes.kinds[].last_error] | join(\"\") == \"\"' >/dev/null"
apply "$(vs v1)"
converge "the right certificate back: caught up (subset v1)" 1 "$VIP" "v1=10 ERR=0"
e2e_assert_eq "no error left" "" "$(st '[.kubernetes.kinds[].last_error] | join("")')"

e2e_log "/status: map entries from the apply tables and counted off the loop, as the maps hold them"
# every map in use: weighted routes (sm_route), Maglev tables (sm_maglev), connection limits
apply "${dr/'"subsets"'/'"trafficPolicy": {"loadBalancer": {"consistentHash": {"useSourceIp": true}}, "connectionPool": {"tcp": {"maxConnections": 100}}}, "subsets"'}" \
	'{"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "web", "namespace": "default"}, "spec": {"hosts": ["web"], "tcp": [{"route": [{"destination": {"host": "web", "subset": "v1"}, "weight": 50}, {"destination": {"host": "web", "subset": "v2"}, "weight": 50}]}]}}'
converge_match "a 50/50 split between the subsets, each hashed by source" 1 "$VIP" 40 "$both"
# superseded versions go after their 1 s grace (the loop's next turn after it)
entries_agree() {
	local m
	for m in sm_svc sm_cluster sm_backend sm_bset sm_route sm_maglev sm_conn_limit; do
		[ "$(bpftool -j map dump pinned "$SM_PIN/maps/$m" | jq length)" = "$(st ".map_entries.$m")" ] || return 1
	done
}
sleep 1.1
e2e_wait_until 20 entries_agree || e2e_log "(map entries still differ)"
e2e_log "map entries: $(ctl status -o json | jq -c .map_entries)"
for m in sm_svc sm_cluster sm_backend sm_bset sm_route sm_maglev sm_conn_limit; do
	e2e_assert_eq "map_entries.$m" "$(bpftool -j map dump pinned "$SM_PIN/maps/$m" | jq length)" \
		"$(st ".map_entries.$m")"
done
pids=()
for i in 1 2 3 4 5 6; do
	curl -s -m 5 --unix-socket "$E2E_TMP/admin.sock" http://x/status -o "$E2E_TMP/status-$i.json" &
	pids+=("$!")
done
hz=$(curl -s -m 5 --unix-socket "$E2E_TMP/admin.sock" http://x/healthz | jq -r .status)
wait "${pids[@]}"
e2e_assert_eq "/healthz answers amid /status requests" ok "$hz"
e2e_assert_eq "6 /status requests at once: each answered, the same counts" "6 1" \
	"$(cat "$E2E_TMP"/status-[1-6].json | jq -c .map_entries | wc -l) $(cat "$E2E_TMP"/status-[1-6].json | jq -c .map_entries | sort -u | wc -l)"

mesh_agent_stop TERM
grep -q 'AddressSanitizer\|runtime error' "$E2E_TMP/agent.log" && sed 's/^/  | /' "$E2E_TMP/agent.log"
e2e_finish
