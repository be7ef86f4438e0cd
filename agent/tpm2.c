/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#include "encoding.h"
#include "log.h"
#include "pcr.h"
#include "secret.h"
#include "tpm2-tss-quirks.h"
#include "tpm2.h"

#define UNSEAL_PCR_CHANGED_RETRIES 3

struct Tpm2Context {
        TSS2_TCTI_CONTEXT *tcti;
        ESYS_CONTEXT *esys;
};

/* The TPM response code without the TSS layer bits. */
static TPM2_RC rc_tpm(TSS2_RC rc) {
        return rc & ~TSS2_RC_LAYER_MASK;
}

/* Format-one codes carry the handle/session/parameter number: strip it. */
static TPM2_RC rc_base(TSS2_RC rc) {
        TPM2_RC r = rc_tpm(rc);

        if ((rc & TSS2_RC_LAYER_MASK) != TSS2_TPM_RC_LAYER)
                return r;
        if (r & TPM2_RC_FMT1)
                return r & (TPM2_RC_FMT1 | 0x3F);
        return r;
}

static bool rc_is_tpm(TSS2_RC rc) {
        return (rc & TSS2_RC_LAYER_MASK) == TSS2_TPM_RC_LAYER ||
               (rc & TSS2_RC_LAYER_MASK) == TSS2_RESMGR_TPM_RC_LAYER;
}

/* Maps an ESAPI/TPM error to this module's errno codes. */
static int rc_to_errno(TSS2_RC rc) {
        TPM2_RC b = rc_base(rc);

        if (rc == TSS2_RC_SUCCESS)
                return 0;
        if (rc_is_tpm(rc)) {
                switch (b) {
                case TPM2_RC_LOCKOUT:
                        return -ENOLCK;
                case TPM2_RC_AUTH_FAIL:
                case TPM2_RC_BAD_AUTH:
                        return -EACCES;
                case TPM2_RC_POLICY_FAIL:
                        return -ESTALE;
                case TPM2_RC_PCR_CHANGED:
                        return -EAGAIN;
                case TPM2_RC_INTEGRITY:
                case TPM2_RC_SIZE:
                case TPM2_RC_KEY:
                case TPM2_RC_BINDING:
                        return -EBADMSG;
                case TPM2_RC_CURVE:
                case TPM2_RC_ASYMMETRIC:
                case TPM2_RC_HASH:
                        return -EOPNOTSUPP;
                }
                return -EIO;
        }
        switch (rc & 0xFFFF) {
        case TSS2_BASE_RC_IO_ERROR:
        case TSS2_BASE_RC_NO_CONNECTION:
        case TSS2_BASE_RC_NOT_IMPLEMENTED:
                return -ENODEV;
        case TSS2_BASE_RC_MEMORY:
                return -ENOMEM;
        }
        return -EIO;
}

#define log_tss(rc, what) \
        log_debug_errno(rc_to_errno(rc), "%s failed: %s", (what), Tss2_RC_Decode(rc))

const char *tpm2_strerror(int r) {
        switch (-ERRNO_VALUE(r)) {
        case 0:
                return "success";
        case -ENODEV:
                return "no TPM found";
        case -ESTALE:
                return "the PCR values differ from those the secret was sealed to";
        case -ENOLCK:
                return "the TPM is in dictionary-attack lockout";
        case -EACCES:
                return "wrong PIN";
        case -EOPNOTSUPP:
                return "the TPM or the token needs a feature that is not supported";
        case -EBADMSG:
                return "the token's sealed object is malformed or was sealed by another TPM";
        }
        return "TPM failure";
}

void tpm2_setup(void) {
        /* TSS logs its own errors on stderr, which in the initrd means the
         * console. We report outcomes ourselves; keep TSS quiet unless the
         * user asked for its logs. TSS reads $TSS2_LOG when it first logs. */
        if (!getenv("TSS2_LOG"))
                (void) setenv("TSS2_LOG", log_get_max_level() >= LOG_DEBUG ? "all+warning" : "all+none", 0);
}

