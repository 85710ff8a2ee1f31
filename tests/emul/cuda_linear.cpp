/* tests/emul/cuda_linear.cpp: kernels/cuda/linear.cu built against the CPU emulation. */
#include "kernels/cuda/linear.cu"
