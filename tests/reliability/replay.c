/* Replays inputs through the fuzz entry points (fuzz/entry.c), in every build:
 *     replay TARGET PATH...
 * Each PATH is a file or a folder of files (not recursive). An input that crashes or trips an
 * invariant fails the test the way it failed the fuzzer; under ASan/UBSan and valgrind the
 * memory errors show too. Prints how many inputs ran. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "entry.h"

static int replay_file(const ember_fuzz_target *t, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: cannot open %s\n", path);
        return -1;
    }
    size_t cap = 1 << 16, size = 0;
    uint8_t *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + size, 1, cap - size, f)) > 0) {
        size += got;
        if (size == cap) {
            uint8_t *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (!buf) {
        fprintf(stderr, "replay: out of memory reading %s\n", path);
        return -1;
    }
    /* Exact-size copy so that ASan sees reads past the end, as under the fuzzer. */
    uint8_t *exact = malloc(size ? size : 1);
    if (!exact) {
        free(buf);
        return -1;
    }
    memcpy(exact, buf, size);
    free(buf);
    fprintf(stderr, "replay %s: %s (%zu bytes)\n", t->name, path, size);
    t->run(exact, size);
    free(exact);
    return 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: replay TARGET PATH...\n");
        return 2;
    }
    const ember_fuzz_target *t = NULL;
    for (const ember_fuzz_target *c = ember_fuzz_targets; c->name; c++)
        if (strcmp(c->name, argv[1]) == 0) t = c;
    if (!t) {
        fprintf(stderr, "replay: unknown target '%s'\n", argv[1]);
        return 2;
    }
    int count = 0, failures = 0;
    for (int i = 2; i < argc; i++) {
        struct stat sb;
        if (stat(argv[i], &sb) != 0) {
            fprintf(stderr, "replay: %s does not exist\n", argv[i]);
            failures++;
            continue;
        }
        if (!S_ISDIR(sb.st_mode)) {
            failures += replay_file(t, argv[i]) != 0;
            count++;
            continue;
        }
        DIR *d = opendir(argv[i]);
        if (!d) {
            failures++;
            continue;
        }
        char **names = NULL;
        size_t n = 0, cap = 0;
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.') continue; /* ., .., .gitkeep */
            if (n == cap) {
                cap = cap ? cap * 2 : 64;
                char **nn = realloc(names, cap * sizeof *nn);
                if (!nn) break;
                names = nn;
            }
            names[n++] = strdup(e->d_name);
        }
        closedir(d);
        if (n) qsort(names, n, sizeof *names, cmp_str); /* same order every time */
        for (size_t k = 0; k < n; k++) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[i], names[k]);
            free(names[k]);
            if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) continue;
            failures += replay_file(t, path) != 0;
            count++;
        }
        free(names);
    }
    printf("replay %s: %d inputs, %d unreadable\n", t->name, count, failures);
    return failures ? 1 : 0;
}
