/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#if UNLOCKD_STATIC_TCTI
#include <tss2/tss2_tcti_device.h>
#include <tss2/tss2_tcti_mssim.h>
#include <tss2/tss2_tcti_swtpm.h>
#else
#include <tss2/tss2_tctildr.h>
#endif

#include "encoding.h"
#include "fileio.h"
#include "log.h"
#include "pcr.h"
#include "secret.h"
#include "tpm2-tss-quirks.h"
#include "tpm2.h"

#define UNSEAL_PCR_CHANGED_RETRIES 3

struct Tpm2Context {
        TSS2_TCTI_CONTEXT *tcti;
        ESYS_CONTEXT *esys;
        /* The signature JSON of signed PCR policies, read when a token
         * first needs it (tpm2_pcr_signature_path()). */
        bool signature_read;
        char *signature;
        char *signature_path;
};

/* An ESYS_TR that releases itself when it goes out of scope: a transient
 * object or session is flushed from the TPM, a persistent object is only
 * dropped from ESAPI. An auth value set on it is wiped first. A handle the
 * TPM flushed itself (a session used without CONTINUESESSION) is set back
 * to ESYS_TR_NONE by its owner. */
typedef struct Tpm2Handle {
        Tpm2Context *tpm2;
        ESYS_TR esys_handle;
        bool persistent;        /* Esys_TR_Close() only, no flush */
        bool auth_set;          /* Esys_TR_SetAuth() was called on it */
} Tpm2Handle;

#define TPM2_HANDLE_INIT(c) { .tpm2 = (c), .esys_handle = ESYS_TR_NONE }

static void tpm2_handle_release(Tpm2Handle *h) {
        TSS2_RC rc;

        if (h->esys_handle == ESYS_TR_NONE)
                return;
        if (h->auth_set)
                tpm2_quirk_wipe_object_auth(h->tpm2->esys, h->esys_handle);
        if (h->persistent)
                (void) Esys_TR_Close(h->tpm2->esys, &h->esys_handle);
        else {
                rc = Esys_FlushContext(h->tpm2->esys, h->esys_handle);
                if (rc != TSS2_RC_SUCCESS)
                        log_debug("Failed to flush handle: %s", Tss2_RC_Decode(rc));
        }
        h->esys_handle = ESYS_TR_NONE;
}
#define _cleanup_tpm2_handle_ _cleanup_(tpm2_handle_release)

/* ESAPI outputs are Esys_Free()d. */
static void esys_freep(void *p) {
        Esys_Free(*(void **) p);
}
#define _cleanup_esys_free_ _cleanup_(esys_freep)

/* An ESAPI output that holds a secret is wiped before it is freed. */
static void esys_free_sensitive_datap(TPM2B_SENSITIVE_DATA **p) {
        if (*p)
                explicit_bzero(*p, sizeof(**p));
        Esys_Free(*p);
}

static void sensitive_create_wipe(TPM2B_SENSITIVE_CREATE *s) {
        explicit_bzero(s, sizeof(*s));
}

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
        case -ENOMSG:
                return "no signature for the signed PCR policy matches the PCRs as they are now";
        case -EKEYREJECTED:
                return "the TPM did not verify the signature of the signed PCR policy with the token's key";
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

#if UNLOCKD_STATIC_TCTI
/* The static build (-Dstatic=true) links its TCTIs in and loads none: the
 * string keeps the TCTI loader's form, NAME[:CONF], with NAME one of those
 * linked in (its short name, as in "device:/dev/tpmrm0"). An empty CONF is
 * the TCTI's own default. */
static const struct {
        const char *name;
        TSS2_RC (*init)(TSS2_TCTI_CONTEXT *ctx, size_t *size, const char *conf);
} static_tctis[] = {
        { "device", Tss2_Tcti_Device_Init },
        { "swtpm",  Tss2_Tcti_Swtpm_Init },
        { "mssim",  Tss2_Tcti_Mssim_Init },
};

static void tcti_free(TSS2_TCTI_CONTEXT **tcti) {
        if (!*tcti)
                return;
        Tss2_Tcti_Finalize(*tcti);
        free(*tcti);
        *tcti = NULL;
}

static int tcti_new(const char *tcti, TSS2_TCTI_CONTEXT **ret) {
        _cleanup_free_ char *name = NULL;
        const char *conf;
        size_t size = 0;
        TSS2_RC rc;

        conf = strchr(tcti, ':');
        name = conf ? strndup(tcti, conf - tcti) : strdup(tcti);
        if (!name)
                return -ENOMEM;
        if (conf && *++conf == '\0')
                conf = NULL;

        for (size_t i = 0; i < ELEMENTSOF(static_tctis); i++) {
                _cleanup_free_ TSS2_TCTI_CONTEXT *ctx = NULL;

                if (!streq(name, static_tctis[i].name))
                        continue;

                rc = static_tctis[i].init(NULL, &size, conf);
                if (rc != TSS2_RC_SUCCESS)
                        return log_debug_errno(ENODEV, "Failed to size TCTI '%s': %s", tcti, Tss2_RC_Decode(rc));
                ctx = calloc(1, size);
                if (!ctx)
                        return -ENOMEM;
                rc = static_tctis[i].init(ctx, &size, conf);
                if (rc != TSS2_RC_SUCCESS)
                        return log_debug_errno(ENODEV, "Failed to initialize TCTI '%s': %s", tcti, Tss2_RC_Decode(rc));
                *ret = TAKE_PTR(ctx);
                return 0;
        }
        return log_debug_errno(ENODEV, "TCTI '%s' is not built into this static binary (device, swtpm, mssim are).", name);
}
#else
static void tcti_free(TSS2_TCTI_CONTEXT **tcti) {
        if (*tcti)
                Tss2_TctiLdr_Finalize(tcti);
}

