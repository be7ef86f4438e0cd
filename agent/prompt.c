/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>

#include "log.h"
#include "prompt.h"
#include "secret.h"

/* Reads a line without echo from fd, with backspace and Ctrl-U editing. */
static int read_secret_line(int fd, char *buf, size_t size) {
        size_t n = 0;

        for (;;) {
                char c;
                ssize_t k = read(fd, &c, 1);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        return n > 0 ? (int) n : -EPIPE;
                if (c == '\n' || c == '\r')
                        break;
                if (c == 3 || c == 27)          /* Ctrl-C, ESC */
                        return -ECANCELED;
                if (c == 4) {                   /* Ctrl-D */
                        if (n == 0)
                                return -EPIPE;
                        break;
                }
                if (c == 21) {                  /* Ctrl-U */
                        explicit_bzero(buf, n);
                        n = 0;
                        continue;
                }
                if (c == 8 || c == 127) {       /* backspace */
                        if (n > 0)
                                buf[--n] = 0;
                        continue;
                }
                if ((unsigned char) c < 32)
                        continue;
                if (n + 1 >= size)              /* bounded: ignore overflow */
                        continue;
                buf[n++] = c;
        }
        buf[n] = 0;
        return (int) n;
}

int prompt_ask_tty(const char *message, const char *prompt, char **ret) {
        _cleanup_close_ int fd = -1;
        _cleanup_secret_ char *buf = NULL;
        struct termios old, raw;
        bool is_tty;
        int r;

        fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (fd < 0) {
                if (!isatty(STDIN_FILENO))
                        return -ENXIO;
                fd = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3);
                if (fd < 0)
                        return -errno;
        }

        buf = secret_alloc(PROMPT_MAX_INPUT);
        if (!buf)
                return -ENOMEM;

        is_tty = tcgetattr(fd, &old) == 0;
        if (is_tty) {
                raw = old;
                raw.c_lflag &= ~(ECHO | ICANON | ISIG);
                raw.c_cc[VMIN] = 1;
                raw.c_cc[VTIME] = 0;
                (void) tcsetattr(fd, TCSANOW, &raw);
        }
        if (message)
                dprintf(fd, "%s\n", message);
        dprintf(fd, "%s: ", prompt);

        r = read_secret_line(fd, buf, PROMPT_MAX_INPUT);

        if (is_tty)
                (void) tcsetattr(fd, TCSANOW, &old);
        dprintf(fd, "\n");
        if (r < 0)
                return r;
        *ret = TAKE_PTR(buf);
        return 0;
}
