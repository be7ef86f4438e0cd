/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The pure parts of sealing without the TPM: KDFa and KDFe against vectors
 * computed with Python's hmac/hashlib from the formulas of TPM 2.0 Part 1,
 * the SRK.pub parser on well-formed and malformed public areas, and the
 * --pcrs= value syntax. The TPM's acceptance of the blob is tested in
 * tests/tpm/test-offline-enroll.sh and tests/interop/test-systemd257.sh. */
#include "encoding.h"
#include "macro.h"
#include "tests.h"
#include "tpm2-offline.h"

static void assert_hex(const uint8_t *p, size_t n, const char *hex) {
        char *s = NULL;

        ASSERT(hex_encode(p, n, &s) >= 0);
        ASSERT_STREQ(s, hex);
        free(s);
}

static void test_kdf(void) {
        uint8_t key[32], name[34], z[32], u[32], v[32], out[48];

        for (int i = 0; i < 32; i++) {
                key[i] = (uint8_t) i;
                name[2 + i] = (uint8_t) (100 + i);
                z[i] = (uint8_t) (32 + i);
                u[i] = (uint8_t) (64 + i);
                v[i] = (uint8_t) (96 + i);
        }
        name[0] = 0x00;
        name[1] = 0x0b;
        ASSERT_EQ(offline_kdfa(key, 32, "STORAGE", name, sizeof(name), NULL, 0, out, 128), 0);
        assert_hex(out, 16, "d98939313878365f823837e2ce0286ca");
        ASSERT_EQ(offline_kdfa(key, 32, "INTEGRITY", NULL, 0, NULL, 0, out, 256), 0);
        assert_hex(out, 32, "bacf689f634ece301e1f1b15b072d9c87db6a69585db42b1a0cb8f73ebe2692e");
        /* More than one block, both contexts. */
        ASSERT_EQ(offline_kdfa(key, 32, "X", (const uint8_t *) "ab", 2, (const uint8_t *) "cd", 2, out, 384), 0);
        assert_hex(out, 48, "1096e3d75194316f5e535e5a887a06ccdfed81051152edf292a2795c14769298"
                            "b573ad7ad6259e98555f5f00c210eab2");
        ASSERT_EQ(offline_kdfe(z, 32, "DUPLICATE", u, 32, v, 32, out, 256), 0);
        assert_hex(out, 32, "063d8636c56b00ee10fac08d7ce6f0c4327c5d2d95add7f96141f4379150aa7c");
        ASSERT_EQ(offline_kdfa(key, 32, "X", NULL, 0, NULL, 0, out, 0), -EINVAL);
        ASSERT_EQ(offline_kdfa(key, 32, "X", NULL, 0, NULL, 0, out, 12), -EINVAL);
}

/* A TPM2B_PUBLIC of an ECC P-256 storage key with a point that is not on
 * the curve (parsing does not care; sealing must). */
static size_t ecc_public(uint8_t b[200]) {
        static const uint8_t head[] = {
                0x00, 0x23, 0x00, 0x0b, 0x00, 0x03, 0x04, 0x72, 0x00, 0x00, /* type, nameAlg, attrs, authPolicy */
                0x00, 0x06, 0x00, 0x80, 0x00, 0x43, 0x00, 0x10,             /* AES-128-CFB, scheme NULL */
                0x00, 0x03, 0x00, 0x10,                                     /* P-256, KDF NULL */
        };
        size_t n = 2;

        memcpy(b + n, head, sizeof(head));
        n += sizeof(head);
        for (int c = 0; c < 2; c++) {
                b[n++] = 0;
                b[n++] = 32;
                memset(b + n, 0x11 * (c + 1), 32);
                n += 32;
        }
        b[0] = (uint8_t) ((n - 2) >> 8);
        b[1] = (uint8_t) (n - 2);
        return n;
}