static int tcti_new(const char *tcti, TSS2_TCTI_CONTEXT **ret) {
        TSS2_RC rc;

        rc = Tss2_TctiLdr_Initialize(tcti, ret);
        if (rc != TSS2_RC_SUCCESS)
                return log_debug_errno(ENODEV, "Failed to load TCTI '%s': %s", tcti, Tss2_RC_Decode(rc));
        return 0;
}
#endif

int tpm2_context_new(const char *tcti, Tpm2Context **ret) {
        _cleanup_(tpm2_context_freep) Tpm2Context *c = NULL;
        TSS2_RC rc;
        int r;

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

        r = tcti_new(tcti, &c->tcti);
        if (r < 0)
                return r;

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
        tcti_free(&c->tcti);
        free(c->signature);
        free(c->signature_path);
        free(c);
        return NULL;
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
                _cleanup_esys_free_ TPML_PCR_SELECTION *sel_out = NULL;
                _cleanup_esys_free_ TPML_DIGEST *digests = NULL;
                TPML_PCR_SELECTION sel;
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
                        if (k >= digests->count || digests->digests[k].size != dsize)
                                return log_debug_errno(EIO, "PCR_Read returned an unexpected number or size of digests.");
                        /* Position of PCR j among the requested PCRs. */
                        unsigned pos = pcr_mask_count(mask & ((1u << j) - 1));
                        memcpy(values + pos * dsize, digests->digests[k].buffer, dsize);
                        k++;
                }

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
        _cleanup_esys_free_ TPMS_CAPABILITY_DATA *cap = NULL;
        TPMI_YES_NO more;
        TSS2_RC rc;

        /* GetCapability does not fail for an absent handle, unlike
         * ReadPublic, so a missing SRK leaves no error in the TPM log. */
        rc = Esys_GetCapability(c->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                TPM2_CAP_HANDLES, UNLOCKD_SRK_HANDLE, 1, &more, &cap);
        if (rc != TSS2_RC_SUCCESS)
                return log_tss(rc, "GetCapability(handles)");
        if (cap->data.handles.count == 0 || cap->data.handles.handle[0] != UNLOCKD_SRK_HANDLE)
                return 0;

        rc = Esys_TR_FromTPMPublic(c->esys, UNLOCKD_SRK_HANDLE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ret);
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

/* Sets the auth value of a loaded object from a PIN; the handle then wipes
 * it when it is released. */
static int set_pin_auth(Tpm2Handle *h, const char *pin, const uint8_t *salt, size_t salt_size) {
        TPM2B_AUTH auth = {};
        TSS2_RC rc;
        int n;

        h->auth_set = true;
        n = tpm2_pin_auth_value(pin, salt, salt_size, auth.buffer);
        if (n < 0)
                return n;
        auth.size = (UINT16) n;
        rc = Esys_TR_SetAuth(h->tpm2->esys, h->esys_handle, &auth);
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

/* tpm2-blob: TPM2B_PRIVATE ‖ TPM2B_PUBLIC [‖ TPM2B_ENCRYPTED_SECRET]. The
 * third part, the import seed, is there when the object was sealed offline
 * (then TPM2B_PRIVATE is a duplication blob: TPM2_Import makes it a private
 * under the parent); ret_seed->size is 0 when there is none, or an empty
 * one. */
static int blob_unmarshal(const uint8_t *blob, size_t size, TPM2B_PRIVATE *ret_priv, TPM2B_PUBLIC *ret_pub,
                          TPM2B_ENCRYPTED_SECRET *ret_seed) {
        size_t off = 0;
        TSS2_RC rc;

        *ret_priv = (TPM2B_PRIVATE) {};
        *ret_pub = (TPM2B_PUBLIC) {};
        *ret_seed = (TPM2B_ENCRYPTED_SECRET) {};
        rc = Tss2_MU_TPM2B_PRIVATE_Unmarshal(blob, size, &off, ret_priv);
        if (rc == TSS2_RC_SUCCESS)
                rc = Tss2_MU_TPM2B_PUBLIC_Unmarshal(blob, size, &off, ret_pub);
        /* An empty seed is no seed (as for systemd). */
        if (rc == TSS2_RC_SUCCESS && off < size)
                rc = Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal(blob, size, &off, ret_seed);
        if (rc != TSS2_RC_SUCCESS)
                return log_debug_errno(EBADMSG, "tpm2-blob does not unmarshal: %s", Tss2_RC_Decode(rc));
        if (off != size)
                return log_debug_errno(EBADMSG, "tpm2-blob has %zu trailing bytes.", size - off);
        if (ret_pub->publicArea.type != TPM2_ALG_KEYEDHASH)
                return log_debug_errno(EBADMSG, "tpm2-blob is not a sealed data object.");
        return 0;
}

/* Gets the parent for a token (or for sealing): the serialized SRK from the
 * token, the persistent SRK, or a transient primary. *ret is an empty
 * handle of c; on success it holds the parent. */
static int get_parent(Tpm2Context *c, const Tpm2Token *t, bool use_srk, uint16_t alg, Tpm2Handle *ret) {
        ESYS_TR h = ESYS_TR_NONE;
        TSS2_RC rc;
        int r;

        if (t && t->srk) {
                rc = Esys_TR_Deserialize(c->esys, t->srk, t->srk_size, &h);
                if (rc != TSS2_RC_SUCCESS)
                        return log_debug_errno(EBADMSG, "tpm2_srk does not deserialize: %s", Tss2_RC_Decode(rc));
                *ret = (Tpm2Handle) { .tpm2 = c, .esys_handle = h, .persistent = true };
                return 0;
        }
        if (use_srk) {
                r = find_srk(c, &h);
                if (r < 0)
                        return r;
                if (r > 0) {
                        *ret = (Tpm2Handle) { .tpm2 = c, .esys_handle = h, .persistent = true };
                        return 0;
                }
        }
        r = create_primary(c, alg ?: TPM2_ALG_ECC, &h);
        if (r == -EOPNOTSUPP && !t && alg == 0) {
                log_debug("ECC primary not supported, falling back to RSA.");
                r = create_primary(c, TPM2_ALG_RSA, &h);
        }
        if (r < 0)
                return r;
        *ret = (Tpm2Handle) { .tpm2 = c, .esys_handle = h, .persistent = false };
        return 0;
}

/* Sealing, step 1: the PCR values to seal to (the given ones, or the
 * current ones; malloc()ed, NULL when no PCRs) and the policy digest of
 * PolicyPCR over them (+ PolicyAuthValue with a PIN). */
static int seal_policy(Tpm2Context *c, const Tpm2SealParams *p, uint16_t bank, uint8_t ret_digest[static SHA256_DIGEST_SIZE],
                       uint8_t **ret_values, size_t *ret_values_size) {
        _cleanup_free_ uint8_t *values = NULL;
        size_t values_size = 0;
        int r;

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
        }

        r = policy_digest_compute(bank, p->mask, values, values_size, !!p->pin, ret_digest);
        if (r < 0)
                return r;
        *ret_values = TAKE_PTR(values);
        *ret_values_size = values_size;
        return 0;
}

