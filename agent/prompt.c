/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>

#include "log.h"
#include "strutil.h"
#include "prompt.h"
#include "secret.h"

/* ---- stop signals ---------------------------------------------------------- */

/* SIGTERM, SIGINT and SIGHUP while a prompt runs (systemd stopping the unit,
 * the terminal hung up) would kill the process with every terminal left
 * without echo and the ask file in place. While a prompt runs they are
 * blocked and polled through a signalfd instead: the prompt ends, puts the
 * terminals back and removes its files, and the signal is unblocked again,
 * still pending, so that it does what it would have done (by default: the
 * process dies of it). */
typedef struct StopSignals {
        int fd;
        sigset_t old;
        bool blocked;
} StopSignals;

static void stop_signals_begin(StopSignals *s) {
        sigset_t set;

        *s = (StopSignals) { .fd = -1 };
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGHUP);
        if (sigprocmask(SIG_BLOCK, &set, &s->old) < 0) {
                log_debug_errno(errno, "Cannot block the stop signals during the prompt: %m");
                return;
        }
        s->blocked = true;
        s->fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
        if (s->fd < 0)
                log_debug_errno(errno, "Cannot poll for stop signals during the prompt: %m");
}

/* Unblocks the stop signals: one that came meanwhile is delivered now. */
static void stop_signals_end(StopSignals *s) {
        if (s->fd >= 0)
                close(s->fd);
        s->fd = -1;
        if (s->blocked)
                (void) sigprocmask(SIG_SETMASK, &s->old, NULL);
        s->blocked = false;
}

/* ---- line editing ---------------------------------------------------------- */

/* Both prompts edit a line the same way (README, "How recovery works"):
 *
 * - Enter is CR, LF, or CR LF (one Enter, not two);
 * - Ctrl-C and ESC cancel the entry, Ctrl-U clears it;
 * - Backspace (DEL, or Ctrl-H from terminals whose Backspace key sends it)
 *   removes the last character: a whole UTF-8 sequence, or one byte of
 *   input that is not UTF-8;
 * - Ctrl-D is end of input (what the caller makes of it is its business);
 * - the bytes a terminal's line discipline consumes with the kernel's
 *   default settings are dropped: NUL, Ctrl-Q and Ctrl-S (flow control),
 *   Ctrl-R, Ctrl-V, Ctrl-W, Ctrl-Z and Ctrl-\. cryptsetup reads a passphrase
 *   from a terminal in canonical mode, so these never reach its
 *   passphrases either (NUL would end the string);
 * - every other byte, TAB and the other control characters included, is
 *   kept as typed: a passphrase set with cryptsetup at a terminal can be
 *   typed here;
 * - the length is bounded (PROMPT_MAX_INPUT with the NUL); a character
 *   that does not fit is dropped whole, never cut in the middle. */
typedef enum LineEvent {
        LINE_MORE,              /* keep reading */
        LINE_ENTER,             /* buf holds the line, NUL-terminated */
        LINE_CANCEL,            /* the line is wiped */
        LINE_EOF,               /* Ctrl-D; the line is as it was */
} LineEvent;

typedef struct Line {
        char *buf;              /* secret_alloc(PROMPT_MAX_INPUT), always NUL-terminated */
        size_t len;
        bool after_cr;          /* the last byte was CR: an LF right after it is the same Enter */
        bool dropping;          /* a character did not fit: its continuation bytes go as well */
} Line;

/* The length of the UTF-8 sequence that byte b starts: 1 for ASCII, 2 to 4
 * for a lead byte, 0 for a continuation byte or a byte UTF-8 never uses. */
static size_t utf8_lead_length(unsigned char b) {
        if (b < 0x80)
                return 1;
        if (b >= 0xc2 && b <= 0xdf)
                return 2;
        if (b >= 0xe0 && b <= 0xef)
                return 3;
        if (b >= 0xf0 && b <= 0xf4)
                return 4;
        return 0;
}

static bool utf8_is_continuation(unsigned char b) {
        return (b & 0xc0) == 0x80;
}

/* How many bytes at the end of s[0..n) make its last character: a complete
 * UTF-8 sequence, else one byte. */
