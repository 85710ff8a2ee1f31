/* tests/emul/cuda_norm.cpp: kernels/cuda/norm.cu built against the CPU emulation. */
#include "kernels/cuda/norm.cu"
