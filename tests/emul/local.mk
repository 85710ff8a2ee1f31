# tests/emul/: the CUDA backend (kernels/cuda/*.cu) built as plain C++ against a CPU emulation
# of CUDA, cuBLAS and cuDNN, and tests/gpu/ops_cuda_vs_cpu.c run against it: every CUDA op's
# kernels, launch shapes and library calls checked on every CI machine, GPU or not
# (tests/emul/README.md says what it can and cannot show). Needs no CUDA toolkit.
noinst_LIBRARIES += libdqcuda_emul.a
DQ_CUDA_EMUL_WRAPPERS = \
	tests/emul/cuda_activation.cpp tests/emul/cuda_attention.cpp \
	tests/emul/cuda_attention_flash.cpp tests/emul/cuda_backend_cuda.cpp \
	tests/emul/cuda_binary.cpp tests/emul/cuda_conv2d.cpp tests/emul/cuda_convert.cpp \
	tests/emul/cuda_device.cpp tests/emul/cuda_graph.cpp tests/emul/cuda_layout.cpp \
	tests/emul/cuda_linear.cpp tests/emul/cuda_norm.cpp tests/emul/cuda_softmax.cpp
libdqcuda_emul_a_SOURCES = tests/emul/emul_core.h tests/emul/runtime.cpp tests/emul/cublas.cpp \
	tests/emul/cudnn.cpp tests/emul/include/cuda_runtime_api.h tests/emul/include/cuda_runtime.h \
	tests/emul/include/cuda_fp16.h tests/emul/include/cuda_bf16.h tests/emul/include/cublas_v2.h \
	tests/emul/include/cudnn.h $(DQ_CUDA_EMUL_WRAPPERS)
# The emulation's headers come first, in place of the toolkit's.
libdqcuda_emul_a_CPPFLAGS = -DDQ_CUDA_EMUL -I$(top_srcdir)/tests/emul/include $(AM_CPPFLAGS)
# (-Wno-unknown-pragmas: the kernels' #pragma unroll is for nvcc.)
DQ_CUDA_EMUL_CXXFLAGS = -std=c++20 $(WARN_CXXFLAGS) -Wno-unknown-pragmas $(SAN_CFLAGS)
libdqcuda_emul_a_CXXFLAGS = $(DQ_CUDA_EMUL_CXXFLAGS)
# The wrappers include the .cu files: rebuild when they (or what they share) change.
$(libdqcuda_emul_a_OBJECTS): $(DQ_CUDA_BACKEND_FILES) kernels/cuda/device.cu \
	kernels/cuda/device.h kernels/backend.h kernels/tensor.h kernels/dtype.h

check_PROGRAMS += tests/emul/ops_cuda_emul
tests_emul_ops_cuda_emul_SOURCES = tests/gpu/ops_cuda_vs_cpu.c
tests_emul_ops_cuda_emul_CPPFLAGS = -DDQ_CUDA_EMUL $(AM_CPPFLAGS)
tests_emul_ops_cuda_emul_CFLAGS = $(AM_CFLAGS)
tests_emul_ops_cuda_emul_LDADD = libdqcuda_emul.a $(DQ_ENGINE_CPU_LIBS) $(DQ_COMMON_LIBS)
# Linked by the C++ driver (the library is C++).
nodist_EXTRA_tests_emul_ops_cuda_emul_SOURCES = tests/emul/force_cxx_link.cpp
DQ_UNIT_TESTS += tests/emul/ops_cuda_emul
EXTRA_DIST += tests/emul/README.md

# The fused attention kernel's device code alone, on tighter bounds and more shapes.
check_PROGRAMS += tests/unit/test_flash_emul
tests_unit_test_flash_emul_SOURCES = tests/unit/test_flash_emul.cpp
tests_unit_test_flash_emul_CPPFLAGS = -DDQ_CUDA_EMUL -I$(top_srcdir)/tests/emul/include \
	$(AM_CPPFLAGS)
tests_unit_test_flash_emul_CXXFLAGS = $(DQ_CUDA_EMUL_CXXFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_flash_emul_LDADD = libdqcuda_emul.a $(DQ_ENGINE_CPU_LIBS) $(DQ_UNIT_LIBS)
DQ_UNIT_TESTS += tests/unit/test_flash_emul

# The fixture pipeline (tests/unit/test_pipeline.c) on the CUDA backend, emulated: f32 mode at
# the CPU's tolerances and f16 mode at its rule, the UNet step as a recorded graph.
# kernels/pipeline.c is compiled in again with the CUDA path on, since the engine library has
# it only when the toolkit was found.
DQ_PIPELINE_EMUL_SOURCES = tests/unit/test_pipeline.c kernels/pipeline.c
DQ_PIPELINE_EMUL_LDADD = libdqcuda_emul.a $(DQ_ENGINE_CPU_LIBS) $(DQ_UNIT_LIBS)
check_PROGRAMS += tests/emul/test_pipeline_cuda_f32 tests/emul/test_pipeline_cuda_f16 \
	tests/emul/test_pipeline_cuda_bf16
tests_emul_test_pipeline_cuda_f32_SOURCES = $(DQ_PIPELINE_EMUL_SOURCES)
tests_emul_test_pipeline_cuda_f32_CPPFLAGS = -DDQ_HAVE_CUDA -DDQ_TEST_EMUL_PRECISION='"f32"' \
	$(AM_CPPFLAGS)
tests_emul_test_pipeline_cuda_f32_CFLAGS = $(DQ_UNIT_CFLAGS) $(JANSSON_CFLAGS)
tests_emul_test_pipeline_cuda_f32_LDADD = $(DQ_PIPELINE_EMUL_LDADD)
nodist_EXTRA_tests_emul_test_pipeline_cuda_f32_SOURCES = tests/emul/force_cxx_link.cpp
tests_emul_test_pipeline_cuda_f16_SOURCES = $(DQ_PIPELINE_EMUL_SOURCES)
tests_emul_test_pipeline_cuda_f16_CPPFLAGS = -DDQ_HAVE_CUDA -DDQ_TEST_EMUL_PRECISION='"f16"' \
	$(AM_CPPFLAGS)
tests_emul_test_pipeline_cuda_f16_CFLAGS = $(DQ_UNIT_CFLAGS) $(JANSSON_CFLAGS)
tests_emul_test_pipeline_cuda_f16_LDADD = $(DQ_PIPELINE_EMUL_LDADD)
nodist_EXTRA_tests_emul_test_pipeline_cuda_f16_SOURCES = tests/emul/force_cxx_link.cpp
tests_emul_test_pipeline_cuda_bf16_SOURCES = $(DQ_PIPELINE_EMUL_SOURCES)
tests_emul_test_pipeline_cuda_bf16_CPPFLAGS = -DDQ_HAVE_CUDA -DDQ_TEST_EMUL_PRECISION='"bf16"' \
	$(AM_CPPFLAGS)
tests_emul_test_pipeline_cuda_bf16_CFLAGS = $(DQ_UNIT_CFLAGS) $(JANSSON_CFLAGS)
tests_emul_test_pipeline_cuda_bf16_LDADD = $(DQ_PIPELINE_EMUL_LDADD)
nodist_EXTRA_tests_emul_test_pipeline_cuda_bf16_SOURCES = tests/emul/force_cxx_link.cpp
# Not among the unit tests that CI also runs under the sanitizers: a minute or two each here,
# several times that under ASan, for what ops_cuda_emul already covers there.
TESTS += tests/emul/test_pipeline_cuda_f32 tests/emul/test_pipeline_cuda_f16 \
	tests/emul/test_pipeline_cuda_bf16