static size_t utf8_last_char_length(const char *s, size_t n) {
        size_t k = 0;

        if (n == 0)
                return 0;
        while (k < n && k < 3 && utf8_is_continuation((unsigned char) s[n - 1 - k]))
                k++;
        if (k < n && utf8_lead_length((unsigned char) s[n - 1 - k]) == k + 1)
                return k + 1;
        return 1;
}

static void line_clear(Line *l) {
        explicit_bzero(l->buf, PROMPT_MAX_INPUT);
        l->len = 0;
        l->dropping = false;
}

static LineEvent line_feed(Line *l, unsigned char ch) {
        bool after_cr = l->after_cr;
        size_t need, k;

        l->after_cr = ch == '\r';
        switch (ch) {
        case '\n':
        case '\r':
                if (ch == '\n' && after_cr)    /* a terminal that sends CR LF for Enter */
                        return LINE_MORE;
                l->buf[l->len] = 0;
                l->dropping = false;
                return LINE_ENTER;
        case 3:                         /* Ctrl-C */
        case 27:                        /* ESC */
                line_clear(l);
                return LINE_CANCEL;
        case 4:                         /* Ctrl-D */
                return LINE_EOF;
        case 21:                        /* Ctrl-U */
                line_clear(l);
                return LINE_MORE;
        case 8:                         /* Ctrl-H */
        case 127:                       /* DEL, what the Backspace key sends */
                k = utf8_last_char_length(l->buf, l->len);
                l->len -= k;
                explicit_bzero(l->buf + l->len, k);
                l->dropping = false;
                return LINE_MORE;
        case 0:                         /* NUL */
        case 17:                        /* Ctrl-Q, VSTART */
        case 18:                        /* Ctrl-R, VREPRINT */
        case 19:                        /* Ctrl-S, VSTOP */
        case 22:                        /* Ctrl-V, VLNEXT */
        case 23:                        /* Ctrl-W, VWERASE */
        case 26:                        /* Ctrl-Z, VSUSP */
        case 28:                        /* Ctrl-\, VQUIT */
                return LINE_MORE;
        }

        if (utf8_is_continuation(ch)) {
                if (l->dropping)
                        return LINE_MORE;
                need = 1;               /* room for it was kept with its lead byte, if it had one */
        } else {
                need = utf8_lead_length(ch) ?: 1;
                l->dropping = false;
        }
        if (l->len + need >= PROMPT_MAX_INPUT) {        /* bounded: the rest is ignored */
                l->dropping = true;
                return LINE_MORE;
        }
        l->buf[l->len++] = (char) ch;
        return LINE_MORE;
}

/* Reads a line without echo from fd into l (see above); -EINTR when
 * stop_fd (a signalfd, or -1) becomes readable first, -ECANCELED on
 * Ctrl-C or ESC, -EPIPE at end of input (or Ctrl-D) on an empty line. */
static int read_secret_line(int fd, int stop_fd, Line *l) {
        for (;;) {
                struct pollfd p[2] = { { .fd = fd, .events = POLLIN }, { .fd = stop_fd, .events = POLLIN } };
                unsigned char c;
                ssize_t k;
                LineEvent e;

                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (p[1].revents & POLLIN)
                        return -EINTR;          /* a stop signal */
                k = read(fd, &c, 1);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        return l->len > 0 ? 0 : -EPIPE;
                e = line_feed(l, c);
                explicit_bzero(&c, sizeof(c));
                switch (e) {
                case LINE_ENTER:
                        return 0;
                case LINE_CANCEL:
                        return -ECANCELED;
                case LINE_EOF:
                        return l->len > 0 ? 0 : -EPIPE;
                case LINE_MORE:
                        break;
                }
        }
}

int prompt_ask_tty(const char *message, const char *prompt, char **ret) {
        _cleanup_close_ int fd = -1;
        _cleanup_secret_ char *buf = NULL;
        struct termios old, raw;
        StopSignals stop;
        Line line;
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

        stop_signals_begin(&stop);
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

        line = (Line) { .buf = buf };
        r = read_secret_line(fd, stop.fd, &line);

        if (is_tty)
                (void) tcsetattr(fd, TCSANOW, &old);
        dprintf(fd, "\n");
        stop_signals_end(&stop);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(buf);
        return 0;
}

