/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "efivars.h"
#include "eventlog.h"
#include "macro.h"
#include "pcr.h"
#include "pe.h"
#include "predict.h"
#include "secureboot.h"
#include "strutil.h"

#define WIN_CERT_REVISION_2_0        0x0200
#define WIN_CERT_TYPE_PKCS_SIGNED_DATA 0x0002
#define SPC_INDIRECT_DATA_OID        "1.3.6.1.4.1.311.2.1.4"
#define SIGNATURES_MAX               8U

/* DER of the SHA-256 OID 2.16.840.1.101.3.4.2.1. */
static const uint8_t SHA256_OID[] = { 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01 };

static uint32_t le32(const uint8_t *p) {
        return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

SecureBootPrediction *secureboot_prediction_free(SecureBootPrediction *p) {
        if (!p)
                return NULL;
        for (size_t i = 0; i < p->n_events; i++)
                free(p->events[i].data);
        free(p);
        return NULL;
}

static int fail(char **ret_error, int r, const char *fmt, ...) _printf_(3, 4);
static int fail(char **ret_error, int r, const char *fmt, ...) {
        va_list ap;

        if (ret_error) {
                free(*ret_error);
                *ret_error = NULL;
                va_start(ap, fmt);
                if (vasprintf(ret_error, fmt, ap) < 0)
                        *ret_error = NULL;
                va_end(ap);
        }
        return r;
}

/* An empty prediction of pcr in bank; NULL when out of memory. */
static SecureBootPrediction *prediction_new(unsigned pcr, uint16_t bank) {
        SecureBootPrediction *p = calloc(1, sizeof(*p));

        if (!p)
                return NULL;
        p->pcr = pcr;
        p->bank = bank;
        p->digest_size = pcr_bank_digest_size(bank);
        return p;
}

static int event_add(SecureBootPrediction *p, uint32_t type, const char *name, const uint8_t guid[16],
                     const void *data, size_t size, const char *what) {
        SecureBootEvent *e;
        int r;

        if (p->n_events >= SECUREBOOT_EVENTS_MAX)
                return -E2BIG;
        e = p->events + p->n_events;
        *e = (SecureBootEvent) { .type = type, .size = size };
        snprintf(e->name, sizeof(e->name), "%s", name ?: "");
        snprintf(e->what, sizeof(e->what), "%s", what);
        if (guid)
                memcpy(e->guid, guid, 16);
        if (type == EV_EFI_BOOT_SERVICES_APPLICATION) {
                /* data is the image's Authenticode digest, computed once
                 * by the caller; the image itself is not kept. */
                if (size != p->digest_size)
                        return -EINVAL;
                memcpy(e->digest, data, size);
                e->size = 0;
                p->n_events++;
                return 0;
        }
        if (size > 0) {
                e->data = malloc(size);
                if (!e->data)
                        return -ENOMEM;
                memcpy(e->data, data, size);
        }
        if (type == EV_SEPARATOR || type == EV_EFI_ACTION)
                r = predict_data_digest(data, size, p->bank, e->digest);
        else
                r = predict_uefi_variable_digest(guid, name, data, size, p->bank, e->digest);
        if (r < 0) {
                free(e->data);
                return r;
        }
        p->n_events++;
        return 0;
}

/* Whether an equal event (same digest) is among events[from..n) of the
 * measuring party's own de-duplication set. */
static bool measured(const SecureBootPrediction *p, size_t from, const char *name, const uint8_t guid[16],
                     const uint8_t *data, size_t size) {
        for (size_t i = from; i < p->n_events; i++) {
                const SecureBootEvent *e = p->events + i;

                if (e->type == EV_EFI_VARIABLE_AUTHORITY && streq(e->name, name) && memcmp(e->guid, guid, 16) == 0 &&
                    e->size == size && memcmp(e->data, data, size) == 0)
                        return true;
        }
        return false;
}

/* A minimal DER reader: the element at *p (of what is left, *n), its tag,
 * its contents; advances past it. Definite lengths up to 2^24 only. */
static int der_next(const uint8_t **p, size_t *n, uint8_t *ret_tag, const uint8_t **ret_content,
                    size_t *ret_len) {
        const uint8_t *s = *p;
        size_t left = *n, len, hdr;

        if (left < 2)
                return -EBADMSG;
        if (s[1] < 0x80) {
                len = s[1];
                hdr = 2;
        } else {
                unsigned k = s[1] & 0x7f;

                if (k == 0 || k > 3 || left < 2 + k)
                        return -EBADMSG;
                len = 0;
                for (unsigned i = 0; i < k; i++)
                        len = len << 8 | s[2 + i];
                hdr = 2 + k;
        }
        if (len > left - hdr)
                return -EBADMSG;
        *ret_tag = s[0];
        *ret_content = s + hdr;
        *ret_len = len;
        *p = s + hdr + len;
        *n = left - hdr - len;
        return 0;
}

typedef struct Signature {
        PKCS7 *p7;
        X509 *signer;
} Signature;

static void signatures_free(Signature *s, size_t n) {
        for (size_t i = 0; i < n; i++)
                PKCS7_free(s[i].p7);    /* the signer belongs to p7 */
}

/* Checks an Authenticode PKCS#7: SignedData of SpcIndirectDataContent whose
 * SHA-256 digest is the image's, with one signer whose signature over it
 * holds. Sets *ret_signer (owned by p7). */
static int authenticode_check(PKCS7 *p7, const uint8_t digest[32], X509 **ret_signer) {
        STACK_OF(PKCS7_SIGNER_INFO) *infos;
        STACK_OF(X509) *signers = NULL;
        const uint8_t *der, *seq, *c, *alg, *q;
        uint8_t tag, buf[4096];
        size_t n, seq_len, c_len, alg_len, m;
        BIO *mem = NULL, *chain = NULL;
        char oid[64];
        int r = -EBADMSG;

        if (!PKCS7_type_is_signed(p7) || !p7->d.sign || !p7->d.sign->contents || !p7->d.sign->contents->type)
                return -EBADMSG;
        if (OBJ_obj2txt(oid, sizeof(oid), p7->d.sign->contents->type, 1) <= 0 || !streq(oid, SPC_INDIRECT_DATA_OID))
                return -EBADMSG;
        if (!p7->d.sign->contents->d.other || p7->d.sign->contents->d.other->type != V_ASN1_SEQUENCE ||
            !p7->d.sign->contents->d.other->value.sequence)
                return -EBADMSG;
        der = p7->d.sign->contents->d.other->value.sequence->data;
        n = (size_t) p7->d.sign->contents->d.other->value.sequence->length;

        /* SpcIndirectDataContent ::= SEQUENCE { data SEQUENCE, messageDigest
         * DigestInfo ::= SEQUENCE { AlgorithmIdentifier, OCTET STRING } } */
        if (der_next(&der, &n, &tag, &seq, &seq_len) < 0 || tag != 0x30)
                return -EBADMSG;
        q = seq;
        m = seq_len;
        if (der_next(&q, &m, &tag, &c, &c_len) < 0 || tag != 0x30)     /* data */
                return -EBADMSG;
        if (der_next(&q, &m, &tag, &c, &c_len) < 0 || tag != 0x30)     /* DigestInfo */
                return -EBADMSG;
        if (der_next(&c, &c_len, &tag, &alg, &alg_len) < 0 || tag != 0x30)
                return -EBADMSG;
        if (alg_len < sizeof(SHA256_OID) || memcmp(alg, SHA256_OID, sizeof(SHA256_OID)) != 0)
                return -EOPNOTSUPP;
        {
                const uint8_t *d;
                size_t d_len;

                if (der_next(&c, &c_len, &tag, &d, &d_len) < 0 || tag != 0x04 || d_len != 32)
                        return -EBADMSG;
                if (memcmp(d, digest, 32) != 0)
                        return -EPERM;  /* signed, but not this image */
        }

        infos = PKCS7_get_signer_info(p7);
        if (!infos || sk_PKCS7_SIGNER_INFO_num(infos) != 1)
                return -EBADMSG;
        signers = PKCS7_get0_signers(p7, NULL, 0);
        if (!signers || sk_X509_num(signers) != 1)
                goto finish;

        /* The signed attributes' messageDigest is over the contents of the
         * SpcIndirectDataContent SEQUENCE, without its tag and length. */
        mem = BIO_new_mem_buf(seq, (int) seq_len);
        if (!mem) {
                r = -ENOMEM;
                goto finish;
        }
        chain = PKCS7_dataInit(p7, mem);
        if (!chain)
                goto finish;
        mem = NULL;     /* now part of chain */
        while (BIO_read(chain, buf, sizeof(buf)) > 0)
                ;
        if (PKCS7_signatureVerify(chain, p7, sk_PKCS7_SIGNER_INFO_value(infos, 0), sk_X509_value(signers, 0)) != 1) {
                r = -EPERM;
                goto finish;
        }
        *ret_signer = sk_X509_value(signers, 0);
        r = 0;
finish:
        ERR_clear_error();
        BIO_free(mem);
        BIO_free_all(chain);
        sk_X509_free(signers);
        return r;
}

/* The image's Authenticode signatures that verify, in table order. */
static int image_signatures(const SecureBootImage *img, const uint8_t digest[32], Signature *ret, size_t *ret_n,
                            char **ret_error) {
        size_t off, size, n = 0;
        int r;

        r = pe_certificate_table(img->data, img->size, &off, &size);
        if (r == -ENOENT) {
                *ret_n = 0;
                return 0;
        }
        if (r < 0)
                return fail(ret_error, r, "%s: not a valid PE image", img->name);
        for (size_t k = 0; k < size;) {
                uint32_t len;
                uint16_t rev, type;

                if (size - k < 8)
                        return fail(ret_error, -EBADMSG, "%s: malformed certificate table", img->name);
                len = le32(img->data + off + k);
                rev = (uint16_t) (img->data[off + k + 4] | img->data[off + k + 5] << 8);
                type = (uint16_t) (img->data[off + k + 6] | img->data[off + k + 7] << 8);
                if (len < 8 || len > size - k)
                        return fail(ret_error, -EBADMSG, "%s: malformed certificate table", img->name);
                if (rev == WIN_CERT_REVISION_2_0 && type == WIN_CERT_TYPE_PKCS_SIGNED_DATA) {
                        const unsigned char *d = img->data + off + k + 8;
                        PKCS7 *p7;
                        X509 *signer = NULL;

                        if (n >= SIGNATURES_MAX)
                                return fail(ret_error, -EBADMSG, "%s: too many signatures", img->name);
                        p7 = d2i_PKCS7(NULL, &d, len - 8);
                        ERR_clear_error();
                        if (!p7)
                                return fail(ret_error, -EBADMSG, "%s: a signature is not PKCS#7", img->name);
                        r = authenticode_check(p7, digest, &signer);
                        if (r == -ENOMEM) {
                                PKCS7_free(p7);
                                return r;
                        }
                        if (r < 0)      /* the firmware skips a signature that does not verify */
                                PKCS7_free(p7);
                        else
                                ret[n++] = (Signature) { .p7 = p7, .signer = signer };
                }
                /* Entries are 8-byte aligned. */
                k += ((size_t) len + 7) & ~(size_t) 7;
        }
        *ret_n = n;
        return 0;
}

/* Whether ca (DER) anchors the signature's chain: the signer chains to it
 * through the signature's own certificates (ca itself may be among them,
 * or be the signer), as the firmware checks with a db entry as the only
 * trusted certificate (partial chains allowed, no time check). */
static int ca_anchors(const Signature *sig, const uint8_t *der, size_t der_len) {
        const unsigned char *d = der;
        X509_STORE_CTX *ctx = NULL;
        X509_STORE *store = NULL;
        X509 *ca;
        int r = 0;

        ca = d2i_X509(NULL, &d, (long) der_len);
        if (!ca || d != der + der_len) {
                X509_free(ca);
                ERR_clear_error();
                return 0;       /* not a certificate: anchors nothing */
        }
        store = X509_STORE_new();
        ctx = X509_STORE_CTX_new();
        if (!store || !ctx || X509_STORE_add_cert(store, ca) != 1) {
                r = -ENOMEM;
                goto finish;
        }
        X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN | X509_V_FLAG_NO_CHECK_TIME);
        X509_STORE_set_purpose(store, X509_PURPOSE_ANY);
        if (X509_STORE_CTX_init(ctx, store, sig->signer, sig->p7->d.sign->cert) != 1) {
                r = -ENOMEM;
                goto finish;
        }
        r = X509_verify_cert(ctx) == 1;
finish:
        ERR_clear_error();
        X509_STORE_CTX_free(ctx);
        X509_STORE_free(store);
        X509_free(ca);
        return r;
}

