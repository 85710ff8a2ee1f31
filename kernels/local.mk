# kernels/: the text-to-image engine (tensor runtime, CPU and CUDA backends, SD 1.x networks).
