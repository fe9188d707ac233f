#!/bin/bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# The agent refuses to start, with one line saying why, when a flag is out
# of range or the node lacks what it needs; nothing is attached or pinned in
# that case.

# shellcheck disable=SC1091
. "$(dirname "$0")/lib.sh"
e2e_require_root
e2e_tmpdir
AGENT=$SM_BUILD/sockmesh-agent
POL=$E2E_ROOT/policies/demo-l4.yaml
CG2=$(sm_cgroup2_root)

refuse() { # refuse NAME REGEX ARGS...: exit 1 and one stderr line matching REGEX
	local name=$1 re=$2 rc
	shift 2
	timeout -k 2 10 "$AGENT" --admin-socket "$E2E_TMP/admin.sock" "$@" >"$E2E_TMP/out" 2>&1; rc=$?
	e2e_assert_eq "$name: exit 1" 1 "$rc"
	e2e_assert_match "$name: says why" "$re" "$(cat "$E2E_TMP/out")"
}

refuse "no cgroup flag" '--kubepods-cgroup \(or --cgroup\) and --policy are required' --policy "$POL"
refuse "both cgroup flags" '--cgroup and --kubepods-cgroup exclude each other' \
	--cgroup "$CG2" --kubepods-cgroup "$CG2" --policy "$POL"
refuse "node name without kubepods" '--node-name needs --kubepods-cgroup' \
	--cgroup "$CG2" --node-name n1 --policy "$POL"
refuse "kubepods root is the cgroup v2 root" 'is the cgroup v2 root: that would put kubelet' \
	--kubepods-cgroup "$CG2" --policy "$POL" --pin-path /sys/fs/bpf/sockmesh-refuse-$$
refuse "kubepods root not cgroup v2" 'not in the cgroup v2 hierarchy|not a cgroup v2' \
	--kubepods-cgroup "$E2E_TMP" --policy "$POL" --pin-path /sys/fs/bpf/sockmesh-refuse-$$
for bad in 0 -5 12x 1048577 ""; do
	refuse "--l7-max-conns '$bad'" "--l7-max-conns $bad: expected 1\\.\\.1048576 connections" \
		--policy "$POL" --l7-max-conns "$bad"
done
for bad in 0 99 1.5s 600001 abc; do
	refuse "--l7-header-timeout '$bad'" "--l7-header-timeout $bad: expected 100\\.\\.600000 milliseconds" \
		--policy "$POL" --l7-header-timeout "$bad"
done
for bad in -1 10001 1s ""; do
	refuse "--reload-debounce '$bad'" "--reload-debounce $bad: expected 0\\.\\.10000 milliseconds" \
		--policy "$POL" --reload-debounce "$bad"
done
refuse "--workers 3x" '--workers 3x: expected 1\.\.256' --policy "$POL" --workers 3x
refuse "not a cgroup v2 dir" 'not in the cgroup v2 hierarchy|not a cgroup v2' \
	--cgroup "$E2E_TMP" --policy "$POL" --pin-path /sys/fs/bpf/sockmesh-refuse-$$
v1=$(awk '$3 == "cgroup" { print $2; exit }' /proc/mounts)
if [ -n "$v1" ]; then
	refuse "cgroup v1" 'cgroup v1.*Amazon Linux 2' --cgroup "$v1" --policy "$POL" \
		--pin-path /sys/fs/bpf/sockmesh-refuse-$$
	refuse "kubepods on cgroup v1" 'cgroup v1.*Amazon Linux 2023 or Bottlerocket' \
		--kubepods-cgroup "$v1" --policy "$POL" --pin-path /sys/fs/bpf/sockmesh-refuse-$$
fi
mkdir "$CG2/sockmesh-refuse-$$"
sm_trap_add "rmdir '$CG2/sockmesh-refuse-$$'"
refuse "pin path not on bpffs" 'not on a bpffs' --cgroup "$CG2/sockmesh-refuse-$$" \
	--policy "$POL" --pin-path "$E2E_TMP/pins"
printf 'apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n  clusterIP: 10.96.9.9\n  ports: [{port: 80, targetPrt: 80}]\n' >"$E2E_TMP/bad.yaml"
refuse "bad policy at start" 'bad\.yaml:6:[0-9]+: error' --cgroup "$CG2/sockmesh-refuse-$$" \
	--policy "$E2E_TMP/bad.yaml" --pin-path /sys/fs/bpf/sockmesh-refuse-$$
e2e_assert_eq "nothing attached" "" "$(bpftool cgroup show "$CG2/sockmesh-refuse-$$" 2>/dev/null)"
e2e_assert_eq "nothing pinned" no "$([ -e /sys/fs/bpf/sockmesh-refuse-$$ ] && echo yes || echo no)"
e2e_finish
