/* tests/emul/cuda_attention.cpp: kernels/cuda/attention.cu built against the CPU emulation. */
#include "kernels/cuda/attention.cu"
