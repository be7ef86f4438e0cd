/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>

#include "blockdev.h"
#include "fileio.h"
#include "log.h"
#include "strutil.h"
#include "volumes.h"

#define CMDLINE_MAX (64 * 1024)
#define CRYPTTAB_MAX (1024 * 1024)
#define DEVICE_TIMEOUT_SEC_DEFAULT 90

void volume_specs_free(VolumeSpec *s, size_t n) {
        for (size_t i = 0; s && i < n; i++) {
                free(s[i].device);
                free(s[i].name);
        }
        free(s);
}

static int specs_add(VolumeSpec **l, size_t *n, const char *device, const char *name, bool reseal) {
        VolumeSpec *nl = realloc(*l, (*n + 1) * sizeof(VolumeSpec));

        if (!nl)
                return -ENOMEM;
        *l = nl;
        nl[*n] = (VolumeSpec) { .device = strdup(device), .name = name ? strdup(name) : NULL, .reseal = reseal };
        if (!nl[*n].device || (name && !nl[*n].name)) {
                free(nl[*n].device);
                free(nl[*n].name);
                return -ENOMEM;
        }
        (*n)++;
        return 0;
}

static bool option_present(const char *options, const char *opt) {
        size_t l = strlen(opt);

        for (const char *p = options; p && *p;) {
                const char *e = strchr(p, ',');
                size_t n = e ? (size_t) (e - p) : strlen(p);
                if (n == l && strncmp(p, opt, l) == 0)
                        return true;
                p = e ? e + 1 : NULL;
        }
        return false;
}

int crypttab_parse(const char *text, VolumeSpec **ret, size_t *ret_n) {
        _cleanup_free_ char *copy = strdup(text);
        VolumeSpec *l = NULL;
        size_t n = 0;
        char *save = NULL;
        int r;

        if (!copy)
                return -ENOMEM;
        for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char *f[4] = {}, *s2 = NULL;
                size_t k = 0;

                line += strspn(line, " \t");
                if (*line == '#' || *line == 0)
                        continue;
                for (char *w = strtok_r(line, " \t", &s2); w && k < 4; w = strtok_r(NULL, " \t", &s2))
                        f[k++] = w;
                if (k < 2)
                        continue;
                const char *opts = k >= 4 ? f[3] : "";
                if (option_present(opts, "noauto") || option_present(opts, "x-unlockd=no") ||
                    option_present(opts, "plain") || option_present(opts, "swap") || option_present(opts, "tmp") ||
                    option_present(opts, "bitlk") || option_present(opts, "tcrypt"))
                        continue;
                r = specs_add(&l, &n, f[1], f[0], !option_present(opts, "x-unlockd-reseal=no"));
                if (r < 0) {
                        volume_specs_free(l, n);
                        return r;
                }
        }
        *ret = l;
        *ret_n = n;
        return 0;
}

static int read_cmdline(char **ret) {
        const char *e = getenv("UNLOCKD_CMDLINE");

        if (e) {
                *ret = strdup(e);
                return *ret ? 0 : -ENOMEM;
        }
        return read_file_bounded("/proc/cmdline", CMDLINE_MAX, ret, NULL);
}

/* Calls f for each key=value word of the kernel command line. */
static int cmdline_foreach(int (*f)(const char *key, const char *value, void *ud), void *ud) {
        _cleanup_free_ char *c = NULL;
        char *save = NULL;
        int r;

        r = read_cmdline(&c);
        if (r < 0)
                return r;
        for (char *w = strtok_r(c, " \t\n", &save); w; w = strtok_r(NULL, " \t\n", &save)) {
                char *eq = strchr(w, '=');
                if (eq)
                        *eq = 0;
                r = f(w, eq ? eq + 1 : NULL, ud);
                if (r != 0)
                        return r;
        }
        return 0;
}

typedef struct BoolLookup {
        const char *key;
        int value;
} BoolLookup;