/* ---- common ---------------------------------------------------------------- */

/* Milliseconds for poll() until the earliest of the deadlines (0 = none),
 * -1 when there is none. */
static int poll_timeout_ms(uint64_t now, uint64_t a, uint64_t b) {
        uint64_t until = a && b ? MIN(a, b) : a ?: b;

        if (!until)
                return -1;
        if (until <= now)
                return 0;
        return (int) MIN((until - now + 999) / 1000, (uint64_t) INT32_MAX);
}

/* ---- multi-console prompt ------------------------------------------------ */

#define CONSOLES_MAX 16
/* How long one message may wait for a console that does not take output
 * (a serial line held by flow control); after that, output to it is
 * best effort so that it cannot hold up the other consoles. */
#define CONSOLE_WRITE_USEC (2 * 1000000ULL)

typedef struct Console {
        char *path;
        int fd;
        dev_t rdev;                     /* to open each terminal once */
        bool restore;                   /* saved holds the settings to put back */
        bool gone;                      /* EOF, hang-up or I/O error: neither read nor written again */
        bool stalled;                   /* output did not drain in time */
        bool add_cr;                    /* the terminal does not turn "\n" into "\r\n" itself */
        struct termios saved;
        Line line;                      /* the line being typed */
} Console;

static void console_write(Console *c, const char *s, size_t size) {
        uint64_t deadline = now_usec() + CONSOLE_WRITE_USEC;

        while (size > 0 && !c->gone) {
                ssize_t k = write(c->fd, s, size);

                if (k > 0) {
                        s += k;
                        size -= (size_t) k;
                        continue;
                }
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0 && errno == EAGAIN) {
                        struct pollfd p = { .fd = c->fd, .events = POLLOUT };
                        uint64_t now = now_usec();

                        if (c->stalled || now >= deadline) {
                                if (!c->stalled)
                                        log_debug("Console %s does not take output, dropping some.", c->path);
                                c->stalled = true;
                                return;
                        }
                        (void) poll(&p, 1, poll_timeout_ms(now, deadline, 0));
                        continue;
                }
                log_debug_errno(k < 0 ? errno : EIO, "Console %s went away: %m", c->path);
                c->gone = true;
                return;
        }
        c->stalled = false;
}

/* Writes text; every "\n" reaches the terminal as "\r\n", whether or not
 * its output settings (left as they were) do that conversion. */
_printf_(2, 3)
static void console_printf(Console *c, const char *format, ...) {
        _cleanup_free_ char *text = NULL, *out = NULL;
        size_t n = 0;
        va_list ap;
        int k;

        if (c->gone)
                return;
        va_start(ap, format);
        k = vasprintf(&text, format, ap);
        va_end(ap);
        if (k < 0)
                return;
        out = malloc(2 * (size_t) k + 1);
        if (!out)
                return;
        for (const char *p = text; *p; p++) {
                if (*p == '\n' && c->add_cr && (p == text || p[-1] != '\r'))
                        out[n++] = '\r';
                out[n++] = *p;
        }
        console_write(c, out, n);
}

static void console_prompt(Console *c, const PromptOptions *o, bool with_message) {
        if (with_message && o->message)
                console_printf(c, "\n%s\n", o->message);
        console_printf(c, "%s: ", o->prompt ?: "Passphrase");
}

/* What a file of this type is, for a message. */
static const char *file_type_name(mode_t mode) {
        switch (mode & S_IFMT) {
        case S_IFREG:
                return "a regular file";
        case S_IFDIR:
                return "a directory";
        case S_IFIFO:
                return "a FIFO";
        case S_IFSOCK:
                return "a socket";
        case S_IFBLK:
                return "a block device";
        default:
                return "a file of an unknown type";
        }
}