typedef struct Match {
        const Signature *sig;           /* NULL: match the image's SHA-256 */
        const uint8_t *digest;
        const uint8_t *esd;             /* the matching EFI_SIGNATURE_DATA */
        size_t esd_size;
} Match;

static int match_cb(const uint8_t type[16], const uint8_t *esd, size_t esd_size, void *userdata) {
        Match *m = userdata;
        int r;

        if (!m->sig) {
                if (memcmp(type, EFI_CERT_SHA256_GUID, 16) != 0 || esd_size != 16 + 32 ||
                    memcmp(esd + 16, m->digest, 32) != 0)
                        return 0;
        } else {
                if (memcmp(type, EFI_CERT_X509_GUID, 16) != 0)
                        return 0;
                r = ca_anchors(m->sig, esd + 16, esd_size - 16);
                if (r <= 0)
                        return r;
        }
        m->esd = esd;
        m->esd_size = esd_size;
        return 1;
}

/* The entry of database db that allows sig (or, sig NULL, the hash). */
static int db_match(const uint8_t *db, size_t db_size, const Signature *sig, const uint8_t digest[32],
                    const uint8_t **ret, size_t *ret_size) {
        Match m = { .sig = sig, .digest = digest };
        int r;

        if (db_size == 0)
                return 0;
        r = efivars_signature_foreach(db, db_size, match_cb, &m);
        if (r <= 0)
                return r;
        *ret = m.esd;
        *ret_size = m.esd_size;
        return 1;
}