/* Sealing, step 2: the template of the sealed object, a keyed hash whose
 * only authorization is the policy; without a PIN it is exempt from
 * dictionary-attack lockout. */
static void seal_template(const uint8_t digest[static SHA256_DIGEST_SIZE], bool pin, TPM2B_PUBLIC *ret) {
        *ret = (TPM2B_PUBLIC) {
                .publicArea = {
                        .type = TPM2_ALG_KEYEDHASH,
                        .nameAlg = TPM2_ALG_SHA256,
                        .objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | (pin ? 0 : TPMA_OBJECT_NODA),
                        .parameters.keyedHashDetail.scheme.scheme = TPM2_ALG_NULL,
                        .authPolicy.size = SHA256_DIGEST_SIZE,
                },
        };
        memcpy(ret->publicArea.authPolicy.buffer, digest, SHA256_DIGEST_SIZE);
}

/* Sealing, step 4 (step 3 is get_parent()): creates the sealed object
 * under parent, with the secret (and the PIN's auth value) sent encrypted,
 * and wipes the copies ESAPI keeps. Returns 0 with the object's private and
 * public parts (Esys_Free()), or negative errno. */
static int seal_create(Tpm2Context *c, ESYS_TR parent, const TPM2B_PUBLIC *template, const char *pin,
                       const void *secret, size_t secret_size, TPM2B_PRIVATE **ret_priv, TPM2B_PUBLIC **ret_pub) {
        _cleanup_tpm2_handle_ Tpm2Handle session = TPM2_HANDLE_INIT(c);
        _cleanup_esys_free_ TPM2B_PRIVATE *priv = NULL;
        _cleanup_esys_free_ TPM2B_PUBLIC *pub = NULL;
        _cleanup_(sensitive_create_wipe) TPM2B_SENSITIVE_CREATE sensitive = {};
        TPM2B_DATA outside = {};
        TPML_PCR_SELECTION creation_pcr = {};
        TSS2_RC rc;
        int r;

        if (pin) {
                r = tpm2_pin_auth_value(pin, NULL, 0, sensitive.sensitive.userAuth.buffer);
                if (r < 0)
                        return r;
                sensitive.sensitive.userAuth.size = (UINT16) r;
        }
        memcpy(sensitive.sensitive.data.buffer, secret, secret_size);
        sensitive.sensitive.data.size = (UINT16) secret_size;

        /* The sensitive data goes to the TPM encrypted (DECRYPT attribute,
         * first command parameter); the session is flushed by the TPM after
         * Create (no CONTINUESESSION). */
        r = start_session(c, parent, TPM2_SE_HMAC, &session.esys_handle);
        if (r < 0)
                return r;
        rc = Esys_TRSess_SetAttributes(c->esys, session.esys_handle, TPMA_SESSION_DECRYPT,
                                       TPMA_SESSION_DECRYPT | TPMA_SESSION_ENCRYPT | TPMA_SESSION_CONTINUESESSION);
        if (rc != TSS2_RC_SUCCESS)
                return log_tss(rc, "TRSess_SetAttributes");

        rc = Esys_Create(c->esys, parent, session.esys_handle, ESYS_TR_NONE, ESYS_TR_NONE,
                         &sensitive, template, &outside, &creation_pcr,
                         &priv, &pub, NULL, NULL, NULL);
        tpm2_quirk_wipe_create_input(c->esys);
        tpm2_quirk_wipe_stack();
        if (rc != TSS2_RC_SUCCESS)
                return log_tss(rc, "Create");
        session.esys_handle = ESYS_TR_NONE; /* flushed by the TPM */

        *ret_priv = TAKE_PTR(priv);
        *ret_pub = TAKE_PTR(pub);
        return 0;
}

