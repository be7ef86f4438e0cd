/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Test helper: prints unlockd's policy digest (hex) for
 *   policy-digest BANK PCRS VALUES-FILE [pin]
 * where VALUES-FILE holds the PCR values concatenated in index order (as
 * tpm2_pcrread -o writes them). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pcr.h"

int main(int argc, char *argv[]) {
        uint8_t values[PCR_MAX * 64], d[SHA256_DIGEST_SIZE];
        uint32_t mask;
        uint16_t bank;
        size_t n = 0;
        FILE *f;

        if (argc < 4 || pcr_bank_from_string(argv[1], &bank) < 0 || pcr_mask_from_string(argv[2], &mask) < 0)
                return 2;
        f = fopen(argv[3], "rb");
        if (f) {
                n = fread(values, 1, sizeof(values), f);
                fclose(f);
        }
        if (policy_digest_compute(bank, mask, values, n, argc > 4 && strcmp(argv[4], "pin") == 0, d) < 0)
                return 1;
        for (size_t i = 0; i < sizeof(d); i++)
                printf("%02x", d[i]);
        printf("\n");
        return 0;
}
