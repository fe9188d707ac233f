#!/bin/bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# check-node.sh — the DaemonSet's init check before the agent may attach.
#
#   SOCKMESH_CGROUP=PATH check-node.sh
#
# Per-pod mesh membership (attach only to the cgroups of pods whose Namespace
# is in the mesh, issue 5) is not implemented yet: the agent attaches to the
# one cgroup v2 directory the operator names in SOCKMESH_CGROUP (ConfigMap
# sockmesh-config, key cgroup). There is deliberately no default. This refuses
# an unset value, a path that is not a cgroup v2 directory, and the node's
# cgroup root, which would put kubelet, containerd and every hostNetwork pod
# under the programs. Exit 0: go; exit 1: one line saying why not.
set -u
cg=${SOCKMESH_CGROUP:-}
root=${SOCKMESH_CGROUP_ROOT:-/sys/fs/cgroup}

fail() {
	echo "sockmesh-check-node: $*" >&2
	exit 1
}

[ -n "$cg" ] || fail "SOCKMESH_CGROUP is not set: set key 'cgroup' of ConfigMap" \
	"sockmesh-system/sockmesh-config to the cgroup v2 directory holding only the pods" \
	"to put in the mesh (per-pod membership attach is pending, see README 'Install on EKS')"
rootfs=$(stat -f -c %T "$root" 2>/dev/null)
[ "$rootfs" = cgroup2fs ] || fail "$root is not a cgroup v2 mount (filesystem ${rootfs:-missing}): sockmesh" \
	"needs cgroup v2 (EKS on Amazon Linux 2 uses cgroup v1: use Amazon Linux 2023 or Bottlerocket)"
[ -d "$cg" ] || fail "SOCKMESH_CGROUP=$cg: no such directory on this node"
fstype=$(stat -f -c %T "$cg") || fail "SOCKMESH_CGROUP=$cg: cannot stat"
case $fstype in
cgroup2fs) ;;
tmpfs|cgroupfs)
	fail "SOCKMESH_CGROUP=$cg: cgroup v1 node; sockmesh needs cgroup v2" \
		"(EKS on Amazon Linux 2 uses cgroup v1: use Amazon Linux 2023 or Bottlerocket)" ;;
*) fail "SOCKMESH_CGROUP=$cg is not in a cgroup v2 hierarchy (filesystem $fstype)" ;;
esac
real=$(realpath "$cg") || fail "cannot resolve $cg"
realroot=$(realpath "$root") || fail "cannot resolve $root"
[ "$real" != "$realroot" ] || fail "SOCKMESH_CGROUP=$cg is the node's cgroup root:" \
	"that would attach to kubelet, containerd and hostNetwork pods; name a child cgroup"
case $real in
"$realroot"/*) ;;
*) fail "SOCKMESH_CGROUP=$cg is outside $root" ;;
esac
echo "sockmesh-check-node: will attach to $real"
