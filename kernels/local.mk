# kernels/: the text-to-image engine (tensor runtime, CPU and CUDA backends, SD 1.x networks).
noinst_LIBRARIES += libdqengine.a
libdqengine_a_SOURCES = \
	kernels/dtype.c kernels/dtype.h
# Tensor runtime: tensors, the backend interface, checked op entry points, the scratch arena.
libdqengine_a_SOURCES += \
	kernels/tensor.c kernels/tensor.h \
	kernels/backend.c kernels/backend.h \
	kernels/ops.c kernels/ops.h \
	kernels/arena.c kernels/arena.h kernels/layout.c kernels/layout.h \
	kernels/step_graph.c kernels/step_graph.h
# CPU backend: one file per op or per small family of ops.
libdqengine_a_SOURCES += \
	kernels/cpu/backend_cpu.c kernels/cpu/backend_cpu.h kernels/cpu/cpu_internal.h \
	kernels/cpu/linear.c kernels/cpu/prefill.c kernels/cpu/conv2d.c kernels/cpu/conv2d_nhwc.c \
	kernels/cpu/conv2d_winograd.c kernels/cpu/norm.c \
	kernels/cpu/softmax.c kernels/cpu/attention.c kernels/cpu/attention_tiled.c \
	kernels/cpu/activation.c kernels/cpu/binary.c kernels/cpu/layout.c
libdqengine_a_CFLAGS = $(AM_CFLAGS) $(OPENMP_CFLAGS) $(OPENBLAS_CFLAGS) $(UTF8PROC_CFLAGS) \
	$(JANSSON_CFLAGS) $(DQ_ENGINE_VEC_CFLAGS)
# Nothing in the engine reads floating-point exception flags; without this GCC will not turn the
# selects of kernels/cpu (clamps in dq_cpu_expf) into vector blends below AVX-512. Results are
# unchanged: it only lets the compiler evaluate both sides of a select.
DQ_ENGINE_VEC_CFLAGS = -fno-trapping-math
# What a program that links the engine adds to its LDADD (before DQ_COMMON_LIBS); the CUDA
# backend joins it below when configured. DQ_ENGINE_CPU_LIBS: the engine without it.
DQ_ENGINE_CPU_LIBS = libdqengine.a libdqsample.a $(OPENBLAS_LIBS) $(UTF8PROC_LIBS) \
	$(OPENMP_CFLAGS) -lm
DQ_ENGINE_LIBS = $(DQ_ENGINE_CPU_LIBS)

# Sampling: PyTorch's random normals and diffusers' schedulers, reproduced to the bit where the
# reference allows. Its own library because it must be compiled without FMA contraction
# (-ffp-contract=off): each a*b+c must round twice as PyTorch's kernels do, on every machine
# (GCC contracts by default in gnu11 mode wherever the target has FMA, e.g. aarch64).
noinst_LIBRARIES += libdqsample.a
libdqsample_a_SOURCES = \
	kernels/rng.c kernels/rng.h \
	kernels/sched/sampler.h kernels/sched/internal.h kernels/sched/config.c \
	kernels/sched/schedule.c kernels/sched/sampler.c kernels/sched/pndm.c kernels/sched/ddim.c \
	kernels/sched/euler.c kernels/sched/lms.c kernels/sched/dpm.c kernels/sched/guidance.c
libdqsample_a_CFLAGS = $(AM_CFLAGS) -ffp-contract=off
EXTRA_DIST += tests/reference/gen_samplers.py

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
libdqcuda_a_SOURCES = kernels/cuda/device.cu kernels/cuda/device.h \
	$(DQ_CUDA_BACKEND_FILES)
DQ_ENGINE_LIBS += libdqcuda.a $(CUDA_LIBS)
# The .cu suffix rule tracks no header dependencies: every object depends on the shared headers.
$(libdqcuda_a_OBJECTS): kernels/cuda/cuda_internal.h kernels/cuda/backend_cuda.h \
	kernels/cuda/reduce.h kernels/cuda/attention_flash_kernel.cuh kernels/cuda/mma.cuh \
	kernels/backend.h kernels/tensor.h kernels/dtype.h
