/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What a person types at the prompt: systemd and secboot key forms. */
#include <stdlib.h>
#include <string.h>

#include "recovery-key.h"
#include "secret.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *s = malloc(size + 1), *key = NULL, *again = NULL;
        uint8_t sb[SECBOOT_RECOVERY_KEY_BYTES];

        if (!s)
                return 0;
        memcpy(s, data, size);
        s[size] = 0;
        if (recovery_key_normalize(s, &key) == 0) {
                /* The canonical form is a fixed point. */
                if (strlen(key) != RECOVERY_KEY_FORMATTED_LEN || recovery_key_normalize(key, &again) != 0 ||
                    strcmp(key, again) != 0)
                        abort();
        }
        if (recovery_key_parse_secboot(s, sb) == 0) {
                char f[48];
                uint8_t sb2[SECBOOT_RECOVERY_KEY_BYTES];
                recovery_key_format_secboot(sb, f);
                if (recovery_key_parse_secboot(f, sb2) != 0 || memcmp(sb, sb2, sizeof(sb)) != 0)
                        abort();
        }
        secret_free(key);
        secret_free(again);
        free(s);
        return 0;
}
