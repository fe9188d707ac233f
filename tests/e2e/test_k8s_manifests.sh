#!/bin/bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# The Kubernetes install (no cluster, no root needed):
#  - every manifest in scripts/k8s/ parses (sockmeshctl's libyaml loader) and
#    carries the fields the DaemonSet needs (structured check with python3 +
#    PyYAML where present, grep otherwise);
#  - the DaemonSet runs the agent with --in-cluster (it lists and watches the
#    API itself): no kubectl, no sync container, no policy volume; RBAC is
#    get/list/watch on exactly the resources the agent reads;
#  - recorded `kubectl get -o yaml` output (tests/e2e/k8s-fixtures/) still
#    validates (files stay a way in: GitOps, air-gapped nodes);
#  - scripts/k8s/check-node.sh finds the kubepods cgroup (systemd or cgroupfs
#    driver) and refuses v1, non-cgroup, missing and root cgroups; --exec
#    hands the agent --kubepods-cgroup;
#  - the Dockerfile's runtime packages cover the agent's shared libraries, and
#    the image builds where a container engine answers (skipped otherwise).

# shellcheck disable=SC1091
. "$(dirname "$0")/lib.sh"
CTL=$SM_BUILD/sockmeshctl
K=$E2E_ROOT/scripts/k8s
FX=$E2E_ROOT/tests/e2e/k8s-fixtures
e2e_tmpdir