static const EfiVariable *var(const EfiVarStore *vars, const uint8_t guid[16], const char *name) {
        return efivars_find(vars, guid, name);
}

/* dbx (or shim's vendor dbx): the image's hash or a certificate of a
 * verifying signature's chain. */
static int denied(const uint8_t *dbx, size_t dbx_size, const Signature *sigs, size_t n_sigs, const uint8_t digest[32]) {
        const uint8_t *esd;
        size_t esd_size;
        int r;

        r = db_match(dbx, dbx_size, NULL, digest, &esd, &esd_size);
        if (r != 0)
                return r;
        for (size_t i = 0; i < n_sigs; i++) {
                r = db_match(dbx, dbx_size, sigs + i, digest, &esd, &esd_size);
                if (r != 0)
                        return r;
        }
        return 0;
}

static int image_digest_and_signatures(const SecureBootImage *img, uint8_t digest[32], Signature *sigs, size_t *n_sigs,
                                       char **ret_error) {
        int r;

        r = pe_authenticode_digest(img->data, img->size, PCR_BANK_SHA256, digest);
        if (r < 0)
                return fail(ret_error, r == -ENOMEM ? r : -EBADMSG, "%s: not a PE image the firmware can hash",
                            img->name);
        return image_signatures(img, digest, sigs, n_sigs, ret_error);
}

