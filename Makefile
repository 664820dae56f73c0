# hypertrain Makefile. CPU build by default (no GPU, no MPI needed):
#   make            build ./hypertrain, tests and benchmarks
#   make test       build and run every test (tests/run.sh)
#   make MPI=1      build against Open MPI (auto when mpicc is found; MPI=0 turns it off)
#   make CUDA=1     add the CUDA backend into build-cuda/ (see the CUDA block; docs/cuda.md)
#   make SANITIZE=1 ASan + UBSan build into build-san/ (see the sanitizers block; docs/testing.md)
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

# ---- CUDA (configuration) ------------------------------------------------------------------
# make CUDA=1 adds the CUDA backend: cuda/*.cu (nvcc) and mpi/comm_nccl.c, linked with cudart,
# cuBLAS and NCCL; HT_CUDA=1 is defined (src/run.c then picks the device at run time: --device
# cpu|cuda|auto). A CUDA build lives in its own directory, build-cuda/ unless BUILD is given, with
# its binaries there too (build-cuda/hypertrain, build-cuda/tests/gpu/*), so that it never mixes
# objects or binaries with the CPU build (build/, ./hypertrain). The CPU build never needs nvcc.
#   CUDA_HOME  toolkit root (default: from nvcc on PATH, else /usr/local/cuda)
#   NCCL_HOME  NCCL root when it is not in the toolkit or the system library directories
#   CUDA_ARCH  nvcc -gencode flags (default: sm_90 (H100/H200) and sm_80 (A100))
# No --use_fast_math and --fmad=false: the GPU path is tested against src/ (tests/gpu/).
HT_BIN := hypertrain
HA_BIN := hyperanalyze
ifeq ($(CUDA),1)
  ifeq ($(HAVE_NVCC),no)
    $(error CUDA=1 but nvcc was not found (PATH, /usr/local/cuda/bin); set CUDA_HOME or NVCC)
  endif
  ifeq ($(origin BUILD),file)
    BUILD := build-cuda
  endif
  CUDA_HOME ?= $(or $(patsubst %/bin/nvcc,%,$(shell command -v nvcc 2>/dev/null)),/usr/local/cuda)
  NVCC ?= $(CUDA_HOME)/bin/nvcc
  # The directory with cuda_runtime.h, for the C files (nvcc finds its own through nvcc.profile):
  # include/ in a standard toolkit, targets/<arch>/include where include/ is not linked to it.
  CUDA_INC ?= $(or $(patsubst %/cuda_runtime.h,%,$(firstword $(wildcard $(CUDA_HOME)/include/cuda_runtime.h \
                 $(CUDA_HOME)/targets/*/include/cuda_runtime.h))),$(CUDA_HOME)/include)
  # sm_90 and sm_80 machine code, plus compute_90 PTX that the driver JIT-compiles on newer GPUs.
  CUDA_ARCH ?= -gencode arch=compute_90,code=sm_90 -gencode arch=compute_80,code=sm_80 \
               -gencode arch=compute_90,code=compute_90
  CUDA_LIBDIR := $(or $(firstword $(wildcard $(CUDA_HOME)/lib64 $(CUDA_HOME)/lib)),$(CUDA_HOME)/lib64)
  # NCCL: NCCL_HOME (lib/ or lib64/, include/) when given, else the toolkit and system directories,
  # else a Python environment's nvidia-nccl package (site-packages/nvidia/nccl). A node whose NCCL
  # is only libnccl.so.2 (no unversioned libnccl.so) links it by name (-l:libnccl.so.2); without
  # nccl.h anywhere, cuda/nccl_compat/nccl.h (the NCCL 2.x declarations that mpi/comm_nccl.c uses)
  # stands in. NCCL_CFLAGS and NCCL_LIBS override all of it.
  NCCL_SYSLIB := $(wildcard $(CUDA_LIBDIR)/libnccl.so* /usr/lib/x86_64-linux-gnu/libnccl.so* /usr/lib64/libnccl.so*)
  ifeq ($(NCCL_HOME)$(NCCL_SYSLIB),)
    NCCL_HOME := $(shell python3 -c 'import nvidia.nccl as n; print(list(n.__path__)[0])' 2>/dev/null)
  endif
  ifneq ($(NCCL_HOME),)
    NCCL_LIBDIR := $(patsubst %/,%,$(dir $(firstword $(wildcard $(NCCL_HOME)/lib/libnccl.so* $(NCCL_HOME)/lib64/libnccl.so*))))
    NCCL_LINK := $(if $(NCCL_LIBDIR),-L$(NCCL_LIBDIR) -Wl$(comma)-rpath$(comma)$(NCCL_LIBDIR)) \
                 $(if $(wildcard $(NCCL_LIBDIR)/libnccl.so),-lnccl,-l:libnccl.so.2)
  else
    NCCL_LINK := $(if $(filter %/libnccl.so,$(NCCL_SYSLIB)),-lnccl,$(if $(NCCL_SYSLIB),-l:libnccl.so.2,-lnccl))
  endif
  NCCL_CFLAGS ?= $(if $(wildcard $(NCCL_HOME)/include/nccl.h),-I$(NCCL_HOME)/include,$(if \
                   $(wildcard $(CUDA_INC)/nccl.h /usr/include/nccl.h),,-Icuda/nccl_compat))
  NCCL_LIBS ?= $(NCCL_LINK)
  CUDA_LIBS := -L$(CUDA_LIBDIR) -Wl,-rpath,$(CUDA_LIBDIR) -lcublas -lcudart $(NCCL_LIBS) -lstdc++
  CFLAGS += -DHT_CUDA=1 -Icuda -I$(CUDA_INC) $(NCCL_CFLAGS)
  NVCCFLAGS ?= -O2 -std=c++17 $(CUDA_ARCH) --fmad=false -lineinfo -Xcompiler -Wall,-Wno-unused-function \
               -DHT_CUDA=1 -D_POSIX_C_SOURCE=200809L -Isrc -Impi -Icuda $(NCCL_CFLAGS) $(EXTRA_NVCCFLAGS)
  COMM_SRC += mpi/comm_nccl.c mpi/devsel.c
  HT_BIN := $(BUILD)/hypertrain
  HA_BIN := $(BUILD)/hyperanalyze
endif
# ---- end CUDA (configuration) --------------------------------------------------------------

# ---- sanitizers ------------------------------------------------------------------------------
# make SANITIZE=1 builds with AddressSanitizer and UndefinedBehaviorSanitizer (any UB report is
# fatal) into its own directory, build-san/ unless BUILD is given, binaries included
# (build-san/hypertrain, build-san/tests/test_*), so that its objects never mix with build/.
# tests/t_sanitize.sh builds the C tests this way and runs them (with tests/sanitizers.supp);
# docs/testing.md. Not with CUDA=1.
SANITIZE ?= 0
ifneq ($(filter-out 0 1,$(SANITIZE)),)
$(error SANITIZE must be 0 or 1, got '$(SANITIZE)')
endif
ifeq ($(SANITIZE),1)
  ifeq ($(CUDA),1)
    $(error SANITIZE=1 and CUDA=1 cannot be combined (ASan and the CUDA runtime); build them separately)
  endif
  ifeq ($(origin BUILD),file)
    BUILD := build-san
  endif
  SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  CFLAGS += $(SAN_FLAGS)
  HT_BIN := $(BUILD)/hypertrain
  HA_BIN := $(BUILD)/hyperanalyze
.DEFAULT_GOAL := all
.PHONY: san-summary
all: san-summary
san-summary:
	@echo "  Sanitizers: $(SAN_FLAGS); objects and binaries in $(BUILD)/"
endif
# ---- end sanitizers --------------------------------------------------------------------------

LIB_SRC := $(filter-out src/main.c,$(wildcard src/*.c)) $(COMM_SRC)
LIB_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(LIB_SRC))
TEST_SRC := $(wildcard tests/test_*.c)
TEST_BIN := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRC))
# MPI test programs (run under mpirun by tests/t_mpi.sh), only in an MPI build.
MPI_TEST_SRC := $(if $(filter mpi/comm_mpi.c,$(COMM_SRC)),$(wildcard tests/mpi_*.c))
MPI_TEST_BIN := $(patsubst tests/%.c,$(BUILD)/tests/%,$(MPI_TEST_SRC))
ANALYSIS_SRC := $(wildcard analysis/*.c)
ANALYSIS_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(ANALYSIS_SRC))
ANALYSIS_BIN := $(if $(ANALYSIS_SRC),$(HA_BIN))
BENCH_SRC := $(wildcard bench/*.c)
BENCH_BIN := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))


# ---- CUDA (objects, GPU tests) ---------------------------------------------------------------
ifeq ($(CUDA),1)
CUDA_SRC := $(wildcard cuda/*.cu)
CUDA_OBJ := $(patsubst %.cu,$(BUILD)/%.o,$(CUDA_SRC))
CUDA_HDRS := $(wildcard cuda/*.cuh cuda/*.h src/*.h mpi/*.h)
GPU_TEST_SRC := $(wildcard tests/gpu/*.cu)
GPU_TEST_OBJ := $(patsubst %.cu,$(BUILD)/%.o,$(GPU_TEST_SRC))
GPU_TEST_BIN := $(patsubst tests/gpu/%.cu,$(BUILD)/tests/gpu/%,$(GPU_TEST_SRC))
LIB_OBJ += $(CUDA_OBJ)
LDLIBS += $(CUDA_LIBS)
.DEFAULT_GOAL := all
.SECONDARY: $(GPU_TEST_OBJ)
.PHONY: cuda-summary
all: cuda-summary $(GPU_TEST_BIN)
cuda-summary:
	@echo "  CUDA build: $(NVCC) $(CUDA_ARCH); objects and binaries in $(BUILD)/ ($(HT_BIN), $(BUILD)/tests/gpu/)"
	@echo "  NCCL: $(or $(NCCL_HOME),toolkit/system) -> $(NCCL_CFLAGS) $(NCCL_LIBS)"
# make CUDA=1 cuda-config: the NCCL and CUDA flags this machine gets (tests/t_cuda_build.sh)
.PHONY: cuda-config
cuda-config:
	@echo "NCCL_HOME=$(NCCL_HOME)"; echo "NCCL_CFLAGS=$(NCCL_CFLAGS)"; echo "NCCL_LIBS=$(NCCL_LIBS)"
	@echo "CUDA_HOME=$(CUDA_HOME)"; echo "CUDA_INC=$(CUDA_INC)"; echo "CUDA_ARCH=$(CUDA_ARCH)"
# Objects remember the flags they were built with: a change of flags (CUDA_ARCH, MPI, ...)
# rebuilds them instead of linking stale ones.
CUDA_STAMP := $(BUILD)/.cuda-flags
CUDA_FLAGS_LINE := $(CC) $(CFLAGS) | $(NVCC) $(NVCCFLAGS) | $(LDLIBS)
$(shell mkdir -p $(BUILD) && { test "$$(cat $(CUDA_STAMP) 2>/dev/null)" = '$(CUDA_FLAGS_LINE)' || \
        printf '%s\n' '$(CUDA_FLAGS_LINE)' > $(CUDA_STAMP); })
$(LIB_OBJ) $(BUILD)/src/main.o $(GPU_TEST_OBJ) $(ANALYSIS_OBJ): $(CUDA_STAMP)
$(BUILD)/cuda/%.o: cuda/%.cu $(CUDA_HDRS) Makefile
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -c $< -o $@
$(BUILD)/tests/gpu/%.o: tests/gpu/%.cu $(CUDA_HDRS) $(wildcard tests/*.h tests/gpu/*.h) Makefile
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -Itests -c $< -o $@
$(BUILD)/tests/gpu/%: $(BUILD)/tests/gpu/%.o $(LIB_OBJ)
	$(CC) $(CFLAGS) $< $(LIB_OBJ) -o $@ $(LDLIBS)
endif
# ---- end CUDA (objects, GPU tests) -----------------------------------------------------------

# ---- CUDA (relocatable bundle) ---------------------------------------------------------------
# make CUDA=1 MPI=0 bundle: $(BUILD)/hypertrain-gpu.tar.xz, one archive for an offline GPU node
# that has only the driver, the CUDA runtime, cuBLAS and (maybe only a Python package's) NCCL:
# hypertrain, hyperanalyze and every GPU test and benchmark, relinked from the same objects with
# DT_RPATH $ORIGIN/../lib instead of this machine's library folders; lib/ with every shared library
# they need except the NVIDIA ones, glibc and the compiler runtime; jobs/, tests/gpu/run-all.sh and
# bin/ht-env (scripts/gpu-env.sh: finds the NVIDIA libraries on the node). scripts/make-bundle.sh
# assembles it and fails above BUNDLE_MAX_MB. BUNDLE_DATA=DIR adds an MNIST folder as data/mnist.
.PHONY: bundle
ifeq ($(CUDA),1)
BUNDLE_STAGE := $(BUILD)/bundle-bin
BUNDLE_BINS := $(BUNDLE_STAGE)/hypertrain $(BUNDLE_STAGE)/hyperanalyze \
               $(patsubst $(BUILD)/tests/gpu/%,$(BUNDLE_STAGE)/%,$(GPU_TEST_BIN))
BUNDLE_LDLIBS := $(filter-out -Wl$(comma)-rpath$(comma)%,$(LDLIBS)) -Wl,--disable-new-dtags -Wl,-rpath,'$$ORIGIN/../lib'
BUNDLE_MAX_MB ?= 30
$(BUNDLE_STAGE)/hypertrain: $(BUILD)/src/main.o $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $^ -o $@ $(BUNDLE_LDLIBS)
$(BUNDLE_STAGE)/hyperanalyze: $(ANALYSIS_OBJ) $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $^ -o $@ $(BUNDLE_LDLIBS)
$(BUNDLE_STAGE)/%: $(BUILD)/tests/gpu/%.o $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< $(LIB_OBJ) -o $@ $(BUNDLE_LDLIBS)
bundle: $(BUNDLE_BINS)
	@test "$(MPI)" = 0 || { echo "error: the bundle is built without MPI (its node has no MPI): make CUDA=1 MPI=0 bundle"; exit 1; }
	BUNDLE_MAX_MB=$(BUNDLE_MAX_MB) BUNDLE_DATA="$(BUNDLE_DATA)" CUDA_ARCH="$(CUDA_ARCH)" NVCC="$(NVCC)" \
	  bash scripts/make-bundle.sh $(BUNDLE_STAGE) $(BUILD)/hypertrain-gpu.tar.xz
else
.DEFAULT_GOAL := all
bundle:
	@echo "error: the GPU bundle needs the CUDA build: make CUDA=1 MPI=0 bundle"; exit 1
endif
# ---- end CUDA (relocatable bundle) -----------------------------------------------------------

.PHONY: all test clean summary check-deps
all: summary check-deps $(HT_BIN) $(ANALYSIS_BIN) $(TEST_BIN) $(MPI_TEST_BIN) $(BENCH_BIN)

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

$(HT_BIN): $(BUILD)/src/main.o $(LIB_OBJ)
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

$(HA_BIN): $(ANALYSIS_OBJ) $(LIB_OBJ)
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/analysis/%.o: analysis/%.c $(wildcard src/*.h mpi/*.h analysis/*.h) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Ianalysis -c $< -o $@

$(BUILD)/tests/%: tests/%.c $(LIB_OBJ) $(wildcard tests/*.h analysis/metrics.c analysis/uncert.c analysis/adv_*.c analysis/*_core.c analysis/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests $< $(LIB_OBJ) -o $@ $(LDLIBS)

$(BUILD)/bench/%: bench/%.c $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< $(LIB_OBJ) -o $@ $(LDLIBS)

test: all
	bash tests/run.sh

# ---- fuzzing (make fuzz; docs/fuzzing.md) ------------------------------------------------------
# libFuzzer harnesses fuzz/fuzz_<name>.c -> build-fuzz/fuzz_<name>, built with clang and
# AddressSanitizer + UndefinedBehaviorSanitizer from their own objects of src/ (with -DHT_FUZZ:
# ht_fatal returns to the harness instead of exiting); the default build is untouched.
# Run one: build-fuzz/fuzz_idx fuzz/corpus/idx -detect_leaks=0 (tests/t_fuzz.sh runs them all).
FUZZ_CC ?= clang
FUZZ_BUILD := build-fuzz
FUZZ_NAMES := $(patsubst fuzz/fuzz_%.c,%,$(wildcard fuzz/fuzz_*.c))
FUZZ_BIN := $(patsubst %,$(FUZZ_BUILD)/fuzz_%,$(FUZZ_NAMES))
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS := -std=c11 -O1 -g -fno-omit-frame-pointer -fopenmp -D_POSIX_C_SOURCE=200809L -DHT_FUZZ=1 \
               -Isrc -Impi -Ifuzz $(HDF5_CFLAGS) $(CJSON_CFLAGS) $(BLAS_CFLAGS) $(FUZZ_SAN) \
               -DFUZZ_DIR='"$(abspath fuzz)"'
FUZZ_LIB_OBJ := $(patsubst %.c,$(FUZZ_BUILD)/%.o,$(filter-out src/main.c,$(wildcard src/*.c)) \
                  mpi/comm_single.c fuzz/h5recipe.c)
.PHONY: fuzz fuzz-clean
fuzz: $(FUZZ_BIN)
$(FUZZ_BUILD)/%.o: %.c $(wildcard src/*.h mpi/*.h fuzz/*.h) Makefile
	@command -v $(FUZZ_CC) >/dev/null || { echo "make fuzz: $(FUZZ_CC) not found (scripts/setup.sh installs clang)"; exit 1; }
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@
$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/fuzz/fuzz_%.o $(FUZZ_LIB_OBJ)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $^ -o $@ $(LDLIBS)
fuzz-clean:
	rm -rf $(FUZZ_BUILD)
# ---- end fuzzing -------------------------------------------------------------------------------

clean:
	rm -rf $(BUILD) $(HT_BIN) $(HA_BIN)
