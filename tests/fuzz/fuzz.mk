# fuzz.mk - builds the libFuzzer targets with clang, apart from the main (gcc) build.
#
#   make -f tests/fuzz/fuzz.mk OUT=DIR [-j2]        builds DIR/fuzz_{http,params,startup,sse,term,ws}
#
# The library's sources are compiled here directly, instrumented for coverage
# (-fsanitize=fuzzer-no-link) and checked by ASan and UBSan; UBSan findings abort, so
# libFuzzer records them as crashes. Objects are rebuilt when a source or header changes.
# tests/fuzz/run.sh calls this, then runs the targets.
REPO := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/../..)
OUT ?= $(REPO)/build/fuzz
CLANG ?= clang
SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
PKGS := libmicrohttpd jansson nettle
CFLAGS := -std=gnu11 -g -O1 -Wall -Wextra $(SAN) -fsanitize=fuzzer-no-link \
	-I$(REPO)/include -I$(REPO)/src -I$(REPO)/cli $(shell pkg-config --cflags $(PKGS))
LDFLAGS := $(SAN) -fsanitize=fuzzer
LIBS := $(shell pkg-config --libs $(PKGS)) -lwslay -lpthread

# Every library source under src/, so a new subsystem links into the fuzz targets unlisted.
LIB_SRC := $(notdir $(basename $(wildcard $(REPO)/src/*.c)))
LIB_OBJ := $(LIB_SRC:%=$(OUT)/obj/%.o) $(OUT)/obj/web_assets.o
WEB := $(wildcard $(REPO)/web/*)
HEADERS := $(wildcard $(REPO)/include/*.h $(REPO)/src/*.h $(REPO)/tests/fuzz/*.h) $(REPO)/cli/sse.h
TARGETS := http params startup sse term ws

all: $(TARGETS:%=$(OUT)/fuzz_%)

$(OUT)/obj/%.o: $(REPO)/src/%.c $(HEADERS) | $(OUT)/obj
	$(CLANG) $(CFLAGS) -c $< -o $@

$(OUT)/web_assets.c: $(WEB) | $(OUT)/obj
	cmake -DOUT=$@ -DWEB_DIR=$(REPO)/web -P $(REPO)/web/embed.cmake

$(OUT)/obj/web_assets.o: $(OUT)/web_assets.c $(REPO)/src/web.h
	$(CLANG) $(CFLAGS) -c $< -o $@

$(OUT)/obj/sse.o: $(REPO)/cli/sse.c $(HEADERS) | $(OUT)/obj
	$(CLANG) $(CFLAGS) -c $< -o $@

$(OUT)/obj/fuzz_%.o: $(REPO)/tests/fuzz/fuzz_%.c $(HEADERS) | $(OUT)/obj
	$(CLANG) $(CFLAGS) -c $< -o $@

$(OUT)/fuzz_sse: $(OUT)/obj/fuzz_sse.o $(OUT)/obj/sse.o
	$(CLANG) $(LDFLAGS) $^ -o $@

$(OUT)/fuzz_%: $(OUT)/obj/fuzz_%.o $(LIB_OBJ)
	$(CLANG) $(LDFLAGS) $^ $(LIBS) -o $@

$(OUT)/obj:
	mkdir -p $@

# Keep the objects between runs: they are intermediate files of the pattern rules.
.SECONDARY:
.PHONY: all