/* Sealing, step 5: the token for the sealed object (all but the keyslot
 * and the sealed PCR values). */
static int seal_token(Tpm2Context *c, const Tpm2Handle *parent, const Tpm2SealParams *p, uint16_t bank,
                      const TPM2B_PRIVATE *priv, const TPM2B_PUBLIC *pub,
                      const uint8_t digest[static SHA256_DIGEST_SIZE], Tpm2Token **ret) {
        _cleanup_(tpm2_token_freep) Tpm2Token *t = NULL;
        int r;

        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;

        r = blob_marshal(priv, pub, &t->blob, &t->blob_size);
        if (r < 0)
                return r;

        if (parent->persistent) {
                _cleanup_esys_free_ uint8_t *buf = NULL;
                size_t n = 0;
                TSS2_RC rc;

                rc = Esys_TR_Serialize(c->esys, parent->esys_handle, &buf, &n);
                if (rc != TSS2_RC_SUCCESS)
                        return log_tss(rc, "TR_Serialize(SRK)");
                t->srk = malloc(n);
                if (!t->srk)
                        return -ENOMEM;
                memcpy(t->srk, buf, n);
                t->srk_size = n;
        }

        t->policy_hash = malloc(SHA256_DIGEST_SIZE);
        if (!t->policy_hash)
                return -ENOMEM;
        memcpy(t->policy_hash, digest, SHA256_DIGEST_SIZE);
        t->policy_hash_size = SHA256_DIGEST_SIZE;
        t->keyslot = -1;
        t->pcr_mask = p->mask;
        t->pcr_bank = bank;
        t->primary_alg = parent->persistent ? 0 : (p->primary_alg ?: TPM2_ALG_ECC);
        t->pin = !!p->pin;

        *ret = TAKE_PTR(t);
        return 0;
}

/* Sealing: the policy and template (steps 1, 2), the parent (3), the sealed
 * object (4), the token (5). */
int tpm2_seal(Tpm2Context *c, const Tpm2SealParams *p, const void *secret, size_t secret_size, Tpm2Token **ret) {
        _cleanup_tpm2_handle_ Tpm2Handle parent = TPM2_HANDLE_INIT(c);
        _cleanup_esys_free_ TPM2B_PRIVATE *priv = NULL;
        _cleanup_esys_free_ TPM2B_PUBLIC *pub = NULL;
        _cleanup_free_ uint8_t *values = NULL;
        uint8_t digest[SHA256_DIGEST_SIZE];
        TPM2B_PUBLIC template;
        uint16_t bank = p->bank;
        size_t values_size;
        Tpm2Token *t = NULL;
        int r;

        if (secret_size == 0 || secret_size > sizeof(((TPMS_SENSITIVE_CREATE *) NULL)->data.buffer))
                return -EINVAL;

        if (bank == 0) {
                r = tpm2_pick_bank(c, p->mask, &bank);
                if (r < 0)
                        return r;
        }
        if (pcr_bank_digest_size(bank) == 0)
                return -EOPNOTSUPP;

        r = seal_policy(c, p, bank, digest, &values, &values_size);
        if (r < 0)
                return r;
        seal_template(digest, !!p->pin, &template);

        r = get_parent(c, NULL, p->use_srk, p->primary_alg, &parent);
        if (r < 0)
                return r;

        r = seal_create(c, parent.esys_handle, &template, p->pin, secret, secret_size, &priv, &pub);
        if (r < 0)
                return r;

        r = seal_token(c, &parent, p, bank, priv, pub, digest, &t);
        if (r < 0)
                return r;
        t->sealed_pcr_values = TAKE_PTR(values);
        t->sealed_pcr_values_size = values_size;
        *ret = t;
        return 0;
}

/* Signed PCR policies (systemd-cryptenroll --tpm2-public-key): the sealed
 * object's policy is PolicyAuthorize(key) [+ PolicyPCR(tpm2-pcrs)]
 * [+ PolicyAuthValue]. PolicyAuthorize accepts a session whose digest so
 * far is one the key signed: here PolicyPCR over tpm2_pubkey_pcrs, as
 * systemd-measure precomputes it for each boot phase. The TPM checks the
 * signature (VerifySignature gives a ticket); the signature file itself is
 * untrusted. */

static const char *const pcr_signature_paths[] = {
        "/etc/systemd/tpm2-pcr-signature.json",
        "/run/systemd/tpm2-pcr-signature.json",
        "/usr/lib/systemd/tpm2-pcr-signature.json",
        "/.extra/tpm2-pcr-signature.json",      /* systemd-stub's, in the initrd only */
};

