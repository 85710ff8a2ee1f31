/* tests/emul/cuda_device.cpp: kernels/cuda/device.cu built against the CPU emulation. */
#include "kernels/cuda/device.cu"
