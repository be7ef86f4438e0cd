/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <dlfcn.h>
#include <openssl/crypto.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_sys.h>

#include "log.h"
#include "tpm2-tss-quirks.h"

/* Checked against tpm2-tss 3.2.1 and 4.1.3 (src/tss2-esys/api/Esys_Create.c).
 *
 * Internal relied on: Esys_Create_Async() copies its inSensitive argument
 * (the secret being sealed, the PIN's auth value) into
 * esysContext->in.Create.inSensitiveData (store_input_parameters()), where
 * it stays until another command stores its own input in that union, and
 * Esys_Finalize() frees the context without wiping it. The copy is made
 * before any other argument is looked at: a call with a zeroed input and no
 * creation PCR selection overwrites it, then fails in
 * Tss2_Sys_Create_Prepare() before anything reaches the TPM. ESAPI logs that failure when its error logging is on (TSS2_LOG, or
 * unlockd's debug level). */
void tpm2_quirk_wipe_create_input(ESYS_CONTEXT *esys) {
        TPM2B_SENSITIVE_CREATE zero = {};
        TSS2_RC rc;

        log_debug("Overwriting ESAPI's copy of the sealed data; ESAPI reports the call that does it as failed.");
        rc = Esys_Create_Async(esys, ESYS_TR_NONE, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                               &zero, NULL, NULL, NULL);
        if (rc == TSS2_RC_SUCCESS)      /* not expected: then finish what was started */
                (void) Esys_Create_Finish(esys, NULL, NULL, NULL, NULL, NULL);
}

/* Checked against tpm2-tss 3.2.1 and 4.1.3 (src/tss2-esys/esys_iutil.c).
 *
 * Internal relied on: iesys_decrypt_param() decrypts an encrypted response
 * parameter and writes the plaintext back into the command buffer of the
 * ESAPI context's SAPI context with Tss2_Sys_SetEncryptParam(), where it
 * stays until a longer response overwrites it; Esys_Finalize() frees that
 * buffer without wiping it. We overwrite it with zeros through the same SAPI
 * call, which ESAPI exposes through Esys_GetSysContext(). */
void tpm2_quirk_wipe_response_parameter(ESYS_CONTEXT *esys) {
        TSS2_SYS_CONTEXT *sys = NULL;
        const uint8_t *p;
        _cleanup_free_ uint8_t *zeros = NULL;
        size_t n = 0;
        TSS2_RC rc;

        if (Esys_GetSysContext(esys, &sys) != TSS2_RC_SUCCESS || !sys ||
            Tss2_Sys_GetEncryptParam(sys, &n, &p) != TSS2_RC_SUCCESS || n == 0)
                return;
        zeros = calloc(1, n);
        if (!zeros)
                return;
        rc = Tss2_Sys_SetEncryptParam(sys, n, zeros);
        if (rc != TSS2_RC_SUCCESS)
                log_debug("Cannot wipe the unsealed data in the SAPI buffer: %s", Tss2_RC_Decode(rc));
}

/* Checked against tpm2-tss 3.2.1 and 4.1.3 (src/tss2-esys/esys_tr.c,
 * src/tss2-esys/api/Esys_FlushContext.c).
 *
 * Internal relied on: Esys_TR_SetAuth() keeps the auth value in the
 * handle's resource node (RSRC_NODE_T.auth), which Esys_TR_Close() (and so
 * Esys_FlushContext()) frees with SAFE_FREE() without wiping it. Setting an
 * empty auth value first overwrites it. */
void tpm2_quirk_wipe_object_auth(ESYS_CONTEXT *esys, ESYS_TR object) {
        if (object == ESYS_TR_NONE)
                return;
        (void) Esys_TR_SetAuth(esys, object, &(TPM2B_AUTH) {});
}

/* Checked against tpm2-tss 3.2.1 and 4.1.3 (src/tss2-esys/esys_iutil.c).
 *
 * Internal relied on: iesys_decrypt_param() decrypts a response parameter
 * (Esys_Unseal()'s secret) in a stack array (plaintext[]), and
 * iesys_encrypt_param() encrypts a command parameter (Esys_Create()'s
 * sensitive input) from a stack array (encrypt_buffer[]); neither wipes it,
 * and the command's callers up to the Esys_* function return over it.
 *
 * Kept out of line and not a leaf, so that its frame lies below the
 * caller's, where the callee frames that just returned were. */
__attribute__((noinline)) void tpm2_quirk_wipe_stack(void) {
        volatile uint8_t area[TPM2_QUIRK_WIPE_STACK_SIZE];

        explicit_bzero((void *) area, sizeof(area));
        __asm__ __volatile__("" : : "r"(area) : "memory");
}

