# sheaf - one Makefile, no recursion. Targets a new user can guess:
#   make run    install what is missing, build, start PostgreSQL and sheafd
#   make test   install what is missing, build, run the whole suite
#   make all | deps | unit | integration | asan | bench | format | clean

BUILD   ?= build
CC      ?= cc
PKGS    := libmicrohttpd jansson libpq uuid libcurl libcrypto zlib
CUNIT   := cunit

OPT     ?= -O2 -g
override CFLAGS += $(OPT) -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -MMD -MP \
           $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm -lpthread

ifeq ($(SAN),1)
override CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer \
           -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

LIB_SRC  := $(wildcard lib/*.c)
EXEC_SRC := $(wildcard executor/*.c)
SVC_SRC  := $(filter-out service/main.c,$(wildcard service/*.c))
API_SRC  := $(wildcard api/*.c)
CLI_SRC  := $(wildcard cli/*.c)
UNIT_SRC := $(wildcard tests/unit/*.c)

obj = $(patsubst %.c,$(BUILD)/%.o,$(1))

LIB_OBJ  := $(call obj,$(LIB_SRC))
EXEC_OBJ := $(call obj,$(EXEC_SRC))
SVC_OBJ  := $(call obj,$(SVC_SRC))
API_OBJ  := $(call obj,$(API_SRC))
CLI_OBJ  := $(call obj,$(CLI_SRC))
UNIT_OBJ := $(call obj,$(UNIT_SRC))

.PHONY: all deps run test unit integration asan bench format format-check \
        clean pg-start pg-stop

all: $(BUILD)/sheafd $(BUILD)/sheaf $(BUILD)/unit_tests $(BUILD)/s3_tool

$(BUILD)/sheafd: $(call obj,service/main.c) $(API_OBJ) $(SVC_OBJ) $(EXEC_OBJ) \
                 $(LIB_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The integration tests' driver of lib/s3 (tests/integration/test_s3.py).
$(BUILD)/s3_tool: $(call obj,tests/tools/s3_tool.c) $(LIB_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/sheaf: $(CLI_OBJ) $(LIB_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/unit_tests: $(UNIT_OBJ) $(EXEC_OBJ) $(LIB_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(shell pkg-config --libs $(CUNIT))

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

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

asan:
	$(MAKE) BUILD=build-asan SAN=1 OPT="-O1 -g" all

# W1-W6 of ../shared/bench through sheafd beside the peers; one table
# (BENCH_SIZE, BENCH_RUNS, BENCH_PEERS: see scripts/bench.sh).
bench: deps
	@$(MAKE) --no-print-directory -j$$(nproc) all
	@BUILD=$(abspath $(BUILD)) scripts/bench.sh

pg-start:
	@scripts/pg.sh start

pg-stop:
	@scripts/pg.sh stop

FORMAT_SRC = $(wildcard lib/*.[ch] executor/*.[ch] service/*.[ch] api/*.[ch] cli/*.[ch] tests/unit/*.[ch])

format:
	clang-format -i $(FORMAT_SRC)

format-check:
	clang-format --dry-run --Werror $(FORMAT_SRC)

clean:
	rm -rf build build-asan

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