/* The firmware verifies img (EDK2 DxeImageVerificationLib): dbx first, then
 * the first signature a db X.509 entry anchors, else the db hash. */
static int firmware_verify(SecureBootPrediction *p, const EfiVarStore *vars, const SecureBootImage *img,
                           size_t fw_from, char **ret_error) {
        const EfiVariable *db = var(vars, EFI_IMAGE_SECURITY_DATABASE_GUID, "db"),
                          *dbx = var(vars, EFI_IMAGE_SECURITY_DATABASE_GUID, "dbx");
        Signature sigs[SIGNATURES_MAX];
        const uint8_t *esd = NULL;
        size_t n_sigs = 0, esd_size = 0;
        uint8_t digest[32];
        char what[256];
        int r;

        r = image_digest_and_signatures(img, digest, sigs, &n_sigs, ret_error);
        if (r < 0)
                return r;
        if (dbx) {
                r = denied(dbx->data, dbx->size, sigs, n_sigs, digest);
                if (r != 0) {
                        signatures_free(sigs, n_sigs);
                        return r < 0 ? r : fail(ret_error, -EPERM, "%s is forbidden by dbx: the firmware would not start it", img->name);
                }
        }
        r = 0;
        for (size_t i = 0; db && r == 0 && i < n_sigs; i++)
                r = db_match(db->data, db->size, sigs + i, digest, &esd, &esd_size);
        if (db && r == 0)
                r = db_match(db->data, db->size, NULL, digest, &esd, &esd_size);
        signatures_free(sigs, n_sigs);
        if (r < 0)
                return r;
        if (r == 0)
                return fail(ret_error, -EPERM, "%s is signed by no db entry (nor is its hash in db): the firmware "
                            "would not start it with Secure Boot on", img->name);
        if (measured(p, fw_from, "db", EFI_IMAGE_SECURITY_DATABASE_GUID, esd, esd_size))
                return 0;
        snprintf(what, sizeof(what), "firmware: the db entry that verified %s", img->name);
        return event_add(p, EV_EFI_VARIABLE_AUTHORITY, "db", EFI_IMAGE_SECURITY_DATABASE_GUID, esd, esd_size, what);
}

int secureboot_shim_version(const uint8_t *image, size_t size, unsigned *ret_major, unsigned *ret_minor) {
        size_t off, len;
        const char *s, *end;
        unsigned a = 0, b = 0;
        int r;

        r = pe_find_section(image, size, ".data.ident", &off, &len);
        if (r < 0)
                return r;
        s = memmem(image + off, len, "$Version: ", 10);
        if (!s)
                return -EBADMSG;
        end = (const char *) image + off + len;
        s += 10;
        if (s >= end || *s < '0' || *s > '9')
                return -EBADMSG;
        for (; s < end && *s >= '0' && *s <= '9' && a < 1000; s++)
                a = a * 10 + (unsigned) (*s - '0');
        if (s < end && *s == '.')
                for (s++; s < end && *s >= '0' && *s <= '9' && b < 1000; s++)
                        b = b * 10 + (unsigned) (*s - '0');
        *ret_major = a;
        *ret_minor = b;
        return 0;
}

int secureboot_shim_sbatlevel(const uint8_t *image, size_t size, bool latest, const char **ret, size_t *ret_size) {
        size_t off, len, o, n;
        int r;

        r = pe_find_section(image, size, ".sbatlevel", &off, &len);
        if (r < 0)
                return r;
        /* u32 version 0, u32 previous, u32 latest: offsets from byte 4 to
         * NUL-terminated strings. */
        if (len < 12 || le32(image + off) != 0)
                return -EBADMSG;
        o = le32(image + off + (latest ? 8 : 4));
        if (o > len - 4)
                return -EBADMSG;
        n = strnlen((const char *) image + off + 4 + o, len - 4 - o);
        if (n == len - 4 - o || n == 0)
                return -EBADMSG;        /* no NUL within the section, or empty */
        *ret = (const char *) image + off + 4 + o;
        *ret_size = n;
        return 0;
}

/* Part k of shim's .vendor_cert section: 0 the authorized (vendor_cert or
 * vendor_db), 1 the deauthorized (vendor_dbx). The header is u32 sizes of
 * both, then u32 offsets of both from the section's start. */
static int shim_vendor_part(const uint8_t *image, size_t size, unsigned k, const uint8_t **ret, size_t *ret_size) {
        size_t off, len;
        uint32_t n, o;
        int r;

        r = pe_find_section(image, size, ".vendor_cert", &off, &len);
        if (r < 0)
                return r;
        if (len < 16)
                return -EBADMSG;
        n = le32(image + off + 4 * k);
        o = le32(image + off + 8 + 4 * k);
        if (o > len || n > len - o)
                return -EBADMSG;
        *ret = image + off + o;
        *ret_size = n;
        return 0;
}

