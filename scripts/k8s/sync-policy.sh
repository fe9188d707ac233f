#!/bin/bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# sync-policy.sh — copies the cluster objects sockmesh-agent reads into its
# policy directory, one file per kind (EndpointSlices and Pods: one file per
# object), each written atomically.
#
#   sync-policy.sh [--once] [--interval SECONDS] DIR
#
# Every round runs `kubectl get ... -o yaml` for Namespaces, Services,
# EndpointSlices, Pods and Istio's VirtualServices, DestinationRules and
# Gateways. Namespaces (their labels) and this node's Pods (uid, labels,
# annotations, hostNetwork, nodeName) decide mesh membership: which pod
# cgroups the agent attaches to. A file is replaced
# (write to DIR/.NAME.tmp, then rename) only when its content changed, so
# the agent's inotify reload fires only on real changes and never sees a
# half-written file (it ignores dotfiles). A kind whose get fails keeps its
# last good file: a flaky API server must not empty the mesh. A missing Istio
# CRD is not an error: its file holds an empty List.
#
# EndpointSlices and Pods, the objects that change most, go one per file,
# 31-eps.NAMESPACE.NAME.yaml and 41-pod.NAMESPACE.NAME.yaml: a round in which
# endpoints come, go or change readiness replaces only their files, and the
# agent applies such a change incrementally (it reads the named files, sees
# that only slices and pod readiness changed and re-plans only the services
# they feed) instead of reloading the whole policy. Files of objects that are
# gone are removed.
#
# Environment: NODE_NAME (required), SYNC_PODS=all|node (default all),
# KUBECTL (default kubectl; the tests point it at a fake that replays
# recordings). SYNC_PODS=node copies only this node's Pods: smaller, but an
# EndpointSlice carries no labels, so a backend on another node whose Pod is
# not in the policy is in no DestinationRule subset (plan.c); use it only
# where no subset spans nodes. Either way this node's Pods are copied.
# --once exits 1 when any kind could not be read (the init container retries).
set -u
umask 022

KUBECTL=${KUBECTL:-kubectl}
interval=10
once=false
while [ $# -gt 0 ]; do
	case $1 in
	--once) once=true ;;
	--interval) interval=${2:?--interval needs seconds}; shift ;;
	-h|--help) sed -n '3,26p' "$0"; exit 0 ;;
	-*) echo "sync-policy: unknown option $1" >&2; exit 2 ;;
	*) break ;;
	esac
	shift
done
dir=${1:?usage: sync-policy.sh [--once] [--interval SECONDS] DIR}
: "${NODE_NAME:?sync-policy: NODE_NAME must be set (downward API spec.nodeName)}"
case ${SYNC_PODS:=all} in
all) pod_args=(pods -A) ;;
node) pod_args=(pods -A --field-selector "spec.nodeName=$NODE_NAME") ;;
*) echo "sync-policy: SYNC_PODS must be all or node, not $SYNC_PODS" >&2; exit 2 ;;
esac

# The agent refuses a policy directory writable by non-root users, and an
# emptyDir is 0777: the files live in a 0755 directory of their own.
mkdir -p "$dir" && chmod 0755 "$dir" || exit 1

EMPTY_LIST='apiVersion: v1
items: []
kind: List
metadata:
  resourceVersion: ""'

log() {
	echo "sync-policy: $*" >&2
}

# sync_write NAME FILE: moves FILE to DIR/NAME unless the content is the same.
sync_write() {
	local name=$1 tmp=$2
	if cmp -s "$tmp" "$dir/$name"; then
		rm -f "$tmp"
		return
	fi
	chmod 0644 "$tmp" && mv -f "$tmp" "$dir/$name" && log "updated $name"
}

