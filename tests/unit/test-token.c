/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "macro.h"
#include "pcr.h"
#include "predict.h"
#include "token.h"
#include "tests.h"

/* A token written by systemd-cryptenroll v252 (PCR 0+7, sha256, no PIN). */
#define BLOB "AJ4AILdU7VGHpKGXYEUuphw46FO/VYGc/Dh4gMD5lNAyer47ABAPUeFShT9PxSzqnbZN2g32eQvDJP4cn9ExwY/ncBcl0GC1t6q1Lx0IQC7TPp+UhJl+U79Co2mCJZsf1HKhRqe7mK0zaZ+zcoooyubY6duFJ9z/j8AL+KKrbveqERecb1D4WibNOBEFHjGTRdlSQOAuqY1nzrRhKSfRBABOAAgACwAAABIAIALjZCs+Ke7M//2AMcAKbwoP6+XO6i9u9rAyL+gVmM8xABAAIFEWFKtTwFR1sShhBOifJajf9Ejhzjpn8BjbeE0gD29w"
#define HASH "02e3642b3e29eeccfffd8031c00a6f0a0febe5ceea2f6ef6b0322fe81598cf31"
static const char v252[] =
        "{\"type\":\"systemd-tpm2\",\"keyslots\":[\"2\"],\"tpm2-blob\":\"" BLOB "\","
        "\"tpm2-pcrs\":[0,7],\"tpm2-pcr-bank\":\"sha256\",\"tpm2-primary-alg\":\"ecc\","
        "\"tpm2-policy-hash\":\"" HASH "\",\"tpm2-pin\":false}";

#define Z40 "0000000000000000000000000000000000000000"
#define Z64 "0000000000000000000000000000000000000000000000000000000000000000"
#define SALT "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="            /* bytes 00..1f */
#define SRK "gQAAAQAiAAsLMFV6n8TpDjNYfaLH7BE2W4Clyu8UOV6DqM3yFzxhhgAAAAE="  /* 44 bytes */
#define SMALL_BLOB "AAQBAgMEAAQFBgcI"      /* 00 04 01020304 00 04 05060708 */

/* Parses, formats, and compares with the input byte for byte. */
static Tpm2Token *roundtrip(const char *json) {
        Tpm2Token *t = NULL;
        char *out = NULL, *err = NULL;

        if (tpm2_token_parse(json, &t, &err) != 0) {
                fprintf(stderr, "parse failed: %s\n%s\n", err ? err : "(no message)", json);
                abort();
        }
        ASSERT(err == NULL);
        ASSERT_EQ(tpm2_token_format(t, &out), 0);
        ASSERT_STREQ(out, json);
        free(out);
        return t;
}

static void test_v252_roundtrip(void) {
        uint8_t zeros[64] = {}, d[SHA256_DIGEST_SIZE];
        Tpm2Token *t = roundtrip(v252);

        ASSERT_EQ(t->keyslot, 2);
        ASSERT_EQ(t->pcr_mask, (1u << 0) | (1u << 7));
        ASSERT_EQ(t->pcr_bank, PCR_BANK_SHA256);
        ASSERT_EQ(t->primary_alg, 0x0023);
        ASSERT_EQ(t->policy_hash_size, 32);
        ASSERT_EQ(t->policy_hash[0], 0x02);
        ASSERT_EQ(t->policy_hash[31], 0x31);
        ASSERT(!t->pin && !t->salt && !t->srk && !t->unsupported && !t->sealed_pcr_values);
        ASSERT_EQ(t->generation, 0);
        ASSERT_EQ(t->blob_size, 2 + 0x9e + 2 + 0x4e);
        ASSERT_EQ(t->blob[0], 0x00);
        ASSERT_EQ(t->blob[1], 0x9e);

        /* It was sealed on a fresh swtpm: PCR 0 and 7 all zero. */
        ASSERT_EQ(policy_digest_compute(t->pcr_bank, t->pcr_mask, zeros, 64, t->pin, d), 0);
        ASSERT(memcmp(d, t->policy_hash, sizeof(d)) == 0);
        tpm2_token_free(t);
}

static void test_pin_salt_srk_roundtrip(void) {
        /* A PIN token as newer systemd writes it: tpm2_salt, then tpm2_srk. */
        static const char in[] =
                "{\"type\":\"systemd-tpm2\",\"keyslots\":[\"1\"],\"tpm2-blob\":\"" BLOB "\","
                "\"tpm2-pcrs\":[7],\"tpm2-pcr-bank\":\"sha256\",\"tpm2-primary-alg\":\"ecc\","
                "\"tpm2-policy-hash\":\"" HASH "\",\"tpm2-pin\":true,"
                "\"tpm2_salt\":\"" SALT "\",\"tpm2_srk\":\"" SRK "\"}";
        Tpm2Token *t = roundtrip(in);

        ASSERT_EQ(t->keyslot, 1);
        ASSERT(t->pin);
        ASSERT_EQ(t->salt_size, 32);
        for (size_t i = 0; i < 32; i++)
                ASSERT_EQ(t->salt[i], i);
        ASSERT_EQ(t->srk_size, 44);
        ASSERT_EQ(t->srk[0], 0x81);
        ASSERT(t->unsupported == NULL);
        tpm2_token_free(t);
}

static void test_unlockd_fields_roundtrip(void) {
        static const char in[] =
                "{\"type\":\"systemd-tpm2\",\"keyslots\":[\"31\"],\"tpm2-blob\":\"" BLOB "\","
                "\"tpm2-pcrs\":[4,9],\"tpm2-pcr-bank\":\"sha1\",\"tpm2-primary-alg\":\"rsa\","
                "\"tpm2-policy-hash\":\"" HASH "\",\"tpm2-pin\":false,"
                "\"unlockd-pcr-values\":[\"00112233445566778899aabbccddeeff00112233\",\"" Z40 "\"],"
                "\"unlockd-generation\":7}";
        static const char sha256_in[] =
                "{\"type\":\"systemd-tpm2\",\"keyslots\":[\"0\"],\"tpm2-blob\":\"" BLOB "\","
                "\"tpm2-pcrs\":[7],\"tpm2-pcr-bank\":\"sha256\",\"tpm2-primary-alg\":\"ecc\","
                "\"tpm2-policy-hash\":\"" HASH "\",\"tpm2-pin\":true,\"tpm2_srk\":\"" SRK "\","
                "\"unlockd-pcr-values\":[\"ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100\"],"
                "\"unlockd-generation\":4294967295,\"unlockd-proof\":\"" Z64 "\","
                "\"unlockd-predicted\":\"kernel+initrd+cmdline\"}";
        static const char empty_in[] =
                "{\"type\":\"systemd-tpm2\",\"keyslots\":[\"3\"],\"tpm2-blob\":\"" SMALL_BLOB "\","
                "\"tpm2-pcrs\":[],\"tpm2-pcr-bank\":\"sha256\",\"tpm2-primary-alg\":\"ecc\","
                "\"tpm2-policy-hash\":\"" HASH "\",\"tpm2-pin\":false,\"unlockd-pcr-values\":[],"
                "\"unlockd-generation\":1}";
        Tpm2Token *t;

        t = roundtrip(in);
        ASSERT_EQ(t->keyslot, 31);
        ASSERT_EQ(t->pcr_bank, PCR_BANK_SHA1);
        ASSERT_EQ(t->primary_alg, 0x0001);
        ASSERT_EQ(t->generation, 7);
        ASSERT_EQ(t->sealed_pcr_values_size, 40);
        ASSERT_EQ(t->sealed_pcr_values[1], 0x11);
        ASSERT_EQ(t->sealed_pcr_values[20], 0x00);
        tpm2_token_free(t);

        t = roundtrip(sha256_in);
        ASSERT_EQ(t->sealed_pcr_values_size, 32);
        ASSERT_EQ(t->sealed_pcr_values[0], 0xff);
        ASSERT_EQ(t->generation, 4294967295ull);        /* TOKEN_GENERATION_MAX */
        ASSERT(t->has_proof);
        ASSERT_EQ(t->predicted, (1u << PREDICT_KERNEL) | (1u << PREDICT_INITRD) | (1u << PREDICT_CMDLINE));
        tpm2_token_free(t);

        t = roundtrip(empty_in);
        ASSERT_EQ(t->predicted, 0);
        ASSERT_EQ(t->pcr_mask, 0);
        ASSERT(t->sealed_pcr_values != NULL);
        ASSERT_EQ(t->sealed_pcr_values_size, 0);
        tpm2_token_free(t);
}

