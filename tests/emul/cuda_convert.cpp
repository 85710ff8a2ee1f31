/* tests/emul/cuda_convert.cpp: kernels/cuda/convert.cu built against the CPU emulation. */
#include "kernels/cuda/convert.cu"
