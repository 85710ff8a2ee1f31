/* tests/emul/cuda_backend_cuda.cpp: kernels/cuda/backend_cuda.cu on the CPU emulation. */
#include "kernels/cuda/backend_cuda.cu"
