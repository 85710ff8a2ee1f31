/* tests/emul/cuda_activation.cpp: kernels/cuda/activation.cu built against the CPU emulation. */
#include "kernels/cuda/activation.cu"
