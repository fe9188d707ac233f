#!/bin/bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# sockmesh L4 demo (`sudo make demo`): a throw-away node network namespace
# with five pod namespaces in a private cgroup v2 child, the agent on
# policies/demo-l4.yaml, real TCP from productpage to the reviews and
# ratings VIPs, then a canary and an ejection, the L7 part, and the service
# graph as SVG ($SM_BUILD/demo-graph.svg, kept). Everything else is removed
# on exit.
set -u
cd "$(dirname "$0")/.." || exit 1
: "${SM_BUILD:=build}"
SM_BUILD=$(cd "$SM_BUILD" && pwd)
# shellcheck disable=SC1091
. scripts/lib/node.sh

AGENT=$SM_BUILD/sockmesh-agent CTL=$SM_BUILD/sockmeshctl
SRV=$SM_BUILD/tools/sm-server CLI=$SM_BUILD/tools/sm-client
HTTP=$SM_BUILD/tools/sm-http HREQ=$SM_BUILD/tools/sm-hreq
for b in "$AGENT" "$CTL" "$SRV" "$CLI" "$HTTP" "$HREQ"; do
	[ -x "$b" ] || { echo "demo: $b missing: run make first" >&2; exit 1; }
done

# bold headings on a terminal only (no escape codes in a log file)
if [ -t 1 ]; then
	step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
	step() { printf '\n== %s\n' "$*"; }
fi
ctl() { "$CTL" --admin-socket "$TMP/admin.sock" --pin-path "$SM_PIN" "$@"; }
who() { sm_pod_exec 1 "$CLI" who --addr "$1" --count "$2"; }

TMP=$(mktemp -d /tmp/sockmesh-demo.XXXXXX)
sm_trap_add 'rm -rf -- "$TMP"'
mkdir "$TMP/policy"
cp policies/demo-l4.yaml "$TMP/policy/"

step "node: netns demo-node + pods demo-pod1..5 (productpage, reviews v1/v2/v3, ratings)"
sm_node_up demo 5 || exit 1
echo "cgroup $SM_CGROUP, pins $SM_PIN"
names=("" productpage-v1 reviews-v1 reviews-v2 reviews-v3 ratings-v1)
for p in 2 3 4 5; do
	sm_pod_spawn "$p" "$SRV" --port 9080 --id "${names[$p]}" --mode id >"$TMP/srv$p.out" 2>&1
done
sm_pod_spawn 5 "$SRV" --port 9000 --id ratings-v1 --mode sink >"$TMP/sink.out" 2>&1
for p in 2 3 4; do	# the HTTP side of the reviews pods, for the L7 part
	sm_pod_spawn "$p" "$HTTP" --port 9081 --id "${names[$p]}" >"$TMP/http$p.out" 2>&1
	echo "$SM_LAST_PID" >"$TMP/http$p.pid"
done
for p in 2 3 4 5; do
	for _ in $(seq 50); do grep -q ready "$TMP/srv$p.out" 2>/dev/null && break; sleep 0.1; done
done

step "sockmesh-agent --cgroup $SM_CGROUP --policy policies/demo-l4.yaml --l7-listen $SM_NODE_IP:15001"
# The agent runs in the node namespace (hostNetwork on a real node): its L7
# proxy listens on the node side of the pods' bridge.
# Each proxied connection holds two descriptors: the demo caps the proxy at
# what this shell's open-file limit holds (the agent raises its soft limit
# to the hard one, and would warn if --l7-max-conns did not fit).
nofile=$(ulimit -Hn)
max_conns=16384
if [ "$nofile" != unlimited ] && [ $(((nofile - 256) / 2)) -lt $max_conns ]; then
	max_conns=$(((nofile - 256) / 2))
	echo "open-file limit $nofile: --l7-max-conns $max_conns (2 descriptors per proxied connection)"
fi
sm_spawn "$AGENT" --cgroup "$SM_CGROUP" --policy "$TMP/policy" --pin-path "$SM_PIN" \
	--admin-socket "$TMP/admin.sock" --netns "/run/netns/$SM_NODE_NS" \
	--l7-listen "$SM_NODE_IP:15001" --l7-max-conns "$max_conns" >"$TMP/agent.log" 2>&1
