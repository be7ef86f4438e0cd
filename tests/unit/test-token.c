/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "pcr.h"
#include "token.h"
#include "tests.h"

/* A token written by systemd-cryptenroll v252 (PCR 0+7, no PIN). */
static const char v252[] =
        "{\"type\":\"systemd-tpm2\",\"keyslots\":[\"2\"],\"tpm2-blob\":\"AJ4AILdU7VGHpKGXYEUuphw46FO/VYGc/Dh4gMD5lNAyer47ABAPUeFShT9PxSzqnbZN2g32eQvDJP4cn9ExwY/ncBcl0GC1t6q1Lx0IQC7TPp+UhJl+U79Co2mCJZsf1HKhRqe7mK0zaZ+zcoooyubY6duFJ9z/j8AL+KKrbveqERecb1D4WibNOBEFHjGTRdlSQOAuqY1nzrRhKSfRBABOAAgACwAAABIAIALjZCs+Ke7M//2AMcAKbwoP6+XO6i9u9rAyL+gVmM8xABAAIFEWFKtTwFR1sShhBOifJajf9Ejhzjpn8BjbeE0gD29w\","
        "\"tpm2-pcrs\":[0,7],\"tpm2-pcr-bank\":\"sha256\",\"tpm2-primary-alg\":\"ecc\","
        "\"tpm2-policy-hash\":\"02e3642b3e29eeccfffd8031c00a6f0a0febe5ceea2f6ef6b0322fe81598cf31\",\"tpm2-pin\":false}";

#define BLOB "\"AJ4AILdU7VGHpKGXYEUuphw46FO/VYGc/Dh4gMD5lNAyer47ABAPUeFShT9PxSzqnbZN2g32eQvDJP4cn9ExwY/ncBcl0GC1t6q1Lx0IQC7TPp+UhJl+U79Co2mCJZsf1HKhRqe7mK0zaZ+zcoooyubY6duFJ9z/j8AL+KKrbveqERecb1D4WibNOBEFHjGTRdlSQOAuqY1nzrRhKSfRBABOAAgACwAAABIAIALjZCs+Ke7M//2AMcAKbwoP6+XO6i9u9rAyL+gVmM8xABAAIFEWFKtTwFR1sShhBOifJajf9Ejhzjpn8BjbeE0gD29w\""
#define HASH "\"02e3642b3e29eeccfffd8031c00a6f0a0febe5ceea2f6ef6b0322fe81598cf31\""
#define HEAD "{\"type\":\"systemd-tpm2\",\"keyslots\":[\"2\"],\"tpm2-blob\":" BLOB ",\"tpm2-policy-hash\":" HASH

static void test_v252_roundtrip(void) {
        Tpm2Token *t = NULL;
        char *json = NULL, *err = NULL;

        ASSERT_EQ(tpm2_token_parse(v252, &t, &err), 0);
        ASSERT(err == NULL);
        ASSERT_EQ(t->keyslot, 2);
        ASSERT_EQ(t->pcr_mask, (1u << 0) | (1u << 7));
        ASSERT_EQ(t->pcr_bank, PCR_BANK_SHA256);
        ASSERT_EQ(t->primary_alg, 0x0023);
        ASSERT_EQ(t->policy_hash_size, 32);
        ASSERT_EQ(t->policy_hash[0], 0x02);
        ASSERT(!t->pin && !t->salt && !t->srk && !t->unsupported && !t->sealed_pcr_values);
        ASSERT_EQ(t->blob_size, 2 + 0x9e + 2 + 0x4e);
        ASSERT_EQ(tpm2_token_format(t, &json), 0);
        ASSERT_STREQ(json, v252);
        free(json);
        tpm2_token_free(t);
}

