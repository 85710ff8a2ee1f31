/* tests/emul/cuda_graph.cpp: kernels/cuda/graph.cu built against the CPU emulation. */
#include "kernels/cuda/graph.cu"