int secureboot_shim_vendor_cert(const uint8_t *image, size_t size, const uint8_t **ret, size_t *ret_size,
                                bool *ret_is_esl) {
        int r;

        r = shim_vendor_part(image, size, 0, ret, ret_size);
        if (r < 0)
                return r;
        *ret_is_esl = !(*ret_size >= 2 && (*ret)[0] == 0x30);
        return 0;
}

/* The "sbat,1,DATE" date of an SBAT level's first record, as a string of
 * digits, and its length. */
static size_t sbat_date(const char *s, size_t n, const char **ret) {
        size_t i = 0, k;

        if (n < 7 || memcmp(s, "sbat,1,", 7) != 0)
                return 0;
        i = 7;
        for (k = i; k < n && s[k] >= '0' && s[k] <= '9'; k++)
                ;
        *ret = s + i;
        return k - i;
}

static int date_cmp(const char *a, size_t an, const char *b, size_t bn) {
        if (an != bn)
                return an < bn ? -1 : 1;
        return memcmp(a, b, an);
}

/* The SBAT level shim ≥ 15.7 applies and measures: the payload SbatPolicy
 * picks (absent or 2 "automatic": the previous one; 1: the latest), unless
 * the store's SbatLevel (non-volatile, boot-service only) is at least as
 * new. */
static int shim_sbat(const EfiVarStore *vars, const SecureBootImage *img, const uint8_t **ret, size_t *ret_size,
                     char **ret_error) {
        const EfiVariable *policy = var(vars, EFI_SHIM_LOCK_GUID, "SbatPolicy"),
                          *level = var(vars, EFI_SHIM_LOCK_GUID, "SbatLevel"),
                          *mirror = var(vars, EFI_SHIM_LOCK_GUID, "SbatLevelRT");
        const char *cand, *cd, *ld;
        size_t cn, cdn, ldn;
        bool latest = false;
        int r;

        if (policy && policy->size >= 1) {
                if (policy->data[0] == 1)
                        latest = true;
                else if (policy->data[0] != 2)
                        return fail(ret_error, -EOPNOTSUPP, "SbatPolicy is %u (reset or unknown): the SBAT level "
                                    "shim will apply cannot be predicted", policy->data[0]);
        }
        r = secureboot_shim_sbatlevel(img->data, img->size, latest, &cand, &cn);
        if (r < 0)
                return fail(ret_error, -EOPNOTSUPP, "%s: no usable .sbatlevel section", img->name);
        cdn = sbat_date(cand, cn, &cd);
        if (cdn == 0)
                return fail(ret_error, -EOPNOTSUPP, "%s: its SBAT level does not start with sbat,1,DATE", img->name);
        /* A running system's view (efivarfs) shows only shim's runtime
         * mirror of the level it applied. */
        if (!level && mirror && !vars->computed_secure_boot)
                level = mirror;
        else if (level && level->attributes != (EFI_VARIABLE_NON_VOLATILE | EFI_VARIABLE_BOOTSERVICE_ACCESS))
                level = NULL;
        if (level) {
                ldn = sbat_date((const char *) level->data, level->size, &ld);
                if (ldn > 0 && date_cmp(ld, ldn, cd, cdn) >= 0) {
                        *ret = level->data;
                        *ret_size = level->size;
                        return 0;
                }
        }
        *ret = (const uint8_t *) cand;
        *ret_size = cn;
        return 0;
}

/* Shim verifies img (check_allowlist, per signature): db hash, db
 * certificate, vendor_db hash and certificate, MokListRT (its vendor
 * certificate, owner SHIM_LOCK_GUID, then the MOKs) hash and certificate. */