static int bool_cb(const char *key, const char *value, void *ud) {
        BoolLookup *b = ud;
        int v;

        if (!streq(key, b->key))
                return 0;
        /* A bare key means yes; an unparsable value leaves the last one. */
        v = value ? parse_boolean(value) : 1;
        if (v >= 0)
                b->value = v;
        return 0; /* the last one wins */
}

bool kernel_cmdline_bool(const char *key, bool def) {
        BoolLookup b = { .key = key, .value = -1 };

        if (cmdline_foreach(bool_cb, &b) < 0 || b.value < 0)
                return def;
        return b.value;
}

typedef struct CmdlineVolumes {
        VolumeSpec *l;
        size_t n;
        bool crypttab;
        unsigned timeout_sec;
} CmdlineVolumes;

static int volumes_cb(const char *key, const char *value, void *ud) {
        CmdlineVolumes *c = ud;
        _cleanup_free_ char *spec = NULL, *uuid = NULL;
        const char *name = NULL;

        if (!value)
                return 0;
        if (streq(key, "rd.luks.crypttab")) {
                c->crypttab = parse_boolean(value) != 0;
                return 0;
        }
        if (streq(key, "rd.unlockd.timeout")) {
                (void) parse_unsigned(value, 86399, &c->timeout_sec);
                return 0;
        }
        if (!streq(key, "rd.luks.uuid") && !streq(key, "rd.unlockd.uuid") && !streq(key, "rd.luks.name"))
                return 0;

        uuid = strdup(startswith(value, "luks-") ?: value);
        if (!uuid)
                return -ENOMEM;
        if (streq(key, "rd.luks.name")) {
                char *eq = strchr(uuid, '=');
                if (!eq)
                        return 0;
                *eq = 0;
                name = eq + 1;
        }
        if (asprintf(&spec, "UUID=%s", uuid) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < c->n; i++)
                if (streq(c->l[i].device, spec))
                        return 0;
        return specs_add(&c->l, &c->n, spec, name, true);
}

static uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

int wait_for_path(const char *path, uint64_t timeout_usec, WaitAlive alive) {
        uint64_t deadline = now_usec() + timeout_usec, alive_at = 0;
        _cleanup_close_ int fd = -1;

        fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
        if (fd < 0)
                return -errno;

        for (;;) {
                _cleanup_free_ char *dir = strdup(path);
                char buf[4096];
                int wd = -1;

                if (!dir)
                        return -ENOMEM;
                if (access(path, F_OK) == 0)
                        return 0;
                /* Watch the nearest existing parent; re-check after
                 * arming, so nothing created in between is missed. */
                for (char *slash; (slash = strrchr(dir, '/'));) {
                        *slash = 0;
                        wd = inotify_add_watch(fd, *dir ? dir : "/", IN_CREATE | IN_MOVED_TO | IN_ONLYDIR);
                        if (wd >= 0)
                                break;
                }
                if (access(path, F_OK) == 0)
                        return 0;

                uint64_t now = now_usec();
                if (now >= deadline)
                        return -ETIMEDOUT;
                /* A sign of life now and then, not at every inotify event. */
                if (alive && now >= alive_at) {
                        alive(NULL);
                        alive_at = now + WAIT_ALIVE_USEC;
                }
                struct pollfd p = { .fd = fd, .events = POLLIN };
                uint64_t wake = alive ? MIN(deadline, alive_at) : deadline;
                int k = poll(&p, 1, (int) MIN((wake - now + 999) / 1000, (uint64_t) INT32_MAX));
                if (k < 0 && errno != EINTR)
                        return -errno;
                while (read(fd, buf, sizeof(buf)) > 0)
                        ;
                /* The watches stay: removing one queues an IN_IGNORED
                 * event, which would wake the next poll() at once, and so
                 * on: a busy loop. Adding the same watch again is a no-op. */
        }
}