/* Reads the signature JSON once. Returns 0, or -ENOMSG when there is none. */
static int pcr_signature_read(Tpm2Context *c) {
        const char *e = secure_getenv("UNLOCKD_PCR_SIGNATURE");
        bool initrd = access("/etc/initrd-release", F_OK) == 0;
        int r;

        if (c->signature_read)
                return c->signature ? 0 : -ENOMSG;
        c->signature_read = true;

        for (size_t i = 0; i < (e ? 1 : ELEMENTSOF(pcr_signature_paths)); i++) {
                const char *path = e ?: pcr_signature_paths[i];
                size_t n;

                if (!e && i == ELEMENTSOF(pcr_signature_paths) - 1 && !initrd)
                        break;
                r = read_file_bounded(path, PCR_SIGNATURE_MAX, &c->signature, &n);
                if (r == -ENOENT)
                        continue;
                if (r < 0) {
                        log_debug_errno(r, "Cannot read the PCR signature %s: %m", path);
                        continue;
                }
                c->signature_path = strdup(path);
                if (!c->signature_path) {
                        c->signature = mfree(c->signature);
                        return -ENOMEM;
                }
                log_debug("PCR signature: %s", path);
                return 0;
        }
        log_debug("No PCR signature file%s%s.", e ? " at $UNLOCKD_PCR_SIGNATURE=" : "", e ?: "");
        return -ENOMSG;
}

const char *tpm2_pcr_signature_path(Tpm2Context *c) {
        return c ? c->signature_path : NULL;
}

typedef struct SignedKey {
        TPM2B_PUBLIC pub[2];            /* the key as TPM2B_PUBLIC; [1]: with the exponent 0 for 65537 */
        size_t n_pub;
        uint8_t fp[SHA256_DIGEST_SIZE]; /* SHA256 of the DER RSAPublicKey ("pkfp") */
} SignedKey;

static void evp_pkey_freep(EVP_PKEY **p) {
        EVP_PKEY_free(*p);
}

static void bn_freep(BIGNUM **p) {
        BN_free(*p);
}

/* The token's tpm2_pubkey (PEM) as TPM2B_PUBLIC for LoadExternal: an RSA
 * key, nameAlg SHA256, decrypt|sign|userWithAuth, no scheme. The exponent
 * 65537 is written as such by current systemd and as 0 (the TPM's "default
 * exponent") by some versions; both are kept, for the key name decides
 * which policy it authorizes. Returns 0, -EBADMSG (not a PEM public key),
 * -EOPNOTSUPP (not RSA, or too large). */
static int signed_key_from_pem(const uint8_t *pem, size_t size, SignedKey *ret) {
        _cleanup_(evp_pkey_freep) EVP_PKEY *pk = NULL;
        _cleanup_(bn_freep) BIGNUM *n = NULL, *e = NULL;
        unsigned char *der = NULL;
        TPM2B_PUBLIC pub;
        BIO *bio;
        int len, bits;
        BN_ULONG ev;

        *ret = (SignedKey) {};
        if (size > INT_MAX)
                return -EBADMSG;
        bio = BIO_new_mem_buf(pem, (int) size);
        if (!bio)
                return -ENOMEM;
        pk = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
        BIO_free(bio);
        if (!pk)
                return log_debug_errno(EBADMSG, "tpm2_pubkey is not a PEM public key.");
        if (EVP_PKEY_get_base_id(pk) != EVP_PKEY_RSA)
                return log_debug_errno(EOPNOTSUPP, "tpm2_pubkey is not an RSA key.");
        if (EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_N, &n) != 1 ||
            EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_E, &e) != 1)
                return -EIO;
        bits = EVP_PKEY_get_bits(pk);
        len = BN_num_bytes(n);
        ev = BN_get_word(e);
        if (bits <= 0 || bits > 4096 || len <= 0 || (size_t) len > sizeof(pub.publicArea.unique.rsa.buffer) ||
            ev == (BN_ULONG) -1 || ev > UINT32_MAX)
                return log_debug_errno(EOPNOTSUPP, "tpm2_pubkey: an RSA key of %d bits is not supported.", bits);

        pub = (TPM2B_PUBLIC) {
                .publicArea = {
                        .type = TPM2_ALG_RSA,
                        .nameAlg = TPM2_ALG_SHA256,
                        .objectAttributes = TPMA_OBJECT_DECRYPT | TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_USERWITHAUTH,
                        .parameters.rsaDetail = {
                                .symmetric.algorithm = TPM2_ALG_NULL,
                                .scheme.scheme = TPM2_ALG_NULL,
                                .keyBits = (UINT16) bits,
                                .exponent = (UINT32) ev,
                        },
                        .unique.rsa.size = (UINT16) len,
                },
        };
        if (BN_bn2binpad(n, pub.publicArea.unique.rsa.buffer, len) != len)
                return -EIO;
        ret->pub[ret->n_pub++] = pub;
        if (ev == 65537) {
                pub.publicArea.parameters.rsaDetail.exponent = 0;
                ret->pub[ret->n_pub++] = pub;
        }

        /* The fingerprint systemd-measure writes: SHA256 of the PKCS#1
         * RSAPublicKey DER. */
        len = i2d_PublicKey(pk, &der);
        if (len <= 0)
                return -EIO;
        if (!SHA256(der, (size_t) len, ret->fp)) {
                OPENSSL_free(der);
                return -EIO;
        }
        OPENSSL_free(der);
        return 0;
}