static void test_format_from_struct(void) {
        /* What tpm2_seal() hands over: bank and algorithm may be left 0. */
        static const char expect[] =
                "{\"type\":\"systemd-tpm2\",\"keyslots\":[\"5\"],\"tpm2-blob\":\"" SMALL_BLOB "\","
                "\"tpm2-pcrs\":[0,7,23],\"tpm2-pcr-bank\":\"sha256\",\"tpm2-primary-alg\":\"ecc\","
                "\"tpm2-policy-hash\":\"" HASH "\",\"tpm2-pin\":false}";
        uint8_t blob[] = { 0, 4, 1, 2, 3, 4, 0, 4, 5, 6, 7, 8 };
        uint8_t hash[32] = { 0x02, 0xe3, 0x64, 0x2b, 0x3e, 0x29, 0xee, 0xcc, 0xff, 0xfd, 0x80,
                             0x31, 0xc0, 0x0a, 0x6f, 0x0a, 0x0f, 0xeb, 0xe5, 0xce, 0xea, 0x2f,
                             0x6e, 0xf6, 0xb0, 0x32, 0x2f, 0xe8, 0x15, 0x98, 0xcf, 0x31 };
        uint8_t values[64] = {};
        Tpm2Token t = {
                .keyslot = 5,
                .blob = blob,
                .blob_size = sizeof(blob),
                .pcr_mask = (1u << 0) | (1u << 7) | (1u << 23),
                .policy_hash = hash,
                .policy_hash_size = sizeof(hash),
        };
        char *json = (char *) 0x1;

        ASSERT_EQ(tpm2_token_format(&t, &json), 0);
        ASSERT_STREQ(json, expect);
        free(json);

        /* Refusals; *ret_json untouched. */
        json = (char *) 0x1;
        t.keyslot = 32;
        ASSERT_EQ(tpm2_token_format(&t, &json), -EINVAL);
        t.keyslot = -1;
        ASSERT_EQ(tpm2_token_format(&t, &json), -EINVAL);
        t.keyslot = 5;
        t.policy_hash_size = 20;
        ASSERT_EQ(tpm2_token_format(&t, &json), -EINVAL);
        t.policy_hash_size = 32;
        t.pcr_bank = 0x0012;
        ASSERT_EQ(tpm2_token_format(&t, &json), -EINVAL);
        t.pcr_bank = 0;
        t.primary_alg = 0x0099;
        ASSERT_EQ(tpm2_token_format(&t, &json), -EINVAL);
        t.primary_alg = 0;
        t.sealed_pcr_values = values;
        t.sealed_pcr_values_size = 64;         /* 3 PCRs need 96 */
        ASSERT_EQ(tpm2_token_format(&t, &json), -EINVAL);
        t.sealed_pcr_values = NULL;
        t.sealed_pcr_values_size = 0;
        t.blob_size = 0;
        ASSERT_EQ(tpm2_token_format(&t, &json), -EINVAL);
        t.blob_size = sizeof(blob);
        t.pcr_mask = 1u << 24;
        ASSERT_EQ(tpm2_token_format(&t, &json), -EINVAL);
        t.pcr_mask = 1;
        t.unsupported = (char *) "tpm2_pcrlock";
        ASSERT_EQ(tpm2_token_format(&t, &json), -EINVAL);
        ASSERT(json == (char *) 0x1);
}

/* The base token of the tables below with one field replaced, removed
 * (value NULL) or added: a malloc()ed JSON text. */
static char *make_token(const char *key, const char *value) {
        static const char *const base[][2] = {
                { "type", "\"systemd-tpm2\"" },
                { "keyslots", "[\"2\"]" },
                { "tpm2-blob", "\"" BLOB "\"" },
                { "tpm2-pcrs", "[0,7]" },
                { "tpm2-pcr-bank", "\"sha256\"" },
                { "tpm2-primary-alg", "\"ecc\"" },
                { "tpm2-policy-hash", "\"" HASH "\"" },
                { "tpm2-pin", "false" },
        };
        size_t size = 1024 + (value ? strlen(value) : 0) + strlen(BLOB), k = 0;
        char *s = malloc(size);
        bool replaced = false;

        ASSERT(s);
        s[k++] = '{';
        for (size_t i = 0; i < ELEMENTSOF(base); i++) {
                const char *v = base[i][1];

                if (streq(base[i][0], key)) {
                        replaced = true;
                        v = value;
                        if (!v)
                                continue;
                }
                k += (size_t) snprintf(s + k, size - k, "%s\"%s\":%s", k > 1 ? "," : "", base[i][0], v);
        }
        if (!replaced)
                k += (size_t) snprintf(s + k, size - k, ",\"%s\":%s", key, value);
        snprintf(s + k, size - k, "}");
        return s;
}

