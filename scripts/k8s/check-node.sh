#!/bin/bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# check-node.sh — finds the node's kubepods cgroup and checks it before the
# agent may attach below it.
#
#   check-node.sh                         check, print what was found
#   check-node.sh --exec AGENT [ARGS...]  check, then exec AGENT
#                                         --kubepods-cgroup=FOUND ARGS...
#
# The agent attaches only to the cgroups of mesh pods (Namespace labels
# istio-injection=enabled, istio.io/dataplane-mode=ambient or
# sockmesh.io/mesh=enabled; see README "Install on EKS"), which it finds by
# Pod UID under the kubelet's kubepods cgroup. That is, on the node's cgroup
# v2 mount (SOCKMESH_CGROUP_ROOT, default /sys/fs/cgroup):
#   kubepods.slice   kubelet with the systemd cgroup driver (EKS AL2023,
#                    Bottlerocket)
#   kubepods         kubelet with the cgroupfs driver
# SOCKMESH_KUBEPODS_CGROUP (ConfigMap sockmesh-config, key kubepods-cgroup)
# names it instead, for a kubelet with its own --cgroup-root. Refused: a
# node without cgroup v2 (Amazon Linux 2), a path that is not cgroup v2, the
# cgroup v2 root itself (kubelet, containerd and hostNetwork pods live
# there) and anything outside the mount. Exit 0: go; exit 1: one line
# saying why not.
set -u
root=${SOCKMESH_CGROUP_ROOT:-/sys/fs/cgroup}
want=${SOCKMESH_KUBEPODS_CGROUP:-}
exec_argv=()
if [ "${1:-}" = --exec ]; then
	shift
	[ $# -gt 0 ] || { echo "sockmesh-check-node: --exec needs a program" >&2; exit 2; }
	exec_argv=("$@")
fi

fail() {
	echo "sockmesh-check-node: $*" >&2
	exit 1
}

V1_HINT="(EKS on Amazon Linux 2 uses cgroup v1: use Amazon Linux 2023 or Bottlerocket)"
rootfs=$(stat -f -c %T "$root" 2>/dev/null)
[ "$rootfs" = cgroup2fs ] || fail "$root is not a cgroup v2 mount (filesystem ${rootfs:-missing}):" \
	"sockmesh needs cgroup v2 $V1_HINT"

if [ -n "$want" ]; then
	cg=$want
	what="SOCKMESH_KUBEPODS_CGROUP=$cg"
	[ -d "$cg" ] || fail "$what: no such directory on this node"
	fstype=$(stat -f -c %T "$cg") || fail "$what: cannot stat"
	case $fstype in
	cgroup2fs) ;;
	tmpfs|cgroupfs) fail "$what: cgroup v1 node; sockmesh needs cgroup v2 $V1_HINT" ;;
	*) fail "$what is not in a cgroup v2 hierarchy (filesystem $fstype)" ;;
	esac
else
	cg=
	for c in "$root/kubepods.slice" "$root/kubepods"; do
		if [ -d "$c" ]; then
			cg=$c
			break
		fi
	done
	[ -n "$cg" ] || fail "no kubepods cgroup under $root (looked for kubepods.slice, the" \
		"kubelet's systemd driver, and kubepods, cgroupfs): set key kubepods-cgroup of ConfigMap" \
		"sockmesh-system/sockmesh-config if the kubelet runs with its own --cgroup-root"
	what="kubepods cgroup $cg"
fi
real=$(realpath "$cg") || fail "cannot resolve $cg"
realroot=$(realpath "$root") || fail "cannot resolve $root"
[ "$real" != "$realroot" ] || fail "$what is the node's cgroup root: that would attach to" \
	"kubelet, containerd and hostNetwork pods; name the kubepods cgroup"
case $real in
"$realroot"/*) ;;
*) fail "$what is outside $root" ;;
esac
echo "sockmesh-check-node: mesh pods are found by UID under $real" >&2
[ ${#exec_argv[@]} -gt 0 ] || exit 0
exec "${exec_argv[0]}" "--kubepods-cgroup=$real" "${exec_argv[@]:1}"