int tpm2_context_new(const char *tcti, Tpm2Context **ret) {
        _cleanup_(tpm2_context_freep) Tpm2Context *c = NULL;
        TSS2_RC rc;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;

        if (!tcti) {
                if (access("/dev/tpmrm0", F_OK) == 0)
                        tcti = "device:/dev/tpmrm0";
                else if (access("/dev/tpm0", F_OK) == 0)
                        tcti = "device:/dev/tpm0";
                else
                        return log_debug_errno(ENODEV, "No TPM device node (/dev/tpmrm0, /dev/tpm0).");
        }

        rc = Tss2_TctiLdr_Initialize(tcti, &c->tcti);
        if (rc != TSS2_RC_SUCCESS)
                return log_debug_errno(ENODEV, "Failed to load TCTI '%s': %s", tcti, Tss2_RC_Decode(rc));

        rc = Esys_Initialize(&c->esys, c->tcti, NULL);
        if (rc != TSS2_RC_SUCCESS)
                return log_debug_errno(ENODEV, "Failed to initialize ESAPI on '%s': %s", tcti, Tss2_RC_Decode(rc));

        *ret = TAKE_PTR(c);
        return 0;
}

Tpm2Context *tpm2_context_free(Tpm2Context *c) {
        if (!c)
                return NULL;
        if (c->esys)
                Esys_Finalize(&c->esys);
        if (c->tcti)
                Tss2_TctiLdr_Finalize(&c->tcti);
        free(c);
        return NULL;
}

static void flush(Tpm2Context *c, ESYS_TR *h) {
        if (*h == ESYS_TR_NONE)
                return;
        TSS2_RC rc = Esys_FlushContext(c->esys, *h);
        if (rc != TSS2_RC_SUCCESS)
                log_debug("Failed to flush handle: %s", Tss2_RC_Decode(rc));
        *h = ESYS_TR_NONE;
}

/* Releases a parent: transient ones are flushed, persistent ones only closed. */
static void release_parent(Tpm2Context *c, ESYS_TR *h, bool persistent) {
        if (*h == ESYS_TR_NONE)
                return;
        if (persistent) {
                (void) Esys_TR_Close(c->esys, h);
                *h = ESYS_TR_NONE;
        } else
                flush(c, h);
}

static void pcr_selection_init(TPML_PCR_SELECTION *s, uint16_t bank, uint32_t mask) {
        *s = (TPML_PCR_SELECTION) {
                .count = 1,
                .pcrSelections[0] = {
                        .hash = bank,
                        .sizeofSelect = 3,
                        .pcrSelect = { mask & 0xFF, (mask >> 8) & 0xFF, (mask >> 16) & 0xFF },
                },
        };
}