/* The TPM name of a public area: nameAlg ‖ SHA256(TPMT_PUBLIC). */
static int public_name(const TPM2B_PUBLIC *pub, uint8_t ret[2 + SHA256_DIGEST_SIZE]) {
        uint8_t buf[sizeof(TPMT_PUBLIC)];
        size_t off = 0;
        TSS2_RC rc;

        rc = Tss2_MU_TPMT_PUBLIC_Marshal(&pub->publicArea, buf, sizeof(buf), &off);
        if (rc != TSS2_RC_SUCCESS)
                return log_tss(rc, "Marshalling the signed-policy key");
        ret[0] = TPM2_ALG_SHA256 >> 8;
        ret[1] = TPM2_ALG_SHA256 & 0xFF;
        return SHA256(buf, off, ret + 2) ? 0 : -EIO;
}

/* Which of the key's forms the token's policy was made with: the one whose
 * PolicyAuthorize, followed by the literal PolicyPCR on the PCRs as they are
 * now (and PolicyAuthValue), gives tpm2-policy-hash. When none does (the
 * literal PCRs changed) the first: the TPM refuses the literal PolicyPCR. */
static int signed_key_pick(Tpm2Context *c, const Tpm2Token *t, const SignedKey *k, size_t *ret) {
        _cleanup_free_ uint8_t *now = NULL;
        uint16_t bank = t->pcr_bank ?: PCR_BANK_SHA256;
        size_t n = 0;
        int r;

        *ret = 0;
        if (k->n_pub < 2)
                return 0;
        if (t->pcr_mask != 0) {
                r = tpm2_pcr_read(c, bank, t->pcr_mask, &now, &n);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < k->n_pub; i++) {
                uint8_t name[2 + SHA256_DIGEST_SIZE], d[SHA256_DIGEST_SIZE];

                r = public_name(&k->pub[i], name);
                if (r < 0)
                        return r;
                r = policy_digest_authorize(d, name, sizeof(name));
                if (r < 0)
                        return r;
                if (t->pcr_mask != 0) {
                        r = policy_digest_pcr(d, bank, t->pcr_mask, now, n);
                        if (r < 0)
                                return r;
                }
                if (t->pin)
                        policy_digest_auth_value(d);
                if (t->policy_hash_size == sizeof(d) && memcmp(d, t->policy_hash, sizeof(d)) == 0) {
                        *ret = i;
                        return 0;
                }
        }
        log_debug("No form of tpm2_pubkey gives tpm2-policy-hash with the PCRs as they are now.");
        return 0;
}

/* In session: PolicyPCR over tpm2_pubkey_pcrs, the signature of that
 * digest from the signature file, VerifySignature with key (loaded with
 * LoadExternal), PolicyAuthorize. */
static int policy_signed(Tpm2Context *c, const Tpm2Token *t, ESYS_TR session, ESYS_TR key, const SignedKey *k) {
        _cleanup_esys_free_ TPM2B_DIGEST *approved = NULL;
        _cleanup_esys_free_ TPMT_TK_VERIFIED *ticket = NULL;
        _cleanup_esys_free_ TPM2B_NAME *name = NULL;
        _cleanup_free_ uint8_t *sig = NULL;
        _cleanup_free_ char *error = NULL;
        uint16_t bank = t->pcr_bank ?: PCR_BANK_SHA256;
        TPMT_SIGNATURE signature = { .sigAlg = TPM2_ALG_RSASSA };
        TPM2B_DIGEST digest = { .size = SHA256_DIGEST_SIZE };
        const TPM2B_NONCE no_ref = {};
        const TPM2B_DIGEST empty = {};
        TPML_PCR_SELECTION sel;
        size_t sig_size;
        TSS2_RC rc;
        int r;

        pcr_selection_init(&sel, bank, t->pubkey_pcr_mask);
        rc = Esys_PolicyPCR(c->esys, session, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &empty, &sel);
        if (rc != TSS2_RC_SUCCESS)
                return log_tss(rc, "PolicyPCR (signed PCRs)");
        rc = Esys_PolicyGetDigest(c->esys, session, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &approved);
        if (rc != TSS2_RC_SUCCESS)
                return log_tss(rc, "PolicyGetDigest");

        r = pcr_signature_find(c->signature, bank, t->pubkey_pcr_mask, k->fp, sizeof(k->fp), approved->buffer,
                               approved->size, &sig, &sig_size, &error);
        if (r == -ENOMEM)
                return r;
        if (r == -EBADMSG)
                return log_debug_errno(ENOMSG, "The PCR signature %s is malformed: %s", c->signature_path,
                                       error ?: "?");
        if (r < 0)
                return log_debug_errno(ENOMSG, "The PCR signature %s has no entry for this key, bank and digest.",
                                       c->signature_path);
        if (sig_size > sizeof(signature.signature.rsassa.sig.buffer))
                return log_debug_errno(EKEYREJECTED, "The PCR signature has %zu bytes, too many for RSA.", sig_size);

        /* VerifySignature takes the digest of the signed message. */
        if (!SHA256(approved->buffer, approved->size, digest.buffer))
                return -EIO;
        signature.signature.rsassa.hash = TPM2_ALG_SHA256;
        signature.signature.rsassa.sig.size = (UINT16) sig_size;
        memcpy(signature.signature.rsassa.sig.buffer, sig, sig_size);
        rc = Esys_VerifySignature(c->esys, key, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &digest, &signature, &ticket);
        if (rc != TSS2_RC_SUCCESS) {
                r = log_tss(rc, "VerifySignature");
                return rc_is_tpm(rc) ? -EKEYREJECTED : r;
        }

        rc = Esys_TR_GetName(c->esys, key, &name);
        if (rc != TSS2_RC_SUCCESS)
                return log_tss(rc, "TR_GetName");
        rc = Esys_PolicyAuthorize(c->esys, session, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, approved, &no_ref, name,
                                  ticket);
        if (rc != TSS2_RC_SUCCESS)
                return log_tss(rc, "PolicyAuthorize");
        return 0;
}

