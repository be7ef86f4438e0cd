/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Token JSON from the LUKS2 header (systemd-tpm2 tokens, unlockd-pending
 * markers): parse, and format what parsed. */
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
        {
                PendingToken p;
                char *pj = NULL;
                /* A marker formats back to one that parses the same. */
                if (pending_token_parse(s, &p, NULL) == 0) {
                        PendingToken q;
                        if (pending_token_format(&p, &pj) != 0 || pending_token_parse(pj, &q, NULL) != 0 ||
                            q.keyslot != p.keyslot || q.generation != p.generation || q.has_proof != p.has_proof ||
                            memcmp(q.proof, p.proof, sizeof(p.proof)) != 0)
                                abort();
                }
                free(pj);
        }
        free(type);
        free(json);
        free(err);
        tpm2_token_free(t);
        free(s);
        return 0;
}
