# sheaf - one Makefile, no recursion. Targets a new user can guess:
#   make run    install what is missing, build, start PostgreSQL and sheafd
#   make test   install what is missing, build, run the whole suite
#   make all | deps | unit | integration | asan | bench | format | clean
#   make format-check   fail where a C file differs from .clang-format's form
#   make fuzz       libFuzzer harnesses (tests/fuzz), FUZZ_S seconds each

BUILD   ?= build
CC      ?= cc
PKGS    := libmicrohttpd jansson libpq uuid libcurl libcrypto zlib libzstd \
           libpcre2-8 libseccomp
CUNIT   := cunit

OPT     ?= -O2 -g
override CFLAGS += $(OPT) -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -MMD -MP \
           $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# snappy has no .pc on Debian
LDLIBS  := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lsnappy -lm -lpthread

ifeq ($(SAN),1)
override CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer \
           -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

# The fuzz build (make fuzz-build): clang, every object instrumented for
# libFuzzer's coverage and checked by ASan and UBSan; the harnesses link
# libFuzzer's main.
ifeq ($(SAN),fuzz)
override CFLAGS += -fsanitize=fuzzer-no-link,address,undefined \
           -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=fuzzer,address,undefined
endif

LIB_SRC  := $(wildcard lib/*.c)
EXEC_SRC := $(wildcard executor/*.c)
SVC_SRC  := $(filter-out service/main.c,$(wildcard service/*.c))
API_SRC  := $(wildcard api/*.c)
CLI_SRC  := $(wildcard cli/*.c)
UNIT_SRC := $(wildcard tests/unit/*.c)
FUZZ_SRC := $(filter-out tests/fuzz/fuzz_common.c,$(wildcard tests/fuzz/fuzz_*.c))

obj = $(patsubst %.c,$(BUILD)/%.o,$(1))

LIB_OBJ  := $(call obj,$(LIB_SRC))
EXEC_OBJ := $(call obj,$(EXEC_SRC))
SVC_OBJ  := $(call obj,$(SVC_SRC))
API_OBJ  := $(call obj,$(API_SRC))
CLI_OBJ  := $(call obj,$(CLI_SRC))
UNIT_OBJ := $(call obj,$(UNIT_SRC))

# One harness a target: tests/fuzz/fuzz_<target>.c -> $(BUILD)/fuzz_<target>.
FUZZ_BIN := $(patsubst tests/fuzz/%.c,$(BUILD)/%,$(FUZZ_SRC))
FUZZ_S   ?= 60

.PHONY: all deps run test unit integration asan bench format format-check \
        clean pg-start pg-stop fuzz fuzz-build fuzz-bins test-cluster \
        bench-cluster

all: $(BUILD)/sheafd $(BUILD)/sheaf $(BUILD)/unit_tests $(BUILD)/s3_tool \
     $(BUILD)/claim_load

$(BUILD)/sheafd: $(call obj,service/main.c) $(API_OBJ) $(SVC_OBJ) $(EXEC_OBJ) \
                 $(LIB_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The integration tests' driver of lib/s3 (tests/integration/test_s3.py).
$(BUILD)/s3_tool: $(call obj,tests/tools/s3_tool.c) $(LIB_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The claim path's load test (scripts/claim_load.sh, docs/scaling.md): not
# in 'all'; the script builds it.
$(BUILD)/claim_load: $(call obj,tests/tools/claim_load.c) $(SVC_OBJ) \
                     $(EXEC_OBJ) $(LIB_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/sheaf: $(CLI_OBJ) $(LIB_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The unit tests link api/ and service/ too (not service/main.c, which
# holds sheafd's main()).
$(BUILD)/unit_tests: $(UNIT_OBJ) $(API_OBJ) $(SVC_OBJ) $(EXEC_OBJ) $(LIB_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(shell pkg-config --libs $(CUNIT))

# The dashboard's files are embedded in ui.o with .incbin (api/ui.c).
UI_FILES := $(wildcard api/ui/*)
$(call obj,api/ui.c): $(UI_FILES)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

# The OpenAPI description is built into sheafd (.incbin in api/openapi.c).
$(BUILD)/api/openapi.o: api/openapi.yaml

# GET /metrics reports the git commit built (sheaf_build_info).
GIT_COMMIT := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
$(call obj,api/metrics.c): override CFLAGS += -DSHEAF_COMMIT='"$(GIT_COMMIT)"'
# ... and so does each node's row (GET /v1/nodes).
$(call obj,service/node.c): override CFLAGS += -DSHEAF_COMMIT='"$(GIT_COMMIT)"'

deps:
	@scripts/deps.sh

run: deps
	@$(MAKE) --no-print-directory -j$$(nproc) all
	@scripts/run.sh

# The whole suite: unit tests and the integration tests, both against the
# sanitizer build (ASan + UBSan), then the unit tests under valgrind.
test: deps
	@scripts/test.sh

unit: $(BUILD)/unit_tests
	$(BUILD)/unit_tests

integration: all
	@SHEAF_BIN=$(abspath $(BUILD)) scripts/integration.sh

# Three sheafd hosts in network namespaces, one lost mid-job (root only;
# tests/cluster). Also a stage of `make test`.
test-cluster: all
	@SHEAF_BIN=$(abspath $(BUILD)) scripts/cluster_test.sh

asan:
	$(MAKE) BUILD=build-asan SAN=1 OPT="-O1 -g" all

# The libFuzzer harnesses (tests/fuzz/fuzz_*.c) and the engine, built with
# clang under ASan and UBSan into build-fuzz/.
fuzz-build:
	$(MAKE) BUILD=build-fuzz CC=clang SAN=fuzz OPT="-O1 -g" fuzz-bins

# Every harness for FUZZ_S seconds (default 60), one after the other; what
# they learn is kept in build-fuzz/corpus/, crashes in build-fuzz/crashes/.
# scripts/fuzz.sh runs chosen targets: scripts/fuzz.sh csv expr.
fuzz: fuzz-build
	@FUZZ_S=$(FUZZ_S) FUZZ_KEEP=1 scripts/fuzz.sh

fuzz-bins: $(FUZZ_BIN)

# The harnesses link what they use from one archive of everything but main.
$(BUILD)/libsheaf_fuzz.a: $(API_OBJ) $(SVC_OBJ) $(EXEC_OBJ) $(LIB_OBJ) \
                          $(call obj,tests/unit/test_helpers.c \
                                     tests/fuzz/fuzz_common.c)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/fuzz_%: $(BUILD)/tests/fuzz/fuzz_%.o $(BUILD)/libsheaf_fuzz.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# W1-W6 of ../shared/bench through sheafd beside the peers; one table
# (BENCH_SIZE, BENCH_RUNS, BENCH_PEERS: see scripts/bench.sh). Then the
# service figures, a second table (scripts/bench_service.sh):
# BENCH_SERVICE=0 skips them, BENCH_SERVICE=only runs them alone.
bench: deps
	@$(MAKE) --no-print-directory -j$$(nproc) all
	@if [ "$(BENCH_SERVICE)" != only ]; then \
	    BUILD=$(abspath $(BUILD)) scripts/bench.sh; fi
	@if [ "$(BENCH_SERVICE)" != 0 ]; then \
	    BUILD=$(abspath $(BUILD)) scripts/bench_service.sh; fi

# W1, W3, W5 on 1, 2 and 3 hosts in network namespaces (root only; also
# BENCH_CLUSTER=1 make bench).
bench-cluster: deps
	@$(MAKE) --no-print-directory -j$$(nproc) all
	@BUILD=$(abspath $(BUILD)) scripts/bench_cluster.sh

pg-start:
	@scripts/pg.sh start

pg-stop:
	@scripts/pg.sh stop

# Every C file of the repo (sheaf vendors no C code): the layers, the CLI
# and every test, tool and fuzz harness. .clang-format is written for
# clang-format 14 (Debian 12's; scripts/deps.sh installs it): another
# version may format a few constructs differently.
CLANG_FORMAT ?= $(shell command -v clang-format-14 || echo clang-format)
FORMAT_SRC = $(sort $(shell find api cli executor lib service tests \
                 -name node_modules -prune -o -name '*.[ch]' -print))

# Rewrite the files in place.
format:
	$(CLANG_FORMAT) -i $(FORMAT_SRC)

# Change nothing; fail (naming each file and line) where a file differs
# from what `make format` would make of it.
format-check:
	$(CLANG_FORMAT) --dry-run --Werror $(FORMAT_SRC)

clean:
	rm -rf build build-asan build-fuzz

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
