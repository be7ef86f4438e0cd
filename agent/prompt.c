/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
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

/* ---- multi-console prompt ------------------------------------------------ */

#include <poll.h>
#include <time.h>

#define CONSOLES_MAX 16

typedef struct Console {
        char *path;
        int fd;
        bool restore;
        struct termios saved;
        char *buf;                      /* secret */
        size_t len;
        bool gone;
} Console;

static uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

static size_t active_consoles(char *paths[CONSOLES_MAX]) {
        _cleanup_close_ int fd = -1;
        char buf[512];
        ssize_t n;
        size_t k = 0;
        char *save = NULL;

        fd = open("/sys/class/tty/console/active", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return 0;
        n = read(fd, buf, sizeof(buf) - 1);
        if (n <= 0)
                return 0;
        buf[n] = 0;
        for (char *w = strtok_r(buf, " \t\n", &save); w && k < CONSOLES_MAX; w = strtok_r(NULL, " \t\n", &save))
                if (asprintf(&paths[k], "/dev/%s", w) >= 0)
                        k++;
        return k;
}

static void console_say(Console *c, const char *s) {
        if (!c->gone)
                (void) !write(c->fd, s, strlen(s));
}

static void console_prompt(Console *c, const PromptOptions *o, bool with_message) {
        if (with_message && o->message) {
                console_say(c, "\r\n");
                for (const char *p = o->message; *p;) {
                        size_t n = strcspn(p, "\n");
                        (void) !write(c->fd, p, n);
                        console_say(c, "\r\n");
                        p += n;
                        if (*p)
                                p++;
                }
        }
        console_say(c, o->prompt ?: "Passphrase");
        console_say(c, ": ");
}

static void console_close(Console *c, const char *farewell) {
        if (c->fd >= 0) {
                if (farewell && !c->gone)
                        console_say(c, farewell);
                if (c->restore) {
                        (void) tcflush(c->fd, TCIFLUSH);
                        (void) tcsetattr(c->fd, TCSANOW, &c->saved);
                }
                close(c->fd);
        }
        c->fd = -1;
        secret_free(c->buf);
        c->buf = NULL;
        free(c->path);
        c->path = NULL;
}

/* Feeds one byte to a console's line editor. Returns 1 when a line is
 * complete, -ECANCELED on cancel, 0 otherwise. */
static int console_feed(Console *c, char ch) {
        switch (ch) {
        case '\r':
        case '\n':
                c->buf[c->len] = 0;
                return 1;
        case 3:         /* Ctrl-C */
        case 27:        /* ESC */
                explicit_bzero(c->buf, PROMPT_MAX_INPUT);
                c->len = 0;
                return -ECANCELED;
        case 21:        /* Ctrl-U */
                explicit_bzero(c->buf, PROMPT_MAX_INPUT);
                c->len = 0;
                return 0;
        case 8:
        case 127:       /* backspace */
                if (c->len > 0)
                        c->buf[--c->len] = 0;
                return 0;
        }
        if ((unsigned char) ch < 32)
                return 0;
        if (c->len + 1 < PROMPT_MAX_INPUT)
                c->buf[c->len++] = ch;
        return 0;
}

static int ask_password_check(const PromptOptions *o, PromptCheck check, void *userdata);

int prompt_ask_check(const PromptOptions *o, PromptCheck check, void *userdata) {
        char *paths[CONSOLES_MAX] = {};
        Console cons[CONSOLES_MAX];
        size_t n_paths = 0, n = 0, alive;
        uint64_t deadline = o->timeout_usec ? now_usec() + o->timeout_usec : 0;
        unsigned tries = 0;
        int winner = -1, r;

        /* Under systemd, its agents (console, Plymouth, wall) ask for us. */
        if (o->ask_password > 0 || (o->ask_password < 0 && access("/run/systemd/system", F_OK) == 0))
                return ask_password_check(o, check, userdata);

        if (o->consoles)
                for (char *const *p = o->consoles; *p && n_paths < CONSOLES_MAX; p++)
                        paths[n_paths++] = strdup(*p);
        else
                n_paths = active_consoles(paths);

        for (size_t i = 0; i < n_paths; i++) {
                Console *c = &cons[n];

                if (!paths[i])
                        continue;
                *c = (Console) { .path = paths[i], .fd = -1 };
                paths[i] = NULL;
                c->fd = open(c->path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
                if (c->fd < 0) {
                        log_debug_errno(errno, "Cannot open console %s: %m", c->path);
                        free(c->path);
                        continue;
                }
                c->buf = secret_alloc(PROMPT_MAX_INPUT);
                if (!c->buf) {
                        console_close(c, NULL);
                        r = -ENOMEM;
                        goto finish;
                }
                if (tcgetattr(c->fd, &c->saved) == 0) {
                        struct termios raw = c->saved;
                        raw.c_lflag &= ~(ECHO | ICANON | ISIG | IEXTEN);
                        raw.c_iflag &= ~(ICRNL | IXON);
                        raw.c_cc[VMIN] = 1;
                        raw.c_cc[VTIME] = 0;
                        c->restore = tcsetattr(c->fd, TCSANOW, &raw) == 0;
                }
                console_prompt(c, o, true);
                n++;
        }
        if (n == 0)
                return log_debug_errno(ENXIO, "No console to ask on.");

        for (;;) {
                struct pollfd p[CONSOLES_MAX];
                int timeout_ms = -1, k;

                alive = 0;
                for (size_t i = 0; i < n; i++) {
                        p[i] = (struct pollfd) { .fd = cons[i].gone ? -1 : cons[i].fd, .events = POLLIN };
                        alive += !cons[i].gone;
                }
                if (alive == 0) {
                        r = -EPIPE;
                        goto finish;
                }
                if (deadline) {
                        uint64_t now = now_usec();
                        if (now >= deadline) {
                                r = -ETIME;
                                goto finish;
                        }
                        timeout_ms = (int) MIN((deadline - now + 999) / 1000, (uint64_t) INT32_MAX);
                }
                if (o->alive) {
                        o->alive(userdata);
                        if (timeout_ms < 0 || (uint64_t) timeout_ms > PROMPT_ALIVE_USEC / 1000)
                                timeout_ms = (int) (PROMPT_ALIVE_USEC / 1000);
                }
                k = poll(p, n, timeout_ms);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        goto finish;
                }
                for (size_t i = 0; i < n; i++) {
                        Console *c = &cons[i];
                        char chunk[64];
                        ssize_t got;

                        if (c->gone || !(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
                                continue;
                        got = read(c->fd, chunk, sizeof(chunk));
                        if (got < 0 && (errno == EAGAIN || errno == EINTR))
                                continue;
                        if (got <= 0) {
                                /* EOF or a line unplugged: this console only. */
                                log_debug("Console %s went away.", c->path);
                                c->gone = true;
                                continue;
                        }
                        for (ssize_t b = 0; b < got; b++) {
                                int f = console_feed(c, chunk[b]);
                                if (f == -ECANCELED) {
                                        console_say(c, "\r\n(cancelled)\r\n");
                                        console_prompt(c, o, false);
                                        continue;
                                }
                                if (f == 0)
                                        continue;
                                console_say(c, "\r\n");
                                if (c->len == 0) {
                                        console_prompt(c, o, false);
                                        continue;
                                }
                                r = check(c->buf, userdata);
                                explicit_bzero(c->buf, PROMPT_MAX_INPUT);
                                c->len = 0;
                                if (r == 0) {
                                        winner = (int) i;
                                        explicit_bzero(chunk, sizeof(chunk));
                                        goto finish;
                                }
                                if (r != -EPERM) {
                                        explicit_bzero(chunk, sizeof(chunk));
                                        goto finish;
                                }
                                tries++;
                                if (o->max_tries > 0 && tries >= o->max_tries) {
                                        console_say(c, "That did not unlock it. No more tries.\r\n");
                                        explicit_bzero(chunk, sizeof(chunk));
                                        r = -EDQUOT;
                                        goto finish;
                                }
                                console_say(c, "That did not unlock it. Try again.\r\n");
                                console_prompt(c, o, false);
                        }
                        explicit_bzero(chunk, sizeof(chunk));
                }
        }

finish:
        for (size_t i = 0; i < n; i++)
                console_close(&cons[i], winner >= 0 && (int) i != winner ? "\r\n(answered on another console)\r\n" :
                                        r == -ETIME ? "\r\n(timed out)\r\n" : NULL);
        for (size_t i = 0; i < n_paths; i++)
                free(paths[i]);
        return r;
}

/* ---- systemd's ask-password protocol ------------------------------------------ */

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#define ASK_REPLY_MAX (64 * 1024)

static int random_hex(char *buf, size_t n) {
        static const char hex[] = "0123456789abcdef";
        uint8_t b[16];

        if (n / 2 > sizeof(b) || getrandom(b, n / 2, 0) != (ssize_t) (n / 2))
                return -EIO;
        for (size_t i = 0; i < n / 2; i++) {
                buf[2 * i] = hex[b[i] >> 4];
                buf[2 * i + 1] = hex[b[i] & 15];
        }
        buf[n / 2 * 2] = 0;
        return 0;
}

/* Writes an ask file atomically; *ret_path is the file to remove later. */
static int write_ask_file(const char *dir, const char *socket_path, const PromptOptions *o, const char *note,
                          uint64_t not_after, char **ret_path) {
        _cleanup_free_ char *tmp = NULL, *path = NULL, *msg = NULL;
        _cleanup_close_ int fd = -1;
        char id[17];
        FILE *f;
        int r;

        r = random_hex(id, 16);
        if (r < 0)
                return r;
        if (asprintf(&tmp, "%s/.tmp.ask.%s", dir, id) < 0 || asprintf(&path, "%s/ask.%s", dir, id) < 0 ||
            asprintf(&msg, "%s%s%s", note ?: "", note ? " " : "", o->message ?: "") < 0)
                return -ENOMEM;
        /* One line: the agents show Message= as it is. */
        for (char *p = msg; *p; p++)
                if (*p == '\n' || *p == '\r')
                        *p = ' ';

        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0)
                return -errno;
        f = fdopen(fd, "w");
        if (!f)
                return -errno;
        fd = -1;
        /* Like systemd-cryptsetup's, the message ends in the question and
         * a colon; the agents add the input field after it. */
        fprintf(f, "[Ask]\nPID=%d\nSocket=%s\nAcceptCached=0\nEcho=0\nNotAfter=%llu\nIcon=drive-harddisk\n"
                   "Message=%s %s:\n",
                (int) getpid(), socket_path, (unsigned long long) not_after, msg, o->prompt ?: "Passphrase");
        if (o->id)
                fprintf(f, "Id=%s\n", o->id);
        r = fflush(f) == 0 && fsync(fileno(f)) == 0 ? 0 : -errno;
        fclose(f);
        if (r == 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0) {
                (void) unlink(tmp);
                return r;
        }
        *ret_path = TAKE_PTR(path);
        return 0;
}

static int ask_password_check(const PromptOptions *o, PromptCheck check, void *userdata) {
        const char *dir = o->ask_password_dir ?: getenv("UNLOCKD_ASK_PASSWORD_DIR") ?: "/run/systemd/ask-password";
        uint64_t deadline = o->timeout_usec ? now_usec() + o->timeout_usec : 0;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_free_ char *ask = NULL;
        _cleanup_close_ int fd = -1;
        char *buf = NULL;
        const char *note = NULL;
        unsigned tries = 0;
        char id[17];
        int one = 1, r;

        (void) mkdir(dir, 0755);
        r = random_hex(id, 16);
        if (r < 0)
                return r;
        if ((size_t) snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/sck.unlockd.%s", dir, id) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0 ||
            bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return log_debug_errno(errno, "Cannot make the ask-password socket in %s: %m", dir);
        buf = secret_alloc(ASK_REPLY_MAX + 1);
        if (!buf) {
                r = -ENOMEM;
                goto finish;
        }

        for (;;) {
                union {
                        struct cmsghdr h;
                        uint8_t b[CMSG_SPACE(sizeof(struct ucred))];
                } control = {};
                struct iovec iov = { .iov_base = buf, .iov_len = ASK_REPLY_MAX };
                struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control,
                                     .msg_controllen = sizeof(control) };
                struct ucred *cred = NULL;
                struct pollfd p = { .fd = fd, .events = POLLIN };
                int timeout_ms = -1;
                ssize_t n;

                if (!ask) {
                        r = write_ask_file(dir, sa.sun_path, o, note, deadline, &ask);
                        if (r < 0) {
                                log_debug_errno(r, "Cannot write the ask-password file in %s: %m", dir);
                                goto finish;
                        }
                }
                if (deadline) {
                        uint64_t now = now_usec();
                        if (now >= deadline) {
                                r = -ETIME;
                                goto finish;
                        }
                        timeout_ms = (int) MIN((deadline - now + 999) / 1000, (uint64_t) INT32_MAX);
                }
                if (o->alive) {
                        o->alive(userdata);
                        if (timeout_ms < 0 || (uint64_t) timeout_ms > PROMPT_ALIVE_USEC / 1000)
                                timeout_ms = (int) (PROMPT_ALIVE_USEC / 1000);
                }
                if (poll(&p, 1, timeout_ms) < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        goto finish;
                }
                n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC | MSG_TRUNC);
                if (n < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                continue;
                        r = -errno;
                        goto finish;
                }
                for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
                        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS &&
                            c->cmsg_len == CMSG_LEN(sizeof(struct ucred)))
                                cred = (struct ucred *) CMSG_DATA(c);
                if (!cred || cred->uid != 0) {
                        log_debug("Ignoring an ask-password reply from uid %d.", cred ? (int) cred->uid : -1);
                        explicit_bzero(buf, ASK_REPLY_MAX);
                        continue;
                }
                if (n == 0 || n > ASK_REPLY_MAX || (mh.msg_flags & MSG_TRUNC)) {
                        explicit_bzero(buf, ASK_REPLY_MAX);
                        continue;
                }
                buf[n] = 0;
                /* Every reply ends this ask file; a new one asks again. */
                (void) unlink(ask);
                ask = mfree(ask);
                if (buf[0] != '+') {            /* "-": the agent gave up; ask again */
                        explicit_bzero(buf, (size_t) n);
                        note = NULL;
                        continue;
                }
                r = check(buf + 1, userdata);
                explicit_bzero(buf, (size_t) n);
                if (r == 0)
                        goto finish;
                if (r != -EPERM)
                        goto finish;
                tries++;
                if (o->max_tries > 0 && tries >= o->max_tries) {
                        r = -EDQUOT;
                        goto finish;
                }
                note = "That did not unlock it. Try again.";
        }

finish:
        if (ask)
                (void) unlink(ask);
        (void) unlink(sa.sun_path);
        secret_free(buf);
        return r;
}
