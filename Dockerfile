# syntax=docker/dockerfile:1
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# sockmesh node image: sockmesh-agent, sockmeshctl, kubectl and the policy
# sync script on Debian 12. One image serves every container of the
# DaemonSet in scripts/k8s/ (agent, policy sync, init check).
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
	libjansson-dev libpcre2-dev libnghttp2-dev gcc make libc6-dev pkg-config \
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

# ---- kubectl for the policy sync container ----
# Debian 12's kubernetes-client is 1.20, far outside the version skew kubectl
# supports against a current EKS control plane: take the upstream release
# binary from dl.k8s.io and check its SHA-256. Pin KUBECTL_SHA256 to check
# against a value you trust rather than the one published next to the binary.
FROM debian:${DEBIAN_RELEASE} AS kubectl
ARG KUBECTL_VERSION=v1.31.4
ARG KUBECTL_SHA256=
ARG TARGETARCH
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends curl ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && arch="${TARGETARCH:-$(dpkg --print-architecture)}" \
 && url="https://dl.k8s.io/release/${KUBECTL_VERSION}/bin/linux/${arch}/kubectl" \
 && curl -fsSLo /kubectl "$url" \
 && sum="${KUBECTL_SHA256:-$(curl -fsSL "$url.sha256")}" \
 && echo "$sum  /kubectl" | sha256sum -c - \
 && chmod 0755 /kubectl

# ---- runtime ----
FROM debian:${DEBIAN_RELEASE}-slim
# curl: the probes ask the agent's admin socket for /healthz and /ready.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
	libbpf1 libelf1 zlib1g libyaml-0-2 libjansson4 libpcre2-8-0 libnghttp2-14 curl ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/sockmesh-agent /out/sockmeshctl /usr/local/bin/
COPY --from=kubectl /kubectl /usr/local/bin/kubectl
COPY scripts/k8s/sync-policy.sh /usr/local/bin/sockmesh-sync-policy
COPY scripts/k8s/check-node.sh /usr/local/bin/sockmesh-check-node
# The agent loads BPF and attaches to cgroups: it starts as root and drops
# every capability but CAP_BPF, CAP_NET_ADMIN, CAP_NET_BIND_SERVICE and
# CAP_PERFMON once attached.
ENTRYPOINT ["/usr/local/bin/sockmesh-agent"]
CMD ["--help"]