static void test_full_roundtrip(void) {
        static const char in[] = HEAD ",\"tpm2-pcrs\":[7],\"tpm2-pcr-bank\":\"sha1\",\"tpm2-primary-alg\":\"rsa\","
                "\"tpm2-pin\":true,\"tpm2_srk\":\"AQIDBA==\",\"tpm2_salt\":\"c2FsdA==\","
                "\"unlockd-pcr-values\":[\"00112233445566778899aabbccddeeff00112233\"],\"unlockd-generation\":7}";
        static const char out[] =
                "{\"type\":\"systemd-tpm2\",\"keyslots\":[\"2\"],\"tpm2-blob\":" BLOB ",\"tpm2-pcrs\":[7],"
                "\"tpm2-pcr-bank\":\"sha1\",\"tpm2-primary-alg\":\"rsa\",\"tpm2-policy-hash\":" HASH ",\"tpm2-pin\":true,"
                "\"tpm2_srk\":\"AQIDBA==\",\"tpm2_salt\":\"c2FsdA==\","
                "\"unlockd-pcr-values\":[\"00112233445566778899aabbccddeeff00112233\"],\"unlockd-generation\":7}";
        Tpm2Token *t = NULL;
        char *json = NULL;

        ASSERT_EQ(tpm2_token_parse(in, &t, NULL), 0);
        ASSERT(t->pin);
        ASSERT_EQ(t->salt_size, 4);
        ASSERT(memcmp(t->salt, "salt", 4) == 0);
        ASSERT_EQ(t->srk_size, 4);
        ASSERT_EQ(t->generation, 7);
        ASSERT_EQ(t->sealed_pcr_values_size, 20);
        ASSERT_EQ(t->sealed_pcr_values[1], 0x11);
        ASSERT_EQ(tpm2_token_format(t, &json), 0);
        ASSERT_STREQ(json, out);
        free(json);
        tpm2_token_free(t);
}

static void test_unsupported(void) {
        static const struct {
                const char *json, *field;
        } cases[] = {
                { HEAD ",\"tpm2-pcrs\":[7],\"tpm2_pubkey\":\"LS0tLS1CRUdJTg==\",\"tpm2_pubkey_pcrs\":[11]}", "tpm2_pubkey" },
                { HEAD ",\"tpm2-pcrs\":[],\"tpm2_pubkey_pcrs\":[11]}", "tpm2_pubkey_pcrs" },
                { HEAD ",\"tpm2-pcrs\":[7],\"tpm2_pcrlock\":true}", "tpm2_pcrlock" },
                { HEAD ",\"tpm2-pcrs\":[7],\"tpm2-pcr-bank\":\"sm3_256\"}", "tpm2-pcr-bank" },
                { HEAD ",\"tpm2-pcrs\":[7],\"tpm2-primary-alg\":\"ecc521\"}", "tpm2-primary-alg" },
                /* An import seed after the blob: offline-sealed. */
                { "{\"type\":\"systemd-tpm2\",\"keyslots\":[\"2\"],\"tpm2-blob\":\"AAEAAAEAAAEA\",\"tpm2-policy-hash\":" HASH ",\"tpm2-pcrs\":[7]}", "tpm2-blob (import seed)" },
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                Tpm2Token *t = NULL;
                ASSERT_EQ(tpm2_token_parse(cases[i].json, &t, NULL), 0);
                ASSERT_STREQ(t->unsupported, cases[i].field);
                tpm2_token_free(t);
        }
        /* Unknown extra fields and empty pubkey fields (v253+) are fine. */
        {
                Tpm2Token *t = NULL;
                ASSERT_EQ(tpm2_token_parse(HEAD ",\"tpm2-pcrs\":[7],\"tpm2_pubkey_pcrs\":[],\"future-field\":{\"x\":[1]}}", &t, NULL), 0);
                ASSERT(t->unsupported == NULL);
                tpm2_token_free(t);
        }
}

