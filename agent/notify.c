/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "macro.h"
#include "notify.h"

int notify(const char *state) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        const char *e = getenv("NOTIFY_SOCKET");
        _cleanup_close_ int fd = -1;
        socklen_t len;
        size_t n;

        if (!e || !*e)
                return 0;
        n = strlen(e);
        if ((e[0] != '/' && e[0] != '@') || n >= sizeof(sa.sun_path))
                return -EAFNOSUPPORT;   /* vsock: and the like: not in an initrd */
        memcpy(sa.sun_path, e, n);
        if (e[0] == '@')
                sa.sun_path[0] = 0;     /* abstract namespace: no terminating NUL counted */
        len = offsetof(struct sockaddr_un, sun_path) + n + (e[0] == '/');

        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *) &sa, len) < 0)
                return -errno;
        return 1;
}

int notifyf(const char *format, ...) {
        _cleanup_free_ char *s = NULL;
        va_list ap;
        int r;

        if (!getenv("NOTIFY_SOCKET"))
                return 0;
        va_start(ap, format);
        r = vasprintf(&s, format, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        return notify(s);
}
