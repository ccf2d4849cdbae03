# epbench - one plain GNU Makefile.
#   make                      build ./epbench
#   make test                 build and run every unit and multi-process test
#   make run                  install missing dependencies, build, run the default benchmark
#   make SANITIZER=address    (or undefined, thread) instrumented build in build-<sanitizer>/
#   make compare-mpi RANKS=8  epbench next to MPI_Alltoallv doing the same traffic
#   make bench                the README's performance figures (scripts/bench.sh)
#   make CI=true              adds -Werror (set by .ci/run)

VERSION    := 0.1.0
CC         ?= cc
SANITIZER  ?=
BUILD      := build$(if $(SANITIZER),-$(SANITIZER))

WARNINGS   := -Wall -Wextra -Wshadow -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes
CFLAGS     ?= -O2 -g
CFLAGS     += -std=gnu11 $(WARNINGS) -MMD -MP -I. -DEP_VERSION='"$(VERSION)"'
ifneq ($(filter true 1,$(CI)),)
CFLAGS     += -Werror
endif
ifeq ($(SANITIZER),fuzzer)
# libFuzzer targets (make fuzz): clang, with ASan and UBSan on every object
CC         := clang
CFLAGS     += -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
FUZZ_LINK  := -fsanitize=fuzzer,address,undefined
else ifneq ($(SANITIZER),)
# a sanitizer report ends the process (UBSan would print and go on)
CFLAGS     += -fsanitize=$(SANITIZER) -fno-sanitize-recover=all -fno-omit-frame-pointer -DEP_SANITIZED
LDFLAGS    += -fsanitize=$(SANITIZER) -fno-sanitize-recover=all
endif
LDLIBS     := -lgsl -lgslcblas -lnuma -libverbs -lrdmacm -ljansson -lnettle -lpmix -lm -lpthread

DIRS       := cli cli/accept cli/cluster collectives collectives/transport reference reports
ALL_SRC    := $(foreach d,$(DIRS),$(wildcard $(d)/*.c))
TEST_SRC   := $(filter %_test.c,$(ALL_SRC))
MAIN_SRC   := cli/main.c
LIB_SRC    := $(filter-out $(TEST_SRC) $(MAIN_SRC),$(ALL_SRC))

LIB_OBJ    := $(LIB_SRC:%.c=$(BUILD)/%.o)
TEST_BIN   := $(TEST_SRC:%.c=$(BUILD)/%)
BIN        := $(if $(SANITIZER),$(BUILD)/epbench,epbench)

FUZZ_TARGETS := case routing options result suite npy manifest accept mindie trace eplb_load
FUZZ_SECONDS ?= 60
FUZZ_BIN   := $(FUZZ_TARGETS:%=build-fuzzer/tests/fuzz/fuzz_%)

.PHONY: all test test-fast test-long run deps clean compare-mpi bench fuzz example-plot FORCE
.SECONDARY:
all: $(BIN)

$(BIN): $(BUILD)/$(MAIN_SRC:.c=.o) $(BUILD)/libep.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/libep.a: $(LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

# The build's provenance (commit, compiler, flags, library versions) for
# every result: rewritten only when it changed.
$(BUILD)/build_info.h: FORCE
	@mkdir -p $(BUILD)
	@scripts/build-info.sh $@ "$(CC)" "$(CFLAGS)" "$(SANITIZER)"
$(BUILD)/reports/provenance.o: $(BUILD)/build_info.h
$(BUILD)/reports/provenance.o: CFLAGS += -I$(BUILD)
# the row kernels' products are rounded before they are added (combine_kernels.h)
$(BUILD)/collectives/combine_kernels.o: CFLAGS += -ffp-contract=off
# PMIx's headers live in a directory of their own (pkg-config pmix)
$(BUILD)/cli/cluster/pmix.o: CFLAGS += $(shell pkg-config --cflags pmix 2>/dev/null)
FORCE:

$(BUILD)/%_test: $(BUILD)/%_test.o $(BUILD)/libep.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The test suite: every <module>_test binary, then the end-to-end scripts in
# tests/ against the real binary. tests/run.sh prints "N passed, N failed".
test: deps
	@$(MAKE) --no-print-directory $(BIN) $(TEST_BIN)
	@EPBENCH=$(abspath $(BIN)) EP_BUILD=$(BUILD) tests/run.sh $(TEST_BIN)

# Unit tests and tests/fast.list: what CI runs under each sanitizer build.
test-fast: deps
	@$(MAKE) --no-print-directory $(BIN) $(TEST_BIN)
	@EPBENCH=$(abspath $(BIN)) EP_TEST_SCRIPTS=tests/fast.sh tests/run.sh $(TEST_BIN)

# The README's example plot: a tokens sweep at DeepEP's hidden size on 2 ranks.
example-plot: $(BIN)
	./$(BIN) intranode -r 2 -t 256:4096:x2 --hidden 7168 -k 8 -e 256 -n 20 -w 3 -q --json build/example-sweep.json
	./$(BIN) plot build/example-sweep.json -o reports/examples/sweep.svg

# Longer runs CI does not make: soaks, long sweeps, long fuzzing (README).
test-long: deps
	@$(MAKE) --no-print-directory $(BIN)
	@EPBENCH=$(abspath $(BIN)) tests/long/run.sh

# Fuzz targets of every parser of users' input (tests/fuzz/): libFuzzer with
# clang, ASan and UBSan, each run FUZZ_SECONDS from its seed corpus.
fuzz:
	@$(MAKE) --no-print-directory SANITIZER=fuzzer $(FUZZ_BIN)
	@scripts/run-fuzz.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

build-fuzzer/tests/fuzz/fuzz_%: build-fuzzer/tests/fuzz/fuzz_%.o build-fuzzer/libep.a
	$(CC) $(FUZZ_LINK) -o $@ $^ $(LDLIBS)

deps:
	@scripts/install-deps.sh

# The main benchmark: DeepEP's intranode test shape on 8 ranks.
run: deps
	@$(MAKE) --no-print-directory $(BIN)
	./$(BIN) intranode --num-ranks 8 --num-tokens 4096 --hidden 7168 --num-topk 8 --num-experts 256

# The same traffic through Open MPI's MPI_Alltoallv, measured in the same run.
compare-mpi:
	@scripts/install-deps.sh --with-mpi
	@scripts/compare-mpi.sh $(RANKS)

# The performance claims of the README, three times with their spread:
# ratios to the host's copy bandwidth, Open MPI and iperf3 (scripts/bench.sh).
bench:
	@scripts/bench.sh --repeat 3 --json build/bench.json

clean:
	rm -rf build build-* epbench

-include $(LIB_OBJ:.o=.d) $(TEST_BIN:=.d) $(BUILD)/cli/main.d $(wildcard build-fuzzer/tests/fuzz/*.d)