static void test_hostile(void) {
        char huge_pcrs[4096], big_blob[16384], deep[512];
        size_t k;

        k = (size_t) snprintf(huge_pcrs, sizeof(huge_pcrs), HEAD ",\"tpm2-pcrs\":[");
        for (int i = 0; i < 200; i++)
                k += (size_t) snprintf(huge_pcrs + k, sizeof(huge_pcrs) - k, "%s7", i ? "," : "");
        snprintf(huge_pcrs + k, sizeof(huge_pcrs) - k, "]}");

        /* A blob of 6000 bytes (base64 'A'), over TOKEN_BLOB_MAX. */
        k = (size_t) snprintf(big_blob, sizeof(big_blob), "{\"type\":\"systemd-tpm2\",\"keyslots\":[\"2\"],\"tpm2-pcrs\":[7],\"tpm2-policy-hash\":" HASH ",\"tpm2-blob\":\"");
        for (int i = 0; i < 8000; i++)
                big_blob[k++] = 'A';
        snprintf(big_blob + k, sizeof(big_blob) - k, "\"}");

        k = 0;
        for (int i = 0; i < 100; i++)
                deep[k++] = '[';
        deep[k] = 0;

        const char *bad[] = {
                "",
                "null",
                "[]",
                "\"systemd-tpm2\"",
                "{",
                "{\"type\":\"systemd-tpm2\"",
                deep,
                "{\"type\":42}",
                "{\"type\":\"systemd-tpm2\"}",
                "{\"type\":\"systemd-tpm2\",\"keyslots\":[\"2\",\"3\"],\"tpm2-blob\":" BLOB ",\"tpm2-pcrs\":[7],\"tpm2-policy-hash\":" HASH "}",
                "{\"type\":\"systemd-tpm2\",\"keyslots\":[],\"tpm2-blob\":" BLOB ",\"tpm2-pcrs\":[7],\"tpm2-policy-hash\":" HASH "}",
                "{\"type\":\"systemd-tpm2\",\"keyslots\":[2],\"tpm2-blob\":" BLOB ",\"tpm2-pcrs\":[7],\"tpm2-policy-hash\":" HASH "}",
                "{\"type\":\"systemd-tpm2\",\"keyslots\":[\"-1\"],\"tpm2-blob\":" BLOB ",\"tpm2-pcrs\":[7],\"tpm2-policy-hash\":" HASH "}",
                "{\"type\":\"systemd-tpm2\",\"keyslots\":[\"abc\"],\"tpm2-blob\":" BLOB ",\"tpm2-pcrs\":[7],\"tpm2-policy-hash\":" HASH "}",
                "{\"type\":\"systemd-tpm2\",\"keyslots\":[\"99\"],\"tpm2-blob\":" BLOB ",\"tpm2-pcrs\":[7],\"tpm2-policy-hash\":" HASH "}",
                "{\"type\":\"systemd-tpm2\",\"keyslots\":[\"2x\"],\"tpm2-blob\":" BLOB ",\"tpm2-pcrs\":[7],\"tpm2-policy-hash\":" HASH "}",
                "{\"type\":\"systemd-tpm2\",\"keyslots\":\"2\",\"tpm2-blob\":" BLOB ",\"tpm2-pcrs\":[7],\"tpm2-policy-hash\":" HASH "}",
                HEAD "}",                                               /* no tpm2-pcrs */
                HEAD ",\"tpm2-pcrs\":[24]}",
                HEAD ",\"tpm2-pcrs\":[-1]}",
                HEAD ",\"tpm2-pcrs\":[\"7\"]}",
                HEAD ",\"tpm2-pcrs\":[7.5]}",
                HEAD ",\"tpm2-pcrs\":{\"7\":1}}",
                HEAD ",\"tpm2-pcrs\":[9999999999999999999999]}",
                huge_pcrs,
                HEAD ",\"tpm2-pcrs\":[7],\"tpm2-pcr-bank\":7}",
                HEAD ",\"tpm2-pcrs\":[7],\"tpm2-pin\":\"yes\"}",
                HEAD ",\"tpm2-pcrs\":[7],\"tpm2_salt\":\"***\"}",
                HEAD ",\"tpm2-pcrs\":[7],\"tpm2_srk\":42}",
                HEAD ",\"tpm2-pcrs\":[7],\"unlockd-pcr-values\":[\"00\"]}",
                HEAD ",\"tpm2-pcrs\":[7],\"unlockd-pcr-values\":[]}",
                HEAD ",\"tpm2-pcrs\":[7],\"unlockd-pcr-values\":\"00\"}",
                HEAD ",\"tpm2-pcrs\":[7],\"unlockd-generation\":-1}",
                HEAD ",\"tpm2-pcrs\":[7],\"unlockd-generation\":\"1\"}",
                "{\"type\":\"systemd-tpm2\",\"keyslots\":[\"2\"],\"tpm2-pcrs\":[7],\"tpm2-policy-hash\":" HASH "}",       /* no blob */
                "{\"type\":\"systemd-tpm2\",\"keyslots\":[\"2\"],\"tpm2-blob\":\"%%%\",\"tpm2-pcrs\":[7],\"tpm2-policy-hash\":" HASH "}",
                "{\"type\":\"systemd-tpm2\",\"keyslots\":[\"2\"],\"tpm2-blob\":\"AJ4AILdU\",\"tpm2-pcrs\":[7],\"tpm2-policy-hash\":" HASH "}", /* truncated */
                "{\"type\":\"systemd-tpm2\",\"keyslots\":[\"2\"],\"tpm2-blob\":\"AAAAAA==\",\"tpm2-pcrs\":[7],\"tpm2-policy-hash\":" HASH "}", /* zero sizes */
                "{\"type\":\"systemd-tpm2\",\"keyslots\":[\"2\"],\"tpm2-blob\":\"AAEAAAEAAA==\",\"tpm2-pcrs\":[7],\"tpm2-policy-hash\":" HASH "}", /* trailing byte */
                big_blob,
                "{\"type\":\"systemd-tpm2\",\"keyslots\":[\"2\"],\"tpm2-blob\":" BLOB ",\"tpm2-pcrs\":[7]}",                  /* no hash */
                "{\"type\":\"systemd-tpm2\",\"keyslots\":[\"2\"],\"tpm2-blob\":" BLOB ",\"tpm2-pcrs\":[7],\"tpm2-policy-hash\":\"0011\"}",
                "{\"type\":\"systemd-tpm2\",\"keyslots\":[\"2\"],\"tpm2-blob\":" BLOB ",\"tpm2-pcrs\":[7],\"tpm2-policy-hash\":\"zz\"}",
                "{\"type\":\"systemd-tpm2\",\"keyslots\":[\"2\"],\"tpm2-blob\":" BLOB ",\"tpm2-pcrs\":[7],\"tpm2-policy-hash\":" HASH "} trailing",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                Tpm2Token *t = NULL;
                char *err = NULL;
                int r = tpm2_token_parse(bad[i], &t, &err);

                if (r != -EBADMSG || !err) {
                        fprintf(stderr, "hostile token %zu: r=%d err=%s\n", i, r, err ? err : "(null)");
                        abort();
                }
                ASSERT(t == NULL);
                free(err);
        }
}