/* Checked against tpm2-tss 3.2.1 and 4.1.3 (src/tss2-esys/esys_crypto_ossl.c).
 *
 * Internal relied on: each hash and HMAC context ESAPI starts (several per
 * command: cpHash, rpHash, session HMACs, the KDFa of a salted session)
 * makes its own library context with OSSL_LIB_CTX_new(), fetches its one
 * digest there, and frees the library context with the hash context. It
 * loads no provider and no configuration into it: what it fetches comes
 * from the default provider that a fresh library context loads by itself.
 * Each fresh one loads that provider and fills its name map from the
 * legacy tables again, about 3 M instructions each time, a quarter of an
 * unlock's (BENCHMARKS.md). tpm2-tss 4.0 lets an application set its own
 * crypto callbacks (Esys_SetCryptoCallbacks()); 3.2.1 does not.
 *
 * tpm2-tss 4.x also makes its HMAC keys (a session's key followed by the
 * auth value, a PIN's) in that context (EVP_PKEY_new_raw_private_key_ex()),
 * then signs with them through EVP_DigestSignInit(), which works in
 * OpenSSL's default context: the key's key manager is another context's,
 * so OpenSSL exports the key to the default context's through an
 * OSSL_PARAM_BLD array, which OSSL_PARAM_free() releases unwiped — a copy
 * of the PIN's auth value left in the heap at every HMAC (3.2.1 makes its
 * keys in the default context, so nothing is exported).
 *
 * So this program defines OSSL_LIB_CTX_new() and OSSL_LIB_CTX_free()
 * itself: the dynamic linker binds every library's calls to them. Calls
 * from libtss2-esys get OpenSSL's default library context
 * (OSSL_LIB_CTX_get0_global_default(), the one a NULL context means,
 * loaded once, with its configuration, for the whole process); its frees
 * of it do nothing. ESAPI thus gets the same algorithms from the same
 * provider, fetched once, and its HMAC keys are never exported. Every other caller (libcryptsetup, which loads
 * its own providers into its own context) gets libcrypto's functions
 * unchanged, and so does libtss2-esys when its code cannot be told apart
 * (dladdr() fails).
 *
 * A static unlockd (-Dstatic=true) has no dynamic linker to bind calls:
 * there tools/build-static-deps renames libtss2-esys.a's references to
 * those two functions to tpm2_quirk_esys_libctx_new() and
 * tpm2_quirk_esys_libctx_free() (objcopy --redefine-sym), which do the
 * same for ESAPI alone. */

/* ESAPI's library context: OpenSSL's default one (made once by OpenSSL
 * itself; NULL only when OpenSSL cannot initialise). */
static OSSL_LIB_CTX *esys_libctx(void) {
        return OSSL_LIB_CTX_get0_global_default();
}

#if UNLOCKD_STATIC_TCTI
OSSL_LIB_CTX *tpm2_quirk_esys_libctx_new(void);
OSSL_LIB_CTX *tpm2_quirk_esys_libctx_new(void) {
        return esys_libctx() ?: OSSL_LIB_CTX_new();
}

void tpm2_quirk_esys_libctx_free(OSSL_LIB_CTX *ctx);
void tpm2_quirk_esys_libctx_free(OSSL_LIB_CTX *ctx) {
        if (ctx != esys_libctx())
                OSSL_LIB_CTX_free(ctx);
}
#else
static void *libcrypto_symbol(const char *name) {
        /* The next definition after this program's: libcrypto's. */
        return dlsym(RTLD_NEXT, name);
}

static bool called_from_esys(const void *caller) {
        static const void *esys_base;
        Dl_info info;

        if (!esys_base) {
                if (!dladdr((const void *) Esys_Initialize, &info) || !info.dli_fbase)
                        return false;
                esys_base = info.dli_fbase;
        }
        return dladdr(caller, &info) && info.dli_fbase == esys_base;
}

OSSL_LIB_CTX *OSSL_LIB_CTX_new(void) {
        OSSL_LIB_CTX *(*real_new)(void), *ctx;

        if (called_from_esys(__builtin_return_address(0))) {
                ctx = esys_libctx();
                if (ctx)
                        return ctx;
        }
        real_new = libcrypto_symbol("OSSL_LIB_CTX_new");
        return real_new ? real_new() : NULL;
}

void OSSL_LIB_CTX_free(OSSL_LIB_CTX *ctx) {
        void (*real_free)(OSSL_LIB_CTX *);

        if (!ctx || ctx == esys_libctx())
                return;
        real_free = libcrypto_symbol("OSSL_LIB_CTX_free");
        if (real_free)
                real_free(ctx);
}
#endif