/* Opens one console and switches it to no-echo, byte-at-a-time input.
 *
 * A console is asked on only when it is a terminal: a FIFO would never
 * answer (or hand back what we wrote to it), a regular file would get the
 * prompt written over its content and its content read as answers. The path
 * is looked at before it is opened, so that a FIFO or a file is not even
 * opened, and the descriptor is checked again after (the path may have
 * changed in between). It is opened with O_NONBLOCK, so that open() never
 * waits (for a FIFO's other end, a serial line's carrier), and kept so: the
 * prompt polls and copes with EAGAIN both ways. Never O_CREAT or O_TRUNC.
 * Symbolic links are followed (no O_NOFOLLOW): consoles are named by links
 * on real systems (udev's /dev/serial/by-id/..., /dev/systty, a container's
 * /dev/console), and whatever a link points to must pass the same checks.
 *
 * Returns 1 when added, 0 when skipped (missing, unopenable, not a
 * terminal, a terminal already in the list, too many), -ENOMEM. */
static int console_add(Console *cons, size_t *n, const char *path) {
        _cleanup_close_ int fd = -1;
        Console *c;
        struct stat st;

        if (*n >= CONSOLES_MAX) {
                log_warning("Too many consoles, not asking on %s.", path);
                return 0;
        }
        if (stat(path, &st) < 0) {
                log_warning_errno(errno, "Not asking on console %s: %m", path);
                return 0;
        }
        if (!S_ISCHR(st.st_mode)) {
                log_warning("Not asking on console %s: it is %s, not a terminal.", path, file_type_name(st.st_mode));
                return 0;
        }
        fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0) {
                log_warning_errno(errno, "Not asking on console %s: %m", path);
                return 0;
        }
        if (fstat(fd, &st) < 0) {
                log_warning_errno(errno, "Not asking on console %s: %m", path);
                return 0;
        }
        if (!S_ISCHR(st.st_mode)) {
                log_warning("Not asking on console %s: it is %s, not a terminal.", path, file_type_name(st.st_mode));
                return 0;
        }
        if (!isatty(fd)) {
                log_warning("Not asking on console %s: it is a character device, not a terminal.", path);
                return 0;
        }
        for (size_t i = 0; i < *n; i++)
                if (cons[i].rdev == st.st_rdev) {
                        log_debug("Console %s is the same terminal as %s.", path, cons[i].path);
                        return 0;
                }

        c = &cons[*n];
        *c = (Console) {
                .fd = -1,
                .rdev = st.st_rdev,
                .path = strdup(path),
                .line.buf = secret_alloc(PROMPT_MAX_INPUT),
        };
        if (!c->path || !c->line.buf) {
                free(c->path);
                secret_free(c->line.buf);
                return -ENOMEM;
        }
        if (tcgetattr(fd, &c->saved) == 0) {
                struct termios raw = c->saved;

                /* No echo, no line discipline editing (we do our own), and
                 * no signals: Ctrl-C must arrive here as a byte. */
                raw.c_lflag &= ~(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
                raw.c_iflag &= ~(ICRNL | INLCR | IGNCR | IXON);
                raw.c_cc[VMIN] = 1;
                raw.c_cc[VTIME] = 0;
                c->restore = tcsetattr(fd, TCSANOW, &raw) == 0;
                c->add_cr = !(c->saved.c_oflag & OPOST) || !(c->saved.c_oflag & ONLCR);
                if (!c->restore)
                        log_debug_errno(errno, "Cannot turn off echo on %s, asking anyway: %m", path);
        }
        c->fd = TAKE_FD(fd);
        (*n)++;
        return 1;
}

