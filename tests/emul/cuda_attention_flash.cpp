/* tests/emul/cuda_attention_flash.cpp: kernels/cuda/attention_flash.cu on the CPU emulation. */
#include "kernels/cuda/attention_flash.cu"
