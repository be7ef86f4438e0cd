/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* EFI binaries as the PCR 7 model reads them: Authenticode signatures
 * (PKCS#7, the SpcIndirectDataContent), shim's .sbatlevel, .vendor_cert and
 * .data.ident sections. Input: u16 LE length L, L bytes of db (signature
 * lists), then the image, started by the firmware and then by itself (as
 * shim would start it when it is one). */
#include <stdlib.h>
#include <string.h>

#include "efivars.h"
#include "pcr.h"
#include "secureboot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static uint8_t pk[1] = { 1 };
        EfiVariable vars[2] = {
                { .name = (char *) "PK", .data = pk, .size = sizeof(pk) },
                { .name = (char *) "db" },
        };
        EfiVarStore s = { .variables = vars, .n_variables = 2, .computed_secure_boot = true };
        SecureBootImage chain[2];
        SecureBootPrediction *p = NULL;
        char *error = NULL;
        size_t l;

        if (size < 2)
                return 0;
        l = (size_t) data[0] | (size_t) data[1] << 8;
        if (l > size - 2)
                return 0;
        memcpy(vars[0].guid, EFI_GLOBAL_VARIABLE_GUID, 16);
        memcpy(vars[1].guid, EFI_IMAGE_SECURITY_DATABASE_GUID, 16);
        vars[1].data = (uint8_t *) data + 2;
        vars[1].size = l;
        chain[0] = (SecureBootImage) { .name = "image", .data = data + 2 + l, .size = size - 2 - l };
        chain[1] = chain[0];
        if (secureboot_predict_pcr7(&s, chain, 2, PCR_BANK_SHA256, &p, &error) == 0)
                secureboot_prediction_free(p);
        free(error);
        return 0;
}
