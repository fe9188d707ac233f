#!/bin/bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Kubernetes mesh membership (--kubepods-cgroup) on a private kubepods tree
# inside the node's private cgroup (never the machine's): the agent attaches
# only to the pod cgroups of member pods, found by Pod UID in the kubelet's
# layouts (systemd driver, then cgroupfs), never to the kubepods root or
# SM_CGROUP.
#
# Pods (node "node-1"; each runs in its own pod cgroup):
#   1 client-a  ns shop (istio-injection=enabled)            member
#   2 client-b  ns shop, annotation sidecar.istio.io/inject=false   opted out
#   3 client-c  ns plain (no mesh label)                       not a member
#   4 host-d    ns shop, hostNetwork                           never
#   5,6 be-v1/2 ns backend (sockmesh.io/mesh=enabled)          members, Service web
#   7 far       ns shop, on node-2 (its cgroup exists here)    not this node's
#   8 late      ns shop, cgroup made after the agent started   pending -> attached
# Pods 7 and 8 have no network namespace (nothing runs in them).

# shellcheck disable=SC1091
. "$(dirname "$0")/lib.sh"
# shellcheck disable=SC1091
. "$(dirname "$0")/mesh.sh"

e2e_require_root
e2e_tmpdir || exit 1
mkdir -p "$E2E_TMP/policy"
sm_node_up smmb 6 || { echo "FAIL: sm_node_up"; exit 1; }

VIP=10.96.0.80:8080
PROGS="sm_connect4 sm_connect6 sm_getpeer4 sm_getpeer6 sm_sock_rel sm_sockops "
QOS=([1]=besteffort burstable guaranteed besteffort burstable guaranteed besteffort besteffort)

uid() { printf '5e0c1a00-0000-4000-8000-%012d' "$1"; }