alive() { ctl status -o json 2>/dev/null | grep -q '"alive": true'; }
for _ in $(seq 100); do alive && break; sleep 0.1; done
alive || { echo "agent did not start:"; cat "$TMP/agent.log"; exit 1; }
sed 's/^/  agent | /' "$TMP/agent.log"

step "productpage (pod 1) connects 30 times to reviews 10.96.0.20:9080 (ROUND_ROBIN)"
who 10.96.0.20:9080 30
step "... and 10 times to ratings 10.96.0.30:9080 (LEAST_REQUEST, the default)"
who 10.96.0.30:9080 10
step "the app still sees the VIP: getpeername() ="
sm_pod_exec 1 "$CLI" peer --addr 10.96.0.20:9080
step "8 MB pod-to-pod through the VIP, redirected socket to socket by sk_msg"
r0=$(ctl status -o json | jq .counters.redirect)
sm_pod_exec 1 "$CLI" bulk --addr 10.96.0.30:9000 --bytes 8388608
echo "sk_msg redirects: $r0 -> $(ctl status -o json | jq .counters.redirect)"

step "sockmeshctl services (ratings:9000 is the demo's byte sink for the transfer above)"
ctl services
step "sockmeshctl backends"
ctl backends

step "sockmeshctl eject 10.244.0.13:9080 --for 30s (reviews-v2): the kernel skips it"
ctl eject 10.244.0.13:9080 --for 30s
who 10.96.0.20:9080 30
ctl backends reviews
ctl restore 10.244.0.13:9080

step "canary: sockmeshctl apply -f policies/reviews-canary-tcp.yaml (80% v1, 20% v3)"
ctl apply -f policies/reviews-canary-tcp.yaml
who 10.96.0.20:9080 100
ctl services | sed -n '1p;/reviews/,/`-/p'

step "L7: sockmeshctl apply -f policies/demo-l7.yaml (reviews-web: HTTP, routed by the node agent)"
ctl apply -f policies/demo-l7.yaml
ctl services | sed -n '1p;/reviews-web/p'
ctl routes reviews-web
step "end-user: jason -> reviews v2 only (100 requests)"
sm_pod_exec 1 "$HREQ" --addr 10.96.0.21:9080 --count 100 -H 'end-user: jason' | grep -v latency
step "everyone else: 90% v1, 10% v3 (500 requests)"
sm_pod_exec 1 "$HREQ" --addr 10.96.0.21:9080 --count 500 | grep -v latency
step "circuit breaker: 6 concurrent slow requests, 1 connection + 1 pending allowed"
sm_pod_exec 1 "$HREQ" --addr 10.96.0.21:9080 --count 6 --conns 6 --path '/slow?delay_ms=800' | grep -v latency
step "outlier detection: reviews-v1 starts answering 500; 3 in a row eject it (L7 and kernel map) for 30 s"
kill "$(cat "$TMP/http2.pid" 2>/dev/null)" 2>/dev/null
sm_pod_spawn 2 "$HTTP" --port 9081 --id reviews-v1-broken --status 500 >"$TMP/http2b.out" 2>&1
sleep 0.3
sm_pod_exec 1 "$HREQ" --addr 10.96.0.21:9080 --count 40 --path /all | grep -v latency
ctl backends reviews-web

step "service graph: sockmeshctl graph -o svg (L7: rps, error %, red above 5 %; L4 dashed: connections/s, bytes/s)"
ctl graph -o dot | grep -- ' -> ' | sed 's/^ */  /'
GRAPH=$SM_BUILD/demo-graph.svg
if ctl graph -o svg --out "$GRAPH"; then
	echo "service graph written to $GRAPH"
elif ctl graph -o dot --out "${GRAPH%.svg}.dot"; then
	echo "no Graphviz (make deps installs it): dot source written to ${GRAPH%.svg}.dot"
fi

step "sockmeshctl status"
ctl status
step "done: tearing down (agent detaches and unpins, namespaces and cgroup removed)"
