/*
 * libcublas.so.12 for a machine that has only CUDA 13's libcublas.so.13.
 *
 * JCublas2 12.6.0's native library needs libcublas.so.12 and binds every cuBLAS function it calls
 * to the symbol version "libcublas.so.12", so it does not load against CUDA 13. This library takes
 * that name: for each function JCublas2 imports (jcublas2-12.6.0-imports.txt) it exports, with
 * that version (libcublas.so.12.map), a trampoline that jumps to the function of the same name in
 * libcublas.so.13. The trampoline is one indirect jump, written in assembly, so every argument
 * (registers, stack, a hidden struct-return pointer) and the return value pass through unchanged
 * whatever the function's signature, and no cuBLAS header is needed.
 *
 * The targets are resolved once, when this library loads (a constructor; the dynamic loader runs
 * it before the constructors of JCublas2, which depends on it). A function that libcublas.so.13
 * lacks, or every function when libcublas.so.13 cannot be loaded, is named on stderr at load
 * time; calling it names it on stderr again and returns CUBLAS_STATUS_NOT_SUPPORTED (JCublas2
 * then throws), or, for the three functions that return no status, aborts. It never jumps into
 * nowhere.
 *
 * Environment:
 *   GRADSCOPE_CUBLAS13=PATH              dlopen this file instead of "libcublas.so.13"
 *   GRADSCOPE_CUBLAS_COMPAT_VERBOSE=1    on load, say which file was opened and how many resolved
 *
 * Built by scripts/build-cublas-compat.sh, which turns the import list into gs_cublas_symbols.h:
 * one GS_CUBLAS_SYMBOL(name) line per function.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GS_HIDDEN __attribute__((visibility("hidden")))

static const char *gs_cublas13_path(void) {
    const char *path = getenv("GRADSCOPE_CUBLAS13");
    return path != NULL && path[0] != '\0' ? path : "libcublas.so.13";
}

/* cublasStatus_t's CUBLAS_STATUS_NOT_SUPPORTED (cublas_api.h). */
enum { GS_CUBLAS_STATUS_NOT_SUPPORTED = 15 };

/* The imported functions that do not return a cublasStatus_t: a missing one aborts instead. */
static const char *const gs_not_returning_status[] = {
    "cublasGetCudartVersion", "cublasGetStatusName", "cublasGetStatusString",
};

/*
 * What a trampoline jumps to while its function is unresolved. It names the function on stderr
 * (once per function) and returns CUBLAS_STATUS_NOT_SUPPORTED, which JCublas2 turns into an
 * exception that names the call; the arguments are ignored, which the x86-64 calling convention
 * allows. For a function that returns something else there is no honest value, so it aborts.
 */
static int gs_missing(const char *name, int *reported) {
    for (size_t i = 0; i < sizeof gs_not_returning_status / sizeof gs_not_returning_status[0]; i++) {
        if (strcmp(name, gs_not_returning_status[i]) == 0) {
            fprintf(stderr,
                    "libcublas.so.12 (GradScope compatibility library): %s was called, but it is not in "
                    "%s, so it cannot be forwarded; aborting.\n",
                    name, gs_cublas13_path());
            fflush(stderr);
            abort();
        }
    }
    if (!__atomic_exchange_n(reported, 1, __ATOMIC_RELAXED)) {
        fprintf(stderr,
                "libcublas.so.12 (GradScope compatibility library): %s was called, but it is not in %s; "
                "returning CUBLAS_STATUS_NOT_SUPPORTED.\n",
                name, gs_cublas13_path());
        fflush(stderr);
    }
    return GS_CUBLAS_STATUS_NOT_SUPPORTED;
}

/*
 * Per function: the slot its trampoline jumps through (initially the function's own "missing"
 * stub), that stub, and the trampoline itself. The trampoline is the exported symbol; the slot is
 * hidden, so the jump reads it with one RIP-relative load and no GOT. push/popsection leave the
 * compiler's idea of the current section intact.
 */
#define GS_CUBLAS_SYMBOL(name)                                                                     \
    static int gs_reported_##name;                                                                 \
    static int gs_missing_##name(void) { return gs_missing(#name, &gs_reported_##name); }          \
    GS_HIDDEN void *gs_slot_##name = (void *)gs_missing_##name;                                    \
    __asm__(".pushsection .text, \"ax\", @progbits\n"                                              \
            ".globl " #name "\n"                                                                   \
            ".type " #name ", @function\n"                                                         \
            ".p2align 4\n" #name ":\n"                                                             \
            "\tjmp *gs_slot_" #name "(%rip)\n"                                                     \
            ".size " #name ", . - " #name "\n"                                                    \
            ".popsection\n");
#include "gs_cublas_symbols.h"
#undef GS_CUBLAS_SYMBOL

static const struct {
    const char *name;
    void **slot;
} gs_symbols[] = {
#define GS_CUBLAS_SYMBOL(name) {#name, &gs_slot_##name},
#include "gs_cublas_symbols.h"
#undef GS_CUBLAS_SYMBOL
};

enum { GS_SYMBOL_COUNT = sizeof gs_symbols / sizeof gs_symbols[0] };

static int gs_verbose(void) {
    const char *value = getenv("GRADSCOPE_CUBLAS_COMPAT_VERBOSE");
    return value != NULL && value[0] != '\0' && strcmp(value, "0") != 0;
}

/* The path of the file that holds address, or "?" when the loader cannot tell. */
static const char *gs_file_of(const void *address) {
    Dl_info info;
    return dladdr(address, &info) != 0 && info.dli_fname != NULL ? info.dli_fname : "?";
}

__attribute__((constructor)) static void gs_resolve_all(void) {
    const char *path = gs_cublas13_path();
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) {
        fprintf(stderr,
                "libcublas.so.12 (GradScope compatibility library): cannot load %s (%s); none of its "
                "%d functions can be forwarded, and each returns CUBLAS_STATUS_NOT_SUPPORTED. Put the folder of "
                "CUDA 13's libcublas.so.13 on LD_LIBRARY_PATH or name the file in GRADSCOPE_CUBLAS13.\n",
                path, dlerror(), (int) GS_SYMBOL_COUNT);
        return;
    }
    const char *self = gs_file_of((const void *) gs_resolve_all);
    int missing = 0;
    for (int i = 0; i < GS_SYMBOL_COUNT; i++) {
        void *target = dlsym(handle, gs_symbols[i].name);
        /* Refuse to forward to ourselves (GRADSCOPE_CUBLAS13 naming this file): that would loop. */
        if (target != NULL && strcmp(gs_file_of(target), self) != 0) {
            *gs_symbols[i].slot = target;
        } else {
            if (missing++ == 0) {
                fprintf(stderr, "libcublas.so.12 (GradScope compatibility library): not in %s, so "
                                "calling it fails:", path);
            }
            fprintf(stderr, " %s", gs_symbols[i].name);
        }
    }
    if (missing > 0) {
        fprintf(stderr, " (%d of %d)\n", missing, (int) GS_SYMBOL_COUNT);
    }
    if (gs_verbose()) {
        struct link_map *map = NULL;
        const char *opened = dlinfo(handle, RTLD_DI_LINKMAP, &map) == 0 && map != NULL ? map->l_name : path;
        fprintf(stderr,
                "libcublas.so.12 (GradScope compatibility library, %s): forwarding %d of %d cuBLAS "
                "functions to %s\n",
                self, (int) GS_SYMBOL_COUNT - missing, (int) GS_SYMBOL_COUNT, opened);
    }
    /* The handle stays open for the life of the process: the slots point into it. */
}
