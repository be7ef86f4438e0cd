/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* EFI binaries from the ESP or a package, as their Authenticode digest is
 * computed for the prediction of PCR 4. */
#include <stdint.h>
#include <stdlib.h>

#include "pcr.h"
#include "pe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        uint8_t digest[64];

        (void) pe_authenticode_digest(data, size, PCR_BANK_SHA256, digest);
        return 0;
}
