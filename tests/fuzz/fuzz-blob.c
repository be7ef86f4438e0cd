/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* tpm2-blob bytes as unmarshalled before they reach the TPM. */
#include <stdlib.h>
#include <string.h>
#include <tss2/tss2_mu.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        TPM2B_PRIVATE priv;
        TPM2B_PUBLIC pub;
        size_t off = 0;

        memset(&priv, 0, sizeof(priv));
        memset(&pub, 0, sizeof(pub));
        if (Tss2_MU_TPM2B_PRIVATE_Unmarshal(data, size, &off, &priv) == TSS2_RC_SUCCESS)
                (void) Tss2_MU_TPM2B_PUBLIC_Unmarshal(data, size, &off, &pub);
        return 0;
}
