/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A stand-in for unlockd in the initrd of tests/vm/test-containment.py: it
 * crashes or hangs, as a broken unlockd might, so that the test can show
 * that the boot still reaches systemd-cryptsetup's own prompt.
 *
 * What it does is chosen per boot by the host, with an SMBIOS OEM string
 * (QEMU: -smbios type=11,value=unlockd-vm-fault=crash|hang), read from the
 * raw DMI table the kernel exports. No string: it exits with 1, as unlockd
 * does when it cannot open a volume.
 *
 *   crash  dies of SIGSEGV (a write through a null pointer);
 *   hang   ignores SIGTERM and waits for ever, never notifying systemd:
 *          only the unit's TimeoutStartSec= and then SIGKILL end it. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void kmsg(const char *msg) {
        int fd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);

        if (fd >= 0) {
                (void) !write(fd, msg, strlen(msg));
                close(fd);
        }
        fprintf(stderr, "%s", msg);
}

static const char *fault(void) {
        static char table[65536];
        ssize_t n = 0, k;
        int fd;

        fd = open("/sys/firmware/dmi/tables/DMI", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return NULL;
        /* sysfs hands out a page per read(). */
        while (n < (ssize_t) sizeof(table) && (k = read(fd, table + n, sizeof(table) - n)) > 0)
                n += k;
        close(fd);
        /* The table holds NUL-separated strings: search it as bytes. */
        for (ssize_t i = 0; i + 17 < n; i++) {
                if (memcmp(table + i, "unlockd-vm-fault=", 17) != 0)
                        continue;
                if (i + 22 <= n && memcmp(table + i + 17, "crash", 5) == 0)
                        return "crash";
                if (i + 21 <= n && memcmp(table + i + 17, "hang", 4) == 0)
                        return "hang";
        }
        return NULL;
}

int main(void) {
        const char *f = fault();

        if (f && strcmp(f, "crash") == 0) {
                kmsg("<3>unlockd-vm-fault: crashing (SIGSEGV)\n");
                *(volatile int *) NULL = 1;
        }
        if (f && strcmp(f, "hang") == 0) {
                kmsg("<3>unlockd-vm-fault: hanging, ignoring SIGTERM\n");
                signal(SIGTERM, SIG_IGN);
                for (;;)
                        pause();
        }
        kmsg("<3>unlockd-vm-fault: no fault chosen, failing\n");
        return 1;
}