int tpm2_pcr_read(Tpm2Context *c, uint16_t bank, uint32_t mask, uint8_t **ret_values, size_t *ret_size) {
        size_t dsize = pcr_bank_digest_size(bank);
        _cleanup_free_ uint8_t *values = NULL;
        uint32_t remaining = mask;

        if (dsize == 0)
                return -EOPNOTSUPP;
        values = calloc(MAX(pcr_mask_count(mask), 1u), dsize);
        if (!values)
                return -ENOMEM;

        while (remaining != 0) {
                TPML_PCR_SELECTION sel, *sel_out = NULL;
                TPML_DIGEST *digests = NULL;
                uint32_t got = 0;
                size_t k = 0;
                TSS2_RC rc;

                pcr_selection_init(&sel, bank, remaining);
                rc = Esys_PCR_Read(c->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &sel, NULL, &sel_out, &digests);
                if (rc != TSS2_RC_SUCCESS)
                        return log_tss(rc, "PCR_Read");

                for (uint32_t i = 0; i < sel_out->count; i++)
                        if (sel_out->pcrSelections[i].hash == bank)
                                for (unsigned j = 0; j < PCR_MAX && j / 8 < sel_out->pcrSelections[i].sizeofSelect; j++)
                                        if (sel_out->pcrSelections[i].pcrSelect[j / 8] & (1u << (j % 8)))
                                                got |= 1u << j;
                got &= remaining;

                /* Digests come in index order of the returned selection. */
                for (unsigned j = 0; j < PCR_MAX; j++) {
                        if (!(got & (1u << j)))
                                continue;
                        if (k >= digests->count || digests->digests[k].size != dsize) {
                                Esys_Free(sel_out);
                                Esys_Free(digests);
                                return log_debug_errno(EIO, "PCR_Read returned an unexpected number or size of digests.");
                        }
                        /* Position of PCR j among the requested PCRs. */
                        unsigned pos = pcr_mask_count(mask & ((1u << j) - 1));
                        memcpy(values + pos * dsize, digests->digests[k].buffer, dsize);
                        k++;
                }
                Esys_Free(sel_out);
                Esys_Free(digests);

                if (got == 0)
                        return log_debug_errno(EOPNOTSUPP, "PCR bank %s is not allocated.", pcr_bank_to_string(bank) ?: "?");
                remaining &= ~got;
        }

        *ret_values = TAKE_PTR(values);
        *ret_size = pcr_mask_count(mask) * dsize;
        return 0;
}

int tpm2_pick_bank(Tpm2Context *c, uint32_t mask, uint16_t *ret_bank) {
        _cleanup_free_ uint8_t *v = NULL;
        size_t n;
        int r;

        /* An allocated bank whose PCRs read back is good enough; a bank the
         * firmware left unextended still seals to its (zero) values, which is
         * what systemd does too. */
        r = tpm2_pcr_read(c, PCR_BANK_SHA256, mask ?: 1u, &v, &n);
        if (r == 0) {
                *ret_bank = PCR_BANK_SHA256;
                return 0;
        }
        if (r != -EOPNOTSUPP)
                return r;
        free(TAKE_PTR(v));
        r = tpm2_pcr_read(c, PCR_BANK_SHA1, mask ?: 1u, &v, &n);
        if (r < 0)
                return r;
        *ret_bank = PCR_BANK_SHA1;
        return 0;
}

/* The "legacy" storage primary template systemd uses when there is no
 * persistent SRK: a restricted decryption key, AES-128-CFB, ECC P-256 or
 * RSA-2048, nameAlg SHA256, empty unique. */
static void primary_template(uint16_t alg, TPM2B_PUBLIC *ret) {
        *ret = (TPM2B_PUBLIC) {
                .publicArea = {
                        .type = alg,
                        .nameAlg = TPM2_ALG_SHA256,
                        .objectAttributes = TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT |
                                            TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                                            TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH,
                },
        };
        if (alg == TPM2_ALG_ECC)
                ret->publicArea.parameters.eccDetail = (TPMS_ECC_PARMS) {
                        .symmetric = { .algorithm = TPM2_ALG_AES, .keyBits.aes = 128, .mode.aes = TPM2_ALG_CFB },
                        .scheme.scheme = TPM2_ALG_NULL,
                        .curveID = TPM2_ECC_NIST_P256,
                        .kdf.scheme = TPM2_ALG_NULL,
                };
        else
                ret->publicArea.parameters.rsaDetail = (TPMS_RSA_PARMS) {
                        .symmetric = { .algorithm = TPM2_ALG_AES, .keyBits.aes = 128, .mode.aes = TPM2_ALG_CFB },
                        .scheme.scheme = TPM2_ALG_NULL,
                        .keyBits = 2048,
                };
}

