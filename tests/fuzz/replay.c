/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Without libFuzzer: runs a fuzz target over every file of the corpus
 * directories given (seeds and crashes found earlier, kept as regression
 * tests). */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path) {
        FILE *f = fopen(path, "rb");
        uint8_t *buf;
        long n;

        if (!f)
                return -1;
        fseek(f, 0, SEEK_END);
        n = ftell(f);
        rewind(f);
        buf = malloc(n > 0 ? (size_t) n : 1);
        if (!buf || (n > 0 && fread(buf, 1, (size_t) n, f) != (size_t) n)) {
                fclose(f);
                free(buf);
                return -1;
        }
        fclose(f);
        LLVMFuzzerTestOneInput(buf, (size_t) n);
        free(buf);
        return 0;
}

int main(int argc, char *argv[]) {
        unsigned count = 0;

        for (int i = 1; i < argc; i++) {
                DIR *d = opendir(argv[i]);
                struct dirent *e;

                if (!d) {
                        if (run_file(argv[i]) < 0)
                                return fprintf(stderr, "cannot read %s\n", argv[i]), 1;
                        count++;
                        continue;
                }
                while ((e = readdir(d))) {
                        char p[4096];
                        if (e->d_name[0] == '.')
                                continue;
                        snprintf(p, sizeof(p), "%s/%s", argv[i], e->d_name);
                        if (run_file(p) < 0)
                                return fprintf(stderr, "cannot read %s\n", p), 1;
                        count++;
                }
                closedir(d);
        }
        printf("replayed %u inputs\n", count);
        return count > 0 ? 0 : 1;
}
