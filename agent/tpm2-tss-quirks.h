/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <tss2/tss2_esys.h>

/* Workarounds for copies of secrets that tpm2-tss leaves where its API does
 * not let us wipe them, and for the OpenSSL library context it makes afresh
 * for every hash (this file defines OSSL_LIB_CTX_new() and
 * OSSL_LIB_CTX_free() for the whole program: see tpm2-tss-quirks.c). Each one relies on an internal of tpm2-tss, named
 * in its comment in tpm2-tss-quirks.c, and was checked against the tpm2-tss
 * versions below (Debian 12: libtss2-esys-3.0.2-0 3.2.1-3, dynamic builds;
 * Debian 13: 4.1.3, the static build's from tools/build-static-deps and a
 * build on Debian 13).
 *
 * test-tpm2-tss-quirks fails when unlockd is built against another
 * version. Then re-run tests/tpm/test-secret-hygiene.sh, which judges
 * whether any copy is left, re-check each internal named below in the new
 * version's source, and add it to this list (space-separated). */
#define TPM2_TSS_QUIRKS_VERIFIED_VERSIONS "3.2.1 4.1.3"

/* Overwrites the copy of Esys_Create()'s sensitive input (the sealed
 * secret, the PIN's auth value) that ESAPI keeps in its context. Call right
 * after Esys_Create(), whatever it returned. */
void tpm2_quirk_wipe_create_input(ESYS_CONTEXT *esys);

/* Overwrites the decrypted response parameter (e.g. the unsealed secret)
 * that ESAPI leaves in its SAPI command buffer. Call right after a command
 * with an encrypted response succeeded. */
void tpm2_quirk_wipe_response_parameter(ESYS_CONTEXT *esys);

/* Overwrites the auth value ESAPI keeps with an object's handle; call
 * before the handle is flushed or closed. */
void tpm2_quirk_wipe_object_auth(ESYS_CONTEXT *esys, ESYS_TR object);

/* Wipes TPM2_QUIRK_WIPE_STACK_SIZE bytes of the stack below the caller's
 * frame, where ESAPI code that just returned left plaintext in its locals.
 * Call from the function that called Esys_Unseal() or Esys_Create(), right
 * after it returned. */
#define TPM2_QUIRK_WIPE_STACK_SIZE (64 * 1024)
void tpm2_quirk_wipe_stack(void);