static int create_primary(Tpm2Context *c, uint16_t alg, ESYS_TR *ret) {
        TPM2B_SENSITIVE_CREATE sensitive = {};
        TPM2B_DATA outside = {};
        TPML_PCR_SELECTION creation_pcr = {};
        TPM2B_PUBLIC template;
        TSS2_RC rc;

        primary_template(alg, &template);
        rc = Esys_CreatePrimary(c->esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                                &sensitive, &template, &outside, &creation_pcr,
                                ret, NULL, NULL, NULL, NULL);
        if (rc != TSS2_RC_SUCCESS)
                return log_tss(rc, "CreatePrimary");
        return 0;
}

/* Finds the persistent SRK. Returns 1 and the handle when present, 0 when not. */
static int find_srk(Tpm2Context *c, ESYS_TR *ret) {
        TPMS_CAPABILITY_DATA *cap = NULL;
        TPMI_YES_NO more;
        bool found;
        TSS2_RC rc;

        /* GetCapability does not fail for an absent handle, unlike
         * ReadPublic, so a missing SRK leaves no error in the TPM log. */
        rc = Esys_GetCapability(c->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                TPM2_CAP_HANDLES, TPM2_SRK_HANDLE, 1, &more, &cap);
        if (rc != TSS2_RC_SUCCESS)
                return log_tss(rc, "GetCapability(handles)");
        found = cap->data.handles.count > 0 && cap->data.handles.handle[0] == TPM2_SRK_HANDLE;
        Esys_Free(cap);
        if (!found)
                return 0;

        rc = Esys_TR_FromTPMPublic(c->esys, TPM2_SRK_HANDLE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ret);
        if (rc != TSS2_RC_SUCCESS)
                return log_tss(rc, "ReadPublic(SRK)");
        return 1;
}

/* A salted session bound to nothing, keyed to tpm_key, with AES-128-CFB
 * parameter encryption. */
static int start_session(Tpm2Context *c, ESYS_TR tpm_key, TPM2_SE type, ESYS_TR *ret) {
        TPMT_SYM_DEF sym = { .algorithm = TPM2_ALG_AES, .keyBits.aes = 128, .mode.aes = TPM2_ALG_CFB };
        TSS2_RC rc;

        rc = Esys_StartAuthSession(c->esys, tpm_key, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                   NULL, type, &sym, TPM2_ALG_SHA256, ret);
        if (rc != TSS2_RC_SUCCESS)
                return log_tss(rc, "StartAuthSession");
        return 0;
}

int tpm2_pin_auth_value(const char *pin, const uint8_t *salt, size_t salt_size, uint8_t ret[32]) {
        uint8_t derived[32];
        _cleanup_secret_ char *b64 = NULL;
        int n, r;

        if (salt && salt_size > 0) {
                if (PKCS5_PBKDF2_HMAC(pin, (int) strlen(pin), salt, (int) salt_size, 10000,
                                      EVP_sha256(), sizeof(derived), derived) != 1)
                        return -EIO;
                r = base64_encode(derived, sizeof(derived), true, &b64);
                explicit_bzero(derived, sizeof(derived));
                if (r < 0)
                        return r;
                if (!SHA256((const uint8_t *) b64, (size_t) r, ret))
                        return -EIO;
        } else if (!SHA256((const uint8_t *) pin, strlen(pin), ret))
                return -EIO;

        for (n = 32; n > 0 && ret[n - 1] == 0; n--)
                ;
        return n;
}

static int set_pin_auth(Tpm2Context *c, ESYS_TR h, const char *pin, const uint8_t *salt, size_t salt_size) {
        TPM2B_AUTH auth = {};
        TSS2_RC rc;
        int n;

        n = tpm2_pin_auth_value(pin, salt, salt_size, auth.buffer);
        if (n < 0)
                return n;
        auth.size = (UINT16) n;
        rc = Esys_TR_SetAuth(c->esys, h, &auth);
        explicit_bzero(&auth, sizeof(auth));
        if (rc != TSS2_RC_SUCCESS)
                return log_tss(rc, "TR_SetAuth");
        return 0;
}

