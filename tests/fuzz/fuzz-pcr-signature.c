/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The signature JSON of signed PCR policies (tpm2-pcr-signature.json, from
 * the initrd): looked up for the digests the inputs hold. */
#include <stdlib.h>
#include <string.h>

#include "pcr.h"
#include "token.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const uint16_t banks[] = { PCR_BANK_SHA1, PCR_BANK_SHA256 };
        /* The fingerprint and digest of the seeds (corpus/pcr-signature). */
        static const uint8_t fp[32] = { 0x8b, 0x86 }, pol[32] = { 0xfd, 0x32 };
        char *s = malloc(size + 1);

        if (!s)
                return 0;
        memcpy(s, data, size);
        s[size] = 0;
        for (size_t b = 0; b < sizeof(banks) / sizeof(banks[0]); b++) {
                uint8_t *sig = NULL;
                size_t n = 0;
                char *err = NULL;
                int r = pcr_signature_find(s, banks[b], 1u << 11, fp, sizeof(fp), pol, sizeof(pol), &sig, &n, &err);

                /* A match has a signature within bounds; no match, none. */
                if ((r == 0) != (sig != NULL) || (r == 0 && (n == 0 || n > PCR_SIGNATURE_SIG_MAX)))
                        abort();
                free(sig);
                free(err);
                sig = NULL;
                (void) pcr_signature_find(s, banks[b], 1u << 11, NULL, 0, pol, sizeof(pol), &sig, &n, NULL);
                free(sig);
        }
        free(s);
        return 0;
}