static void test_srk_parse(void) {
        OfflineSrk srk;
        uint8_t b[200], policy[32] = {}, secret[32] = {}, *blob = NULL, *ser = NULL;
        size_t n = ecc_public(b), blob_size, ser_size;
        char *error = NULL;

        ASSERT_EQ(offline_srk_parse(b, n, &srk, NULL), 0);
        ASSERT_EQ(srk.type, OFFLINE_ALG_ECC);
        ASSERT_EQ(srk.sym_bits, 128);
        ASSERT_EQ(srk.ecc_size, 32);
        ASSERT_EQ(srk.name[0], 0x00);
        ASSERT_EQ(srk.name[1], 0x0b);
        ASSERT_EQ(srk.ecc_y[0], 0x22);

        /* tpm2_srk: handle, name, key resource, the public area. */
        ASSERT_EQ(offline_srk_serialize(&srk, OFFLINE_SRK_HANDLE, &ser, &ser_size), 0);
        ASSERT_EQ(ser_size, 4 + 2 + 34 + 4 + n);
        ASSERT(memcmp(ser, "\x81\x00\x00\x01\x00\x22\x00\x0b", 8) == 0);
        ASSERT(memcmp(ser + 4 + 36 + 4, b, n) == 0);
        free(ser);

        /* A point that is not on the curve cannot be sealed to. */
        ASSERT_EQ(offline_seal(&srk, policy, NULL, 0, secret, sizeof(secret), &blob, &blob_size), -EIO);
        ASSERT_EQ(offline_seal(&srk, policy, NULL, 0, secret, 0, &blob, &blob_size), -EINVAL);

        /* Truncated anywhere, or with a byte more: malformed, never a crash. */
        for (size_t i = 0; i < n; i++) {
                uint8_t c[200];
                memcpy(c, b, i);
                c[0] = (uint8_t) ((i - 2) >> 8);
                if (i >= 2)
                        c[1] = (uint8_t) (i - 2);
                ASSERT(offline_srk_parse(c, i, &srk, NULL) < 0);
        }
        b[n] = 0;
        b[1]++;
        ASSERT_EQ(offline_srk_parse(b, n + 1, &srk, &error), -EBADMSG);
        ASSERT(strstr(error, "follow the public area"));
        free(error);
        b[1]--;
        ASSERT_EQ(offline_srk_parse(b, n + 1, &srk, NULL), -EBADMSG);  /* the size field disagrees */

        /* Not a storage key: a signing key, another curve, a KDF scheme, SHA-1 names. */
        struct { size_t off; uint8_t v; const char *what; } bad[] = {
                { 2 + 5, 0x07, "not a storage key" },                   /* restricted|decrypt|sign */
                { 2 + 19, 0x09, "not NIST P-256 or P-384" },
                { 2 + 21, 0x20, "KDF scheme" },
                { 2 + 3, 0x04, "not SHA-256" },
                { 2 + 15, 0x44, "not CFB" },
                { 2 + 1, 0x08, "neither RSA nor ECC" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                uint8_t c[200], old;
                memcpy(c, b, n);
                old = c[bad[i].off];
                c[bad[i].off] = bad[i].v;
                error = NULL;
                ASSERT_EQ(offline_srk_parse(c, n, &srk, &error), -EOPNOTSUPP);
                if (!strstr(error, bad[i].what))
                        fprintf(stderr, "case %zu: %s\n", i, error);
                ASSERT(strstr(error, bad[i].what));
                free(error);
                c[bad[i].off] = old;
        }
}

static void test_pcr_values(void) {
        const char *h7 = "7:sha256=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
        char s[300], *error = NULL;
        uint8_t *values = NULL;
        uint32_t mask;
        uint16_t bank;
        size_t n;
        bool all;

        ASSERT_EQ(pcr_values_from_string(h7, &mask, &bank, &values, &n, &all, NULL), 0);
        ASSERT_EQ(mask, 1u << 7);
        ASSERT_EQ(bank, PCR_BANK_SHA256);
        ASSERT(all);
        ASSERT_EQ(n, 32);
        ASSERT_EQ(values[1], 0x11);
        free(values);

        /* Index order whatever the order given; 0x prefix; ',' or '+'. */
        snprintf(s, sizeof(s), "%s,4:sha256=0x%064x", h7, 5);
        ASSERT_EQ(pcr_values_from_string(s, &mask, &bank, &values, &n, &all, NULL), 0);
        ASSERT_EQ(mask, (1u << 7) | (1u << 4));
        ASSERT_EQ(n, 64);
        ASSERT_EQ(values[31], 5);
        ASSERT_EQ(values[33], 0x11);
        free(values);

        /* Plain lists and missing values. */
        ASSERT_EQ(pcr_values_from_string("7+4", &mask, &bank, &values, &n, &all, NULL), 0);
        ASSERT(!all && !values && bank == 0 && mask == ((1u << 7) | (1u << 4)));
        snprintf(s, sizeof(s), "%s+4:sha256", h7);
        ASSERT_EQ(pcr_values_from_string(s, &mask, &bank, &values, &n, &all, NULL), 0);
        ASSERT(!all && !values && bank == PCR_BANK_SHA256);
        ASSERT_EQ(pcr_values_from_string("", &mask, &bank, &values, &n, &all, NULL), 0);
        ASSERT(mask == 0 && !all);

        /* Refused: short values, two banks, twice the same PCR, no PCR. */
        const char *bad[] = { "7:sha256=0011", "7:sha1=0011223344556677889900112233445566778899+4:sha256",
                              "7:md5=00", "24", "7+7", "x:sha256=00" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                error = NULL;
                ASSERT_EQ(pcr_values_from_string(bad[i], &mask, &bank, &values, &n, &all, &error), -EINVAL);
                ASSERT(error);
                free(error);
        }
        snprintf(s, sizeof(s), "%s+%s", h7, h7);
        ASSERT_EQ(pcr_values_from_string(s, &mask, &bank, &values, &n, &all, &error), -EINVAL);
        ASSERT(strstr(error, "twice"));
        free(error);
}

int main(void) {
        test_kdf();
        test_srk_parse();
        test_pcr_values();
        return 0;
}
