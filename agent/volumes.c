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
#include "crypttab.h"
#include "volumes.h"

#define CMDLINE_MAX (64 * 1024)
#define CRYPTTAB_MAX (1024 * 1024)
#define DEVICE_TIMEOUT_SEC_DEFAULT 90

static int read_cmdline(char **ret) {
        const char *e = secure_getenv("UNLOCKD_CMDLINE");

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

/* A volume the kernel command line speaks of. */
typedef struct CmdlineVolume {
        char *uuid;
        char *name;     /* the last rd.luks.name=UUID=NAME */
        char *options;  /* the last rd.luks.options=UUID=OPTIONS */
        bool selected;  /* named by rd.luks.uuid=, rd.luks.name= or rd.unlockd.uuid= */
} CmdlineVolume;

typedef struct CmdlineVolumes {
        CmdlineVolume *l;
        size_t n;
        bool any_selected;
        char *default_options; /* the last rd.luks.options=OPTIONS */
        bool crypttab;
        unsigned timeout_sec;
} CmdlineVolumes;

static void cmdline_volumes_done(CmdlineVolumes *c) {
        for (size_t i = 0; i < c->n; i++) {
                free(c->l[i].uuid);
                free(c->l[i].name);
                free(c->l[i].options);
        }
        free(c->l);
        free(c->default_options);
        *c = (CmdlineVolumes) {};
}

static CmdlineVolume *cmdline_volume_find(CmdlineVolumes *c, const char *uuid) {
        for (size_t i = 0; uuid && i < c->n; i++)
                if (strcasecmp(c->l[i].uuid, uuid) == 0)
                        return c->l + i;
        return NULL;
}

static int cmdline_volume_get(CmdlineVolumes *c, const char *uuid, CmdlineVolume **ret) {
        CmdlineVolume *v = cmdline_volume_find(c, uuid), *nl;

        if (!v) {
                nl = realloc(c->l, (c->n + 1) * sizeof(CmdlineVolume));
                if (!nl)
                        return -ENOMEM;
                c->l = nl;
                v = nl + c->n;
                *v = (CmdlineVolume) { .uuid = strdup(uuid) };
                if (!v->uuid)
                        return -ENOMEM;
                c->n++;
        }
        *ret = v;
        return 0;
}

static int free_and_strdup(char **p, const char *s) {
        char *d = strdup(s);

        if (!d)
                return -ENOMEM;
        free(*p);
        *p = d;
        return 0;
}

/* The UUID of rd.luks.options=UUID=OPTIONS, as systemd reads it: hex
 * digits and dashes up to the '='. Returns its length, 0 when value is
 * OPTIONS for every volume, or -EINVAL for an invalid UUID. */
static int options_uuid_length(const char *value) {
        size_t l = strspn(value, "0123456789abcdefABCDEF-"), digits = 0;

        if (l == 0 || value[l] != '=')
                return 0;
        for (size_t i = 0; i < l; i++)
                if (value[i] != '-')
                        digits++;
                else if (l != 36 || (i != 8 && i != 13 && i != 18 && i != 23))
                        return -EINVAL;
        return digits == 32 ? (int) l : -EINVAL;
}

static int volumes_cb(const char *key, const char *value, void *ud) {
        CmdlineVolumes *c = ud;
        _cleanup_free_ char *uuid = NULL;
        CmdlineVolume *v;
        const char *name = NULL;
        int r;

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
        if (streq(key, "rd.luks.options")) {
                int l = options_uuid_length(value);
                if (l < 0) {
                        log_warning("Ignoring rd.luks.options=%s: invalid UUID.", value);
                        return 0;
                }
                if (l == 0)
                        return free_and_strdup(&c->default_options, value);
                uuid = strndup(value, l);
                if (!uuid)
                        return -ENOMEM;
                r = cmdline_volume_get(c, uuid, &v);
                if (r < 0)
                        return r;
                return free_and_strdup(&v->options, value + l + 1);
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
        if (!*uuid)
                return 0;
        r = cmdline_volume_get(c, uuid, &v);
        if (r < 0)
                return r;
        v->selected = c->any_selected = true;
        return name ? free_and_strdup(&v->name, name) : 0;
}

/* Adds a volume unless its options say no. */
static int select_add(VolumeSpec **l, size_t *n, const char *device, const char *name, const char *options,
                      const char *source) {
        const char *why = options_skip_reason(options);

        if (why) {
                log_info("Leaving %s alone: %s (%s).", name ?: device, why, source);
                return 0;
        }
        return specs_add(l, n, device, name, option_bool(options, "x-unlockd-reseal", true));
}

/* Which volumes, from the kernel command line and crypttab (NULL when
 * ignored), unresolved. As systemd-cryptsetup-generator:
 *  - rd.luks.uuid=, rd.luks.name=, rd.unlockd.uuid= choose which volumes
 *    (in their order); without them, every crypttab entry;
 *  - a crypttab entry for a chosen volume gives its device, name and
 *    options (so noauto, x-unlockd=no, x-unlockd-reseal=no apply however
 *    the volume was chosen); otherwise the device is UUID=…, the name that
 *    of rd.luks.name= (or luks-UUID), the options those of rd.luks.options=;
 *  - rd.luks.options=UUID=OPTIONS replaces the volume's options, crypttab's
 *    included. */
static int volumes_select(CmdlineVolumes *c, const CrypttabEntry *tab, size_t n_tab, VolumeSpec **ret,
                          size_t *ret_n) {
        VolumeSpec *l = NULL;
        size_t n = 0;
        int r = 0;

        if (c->any_selected)
                for (size_t i = 0; i < c->n && r >= 0; i++) {
                        const CmdlineVolume *v = c->l + i;
                        const CrypttabEntry *e = NULL;
                        _cleanup_free_ char *spec = NULL;

                        if (!v->selected)
                                continue;
                        for (size_t k = 0; k < n_tab && !e; k++) {
                                const char *u = crypttab_entry_uuid(tab + k);
                                if (u && strcasecmp(u, v->uuid) == 0)
                                        e = tab + k;
                        }
                        if (e) {
                                r = select_add(&l, &n, e->device, e->name, v->options ?: e->options,
                                               v->options ? "rd.luks.options=" : "crypttab");
                                continue;
                        }
                        if (asprintf(&spec, "UUID=%s", v->uuid) < 0)
                                r = -ENOMEM;
                        else
                                r = select_add(&l, &n, spec, v->name, v->options ?: c->default_options ?: "",
                                               "rd.luks.options=");
                }
        else
                for (size_t k = 0; k < n_tab && r >= 0; k++) {
                        const CmdlineVolume *v = cmdline_volume_find(c, crypttab_entry_uuid(tab + k));
                        const char *o = v && v->options ? v->options : tab[k].options;

                        r = select_add(&l, &n, tab[k].device, tab[k].name, o,
                                       v && v->options ? "rd.luks.options=" : "crypttab");
                }
        if (r < 0) {
                volume_specs_free(l, n);
                return r;
        }
        *ret = l;
        *ret_n = n;
        return 0;
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
        CrypttabEntry *tab = NULL;
        VolumeSpec *sel = NULL, *out = NULL;
        size_t n_tab = 0, n_sel = 0, n_out = 0;
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
                const char *path = secure_getenv("UNLOCKD_CRYPTTAB") ?: "/etc/crypttab";
                r = read_file_bounded(path, CRYPTTAB_MAX, &text, NULL);
                if (r >= 0) {
                        r = crypttab_parse_entries(text, &tab, &n_tab);
                        if (r < 0)
                                goto fail;
                } else if (r != -ENOENT)
                        log_warning_errno(r, "Cannot read %s: %m", path);
        }

        r = volumes_select(&c, tab, n_tab, &sel, &n_sel);
        if (r < 0)
                goto fail;

        for (size_t i = 0; i < n_sel; i++) {
                _cleanup_free_ char *dev = NULL;

                r = resolve_spec(sel[i].device, (uint64_t) c.timeout_sec * 1000000, alive, &dev);
                if (r < 0) {
                        log_error_errno(r, "Volume %s not found; skipping it.", sel[i].device);
                        continue;
                }
                r = specs_add(&out, &n_out, dev, sel[i].name, sel[i].reseal);
                if (r < 0)
                        goto fail;
        }
        r = 0;
        *ret = TAKE_PTR(out);
        *ret_n = n_out;
fail:
        crypttab_entries_free(tab, n_tab);
        cmdline_volumes_done(&c);
        volume_specs_free(sel, n_sel);
        volume_specs_free(out, n_out);
        return r;
}
