/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "crypttab.h"
#include "strutil.h"

void volume_specs_free(VolumeSpec *s, size_t n) {
        for (size_t i = 0; s && i < n; i++) {
                free(s[i].device);
                free(s[i].name);
        }
        free(s);
}

int specs_add(VolumeSpec **l, size_t *n, const char *device, const char *name, bool reseal) {
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

/* Iterates over the comma-separated items of a crypttab option list. */
static bool option_next(const char **p, const char **ret_item, size_t *ret_len) {
        const char *e;

        if (!*p || !**p)
                return false;
        e = strchrnul(*p, ',');
        *ret_item = *p;
        *ret_len = (size_t) (e - *p);
        *p = *e ? e + 1 : e;
        return true;
}

/* The value of the last KEY=BOOL (or bare KEY: yes) in options; def when absent. */
bool option_bool(const char *options, const char *key, bool def) {
        size_t kl = strlen(key), l;
        const char *item;
        bool v = def;

        for (const char *p = options; option_next(&p, &item, &l);) {
                char buf[8] = {};
                int b;

                if (l < kl || strncmp(item, key, kl) != 0)
                        continue;
                if (l == kl) {
                        v = true;
                        continue;
                }
                if (item[kl] != '=' || l - kl - 1 >= sizeof(buf))
                        continue;
                memcpy(buf, item + kl + 1, l - kl - 1);
                b = parse_boolean(buf);
                if (b >= 0)
                        v = b;
        }
        return v;
}

/* Whether unlockd opens a volume with these options at boot: NULL, or why
 * not. As systemd-cryptsetup-generator: the last of noauto and auto wins. */
const char *options_skip_reason(const char *options) {
        static const char *const types[] = { "plain", "swap", "tmp", "bitlk", "tcrypt" };
        const char *item, *why = NULL, *type = NULL;
        size_t l;

        for (const char *p = options; option_next(&p, &item, &l);) {
                if (l == 6 && strncmp(item, "noauto", 6) == 0)
                        why = "noauto";
                else if (l == 4 && strncmp(item, "auto", 4) == 0)
                        why = NULL;
                for (size_t i = 0; i < ELEMENTSOF(types); i++) {
                        size_t tl = strlen(types[i]);
                        /* tmp=FS, tcrypt-veracrypt and the like, too. */
                        if (l >= tl && strncmp(item, types[i], tl) == 0 &&
                            (l == tl || item[tl] == '=' || item[tl] == '-'))
                                type = types[i];
                }
        }
        if (!option_bool(options, "x-unlockd", true))
                return "x-unlockd=no";
        if (type)
                return type;
        return why;
}

void crypttab_entries_free(CrypttabEntry *t, size_t n) {
        for (size_t i = 0; t && i < n; i++) {
                free(t[i].name);
                free(t[i].device);
                free(t[i].options);
        }
        free(t);
}

/* Every entry of a crypttab, whatever its options. */
int crypttab_parse_entries(const char *text, CrypttabEntry **ret, size_t *ret_n) {
        _cleanup_free_ char *copy = strdup(text);
        CrypttabEntry *l = NULL;
        size_t n = 0;
        char *save = NULL;

        if (!copy)
                return -ENOMEM;
        for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char *f[4] = {}, *s2 = NULL;
                size_t k = 0;
                CrypttabEntry *nl;

                line += strspn(line, " \t");
                if (*line == '#' || *line == 0)
                        continue;
                for (char *w = strtok_r(line, " \t", &s2); w && k < 4; w = strtok_r(NULL, " \t", &s2))
                        f[k++] = w;
                if (k < 2)
                        continue;
                nl = realloc(l, (n + 1) * sizeof(CrypttabEntry));
                if (!nl)
                        goto oom;
                l = nl;
                l[n] = (CrypttabEntry) { .name = strdup(f[0]), .device = strdup(f[1]), .options = strdup(k >= 4 ? f[3] : "") };
                n++;
                if (!l[n - 1].name || !l[n - 1].device || !l[n - 1].options)
                        goto oom;
        }
        *ret = l;
        *ret_n = n;
        return 0;
oom:
        crypttab_entries_free(l, n);
        return -ENOMEM;
}

/* The UUID a crypttab entry is for, as systemd-cryptsetup-generator finds
 * it: device UUID=…, else device /dev/disk/by-uuid/…, else name luks-…. */
const char *crypttab_entry_uuid(const CrypttabEntry *e) {
        return startswith(e->device, "UUID=") ?: startswith(e->device, "/dev/disk/by-uuid/") ?: startswith(e->name, "luks-");
}

int crypttab_parse(const char *text, VolumeSpec **ret, size_t *ret_n) {
        CrypttabEntry *t = NULL;
        VolumeSpec *l = NULL;
        size_t n_t = 0, n = 0;
        int r;

        r = crypttab_parse_entries(text, &t, &n_t);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n_t; i++) {
                if (options_skip_reason(t[i].options))
                        continue;
                r = specs_add(&l, &n, t[i].device, t[i].name, option_bool(t[i].options, "x-unlockd-reseal", true));
                if (r < 0) {
                        crypttab_entries_free(t, n_t);
                        volume_specs_free(l, n);
                        return r;
                }
        }
        crypttab_entries_free(t, n_t);
        *ret = l;
        *ret_n = n;
        return 0;
}

