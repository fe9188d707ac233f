# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# sockmesh build. `make` builds everything into $(OUTPUT); `make V=1` shows
# the commands. Loading and attaching belong to the agent, not to make.

OUTPUT ?= build
CC ?= cc
CLANG ?= clang
BPFTOOL ?= bpftool
ARCH ?= $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
# vmlinux.h from the running kernel's BTF; override VMLINUX_BTF or VMLINUX_H.
VMLINUX_BTF ?= /sys/kernel/btf/vmlinux
VMLINUX_H ?= $(OUTPUT)/vmlinux.h

ifeq ($(V),1)
Q =
msg =
else
Q = @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

.DELETE_ON_ERROR:
.SUFFIXES:
# Intermediates (BPF objects, skeletons) are kept: a second make does nothing.
.SECONDARY:

# Module headers by path ("policy/policy.h"): a wrong arrow shows in the include line.
INCLUDES := -Iuser -Iinclude -I$(OUTPUT)
# CFLAGS is the user's (make CFLAGS=-O0, CC=clang); the project's flags are
# SM_CFLAGS, always applied. A warning flag goes in only where the
# compiler knows it (clang has no -Wformat-truncation).
CFLAGS ?= -O2 -g
cc_has_warning = $(shell $(CC) -Werror -W$(1) -x c -c /dev/null -o /dev/null 2>/dev/null && echo -Wno-$(1))
SM_WARN := -Wall -Wextra -Werror -Wno-unused-parameter $(call cc_has_warning,format-truncation)
SM_CFLAGS := -std=gnu11 $(SM_WARN) -D_GNU_SOURCE -fno-strict-aliasing $(INCLUDES) -MMD -MP
LDLIBS_BPF := -lbpf -lelf -lz
LDLIBS_YAML := -lyaml
# libcurl: the Kubernetes API client (user/kube: TLS, HTTP/2 for all watches on one connection)
# libnghttp2: the L7 proxy's HTTP/2 (user/proxy/proxy_h2.c)
LDLIBS_JSON := -ljansson -lpcre2-8 -lpthread -lcurl -lnghttp2
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

BPF_CFLAGS := -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_$(ARCH) \
	      -Iinclude -Ibpf -I$(OUTPUT) -Wall -Werror -Wno-unused-function \
	      -Wno-compare-distinct-pointer-types -MMD -MP

