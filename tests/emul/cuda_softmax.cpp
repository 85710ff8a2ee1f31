/* tests/emul/cuda_softmax.cpp: kernels/cuda/softmax.cu built against the CPU emulation. */
#include "kernels/cuda/softmax.cu"
