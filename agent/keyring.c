/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <linux/keyctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "keyring.h"
#include "log.h"
#include "secret.h"

#define KEY_TYPE "user"

/* Permission bits (keyutils.h; the kernel UAPI header lacks them). */
#define KEY_POS_VIEW    0x01000000
#define KEY_POS_READ    0x02000000
#define KEY_POS_SEARCH  0x08000000
#define KEY_POS_SETATTR 0x20000000
#define KEY_USR_VIEW    0x00010000
#define KEY_USR_READ    0x00020000
#define KEY_USR_SEARCH  0x00080000
#define KEY_USR_SETATTR 0x00200000

static long keyctl(int cmd, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5) {
        return syscall(SYS_keyctl, cmd, a2, a3, a4, a5);
}

static int find_key(const char *description) {
        long k = keyctl(KEYCTL_SEARCH, (unsigned long) KEY_SPEC_USER_KEYRING, (unsigned long) KEY_TYPE,
                        (unsigned long) description, 0);
        if (k < 0)
                return errno == ENOKEY || errno == EKEYEXPIRED || errno == EKEYREVOKED ? -ENOKEY : -errno;
        return (int) k;
}

int keyring_store(const char *description, const void *data, size_t size, unsigned timeout_sec) {
        long k;
        int r;

        /* An old key of this name has no write permission (see below), so
         * add_key() could not update it: replace it. */
        r = keyring_drop(description);
        if (r < 0)
                return log_debug_errno(r, "Cannot replace the old key %s: %m", description);
        k = syscall(SYS_add_key, KEY_TYPE, description, data, size, KEY_SPEC_USER_KEYRING);
        if (k < 0)
                return log_debug_errno(errno, "add_key(%s) failed: %m", description);
        /* Possessor and owner (root) may view, read, search and set
         * attributes; group and others nothing. */
        if (keyctl(KEYCTL_SETPERM, (unsigned long) k,
                   KEY_POS_VIEW | KEY_POS_READ | KEY_POS_SEARCH | KEY_POS_SETATTR |
                   KEY_USR_VIEW | KEY_USR_READ | KEY_USR_SEARCH | KEY_USR_SETATTR, 0, 0) < 0) {
                r = -errno;
                (void) keyctl(KEYCTL_INVALIDATE, (unsigned long) k, 0, 0, 0);
                return log_debug_errno(r, "Failed to restrict key permissions: %m");
        }
        if (timeout_sec > 0 && keyctl(KEYCTL_SET_TIMEOUT, (unsigned long) k, timeout_sec, 0, 0) < 0) {
                r = -errno;
                (void) keyctl(KEYCTL_INVALIDATE, (unsigned long) k, 0, 0, 0);
                return log_debug_errno(r, "Failed to set key expiry: %m");
        }
        return 0;
}

int keyring_read(const char *description, void **ret, size_t *ret_size) {
        void *buf = NULL;
        long n;
        int k;

        k = find_key(description);
        if (k < 0)
                return k;
        n = keyctl(KEYCTL_READ, (unsigned long) k, 0, 0, 0);
        if (n < 0)
                return errno == EKEYEXPIRED || errno == EKEYREVOKED ? -ENOKEY : -errno;
        if (n > 4096)
                return -E2BIG;
        buf = secret_alloc((size_t) n);
        if (!buf)
                return -ENOMEM;
        long m = keyctl(KEYCTL_READ, (unsigned long) k, (unsigned long) buf, (unsigned long) n, 0);
        if (m < 0 || m != n) {
                int r = m < 0 ? -errno : -EIO;
                secret_free(buf);
                return r;
        }
        *ret = buf;
        *ret_size = (size_t) n;
        return 0;
}

int keyring_drop(const char *description) {
        int k = find_key(description);

        if (k == -ENOKEY)
                return 0;
        if (k < 0)
                return k;
        if (keyctl(KEYCTL_INVALIDATE, (unsigned long) k, 0, 0, 0) < 0 &&
            keyctl(KEYCTL_UNLINK, (unsigned long) k, (unsigned long) KEY_SPEC_USER_KEYRING, 0, 0) < 0)
                return -errno;
        return 0;
}
