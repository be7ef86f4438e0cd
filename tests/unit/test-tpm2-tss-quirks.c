/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The workarounds in agent/tpm2-tss-quirks.c wipe copies of secrets that
 * tpm2-tss keeps in its internals. They were checked against one tpm2-tss
 * version; this test fails when unlockd is built against another, until
 * someone checks them again. The versions come from pkg-config at build time
 * (tests/unit/meson.build). */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdbool.h>

#include "tests.h"
#include "tpm2-tss-quirks.h"

static bool verified(const char *version) {
        const char *p = TPM2_TSS_QUIRKS_VERIFIED_VERSIONS;
        size_t n = strlen(version);

        while (*p) {
                size_t len = strcspn(p, " ");

                if (len == n && strncmp(p, version, n) == 0)
                        return true;
                p += len;
                p += strspn(p, " ");
        }
        return false;
}

static void check(const char *lib, const char *built) {
        if (verified(built))
                return;
        fprintf(stderr,
                "%s is version %s, but the tpm2-tss workarounds in agent/tpm2-tss-quirks.c were verified\n"
                "against tpm2-tss %s only. Run tests/tpm/test-secret-hygiene.sh (meson test --suite tpm\n"
                "test-secret-hygiene.sh), which judges whether any secret is left in memory, check each\n"
                "internal named in agent/tpm2-tss-quirks.c in the source of tpm2-tss %s, and then add\n"
                "%s to TPM2_TSS_QUIRKS_VERIFIED_VERSIONS in agent/tpm2-tss-quirks.h.\n",
                lib, built, TPM2_TSS_QUIRKS_VERIFIED_VERSIONS, built, built);
        exit(EXIT_FAILURE);
}

/* This program's OSSL_LIB_CTX_new() and OSSL_LIB_CTX_free() (the quirk
 * that gives libtss2-esys one library context) are libcrypto's for any
 * other caller: fresh, distinct, working contexts, really freed. */
static void test_libctx_other_callers(void) {
        OSSL_LIB_CTX *a = OSSL_LIB_CTX_new(), *b = OSSL_LIB_CTX_new();
        EVP_MD *md;

        ASSERT(a && b);
        ASSERT(a != b);
        md = EVP_MD_fetch(a, "SHA256", NULL);
        ASSERT(md);
        ASSERT_EQ(EVP_MD_get_size(md), 32);
        EVP_MD_free(md);
        OSSL_LIB_CTX_free(a);
        OSSL_LIB_CTX_free(b);
        OSSL_LIB_CTX_free(NULL);
}

int main(void) {
        /* Links the quirks' object, which defines the two functions. */
        tpm2_quirk_wipe_stack();
        test_libctx_other_callers();
        ASSERT(verified("3.2.1"));
        ASSERT(verified("4.1.3"));
        ASSERT(!verified("3.2"));
        ASSERT(!verified("4.1.3.1"));
        ASSERT(!verified(""));

        /* ESAPI holds the internals; SAPI's command buffer is where a
         * decrypted response parameter stays. Both come from one tpm2-tss
         * release. */
        check("tss2-esys", TSS2_ESYS_VERSION);
        check("tss2-sys", TSS2_SYS_VERSION);
        return 0;
}