static int shim_verify(SecureBootPrediction *p, const EfiVarStore *vars, const SecureBootImage *shim,
                       const SecureBootImage *img, size_t shim_from, char **ret_error) {
        const EfiVariable *db = var(vars, EFI_IMAGE_SECURITY_DATABASE_GUID, "db"),
                          *dbx = var(vars, EFI_IMAGE_SECURITY_DATABASE_GUID, "dbx"),
                          *mok = var(vars, EFI_SHIM_LOCK_GUID, "MokList");
        _cleanup_free_ uint8_t *moklist = NULL;
        const uint8_t *vendor = NULL, *vdbx = NULL, *esd = NULL;
        size_t vendor_size = 0, vdbx_size = 0, moklist_size = 0, n_sigs = 0, esd_size = 0;
        Signature sigs[SIGNATURES_MAX];
        const char *name = NULL;
        const uint8_t *guid = NULL;
        uint8_t digest[32];
        bool vendor_esl = false;
        char what[256];
        int r;

        r = secureboot_shim_vendor_cert(shim->data, shim->size, &vendor, &vendor_size, &vendor_esl);
        if (r < 0 && r != -ENOENT)
                return fail(ret_error, -EOPNOTSUPP, "%s: malformed .vendor_cert section", shim->name);
        r = shim_vendor_part(shim->data, shim->size, 1, &vdbx, &vdbx_size);
        if (r < 0 && r != -ENOENT)
                return fail(ret_error, -EOPNOTSUPP, "%s: malformed .vendor_cert section", shim->name);
        if (vendor_esl && vendor_size > 0 && efivars_signature_foreach(vendor, vendor_size, NULL, NULL) < 0)
                return fail(ret_error, -EOPNOTSUPP, "%s: its vendor_db is malformed", shim->name);
        if (vdbx_size > 0 && efivars_signature_foreach(vdbx, vdbx_size, NULL, NULL) < 0)
                return fail(ret_error, -EOPNOTSUPP, "%s: its vendor_dbx is malformed", shim->name);

        /* MokListRT: the vendor certificate as an ESL (owner SHIM_LOCK_GUID),
         * then the enrolled MOKs. */
        if (!vendor_esl && vendor_size > 0) {
                size_t list = 28 + 16 + vendor_size;

                moklist_size = list + (mok ? mok->size : 0);
                moklist = malloc(moklist_size);
                if (!moklist)
                        return -ENOMEM;
                memcpy(moklist, EFI_CERT_X509_GUID, 16);
                for (unsigned i = 0; i < 4; i++) {
                        moklist[16 + i] = (uint8_t) (list >> (8 * i));
                        moklist[20 + i] = 0;
                        moklist[24 + i] = (uint8_t) ((16 + vendor_size) >> (8 * i));
                }
                memcpy(moklist + 28, EFI_SHIM_LOCK_GUID, 16);
                memcpy(moklist + 44, vendor, vendor_size);
                if (mok && mok->size > 0)
                        memcpy(moklist + list, mok->data, mok->size);
        } else if (mok && mok->size > 0) {
                moklist = malloc(mok->size);
                if (!moklist)
                        return -ENOMEM;
                memcpy(moklist, mok->data, mok->size);
                moklist_size = mok->size;
        }
        if (moklist_size > 0 && efivars_signature_foreach(moklist, moklist_size, NULL, NULL) < 0)
                return fail(ret_error, -EBADMSG, "MokList is malformed");

        r = image_digest_and_signatures(img, digest, sigs, &n_sigs, ret_error);
        if (r < 0)
                return r;
        r = 0;
        if (dbx)
                r = denied(dbx->data, dbx->size, sigs, n_sigs, digest);
        if (r == 0 && vdbx_size > 0)
                r = denied(vdbx, vdbx_size, sigs, n_sigs, digest);
        if (r != 0) {
                signatures_free(sigs, n_sigs);
                return r < 0 ? r : fail(ret_error, -EPERM, "%s is forbidden by dbx or shim's vendor_dbx", img->name);
        }

        for (size_t i = 0; r == 0 && i < MAX(n_sigs, (size_t) 1); i++) {
                const Signature *s = n_sigs > 0 ? sigs + i : NULL;

                if (db && (r = db_match(db->data, db->size, NULL, digest, &esd, &esd_size)) != 0) {
                        name = "db", guid = EFI_IMAGE_SECURITY_DATABASE_GUID;
                        break;
                }
                if (db && s && (r = db_match(db->data, db->size, s, digest, &esd, &esd_size)) != 0) {
                        name = "db", guid = EFI_IMAGE_SECURITY_DATABASE_GUID;
                        break;
                }
                if (vendor_esl && (r = db_match(vendor, vendor_size, NULL, digest, &esd, &esd_size)) != 0) {
                        name = "vendor_db", guid = EFI_IMAGE_SECURITY_DATABASE_GUID;
                        break;
                }
                if (vendor_esl && s && (r = db_match(vendor, vendor_size, s, digest, &esd, &esd_size)) != 0) {
                        name = "vendor_db", guid = EFI_IMAGE_SECURITY_DATABASE_GUID;
                        break;
                }
                if ((r = db_match(moklist, moklist_size, NULL, digest, &esd, &esd_size)) != 0) {
                        name = "MokListRT", guid = EFI_SHIM_LOCK_GUID;
                        break;
                }
                if (s && (r = db_match(moklist, moklist_size, s, digest, &esd, &esd_size)) != 0) {
                        name = "MokListRT", guid = EFI_SHIM_LOCK_GUID;
                        break;
                }
        }
        signatures_free(sigs, n_sigs);
        if (r < 0)
                return r;
        if (r == 0)
                return fail(ret_error, -EPERM, "%s is signed by nothing %s trusts (db, its vendor certificate, "
                            "MokList)", img->name, shim->name);
        if (measured(p, shim_from, name, guid, esd, esd_size))
                return 0;
        snprintf(what, sizeof(what), "shim: the %s entry that verified %s", name, img->name);
        return event_add(p, EV_EFI_VARIABLE_AUTHORITY, name, guid, esd, esd_size, what);
}

/* The PCR's value: every event extended from zero, in order. */
static int replay(SecureBootPrediction *p) {
        memset(p->value, 0, sizeof(p->value));
        for (size_t i = 0; i < p->n_events; i++) {
                uint8_t buf[2 * EVENTLOG_DIGEST_MAX];
                int r;

                memcpy(buf, p->value, p->digest_size);
                memcpy(buf + p->digest_size, p->events[i].digest, p->digest_size);
                r = predict_data_digest(buf, 2 * p->digest_size, p->bank, p->value);
                if (r < 0)
                        return r;
        }
        return 0;
}

