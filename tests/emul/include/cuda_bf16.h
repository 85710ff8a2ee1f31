/* tests/emul/include/cuda_bf16.h: the emulation's stand-in (see emul_core.h). */
#include "tests/emul/include/cuda_runtime_api.h"
