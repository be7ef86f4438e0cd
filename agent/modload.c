/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <libkmod.h>
#include <stdarg.h>
#include <stdio.h>

#include "log.h"
#include "modload.h"

_printf_(6, 0)
static void kmod_log(void *data, int priority, const char *file, int line, const char *fn,
                     const char *format, va_list args) {
        char buf[512];

        vsnprintf(buf, sizeof(buf), format, args);
        log_debug("kmod: %s", buf);
}

static struct kmod_ctx *ctx_new(void) {
        struct kmod_ctx *ctx = kmod_new(NULL, NULL);

        if (!ctx)
                return NULL;
        kmod_set_log_fn(ctx, kmod_log, NULL);
        (void) kmod_load_resources(ctx);
        return ctx;
}

static int load(struct kmod_ctx *ctx, const char *name) {
        struct kmod_list *list = NULL, *l;
        int r, inserted = 0, found = 0;

        r = kmod_module_new_from_lookup(ctx, name, &list);
        if (r < 0)
                return r;
        kmod_list_foreach(l, list) {
                struct kmod_module *m = kmod_module_get_module(l);
                int state = kmod_module_get_initstate(m);

                found++;
                if (state == KMOD_MODULE_BUILTIN || state == KMOD_MODULE_LIVE) {
                        kmod_module_unref(m);
                        continue;
                }
                r = kmod_module_probe_insert_module(m, KMOD_PROBE_APPLY_BLACKLIST, NULL, NULL, NULL, NULL);
                if (r == 0)
                        inserted = 1;
                else if (r != -EEXIST)
                        log_debug_errno(r, "Failed to insert %s: %m", kmod_module_get_name(m));
                kmod_module_unref(m);
        }
        kmod_module_unref_list(list);
        if (found == 0)
                return -ENOENT;
        return inserted;
}

int modload_one(const char *name) {
        struct kmod_ctx *ctx = ctx_new();
        int r;

        if (!ctx)
                return -ENOMEM;
        r = load(ctx, name);
        kmod_unref(ctx);
        return r;
}

int modload_boot_modules(void) {
        static const char *const modules[] = { "tpm_crb", "tpm_tis", "dm_crypt" };
        struct kmod_ctx *ctx = ctx_new();
        int n = 0;

        if (!ctx)
                return -ENOMEM;
        for (size_t i = 0; i < ELEMENTSOF(modules); i++) {
                int r = load(ctx, modules[i]);
                if (r > 0) {
                        log_debug("Loaded %s.", modules[i]);
                        n++;
                } else if (r == -ENOENT)
                        log_debug("Module %s not found (built in or not needed).", modules[i]);
                else if (r < 0)
                        log_notice_errno(r, "Could not load module %s: %m", modules[i]);
        }
        kmod_unref(ctx);
        return n;
}
