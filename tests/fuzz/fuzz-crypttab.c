/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The initrd's crypttab. */
#include <stdlib.h>
#include <string.h>

#include "crypttab.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *s = malloc(size + 1);
        VolumeSpec *v = NULL;
        size_t n = 0;

        if (!s)
                return 0;
        memcpy(s, data, size);
        s[size] = 0;
        if (crypttab_parse(s, &v, &n) == 0)
                volume_specs_free(v, n);
        free(s);
        return 0;
}
