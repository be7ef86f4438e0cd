/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* An SRK.pub (TPM2B_PUBLIC as tpm2_readpublic -f tss writes it) given to
 * enroll --tpm2-device-key=, as it is parsed and serialized for tpm2_srk. */
#include <stdlib.h>

#include "tpm2-offline.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        OfflineSrk *srk = malloc(sizeof(*srk));
        uint8_t *ser = NULL;
        size_t ser_size;
        char *error = NULL;

        if (!srk)
                return 0;
        if (offline_srk_parse(data, size, srk, &error) == 0)
                (void) offline_srk_serialize(srk, OFFLINE_SRK_HANDLE, &ser, &ser_size);
        free(ser);
        free(error);
        free(srk);
        return 0;
}