# Every op on CUDA against the CPU backend: built here, run on a GPU by tests/gpu/check.sh
# (not in TESTS: it needs a device; without one it exits 77).
check_PROGRAMS += tests/gpu/ops_cuda_vs_cpu
tests_gpu_ops_cuda_vs_cpu_SOURCES = tests/gpu/ops_cuda_vs_cpu.c
tests_gpu_ops_cuda_vs_cpu_CFLAGS = $(AM_CFLAGS)
tests_gpu_ops_cuda_vs_cpu_LDADD = libdqcuda.a $(DQ_ENGINE_LIBS) $(DQ_COMMON_LIBS)
# The graph hooks (CUDA graphs) recorded and replayed on a device; same rules as above.
check_PROGRAMS += tests/gpu/graph_cuda
tests_gpu_graph_cuda_SOURCES = tests/gpu/graph_cuda.c
tests_gpu_graph_cuda_CFLAGS = $(AM_CFLAGS)
tests_gpu_graph_cuda_LDADD = libdqcuda.a $(DQ_ENGINE_LIBS) $(DQ_COMMON_LIBS)
endif
SUFFIXES += .cu
DQ_NVCC_FLAGS = -std=c++17 -O3 $(CUDA_GENCODE) -I$(top_srcdir) -I$(top_builddir) \
	$(CUDA_CPPFLAGS) -Xcompiler -Wall,-Wextra,-fPIC $(NVCCFLAGS)
.cu.o:
	$(AM_V_GEN)$(NVCC) $(DQ_NVCC_FLAGS) -c -o $@ $<
# The backend: one op or small op family per file (docs/cuda.md).
DQ_CUDA_BACKEND_FILES = \
	kernels/cuda/backend_cuda.cu kernels/cuda/backend_cuda.h kernels/cuda/cuda_internal.h \
	kernels/cuda/reduce.h kernels/cuda/convert.cu kernels/cuda/linear.cu \
	kernels/cuda/conv2d.cu kernels/cuda/norm.cu kernels/cuda/softmax.cu \
	kernels/cuda/attention.cu kernels/cuda/attention_flash.cu \
	kernels/cuda/attention_flash_kernel.cuh kernels/cuda/mma.cuh kernels/cuda/activation.cu \
	kernels/cuda/binary.cu kernels/cuda/layout.cu kernels/cuda/graph.cu
EXTRA_DIST += kernels/cuda/device.cu kernels/cuda/device.h $(DQ_CUDA_BACKEND_FILES) \
	tests/gpu/ops_cuda_vs_cpu.c tests/gpu/graph_cuda.c tests/gpu/check.sh tests/gpu/bundle.sh \
	tests/gpu/README.md \
	docs/cuda.md

# The CLIP BPE tokenizer: cleanup, pre-tokenization, BPE, vocabulary loading (OpenAI's merges
# file is installed to $(clipdatadir); DIFFQ_DATA_DIR overrides where it is looked for).
libdqengine_a_SOURCES += \
	kernels/tokenizer.c kernels/tokenizer.h \
	kernels/tokenizer_map.c kernels/tokenizer_map.h \
	kernels/tokenizer_text.c kernels/tokenizer_text.h \
	kernels/tokenizer_split.c kernels/tokenizer_split.h \
	kernels/tokenizer_bpe.c kernels/tokenizer_bpe.h \
	kernels/tokenizer_vocab.c kernels/tokenizer_vocab.h
# OpenAI CLIP's cleanup (the default rules): ftfy.fix_text (with its mojibake repair),
# html.unescape, str.lower; the two tables files are generated by
# tests/reference/gen_tokenizer_tables.py.
libdqengine_a_SOURCES += \
	kernels/tokenizer_cps.c kernels/tokenizer_cps.h \
	kernels/tokenizer_ftfy.c kernels/tokenizer_ftfy.h \
	kernels/tokenizer_html.c kernels/tokenizer_html.h \
	kernels/tokenizer_mojibake.c kernels/tokenizer_mojibake.h \
	kernels/tokenizer_tables.c kernels/tokenizer_mojibake_tables.c kernels/tokenizer_tables.h