# sync_kind NAME OPTIONAL KUBECTL-ARGS...: one kind into DIR/NAME.
# OPTIONAL=crd: a resource type the server does not know gives an empty List.
sync_kind() {
	local name=$1 optional=$2 tmp="$dir/.$1.tmp" errf="$dir/.$1.err"
	shift 2
	if "$KUBECTL" get "$@" -o yaml >"$tmp" 2>"$errf"; then
		rm -f "$errf"
		sync_write "$name" "$tmp"
		return 0
	fi
	if [ "$optional" = crd ] && grep -q "doesn't have a resource type" "$errf"; then
		rm -f "$errf"
		printf '%s\n' "$EMPTY_LIST" >"$tmp"
		sync_write "$name" "$tmp"
		return 0
	fi
	log "$name: kubectl get $*: $(head -c 300 "$errf" | tr '\n' ' ') (keeping the last good copy)"
	rm -f "$tmp" "$errf"
	return 1
}

# sync_split LIST STAGE: the items of kubectl's `-o yaml` List in LIST, one
# document per file STAGE/NAMESPACE.NAME.yaml (kubectl writes each item as a
# "- " block at column 0, its metadata.name/namespace 4 spaces in).
sync_split() {
	awk -v stage="$2" '
		function flush(   f) {
			if (n && name != "") {
				f = stage "/" (ns == "" ? "default" : ns) "." name ".yaml"
				for (i = 1; i <= n; i++) print buf[i] > f
				close(f)
			}
			n = 0; name = ""; ns = ""; meta = 0
		}
		/^items:/ { items = 1; next }
		items && /^- / { flush(); buf[++n] = substr($0, 3); next }
		items && /^[^ ]/ && !/^- / { flush(); items = 0; next }
		items && n {
			line = substr($0, 3)
			buf[++n] = line
			if (line ~ /^metadata:/) meta = 1
			else if (line ~ /^[^ ]/) meta = 0
			else if (meta && line ~ /^  name: /) { name = substr(line, 9); gsub(/["'"'"']/, "", name) }
			else if (meta && line ~ /^  namespace: /) { ns = substr(line, 14); gsub(/["'"'"']/, "", ns) }
		}
		END { flush() }' "$1"
}

# sync_each PREFIX OLD WHAT KUBECTL-ARGS...: one object per file,
# DIR/PREFIX.NS.NAME.yaml; files of objects that are gone are removed, and so
# is OLD, the one file per kind of older versions.
sync_each() {
	local prefix=$1 old=$2 what=$3 list="$dir/.$1.list" errf="$dir/.$1.err" stage="$dir/.$1.stage" f
	shift 3
	if ! "$KUBECTL" get "$@" -o yaml >"$list" 2>"$errf"; then
		log "$what: kubectl get $*: $(head -c 300 "$errf" | tr '\n' ' ') (keeping the last good copies)"
		rm -f "$list" "$errf"
		return 1
	fi
	rm -rf "$errf" "$stage" && mkdir "$stage" && sync_split "$list" "$stage" || {
		log "$what: could not split the list"
		rm -rf "$list" "$stage"
		return 1
	}
	rm -f "$list"
	# first what is gone (not in this round), then what changed
	for f in "$dir/$prefix".*.yaml; do
		[ -e "$f" ] || continue
		[ -e "$stage/${f##*/"$prefix".}" ] || { rm -f "$f" && log "removed ${f##*/}"; }
	done
	for f in "$stage"/*.yaml; do
		[ -e "$f" ] && sync_write "$prefix.${f##*/}" "$f"
	done
	rm -rf "$stage"
	[ ! -e "$dir/$old" ] || { rm -f "$dir/$old" && log "removed $old"; }
	return 0
}

sync_round() {
	local bad=0
	sync_kind 10-namespaces.yaml - namespaces || bad=1
	sync_kind 20-services.yaml - services -A || bad=1
	sync_each 31-eps 30-endpointslices.yaml EndpointSlices endpointslices.discovery.k8s.io -A || bad=1
	sync_each 41-pod 40-pods.yaml Pods "${pod_args[@]}" || bad=1
	sync_kind 50-destinationrules.yaml crd destinationrules.networking.istio.io -A || bad=1
	sync_kind 60-virtualservices.yaml crd virtualservices.networking.istio.io -A || bad=1
	sync_kind 70-gateways.yaml crd gateways.networking.istio.io -A || bad=1
	return $bad
}

if $once; then
	sync_round
	exit
fi
trap 'exit 0' TERM INT
while :; do
	sync_round
	sleep "$interval" &
	wait $!
done