/* One attempt: policy session, the signed policy (with k), PolicyPCR
 * (+ PolicyAuthValue), Unseal.
 * object is loaded; parent is used as the salt key. The TPM checks the
 * session's digest against the object's authPolicy before anything else of
 * the authorization: a PCR mismatch is TPM_RC_POLICY_FAIL and never reaches
 * the PIN's HMAC check, so it never counts as a dictionary-attack failure
 * (tests/tpm/test-unlock.sh asserts it). No PolicyGetDigest round trip:
 * tpm2_unseal() checked tpm2-policy-hash against that authPolicy. */
static int unseal_once(Tpm2Context *c, const Tpm2Token *t, ESYS_TR salt_key, ESYS_TR object,
                       ESYS_TR signed_key, const SignedKey *k, void **ret_secret, size_t *ret_size) {
        _cleanup_tpm2_handle_ Tpm2Handle session = TPM2_HANDLE_INIT(c);
        _cleanup_(esys_free_sensitive_datap) TPM2B_SENSITIVE_DATA *data = NULL;
        TPML_PCR_SELECTION sel;
        TPM2B_DIGEST empty = {};
        uint16_t bank = t->pcr_bank ?: PCR_BANK_SHA256;
        void *secret;
        TSS2_RC rc;
        int r;

        r = start_session(c, salt_key, TPM2_SE_POLICY, &session.esys_handle);
        if (r < 0)
                return r;

        /* The signed policy first, then the literal PCRs: PolicyAuthorize
         * replaces the digest so far, so it is where systemd puts it. */
        if (k) {
                r = policy_signed(c, t, session.esys_handle, signed_key, k);
                if (r < 0)
                        return r;
        }

        /* No PCRs, no PolicyPCR: systemd's tokens are built that way. */
        if (t->pcr_mask != 0) {
                pcr_selection_init(&sel, bank, t->pcr_mask);
                rc = Esys_PolicyPCR(c->esys, session.esys_handle, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &empty, &sel);
                if (rc != TSS2_RC_SUCCESS)
                        return log_tss(rc, "PolicyPCR");
        }
        if (t->pin) {
                rc = Esys_PolicyAuthValue(c->esys, session.esys_handle, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE);
                if (rc != TSS2_RC_SUCCESS)
                        return log_tss(rc, "PolicyAuthValue");
        }

        /* The response (the secret) comes back encrypted with the session
         * key; without CONTINUESESSION the TPM flushes the session. */
        rc = Esys_TRSess_SetAttributes(c->esys, session.esys_handle, TPMA_SESSION_ENCRYPT,
                                       TPMA_SESSION_DECRYPT | TPMA_SESSION_ENCRYPT | TPMA_SESSION_CONTINUESESSION);
        if (rc != TSS2_RC_SUCCESS)
                return log_tss(rc, "TRSess_SetAttributes");
        rc = Esys_Unseal(c->esys, object, session.esys_handle, ESYS_TR_NONE, ESYS_TR_NONE, &data);
        /* Copies of the plaintext that ESAPI leaves: on the stack, and in
         * its command buffer. */
        tpm2_quirk_wipe_stack();
        /* A failed command leaves the session loaded: the handle flushes
         * it. TPM_RC_POLICY_FAIL (-ESTALE): the PCRs differ from those the
         * object's policy was sealed to. */
        if (rc != TSS2_RC_SUCCESS)
                return log_tss(rc, "Unseal");
        session.esys_handle = ESYS_TR_NONE; /* flushed by the TPM */
        tpm2_quirk_wipe_response_parameter(c->esys);

        secret = secret_memdup(data->buffer, data->size);
        if (!secret)
                return -ENOMEM;
        *ret_secret = secret;
        *ret_size = data->size;
        return 0;
}

/* An offline-sealed object (systemd-cryptenroll --tpm2-device-key): its
 * private is a duplication blob with an outer wrapper only, keyed by the
 * seed, which is encrypted to parent. TPM2_Import checks the wrapper's HMAC
 * and returns the private wrapped by parent, to be loaded; it is not kept
 * (systemd imports at every unlock too). Nothing secret crosses the bus:
 * the duplicate stays encrypted to parent's seed, and there is no inner
 * wrapper key (encryptionKey empty, symmetricAlg NULL). */
static int import_object(Tpm2Context *c, ESYS_TR parent, const TPM2B_PUBLIC *pub, const TPM2B_PRIVATE *duplicate,
                         const TPM2B_ENCRYPTED_SECRET *seed, TPM2B_PRIVATE *ret_priv) {
        _cleanup_esys_free_ TPM2B_PRIVATE *priv = NULL;
        const TPMT_SYM_DEF_OBJECT none = { .algorithm = TPM2_ALG_NULL };
        const TPM2B_DATA no_key = {};
        TSS2_RC rc;
        int r;

        /* Import refuses an object bound to its TPM or parent, and so does
         * systemd's offline sealing: say so before the TPM does. */
        if (pub->publicArea.objectAttributes & (TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT))
                return log_debug_errno(EBADMSG, "tpm2-blob has an import seed but its object is fixedTPM/fixedParent.");

        rc = Esys_Import(c->esys, parent, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                         &no_key, pub, duplicate, seed, &none, &priv);
        if (rc != TSS2_RC_SUCCESS) {
                r = log_tss(rc, "Import");
                /* A duplicate made for another parent (another TPM, another
                 * SRK) fails the seed's decryption or the integrity check. */
                if (r == -ESTALE || r == -EIO || r == -EACCES)
                        r = -EBADMSG;
                return r;
        }
        *ret_priv = *priv;
        return 0;
}

