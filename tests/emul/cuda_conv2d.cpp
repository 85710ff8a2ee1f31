/* tests/emul/cuda_conv2d.cpp: kernels/cuda/conv2d.cu built against the CPU emulation. */
#include "kernels/cuda/conv2d.cu"
