// cpu.c: make OpenBLAS use its AVX-512 kernels on CPUs newer than it knows.
//
// Debian 12's OpenBLAS 0.3.21 does not recognise recent Xeons (Sapphire/Emerald Rapids) and
// falls back to its SSE3 "Prescott" kernels: about 30 GFLOP/s instead of 210 on two cores.
// OpenBLAS picks its kernels in its library constructor, from OPENBLAS_CORETYPE if set, which
// has already run by the time our code does. So when OpenBLAS chose the generic fallback and
// the CPU has AVX-512 (or AVX2+FMA), this sets OPENBLAS_CORETYPE and asks OpenBLAS to pick
// again (gotoblas_dynamic_init, exported by every DYNAMIC_ARCH build), before any BLAS call.
// A value the user set is left alone. This file is compiled into every executable that links
// the engine (a static library member that nothing references would not be linked).
#include <stdlib.h>
#include <string.h>

char *openblas_get_corename(void);
void gotoblas_dynamic_init(void);
void gotoblas_dynamic_quit(void);

__attribute__((constructor)) static void emocam_pick_blas_core(void) {
    if (getenv("OPENBLAS_CORETYPE")) return;
    const char *core = openblas_get_corename();
    if (!core || (strcmp(core, "Prescott") != 0 && strcmp(core, "Core2") != 0 &&
                  strcmp(core, "Nehalem") != 0 && strcmp(core, "Sandybridge") != 0))
        return;
    __builtin_cpu_init();
    const char *want = NULL;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
        want = "SkylakeX";
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        want = "Haswell";
    if (!want || strcmp(core, want) == 0) return;
    setenv("OPENBLAS_CORETYPE", want, 1);
    gotoblas_dynamic_quit();
    gotoblas_dynamic_init();
}