static int blob_marshal(const TPM2B_PRIVATE *priv, const TPM2B_PUBLIC *pub, uint8_t **ret, size_t *ret_size) {
        _cleanup_free_ uint8_t *buf = NULL;
        size_t off = 0, size = sizeof(*priv) + sizeof(*pub);
        TSS2_RC rc;

        buf = malloc(size);
        if (!buf)
                return -ENOMEM;
        rc = Tss2_MU_TPM2B_PRIVATE_Marshal(priv, buf, size, &off);
        if (rc == TSS2_RC_SUCCESS)
                rc = Tss2_MU_TPM2B_PUBLIC_Marshal(pub, buf, size, &off);
        if (rc != TSS2_RC_SUCCESS)
                return log_tss(rc, "Marshalling the sealed object");
        *ret = TAKE_PTR(buf);
        *ret_size = off;
        return 0;
}

static int blob_unmarshal(const uint8_t *blob, size_t size, TPM2B_PRIVATE *ret_priv, TPM2B_PUBLIC *ret_pub) {
        size_t off = 0;
        TSS2_RC rc;

        *ret_priv = (TPM2B_PRIVATE) {};
        *ret_pub = (TPM2B_PUBLIC) {};
        rc = Tss2_MU_TPM2B_PRIVATE_Unmarshal(blob, size, &off, ret_priv);
        if (rc == TSS2_RC_SUCCESS)
                rc = Tss2_MU_TPM2B_PUBLIC_Unmarshal(blob, size, &off, ret_pub);
        if (rc != TSS2_RC_SUCCESS)
                return log_debug_errno(EBADMSG, "tpm2-blob does not unmarshal: %s", Tss2_RC_Decode(rc));
        if (off != size)
                return log_debug_errno(EOPNOTSUPP, "tpm2-blob has %zu trailing bytes (import seed).", size - off);
        if (ret_pub->publicArea.type != TPM2_ALG_KEYEDHASH)
                return log_debug_errno(EBADMSG, "tpm2-blob is not a sealed data object.");
        return 0;
}

/* Gets the parent for a token (or for sealing): the serialized SRK from the
 * token, the persistent SRK, or a transient primary. */
static int get_parent(Tpm2Context *c, const Tpm2Token *t, bool use_srk, uint16_t alg,
                      ESYS_TR *ret, bool *ret_persistent) {
        TSS2_RC rc;
        int r;

        if (t && t->srk) {
                rc = Esys_TR_Deserialize(c->esys, t->srk, t->srk_size, ret);
                if (rc != TSS2_RC_SUCCESS)
                        return log_debug_errno(EBADMSG, "tpm2_srk does not deserialize: %s", Tss2_RC_Decode(rc));
                *ret_persistent = true;
                return 0;
        }
        if (use_srk) {
                r = find_srk(c, ret);
                if (r < 0)
                        return r;
                if (r > 0) {
                        *ret_persistent = true;
                        return 0;
                }
        }
        r = create_primary(c, alg ?: TPM2_ALG_ECC, ret);
        if (r == -EOPNOTSUPP && !t && alg == 0) {
                log_debug("ECC primary not supported, falling back to RSA.");
                r = create_primary(c, TPM2_ALG_RSA, ret);
        }
        if (r < 0)
                return r;
        *ret_persistent = false;
        return 0;
}

