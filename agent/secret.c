/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "secret.h"

/* Layout: [header (size, mapped length)] [data] [NUL]. Allocations are whole
 * pages of their own, so mlock() and MADV_DONTDUMP cover nothing else. */
typedef struct SecretHeader {
        size_t size;
        size_t length;
} SecretHeader;

void *secret_alloc(size_t size) {
        long page = sysconf(_SC_PAGESIZE);
        size_t length;
        SecretHeader *h;

        if (page <= 0)
                page = 4096;
        if (size > SIZE_MAX - sizeof(SecretHeader) - 1 - (size_t) page)
                return NULL;
        length = (sizeof(SecretHeader) + size + 1 + (size_t) page - 1) / (size_t) page * (size_t) page;

        h = mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (h == MAP_FAILED)
                return NULL;
        (void) mlock(h, length);                 /* best effort: RLIMIT_MEMLOCK may be small */
        (void) madvise(h, length, MADV_DONTDUMP);
        (void) madvise(h, length, MADV_WIPEONFORK);
        h->size = size;
        h->length = length;
        return h + 1;
}

void *secret_memdup(const void *p, size_t size) {
        void *q = secret_alloc(size);
        if (q && size > 0)
                memcpy(q, p, size);
        return q;
}

char *secret_strdup(const char *s) {
        return secret_memdup(s, strlen(s));
}

size_t secret_size(const void *p) {
        return p ? ((const SecretHeader *) p - 1)->size : 0;
}

void *secret_free(void *p) {
        SecretHeader *h;
        size_t length;

        if (!p)
                return NULL;
        h = (SecretHeader *) p - 1;
        length = h->length;
        explicit_bzero(h, length);
        (void) munlock(h, length);
        (void) munmap(h, length);
        return NULL;
}

int secret_getenv_erase(const char *name, char **ret) {
        char *e = getenv(name), *copy;

        if (!e) {
                *ret = NULL;
                return 0;
        }
        copy = secret_strdup(e);
        /* The value lives in the environment block (the initial stack, or
         * the heap after setenv()): wipe it there, then drop the variable. */
        explicit_bzero(e, strlen(e));
        (void) unsetenv(name);
        if (!copy)
                return -ENOMEM;
        *ret = copy;
        return 1;
}

void secret_harden_process(void) {
        /* No core dumps with secrets in them, no ptrace by other users, no
         * reading of /proc/PID/mem by them. Non-dumpable alone still allows
         * a root-owned core with fs.suid_dumpable=2 (a setting some
         * distributions use for their crash reporters): a core size limit
         * of 0 makes the kernel, systemd-coredump and apport skip it. */
        (void) prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
        (void) setrlimit(RLIMIT_CORE, &(struct rlimit) { 0, 0 });
}