/* The consoles the kernel writes to, e.g. "tty0 ttyS0": names in dev_dir. */
static int console_add_active(Console *cons, size_t *n, const char *list, const char *dev_dir) {
        _cleanup_close_ int fd = -1;
        char buf[512], *save = NULL;
        ssize_t k;
        int r;

        fd = open(list, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                log_debug_errno(errno, "Cannot open the list of active consoles: %m");
                return 0;
        }
        k = read(fd, buf, sizeof(buf) - 1);
        if (k < 0) {
                log_debug_errno(errno, "Cannot read the list of active consoles: %m");
                return 0;
        }
        buf[k] = 0;
        for (char *w = strtok_r(buf, " \t\n", &save); w; w = strtok_r(NULL, " \t\n", &save)) {
                _cleanup_free_ char *path = NULL;

                if (strchr(w, '/') || streq(w, ".") || streq(w, ".."))
                        continue;
                if (asprintf(&path, "%s/%s", dev_dir, w) < 0)
                        return -ENOMEM;
                r = console_add(cons, n, path);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Restores a console: says goodbye (farewell may be NULL), drops unread
 * input, puts the terminal settings back; wipes its line. */
static void console_close(Console *c, const char *farewell) {
        if (c->fd >= 0) {
                if (farewell)
                        console_printf(c, "%s", farewell);
                if (c->restore) {
                        (void) tcflush(c->fd, TCIFLUSH);
                        (void) tcsetattr(c->fd, TCSANOW, &c->saved);
                }
                close(c->fd);
                c->fd = -1;
        }
        c->line.buf = secret_free(c->line.buf);
        c->line.len = 0;
        c->path = mfree(c->path);
}

/* Outcome of one chunk of input on a console. */
typedef enum FeedResult {
        FEED_MORE,              /* keep reading */
        FEED_ACCEPTED,
        FEED_NO_MORE_TRIES,
        FEED_ABORTED,           /* check() failed with *ret_error */
} FeedResult;

static FeedResult console_input(Console *c, const char *chunk, size_t size, const PromptOptions *o,
                                PromptCheck check, void *userdata, unsigned *tries, int *ret_error) {
        int r;

        for (size_t b = 0; b < size; b++) {
                LineEvent e = line_feed(&c->line, (unsigned char) chunk[b]);

                if (e == LINE_MORE || e == LINE_EOF)    /* Ctrl-D: nothing to do on a console */
                        continue;
                if (e == LINE_CANCEL) {
                        console_printf(c, "\n(cancelled)\n");
                        console_prompt(c, o, false);
                        continue;
                }
                console_printf(c, "\n");
                if (c->line.len == 0) {         /* empty line: ask again */
                        console_prompt(c, o, false);
                        continue;
                }
                r = check(c->line.buf, userdata);
                line_clear(&c->line);
                if (r == 0)
                        return FEED_ACCEPTED;
                if (r != -EPERM) {
                        *ret_error = r;
                        return FEED_ABORTED;
                }
                (*tries)++;
                if (o->max_tries > 0 && *tries >= o->max_tries) {
                        console_printf(c, "That did not unlock it. No more tries.\n");
                        return FEED_NO_MORE_TRIES;
                }
                console_printf(c, "That did not unlock it. Try again.\n");
                console_prompt(c, o, false);
        }
        return FEED_MORE;
}

static int consoles_ask(const PromptOptions *o, PromptCheck check, void *userdata) {
        Console cons[CONSOLES_MAX];
        size_t n = 0;
        uint64_t deadline = o->timeout_usec ? now_usec() + o->timeout_usec : 0;
        unsigned tries = 0;
        int last = -1;                  /* the console whose answer ended the prompt */
        bool asked = false;
        StopSignals stop;
        int r = 0;

        stop_signals_begin(&stop);
        if (o->consoles) {
                for (char *const *p = o->consoles; *p && r >= 0; p++)
                        r = console_add(cons, &n, *p);
        } else
                r = console_add_active(cons, &n, o->active_consoles ?: "/sys/class/tty/console/active",
                                       o->dev_dir ?: "/dev");
        if (r < 0)
                goto finish;
        if (n == 0) {
                r = log_debug_errno(ENXIO, "No console to ask on.");
                goto finish;
        }

        for (size_t i = 0; i < n; i++)
                console_prompt(&cons[i], o, true);
        asked = true;

        for (;;) {
                struct pollfd p[CONSOLES_MAX + 1];
                uint64_t now, alive_at = 0;
                size_t alive = 0;
                int k;

                for (size_t i = 0; i < n; i++) {
                        p[i] = (struct pollfd) { .fd = cons[i].gone ? -1 : cons[i].fd, .events = POLLIN };
                        alive += !cons[i].gone;
                }
                p[n] = (struct pollfd) { .fd = stop.fd, .events = POLLIN };
                if (alive == 0) {
                        r = log_debug_errno(EPIPE, "Every console reached end of input.");
                        goto finish;
                }
                now = now_usec();
                if (deadline && now >= deadline) {
                        r = -ETIME;
                        goto finish;
                }
                if (o->alive) {
                        o->alive(userdata);
                        alive_at = now + PROMPT_ALIVE_USEC;
                }
                k = poll(p, n + 1, poll_timeout_ms(now, deadline, alive_at));
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        goto finish;
                }
                if (p[n].revents & POLLIN) {
                        r = log_debug_errno(EINTR, "Stopped by a signal while asking.");
                        goto finish;
                }
                for (size_t i = 0; i < n && k > 0; i++) {
                        Console *c = &cons[i];
                        FeedResult f;
                        char chunk[256];
                        ssize_t got;

                        if (c->gone || p[i].revents == 0)
                                continue;
                        if (p[i].revents & POLLNVAL) {
                                c->gone = true;
                                continue;
                        }
                        got = read(c->fd, chunk, sizeof(chunk));
                        if (got < 0 && (errno == EAGAIN || errno == EINTR))
                                continue;
                        if (got <= 0) {
                                /* EOF, hang-up or a line unplugged: this console only. */
                                log_debug_errno(got < 0 ? errno : EPIPE, "Console %s went away: %m", c->path);
                                c->gone = true;
                                continue;
                        }
                        f = console_input(c, chunk, (size_t) got, o, check, userdata, &tries, &r);
                        explicit_bzero(chunk, sizeof(chunk));
                        if (f == FEED_MORE)
                                continue;
                        last = (int) i;
                        r = f == FEED_ACCEPTED ? 0 : f == FEED_NO_MORE_TRIES ? -EDQUOT : r;
                        goto finish;
                }
        }

finish:
        for (size_t i = 0; i < n; i++) {
                const char *farewell;

                if (!asked)
                        farewell = NULL;
                else if ((int) i == last)
                        farewell = r == 0 || r == -EDQUOT ? NULL : "(the answer could not be checked; prompt ended)\n";
                else
                        farewell = r == 0 ? "\n(prompt withdrawn: answered on another console)\n" :
                                r == -ETIME ? "\n(prompt withdrawn: timed out)\n" :
                                r == -EDQUOT ? "\n(prompt withdrawn: no more tries)\n" :
                                r == -EINTR ? "\n(prompt withdrawn: unlockd was stopped)\n" :
                                "\n(prompt withdrawn)\n";
                console_close(&cons[i], farewell);
        }
        stop_signals_end(&stop);
        return r;
}

/* ---- systemd's ask-password protocol ------------------------------------- */

/* A reply is '+' and the secret, or '-'; larger datagrams are ignored. */
#define ASK_REPLY_MAX (64 * 1024 + 1)
/* After an agent's "-", ask again, but not more often than this. */
#define ASK_AGAIN_USEC (1000000ULL)

static int random_hex(char *buf, size_t n) {
        static const char hex[] = "0123456789abcdef";
        uint8_t b[16];
        ssize_t k;

        if (n / 2 > sizeof(b))
                return -EINVAL;
        do
                k = getrandom(b, n / 2, 0);
        while (k < 0 && errno == EINTR);
        if (k != (ssize_t) (n / 2))
                return k < 0 ? -errno : -EIO;
        for (size_t i = 0; i < n / 2; i++) {
                buf[2 * i] = hex[b[i] >> 4];
                buf[2 * i + 1] = hex[b[i] & 15];
        }
        buf[n / 2 * 2] = 0;
        explicit_bzero(b, sizeof(b));
        return 0;
}

/* Values in the ask file are single lines. */
static void one_line(char *s) {
        for (; s && *s; s++)
                if (*s == '\n' || *s == '\r')
                        *s = ' ';
}

/* Writes an ask file atomically (a hidden temporary file renamed to
 * ask.<random>, never over another one); *ret_path is the file to remove
 * later. */
static int ask_file_write(const char *dir, const char *socket_path, const PromptOptions *o, const char *note,
                          uint64_t not_after, char **ret_path) {
        _cleanup_free_ char *tmp = NULL, *msg = NULL, *id = NULL;
        FILE *f;
        char rnd[17];
        int fd, r;

        r = random_hex(rnd, 16);
        if (r < 0)
                return r;
        if (asprintf(&tmp, "%s/.tmp.ask.%s", dir, rnd) < 0 ||
            asprintf(&msg, "%s%s%s%s%s:", note ?: "", note ? " " : "", o->message ?: "", o->message ? " " : "",
                     o->prompt ?: "Passphrase") < 0 ||
            (o->id && !(id = strdup(o->id))))
                return -ENOMEM;
        one_line(msg);
        one_line(id);

        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0)
                return -errno;
        f = fdopen(fd, "w");
        if (!f) {
                r = -errno;
                close(fd);
                (void) unlink(tmp);
                return r;
        }
        fprintf(f, "[Ask]\nPID=%d\nSocket=%s\nAcceptCached=0\nEcho=0\nNotAfter=%llu\nIcon=drive-harddisk\nMessage=%s\n",
                (int) getpid(), socket_path, (unsigned long long) not_after, msg);
        if (id)
                fprintf(f, "Id=%s\n", id);
        r = fflush(f) == 0 && fsync(fileno(f)) == 0 ? 0 : -errno;
        if (fclose(f) != 0 && r == 0)
                r = -errno;

        for (unsigned attempt = 0; r == 0; attempt++) {
                _cleanup_free_ char *path = NULL;

                if (attempt > 0 && (r = random_hex(rnd, 16)) < 0)
                        break;
                if (asprintf(&path, "%s/ask.%s", dir, rnd) < 0) {
                        r = -ENOMEM;
                        break;
                }
                if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0) {
                        *ret_path = TAKE_PTR(path);
                        return 0;
                }
                r = errno == EEXIST && attempt < 16 ? 0 : -errno;
        }
        (void) unlink(tmp);
        return r;
}

