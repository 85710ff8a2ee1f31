# kernels/: the text-to-image engine (tensor runtime, CPU and CUDA backends, SD 1.x networks).
noinst_LIBRARIES += libdqengine.a
libdqengine_a_SOURCES = \
	kernels/dtype.c kernels/dtype.h
libdqengine_a_CFLAGS = $(AM_CFLAGS) $(OPENMP_CFLAGS) $(OPENBLAS_CFLAGS) $(UTF8PROC_CFLAGS) \
	$(JANSSON_CFLAGS)
# What a program that links the engine adds to its LDADD (before DQ_COMMON_LIBS).
DQ_ENGINE_LIBS = libdqengine.a libdqsample.a $(OPENBLAS_LIBS) $(UTF8PROC_LIBS) $(OPENMP_CFLAGS) -lm

# Sampling: PyTorch's random normals and diffusers' schedulers, reproduced to the bit where the
# reference allows. Its own library because it must be compiled without FMA contraction
# (-ffp-contract=off): each a*b+c must round twice as PyTorch's kernels do, on every machine
# (GCC contracts by default in gnu11 mode wherever the target has FMA, e.g. aarch64).
noinst_LIBRARIES += libdqsample.a
libdqsample_a_SOURCES = \
	kernels/rng.c kernels/rng.h \
	kernels/sched/sampler.h kernels/sched/internal.h kernels/sched/config.c \
	kernels/sched/schedule.c kernels/sched/sampler.c kernels/sched/pndm.c kernels/sched/ddim.c \
	kernels/sched/euler.c kernels/sched/lms.c kernels/sched/dpm.c
libdqsample_a_CFLAGS = $(AM_CFLAGS) -ffp-contract=off
EXTRA_DIST += tests/fixtures/samplers tests/fixtures/rng tests/reference/gen_samplers.py

check_PROGRAMS += tests/unit/test_rng
tests_unit_test_rng_SOURCES = tests/unit/test_rng.c
tests_unit_test_rng_CFLAGS = $(DQ_UNIT_CFLAGS)
tests_unit_test_rng_LDADD = $(DQ_ENGINE_LIBS) $(DQ_UNIT_LIBS)
DQ_UNIT_TESTS += tests/unit/test_rng

check_PROGRAMS += tests/unit/test_samplers
tests_unit_test_samplers_SOURCES = tests/unit/test_samplers.c
tests_unit_test_samplers_CFLAGS = $(DQ_UNIT_CFLAGS)
tests_unit_test_samplers_LDADD = $(DQ_ENGINE_LIBS) $(DQ_UNIT_LIBS)
DQ_UNIT_TESTS += tests/unit/test_samplers

check_PROGRAMS += tests/unit/test_dtype
tests_unit_test_dtype_SOURCES = tests/unit/test_dtype.c
tests_unit_test_dtype_CFLAGS = $(DQ_UNIT_CFLAGS)
tests_unit_test_dtype_LDADD = $(DQ_ENGINE_LIBS) $(DQ_UNIT_LIBS)
DQ_UNIT_TESTS += tests/unit/test_dtype

# The CUDA backend, compiled by nvcc when configure found the toolkit (--with-cuda).
if HAVE_CUDA
noinst_LIBRARIES += libdqcuda.a
libdqcuda_a_SOURCES = kernels/cuda/device.cu kernels/cuda/device.h
DQ_ENGINE_LIBS += libdqcuda.a $(CUDA_LIBS)
endif
SUFFIXES += .cu
DQ_NVCC_FLAGS = -std=c++17 -O3 $(CUDA_GENCODE) -I$(top_srcdir) -I$(top_builddir) \
	$(CUDA_CPPFLAGS) -Xcompiler -Wall,-Wextra,-fPIC $(NVCCFLAGS)
.cu.o:
	$(AM_V_GEN)$(NVCC) $(DQ_NVCC_FLAGS) -c -o $@ $<
EXTRA_DIST += kernels/cuda/device.cu kernels/cuda/device.h