# ---- manifests parse ----
for f in "$K"/*.yaml; do
	e2e_assert_ok "$(basename "$f") parses" "$CTL" validate -f "$f"
done

# ---- manifest fields ----
# facts: "KEY VALUE" lines from the parsed manifests
facts=
# E2E_K8S_GREP_ONLY=1 exercises the fallback where PyYAML is present.
if [ -z "${E2E_K8S_GREP_ONLY:-}" ] && command -v python3 >/dev/null && python3 -c 'import yaml' 2>/dev/null; then
	facts=$(python3 - "$K" <<'PY'
import glob, sys, yaml
docs = []
for f in sorted(glob.glob(sys.argv[1] + "/*.yaml")):
    docs += [d for d in yaml.safe_load_all(open(f)) if d]
by = {}
for d in docs:
    by.setdefault(d["kind"], []).append(d)
out = []
def fact(k, v):
    out.append("%s %s" % (k, v))
fact("kinds", ",".join(sorted(by)))
for d in docs:
    if d["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding"):
        fact("ns." + d["kind"], d["metadata"].get("namespace"))
ds = by["DaemonSet"][0]
sp = ds["spec"]["template"]["spec"]
fact("hostNetwork", sp.get("hostNetwork"))
fact("serviceAccount", sp.get("serviceAccountName"))
fact("tolerateAll", any(t.get("operator") == "Exists" and "key" not in t for t in sp.get("tolerations", [])))
us = ds["spec"].get("updateStrategy", {})
fact("update", "%s/%s" % (us.get("type"), us.get("rollingUpdate", {}).get("maxUnavailable")))
vols = {v["name"]: v for v in sp["volumes"]}
cs = {c["name"]: c for c in sp["containers"]}
ag = cs["agent"]
fact("privileged", ag.get("securityContext", {}).get("privileged"))
for m in ag["volumeMounts"]:
    v = vols[m["name"]]
    src = v["hostPath"]["path"] if "hostPath" in v else "emptyDir"
    fact("mount." + m["mountPath"], "%s:%s" % (src, m.get("mountPropagation", "None")))
for p in ("startupProbe", "livenessProbe", "readinessProbe"):
    fact(p, " ".join(ag.get(p, {}).get("exec", {}).get("command", [])))
for c in sp["containers"]:
    r = c.get("resources", {})
    fact("resources." + c["name"], "requests=%s limits=%s" % (
        ",".join(sorted(r.get("requests", {}))), ",".join(sorted(r.get("limits", {})))))
env = {e["name"]: e for e in ag.get("env", [])}
fact("agent.command", " ".join(ag.get("command", [])))
fact("agent.args", " ".join(ag.get("args", [])))
fact("env.NODE_IP", env.get("NODE_IP", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath"))
fact("env.NODE_NAME", env.get("NODE_NAME", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath"))
fact("env.SOCKMESH_KUBEPODS_CGROUP", env.get("SOCKMESH_KUBEPODS_CGROUP", {}).get("valueFrom", {}).get("configMapKeyRef", {}).get("key"))
ic = {c["name"]: c for c in sp.get("initContainers", [])}
ie = {e["name"]: e for e in ic["check-node"].get("env", [])}
fact("init.check-node.SOCKMESH_KUBEPODS_CGROUP", ie.get("SOCKMESH_KUBEPODS_CGROUP", {}).get("valueFrom", {}).get("configMapKeyRef", {}).get("key"))
fact("config.kubepods-cgroup", repr(by["ConfigMap"][0]["data"].get("kubepods-cgroup")))
fact("config.cgroup", repr(by["ConfigMap"][0]["data"].get("cgroup")))
fact("containers", ",".join(c["name"] for c in sp["containers"]))
fact("volumes", ",".join(sorted(vols)))
fact("config.keys", ",".join(sorted(by["ConfigMap"][0]["data"])))
fact("init", ",".join(c["name"] for c in sp.get("initContainers", [])))
rules = []
for r in by["ClusterRole"][0]["rules"]:
    for g in r["apiGroups"]:
        for res in r["resources"]:
            fact("rbac.%s/%s" % (g or "core", res), ",".join(sorted(r["verbs"])))
            rules.append("%s/%s" % (g or "core", res))
fact("rbac.resources", ",".join(sorted(rules)))
b = by["ClusterRoleBinding"][0]
fact("binding", "%s -> %s/%s" % (b["roleRef"]["name"], b["subjects"][0]["namespace"], b["subjects"][0]["name"]))
print("\n".join(out))
PY
	) || e2e_assert_eq "python3 reads the manifests" 0 1
else
	e2e_log "python3 with PyYAML not found: field checks fall back to grep"
fi

# KEY | expected value (structured) | grep -E fallback on the manifests
checks=(
	"kinds|ClusterRole,ClusterRoleBinding,ConfigMap,DaemonSet,Namespace,ServiceAccount|^kind: DaemonSet"
	"ns.ServiceAccount|sockmesh-system|namespace: sockmesh-system"
	"ns.ConfigMap|sockmesh-system|namespace: sockmesh-system"
	"ns.DaemonSet|sockmesh-system|namespace: sockmesh-system"
	"hostNetwork|True|hostNetwork: true"
	"serviceAccount|sockmesh|serviceAccountName: sockmesh"
	"tolerateAll|True|- operator: Exists"
	"update|RollingUpdate/1|maxUnavailable: 1"
	"privileged|True|privileged: true"
	"mount./sys/fs/bpf|/sys/fs/bpf:Bidirectional|mountPath: /sys/fs/bpf, mountPropagation: Bidirectional"
	"mount./sys/fs/cgroup|/sys/fs/cgroup:None|path: /sys/fs/cgroup"
	"mount./run/sockmesh|/run/sockmesh:None|path: /run/sockmesh"
	"startupProbe|curl -sf --max-time 2 --unix-socket /run/sockmesh/admin.sock http://localhost/healthz|startupProbe:"
	"livenessProbe|curl -sf --max-time 2 --unix-socket /run/sockmesh/admin.sock http://localhost/healthz|http://localhost/healthz"
	"readinessProbe|curl -sf --max-time 2 --unix-socket /run/sockmesh/admin.sock http://localhost/ready|http://localhost/ready"
	"resources.agent|requests=cpu,memory limits=cpu,memory|requests: \{cpu: [0-9]+m, memory"
	"agent.command|/usr/local/bin/sockmesh-check-node --exec /usr/local/bin/sockmesh-agent|command: \[/usr/local/bin/sockmesh-check-node, --exec, /usr/local/bin/sockmesh-agent\]"
	"agent.args|--node-name=\$(NODE_NAME) --in-cluster --pin-path=/sys/fs/bpf/sockmesh --admin-socket=/run/sockmesh/admin.sock --l7-listen=\$(NODE_IP) --keep-on-exit|- --in-cluster"
	"env.NODE_IP|status.hostIP|fieldPath: status.hostIP"
	"env.NODE_NAME|spec.nodeName|fieldPath: spec.nodeName"
	"env.SOCKMESH_KUBEPODS_CGROUP|kubepods-cgroup|key: kubepods-cgroup"
	"init.check-node.SOCKMESH_KUBEPODS_CGROUP|kubepods-cgroup|name: SOCKMESH_KUBEPODS_CGROUP"
	"config.kubepods-cgroup|''|kubepods-cgroup: \"\""
	"config.cgroup|None|^  kubepods-cgroup: "
	"containers|agent|- name: agent"
	"volumes|bpffs,cgroup,run|name: bpffs"
	"config.keys|kubepods-cgroup|kubepods-cgroup:"
	"init|check-node|name: check-node"
	"rbac.resources|core/namespaces,core/pods,core/services,discovery.k8s.io/endpointslices,networking.istio.io/destinationrules,networking.istio.io/gateways,networking.istio.io/virtualservices|resources: \[namespaces, services, pods\]"
	"rbac.core/namespaces|get,list,watch|resources: \[namespaces, services, pods\]"
	"rbac.core/services|get,list,watch|verbs: \[get, list, watch\]"
	"rbac.core/pods|get,list,watch|verbs: \[get, list, watch\]"
	"rbac.discovery.k8s.io/endpointslices|get,list,watch|resources: \[endpointslices\]"
	"rbac.networking.istio.io/virtualservices|get,list,watch|virtualservices"
	"rbac.networking.istio.io/destinationrules|get,list,watch|destinationrules"
	"rbac.networking.istio.io/gateways|get,list,watch|gateways\]"
	"binding|sockmesh -> sockmesh-system/sockmesh|kind: ClusterRoleBinding"
)
for row in "${checks[@]}"; do
	IFS='|' read -r key want re <<<"$row"
	if [ -n "$facts" ]; then
		got=$(awk -v k="$key" '$1 == k { $1 = ""; sub(/^ /, ""); print; exit }' <<<"$facts")
		e2e_assert_eq "manifest $key" "$want" "$got"
	else
		e2e_assert_ok "manifest $key (grep)" grep -Eq -- "$re" "$K"/*.yaml
	fi
done
# no write verbs anywhere in the ClusterRole
e2e_assert_eq "RBAC is read-only" "" \
	"$(grep -Eo '\b(create|update|patch|delete|deletecollection|escalate|bind|impersonate|\*)\b' "$K/10-rbac.yaml")"

# ---- no kubectl, no policy sync: the agent is the API client ----
e2e_assert_eq "no sync script left" "" "$(ls "$K" | grep -i sync)"
e2e_assert_eq "the manifests name neither kubectl nor a policy sync" "" \
	"$(grep -nE 'kubectl (get|exec|proxy)|sync-policy|policy-sync|SYNC_' "$K"/*.yaml)"
e2e_assert_eq "the Dockerfile does not carry kubectl" "" "$(grep -nE 'dl\.k8s\.io|/kubectl|sync-policy' "$E2E_ROOT/Dockerfile")"
# recorded `kubectl get -o yaml` output still loads (files stay a way in)
"$CTL" validate -f "$FX" >"$E2E_TMP/validate.out" 2>&1
e2e_assert_eq "sockmeshctl validate accepts recorded kubectl output" 0 $?
e2e_assert_match "with its services and backends" 'valid: 4 service port\(s\), 3 backend\(s\)' \
	"$(cat "$E2E_TMP/validate.out")"

# ---- check-node.sh: finds the kubepods cgroup, refuses the rest ----
cn() { # cn [VAR=VALUE]... [-- ARGS...]: exit code of check-node.sh
	local envs=()
	while [ $# -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done
	[ "${1:-}" = -- ] && shift
	env "${envs[@]}" "$K/check-node.sh" "$@" >"$E2E_TMP/cn.out" 2>"$E2E_TMP/cn.err"
	echo $?
}
cg2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
e2e_assert_eq "check-node: a root that is not cgroup v2 is refused" 1 "$(cn SOCKMESH_CGROUP_ROOT="$E2E_TMP")"
e2e_assert_match "check-node: not cgroup v2 names AL2023" 'not a cgroup v2 mount.*Amazon Linux 2023 or Bottlerocket' \
	"$(cat "$E2E_TMP/cn.err")"
e2e_assert_eq "check-node: --exec without a program" 2 "$(cn SOCKMESH_CGROUP_ROOT="$E2E_TMP" -- --exec)"
if [ -n "$cg2" ]; then
	e2e_assert_eq "check-node: the cgroup v2 root named is refused" 1 \
		"$(cn SOCKMESH_CGROUP_ROOT="$cg2" SOCKMESH_KUBEPODS_CGROUP="$cg2")"
	e2e_assert_match "check-node: says it is the root" "is the node's cgroup root" "$(cat "$E2E_TMP/cn.err")"
	e2e_assert_eq "check-node: a named non-cgroup dir is refused" 1 \
		"$(cn SOCKMESH_CGROUP_ROOT="$cg2" SOCKMESH_KUBEPODS_CGROUP="$E2E_TMP")"
	e2e_assert_match "check-node: non-cgroup dir named" 'not in a cgroup v2 hierarchy' "$(cat "$E2E_TMP/cn.err")"
	e2e_assert_eq "check-node: a missing named dir is refused" 1 \
		"$(cn SOCKMESH_CGROUP_ROOT="$cg2" SOCKMESH_KUBEPODS_CGROUP="$cg2/sm-no-such-cgroup")"
	e2e_assert_match "check-node: missing dir named" 'no such directory' "$(cat "$E2E_TMP/cn.err")"
	if [ "$(id -u)" = 0 ]; then
		# a private stand-in for the node's cgroup v2 mount
		node=$cg2/sm_k8s_test_$$
		# shellcheck disable=SC2016
		mkdir "$node" && sm_trap_add 'find "$node" -depth -type d -exec rmdir {} + 2>/dev/null'
		e2e_assert_eq "check-node: no kubepods cgroup is refused" 1 "$(cn SOCKMESH_CGROUP_ROOT="$node")"
		e2e_assert_match "check-node: says where it looked" 'no kubepods cgroup under .*kubepods\.slice.*kubepods' \
			"$(cat "$E2E_TMP/cn.err")"
		mkdir "$node/kubepods"
		e2e_assert_eq "check-node: cgroupfs driver's kubepods found" 0 "$(cn SOCKMESH_CGROUP_ROOT="$node")"
		e2e_assert_match "check-node: names it" "under $node/kubepods\$" "$(cat "$E2E_TMP/cn.err")"
		mkdir "$node/kubepods.slice"
		e2e_assert_eq "check-node: systemd driver's kubepods.slice found" 0 "$(cn SOCKMESH_CGROUP_ROOT="$node")"
		e2e_assert_match "check-node: prefers kubepods.slice" "under $node/kubepods\.slice\$" "$(cat "$E2E_TMP/cn.err")"
		e2e_assert_eq "check-node --exec: runs the agent" 0 \
			"$(cn SOCKMESH_CGROUP_ROOT="$node" -- --exec /bin/echo --policy=/p)"
		e2e_assert_eq "check-node --exec: --kubepods-cgroup first, then the args" \
			"--kubepods-cgroup=$node/kubepods.slice --policy=/p" "$(cat "$E2E_TMP/cn.out")"
		e2e_assert_eq "check-node: a named kubepods cgroup is used" 0 \
			"$(cn SOCKMESH_CGROUP_ROOT="$node" SOCKMESH_KUBEPODS_CGROUP="$node/kubepods")"
		e2e_assert_eq "check-node: a named cgroup outside the root is refused" 1 \
			"$(cn SOCKMESH_CGROUP_ROOT="$node/kubepods" SOCKMESH_KUBEPODS_CGROUP="$node/kubepods.slice")"
		e2e_assert_match "check-node: says outside" 'is outside' "$(cat "$E2E_TMP/cn.err")"
	fi
fi
v1=$(awk '$3 == "cgroup" { print $2; exit }' /proc/mounts)
if [ -n "$v1" ]; then
	e2e_assert_eq "check-node: cgroup v1 refused" 1 "$(cn SOCKMESH_CGROUP_ROOT="$v1")"
	e2e_assert_match "check-node: v1 names AL2023" 'Amazon Linux 2023 or Bottlerocket' "$(cat "$E2E_TMP/cn.err")"
	e2e_assert_eq "check-node: a named cgroup v1 dir refused" 1 \
		"$(cn SOCKMESH_CGROUP_ROOT="${cg2:-$v1}" SOCKMESH_KUBEPODS_CGROUP="$v1")"
	e2e_assert_match "check-node: named v1 dir names AL2023" 'cgroup v1 node|not in a cgroup v2|not a cgroup v2 mount' \
		"$(cat "$E2E_TMP/cn.err")"
fi

# ---- Dockerfile ----
D=$E2E_ROOT/Dockerfile
e2e_assert_match "Dockerfile: build stage on Debian 12" 'FROM debian:\$\{DEBIAN_RELEASE\} AS build' "$(cat "$D")"
e2e_assert_match "Dockerfile: Debian 12 release" 'ARG DEBIAN_RELEASE=bookworm' "$(cat "$D")"
e2e_assert_match "Dockerfile: runtime on bookworm-slim" 'FROM debian:\$\{DEBIAN_RELEASE\}-slim' "$(cat "$D")"
e2e_assert_match "Dockerfile: runs the agent" 'ENTRYPOINT \["/usr/local/bin/sockmesh-agent"\]' "$(cat "$D")"
while read -r src; do
	e2e_assert_ok "Dockerfile: COPY source $src exists" test -e "$E2E_ROOT/$src"
done < <(awk '$1 == "COPY" && $2 !~ /^--from/ && $2 != "." { for (i = 2; i < NF; i++) print $i }' "$D")
# every shared library the agent and sockmeshctl link directly (DT_NEEDED) is
# a runtime package; apt brings what those libraries need in turn (libcurl4's
# TLS, HTTP/2 and compression libraries)
runtime=$(awk '/^FROM .*-slim/ { r = 1 } r' "$D")
needed() {
	local b=$1
	ldd "$b" | awk -v want="$(readelf -d "$b" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | tr '\n' ' ')" \
		'BEGIN { n = split(want, w, " "); for (i = 1; i <= n; i++) need[w[i]] = 1 } $1 in need && $3 ~ /^\// { print $3 }'
}
if command -v dpkg >/dev/null && command -v readelf >/dev/null && [ -x "$SM_BUILD/sockmesh-agent" ]; then
	for lib in $( (needed "$SM_BUILD/sockmesh-agent"; needed "$SM_BUILD/sockmeshctl") | sort -u); do
		real=$(realpath "$lib")
		# merged /usr: dpkg may record the file under /lib
		pkg=$( (dpkg -S "$real" || dpkg -S "${real#/usr}") 2>/dev/null | head -1 | cut -d: -f1)
		[ "$pkg" = libc6 ] && continue
		[ -n "$pkg" ] || { e2e_assert_eq "Dockerfile: the package of $lib is known" known unknown; continue; }
		e2e_assert_match "Dockerfile: runtime installs $pkg ($(basename "$lib"))" "[[:space:]]${pkg}[[:space:]]" "$runtime"
	done
else
	e2e_log "dpkg or $SM_BUILD/sockmesh-agent missing: runtime library check skipped"
fi

if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
	e2e_assert_ok "docker build" docker build -q -t sockmesh:e2e-test "$E2E_ROOT"
	e2e_assert_ok "image runs the agent (--help)" docker run --rm sockmesh:e2e-test --help
	e2e_assert_ok "image has no kubectl" docker run --rm --entrypoint sh sockmesh:e2e-test -c '! command -v kubectl' 
else
	e2e_log "SKIP docker build: no container engine answers (docker info failed)"
fi
e2e_finish
