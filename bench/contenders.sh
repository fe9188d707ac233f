# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# shellcheck shell=bash disable=SC2034 # tables are read by the scenarios
#
# contenders.sh — who runs in each scenario, as data. One line per
# contender, fields separated by '|'; the first line of a table is the
# baseline its ratios are computed against. A scenario runs
# `SETUP ARGS...` before measuring a contender and `TEARDOWN` after; both
# are function names (with fixed leading arguments) from this file or ':'.
#
# Pods (scripts/lib/node.sh, 10.244.0.(10+N)):
#   1 client · 2 server (sm-bench serve) · 3, 4 HTTP backends v1, v2 (nginx)
#   5, 6 clients of the iptables contenders: a nat table, once created,
#   keeps conntrack hooks in its netns, so the other contenders' client
#   pod never has one.

BENCH_NPODS=6
POD_CLIENT=1 POD_SERVER=2 POD_V1=3 POD_V2=4 POD_NFT=5 POD_LEGACY=6
SRV_IP=10.244.0.12
V1_IP=10.244.0.13
V2_IP=10.244.0.14
S1_VIP=10.96.100.1		# bench/policies/l4.yaml
S2_VIP=10.96.150.1		# bench/policies/l7.yaml
S3_VIP=10.96.200.1:8080		# bench/gen-services.sh TARGET
PORT_ECHO=7001 PORT_SINK=7002 PORT_ACCEPT=7003 PORT_HTTP=8080

# ---- scenario 1: pod-to-pod TCP request/response and bulk throughput ----
# name|label|client pod|echo address|sink address|setup|teardown
# The unix socket client runs in the server's pod (same netns and host).
S1_CONTENDERS=(
	"plain|plain TCP (pod IP, no mesh)|$POD_CLIENT|$SRV_IP:$PORT_ECHO|$SRV_IP:$PORT_SINK|:|:"
	"sockmesh|sockmesh L4 (VIP, full data path)|$POD_CLIENT|$S1_VIP:$PORT_ECHO|$S1_VIP:$PORT_SINK|c_agent_up $BENCH_DIR/policies/l4.yaml|bench_agent_down"
	"sockmesh6|sockmesh L4, dual-stack client (AF_INET6, ::ffff:VIP)|$POD_CLIENT|[::ffff:$S1_VIP]:$PORT_ECHO|[::ffff:$S1_VIP]:$PORT_SINK|c_agent_up $BENCH_DIR/policies/l4.yaml|bench_agent_down"
	"unix|unix socket (floor)|$POD_SERVER|unix:@TMP@/echo.sock|unix:@TMP@/sink.sock|:|:"
	"haproxy1|1 HAProxy (client sidecar)|$POD_CLIENT|127.0.0.1:15001|127.0.0.1:15002|c_haproxy_up sidecar1|c_proxies_down"
	"haproxy2|2 HAProxy (client + server sidecars)|$POD_CLIENT|127.0.0.1:15001|127.0.0.1:15002|c_haproxy_up sidecar2|c_proxies_down"
)

# ---- scenario 2: HTTP/1.1 through an L7 hop (header match + 90/10 split) ----
# name|label|address the client dials|setup|teardown
# Proxies listen on the node side of the pod bridge (10.244.0.1), where the
# sockmesh agent's L7 listener sits too. "direct" skips routing (v1 only).
S2_CONTENDERS=(
	"direct|direct to backend v1 (no proxy)|$V1_IP:$PORT_HTTP|:|:"
	"haproxy|HAProxy, 1 thread|$SM_NODE_IP:15080|c_l7_up haproxy|c_proxies_down"
	"nginx|nginx, 1 worker|$SM_NODE_IP:15081|c_l7_up nginx|c_proxies_down"
)
# The sockmesh L7 proxy (issue 3); BENCH_L7_SOCKMESH=0 leaves it out.
# c_l7_sockmesh_up starts the agent with --l7-listen in the node netns on
# bench/policies/l7.yaml; the client dials the Service VIP.
if [ "${BENCH_L7_SOCKMESH:-1}" = 1 ]; then
	S2_CONTENDERS+=("sockmesh|sockmesh L7 agent|$S2_VIP:80|c_l7_sockmesh_up|bench_agent_down")
fi

# ---- scenario 6: unary h2c through one L7 hop (bench/h2.sh) ----
S6_VIP=10.96.150.2		# bench/policies/l7.yaml, port named grpc
S6_CONTENDERS=(
	"direct|direct to backend v1 (no proxy)|$V1_IP:8081|:|:"
	"haproxy|HAProxy, 1 thread (h2 both sides)|$SM_NODE_IP:15082|c_h2_up haproxy|c_proxies_down"
	"nginx|nginx, 1 worker (http2 + grpc_pass)|$SM_NODE_IP:15083|c_h2_up nginx|c_proxies_down"
)
if [ "${BENCH_L7_SOCKMESH:-1}" = 1 ]; then
	S6_CONTENDERS+=("sockmesh|sockmesh L7 agent (h2c both sides)|$S6_VIP:80|c_l7_sockmesh_up|bench_agent_down")
fi

