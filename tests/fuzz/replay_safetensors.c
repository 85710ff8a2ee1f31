/* tests/fuzz/replay_safetensors.c: runs the safetensors fuzz target over the committed corpus (or
 * the files named on the command line) without libFuzzer, so `make check` replays every past
 * finding under ASan/UBSan with gcc. Prints TAP: one case per file. */
#include "config.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Feeds one file to the target; returns 0 or -1 when it cannot be read. */
static int s_replay(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    size_t cap = 4096, len = 0, n;
    uint8_t *buf = malloc(cap);
    while (buf && (n = fread(buf + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap) {
            uint8_t *grown = realloc(buf, cap *= 2);
            if (!grown) free(buf);
            buf = grown;
        }
    }
    fclose(f);
    if (!buf) return -1;
    /* An exact-size copy, so a read one byte past the input is an ASan error. */
    uint8_t *exact = malloc(len ? len : 1);
    if (!exact) {
        free(buf);
        return -1;
    }
    memcpy(exact, buf, len);
    free(buf);
    LLVMFuzzerTestOneInput(exact, len);
    free(exact);
    return 0;
}

static int s_cmp(const void *a, const void *b) {
    return strcmp(*(char *const *) a, *(char *const *) b);
}

int main(int argc, char **argv) {
    if (argc > 1) {
        printf("1..%d\n", argc - 1);
        int bad = 0;
        for (int i = 1; i < argc; i++) {
            int rc = s_replay(argv[i]);
            printf("%s %d - %s\n", rc ? "not ok" : "ok", i, argv[i]);
            bad |= rc;
        }
        return bad ? 1 : 0;
    }
    const char *top = getenv("top_srcdir");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/safetensors", top ? top : ".");
    DIR *d = opendir(dir);
    if (!d) {
        printf("1..1\nnot ok 1 - cannot open %s\n", dir);
        return 1;
    }
    char **names = NULL;
    size_t count = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char **grown = realloc(names, (count + 1) * sizeof *names);
        if (!grown) break;
        names = grown;
        names[count++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, count, sizeof *names, s_cmp);
    printf("1..%zu\n", count);
    int bad = 0;
    for (size_t i = 0; i < count; i++) {
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        int rc = s_replay(path);
        printf("%s %zu - %s\n", rc ? "not ok" : "ok", i + 1, names[i]);
        bad |= rc;
        free(names[i]);
    }
    free(names);
    return bad ? 1 : 0;
}