/* Closes file descriptors someone passed along with a reply. */
static void close_passed_fds(struct msghdr *mh) {
        for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c))
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
                        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

                        for (size_t i = 0; i < k; i++) {
                                int passed;

                                memcpy(&passed, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                                (void) close(passed);
                        }
                }
}

/* Receives one datagram into buf (ASK_REPLY_MAX + 1 bytes). Returns its
 * length when it came from root and fits, 0 when it was ignored, -EAGAIN
 * when there was none, other negative errno. */
static ssize_t ask_receive(int fd, char *buf) {
        union {
                struct cmsghdr h;
                uint8_t b[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(8 * sizeof(int))];
        } control;
        struct iovec iov = { .iov_base = buf, .iov_len = ASK_REPLY_MAX };
        struct msghdr mh = {
                .msg_iov = &iov,
                .msg_iovlen = 1,
                .msg_control = &control,
                .msg_controllen = sizeof(control),
        };
        const struct ucred *cred = NULL;
        ssize_t n;

        memset(&control, 0, sizeof(control));
        n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC | MSG_TRUNC);
        if (n < 0)
                return errno == EINTR ? -EAGAIN : -errno;
        close_passed_fds(&mh);
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS &&
                    c->cmsg_len == CMSG_LEN(sizeof(struct ucred)))
                        cred = (const struct ucred *) CMSG_DATA(c);

        if (!cred) {
                log_debug("Ignoring an ask-password reply without credentials.");
                n = 0;
        } else if (cred->uid != 0) {
                log_debug("Ignoring an ask-password reply from uid %u (pid %d).",
                          (unsigned) cred->uid, (int) cred->pid);
                n = 0;
        } else if ((mh.msg_flags & MSG_TRUNC) || n > ASK_REPLY_MAX) {
                log_debug("Ignoring an ask-password reply of %zi bytes.", n);
                n = 0;
        }
        if (n == 0) {
                explicit_bzero(buf, ASK_REPLY_MAX);
                return 0;
        }
        buf[n] = 0;
        return n;
}

