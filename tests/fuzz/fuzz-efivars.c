/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A VM's variable store (OVMF VARS .fd) or its uefi-config.json, as
 * --secure-boot-vars= reads it, and the signature lists of what it holds. */
#include <stdlib.h>
#include <string.h>

#include "efivars.h"
#include "pcr.h"
#include "secureboot.h"

static int count(const uint8_t type[16], const uint8_t *esd, size_t esd_size, void *userdata) {
        (*(size_t *) userdata) += esd_size + type[0];
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        EfiVarStore *s = NULL;

        if (efivars_parse_ovmf(data, size, &s) < 0) {
                char *text = malloc(size + 1);

                if (!text)
                        return 0;
                memcpy(text, data, size);
                text[size] = 0;
                (void) efivars_parse_json(text, size, &s);
                free(text);
        }
        if (s) {
                SecureBootPrediction *p = NULL;
                size_t total = 0;

                for (size_t i = 0; i < s->n_variables; i++)
                        (void) efivars_signature_foreach(s->variables[i].data, s->variables[i].size, count, &total);
                (void) efivars_secure_boot(s);
                if (secureboot_predict_pcr7(s, NULL, 0, PCR_BANK_SHA256, &p, NULL) == 0)
                        secureboot_prediction_free(p);
                efivars_free(s);
        }
        return 0;
}
