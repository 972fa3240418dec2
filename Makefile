# rw — top-level build.  `make` builds the programs into build/; `make check`
# runs unit, functional, sanitizer and fuzz tests; `make demo` runs a lab
# migration on sample data; `make bench` runs the benchmarks.  Each target
# first makes sure its Debian packages are there (scripts/deps).

CC       ?= gcc
BUILD    ?= build
SAN      ?=
OPT      ?= -O2
CFLAGS   ?= $(OPT) -g
WARN      = -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-format-nonliteral \
            -Wstrict-prototypes -Wmissing-prototypes
CPPFLAGS += -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -Iworker -I/usr/include/blkid
ALL_CFLAGS = -std=gnu11 $(WARN) $(CFLAGS) $(SAN) -pthread -fno-strict-aliasing

# Libraries linked statically where Debian ships a .a, so the programs can
# go into the worker's initramfs with nothing but libc; the sanitizer build
# links everything dynamically.
RWLIBS_STATIC = -lssl -lcrypto -llz4 -lxxhash -ljansson -lblkid -lz
ifeq ($(SAN),)
LDLIBS_RW = -Wl,-Bstatic $(RWLIBS_STATIC) -Wl,-Bdynamic -ldl -pthread
else
LDLIBS_RW = $(RWLIBS_STATIC) -ldl -pthread
endif

PROG_SRCS = $(wildcard worker/rw-*.c)
LIB_SRCS  = $(filter-out $(PROG_SRCS),$(wildcard worker/*.c))
LIB_OBJS  = $(LIB_SRCS:worker/%.c=$(BUILD)/obj/%.o)
PROGS     = $(PROG_SRCS:worker/%.c=$(BUILD)/%)
UNIT_SRCS = $(wildcard tests/unit/test-*.c)
UNITS     = $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/unit/%)
HDRS      = $(wildcard worker/*.h)

.PHONY: all deps check check-unit check-functional check-asan check-fuzz \
        check-boot check-prepare check-all demo bench clean lint iso prepare \
        prepare-native

all: $(PROGS)

deps:
	@scripts/deps build

$(BUILD)/obj/%.o: worker/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/librw.a: $(LIB_OBJS)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/rw-%: $(BUILD)/obj/rw-%.o $(BUILD)/librw.a
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS_RW)

$(BUILD)/obj/rw-%.o: worker/rw-%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/unit/%: tests/unit/%.c tests/unit/unit.h $(BUILD)/librw.a $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Itests/unit $(ALL_CFLAGS) -Wno-missing-prototypes -o $@ $< \
	  $(BUILD)/librw.a $$(pkg-config --cflags --libs check) $(LDLIBS_RW)

# ---- tests ----

check: deps
	@scripts/deps test
	$(MAKE) check-unit check-functional
	$(MAKE) check-asan
	$(MAKE) check-fuzz
	@echo "make check: all passed"

check-unit: $(UNITS)
	@tests/unit/run $(BUILD)/unit

check-functional: $(PROGS)
	@tests/functional/run $(BUILD)

# The unit and functional suites again under ASan + UBSan.
check-asan:
	$(MAKE) BUILD=build-asan CC=gcc OPT=-O1 \
	  SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" \
	  check-unit check-functional

check-fuzz:
	@tests/fuzz/run

# Slow tests: qemu boots of the worker ISO, and guest preparation.
check-boot:
	@tests/boot/run

check-prepare:
	$(MAKE) -C drivers-inject check

check-all: check check-boot check-prepare

lint:
	@tests/lint

# ---- the lab migration and benchmarks ----

demo: deps all
	@scripts/deps test
	@scripts/demo $(BUILD)

bench: deps all prepare
	@scripts/deps test bench
	@tests/bench/run $(BUILD)
	@tests/bench/prepare-bench

iso:
	@iso/build

prepare:
	$(MAKE) -C drivers-inject

# The worker's rw-prepare (native backend only, no libguestfs), for the ISO.
prepare-native:
	$(MAKE) -C drivers-inject native
	@mkdir -p $(BUILD)
	cp drivers-inject/rw-prepare-native $(BUILD)/rw-prepare

clean:
	rm -rf build build-asan build-fuzz
	$(MAKE) -C drivers-inject clean