# ---- sources ----
# maps.bpf.c holds the map definitions and must be the first link input
# (see bpf/lib/maps.h: libbpf 1.1's linker resolves externs only that way).
BPF_SRCS := bpf/maps.bpf.c $(filter-out bpf/maps.bpf.c,$(sort $(wildcard bpf/*.bpf.c)))
BPF_OBJS := $(patsubst bpf/%.bpf.c,$(OUTPUT)/bpf/%.bpf.o,$(BPF_SRCS))
POLICY_SRCS := $(sort $(wildcard user/policy/*.c))
COMMON_SRCS := $(sort $(wildcard user/common/*.c))
PROXY_SRCS := $(sort $(wildcard user/proxy/*.c))
COMPILE_SRCS := $(sort $(wildcard user/compile/*.c))
KUBE_SRCS := $(sort $(wildcard user/kube/*.c))
AGENT_SRCS := $(sort $(wildcard user/agent/*.c))
CLI_SRCS := $(sort $(wildcard user/cli/*.c))
UNIT_SRCS := $(sort $(wildcard tests/unit/*.c))
BPFT_PROG_SRCS := $(sort $(wildcard tests/bpf/progs/*.bpf.c))
BPFT_SRCS := $(sort $(wildcard tests/bpf/*.c))
TOOL_SRCS := $(sort $(wildcard tests/tools/*.c))

LIB_SRCS := $(POLICY_SRCS) $(COMMON_SRCS) $(COMPILE_SRCS) $(PROXY_SRCS) $(KUBE_SRCS)
LIB_OBJS := $(patsubst %.c,$(OUTPUT)/obj/%.o,$(LIB_SRCS))
AGENT_OBJS := $(patsubst %.c,$(OUTPUT)/obj/%.o,$(AGENT_SRCS))
CLI_OBJS := $(patsubst %.c,$(OUTPUT)/obj/%.o,$(CLI_SRCS))
UNIT_OBJS := $(patsubst %.c,$(OUTPUT)/obj/%.o,$(UNIT_SRCS))
# agent modules without the skeleton that the unit tests drive
UNIT_AGENT_SRCS := user/agent/adminwork.c user/agent/members.c
SAN_OBJS := $(patsubst %.c,$(OUTPUT)/san/%.o,$(UNIT_SRCS) $(LIB_SRCS) $(UNIT_AGENT_SRCS))
BPFT_SKELS := $(patsubst tests/bpf/progs/%.bpf.c,$(OUTPUT)/%.skel.h,$(BPFT_PROG_SRCS))
BPFT_OBJS := $(patsubst %.c,$(OUTPUT)/obj/%.o,$(BPFT_SRCS))
TOOLS := $(patsubst tests/tools/%.c,$(OUTPUT)/tools/%,$(TOOL_SRCS))

AGENT := $(OUTPUT)/sockmesh-agent
CLI := $(OUTPUT)/sockmeshctl
SKEL := $(OUTPUT)/sockmesh.skel.h

.PHONY: all
all: $(AGENT) $(CLI) $(OUTPUT)/unit-tests $(OUTPUT)/bpf-tests $(TOOLS)

$(OUTPUT) $(OUTPUT)/bpf $(OUTPUT)/tools:
	$(Q)mkdir -p $@

$(VMLINUX_H): | $(OUTPUT)
	$(call msg,GEN,$@)
	$(Q)$(BPFTOOL) btf dump file $(VMLINUX_BTF) format c > $@

# ---- BPF: one object per hook, linked so all programs share the maps ----
$(OUTPUT)/bpf/%.bpf.o: bpf/%.bpf.c $(VMLINUX_H) | $(OUTPUT)/bpf
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(OUTPUT)/sockmesh.bpf.o: $(BPF_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(BPFTOOL) gen object $@ $^

$(SKEL): $(OUTPUT)/sockmesh.bpf.o
	$(call msg,SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name sockmesh > $@

# BPF test programs (include production decision code from bpf/lib).
$(OUTPUT)/bpf/test_%.bpf.o: tests/bpf/progs/test_%.bpf.c $(VMLINUX_H) | $(OUTPUT)/bpf
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(OUTPUT)/test_%.skel.h: $(OUTPUT)/bpf/test_%.bpf.o
	$(call msg,SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name test_$* > $@

# ---- user space ----
$(OUTPUT)/obj/%.o: %.c | $(OUTPUT)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(SM_CFLAGS) $(CFLAGS) -c $< -o $@

$(OUTPUT)/san/%.o: %.c | $(OUTPUT)
	$(call msg,CC-SAN,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(SM_CFLAGS) $(CFLAGS) $(SAN_FLAGS) -c $< -o $@

# Tests run every assertion on purpose: `!ASSERT_EQ(a) | !ASSERT_EQ(b)`.
$(UNIT_OBJS) $(filter $(OUTPUT)/san/tests/%,$(SAN_OBJS)): SM_CFLAGS += $(call cc_has_warning,bitwise-instead-of-logical)

# The unit runner works in the source tree (test data paths are relative to it).
$(OUTPUT)/obj/tests/unit/main.o $(OUTPUT)/san/tests/unit/main.o: SM_CFLAGS += -DSM_SRCDIR='"$(CURDIR)"'

# Agent and CLI sources include the skeleton.
$(AGENT_OBJS) $(CLI_OBJS): $(SKEL)
$(BPFT_OBJS): $(SKEL) $(BPFT_SKELS)

# jemalloc: the agent's initial sync allocates and frees millions of small
# objects on several threads (list pages, parsed objects); glibc's malloc
# spent ~20% of that CPU in its own bookkeeping (malloc_consolidate,
# unlink_chunk). Envoy links tcmalloc for the same reason. The ASan agent
# keeps the sanitizer's allocator.
LDLIBS_MALLOC := -ljemalloc

$(AGENT): $(AGENT_OBJS) $(LIB_OBJS)
	$(call msg,LD,$@)
	$(Q)$(CC) $(SM_CFLAGS) $(CFLAGS) $^ -o $@ $(LDLIBS_BPF) $(LDLIBS_YAML) $(LDLIBS_JSON) -lpthread \
		$(LDLIBS_MALLOC)

# The agent under ASan+UBSan+LSan, for one e2e run in `make test`.
SAN_AGENT_OBJS := $(patsubst %.c,$(OUTPUT)/san/%.o,$(AGENT_SRCS) $(LIB_SRCS))
$(filter $(OUTPUT)/san/user/agent/%,$(SAN_AGENT_OBJS)): $(SKEL)
$(OUTPUT)/sockmesh-agent-san: $(SAN_AGENT_OBJS)
	$(call msg,LD,$@)
	$(Q)$(CC) $(SM_CFLAGS) $(CFLAGS) $(SAN_FLAGS) $^ -o $@ $(LDLIBS_BPF) $(LDLIBS_YAML) $(LDLIBS_JSON)

$(CLI): $(CLI_OBJS) $(LIB_OBJS)
	$(call msg,LD,$@)
	$(Q)$(CC) $(SM_CFLAGS) $(CFLAGS) $^ -o $@ $(LDLIBS_BPF) $(LDLIBS_YAML) $(LDLIBS_JSON)

$(OUTPUT)/unit-tests: $(UNIT_OBJS) $(LIB_OBJS) $(patsubst %.c,$(OUTPUT)/obj/%.o,$(UNIT_AGENT_SRCS))
	$(call msg,LD,$@)
	$(Q)$(CC) $(SM_CFLAGS) $(CFLAGS) $^ -o $@ $(LDLIBS_BPF) $(LDLIBS_YAML) $(LDLIBS_JSON) -lm

$(OUTPUT)/unit-tests-san: $(SAN_OBJS)
	$(call msg,LD,$@)
	$(Q)$(CC) $(SM_CFLAGS) $(CFLAGS) $(SAN_FLAGS) $^ -o $@ $(LDLIBS_BPF) $(LDLIBS_YAML) $(LDLIBS_JSON) -lm

# the agent's map writer is tested against real maps
$(OUTPUT)/bpf-tests: $(BPFT_OBJS) $(LIB_OBJS) $(OUTPUT)/obj/user/agent/apply.o
	$(call msg,LD,$@)
	$(Q)$(CC) $(SM_CFLAGS) $(CFLAGS) $^ -o $@ $(LDLIBS_BPF) $(LDLIBS_YAML) $(LDLIBS_JSON)

# ... and under ASan+UBSan, in `make test` (UBSan sees what a plain build
# runs unnoticed on x86, e.g. a misaligned read of a map key)
BPFT_SAN_OBJS := $(patsubst %.c,$(OUTPUT)/san/%.o,$(BPFT_SRCS) $(LIB_SRCS) user/agent/apply.c)
$(filter $(OUTPUT)/san/tests/bpf/%,$(BPFT_SAN_OBJS)): $(SKEL) $(BPFT_SKELS)
$(OUTPUT)/san/user/agent/apply.o: $(SKEL)
$(OUTPUT)/bpf-tests-san: $(BPFT_SAN_OBJS)
	$(call msg,LD,$@)
	$(Q)$(CC) $(SM_CFLAGS) $(CFLAGS) $(SAN_FLAGS) $^ -o $@ $(LDLIBS_BPF) $(LDLIBS_YAML) $(LDLIBS_JSON)

$(OUTPUT)/tools/%: tests/tools/%.c | $(OUTPUT)/tools
	$(call msg,CC,$@)
	$(Q)$(CC) $(SM_CFLAGS) $(CFLAGS) $< -o $@ -lpthread $(TOOL_LDLIBS)

# the compiler's share of an L7 delta at mesh scale (no BPF, no root)
$(OUTPUT)/tools/sm-bench-l7delta: tests/tools/sm-bench-l7delta.c $(LIB_OBJS) | $(OUTPUT)/tools
	$(call msg,LD,$@)
	$(Q)$(CC) $(SM_CFLAGS) $(CFLAGS) $< $(LIB_OBJS) -o $@ $(LDLIBS_BPF) $(LDLIBS_YAML) $(LDLIBS_JSON) -lm

# the h2c load generator and backend of bench scenario 6
$(OUTPUT)/tools/sm-bench-h2: TOOL_LDLIBS := -lnghttp2

# ---- packages (Debian 12), idempotent ----
# nginx-light is a test backend (run by the tests in a pod namespace with
# their own config); policy-rc.d keeps apt from starting it as a service.
# openjdk-17-jdk-headless and python3: the dual-stack clients of
# tests/e2e/test_dualstack.sh (a JVM opens AF_INET6 sockets by default);
# python3-grpcio: the real gRPC peers of tests/e2e/test_l7_matrix.sh;
# libcurl4-openssl-dev: the Kubernetes API client (user/kube); openssl and
# python3-h2: the test API server's CA and HTTP/2 (tests/e2e/kube_apiserver.py);
# libjemalloc-dev: the agent's allocator (see LDLIBS_MALLOC).
DEPS_PKGS := clang llvm libbpf-dev libelf-dev zlib1g-dev bpftool libyaml-dev \
	     libjansson-dev libpcre2-dev iproute2 gcc make libc6-dev pkg-config jq util-linux \
	     curl nginx-light graphviz python3-grpcio libcurl4-openssl-dev openssl python3-h2 \
	     libnghttp2-dev nghttp2-client libjemalloc-dev \
	     libclang-rt-14-dev openjdk-17-jdk-headless python3
.PHONY: deps
deps:
	@scripts/apt-install.sh $(DEPS_PKGS)

# ---- tests ----
.PHONY: test test-unit test-san test-bpf test-e2e
test: deps
	$(Q)$(MAKE) --no-print-directory all $(OUTPUT)/unit-tests-san $(OUTPUT)/sockmesh-agent-san \
		$(OUTPUT)/bpf-tests-san fuzz-build
	$(Q)SM_BUILD=$(OUTPUT) tests/run.sh

test-unit: $(OUTPUT)/unit-tests
	$(Q)$(OUTPUT)/unit-tests

test-san: $(OUTPUT)/unit-tests-san
	$(Q)$(OUTPUT)/unit-tests-san

test-bpf: $(OUTPUT)/bpf-tests
	$(Q)$(OUTPUT)/bpf-tests

test-e2e: all
	$(Q)SM_BUILD=$(OUTPUT) tests/run.sh e2e

# ---- demo ----
.PHONY: demo
demo: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)SM_BUILD=$(OUTPUT) scripts/demo.sh

.PHONY: clean
clean:
	$(call msg,CLEAN,$(OUTPUT))
	$(Q)rm -rf $(OUTPUT)

-include $(shell find $(OUTPUT) -name '*.d' 2>/dev/null)

# ---- fuzzing (libFuzzer, clang) ----
# make fuzz [FUZZ_TIME=60]: every target for FUZZ_TIME seconds; `make test`
# runs each for a few seconds so a regression fails CI.
FUZZ_TIME ?= 60
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(OUTPUT)/fuzz/%,$(FUZZ_SRCS))
FUZZ_CFLAGS := -g -O1 -std=gnu11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
	       -fno-sanitize-recover=undefined $(INCLUDES)
FUZZ_LIB := $(filter-out user/proxy/proxy%.c,$(LIB_SRCS))
# fuzz_h2 drives a whole proxy (workers, HTTP/2 bridges) over loopback
$(OUTPUT)/fuzz/fuzz_h2: FUZZ_LIB := $(LIB_SRCS)
$(OUTPUT)/fuzz/fuzz_h2: $(PROXY_SRCS)
# one clang call compiles and links each target: it depends on every header
FUZZ_HDRS := $(wildcard include/*.h user/*/*.h tests/unit/*.h)

$(OUTPUT)/fuzz/%: tests/fuzz/%.c $(FUZZ_LIB) $(FUZZ_HDRS) $(SKEL)
	$(call msg,FUZZ,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) $< $(FUZZ_LIB) -o $@ $(LDLIBS_BPF) $(LDLIBS_YAML) $(LDLIBS_JSON) -lm

.PHONY: fuzz fuzz-build
fuzz-build: $(FUZZ_BINS)
fuzz: deps fuzz-build
	$(Q)SM_BUILD=$(OUTPUT) tests/fuzz/run.sh $(FUZZ_TIME)

# ---- benchmarks (root; own netns, cgroup and pin dir) ----
# make bench [QUICK=1]: build/bench/results.md and build/bench/*.png.
# The contenders (HAProxy, nginx, iptables, gnuplot) come from deps-bench,
# not from deps.
DEPS_BENCH_PKGS := haproxy nginx gnuplot-nox iptables procps util-linux
.PHONY: deps-bench bench
deps-bench: deps
	@scripts/apt-install.sh $(DEPS_BENCH_PKGS)

bench: deps-bench
	$(Q)$(MAKE) --no-print-directory $(AGENT) $(CLI) $(TOOLS)
	$(Q)SM_BUILD=$(OUTPUT) QUICK=$(QUICK) bench/run.sh

# ---- soak (root; own netns, cgroup and pin dir) ----
# make soak [SOAK_S=120]: mixed L4 + L7 load, backend flaps, policy reloads
# and one agent restart; reports totals, failures by reason, agent RSS/fds
# and map entries before/after (scripts/soak.sh).
SOAK_S ?= 120
.PHONY: soak
soak: deps
	$(Q)$(MAKE) --no-print-directory $(AGENT) $(CLI) $(TOOLS)
	$(Q)SM_BUILD=$(OUTPUT) SOAK_S=$(SOAK_S) scripts/soak.sh
