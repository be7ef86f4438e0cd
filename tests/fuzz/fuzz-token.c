/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Token JSON from the LUKS2 header: parse, and format what parsed. */
#include <stdlib.h>
#include <string.h>

#include "token.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *s = malloc(size + 1), *json = NULL, *err = NULL, *type = NULL;
        Tpm2Token *t = NULL;
        int slot;

        if (!s)
                return 0;
        memcpy(s, data, size);
        s[size] = 0;
        if (tpm2_token_parse(s, &t, &err) == 0) {
                if (tpm2_token_format(t, &json) == 0) {
                        Tpm2Token *t2 = NULL;
                        /* What we format, we parse back to the same thing. */
                        if (tpm2_token_parse(json, &t2, NULL) != 0 || t2->keyslot != t->keyslot ||
                            t2->pcr_mask != t->pcr_mask || t2->blob_size != t->blob_size)
                                abort();
                        tpm2_token_free(t2);
                }
        }
        (void) token_get_type_and_keyslot(s, &type, &slot);
        free(type);
        free(json);
        free(err);
        tpm2_token_free(t);
        free(s);
        return 0;
}