static int ask_password_ask(const PromptOptions *o, PromptCheck check, void *userdata) {
        const char *dir = o->ask_password_dir ?: secure_getenv("UNLOCKD_ASK_PASSWORD_DIR") ?: "/run/systemd/ask-password";
        uint64_t deadline = o->timeout_usec ? now_usec() + o->timeout_usec : 0, ask_at = 0;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_free_ char *ask = NULL;
        _cleanup_close_ int fd = -1;
        const char *note = NULL;
        char *buf = NULL;
        unsigned tries = 0;
        char rnd[17];
        bool bound = false;
        StopSignals stop = { .fd = -1 };
        mode_t mask;
        int one = 1, k, r;

        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                return log_debug_errno(errno, "Cannot make the ask-password directory %s: %m", dir);
        r = random_hex(rnd, 16);
        if (r < 0)
                return r;
        if ((size_t) snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/sck.unlockd.%s", dir, rnd) >= sizeof(sa.sun_path))
                return log_debug_errno(ENAMETOOLONG, "Ask-password directory %s: path too long.", dir);

        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0)
                return -errno;
        /* Only root may even send to it (the credentials are checked as well). */
        mask = umask(0177);
        k = bind(fd, (struct sockaddr *) &sa, sizeof(sa));
        r = k < 0 ? -errno : 0;
        umask(mask);
        if (r < 0)
                return log_debug_errno(r, "Cannot make the ask-password socket in %s: %m", dir);
        bound = true;

        buf = secret_alloc(ASK_REPLY_MAX + 1);
        if (!buf) {
                r = -ENOMEM;
                goto finish;
        }
        stop_signals_begin(&stop);

        for (;;) {
                struct pollfd p[2] = { { .fd = fd, .events = POLLIN }, { .fd = stop.fd, .events = POLLIN } };
                uint64_t now = now_usec(), alive_at = 0, wake;
                ssize_t n;

                if (deadline && now >= deadline) {
                        r = -ETIME;
                        goto finish;
                }
                if (!ask && now >= ask_at) {
                        r = ask_file_write(dir, sa.sun_path, o, note, deadline, &ask);
                        if (r < 0) {
                                log_debug_errno(r, "Cannot write the ask-password file in %s: %m", dir);
                                goto finish;
                        }
                }
                if (o->alive) {
                        o->alive(userdata);
                        alive_at = now + PROMPT_ALIVE_USEC;
                }
                /* Wake up for the timeout, and to ask again after a cancel. */
                wake = deadline;
                if (!ask)
                        wake = wake ? MIN(wake, ask_at) : ask_at;
                if (poll(p, 2, poll_timeout_ms(now, wake, alive_at)) < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        goto finish;
                }
                if (p[1].revents & POLLIN) {
                        r = log_debug_errno(EINTR, "Stopped by a signal while asking.");
                        goto finish;
                }
                if (!(p[0].revents & POLLIN))
                        continue;
                n = ask_receive(fd, buf);
                if (n == -EAGAIN || n == 0)
                        continue;
                if (n < 0) {
                        r = (int) n;
                        goto finish;
                }

                if (buf[0] == '-') {
                        /* An agent gave up (the user cancelled there): withdraw
                         * this question and ask anew, shortly. */
                        log_debug("An ask-password agent cancelled; asking again.");
                        explicit_bzero(buf, (size_t) n);
                        if (ask) {
                                (void) unlink(ask);
                                ask = mfree(ask);
                        }
                        note = NULL;
                        ask_at = now_usec() + ASK_AGAIN_USEC;
                        continue;
                }
                if (buf[0] != '+') {
                        log_debug("Ignoring an ask-password reply that is neither '+' nor '-'.");
                        explicit_bzero(buf, (size_t) n);
                        continue;
                }

                r = check(buf + 1, userdata);
                explicit_bzero(buf, (size_t) n);
                if (r != -EPERM)                /* accepted, or check() failed */
                        goto finish;
                tries++;
                if (o->max_tries > 0 && tries >= o->max_tries) {
                        r = -EDQUOT;
                        goto finish;
                }
                /* A new ask file: the agents show the question again. */
                if (ask) {
                        (void) unlink(ask);
                        ask = mfree(ask);
                }
                note = "That did not unlock it. Try again.";
                ask_at = 0;
        }

finish:
        if (ask)
                (void) unlink(ask);
        if (bound)
                (void) unlink(sa.sun_path);
        secret_free(buf);
        stop_signals_end(&stop);
        return r;
}

int prompt_ask_check(const PromptOptions *o, PromptCheck check, void *userdata) {
        bool agents;

        if (!o || !check)
                return -EINVAL;

        /* Under systemd, its agents (console, Plymouth, wall) ask for us. */
        agents = o->ask_password > 0 || (o->ask_password < 0 && access("/run/systemd/system", F_OK) == 0);
        return agents ? ask_password_ask(o, check, userdata) : consoles_ask(o, check, userdata);
}