int tpm2_seal(Tpm2Context *c, const Tpm2SealParams *p, const void *secret, size_t secret_size, Tpm2Token **ret) {
        _cleanup_(tpm2_token_freep) Tpm2Token *t = NULL;
        _cleanup_free_ uint8_t *values = NULL;
        ESYS_TR parent = ESYS_TR_NONE, session = ESYS_TR_NONE;
        TPM2B_PRIVATE *priv = NULL;
        TPM2B_PUBLIC *pub = NULL;
        TPM2B_SENSITIVE_CREATE sensitive = {};
        TPM2B_PUBLIC template = {};
        TPM2B_DATA outside = {};
        TPML_PCR_SELECTION creation_pcr = {};
        uint8_t digest[SHA256_DIGEST_SIZE];
        bool persistent = false;
        uint16_t bank = p->bank;
        size_t values_size;
        TSS2_RC rc;
        int r;

        if (secret_size == 0 || secret_size > sizeof(sensitive.sensitive.data.buffer))
                return -EINVAL;

        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;

        if (bank == 0) {
                r = tpm2_pick_bank(c, p->mask, &bank);
                if (r < 0)
                        return r;
        }
        if (pcr_bank_digest_size(bank) == 0)
                return -EOPNOTSUPP;

        if (p->pcr_values) {
                if (p->pcr_values_size != pcr_mask_count(p->mask) * pcr_bank_digest_size(bank))
                        return -EINVAL;
                values = malloc(MAX(p->pcr_values_size, 1u));
                if (!values)
                        return -ENOMEM;
                memcpy(values, p->pcr_values, p->pcr_values_size);
                values_size = p->pcr_values_size;
        } else if (p->mask != 0) {
                r = tpm2_pcr_read(c, bank, p->mask, &values, &values_size);
                if (r < 0)
                        return r;
        } else
                values_size = 0;

        r = policy_digest_compute(bank, p->mask, values, values_size, !!p->pin, digest);
        if (r < 0)
                return r;

        template.publicArea = (TPMT_PUBLIC) {
                .type = TPM2_ALG_KEYEDHASH,
                .nameAlg = TPM2_ALG_SHA256,
                .objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | (p->pin ? 0 : TPMA_OBJECT_NODA),
                .parameters.keyedHashDetail.scheme.scheme = TPM2_ALG_NULL,
                .authPolicy.size = sizeof(digest),
        };
        memcpy(template.publicArea.authPolicy.buffer, digest, sizeof(digest));

        if (p->pin) {
                r = tpm2_pin_auth_value(p->pin, NULL, 0, sensitive.sensitive.userAuth.buffer);
                if (r < 0)
                        return r;
                sensitive.sensitive.userAuth.size = (UINT16) r;
        }
        memcpy(sensitive.sensitive.data.buffer, secret, secret_size);
        sensitive.sensitive.data.size = (UINT16) secret_size;

        r = get_parent(c, NULL, p->use_srk, p->primary_alg, &parent, &persistent);
        if (r < 0)
                goto finish;

        /* The sensitive data goes to the TPM encrypted (DECRYPT attribute,
         * first command parameter); the session is flushed by the TPM after
         * Create (no CONTINUESESSION). */
        r = start_session(c, parent, TPM2_SE_HMAC, &session);
        if (r < 0)
                goto finish;
        rc = Esys_TRSess_SetAttributes(c->esys, session, TPMA_SESSION_DECRYPT,
                                       TPMA_SESSION_DECRYPT | TPMA_SESSION_ENCRYPT | TPMA_SESSION_CONTINUESESSION);
        if (rc != TSS2_RC_SUCCESS) {
                r = log_tss(rc, "TRSess_SetAttributes");
                goto finish;
        }

        rc = Esys_Create(c->esys, parent, session, ESYS_TR_NONE, ESYS_TR_NONE,
                         &sensitive, &template, &outside, &creation_pcr,
                         &priv, &pub, NULL, NULL, NULL);
        tpm2_quirk_wipe_create_input(c->esys);
        tpm2_quirk_wipe_stack();
        if (rc != TSS2_RC_SUCCESS) {
                r = log_tss(rc, "Create");
                goto finish;
        }
        session = ESYS_TR_NONE; /* flushed by the TPM */

        r = blob_marshal(priv, pub, &t->blob, &t->blob_size);
        if (r < 0)
                goto finish;

        if (persistent) {
                uint8_t *buf = NULL;
                size_t n = 0;

                rc = Esys_TR_Serialize(c->esys, parent, &buf, &n);
                if (rc != TSS2_RC_SUCCESS) {
                        r = log_tss(rc, "TR_Serialize(SRK)");
                        goto finish;
                }
                t->srk = malloc(n);
                if (!t->srk) {
                        Esys_Free(buf);
                        r = -ENOMEM;
                        goto finish;
                }
                memcpy(t->srk, buf, n);
                t->srk_size = n;
                Esys_Free(buf);
        }

        t->policy_hash = malloc(sizeof(digest));
        if (!t->policy_hash) {
                r = -ENOMEM;
                goto finish;
        }
        memcpy(t->policy_hash, digest, sizeof(digest));
        t->policy_hash_size = sizeof(digest);
        t->keyslot = -1;
        t->pcr_mask = p->mask;
        t->pcr_bank = bank;
        t->primary_alg = persistent ? 0 : (p->primary_alg ?: TPM2_ALG_ECC);
        t->pin = !!p->pin;
        t->sealed_pcr_values = TAKE_PTR(values);
        t->sealed_pcr_values_size = values_size;
        r = 0;

finish:
        explicit_bzero(&sensitive, sizeof(sensitive));
        Esys_Free(priv);
        Esys_Free(pub);
        flush(c, &session);
        release_parent(c, &parent, persistent);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(t);
        return 0;
}