libdqengine_a_CPPFLAGS = $(AM_CPPFLAGS) -DDQ_CLIP_DATADIR='"$(clipdatadir)"' \
	-DDQ_CLIP_SOURCE_DIR='"$(abs_top_srcdir)/data/clip"'
# zlib reads the gzip'd merges file; jansson reads vocab.json (both also come with DQ_COMMON_LIBS,
# but a static engine library must name them after itself).
DQ_ENGINE_CPU_LIBS += $(JANSSON_LIBS) $(ZLIB_LIBS)
clipdatadir = $(pkgdatadir)/clip
dist_clipdata_DATA = data/clip/bpe_simple_vocab_16e6.txt.gz data/clip/LICENSE

check_PROGRAMS += tests/unit/test_tokenizer
tests_unit_test_tokenizer_SOURCES = tests/unit/test_tokenizer.c
tests_unit_test_tokenizer_CFLAGS = $(DQ_UNIT_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_test_tokenizer_LDADD = $(DQ_ENGINE_LIBS) $(DQ_UNIT_LIBS)
DQ_UNIT_TESTS += tests/unit/test_tokenizer
DQ_SCRIPT_TESTS += tests/integration/cli_tokenize.sh
EXTRA_DIST += tests/reference/gen_tokenizer.py tests/reference/gen_tokenizer_tables.py \
	tests/reference/check_tokenizer_random.py \
	tests/reference/README.tokenizer.md

# Op tests: every CPU op against a naive double-precision reference (tests/unit/ops_harness.*
# is shared by op tests of any backend).
check_PROGRAMS += tests/unit/test_ops_cpu
tests_unit_test_ops_cpu_SOURCES = tests/unit/test_ops_cpu.c tests/unit/ops_harness.c \
	tests/unit/ops_harness.h
tests_unit_test_ops_cpu_CFLAGS = $(DQ_UNIT_CFLAGS) $(OPENBLAS_CFLAGS)
tests_unit_test_ops_cpu_LDADD = $(DQ_ENGINE_LIBS) $(DQ_UNIT_LIBS)
DQ_UNIT_TESTS += tests/unit/test_ops_cpu

check_PROGRAMS += tests/unit/test_ops_nhwc
tests_unit_test_ops_nhwc_SOURCES = tests/unit/test_ops_nhwc.c tests/unit/ops_harness.c \
	tests/unit/ops_harness.h
tests_unit_test_ops_nhwc_CFLAGS = $(DQ_UNIT_CFLAGS)
tests_unit_test_ops_nhwc_LDADD = $(DQ_ENGINE_LIBS) $(DQ_UNIT_LIBS)
DQ_UNIT_TESTS += tests/unit/test_ops_nhwc

# The op layer's activation dtype rules (F32/F16, one per op, what the CPU backend refuses).
check_PROGRAMS += tests/unit/test_ops_act_dtype
tests_unit_test_ops_act_dtype_SOURCES = tests/unit/test_ops_act_dtype.c
tests_unit_test_ops_act_dtype_CFLAGS = $(DQ_UNIT_CFLAGS)
tests_unit_test_ops_act_dtype_LDADD = $(DQ_ENGINE_LIBS) $(DQ_UNIT_LIBS)
DQ_UNIT_TESTS += tests/unit/test_ops_act_dtype

check_PROGRAMS += tests/unit/test_tensor_arena
tests_unit_test_tensor_arena_SOURCES = tests/unit/test_tensor_arena.c
tests_unit_test_tensor_arena_CFLAGS = $(DQ_UNIT_CFLAGS)
tests_unit_test_tensor_arena_LDADD = $(DQ_ENGINE_LIBS) $(DQ_UNIT_LIBS)
DQ_UNIT_TESTS += tests/unit/test_tensor_arena

# When a repeated step is recorded as a backend graph and replayed (CUDA graphs), against a fake
# backend whose graph hooks count calls and fail on demand.
check_PROGRAMS += tests/unit/test_step_graph
tests_unit_test_step_graph_SOURCES = tests/unit/test_step_graph.c
tests_unit_test_step_graph_CFLAGS = $(DQ_UNIT_CFLAGS)
tests_unit_test_step_graph_LDADD = $(DQ_ENGINE_LIBS) $(DQ_UNIT_LIBS)
DQ_UNIT_TESTS += tests/unit/test_step_graph

# Benchmark: built by `make check` so it keeps compiling, run by hand (see its header).
check_PROGRAMS += bench/ops_cpu
bench_ops_cpu_SOURCES = bench/ops_cpu.c
bench_ops_cpu_CFLAGS = $(AM_CFLAGS) $(OPENBLAS_CFLAGS)
bench_ops_cpu_LDADD = $(DQ_ENGINE_LIBS) $(DQ_COMMON_LIBS)

# Op tests against PyTorch/diffusers outputs (fixtures made by tests/reference/ops_fixture.py).
check_PROGRAMS += tests/unit/test_ops_fixture
tests_unit_test_ops_fixture_SOURCES = tests/unit/test_ops_fixture.c tests/unit/ops_harness.c \
	tests/unit/ops_harness.h
tests_unit_test_ops_fixture_CFLAGS = $(DQ_UNIT_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_test_ops_fixture_LDADD = $(DQ_ENGINE_LIBS) $(DQ_UNIT_LIBS)
DQ_UNIT_TESTS += tests/unit/test_ops_fixture
# (tests/fixtures/ as a whole is distributed by tests/local.mk.)
EXTRA_DIST += tests/reference/ops_fixture.py
# ---- Model files: safetensors, configs, parameter manifests, the model-folder loader.
libdqengine_a_SOURCES += \
	kernels/safetensors.c kernels/safetensors_write.c kernels/safetensors.h

check_PROGRAMS += tests/unit/test_safetensors
tests_unit_test_safetensors_SOURCES = tests/unit/test_safetensors.c
tests_unit_test_safetensors_CFLAGS = $(DQ_UNIT_CFLAGS)
tests_unit_test_safetensors_LDADD = $(DQ_ENGINE_LIBS) $(DQ_UNIT_LIBS)
DQ_UNIT_TESTS += tests/unit/test_safetensors
EXTRA_DIST += tests/reference/safetensors_samples.py

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
EXTRA_DIST += tests/reference/manifest.py

libdqengine_a_SOURCES += \
	kernels/model_ldm.c kernels/model_ldm.h kernels/model_infer.c \
	kernels/model_files.c kernels/model_files.h
libdqengine_a_SOURCES += \
	kernels/clip_vocab.c kernels/clip_vocab.h kernels/model_init.c kernels/model_init.h

check_PROGRAMS += tests/unit/test_model_files
tests_unit_test_model_files_SOURCES = tests/unit/test_model_files.c
tests_unit_test_model_files_CFLAGS = $(DQ_UNIT_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_test_model_files_LDADD = $(DQ_ENGINE_LIBS) $(DQ_UNIT_LIBS)
DQ_UNIT_TESTS += tests/unit/test_model_files
EXTRA_DIST += tests/reference/ldm_names.py

# A network's parameters as backend tensors, made once from a loaded model.
libdqengine_a_SOURCES += kernels/weights.c kernels/weights.h
check_PROGRAMS += tests/unit/test_weights
tests_unit_test_weights_SOURCES = tests/unit/test_weights.c
tests_unit_test_weights_CFLAGS = $(DQ_UNIT_CFLAGS)
tests_unit_test_weights_LDADD = $(DQ_ENGINE_LIBS) $(DQ_UNIT_LIBS)
DQ_UNIT_TESTS += tests/unit/test_weights

# The networks around the UNet: CLIP text encoder, VAE decoder, decoded image -> RGB8.
libdqengine_a_SOURCES += \
	kernels/clip_text.c kernels/clip_text.h \
	kernels/vae_decoder.c kernels/vae_decoder.h \
	kernels/image.c kernels/image.h
check_PROGRAMS += tests/unit/test_clip_text
tests_unit_test_clip_text_SOURCES = tests/unit/test_clip_text.c
tests_unit_test_clip_text_CFLAGS = $(DQ_UNIT_CFLAGS)
tests_unit_test_clip_text_LDADD = $(DQ_ENGINE_LIBS) $(DQ_UNIT_LIBS)
DQ_UNIT_TESTS += tests/unit/test_clip_text
check_PROGRAMS += tests/unit/test_vae
tests_unit_test_vae_SOURCES = tests/unit/test_vae.c
tests_unit_test_vae_CFLAGS = $(DQ_UNIT_CFLAGS)
tests_unit_test_vae_LDADD = $(DQ_ENGINE_LIBS) $(DQ_UNIT_LIBS)
DQ_UNIT_TESTS += tests/unit/test_vae
# Benchmark of both at SD 1.5 size against PyTorch (bench/run_encoders.sh runs it by hand).
check_PROGRAMS += bench/encoders_cpu
bench_encoders_cpu_SOURCES = bench/encoders_cpu.c
bench_encoders_cpu_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
bench_encoders_cpu_LDADD = $(DQ_ENGINE_LIBS) $(DQ_COMMON_LIBS)
EXTRA_DIST += bench/pytorch_encoders.py bench/run_encoders.sh bench/RESULTS.md

# The SD 1.x UNet (diffusers UNet2DConditionModel): blocks, network, FLOP count.
libdqengine_a_SOURCES += kernels/unet_blocks.c kernels/unet_blocks.h kernels/unet.c \
	kernels/unet.h kernels/unet_flops.c
check_PROGRAMS += tests/unit/test_unet
tests_unit_test_unet_SOURCES = tests/unit/test_unet.c
tests_unit_test_unet_CFLAGS = $(DQ_UNIT_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_test_unet_LDADD = $(DQ_ENGINE_LIBS) $(DQ_UNIT_LIBS)
DQ_UNIT_TESTS += tests/unit/test_unet
# The UNet's step recorded and replayed (what CUDA graphs do) on the CPU: a backend that records
# ops like stream capture and replays them must give the plain CPU backend's bits.
check_PROGRAMS += tests/unit/test_unet_graph
tests_unit_test_unet_graph_SOURCES = tests/unit/test_unet_graph.c tests/unit/record_backend.c \
	tests/unit/record_backend.h
tests_unit_test_unet_graph_CFLAGS = $(DQ_UNIT_CFLAGS)
tests_unit_test_unet_graph_LDADD = $(DQ_ENGINE_LIBS) $(DQ_UNIT_LIBS)
DQ_UNIT_TESTS += tests/unit/test_unet_graph
# UNet benchmark: built by `make check` so it keeps compiling, run by bench/run_unet.sh.
check_PROGRAMS += bench/unet_cpu
bench_unet_cpu_SOURCES = bench/unet_cpu.c
bench_unet_cpu_CFLAGS = $(AM_CFLAGS) $(OPENBLAS_CFLAGS)
bench_unet_cpu_LDADD = $(DQ_ENGINE_LIBS) $(DQ_COMMON_LIBS)
EXTRA_DIST += bench/pytorch_unet.py bench/run_unet.sh

# The text-to-image pipeline: what `diffq render` and the node's ranks call.
libdqengine_a_SOURCES += kernels/pipeline.c kernels/pipeline.h
check_PROGRAMS += tests/unit/test_pipeline
tests_unit_test_pipeline_SOURCES = tests/unit/test_pipeline.c
tests_unit_test_pipeline_CFLAGS = $(DQ_UNIT_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_test_pipeline_LDADD = $(DQ_ENGINE_LIBS) $(DQ_UNIT_LIBS)
DQ_UNIT_TESTS += tests/unit/test_pipeline

# Whole-render benchmark (images/s, peak device memory) beside bench/diffusers_gpu.py: built by
# `make check`, smoke-tested on the CPU by tests/gpu/bench_smoke.sh, run on a GPU by
# tests/gpu/check.sh (tests/gpu/bundle.sh carries it there).
check_PROGRAMS += bench/gpu_render
bench_gpu_render_SOURCES = bench/gpu_render.c bench/gpu_mem.c bench/gpu_mem.h
bench_gpu_render_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(CUDA_CPPFLAGS)
bench_gpu_render_LDADD = $(DQ_ENGINE_LIBS) $(DQ_COMMON_LIBS)
DQ_SCRIPT_TESTS += tests/gpu/bench_smoke.sh
EXTRA_DIST += bench/diffusers_gpu.py tests/gpu/f16_emulate.py tests/gpu/gpu_results.py