# pod_cg DRIVER N: pod N's cgroup in the kubelet's layout for DRIVER
pod_cg() {
	local u q=${QOS[$2]}
	u=$(uid "$2")
	if [ "$1" = systemd ]; then
		u=${u//-/_}
		if [ "$q" = guaranteed ]; then
			echo "$ROOT/kubepods-pod$u.slice"
		else
			echo "$ROOT/kubepods-$q.slice/kubepods-$q-pod$u.slice"
		fi
	elif [ "$q" = guaranteed ]; then
		echo "$ROOT/pod$(uid "$2")"
	else
		echo "$ROOT/$q/pod$(uid "$2")"
	fi
}

# progs DIR: names of the programs attached at DIR itself, sorted
exists() { [ -e "$1" ] && echo yes || echo no; }

progs() {
	bpftool -j cgroup show "$1" 2>/dev/null | jq -r '.[].name' | sort | tr '\n' ' '
}

# policy SHOP_LABELS PLAIN_LABELS WITH_LATE [no-a]: the whole policy, written
# atomically (no-a: without client-a, which a file of its own may hold)
policy() {
	local f=$E2E_TMP/policy/mesh.yaml late="" a="
- {apiVersion: v1, kind: Pod, metadata: {name: client-a, namespace: shop, uid: $(uid 1)},
   spec: {nodeName: node-1}, status: {podIP: 10.244.0.11}}"
	[ "${4:-}" = no-a ] && a=""
	[ "$3" = yes ] && late="
- {apiVersion: v1, kind: Pod, metadata: {name: late, namespace: shop, uid: $(uid 8)},
   spec: {nodeName: node-1}, status: {podIP: 10.244.0.18}}"
	cat >"$E2E_TMP/policy/.mesh.yaml.tmp" <<EOF
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Namespace, metadata: {name: shop, labels: {$1}}}
- {apiVersion: v1, kind: Namespace, metadata: {name: plain, labels: {$2}}}
- {apiVersion: v1, kind: Namespace, metadata: {name: backend, labels: {sockmesh.io/mesh: enabled}}}$a
- {apiVersion: v1, kind: Pod, metadata: {name: client-b, namespace: shop, uid: $(uid 2),
                                        annotations: {sidecar.istio.io/inject: "false"}},
   spec: {nodeName: node-1}, status: {podIP: 10.244.0.12}}
- {apiVersion: v1, kind: Pod, metadata: {name: client-c, namespace: plain, uid: $(uid 3)},
   spec: {nodeName: node-1}, status: {podIP: 10.244.0.13}}
- {apiVersion: v1, kind: Pod, metadata: {name: host-d, namespace: shop, uid: $(uid 4)},
   spec: {nodeName: node-1, hostNetwork: true}, status: {podIP: 10.244.0.14}}
- {apiVersion: v1, kind: Pod, metadata: {name: be-v1, namespace: backend, uid: $(uid 5), labels: {app: web}},
   spec: {nodeName: node-1}, status: {podIP: 10.244.0.15, conditions: [{type: Ready, status: "True"}]}}
- {apiVersion: v1, kind: Pod, metadata: {name: be-v2, namespace: backend, uid: $(uid 6), labels: {app: web}},
   spec: {nodeName: node-1}, status: {podIP: 10.244.0.16, conditions: [{type: Ready, status: "True"}]}}
- {apiVersion: v1, kind: Pod, metadata: {name: far, namespace: shop, uid: $(uid 7)},
   spec: {nodeName: node-2}, status: {podIP: 10.244.1.17}}$late
- apiVersion: v1
  kind: Service
  metadata: {name: web, namespace: backend}
  spec:
    clusterIP: ${VIP%:*}
    selector: {app: web}
    ports: [{name: tcp, port: ${VIP#*:}, targetPort: 8080}]
EOF
	mv -f "$E2E_TMP/policy/.mesh.yaml.tmp" "$f"
}

mb() { # mb JQ: from the agent's membership status
	ctl status -o json | jq -r ".membership | $1"
}
pod_state() { mb ".pods[] | select(.name == \"$1\") | .state"; }
state_is() { [ "$(pod_state "$1")" = "$2" ]; }
counts() { mb '"\(.members) \(.attached) \(.pending)"'; }
counts_are() { [ "$(counts)" = "$1" ]; }
reloads_above() { [ "$(ctl status -o json | jq .reloads_ok)" -gt "$1" ]; }

# reload_to SHOP PLAIN LATE: new policy, then wait for the agent to apply it
reload_to() {
	local before
	before=$(ctl status -o json | jq .reloads_ok)
	policy "$@"
	e2e_wait_until 30 reloads_above "$before" || echo "  (no reload seen)"
}

# reach POD ADDR: "ok=N err=N" for 6 connects from POD to ADDR
reach() {
	sm_pod_exec "$1" "$CLI" who --addr "$2" --count 6 --timeout 2 |
		awk '$1 == "ERR" { e += $3 } $1 != "ERR" { ok += $2 } END { printf "ok=%d err=%d\n", ok, e }'
}
translated() { reach "$1" "$VIP"; }	# member: every connect reaches a backend
NOT_TRANSLATED="ERR ENETUNREACH 3"	# no route out of a pod netns
untranslated() { sm_pod_exec "$1" "$CLI" who --addr "$VIP" --count 3 --timeout 2; }
# reach6 POD: 6 connects from an AF_INET6 socket to ::ffff:VIP (tests/e2e/clients/dual.py)
reach6() { sm_pod_exec "$1" /usr/bin/python3 "$E2E_ROOT/tests/e2e/clients/dual.py" who "${VIP%:*}" "${VIP##*:}" 6; }

# layout DRIVER: pods 1-8 get cgroups in DRIVER's layout under ROOT (8 is
# made later by the test); pods 1-6 run their processes there.
layout() {
	local n
	for n in 1 2 3 4 5 6; do
		sm_pod_cgroup "$n" "$(pod_cg "$1" "$n")" || return 1
	done
	mkdir -p "$(pod_cg "$1" 7)"
}

# Both drivers: who is attached, where, and whose connects are translated.
check_basic() {
	local driver=$1 n
	e2e_log "$driver layout: attach only to member pods"
	e2e_assert_ok "$driver: members attached" e2e_wait_until 30 counts_are "4 3 1"
	e2e_assert_eq "$driver: 4 members, 3 attached, 1 pending (its cgroup is not there)" "4 3 1" "$(counts)"
	for n in 1 5 6; do
		e2e_assert_eq "$driver: pod $n cgroup has the 6 programs" "$PROGS" "$(progs "$(pod_cg "$driver" "$n")")"
	done
	for n in 2 3 4 7; do
		e2e_assert_eq "$driver: pod $n cgroup has nothing" "" "$(progs "$(pod_cg "$driver" "$n")")"
	done
	e2e_assert_eq "$driver: nothing on the kubepods root" "" "$(progs "$ROOT")"
	e2e_assert_eq "$driver: nothing on SM_CGROUP" "" "$(progs "$SM_CGROUP")"
	e2e_assert_eq "$driver: nothing on a QoS parent" "" "$(progs "$(dirname "$(pod_cg "$driver" 1)")")"
	e2e_assert_eq "$driver: member pod's connects are translated" "ok=6 err=0" "$(translated 1)"
	e2e_assert_match "$driver: and its AF_INET6 connects to ::ffff:VIP (connect6)" '^(v[0-9]+=[0-9]+ )+ERR=0$' "$(reach6 1)"
	e2e_assert_eq "$driver: opted-out pod's AF_INET6 connects are not translated" "ERR=6" "$(reach6 2)"
	e2e_assert_eq "$driver: getpeername returns the VIP" "$VIP" "$(sm_pod_exec 1 "$CLI" peer --addr "$VIP")"
	e2e_assert_eq "$driver: opted-out pod is not translated" "$NOT_TRANSLATED" "$(untranslated 2)"
	e2e_assert_eq "$driver: pod of an unlabelled namespace is not translated" "$NOT_TRANSLATED" "$(untranslated 3)"
	e2e_assert_eq "$driver: hostNetwork pod is not translated" "$NOT_TRANSLATED" "$(untranslated 4)"
	e2e_assert_eq "$driver: non-members still reach pods directly" "ok=6 err=0" "$(reach 2 10.244.0.15:8080)"
	e2e_assert_eq "$driver: pinned per pod" "$(uid 1) $(uid 5) $(uid 6)" "$(cd "$SM_PIN/pods" && echo *)"
}

# ---- systemd driver ----
ROOT=$SM_CGROUP/kubepods.slice
layout systemd || exit 1
policy "istio-injection: enabled" "" yes
mesh_servers 8080 id 5 6 || exit 1
MESH_KUBEPODS=$ROOT mesh_agent_start --node-name node-1 --keep-on-exit || { echo "FAIL: agent"; exit 1; }
check_basic systemd
e2e_assert_eq "status: opted-out pod says why" "pod opted out (sidecar.istio.io/inject=false)" \
	"$(mb '.pods[] | select(.name == "client-b") | .why')"
e2e_assert_eq "status: hostNetwork pod" "not-member hostNetwork pod" \
	"$(mb '.pods[] | select(.name == "host-d") | "\(.state) \(.why)"')"
e2e_assert_eq "status: another node's pod is not listed" "" "$(mb '.pods[] | select(.name == "far") | .name')"
e2e_assert_match "status: the pending pod says why" 'no cgroup for UID .* yet' \
	"$(mb '.pods[] | select(.name == "late") | .pending')"
e2e_assert_match "sockmeshctl status shows membership" 'mesh pods: +under .*kubepods\.slice, node node-1: 4 member\(s\), 3 attached, 1 pending' \
	"$(ctl status)"

e2e_log "--node-name: only peers on this node go into the sockhash"
ins0=$(mesh_counter sock_inserted)
rem0=$(mesh_counter sock_not_inserted_remote)
e2e_assert_eq "node-1 peers: connects served" "ok=6 err=0" "$(translated 1)"
e2e_assert_ge "node-1 peers: both ends inserted" $((ins0 + 12)) "$(mesh_counter sock_inserted)"
e2e_assert_eq "node-1 peers: none left out" "$rem0" "$(mesh_counter sock_not_inserted_remote)"
# a peer that is no pod of node-1 (the node's own address): TCP only
sm_node_spawn "$SRV" --port 9099 --id node --mode id >"$E2E_TMP/srv-node.out" 2>&1
e2e_wait_for_line "$E2E_TMP/srv-node.out" '^ready' 20 || echo "  (node server did not start)"
e2e_assert_eq "off-node peer: connects served" "ok=6 err=0" "$(reach 1 "$SM_NODE_IP:9099")"
e2e_assert_eq "off-node peer: the client sockets stay out of the sockhash" $((rem0 + 6)) \
	"$(mesh_counter sock_not_inserted_remote)"

e2e_log "a pending pod is attached when its cgroup appears (periodic rescan, no reload)"
mkdir -p "$(pod_cg systemd 8)"
e2e_assert_ok "late pod attached within the rescan" e2e_wait_until 20 state_is late attached
e2e_assert_eq "late pod's cgroup has the programs" "$PROGS" "$(progs "$(pod_cg systemd 8)")"
e2e_log "pod gone (its cgroup removed): detached and unpinned"
rmdir "$(pod_cg systemd 8)"
e2e_assert_ok "late pod pending again" e2e_wait_until 20 state_is late pending
e2e_assert_eq "its pins are gone" no "$(exists "$SM_PIN/pods/$(uid 8)")"
mkdir -p "$(pod_cg systemd 8)"
e2e_assert_ok "late pod attached again" e2e_wait_until 20 state_is late attached
reload_to "istio-injection: enabled" "" no
e2e_assert_eq "pod removed from the policy: detached" "" "$(progs "$(pod_cg systemd 8)")"
e2e_assert_eq "pod removed from the policy: pins gone" no "$(exists "$SM_PIN/pods/$(uid 8)")"
e2e_assert_eq "pod removed from the policy: 3 members" "3 3 0" "$(counts)"

e2e_log "namespace label change + reload: the pod joins, then leaves"
e2e_assert_eq "client-c not a member yet" not-member "$(pod_state client-c)"
reload_to "istio-injection: enabled" "istio.io/dataplane-mode: ambient" no
e2e_assert_eq "labelled namespace: client-c attached" attached "$(pod_state client-c)"
e2e_assert_eq "client-c's cgroup has the programs" "$PROGS" "$(progs "$(pod_cg systemd 3)")"
e2e_assert_eq "client-c's connects are translated now" "ok=6 err=0" "$(translated 3)"
reload_to "istio-injection: enabled" "" no
e2e_assert_eq "label removed: client-c not a member" not-member "$(pod_state client-c)"
e2e_assert_eq "label removed: its cgroup has nothing" "" "$(progs "$(pod_cg systemd 3)")"
e2e_assert_eq "label removed: its connects are not translated" "$NOT_TRANSLATED" "$(untranslated 3)"
e2e_assert_eq "label removed: its pins are gone" no "$(exists "$SM_PIN/pods/$(uid 3)")"

e2e_log "agent restart: pinned pod links keep working, then are adopted"
links_before=$(mb '[.pods[] | select(.name | startswith("be-")) | .link_ids[]] | sort | join(",")')
mesh_agent_stop TERM
e2e_assert_eq "agent down (--keep-on-exit): member pod still translated" "ok=6 err=0" "$(translated 1)"
e2e_assert_eq "agent down: links still pinned" "$PROGS" "$(progs "$(pod_cg systemd 5)")"
e2e_assert_match "sockmeshctl status (agent down) lists pinned pods" 'mesh pods: +3 with pinned links' "$(ctl status)"
# while the agent is down shop loses its label: client-a must be swept at start
policy "" "" no
MESH_KUBEPODS=$ROOT mesh_agent_start --node-name node-1 || { echo "FAIL: agent restart"; exit 1; }
e2e_assert_eq "restart: backends adopted" "true true" \
	"$(mb '[.pods[] | select(.name | startswith("be-")) | .adopted | tostring] | join(" ")')"
e2e_assert_eq "restart: the same links (adopted, not re-attached)" "$links_before" \
	"$(mb '[.pods[] | select(.name | startswith("be-")) | .link_ids[]] | sort | join(",")')"
for n in 5 6; do
	e2e_assert_eq "restart: pod $n has each program once" "$PROGS" "$(progs "$(pod_cg systemd "$n")")"
done
e2e_assert_eq "restart: client-a left the mesh while the agent was down: swept" "" "$(progs "$(pod_cg systemd 1)")"
e2e_assert_eq "restart: client-a's pins swept" no "$(exists "$SM_PIN/pods/$(uid 1)")"
e2e_assert_eq "restart: client-a not translated" "$NOT_TRANSLATED" "$(untranslated 1)"
reload_to "istio-injection: enabled" "" no
e2e_assert_eq "label back: client-a translated again" "ok=6 err=0" "$(translated 1)"
e2e_assert_eq "label back: client-a has each program once" "$PROGS" "$(progs "$(pod_cg systemd 1)")"

e2e_log "exit without --keep-on-exit: everything detached and unpinned"
mesh_agent_stop TERM
for n in 1 2 3 4 5 6 7 8; do
	e2e_assert_eq "exit: pod $n cgroup has nothing" "" "$(progs "$(pod_cg systemd "$n")")"
done
e2e_assert_eq "exit: pin path removed" no "$(exists "$SM_PIN")"
e2e_assert_eq "exit: member pod no longer translated" "$NOT_TRANSLATED" "$(untranslated 1)"

# ---- cgroupfs driver ----
ROOT=$SM_CGROUP/kubepods
layout cgroupfs || exit 1
policy "istio-injection: enabled" "" yes
MESH_KUBEPODS=$ROOT mesh_agent_start --node-name node-1 || { echo "FAIL: agent (cgroupfs)"; exit 1; }
check_basic cgroupfs

# ---- this node's pods as deltas (cgroupfs layout still in place) ----
applied() { grep 'policy generation .* applied' "$E2E_TMP/agent.log" | tail -1; }
log_lines() { wc -l <"$E2E_TMP/agent.log"; }
# full_since LINE: reloads after log line LINE that were not deltas
full_since() {
	tail -n +"$(($1 + 1))" "$E2E_TMP/agent.log" | grep 'not a delta\|policy generation .* applied' |
		grep -v incremental
}
# pod_a ANNOTATIONS: client-a alone in a file of its own (one object: a delta)
pod_a() {
	cat >"$E2E_TMP/policy/.pod-a.yaml.tmp" <<EOF
apiVersion: v1
kind: Pod
metadata: {name: client-a, namespace: shop, uid: $(uid 1), annotations: {$1}}
spec: {nodeName: node-1}
status: {podIP: 10.244.0.11}
EOF
	mv -f "$E2E_TMP/policy/.pod-a.yaml.tmp" "$E2E_TMP/policy/pod-a.yaml"
}
# change_a ANNOTATIONS|rm: client-a's file changes; wait for the agent to apply it
change_a() {
	local before
	before=$(ctl status -o json | jq .reloads_ok)
	if [ "$1" = rm ]; then rm -f "$E2E_TMP/policy/pod-a.yaml"; else pod_a "$1"; fi
	e2e_wait_until 30 reloads_above "$before" || echo "  (no reload seen)"
}
sm_pod_map() { bpftool -j map dump pinned "$SM_PIN/maps/sm_pod" | jq -c 'sort_by(.key)'; }
# pod_flags: sm_pod's flags of client-a's address (empty: no entry)
pod_flags() {
	bpftool -j map lookup pinned "$SM_PIN/maps/sm_pod" key 10 244 0 11 2>/dev/null |
		jq -r '.formatted.value.flags // .value.flags // empty'
}

e2e_log "this node's pods: a new pod, an opt-out, a relabelled and a deleted one are deltas"
reload_to "istio-injection: enabled" "" yes no-a
e2e_assert_eq "without client-a: not translated" "$NOT_TRANSLATED" "$(untranslated 1)"
e2e_assert_eq "without client-a: its cgroup has nothing" "" "$(progs "$(pod_cg cgroupfs 1)")"
e2e_assert_eq "without client-a: no sm_pod entry" "" "$(pod_flags)"
l0=$(log_lines)
change_a ""
e2e_assert_match "new pod of this node: a delta ($(applied))" \
	'incremental: 0 EndpointSlices, 1 Pods, 0 Services, 0 VirtualServices, 0 DestinationRules' "$(applied)"
e2e_assert_ok "new pod attached" e2e_wait_until 20 state_is client-a attached
e2e_assert_eq "new pod: its cgroup has the 6 programs" "$PROGS" "$(progs "$(pod_cg cgroupfs 1)")"
e2e_assert_eq "new pod: its connects are translated" "ok=6 err=0" "$(translated 1)"
e2e_assert_eq "new pod: sm_pod marks it this node's (SM_POD_F_LOCAL)" 2 "$(pod_flags)"

change_a 'sockmesh.io/redirect: "false"'
e2e_assert_match "opted out of the redirect: a delta ($(applied))" 'incremental: 0 EndpointSlices, 1 Pods' "$(applied)"
e2e_assert_eq "opt-out: sm_pod says so (no redirect, this node's)" 3 "$(pod_flags)"
opt0=$(mesh_counter redirect_opt_out)
e2e_assert_eq "opt-out: still in the mesh, connects translated" "ok=6 err=0" "$(translated 1)"
e2e_assert_ge "opt-out: its connections bypass the redirect" $((opt0 + 6)) "$(mesh_counter redirect_opt_out)"
e2e_assert_eq "opt-out: still attached" attached "$(pod_state client-a)"

change_a 'sidecar.istio.io/inject: "false"'
e2e_assert_match "relabelled out of the mesh: a delta ($(applied))" 'incremental: 0 EndpointSlices, 1 Pods' "$(applied)"
e2e_assert_eq "relabelled: not a member" not-member "$(pod_state client-a)"
e2e_assert_eq "relabelled: its cgroup has nothing" "" "$(progs "$(pod_cg cgroupfs 1)")"
e2e_assert_eq "relabelled: its pins are gone" no "$(exists "$SM_PIN/pods/$(uid 1)")"
e2e_assert_eq "relabelled: not translated" "$NOT_TRANSLATED" "$(untranslated 1)"
e2e_assert_eq "relabelled: no redirect opt-out any more" 2 "$(pod_flags)"

change_a ""
e2e_assert_ok "relabelled back: attached again" e2e_wait_until 20 state_is client-a attached
e2e_assert_eq "relabelled back: translated" "ok=6 err=0" "$(translated 1)"
delta_map=$(sm_pod_map)
delta_members=$(counts)

change_a rm
e2e_assert_match "deleted pod: a delta ($(applied))" 'incremental: 0 EndpointSlices, 1 Pods' "$(applied)"
e2e_assert_eq "deleted pod: no longer listed" "" "$(mb '.pods[] | select(.name == "client-a") | .name')"
e2e_assert_eq "deleted pod: its cgroup has nothing" "" "$(progs "$(pod_cg cgroupfs 1)")"
e2e_assert_eq "deleted pod: not translated" "$NOT_TRANSLATED" "$(untranslated 1)"
e2e_assert_eq "deleted pod: its sm_pod entry is gone" "" "$(pod_flags)"
e2e_assert_eq "no full reload for this node's pods" "" "$(full_since "$l0")"

e2e_log "the deltas wrote what a full load writes"
change_a ""
e2e_assert_eq "sm_pod after the deltas: as before the deletion" "$delta_map" "$(sm_pod_map)"
l1=$(log_lines)
reload_to "istio-injection: enabled, team: a" "" yes no-a	# the List changes: a full load
e2e_assert_match "a full load" 'not a delta' "$(tail -n +"$((l1 + 1))" "$E2E_TMP/agent.log")"
e2e_assert_eq "sm_pod after a full load: the same" "$delta_map" "$(sm_pod_map)"
e2e_assert_eq "membership after a full load: the same" "$delta_members" "$(counts)"
e2e_assert_eq "and client-a still attached" attached "$(pod_state client-a)"
rm -f "$E2E_TMP/policy/pod-a.yaml"
mesh_agent_stop TERM
e2e_assert_eq "cgroupfs exit: nothing left attached" "" \
	"$(for n in 1 5 6; do progs "$(pod_cg cgroupfs "$n")"; done)"
e2e_assert_eq "cgroupfs exit: pin path removed" no "$(exists "$SM_PIN")"
grep -q 'ERROR\|AddressSanitizer' "$E2E_TMP/agent.log" && sed 's/^/  | /' "$E2E_TMP/agent.log"
e2e_finish