# ---- scenario 3: connect() rate to one VIP with N other services ----
# name|label|client pod|address|setup|teardown  (setup gets N appended)
S3_CONTENDERS=(
	"direct|direct to the backend IP|$POD_CLIENT|$SRV_IP:$PORT_ACCEPT|:|:"
	"sockmesh|sockmesh connect4|$POD_CLIENT|$S3_VIP|c_svc_agent_up|bench_agent_down"
	"sockmesh6|sockmesh connect6, dual-stack client (AF_INET6, ::ffff:VIP)|$POD_CLIENT|[::ffff:${S3_VIP%:*}]:${S3_VIP##*:}|c_svc_agent_up|bench_agent_down"
	"sockmesh-nosk|sockmesh connect4, --no-redirect (no sockhash, no sk_msg)|$POD_CLIENT|$S3_VIP|c_svc_agent_up --no-redirect|bench_agent_down"
	"iptables-nft|kube-proxy model, iptables-nft|$POD_NFT|$S3_VIP|c_kube_up nft $POD_NFT|c_kube_down nft $POD_NFT"
	"iptables-legacy|kube-proxy model, iptables-legacy|$POD_LEGACY|$S3_VIP|c_kube_up legacy $POD_LEGACY|c_kube_down legacy $POD_LEGACY"
)

# ---- setup / teardown ----
declare -ga BENCH_PROXIES=()

# c_agent_up POLICY MODE: the agent does not take part in the data path, so
# the placement (MODE) does not apply to it.
c_agent_up() {
	bench_agent_up "$1"
}

c_proxies_down() {
	[ ${#BENCH_PROXIES[@]} -eq 0 ] || bench_stop "${BENCH_PROXIES[@]}"
	BENCH_PROXIES=()
}

# c_proxy_start POD NAME PORT CMD...: start, wait for PORT, keep the PID.
c_proxy_start() {
	local pod=$1 name=$2 port=$3
	shift 3
	bench_spawn "$pod" "$@" >"$BENCH_TMP/$name.log" 2>&1
	BENCH_PROXIES+=("$SM_LAST_PID")
	bench_wait_listen "$pod" "$port" 5 "$SM_LAST_PID" || { sed 's/^/  | /' "$BENCH_TMP/$name.log" >&2; return 1; }
}

# HAProxy in TCP mode, one thread. Each argument is "BIND TARGET".
c_haproxy_tcp_cfg() {
	local out=$1 i=0 pair
	shift
	{
		printf 'global\n  nbthread 1\n  maxconn 4000\n'
		printf 'defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n'
		for pair in "$@"; do
			printf 'listen l%d\n  bind %s\n  server s%d %s\n' "$i" "${pair% *}" "$i" "${pair#* }"
			i=$((i + 1))
		done
	} >"$out"
}

# sidecar1: the client pod's sidecar dials the server pod.
# sidecar2: client sidecar -> server sidecar (15006/15007) -> server on loopback.
c_haproxy_up() {
	local shape=$1 mode=$2 cfg=$BENCH_TMP/haproxy-$1
	case "$shape" in
	sidecar1)
		c_haproxy_tcp_cfg "$cfg-client.cfg" "127.0.0.1:15001 $SRV_IP:$PORT_ECHO" \
			"127.0.0.1:15002 $SRV_IP:$PORT_SINK"
		;;
	sidecar2)
		c_haproxy_tcp_cfg "$cfg-client.cfg" "127.0.0.1:15001 $SRV_IP:15006" \
			"127.0.0.1:15002 $SRV_IP:15007"
		c_haproxy_tcp_cfg "$cfg-server.cfg" "$SRV_IP:15006 127.0.0.1:$PORT_ECHO" \
			"$SRV_IP:15007 127.0.0.1:$PORT_SINK"
		c_proxy_start "$POD_SERVER" haproxy-server 15006 haproxy -db -f "$cfg-server.cfg" || return 1
		;;
	*) return 1 ;;
	esac
	c_proxy_start "$POD_CLIENT" haproxy-client 15001 haproxy -db -f "$cfg-client.cfg" || return 1
	bench_place "$mode" "${BENCH_PROXIES[@]}"
}

# Scenario 3: the agent with N generated services plus the target.
# c_svc_agent_up [AGENT_FLAG]... N: the agent on N generated services.
c_svc_agent_up() {
	local n=${*: -1} f
	local -a flags=("${@:1:$#-1}")
	f=$BENCH_TMP/svc-$n.yaml
	[ -f "$f" ] || "$BENCH_DIR/gen-services.sh" yaml "$n" 2 "$S3_VIP=$SRV_IP:$PORT_ACCEPT" >"$f" || return 1
	BENCH_AGENT_ARGS=("${flags[@]}")
	bench_agent_up "$f"
	local ret=$?
	BENCH_AGENT_ARGS=()
	return $ret
}

# kube-proxy's iptables mode, modelled in the client pod's netns: nat OUTPUT
# -> KUBE-SERVICES -> KUBE-SVC-* -> KUBE-SEP-* (DNAT). kube-proxy hooks the
# node netns' PREROUTING for pod traffic; the rules and the linear walk are
# the same. The pod gets a route for the service range (a node has a
# default route); it stays on the bench's own bridge.
c_kube_up() {
	local kind=$1 pod=$2 n=$3 f=$BENCH_TMP/kube-$3.rules
	[ -f "$f" ] || "$BENCH_DIR/gen-services.sh" iptables "$n" 2 "$S3_VIP=$SRV_IP:$PORT_ACCEPT" >"$f" || return 1
	sm_pod_exec "$pod" ip route replace 10.96.0.0/12 dev eth0 || return 1
	sm_pod_exec "$pod" "iptables-$kind-restore" <"$f"
}

c_kube_down() {
	local kind=$1 pod=$2
	sm_pod_exec "$pod" "iptables-$kind" -t nat -F
	sm_pod_exec "$pod" "iptables-$kind" -t nat -X
	sm_pod_exec "$pod" ip route del 10.96.0.0/12 dev eth0 2>/dev/null
	return 0
}
