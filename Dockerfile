# syntax=docker/dockerfile:1
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# sockmesh node image: sockmesh-agent, sockmeshctl and the node check on
# Debian 12. One image serves both containers of the DaemonSet in
# scripts/k8s/ (init check, agent). No kubectl: the agent is an API client
# itself (libcurl).
#
#   docker build -t sockmesh:local .
#   docker build --build-arg VMLINUX_H=path/in/context/vmlinux.h -t sockmesh:local .
#
# The BPF programs include vmlinux.h. By default the build stage generates it
# from the build host's /sys/kernel/btf/vmlinux (visible inside `docker
# build`), so the build host needs a BTF kernel; any BTF kernel will do, CO-RE
# relocates the programs on the nodes. Without one, pass a checked-in
# vmlinux.h (`bpftool btf dump file /sys/kernel/btf/vmlinux format c` on a
# 6.1+ machine) with --build-arg VMLINUX_H (a path inside the build context).

ARG DEBIAN_RELEASE=bookworm

# ---- build: the same packages as `make deps`, minus the test-only ones ----
FROM debian:${DEBIAN_RELEASE} AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
	clang llvm libbpf-dev libelf-dev zlib1g-dev bpftool libyaml-dev \
	libjansson-dev libpcre2-dev libcurl4-openssl-dev libnghttp2-dev libjemalloc-dev gcc make libc6-dev \
	pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
ARG VMLINUX_H=
RUN if [ -n "$VMLINUX_H" ]; then \
	test -s "$VMLINUX_H" || { echo "VMLINUX_H=$VMLINUX_H: no such file in the build context" >&2; exit 1; }; \
	set -- VMLINUX_H="/src/$VMLINUX_H"; \
    elif [ ! -r /sys/kernel/btf/vmlinux ]; then \
	echo "the build host has no /sys/kernel/btf/vmlinux: pass --build-arg VMLINUX_H=<vmlinux.h in the context>" >&2; exit 1; \
    fi; \
    make -j"$(nproc)" OUTPUT=/out "$@" /out/sockmesh-agent /out/sockmeshctl

# ---- runtime ----
FROM debian:${DEBIAN_RELEASE}-slim
# curl: the probes ask the agent's admin socket for /healthz and /ready;
# libcurl4: the agent's Kubernetes API client; libnghttp2-14: the L7 proxy's HTTP/2;
# libjemalloc2: the agent's allocator.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
	libbpf1 libelf1 zlib1g libyaml-0-2 libjansson4 libpcre2-8-0 libcurl4 libnghttp2-14 libjemalloc2 \
	curl ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/sockmesh-agent /out/sockmeshctl /usr/local/bin/
COPY scripts/k8s/check-node.sh /usr/local/bin/sockmesh-check-node
# The agent loads BPF and attaches to cgroups: it starts as root and drops
# every capability but CAP_BPF, CAP_NET_ADMIN, CAP_NET_BIND_SERVICE and
# CAP_PERFMON once attached.
ENTRYPOINT ["/usr/local/bin/sockmesh-agent"]
CMD ["--help"]