/* One attempt: policy session, PolicyPCR (+ PolicyAuthValue), digest check,
 * Unseal. object is loaded; parent is used as the salt key. */
static int unseal_once(Tpm2Context *c, const Tpm2Token *t, ESYS_TR salt_key, ESYS_TR object,
                       void **ret_secret, size_t *ret_size) {
        ESYS_TR session = ESYS_TR_NONE;
        TPML_PCR_SELECTION sel;
        TPM2B_DIGEST empty = {}, *digest = NULL;
        TPM2B_SENSITIVE_DATA *data = NULL;
        uint16_t bank = t->pcr_bank ?: PCR_BANK_SHA256;
        TSS2_RC rc;
        int r;

        r = start_session(c, salt_key, TPM2_SE_POLICY, &session);
        if (r < 0)
                return r;

        /* No PCRs, no PolicyPCR: systemd's tokens are built that way. */
        if (t->pcr_mask != 0) {
                pcr_selection_init(&sel, bank, t->pcr_mask);
                rc = Esys_PolicyPCR(c->esys, session, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &empty, &sel);
                if (rc != TSS2_RC_SUCCESS) {
                        r = log_tss(rc, "PolicyPCR");
                        goto finish;
                }
        }
        if (t->pin) {
                rc = Esys_PolicyAuthValue(c->esys, session, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE);
                if (rc != TSS2_RC_SUCCESS) {
                        r = log_tss(rc, "PolicyAuthValue");
                        goto finish;
                }
        }

        rc = Esys_PolicyGetDigest(c->esys, session, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &digest);
        if (rc != TSS2_RC_SUCCESS) {
                r = log_tss(rc, "PolicyGetDigest");
                goto finish;
        }
        if (digest->size != t->policy_hash_size || memcmp(digest->buffer, t->policy_hash, digest->size) != 0) {
                r = log_debug_errno(ESTALE, "Policy digest differs from tpm2-policy-hash: PCRs changed.");
                goto finish;
        }

        /* The response (the secret) comes back encrypted with the session
         * key; without CONTINUESESSION the TPM flushes the session. */
        rc = Esys_TRSess_SetAttributes(c->esys, session, TPMA_SESSION_ENCRYPT,
                                       TPMA_SESSION_DECRYPT | TPMA_SESSION_ENCRYPT | TPMA_SESSION_CONTINUESESSION);
        if (rc != TSS2_RC_SUCCESS) {
                r = log_tss(rc, "TRSess_SetAttributes");
                goto finish;
        }
        rc = Esys_Unseal(c->esys, object, session, ESYS_TR_NONE, ESYS_TR_NONE, &data);
        /* Copies of the plaintext that ESAPI leaves: on the stack, and in
         * its command buffer. */
        tpm2_quirk_wipe_stack();
        if (rc != TSS2_RC_SUCCESS) {
                r = log_tss(rc, "Unseal");
                goto finish;
        }
        session = ESYS_TR_NONE;
        tpm2_quirk_wipe_response_parameter(c->esys);

        *ret_secret = secret_memdup(data->buffer, data->size);
        *ret_size = data->size;
        r = *ret_secret ? 0 : -ENOMEM;

finish:
        if (data)
                explicit_bzero(data, sizeof(*data));
        Esys_Free(data);
        Esys_Free(digest);
        flush(c, &session);
        return r;
}