int tpm2_unseal(Tpm2Context *c, const Tpm2Token *t, const char *pin, void **ret_secret, size_t *ret_size) {
        _cleanup_tpm2_handle_ Tpm2Handle parent = TPM2_HANDLE_INIT(c);
        _cleanup_tpm2_handle_ Tpm2Handle object = TPM2_HANDLE_INIT(c);     /* released before parent */
        _cleanup_tpm2_handle_ Tpm2Handle signed_key = TPM2_HANDLE_INIT(c);
        SignedKey k;
        TPM2B_ENCRYPTED_SECRET seed;
        TPM2B_PRIVATE priv;
        TPM2B_PUBLIC pub;
        TSS2_RC rc;
        int r;

        if (t->unsupported)
                return -EOPNOTSUPP;
        if (t->pin && !pin)
                return -EACCES;
        if (t->policy_hash_size != SHA256_DIGEST_SIZE)
                return -EBADMSG;

        r = blob_unmarshal(t->blob, t->blob_size, &priv, &pub, &seed);
        if (r < 0)
                return r;
        /* A signed policy needs the key and a signature: without either,
         * nothing is asked of the TPM. */
        if (t->pubkey) {
                r = signed_key_from_pem(t->pubkey, t->pubkey_size, &k);
                if (r < 0)
                        return r;
                r = pcr_signature_read(c);
                if (r < 0)
                        return r;
        }
        /* The seed is made for the parent that tpm2_srk names; the token
         * parser marks a seed without it unsupported. */
        if (seed.size > 0 && !t->srk)
                return -EOPNOTSUPP;

        r = get_parent(c, t, false, t->primary_alg ?: TPM2_ALG_ECC, &parent);
        if (r < 0)
                return r;

        if (seed.size > 0) {
                TPM2B_PRIVATE duplicate = priv;

                r = import_object(c, parent.esys_handle, &pub, &duplicate, &seed, &priv);
                if (r < 0)
                        return r;
        }

        rc = Esys_Load(c->esys, parent.esys_handle, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &priv, &pub,
                       &object.esys_handle);
        if (rc != TSS2_RC_SUCCESS) {
                r = log_tss(rc, "Load");
                /* A blob that does not belong under this parent fails its
                 * integrity check: another TPM, or another primary. */
                if (r == -ESTALE || r == -EIO)
                        r = -EBADMSG;
                return r;
        }

        /* The object's policy, which Load just authenticated (its private
         * part is bound to the public area's name), is what the TPM will
         * enforce: a token whose tpm2-policy-hash says otherwise describes
         * another policy, and is refused as a policy mismatch, as the TPM
         * would refuse it. */
        if (pub.publicArea.authPolicy.size != t->policy_hash_size ||
            memcmp(pub.publicArea.authPolicy.buffer, t->policy_hash, t->policy_hash_size) != 0)
                return log_debug_errno(ESTALE, "tpm2-policy-hash differs from the sealed object's policy.");

        if (t->pin) {
                r = set_pin_auth(&object, pin, t->salt, t->salt_size);
                if (r < 0)
                        return r;
        }

        if (t->pubkey) {
                size_t i;

                r = signed_key_pick(c, t, &k, &i);
                if (r < 0)
                        return r;
                /* A public key only, in the owner hierarchy: a NULL-hierarchy
                 * key's VerifySignature ticket would not authorize. */
                rc = Esys_LoadExternal(c->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, NULL, &k.pub[i],
                                       ESYS_TR_RH_OWNER, &signed_key.esys_handle);
                if (rc != TSS2_RC_SUCCESS) {
                        r = log_tss(rc, "LoadExternal (signed-policy key)");
                        return rc_is_tpm(rc) ? -EOPNOTSUPP : r;
                }
        }

        /* PCR_CHANGED: a PCR was extended between PolicyPCR and Unseal;
         * a fresh session may still match. Bounded. */
        for (unsigned i = 0; i < UNSEAL_PCR_CHANGED_RETRIES; i++) {
                r = unseal_once(c, t, parent.esys_handle, object.esys_handle, signed_key.esys_handle,
                                t->pubkey ? &k : NULL, ret_secret, ret_size);
                if (r != -EAGAIN)
                        break;
        }
        if (r == -EAGAIN)
                r = -ESTALE;
        return r;
}

int tpm2_unseal_passphrase(Tpm2Context *c, const Tpm2Token *t, const char *pin, char **ret_pass, size_t *ret_len) {
        _cleanup_(secret_freep) void *secret = NULL;
        size_t size;
        int r;

        r = tpm2_unseal(c, t, pin, &secret, &size);
        if (r < 0)
                return r;
        r = base64_encode(secret, size, true, ret_pass);
        if (r < 0)
                return r;
        *ret_len = (size_t) r;
        return 0;
}
