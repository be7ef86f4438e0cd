/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* pe-digest [--bank=sha1|sha256|sha384|sha512] FILE…: prints the
 * Authenticode digest pe_authenticode_digest() computes for each file, as
 * "HEX  FILE", for test-pe-authenticode.py to compare with osslsigncode and
 * the digests a real event log holds. Exit 1 when a file is rejected. */
#include <stdio.h>
#include <string.h>

#include "encoding.h"
#include "fileio.h"
#include "macro.h"
#include "pcr.h"
#include "pe.h"

int main(int argc, char *argv[]) {
        uint16_t bank = PCR_BANK_SHA256;
        int ret = 0, i = 1;

        if (i < argc && startswith(argv[i], "--bank=")) {
                if (pcr_bank_from_string(argv[i] + strlen("--bank="), &bank) < 0) {
                        fprintf(stderr, "unknown bank: %s\n", argv[i]);
                        return 2;
                }
                i++;
        }
        if (i >= argc) {
                fprintf(stderr, "usage: %s [--bank=BANK] FILE...\n", argv[0]);
                return 2;
        }

        for (; i < argc; i++) {
                _cleanup_free_ char *data = NULL, *hex = NULL;
                uint8_t digest[64];
                size_t size;
                int r;

                r = read_file_bounded(argv[i], PE_IMAGE_SIZE_MAX, &data, &size);
                if (r < 0) {
                        fprintf(stderr, "%s: cannot read: %s\n", argv[i], strerror(-r));
                        ret = 1;
                        continue;
                }
                r = pe_authenticode_digest(data, size, bank, digest);
                if (r < 0) {
                        fprintf(stderr, "%s: rejected: %s\n", argv[i], strerror(-r));
                        ret = 1;
                        continue;
                }
                if (hex_encode(digest, (size_t) r, &hex) < 0)
                        return 1;
                printf("%s  %s\n", hex, argv[i]);
        }
        return ret;
}
