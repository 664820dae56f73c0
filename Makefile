# hypertrain Makefile. CPU build by default (no GPU, no MPI needed):
#   make            build ./hypertrain, tests and benchmarks
#   make test       build and run every test (tests/run.sh)
#   make MPI=1      build against Open MPI (auto when mpicc is found; MPI=0 turns it off)
#   make CUDA=1     add the CUDA backend (auto when nvcc is found; CUDA=0 turns it off)
# Library locations can be given with HDF5_CFLAGS/HDF5_LIBS, CJSON_CFLAGS/CJSON_LIBS, BLAS_LIBS.

CC ?= gcc
OPT ?= -O2
# No fast-math anywhere in the CPU reference: it is the oracle.
CFLAGS := -std=c11 $(OPT) -g -Wall -Wextra -Wno-unused-parameter -fopenmp -D_POSIX_C_SOURCE=200809L \
          -Isrc -Impi $(EXTRA_CFLAGS)
LDLIBS := -lm
BUILD := build

PKG = $(shell pkg-config $(1) $(2) 2>/dev/null)
HDF5_CFLAGS ?= $(call PKG,--cflags,hdf5)
HDF5_LIBS ?= $(or $(call PKG,--libs,hdf5),-lhdf5)
CJSON_CFLAGS ?= $(call PKG,--cflags,libcjson)
CJSON_LIBS ?= $(or $(call PKG,--libs,libcjson),-lcjson)
# Prefer the OpenMP build of OpenBLAS: inside our OpenMP loops it runs single-threaded instead
# of oversubscribing the cores with its own pthreads.
OPENBLAS_OMP_DIR := /usr/lib/x86_64-linux-gnu/openblas-openmp
comma := ,
BLAS_LIBS ?= $(if $(wildcard $(OPENBLAS_OMP_DIR)/libopenblas.so),-L$(OPENBLAS_OMP_DIR) -Wl$(comma)-rpath$(comma)$(OPENBLAS_OMP_DIR) -lopenblas,-lopenblas)
BLAS_CFLAGS ?= $(call PKG,--cflags,openblas)

# probe(name, header, lib flags, cflags): compile-and-link check -> "yes" / "no"
probe = $(shell printf '#include <$(2)>\nint main(void){return 0;}\n' | \
          $(CC) -x c - -o /dev/null $(4) $(3) >/dev/null 2>&1 && echo yes || echo no)
HAVE_HDF5 := $(call probe,hdf5,hdf5.h,$(HDF5_LIBS),$(HDF5_CFLAGS))
HAVE_CJSON := $(call probe,cjson,cjson/cJSON.h,$(CJSON_LIBS),$(CJSON_CFLAGS))
HAVE_ZLIB := $(call probe,zlib,zlib.h,-lz,)
HAVE_BLAS := $(call probe,blas,cblas.h,$(BLAS_LIBS),$(BLAS_CFLAGS))
HAVE_OPENMP := $(call probe,openmp,omp.h,-fopenmp,-fopenmp)
HAVE_MPICC := $(if $(shell command -v mpicc 2>/dev/null),yes,no)
HAVE_NVCC := $(if $(shell command -v nvcc 2>/dev/null),yes,$(if $(wildcard /usr/local/cuda/bin/nvcc),yes,no))

MPI ?= $(if $(filter yes,$(HAVE_MPICC)),1,0)
CUDA ?= 0
ifneq ($(filter-out 0 1,$(MPI)),)
$(error MPI must be 0 or 1, got '$(MPI)')
endif
ifneq ($(filter-out 0 1,$(CUDA)),)
$(error CUDA must be 0 or 1, got '$(CUDA)')
endif

CFLAGS += $(HDF5_CFLAGS) $(CJSON_CFLAGS) $(BLAS_CFLAGS)
LDLIBS := $(HDF5_LIBS) $(CJSON_LIBS) $(BLAS_LIBS) -lz -lm

COMM_SRC := mpi/comm_single.c
ifeq ($(MPI),1)
  ifneq ($(wildcard mpi/comm_mpi.c),)
    CC := mpicc
    CFLAGS += -DHT_MPI=1
    COMM_SRC := mpi/comm_mpi.c
  endif
endif

LIB_SRC := $(filter-out src/main.c,$(wildcard src/*.c)) $(COMM_SRC)
LIB_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(LIB_SRC))
TEST_SRC := $(wildcard tests/test_*.c)
TEST_BIN := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRC))
# MPI test programs (run under mpirun by tests/t_mpi.sh), only in an MPI build.
MPI_TEST_SRC := $(if $(filter mpi/comm_mpi.c,$(COMM_SRC)),$(wildcard tests/mpi_*.c))
MPI_TEST_BIN := $(patsubst tests/%.c,$(BUILD)/tests/%,$(MPI_TEST_SRC))
ANALYSIS_SRC := $(wildcard analysis/*.c)
ANALYSIS_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(ANALYSIS_SRC))
ANALYSIS_BIN := $(if $(ANALYSIS_SRC),hyperanalyze)
BENCH_SRC := $(wildcard bench/*.c)
BENCH_BIN := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))

.PHONY: all test clean summary check-deps
all: summary check-deps hypertrain $(TEST_BIN) $(MPI_TEST_BIN) $(BENCH_BIN)

summary:
	@echo "hypertrain build configuration:"
	@echo "  $(if $(filter yes,$(HAVE_HDF5)),✓,✗) HDF5        $(HDF5_LIBS)"
	@echo "  $(if $(filter yes,$(HAVE_CJSON)),✓,✗) cJSON       $(CJSON_LIBS)"
	@echo "  $(if $(filter yes,$(HAVE_ZLIB)),✓,✗) zlib"
	@echo "  $(if $(filter yes,$(HAVE_BLAS)),✓,✗) BLAS        $(BLAS_LIBS)"
	@echo "  $(if $(filter yes,$(HAVE_OPENMP)),✓,✗) OpenMP"
	@echo "  $(if $(filter 1,$(MPI)),✓,✗) MPI         (mpicc found: $(HAVE_MPICC); comm: $(COMM_SRC))"
	@echo "  $(if $(filter 1,$(CUDA)),✓,✗) CUDA        (nvcc found: $(HAVE_NVCC))"

check-deps:
	@missing=""; \
	for d in "HDF5:$(HAVE_HDF5)" "cJSON:$(HAVE_CJSON)" "zlib:$(HAVE_ZLIB)" "BLAS:$(HAVE_BLAS)" "OpenMP:$(HAVE_OPENMP)"; do \
	  case $$d in *:no) missing="$$missing $${d%%:*}";; esac; done; \
	if [ -n "$$missing" ]; then echo "error: missing required libraries:$$missing (run: sudo scripts/setup.sh)"; exit 1; fi

$(BUILD)/%.o: %.c $(wildcard src/*.h mpi/*.h) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

hypertrain: $(BUILD)/src/main.o $(LIB_OBJ)
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

hyperanalyze: $(ANALYSIS_OBJ) $(LIB_OBJ)
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/analysis/%.o: analysis/%.c $(wildcard src/*.h mpi/*.h analysis/*.h) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Ianalysis -c $< -o $@

$(BUILD)/tests/%: tests/%.c $(LIB_OBJ) $(wildcard tests/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests $< $(LIB_OBJ) -o $@ $(LDLIBS)

$(BUILD)/bench/%: bench/%.c $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< $(LIB_OBJ) -o $@ $(LDLIBS)

test: all
	bash tests/run.sh

clean:
	rm -rf $(BUILD) hypertrain hyperanalyze
