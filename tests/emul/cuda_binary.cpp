/* tests/emul/cuda_binary.cpp: kernels/cuda/binary.cu built against the CPU emulation. */
#include "kernels/cuda/binary.cu"