int tpm2_unseal(Tpm2Context *c, const Tpm2Token *t, const char *pin, void **ret_secret, size_t *ret_size) {
        ESYS_TR parent = ESYS_TR_NONE, object = ESYS_TR_NONE;
        TPM2B_PRIVATE priv;
        TPM2B_PUBLIC pub;
        bool persistent = false;
        TSS2_RC rc;
        int r;

        if (t->unsupported)
                return -EOPNOTSUPP;
        if (t->pin && !pin)
                return -EACCES;
        if (t->policy_hash_size != SHA256_DIGEST_SIZE)
                return -EBADMSG;

        r = blob_unmarshal(t->blob, t->blob_size, &priv, &pub);
        if (r < 0)
                return r;

        r = get_parent(c, t, false, t->primary_alg ?: TPM2_ALG_ECC, &parent, &persistent);
        if (r < 0)
                return r;

        rc = Esys_Load(c->esys, parent, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &priv, &pub, &object);
        if (rc != TSS2_RC_SUCCESS) {
                r = log_tss(rc, "Load");
                /* A blob that does not belong under this parent fails its
                 * integrity check: another TPM, or another primary. */
                if (r == -ESTALE || r == -EIO)
                        r = -EBADMSG;
                goto finish;
        }

        if (t->pin) {
                r = set_pin_auth(c, object, pin, t->salt, t->salt_size);
                if (r < 0)
                        goto finish;
        }

        /* PCR_CHANGED: a PCR was extended between PolicyPCR and Unseal;
         * a fresh session may still match. Bounded. */
        for (unsigned i = 0; i < UNSEAL_PCR_CHANGED_RETRIES; i++) {
                r = unseal_once(c, t, parent, object, ret_secret, ret_size);
                if (r != -EAGAIN)
                        break;
        }
        if (r == -EAGAIN)
                r = -ESTALE;

finish:
        if (t->pin)
                tpm2_quirk_wipe_object_auth(c->esys, object);
        flush(c, &object);
        release_parent(c, &parent, persistent);
        return r;
}

int tpm2_count_loaded(Tpm2Context *c, unsigned *ret_transient, unsigned *ret_sessions) {
        static const TPM2_HANDLE first[] = { TPM2_TRANSIENT_FIRST, TPM2_LOADED_SESSION_FIRST, TPM2_ACTIVE_SESSION_FIRST };
        unsigned counts[3] = {};

        for (size_t i = 0; i < ELEMENTSOF(first); i++) {
                TPMS_CAPABILITY_DATA *cap = NULL;
                TPMI_YES_NO more;
                TSS2_RC rc;

                rc = Esys_GetCapability(c->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                        TPM2_CAP_HANDLES, first[i], TPM2_MAX_CAP_HANDLES, &more, &cap);
                if (rc != TSS2_RC_SUCCESS)
                        return log_tss(rc, "GetCapability(handles)");
                for (uint32_t j = 0; j < cap->data.handles.count; j++)
                        if ((cap->data.handles.handle[j] & 0xFF000000) == (first[i] & 0xFF000000))
                                counts[i]++;
                Esys_Free(cap);
        }
        *ret_transient = counts[0];
        *ret_sessions = counts[1] + counts[2];
        return (int) (counts[0] + counts[1] + counts[2]);
}