static void test_unsupported(void) {
        static const struct {
                const char *key, *value, *why;
        } cases[] = {
                /* A signed policy needs both its key and its PCRs. */
                { "tpm2_pubkey", "\"LS0tLS1CRUdJTiBQVUJMSUMgS0VZLS0tLS0=\"", "tpm2_pubkey without tpm2_pubkey_pcrs" },
                { "tpm2_pubkey_pcrs", "[11]", "tpm2_pubkey_pcrs without tpm2_pubkey" },
                { "tpm2_pcrlock", "true", "tpm2_pcrlock" },
                { "tpm2-pcr-bank", "\"sm3_256\"", "tpm2-pcr-bank" },
                { "tpm2-primary-alg", "\"ecc521\"", "tpm2-primary-alg" },
                /* Offline-sealed, but no tpm2_srk names the parent of the seed. */
                { "tpm2-blob", "\"AAQBAgMEAAQFBgcIAAMJCQk=\"", "tpm2-blob (import seed) without tpm2_srk" },
                { "tpm2-blob", "[\"AAQBAgMEAAQFBgcIAAMJCQk=\"]", "tpm2-blob (import seed) without tpm2_srk" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char *json = make_token(cases[i].key, cases[i].value), *err = NULL, *out = NULL;
                Tpm2Token *t = NULL;

                if (tpm2_token_parse(json, &t, &err) != 0) {
                        fprintf(stderr, "unsupported case %zu did not parse: %s\n", i, err);
                        abort();
                }
                ASSERT(err == NULL);
                ASSERT_STREQ(t->unsupported, cases[i].why);
                /* Never written back: unlockd could not unseal what it wrote. */
                ASSERT_EQ(tpm2_token_format(t, &out), -EINVAL);
                tpm2_token_free(t);
                free(json);
        }

        /* Signed policy and a bank we do not know, with unlockd values that
         * cannot be sized: parses, unsupported, first reason kept. */
        {
                Tpm2Token *t = NULL;
                ASSERT_EQ(tpm2_token_parse(
                        "{\"type\":\"systemd-tpm2\",\"keyslots\":[\"2\"],\"tpm2-blob\":\"" BLOB "\",\"tpm2-pcrs\":[7],"
                        "\"tpm2-pcr-bank\":\"sm3_256\",\"tpm2-policy-hash\":\"" HASH "\",\"tpm2_pcrlock\":true,"
                        "\"unlockd-pcr-values\":[\"" Z64 "\"]}", &t, NULL), 0);
                ASSERT_STREQ(t->unsupported, "tpm2-pcr-bank");
                ASSERT(t->sealed_pcr_values == NULL);
                tpm2_token_free(t);
        }
}

static void test_supported_variants(void) {
        static const struct {
                const char *key, *value;
        } cases[] = {
                /* Empty or false "newer" fields (v253+ may write them). */
                { "tpm2_pubkey", "\"\"" },
                { "tpm2_pubkey_pcrs", "[]" },
                { "tpm2_pcrlock", "false" },
                { "tpm2_salt", "\"\"" },
                /* Absent optional fields: defaults. */
                { "tpm2-pcr-bank", NULL },
                { "tpm2-primary-alg", NULL },
                { "tpm2-pin", NULL },
                /* As systemd: algorithm names in any case. */
                { "tpm2-pcr-bank", "\"SHA256\"" },
                { "tpm2-primary-alg", "\"RSA\"" },
                /* Unknown fields, of any shape, are ignored. */
                { "future-field", "{\"x\":[1,{\"y\":null}]}" },
                { "tpm2-pcrs", "[7,0,7]" },
                { "keyslots", "[\"02\"]" },
                { "tpm2-policy-hash", "\"02E3642B3E29EECCFFFD8031C00A6F0A0FEBE5CEEA2F6EF6B0322FE81598CF31\"" },
                /* systemd ≥ 256: one shard as a one-element array. */
                { "tpm2-blob", "[\"" BLOB "\"]" },
                { "tpm2-policy-hash", "[\"" HASH "\"]" },
                { "tpm2-blob", "\"AJ4AILdU7VGHpKGXYEUuphw46FO/VYGc/Dh4gMD5lNAyer47ABAPUeFShT9PxSzqnbZN2g32eQvDJP4cn9ExwY/n\\n"
                               "cBcl0GC1t6q1Lx0IQC7TPp+UhJl+U79Co2mCJZsf1HKhRqe7mK0zaZ+zcoooyubY6duFJ9z/j8AL+KKrbveqERecb1D4WibNOBEF\\n"
                               "HjGTRdlSQOAuqY1nzrRhKSfRBABOAAgACwAAABIAIALjZCs+Ke7M//2AMcAKbwoP6+XO6i9u9rAyL+gVmM8xABAAIFEWFKtTwFR1\\n"
                               "sShhBOifJajf9Ejhzjpn8BjbeE0gD29w\"" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char *json = make_token(cases[i].key, cases[i].value), *err = NULL;
                Tpm2Token *t = NULL;

                if (tpm2_token_parse(json, &t, &err) != 0) {
                        fprintf(stderr, "variant %zu (%s) rejected: %s\n", i, cases[i].key, err);
                        abort();
                }
                ASSERT(t->unsupported == NULL);
                ASSERT_EQ(t->keyslot, 2);
                ASSERT_EQ(t->pcr_mask, (1u << 0) | (1u << 7));
                ASSERT_EQ(t->blob_size, 2 + 0x9e + 2 + 0x4e);
                ASSERT_EQ(t->policy_hash[1], 0xe3);
                if (streq(cases[i].key, "tpm2-pcr-bank") && !cases[i].value)
                        ASSERT_EQ(t->pcr_bank, 0);
                if (streq(cases[i].key, "tpm2-primary-alg"))
                        ASSERT_EQ(t->primary_alg, cases[i].value ? 0x0001 : 0);
                if (streq(cases[i].key, "tpm2_salt"))
                        ASSERT(t->salt == NULL);
                tpm2_token_free(t);
                free(json);
        }
}

/* An offline enrollment of systemd 257 (systemd-cryptenroll
 * --tpm2-device-key=srk.pub --tpm2-pcrs=7:sha256=0…0, ECC SRK): TPM2B_PRIVATE
 * (the duplicate), TPM2B_PUBLIC, TPM2B_ENCRYPTED_SECRET (the ephemeral ECC
 * point of the seed). */
#define SEED_BLOB "AGwAIBeADj12SLVLGZEJqVp792r0+SgkBlufiHiWkm4+7iFlDLvl6n8up9pWy/qPiHN2MrhV5oh7qJEfwaiQNeoYxQiNy4slYHSVpEzmcJU0eyFFlYrofq+CtRcx1fZXsCEaKQzLoEAoL2psvd0ATgAIAAsAAAAAACCLVoLYGylDXQjXkngVBhHcflkjsv78zmhKCVd7QBMKiwAQACDowNAD8SsYsim1LsRNdOVPwvqdeNWfrh9CVga40FtLnQBEACBeFuMNjFXLnjjyySbyQAfAPtVmYmw7cSNjsTIRuTjGXgAg0btvYzIP2BpNNtFxZ+vUGMXihnpEhKU/5RElQnQgxio="
#define SEED_HASH "8b5682d81b29435d08d79278150611dc7e5923b2fefcce684a09577b40130a8b"
#define SEED_SRK "gQAAAQAiAAvOU8xEI3ERzeIgbKJAVbB9S50lVXBcr3qySu9CLsiv4AAAAAEAWgAjAAsAAwRyAAAABgCAAEMAEAADABAAIByRSpjGlLZJrSeytVMWLXoSms9HhXSnowe19bx8CnDZACAnjeq+pIQ/nxTRkWfvn72qQYB+vxJ1K6FdehJgI8m07g=="

static void test_import_seed(void) {
        /* As systemd 257 wrote it; the blob as a string and as an array. */
        static const char *const in[] = {
                "{\"type\":\"systemd-tpm2\",\"keyslots\":[\"1\"],\"tpm2-blob\":\"" SEED_BLOB "\","
                "\"tpm2-pcrs\":[7],\"tpm2-pcr-bank\":\"sha256\",\"tpm2-primary-alg\":\"ecc\","
                "\"tpm2-policy-hash\":\"" SEED_HASH "\",\"tpm2_srk\":\"" SEED_SRK "\"}",
                "{\"type\":\"systemd-tpm2\",\"keyslots\":[\"1\"],\"tpm2-blob\":[\"" SEED_BLOB "\"],"
                "\"tpm2-pcrs\":[7],\"tpm2-pcr-bank\":\"sha256\","
                "\"tpm2-policy-hash\":[\"" SEED_HASH "\"],\"tpm2_srk\":\"" SEED_SRK "\"}",
        };
        /* What unlockd writes back: the same blob, systemd v252's field set. */
        static const char out[] =
                "{\"type\":\"systemd-tpm2\",\"keyslots\":[\"1\"],\"tpm2-blob\":\"" SEED_BLOB "\","
                "\"tpm2-pcrs\":[7],\"tpm2-pcr-bank\":\"sha256\",\"tpm2-primary-alg\":\"ecc\","
                "\"tpm2-policy-hash\":\"" SEED_HASH "\",\"tpm2-pin\":false,\"tpm2_srk\":\"" SEED_SRK "\"}";

        for (size_t i = 0; i < ELEMENTSOF(in); i++) {
                Tpm2Token *t = NULL;
                char *err = NULL, *json = NULL;

                if (tpm2_token_parse(in[i], &t, &err) != 0) {
                        fprintf(stderr, "import-seed token %zu rejected: %s\n", i, err);
                        abort();
                }
                ASSERT(t->import_seed);
                ASSERT(t->unsupported == NULL);
                ASSERT_EQ(t->keyslot, 1);
                ASSERT_EQ(t->pcr_mask, 1u << 7);
                /* private 2+0x6c, public 2+0x4e, seed 2+0x44 (an ECC point). */
                ASSERT_EQ(t->blob_size, 2 + 0x6c + 2 + 0x4e + 2 + 0x44);
                ASSERT_EQ(t->blob[2 + 0x6c + 2 + 0x4e + 1], 0x44);
                ASSERT_EQ(t->srk_size, 136);              /* handle, name, type, TPM2B_PUBLIC */
                ASSERT_EQ(t->srk[0], 0x81);
                ASSERT_EQ(t->policy_hash[0], 0x8b);
                ASSERT_EQ(tpm2_token_format(t, &json), 0);
                ASSERT_STREQ(json, out);
                free(json);
                tpm2_token_free(t);
        }

        /* An empty seed is no seed, as for systemd. */
        {
                char *json = make_token("tpm2-blob", "\"AAQBAgMEAAQFBgcIAAA=\"");
                Tpm2Token *t = NULL;

                ASSERT_EQ(tpm2_token_parse(json, &t, NULL), 0);
                ASSERT(!t->import_seed && !t->unsupported);
                ASSERT_EQ(t->blob_size, 14);
                tpm2_token_free(t);
                free(json);
        }
        /* An ordinary blob has none. */
        {
                Tpm2Token *t = NULL;

                ASSERT_EQ(tpm2_token_parse(v252, &t, NULL), 0);
                ASSERT(!t->import_seed);
                tpm2_token_free(t);
        }
}

/* A signed PCR policy (systemd-cryptenroll --tpm2-public-key): parsed and
 * supported (tpm2.c builds the session), never written back. */
static void test_signed_policy(void) {
        static const char json[] =
                "{\"type\":\"systemd-tpm2\",\"keyslots\":[\"1\"],\"tpm2-blob\":\"" BLOB "\","
                "\"tpm2-pcrs\":[7],\"tpm2-pcr-bank\":\"sha256\",\"tpm2-primary-alg\":\"ecc\","
                "\"tpm2-policy-hash\":\"" HASH "\",\"tpm2_pubkey_pcrs\":[11,12],"
                "\"tpm2_pubkey\":\"LS0tLS1CRUdJTiBQVUJMSUMgS0VZLS0tLS0=\"}";
        Tpm2Token *t = NULL;
        char *out = NULL;

        ASSERT_EQ(tpm2_token_parse(json, &t, NULL), 0);
        ASSERT(t->unsupported == NULL);
        ASSERT_EQ(t->pcr_mask, 1u << 7);
        ASSERT_EQ(t->pubkey_pcr_mask, (1u << 11) | (1u << 12));
        ASSERT_EQ(t->pubkey_size, strlen("-----BEGIN PUBLIC KEY-----"));
        ASSERT(memcmp(t->pubkey, "-----BEGIN PUBLIC KEY-----", t->pubkey_size) == 0);
        ASSERT_EQ(tpm2_token_format(t, &out), -EINVAL);
        tpm2_token_free(t);
}

/* The signature JSON systemd-measure writes: the entry for the bank, the
 * PCRs, the key's fingerprint and the policy digest, nothing else. */
static void test_pcr_signature(void) {
        static const uint8_t fp[32] = { 0x8b, 0x86 }, pol[32] = { 0xfd, 0x32 }, other[32] = { 0x7c };
#define FP "8b86000000000000000000000000000000000000000000000000000000000000"
#define POL "fd32000000000000000000000000000000000000000000000000000000000000"
#define OTHER "7c00000000000000000000000000000000000000000000000000000000000000"
        static const char json[] =
                "{\"sha1\":[{\"pcrs\":[11],\"pkfp\":\"" FP "\",\"pol\":\"" POL "\",\"sig\":\"c2hhMQ==\"}],"
                "\"sha256\":[42,{\"pcrs\":\"11\"},{\"pcrs\":[11],\"pkfp\":\"" FP "\",\"pol\":\"" OTHER "\",\"sig\":\"b3RoZXI=\"},"
                "{\"pcrs\":[11,12],\"pkfp\":\"" FP "\",\"pol\":\"" POL "\",\"sig\":\"bWFzaw==\"},"
                "{\"pcrs\":[11],\"pkfp\":\"" OTHER "\",\"pol\":\"" POL "\",\"sig\":\"a2V5\"},"
                "{\"pcrs\":[11],\"pkfp\":\"" FP "\",\"pol\":\"" POL "\",\"sig\":\"cmlnaHQ=\"}]}";
        uint8_t *sig = NULL;
        size_t n = 0;
        char *err = NULL;

        ASSERT_EQ(pcr_signature_find(json, PCR_BANK_SHA256, 1u << 11, fp, sizeof(fp), pol, sizeof(pol), &sig, &n, NULL), 0);
        ASSERT(n == 5 && memcmp(sig, "right", 5) == 0);
        free(sig);
        ASSERT_EQ(pcr_signature_find(json, PCR_BANK_SHA256, 1u << 11, fp, sizeof(fp), other, sizeof(other), &sig, &n, NULL), 0);
        ASSERT(n == 5 && memcmp(sig, "other", 5) == 0);
        free(sig);
        ASSERT_EQ(pcr_signature_find(json, PCR_BANK_SHA256, (1u << 11) | (1u << 12), fp, sizeof(fp), pol, sizeof(pol), &sig, &n, NULL), 0);
        ASSERT(n == 4 && memcmp(sig, "mask", 4) == 0);
        free(sig);
        ASSERT_EQ(pcr_signature_find(json, PCR_BANK_SHA1, 1u << 11, fp, sizeof(fp), pol, sizeof(pol), &sig, &n, NULL), 0);
        ASSERT(n == 4 && memcmp(sig, "sha1", 4) == 0);
        free(sig);
        /* No entry: another key, PCR, bank, digest. */
        ASSERT_EQ(pcr_signature_find(json, PCR_BANK_SHA256, 1u << 11, other, sizeof(other), other, sizeof(other), &sig, &n, NULL), -ENOENT);
        ASSERT_EQ(pcr_signature_find(json, PCR_BANK_SHA256, 1u << 12, fp, sizeof(fp), pol, sizeof(pol), &sig, &n, NULL), -ENOENT);
        ASSERT_EQ(pcr_signature_find(json, PCR_BANK_SHA384, 1u << 11, fp, sizeof(fp), pol, sizeof(pol), &sig, &n, NULL), -ENOENT);
        /* Without "pkfp" an entry is for any key. */
        ASSERT_EQ(pcr_signature_find("{\"sha256\":[{\"pcrs\":[11],\"pol\":\"" POL "\",\"sig\":\"a2V5\"}]}",
                                     PCR_BANK_SHA256, 1u << 11, fp, sizeof(fp), pol, sizeof(pol), &sig, &n, NULL), 0);
        ASSERT(n == 3);
        free(sig);
        /* Malformed: not an object, the bank not an array, a matching
         * entry with a bad signature. */
        ASSERT_EQ(pcr_signature_find("[]", PCR_BANK_SHA256, 1u << 11, fp, 32, pol, 32, &sig, &n, &err), -EBADMSG);
        ASSERT(err != NULL);
        free(err);
        err = NULL;
        ASSERT_EQ(pcr_signature_find("{\"sha256\":{}}", PCR_BANK_SHA256, 1u << 11, fp, 32, pol, 32, &sig, &n, NULL), -EBADMSG);
        ASSERT_EQ(pcr_signature_find("{\"sha256\":[{\"pcrs\":[11],\"pol\":\"" POL "\",\"sig\":\"%%\"}]}",
                                     PCR_BANK_SHA256, 1u << 11, fp, 32, pol, 32, &sig, &n, NULL), -EBADMSG);
        ASSERT_EQ(pcr_signature_find("{\"sha256\":[{\"pcrs\":[11],\"pol\":\"" POL "\",\"sig\":\"\"}]}",
                                     PCR_BANK_SHA256, 1u << 11, fp, 32, pol, 32, &sig, &n, NULL), -EBADMSG);
        ASSERT_EQ(pcr_signature_find("{\"sha256\":[{\"pcrs\":[11],\"pol\":\"" POL "\"}]}",
                                     PCR_BANK_SHA256, 1u << 11, fp, 32, pol, 32, &sig, &n, NULL), -EBADMSG);
        ASSERT_EQ(pcr_signature_find("{\"sha256\":[]} x", PCR_BANK_SHA256, 1u << 11, fp, 32, pol, 32, &sig, &n, NULL), -EBADMSG);
#undef FP
#undef POL
#undef OTHER
}

/* Two shards (a signed policy and pcrlock together, systemd ≥ 256): parsed
 * strictly, skipped with the feature named first, never written back. */
static void test_two_shards(void) {
        static const char json[] =
                "{\"type\":\"systemd-tpm2\",\"keyslots\":[\"1\"],\"tpm2-blob\":[\"" BLOB "\",\"" SEED_BLOB "\"],"
                "\"tpm2-pcrs\":[],\"tpm2-pcr-bank\":\"sha256\",\"tpm2-primary-alg\":\"ecc\","
                "\"tpm2-policy-hash\":[\"" HASH "\",\"" SEED_HASH "\"],\"tpm2_pcrlock\":true,"
                "\"tpm2_pubkey_pcrs\":[11],\"tpm2_pubkey\":\"LS0tLS1CRUdJTiBQVUJMSUMgS0VZLS0tLS0=\","
                "\"tpm2_srk\":\"" SEED_SRK "\"}";
        Tpm2Token *t = NULL;
        char *out = NULL;

        ASSERT_EQ(tpm2_token_parse(json, &t, NULL), 0);
        ASSERT_STREQ(t->unsupported, "two shards (tpm2-blob array: signed policy and pcrlock combined)");
        /* The first shard is the token's blob and policy hash. */
        ASSERT_EQ(t->blob_size, 2 + 0x9e + 2 + 0x4e);
        ASSERT(!t->import_seed);
        ASSERT_EQ(t->policy_hash[0], 0x02);
        ASSERT_EQ(tpm2_token_format(t, &out), -EINVAL);
        tpm2_token_free(t);
}

static char *repeat(const char *head, const char *unit, size_t n, const char *tail) {
        size_t size = strlen(head) + strlen(unit) * n + strlen(tail) + 1, k;
        char *s = malloc(size);

        ASSERT(s);
        k = (size_t) snprintf(s, size, "%s", head);
        for (size_t i = 0; i < n; i++)
                k += (size_t) snprintf(s + k, size - k, "%s", unit);
        snprintf(s + k, size - k, "%s", tail);
        return s;
}

static void expect_bad(const char *what, const char *json) {
        Tpm2Token *t = NULL;
        char *err = NULL;
        int r = tpm2_token_parse(json, &t, &err);

        if (r != -EBADMSG || !err || t) {
                fprintf(stderr, "hostile token \"%s\": r=%d err=%s\n", what, r, err ? err : "(null)");
                abort();
        }
        free(err);
}

static void test_hostile_fields(void) {
        static const struct {
                const char *key, *value;
        } cases[] = {
                { "type", NULL },
                { "type", "42" },
                { "type", "null" },
                { "type", "[\"systemd-tpm2\"]" },
                { "keyslots", NULL },
                { "keyslots", "\"2\"" },
                { "keyslots", "[]" },
                { "keyslots", "[\"2\",\"3\"]" },
                { "keyslots", "[2]" },
                { "keyslots", "[null]" },
                { "keyslots", "[\"-1\"]" },
                { "keyslots", "[\"abc\"]" },
                { "keyslots", "[\"99\"]" },
                { "keyslots", "[\"32\"]" },
                { "keyslots", "[\"2x\"]" },
                { "keyslots", "[\" 2\"]" },
                { "keyslots", "[\"+2\"]" },
                { "keyslots", "[\"\"]" },
                { "keyslots", "[\"002\"]" },
                { "keyslots", "[\"2\\u0000\"]" },
                { "keyslots", "{\"0\":\"2\"}" },
                { "tpm2-blob", NULL },
                { "tpm2-blob", "42" },
                { "tpm2-blob", "null" },
                { "tpm2-blob", "\"\"" },
                { "tpm2-blob", "\"%%%\"" },
                { "tpm2-blob", "\"AJ4AILdU\"" },                         /* truncated */
                { "tpm2-blob", "\"" BLOB "=\"" },                        /* bad padding */
                { "tpm2-blob", "\"AAAAAA==\"" },                         /* empty parts */
                { "tpm2-blob", "\"AAQBAgMEAAA=\"" },                     /* empty public */
                { "tpm2-blob", "\"AAQBAgMEAAUFBgcI\"" },                 /* public does not fit */
                { "tpm2-blob", "\"AAQBAgMEAAQFBgcIAA==\"" },             /* one stray byte */
                { "tpm2-blob", "\"AAQBAgMEAAQFBgcIAAMJCQ==\"" },         /* seed does not fit */
                { "tpm2-blob", "[]" },
                { "tpm2-blob", "[42]" },
                { "tpm2-blob", "[null]" },
                { "tpm2-blob", "[\"\"]" },
                { "tpm2-blob", "[\"AJ4AILdU\"]" },                       /* truncated shard */
                { "tpm2-blob", "[\"" BLOB "\",\"AJ4AILdU\"]" },          /* second shard truncated */
                { "tpm2-blob", "[\"" BLOB "\",\"" BLOB "\"]" },          /* two blobs, one hash */
                { "tpm2-blob", "[\"" BLOB "\",\"" BLOB "\",\"" BLOB "\"]" },   /* three shards */
                { "tpm2-blob", "[[\"" BLOB "\"]]" },
                { "tpm2-blob", "{\"0\":\"" BLOB "\"}" },
                { "tpm2-policy-hash", "[]" },
                { "tpm2-policy-hash", "[42]" },
                { "tpm2-policy-hash", "[\"" HASH "\",\"" HASH "\"]" },  /* two hashes, one blob */
                { "tpm2-policy-hash", "[\"abc\"]" },
                { "tpm2-policy-hash", "[\"" Z64 "x\"]" },
                { "tpm2-policy-hash", "{}" },
                { "tpm2-pcrs", NULL },
                { "tpm2-pcrs", "{\"7\":1}" },
                { "tpm2-pcrs", "\"0+7\"" },
                { "tpm2-pcrs", "7" },
                { "tpm2-pcrs", "null" },
                { "tpm2-pcrs", "[24]" },
                { "tpm2-pcrs", "[-1]" },
                { "tpm2-pcrs", "[\"7\"]" },
                { "tpm2-pcrs", "[7.5]" },
                { "tpm2-pcrs", "[7.0]" },
                { "tpm2-pcrs", "[true]" },
                { "tpm2-pcrs", "[null]" },
                { "tpm2-pcrs", "[[7]]" },
                { "tpm2-pcrs", "[9999999999999999999999]" },
                { "tpm2-pcrs", "[4294967303]" },                         /* 2^32 + 7 */
                { "tpm2-pcrs", "[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,0]" },
                { "tpm2-pcr-bank", "7" },
                { "tpm2-pcr-bank", "null" },
                { "tpm2-pcr-bank", "[\"sha256\"]" },
                { "tpm2-pcr-bank", "\"sha256\\u0000x\"" },
                { "tpm2-primary-alg", "1" },
                { "tpm2-primary-alg", "null" },
                { "tpm2-policy-hash", NULL },
                { "tpm2-policy-hash", "42" },
                { "tpm2-policy-hash", "null" },
                { "tpm2-policy-hash", "\"\"" },
                { "tpm2-policy-hash", "\"0011\"" },
                { "tpm2-policy-hash", "\"" Z40 "\"" },                   /* sha1-sized */
                { "tpm2-policy-hash", "\"" HASH "00\"" },                /* 33 bytes */
                { "tpm2-policy-hash", "\"02e3642b3e29eeccfffd8031c00a6f0a0febe5ceea2f6ef6b0322fe81598cf3\"" },
                { "tpm2-policy-hash", "\"zze3642b3e29eeccfffd8031c00a6f0a0febe5ceea2f6ef6b0322fe81598cf31\"" },
                { "tpm2-policy-hash", "\"AuNkKz4p7sz//YAxwApvCg/r5c7qL272sDIv6BWYzzE=\"" },  /* base64 */
                { "tpm2-pin", "\"yes\"" },
                { "tpm2-pin", "1" },
                { "tpm2-pin", "null" },
                { "tpm2_salt", "\"***\"" },
                { "tpm2_salt", "42" },
                { "tpm2_salt", "null" },
                { "tpm2_salt", "[\"" SALT "\"]" },
                { "tpm2_srk", "42" },
                { "tpm2_srk", "\"gQAAAQ\"" },
                { "tpm2_srk", "true" },
                { "tpm2_pubkey", "42" },
                { "tpm2_pubkey", "\"%%%\"" },
                { "tpm2_pubkey", "null" },
                { "tpm2_pubkey_pcrs", "\"11\"" },
                { "tpm2_pubkey_pcrs", "[24]" },
                { "tpm2_pubkey_pcrs", "[-1]" },
                { "tpm2_pcrlock", "\"true\"" },
                { "tpm2_pcrlock", "1" },
                { "unlockd-pcr-values", "[\"" Z64 "\"]" },               /* 1 value, 2 PCRs */
                { "unlockd-pcr-values", "[\"" Z64 "\",\"" Z64 "\",\"" Z64 "\"]" },
                { "unlockd-pcr-values", "[]" },
                { "unlockd-pcr-values", "\"" Z64 Z64 "\"" },
                { "unlockd-pcr-values", "null" },
                { "unlockd-pcr-values", "[\"" Z64 "\",\"" Z40 "\"]" },   /* sha1 size in a sha256 token */
                { "unlockd-pcr-values", "[\"" Z64 "\",\"" Z64 "00\"]" },
                { "unlockd-pcr-values", "[\"" Z64 "\",\"zz\"]" },
                { "unlockd-pcr-values", "[\"" Z64 "\",42]" },
                { "unlockd-pcr-values", "[\"" Z64 "\",[\"" Z64 "\"]]" },
                { "unlockd-generation", "-1" },
                { "unlockd-generation", "\"1\"" },
                { "unlockd-generation", "1.5" },
                { "unlockd-generation", "null" },
                { "unlockd-generation", "18446744073709551615" },
                { "unlockd-generation", "99999999999999999999999" },
                { "unlockd-generation", "-99999999999999999999999" },
                /* Beyond TOKEN_GENERATION_MAX: the next generation must not overflow. */
                { "unlockd-generation", "4294967296" },
                { "unlockd-generation", "9223372036854775806" },
                { "unlockd-generation", "9007199254740993" },
                { "unlockd-proof", "\"" Z40 "\"" },
                { "unlockd-proof", "\"" Z64 "00\"" },
                { "unlockd-proof", "\"zz" Z64 "\"" },
                { "unlockd-predicted", "42" },
                { "unlockd-predicted", "\"\"" },
                { "unlockd-predicted", "\"shim\"" },
                { "unlockd-predicted", "\"kernel+kernel\"" },
                { "unlockd-predicted", "\"kernel+\"" },
                { "unlockd-predicted", "\"+kernel\"" },
                { "unlockd-predicted", "\"kernel initrd\"" },
                { "unlockd-predicted", "[\"kernel\"]" },
                { "unlockd-proof", "42" },
                { "unlockd-proof", "null" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char *json = make_token(cases[i].key, cases[i].value);
                char what[128];

                snprintf(what, sizeof(what), "%s: %.80s", cases[i].key, cases[i].value ? cases[i].value : "(absent)");
                expect_bad(what, json);
                free(json);
        }
}

static void test_hostile_documents(void) {
        char *s;

        static const char *const bad[] = {
                "",
                " ",
                "null",
                "42",
                "true",
                "[]",
                "\"systemd-tpm2\"",
                "{",
                "}",
                "{\"type\":\"systemd-tpm2\"",
                "{\"type\":\"systemd-tpm2\",}",
                "{\"type\":\"systemd-tpm2\"} trailing",
                "{\"type\":\"systemd-tpm2\"}{\"type\":\"systemd-tpm2\"}",
                "{\"type\":\"systemd-tpm2\"}",
                "{\"type\":\"systemd-tpm2\\u0000\"}",
                "{\"type\":\"systemd-tpm2\",\"x\":\"\xff\xfe\"}",       /* invalid UTF-8 */
                "{\"type\":\"systemd-tpm2\",\"x\":\"\xc0\xaf\"}",       /* overlong '/' */
                "\xef\xbb\xbf{\"type\":\"systemd-tpm2\"}",              /* BOM */
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char what[64];
                snprintf(what, sizeof(what), "document %zu", i);
                expect_bad(what, bad[i]);
        }
        expect_bad("NULL", NULL);

        /* A whole document of the base token minus its end, at every length. */
        {
                size_t n = strlen(v252);
                char *p = malloc(n + 1);
                ASSERT(p);
                for (size_t len = 0; len < n; len++) {
                        memcpy(p, v252, len);
                        p[len] = 0;
                        expect_bad("truncated v252", p);
                }
                free(p);
        }

        /* Deep nesting, at the top and inside an unknown field. */
        s = repeat("", "[", 100000, "");
        expect_bad("deep array", s);
        free(s);
        s = repeat("{\"type\":\"systemd-tpm2\",\"x\":", "[", 64, "");
        expect_bad("deep field", s);
        free(s);
        {
                char *a = repeat("{\"type\":\"systemd-tpm2\",\"keyslots\":[\"2\"],\"tpm2-blob\":\"" BLOB "\","
                                 "\"tpm2-pcrs\":[7],\"tpm2-policy-hash\":\"" HASH "\",\"x\":", "[", 40, "");
                char *b = repeat(a, "]", 40, "}");
                expect_bad("nested garbage", b);
                free(a);
                free(b);
        }

        /* Huge arrays and strings. */
        s = repeat("{\"type\":\"systemd-tpm2\",\"keyslots\":[\"2\"],\"tpm2-blob\":\"" BLOB "\","
                   "\"tpm2-policy-hash\":\"" HASH "\",\"tpm2-pcrs\":[7", ",7", 5000, "]}");
        expect_bad("huge tpm2-pcrs", s);
        free(s);
        s = repeat("{\"type\":\"systemd-tpm2\",\"keyslots\":[\"2\"", ",\"2\"", 5000, "]}");
        expect_bad("huge keyslots", s);
        free(s);
        /* A blob of 6000 bytes: over TOKEN_BLOB_MAX. */
        s = repeat("{\"type\":\"systemd-tpm2\",\"keyslots\":[\"2\"],\"tpm2-pcrs\":[7],"
                   "\"tpm2-policy-hash\":\"" HASH "\",\"tpm2-blob\":\"", "AAAA", 2000, "\"}");
        expect_bad("oversized blob", s);
        free(s);
        /* A blob string far longer than any blob, with white space. */
        s = repeat("{\"type\":\"systemd-tpm2\",\"keyslots\":[\"2\"],\"tpm2-pcrs\":[7],"
                   "\"tpm2-policy-hash\":\"" HASH "\",\"tpm2-blob\":\"", "AAAA\\n", 10000, "\"}");
        expect_bad("long blob string", s);
        free(s);
        s = repeat("{\"type\":\"systemd-tpm2\",\"keyslots\":[\"2\"],\"tpm2-blob\":\"" BLOB "\",\"tpm2-pcrs\":[7],"
                   "\"tpm2-policy-hash\":\"" HASH "\",\"tpm2_salt\":\"", "AAAA", 400, "\"}");
        expect_bad("oversized salt", s);
        free(s);
        /* Larger than TOKEN_JSON_MAX, however valid. */
        s = repeat("{\"type\":\"systemd-tpm2\",\"x\":\"", "x", TOKEN_JSON_MAX, "\"}");
        expect_bad("oversized document", s);
        free(s);
}

/* Random-ish damage to valid tokens: any result is fine but a crash, a
 * leak (valgrind) or an -EBADMSG without a message. */
static void test_mutations(void) {
        static const char subst[] = "\"{}[],:0x\\ -";
        const char *seeds[] = { v252, NULL };
        char *full = make_token("unlockd-pcr-values", "[\"" Z64 "\",\"" Z64 "\"]");
        size_t parsed = 0;

        seeds[1] = full;
        for (size_t k = 0; k < ELEMENTSOF(seeds); k++) {
                size_t n = strlen(seeds[k]);
                char *p = malloc(n + 1);

                ASSERT(p);
                for (size_t pos = 0; pos < n; pos++)
                        for (size_t c = 0; c < sizeof(subst) - 1; c++) {
                                Tpm2Token *t = NULL;
                                char *err = NULL, *out = NULL;
                                int r;

                                memcpy(p, seeds[k], n + 1);
                                p[pos] = subst[c];
                                r = tpm2_token_parse(p, &t, &err);
                                ASSERT(r == 0 || r == -EBADMSG || r == -EMEDIUMTYPE);
                                ASSERT((r == -EBADMSG) == (err != NULL));
                                ASSERT((r == 0) == (t != NULL));
                                if (t && !t->unsupported) {
                                        ASSERT_EQ(tpm2_token_format(t, &out), 0);
                                        free(out);
                                }
                                parsed += r == 0;
                                tpm2_token_free(t);
                                free(err);
                        }
                free(p);
        }
        ASSERT(parsed > 0);
        free(full);
}

static void test_other_types(void) {
        Tpm2Token *t = NULL;
        char *err = NULL;

        ASSERT_EQ(tpm2_token_parse("{\"type\":\"systemd-fido2\",\"keyslots\":[\"1\"]}", &t, &err), -EMEDIUMTYPE);
        ASSERT(t == NULL && err == NULL);
        ASSERT_EQ(tpm2_token_parse("{\"type\":\"systemd-recovery\",\"keyslots\":[\"3\"]}", &t, &err), -EMEDIUMTYPE);
        ASSERT_EQ(tpm2_token_parse("{\"type\":\"\"}", &t, &err), -EMEDIUMTYPE);
        ASSERT_EQ(tpm2_token_parse("{\"type\":\"SYSTEMD-TPM2\"}", &t, &err), -EMEDIUMTYPE);
        ASSERT(t == NULL && err == NULL);
}

static void test_type_and_keyslot(void) {
        static const struct {
                const char *json, *type;
                int slot;
        } good[] = {
                { "{\"type\":\"systemd-recovery\",\"keyslots\":[\"3\"]}", "systemd-recovery", 3 },
                { "{\"type\":\"systemd-tpm2\",\"keyslots\":[\"31\"],\"x\":1}", "systemd-tpm2", 31 },
                { "{\"type\":\"x\",\"keyslots\":[]}", "x", -1 },
                { "{\"type\":\"x\"}", "x", -1 },
                { "{\"type\":\"x\",\"keyslots\":[\"1\",\"2\"]}", "x", -1 },
                { "{\"type\":\"x\",\"keyslots\":[\"abc\"]}", "x", -1 },
                { "{\"type\":\"x\",\"keyslots\":[\"32\"]}", "x", -1 },
                { "{\"type\":\"x\",\"keyslots\":[1]}", "x", -1 },
                { "{\"type\":\"x\",\"keyslots\":\"1\"}", "x", -1 },
        };
        static const char *const bad[] = {
                "{\"keyslots\":[\"1\"]}", "{\"type\":42}", "{\"type\":null}", "[]", "", "{", "\"x\"",
                "{\"type\":\"x\\u0000y\"}",
        };

        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                char *type = NULL;
                int slot = 99;

                ASSERT_EQ(token_get_type_and_keyslot(good[i].json, &type, &slot), 0);
                ASSERT_STREQ(type, good[i].type);
                ASSERT_EQ(slot, good[i].slot);
                free(type);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char *type = NULL;
                int slot = 99;

                ASSERT_EQ(token_get_type_and_keyslot(bad[i], &type, &slot), -EBADMSG);
                ASSERT(type == NULL);
                ASSERT_EQ(slot, 99);
        }
}

static void test_recovery_token(void) {
        char *json = NULL, *type = NULL;
        int slot;

        ASSERT_EQ(recovery_token_format(4, &json), 0);
        ASSERT_STREQ(json, "{\"type\":\"systemd-recovery\",\"keyslots\":[\"4\"]}");
        ASSERT_EQ(token_get_type_and_keyslot(json, &type, &slot), 0);
        ASSERT_STREQ(type, TOKEN_TYPE_RECOVERY);
        ASSERT_EQ(slot, 4);
        free(type);
        free(json);
        ASSERT_EQ(recovery_token_format(0, &json), 0);
        ASSERT_STREQ(json, "{\"type\":\"systemd-recovery\",\"keyslots\":[\"0\"]}");
        free(json);
        ASSERT_EQ(recovery_token_format(31, &json), 0);
        free(json);
        json = NULL;
        ASSERT_EQ(recovery_token_format(32, &json), -EINVAL);
        ASSERT_EQ(recovery_token_format(-1, &json), -EINVAL);
        ASSERT(json == NULL);
}

static void test_pending_token(void) {
        PendingToken p = { .keyslot = 5, .generation = 9, .has_proof = true }, q;
        char *json = NULL, *err = NULL;

        memset(p.proof, 0xab, sizeof(p.proof));
        ASSERT_EQ(pending_token_format(&p, &json), 0);
        ASSERT_EQ(pending_token_parse(json, &q, NULL), 0);
        ASSERT_EQ(q.keyslot, 5);
        ASSERT_EQ(q.generation, 9);
        ASSERT(q.has_proof);
        ASSERT(memcmp(q.proof, p.proof, sizeof(p.proof)) == 0);
        free(json);

        p.has_proof = false;
        ASSERT_EQ(pending_token_format(&p, &json), 0);
        ASSERT_EQ(pending_token_parse(json, &q, NULL), 0);
        ASSERT(!q.has_proof);
        free(json);

        p.generation = (uint64_t) TOKEN_GENERATION_MAX + 1;
        ASSERT_EQ(pending_token_format(&p, &json), -EINVAL);

        ASSERT_EQ(pending_token_parse("{\"type\":\"systemd-tpm2\",\"keyslots\":[\"1\"]}", &q, NULL), -EMEDIUMTYPE);
        static const char *const bad[] = {
                "{\"type\":\"unlockd-pending\",\"keyslots\":[\"1\"]}",
                "{\"type\":\"unlockd-pending\",\"keyslots\":[\"1\"],\"unlockd-generation\":9223372036854775806}",
                "{\"type\":\"unlockd-pending\",\"keyslots\":[\"1\"],\"unlockd-generation\":-1}",
                "{\"type\":\"unlockd-pending\",\"keyslots\":[\"32\"],\"unlockd-generation\":1}",
                "{\"type\":\"unlockd-pending\",\"keyslots\":[\"1\",\"2\"],\"unlockd-generation\":1}",
                "{\"type\":\"unlockd-pending\",\"keyslots\":[\"1\"],\"unlockd-generation\":1,\"unlockd-proof\":\"ab\"}",
                "{\"type\":\"unlockd-pending\",\"keyslots\":[\"1\"],\"unlockd-generation\":1} x",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                ASSERT_EQ(pending_token_parse(bad[i], &q, &err), -EBADMSG);
                free(err);
                err = NULL;
        }
}

int main(void) {
        test_pending_token();
        TEST(test_v252_roundtrip);
        TEST(test_pin_salt_srk_roundtrip);
        TEST(test_unlockd_fields_roundtrip);
        TEST(test_format_from_struct);
        TEST(test_unsupported);
        TEST(test_supported_variants);
        TEST(test_import_seed);
        TEST(test_signed_policy);
        TEST(test_pcr_signature);
        TEST(test_two_shards);
        TEST(test_hostile_fields);
        TEST(test_hostile_documents);
        TEST(test_mutations);
        TEST(test_other_types);
        TEST(test_type_and_keyslot);
        TEST(test_recovery_token);
        return 0;
}
