# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# shellcheck shell=bash
#
# Sourced (after lib.sh and mesh.sh) by the e2e tests of the agent on the
# Kubernetes API: the test API server (kube_apiserver.py) with a CA made here.
#
#   kube_certs DIR                 DIR/ca.{crt,key} and the server's certificate
#                                  DIR/srv.{crt,key} (IP:127.0.0.1)
#   kube_client_cert DIR NAME CN [CA]  DIR/NAME.{crt,key}: a client certificate
#                                  signed by CA (DIR/ca; "self": self-signed)
#   kube_kubeconfig NAME USER_YAML $K/NAME: a kubeconfig for the server at $PORT
#                                  (CA ca.crt) whose user is USER_YAML (indented)
#   api_start [PORT [ARGS...]]     the server on $K (its state survives restarts
#                                  in $K/state.json); API_PID, PORT
#   api VERB JSON                  the server's test control (POST /_control/VERB)
#   api_get WHAT                   GET /_control/WHAT (stats, requests)
#   apply OBJ... / delete OBJ...   create-or-update / delete through the server
#   converge DESC POD VIP:PORT EXPECTED   connects until they give EXPECTED (10 s)
#
# K (the directory of certificates and state) and APISERVER are set here.

APISERVER=$E2E_ROOT/tests/e2e/kube_apiserver.py
KUBE_EC=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)

kube_certs() {
	openssl req -x509 "${KUBE_EC[@]}" -keyout "$1/ca.key" -out "$1/ca.crt" -days 1 \
		-subj /CN=sockmesh-test-ca 2>/dev/null &&
	openssl req "${KUBE_EC[@]}" -keyout "$1/srv.key" -out "$1/srv.csr" -subj /CN=kube-apiserver 2>/dev/null &&
	openssl x509 -req -in "$1/srv.csr" -CA "$1/ca.crt" -CAkey "$1/ca.key" -CAcreateserial \
		-out "$1/srv.crt" -days 1 -extfile <(printf 'subjectAltName=IP:127.0.0.1') 2>/dev/null
}

kube_client_cert() {
	local d=$1 name=$2 cn=$3 ca=${4:-ca}
	if [ "$ca" = self ]; then
		openssl req -x509 "${KUBE_EC[@]}" -keyout "$d/$name.key" -out "$d/$name.crt" -days 1 \
			-subj "/O=system:nodes/CN=$cn" 2>/dev/null
		return
	fi
	openssl req "${KUBE_EC[@]}" -keyout "$d/$name.key" -out "$d/$name.csr" \
		-subj "/O=system:nodes/CN=$cn" 2>/dev/null &&
	openssl x509 -req -in "$d/$name.csr" -CA "$d/$ca.crt" -CAkey "$d/$ca.key" -CAcreateserial \
		-out "$d/$name.crt" -days 1 -extfile <(printf 'extendedKeyUsage=clientAuth') 2>/dev/null
}

kube_kubeconfig() {
	cat >"$K/$1" <<EOF
apiVersion: v1
kind: Config
current-context: test
clusters:
- name: test-cluster
  cluster:
    server: https://127.0.0.1:$PORT
    certificate-authority: ca.crt
contexts:
- name: test
  context: {cluster: test-cluster, user: agent}
users:
- name: agent
  user:
$2
EOF
}

api_start() {
	sm_spawn /usr/bin/python3 "$APISERVER" --listen "127.0.0.1:${1:-0}" --cert "$K/srv.crt" --key "$K/srv.key" \
		--state "$K/state.json" --token token-1 --bookmark-s 0.5 "${@:2}" >"$K/api.out" 2>&1
	API_PID=$SM_LAST_PID
	e2e_wait_for_line "$K/api.out" '^ready' 30 || { echo "FAIL: API server"; cat "$K/api.out"; exit 1; }
	PORT=$(sed -n 's/^ready .*:\([0-9]*\)$/\1/p' "$K/api.out")
}

api_stop() {
	kill "$API_PID" 2>/dev/null
	wait "$API_PID" 2>/dev/null
}

api() {
	curl -sS --fail --cacert "$K/ca.crt" -X POST "https://127.0.0.1:$PORT/_control/$1" -d "$2" >/dev/null
}

api_get() {
	curl -sS --fail --cacert "$K/ca.crt" "https://127.0.0.1:$PORT/_control/$1"
}

apply() { api apply "{\"objects\": [$(IFS=,; echo "$*")]}"; }
delete() { api delete "{\"objects\": [$(IFS=,; echo "$*")]}"; }

converge() {
	local _ out n
	n=$(grep -oE '=[0-9]+' <<<"$4" | tr -d = | awk '{ s += $1 } END { print s }')
	for _ in $(seq 1 300); do
		out=$(who "$2" "$3" "$n")
		[ "$out" = "$4" ] && break
		sleep 0.1
	done
	e2e_assert_eq "$1" "$4" "$out"
}
