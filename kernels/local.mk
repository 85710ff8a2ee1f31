# kernels/: the text-to-image engine (tensor runtime, CPU and CUDA backends, SD 1.x networks).
noinst_LIBRARIES += libdqengine.a
libdqengine_a_SOURCES = \
	kernels/dtype.c kernels/dtype.h
libdqengine_a_CFLAGS = $(AM_CFLAGS) $(OPENMP_CFLAGS) $(OPENBLAS_CFLAGS) $(UTF8PROC_CFLAGS) \
	$(JANSSON_CFLAGS)
# What a program that links the engine adds to its LDADD (before DQ_COMMON_LIBS).
DQ_ENGINE_LIBS = libdqengine.a $(OPENBLAS_LIBS) $(UTF8PROC_LIBS) $(OPENMP_CFLAGS) -lm

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

# ---- Model files: safetensors, configs, parameter manifests, the model-folder loader.
libdqengine_a_SOURCES += \
	kernels/safetensors.c kernels/safetensors_write.c kernels/safetensors.h

check_PROGRAMS += tests/unit/test_safetensors
tests_unit_test_safetensors_SOURCES = tests/unit/test_safetensors.c
tests_unit_test_safetensors_CFLAGS = $(DQ_UNIT_CFLAGS)
tests_unit_test_safetensors_LDADD = $(DQ_ENGINE_LIBS) $(DQ_UNIT_LIBS)
DQ_UNIT_TESTS += tests/unit/test_safetensors
EXTRA_DIST += tests/fixtures/safetensors tests/reference/safetensors_samples.py

# The safetensors fuzz target, replayed over its committed corpus with gcc (libFuzzer builds:
# tests/fuzz/run_safetensors.sh).
check_PROGRAMS += tests/fuzz/safetensors_replay
tests_fuzz_safetensors_replay_SOURCES = tests/fuzz/fuzz_safetensors.c tests/fuzz/replay_safetensors.c
tests_fuzz_safetensors_replay_CFLAGS = $(AM_CFLAGS)
tests_fuzz_safetensors_replay_LDADD = $(DQ_ENGINE_LIBS) $(DQ_COMMON_LIBS)
DQ_UNIT_TESTS += tests/fuzz/safetensors_replay
EXTRA_DIST += tests/fuzz/corpus/safetensors tests/fuzz/run_safetensors.sh

libdqengine_a_SOURCES += \
	kernels/model_config.c kernels/model_config.h kernels/model_presets.c \
	kernels/model_manifest.c kernels/model_manifest.h

check_PROGRAMS += tests/unit/test_model_manifest
tests_unit_test_model_manifest_SOURCES = tests/unit/test_model_manifest.c
tests_unit_test_model_manifest_CFLAGS = $(DQ_UNIT_CFLAGS)
tests_unit_test_model_manifest_LDADD = $(DQ_ENGINE_LIBS) $(DQ_UNIT_LIBS)
DQ_UNIT_TESTS += tests/unit/test_model_manifest
EXTRA_DIST += tests/fixtures/manifest tests/reference/manifest.py

libdqengine_a_SOURCES += \
	kernels/model_ldm.c kernels/model_ldm.h kernels/model_infer.c \
	kernels/model_files.c kernels/model_files.h
libdqengine_a_SOURCES += \
	kernels/clip_vocab.c kernels/clip_vocab.h kernels/model_init.c kernels/model_init.h
# zlib reads CLIP's gzipped merge file. It is always present beside libpng16 (which configure
# requires); a configure check of its own is requested from the lead.
DQ_ENGINE_LIBS += -lz
EXTRA_DIST += data/clip/bpe_simple_vocab_16e6.txt.gz data/clip/LICENSE

check_PROGRAMS += tests/unit/test_model_files
tests_unit_test_model_files_SOURCES = tests/unit/test_model_files.c
tests_unit_test_model_files_CFLAGS = $(DQ_UNIT_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_test_model_files_LDADD = $(DQ_ENGINE_LIBS) $(DQ_UNIT_LIBS)
DQ_UNIT_TESTS += tests/unit/test_model_files
EXTRA_DIST += tests/reference/ldm_names.py
