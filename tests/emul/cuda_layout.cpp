/* tests/emul/cuda_layout.cpp: kernels/cuda/layout.cu built against the CPU emulation. */
#include "kernels/cuda/layout.cu"