static void test_other_types(void) {
        Tpm2Token *t = NULL;
        char *type = NULL, *json = NULL;
        int slot;

        ASSERT_EQ(tpm2_token_parse("{\"type\":\"systemd-fido2\",\"keyslots\":[\"1\"]}", &t, NULL), -EMEDIUMTYPE);
        ASSERT_EQ(token_get_type_and_keyslot("{\"type\":\"systemd-recovery\",\"keyslots\":[\"3\"]}", &type, &slot), 0);
        ASSERT_STREQ(type, "systemd-recovery");
        ASSERT_EQ(slot, 3);
        free(type);
        ASSERT_EQ(token_get_type_and_keyslot("{\"type\":\"x\",\"keyslots\":[]}", &type, &slot), 0);
        ASSERT_EQ(slot, -1);
        free(type);
        ASSERT_EQ(token_get_type_and_keyslot("{\"keyslots\":[\"1\"]}", &type, &slot), -EBADMSG);
        ASSERT_EQ(recovery_token_format(4, &json), 0);
        ASSERT_STREQ(json, "{\"type\":\"systemd-recovery\",\"keyslots\":[\"4\"]}");
        free(json);
        ASSERT_EQ(recovery_token_format(32, &json), -EINVAL);
}

int main(void) {
        TEST(test_v252_roundtrip);
        TEST(test_full_roundtrip);
        TEST(test_unsupported);
        TEST(test_hostile);
        TEST(test_other_types);
        return 0;
}
