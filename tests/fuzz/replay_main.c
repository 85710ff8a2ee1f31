/* tests/fuzz/replay_main.c: replays every file of a corpus directory through a fuzz target's
 * LLVMFuzzerTestOneInput, printing TAP; built with gcc by `make check` so fuzzer findings stay
 * fixed. Usage: fuzz_<x>_replay DIR (default $top_srcdir/tests/fuzz/corpus/<FUZZ_CORPUS>). */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int s_cmp(const void *a, const void *b) {
    return strcmp(*(char *const *) a, *(char *const *) b);
}

static int s_replay(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    size_t cap = 1 << 16, len = 0;
    uint8_t *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) {
            uint8_t *bigger = realloc(buf, cap * 2);
            if (!bigger) {
                free(buf);
                buf = NULL;
            }
            buf = bigger;
            cap *= 2;
        }
    }
    int bad = ferror(f) || !buf;
    fclose(f);
    if (!bad) LLVMFuzzerTestOneInput(buf, len);
    free(buf);
    return bad ? -1 : 0;
}

int main(int argc, char **argv) {
    char dir[4096];
    const char *top = getenv("top_srcdir");
    if (argc > 1)
        snprintf(dir, sizeof dir, "%s", argv[1]);
    else
        snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/%s", top ? top : ".", FUZZ_CORPUS);
    DIR *d = opendir(dir);
    if (!d) {
        printf("1..1\nnot ok 1 - cannot open corpus directory %s\n", dir);
        return 1;
    }
    char **names = NULL;
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.') continue;
        char **grown = realloc(names, (n + 1) * sizeof *names);
        if (!grown || !(grown[n] = strdup(e->d_name))) {
            fprintf(stderr, "out of memory\n");
            return 1;
        }
        names = grown;
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof *names, s_cmp);
    if (n == 0) {
        printf("1..1\nnot ok 1 - corpus %s is empty\n", dir);
        return 1;
    }
    printf("1..%zu\n", n);
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        int rc = s_replay(path);
        printf("%s %zu - %s\n", rc == 0 ? "ok" : "not ok", i + 1, names[i]);
        fflush(stdout);
        failed |= rc != 0;
        free(names[i]);
    }
    free(names);
    return failed;
}
