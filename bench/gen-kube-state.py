#!/usr/bin/python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""gen-kube-state.py N EPS TOKEN [PROTO] > state.json

The state file of tests/e2e/kube_apiserver.py for bench scenario 5: the
objects bench/gen-services.sh writes as YAML (N Services "svc-I" in
namespace bench, VIP 10.97.I/256.I%256 port 80, one EndpointSlice each with
EPS endpoints at unroutable 10.128.0.0/9 addresses), plus the Namespace and
a VirtualService "svc-0" splitting 50/50 over svc-1 and svc-2 (its weights
are what the scenario changes). Istio's CRDs are installed. PROTO tcp
(default) or http: the port names of every Service and slice, and whether
the VirtualService's routes are tcp or http routes (http: every Service is
an L7 port of the proxy, the HTTP-heavy mesh).
"""
import json
import sys


def vip(i):
    i += 1
    return "10.97.%d.%d" % (i // 256, i % 256)


def ep(i, j, eps):
    k = i * eps + j + 1
    return "10.%d.%d.%d" % (128 + k // 65536, (k // 256) % 256, k % 256)


def main():
    n, eps, token = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    proto = sys.argv[4] if len(sys.argv) > 4 else "tcp"
    objs = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}}]
    for i in range(n):
        name = "svc-%d" % i
        objs.append({"apiVersion": "v1", "kind": "Service",
                     "metadata": {"name": name, "namespace": "bench"},
                     "spec": {"clusterIP": vip(i), "ports": [{"name": proto, "port": 80, "targetPort": 8080}]}})
        objs.append({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                     "metadata": {"name": name + "-1", "namespace": "bench",
                                  "labels": {"kubernetes.io/service-name": name}},
                     "addressType": "IPv4", "ports": [{"name": proto, "port": 8080}],
                     "endpoints": [{"addresses": [ep(i, j, eps)], "conditions": {"ready": True}}
                                   for j in range(eps)]})
    objs.append({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                 "metadata": {"name": "svc-0", "namespace": "bench"},
                 "spec": {"hosts": ["svc-0"], proto: [{"route": [
                     {"destination": {"host": "svc-1", "port": {"number": 80}}, "weight": 50},
                     {"destination": {"host": "svc-2", "port": {"number": 80}}, "weight": 50}]}]}})
    json.dump({"tokens": [token], "crds": True, "objects": objs}, sys.stdout)


if __name__ == "__main__":
    main()