/* Resolves a crypttab/cmdline device spec, waiting for it to appear. */
static int resolve_spec(const char *spec, uint64_t timeout_usec, WaitAlive alive, char **ret) {
        _cleanup_free_ char *link = NULL;
        static const struct {
                const char *prefix, *dir;
        } tags[] = {
                { "UUID=", "/dev/disk/by-uuid/" },
                { "PARTUUID=", "/dev/disk/by-partuuid/" },
                { "LABEL=", "/dev/disk/by-label/" },
        };
        int r;

        if (spec[0] == '/')
                link = strdup(spec);
        else
                for (size_t i = 0; i < ELEMENTSOF(tags); i++) {
                        const char *v = startswith(spec, tags[i].prefix);
                        if (v && asprintf(&link, "%s%s", tags[i].dir, v) < 0)
                                return -ENOMEM;
                }
        if (link) {
                r = wait_for_path(link, timeout_usec, alive);
                if (r == 0) {
                        *ret = TAKE_PTR(link);
                        return 0;
                }
                log_debug_errno(r, "%s did not appear: %m", link);
        }
        /* No udev symlinks (busybox initrd without them): ask libblkid. */
        return blockdev_resolve(spec, ret);
}

int volumes_collect(char **devices, size_t n_devices, const char *name, WaitAlive alive,
                    VolumeSpec **ret, size_t *ret_n) {
        CmdlineVolumes c = { .crypttab = true, .timeout_sec = DEVICE_TIMEOUT_SEC_DEFAULT };
        VolumeSpec *tab = NULL, *out = NULL;
        size_t n_tab = 0, n_out = 0;
        _cleanup_free_ char *text = NULL;
        int r;

        if (n_devices > 0) {
                for (size_t i = 0; i < n_devices; i++) {
                        r = specs_add(&out, &n_out, devices[i], name, true);
                        if (r < 0)
                                goto fail;
                }
                *ret = out;
                *ret_n = n_out;
                return 0;
        }

        if (!kernel_cmdline_bool("rd.unlockd", true) || !kernel_cmdline_bool("rd.luks", true)) {
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }

        r = cmdline_foreach(volumes_cb, &c);
        if (r < 0 && r != -ENOENT)
                goto fail;

        if (c.crypttab) {
                const char *path = getenv("UNLOCKD_CRYPTTAB") ?: "/etc/crypttab";
                r = read_file_bounded(path, CRYPTTAB_MAX, &text, NULL);
                if (r >= 0) {
                        r = crypttab_parse(text, &tab, &n_tab);
                        if (r < 0)
                                goto fail;
                } else if (r != -ENOENT)
                        log_warning_errno(r, "Cannot read %s: %m", path);
        }

        /* Volumes named on the kernel command line restrict crypttab to
         * them; crypttab gives their names. */
        if (c.n > 0) {
                for (size_t i = 0; i < c.n; i++)
                        for (size_t k = 0; k < n_tab; k++)
                                if (strcasecmp(tab[k].device, c.l[i].device) == 0 && !c.l[i].name) {
                                        c.l[i].name = tab[k].name ? strdup(tab[k].name) : NULL;
                                        c.l[i].reseal = tab[k].reseal;
                                }
                volume_specs_free(tab, n_tab);
                tab = c.l, n_tab = c.n;
                c.l = NULL, c.n = 0;
        }

        for (size_t i = 0; i < n_tab; i++) {
                _cleanup_free_ char *dev = NULL;

                r = resolve_spec(tab[i].device, (uint64_t) c.timeout_sec * 1000000, alive, &dev);
                if (r < 0) {
                        log_error_errno(r, "Volume %s not found; skipping it.", tab[i].device);
                        continue;
                }
                r = specs_add(&out, &n_out, dev, tab[i].name, tab[i].reseal);
                if (r < 0)
                        goto fail;
        }
        volume_specs_free(tab, n_tab);
        volume_specs_free(c.l, c.n);
        *ret = out;
        *ret_n = n_out;
        return 0;
fail:
        volume_specs_free(tab, n_tab);
        volume_specs_free(c.l, c.n);
        volume_specs_free(out, n_out);
        return r;
}