int secureboot_predict_pcr7(const EfiVarStore *vars, const SecureBootImage *images, size_t n_images,
                            uint16_t bank, SecureBootPrediction **ret, char **ret_error) {
        _cleanup_(secureboot_prediction_freep) SecureBootPrediction *p = NULL;
        static const struct {
                const char *name;
                const uint8_t *guid;
        } config[] = {
                { "PK", EFI_GLOBAL_VARIABLE_GUID },
                { "KEK", EFI_GLOBAL_VARIABLE_GUID },
                { "db", EFI_IMAGE_SECURITY_DATABASE_GUID },
                { "dbx", EFI_IMAGE_SECURITY_DATABASE_GUID },
        };
        static const uint8_t separator[4] = {};
        const EfiVariable *v;
        size_t fw_from, shim_from;
        unsigned major, minor;
        bool shim;
        int r;

        if (!vars || !ret || (n_images > 0 && !images))
                return -EINVAL;
        if (n_images > SECUREBOOT_IMAGES_MAX)
                return fail(ret_error, -E2BIG, "too many EFI images (at most %u)", SECUREBOOT_IMAGES_MAX);
        if (!eventlog_bank_md(bank))
                return -EOPNOTSUPP;
        p = prediction_new(7, bank);
        if (!p)
                return -ENOMEM;
        p->secure_boot = efivars_secure_boot(vars);

        /* Firmware, pre-OS (EDK2 Tcg2Dxe MeasureAllSecureVariables). */
        r = event_add(p, EV_EFI_VARIABLE_DRIVER_CONFIG, "SecureBoot", EFI_GLOBAL_VARIABLE_GUID, &p->secure_boot, 1,
                      "firmware: SecureBoot");
        if (r < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(config); i++) {
                char what[256];

                v = var(vars, config[i].guid, config[i].name);
                snprintf(what, sizeof(what), "firmware: %s%s", config[i].name, v ? "" : " (absent)");
                r = event_add(p, EV_EFI_VARIABLE_DRIVER_CONFIG, config[i].name, config[i].guid, v ? v->data : NULL,
                              v ? v->size : 0, what);
                if (r < 0)
                        return r;
        }
        v = var(vars, EFI_IMAGE_SECURITY_DATABASE_GUID, "dbt");
        if (v) {
                r = event_add(p, EV_EFI_VARIABLE_DRIVER_CONFIG, "dbt", EFI_IMAGE_SECURITY_DATABASE_GUID, v->data,
                              v->size, "firmware: dbt");
                if (r < 0)
                        return r;
        }
        r = event_add(p, EV_SEPARATOR, NULL, NULL, separator, sizeof(separator), "firmware: separator");
        if (r < 0)
                return r;

        if (n_images == 0)
                goto done;
        r = secureboot_shim_version(images[0].data, images[0].size, &major, &minor);
        shim = r >= 0 && pe_find_section(images[0].data, images[0].size, ".vendor_cert", &(size_t) {0}, &(size_t) {0}) >= 0;
        if (p->secure_boot != 1) {
                /* Nothing is verified, so the firmware measures no
                 * authority; but shim measures its state all the same. */
                if (shim)
                        return fail(ret_error, -EOPNOTSUPP, "%s is shim, and Secure Boot is off in the variables: "
                                    "what shim measures then is not modelled", images[0].name);
                goto done;
        }
        if (shim && n_images < 2)
                return fail(ret_error, -EINVAL, "%s is shim: give what it starts (grub, or the kernel) too, "
                            "whose verification it measures", images[0].name);

        fw_from = p->n_events;
        r = firmware_verify(p, vars, images + 0, fw_from, ret_error);
        if (r < 0)
                return r;
        if (!shim) {
                /* Not shim: the firmware verifies the rest too. */
                for (size_t i = 1; i < n_images; i++) {
                        r = firmware_verify(p, vars, images + i, fw_from, ret_error);
                        if (r < 0)
                                return r;
                }
                goto done;
        }
        if (major < 15 || (major == 15 && minor < 7))
                return fail(ret_error, -EOPNOTSUPP, "%s is shim %u.%u: only shim 15.7 and later are modelled "
                            "(older ones measure the vendor certificate differently)", images[0].name, major, minor);

        shim_from = p->n_events;
        v = var(vars, EFI_SHIM_LOCK_GUID, "MokSBState");
        if (v) {
                r = event_add(p, EV_EFI_VARIABLE_AUTHORITY, "MokSBState", EFI_SHIM_LOCK_GUID, v->data, v->size,
                              "shim: MokSBState");
                if (r < 0)
                        return r;
        }
        {
                const uint8_t *sbat = NULL;
                size_t sbat_size = 0;

                r = shim_sbat(vars, images + 0, &sbat, &sbat_size, ret_error);
                if (r < 0)
                        return r;
                r = event_add(p, EV_EFI_VARIABLE_AUTHORITY, "SbatLevel", EFI_SHIM_LOCK_GUID, sbat, sbat_size,
                              "shim: SbatLevel");
                if (r < 0)
                        return r;
        }
        for (size_t i = 1; i < n_images; i++) {
                r = shim_verify(p, vars, images + 0, images + i, shim_from, ret_error);
                if (r < 0)
                        return r;
        }

done:
        r = replay(p);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(p);
        return 0;
}

