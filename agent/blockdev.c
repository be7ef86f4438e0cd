/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <blkid/blkid.h>
#include <stdlib.h>
#include <string.h>

#include "blockdev.h"
#include "log.h"
#include "macro.h"
#include "strutil.h"

int blockdev_find_by_uuid(const char *uuid, char **ret_path) {
        char *p = blkid_evaluate_tag("UUID", uuid, NULL);

        if (!p)
                return -ENODEV;
        *ret_path = p;
        return 0;
}

int blockdev_resolve(const char *spec, char **ret_path) {
        char *p;

        if (spec[0] == '/') {
                p = strdup(spec);
                if (!p)
                        return -ENOMEM;
                *ret_path = p;
                return 0;
        }
        p = blkid_evaluate_spec(spec, NULL);
        if (!p)
                return -ENODEV;
        *ret_path = p;
        return 0;
}

int blockdev_list_luks(char ***ret) {
        blkid_cache cache = NULL;
        blkid_dev_iterate it;
        blkid_dev dev;
        char **l = NULL;
        size_t n = 0;

        if (blkid_get_cache(&cache, "/dev/null") < 0)
                return -ENOMEM;
        (void) blkid_probe_all(cache);
        it = blkid_dev_iterate_begin(cache);
        if (!it) {
                blkid_put_cache(cache);
                return -ENOMEM;
        }
        (void) blkid_dev_set_search(it, "TYPE", "crypto_LUKS");
        while (blkid_dev_next(it, &dev) == 0) {
                char **nl;

                dev = blkid_verify(cache, dev);
                if (!dev)
                        continue;
                nl = realloc(l, (n + 2) * sizeof(char *));
                if (!nl)
                        goto oom;
                l = nl;
                l[n] = strdup(blkid_dev_devname(dev));
                if (!l[n])
                        goto oom;
                l[++n] = NULL;
        }
        blkid_dev_iterate_end(it);
        blkid_put_cache(cache);
        if (!l) {
                l = calloc(1, sizeof(char *));
                if (!l)
                        return -ENOMEM;
        }
        *ret = l;
        return (int) n;
oom:
        blkid_dev_iterate_end(it);
        blkid_put_cache(cache);
        strv_free(l);
        return -ENOMEM;
}
