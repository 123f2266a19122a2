# The two commands: `make run` (set up, build, answer a chat prompt) and `make test`.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all setup build run test fuzz clean

all: build

setup:
	@scripts/setup.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

build: setup $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

run: build
	$(BUILD)/bin/inferkit run

test: build
	OMP_WAIT_POLICY=passive ctest --test-dir $(BUILD) -L cpu --output-on-failure -j $(JOBS) --timeout 900
	@$(MAKE) --no-print-directory fuzz

# libFuzzer targets (clang) in their own build tree; each runs FUZZ_SECONDS from its seed corpus.
FUZZ_SECONDS ?= 60
fuzz: setup
	@scripts/fuzz.sh $(FUZZ_SECONDS)

clean:
	rm -rf $(BUILD) build-fuzz