static bool image_is_grub(const SecureBootImage *img) {
        size_t off, len;

        /* Its SBAT section names it ("grub,3,Free Software Foundation,..."). */
        if (pe_find_section(img->data, img->size, ".sbat", &off, &len) < 0)
                return false;
        return len >= 5 && (memcmp(img->data + off, "grub,", 5) == 0 ||
                            memmem(img->data + off, len, "\ngrub,", 6));
}

int secureboot_predict_pcr4(const SecureBootImage *images, size_t n_images, unsigned failed_boot_options,
                            uint16_t bank, SecureBootPrediction **ret, char **ret_error) {
        static const char calling[] = "Calling EFI Application from Boot Option",
                          returning[] = "Returning from EFI Application from Boot Option";
        static const uint8_t separator[4] = {};
        _cleanup_(secureboot_prediction_freep) SecureBootPrediction *p = NULL;
        uint8_t digests[SECUREBOOT_IMAGES_MAX][EVENTLOG_DIGEST_MAX];
        unsigned major = 0, minor = 0;
        bool shim;
        int r;

        if (!ret || (n_images > 0 && !images))
                return -EINVAL;
        if (n_images == 0)
                return fail(ret_error, -EINVAL, "PCR 4 is the boot chain's EFI images: give them in load order");
        if (n_images > SECUREBOOT_IMAGES_MAX)
                return fail(ret_error, -E2BIG, "too many EFI images (at most %u)", SECUREBOOT_IMAGES_MAX);
        if (failed_boot_options > SECUREBOOT_FAILED_BOOT_OPTIONS_MAX)
                return fail(ret_error, -E2BIG, "too many failed boot options (at most %u)",
                            SECUREBOOT_FAILED_BOOT_OPTIONS_MAX);
        if (!eventlog_bank_md(bank))
                return -EOPNOTSUPP;
        for (size_t i = 0; i < n_images; i++)
                if (pe_authenticode_digest(images[i].data, images[i].size, bank, digests[i]) < 0)
                        return fail(ret_error, -EBADMSG, "%s: not a PE image the firmware can hash", images[i].name);
        shim = secureboot_shim_version(images[0].data, images[0].size, &major, &minor) >= 0 &&
               pe_find_section(images[0].data, images[0].size, ".vendor_cert", &(size_t) {0}, &(size_t) {0}) >= 0;
        if (shim && major != 16)
                return fail(ret_error, -EOPNOTSUPP, "%s is shim %u.%u: what it and grub measure to PCR 4 is modelled "
                            "for shim 16 only", images[0].name, major, minor);
        for (size_t i = shim ? 2 : 0; i + 1 < n_images; i++)
                if (image_is_grub(images + i))
                        return fail(ret_error, -EOPNOTSUPP, "%s is grub, not started by shim: what it measures of "
                                    "what it loads is not modelled", images[i].name);

        p = prediction_new(4, bank);
        if (!p)
                return -ENOMEM;

        /* EDK2 BDS: the action before the first boot option, the
         * separators at ReadyToBoot; a boot option that fails returns. */
        r = event_add(p, EV_EFI_ACTION, NULL, NULL, calling, strlen(calling), "firmware: the first boot option");
        if (r < 0)
                return r;
        r = event_add(p, EV_SEPARATOR, NULL, NULL, separator, sizeof(separator), "firmware: separator");
        if (r < 0)
                return r;
        for (unsigned k = 0; k < failed_boot_options; k++) {
                r = event_add(p, EV_EFI_ACTION, NULL, NULL, returning, strlen(returning),
                              "firmware: a boot option that did not start");
                if (r < 0)
                        return r;
                r = event_add(p, EV_EFI_ACTION, NULL, NULL, calling, strlen(calling), "firmware: the next boot option");
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < n_images; i++) {
                /* shim 16 → grub → what grub loads: measured twice. */
                unsigned times = shim && i >= 2 ? 2 : 1;
                char what[256];

                if (!shim || i == 0)
                        snprintf(what, sizeof(what), "firmware: LoadImage of %s", images[i].name);
                else if (i == 1)
                        snprintf(what, sizeof(what), "shim: %s, which it starts", images[i].name);
                for (unsigned t = 0; t < times; t++) {
                        if (shim && i >= 2)
                                snprintf(what, sizeof(what), "%s: %s, loaded through shim's loader protocol",
                                         t == 0 ? "shim" : "firmware", images[i].name);
                        r = event_add(p, EV_EFI_BOOT_SERVICES_APPLICATION, NULL, NULL, digests[i],
                                      pcr_bank_digest_size(bank), what);
                        if (r < 0)
                                return r;
                }
        }
        r = replay(p);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(p);
        return 0;
}
