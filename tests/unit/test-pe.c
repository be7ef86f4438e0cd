/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* pe_authenticode_digest() on small crafted images: the ranges it hashes
 * (recomputed here from fixed offsets) and the malformed images it must
 * reject. The real binaries are test-pe-authenticode.py's. */
#include <openssl/evp.h>

#include "macro.h"
#include "pcr.h"
#include "pe.h"
#include "tests.h"

/* A PE32+ image: DOS header, "PE\0\0" at 0x40, COFF header, a 240-byte
 * optional header (16 data directories), 2 section headers, headers padded
 * to 0x200; section A at 0x200 (0x200 bytes), section B at 0x400 (0x200),
 * then 0x18 bytes of trailing data. */
#define PE_OFF      0x40
#define OPT_OFF     (PE_OFF + 24)
#define OPT_SIZE    240
#define CHECKSUM    (OPT_OFF + 64)
#define N_DD        (OPT_OFF + 108)
#define CERT_DIR    (OPT_OFF + 112 + 4 * 8)
#define SECT_OFF    (OPT_OFF + OPT_SIZE)
#define HEADERS     0x200
#define IMAGE_SIZE  (0x600 + 0x18)
#define BIG         (IMAGE_SIZE + 0x400)

static void put16(uint8_t *p, uint16_t v) {
        p[0] = (uint8_t) v;
        p[1] = (uint8_t) (v >> 8);
}

static void put32(uint8_t *p, uint32_t v) {
        for (unsigned i = 0; i < 4; i++)
                p[i] = (uint8_t) (v >> (8 * i));
}

static void section(uint8_t *img, unsigned i, uint32_t raw_ptr, uint32_t raw_size) {
        uint8_t *s = img + SECT_OFF + 40 * i;

        memcpy(s, i == 0 ? ".text\0\0\0" : ".data\0\0\0", 8);
        put32(s + 8, raw_size);                 /* VirtualSize */
        put32(s + 12, 0x1000 * (i + 1));        /* VirtualAddress */
        put32(s + 16, raw_size);
        put32(s + 20, raw_ptr);
}

static void make_image(uint8_t img[BIG]) {
        memset(img, 0, BIG);
        for (size_t i = 0; i < IMAGE_SIZE; i++)
                img[i] = (uint8_t) (i * 31 + 7);
        memset(img, 0, HEADERS);
        img[0] = 'M';
        img[1] = 'Z';
        put32(img + 0x3c, PE_OFF);
        memcpy(img + PE_OFF, "PE\0\0", 4);
        put16(img + PE_OFF + 4, 0x8664);        /* Machine */
        put16(img + PE_OFF + 6, 2);             /* NumberOfSections */
        put16(img + PE_OFF + 20, OPT_SIZE);
        put16(img + OPT_OFF, 0x20b);
        put32(img + OPT_OFF + 60, HEADERS);
        put32(img + CHECKSUM, 0x12345678);
        put32(img + N_DD, 16);
        /* Non-zero bytes around the fields that are skipped, so that a
         * range off by one shows. */
        for (unsigned i = OPT_OFF + 68; i < OPT_OFF + 108; i++)
                img[i] = (uint8_t) i;
        for (unsigned i = OPT_OFF + 112; i < SECT_OFF; i++)
                img[i] = (uint8_t) (i ^ 0x5a);
        put32(img + CERT_DIR, 0);
        put32(img + CERT_DIR + 4, 0);
        section(img, 0, 0x200, 0x200);
        section(img, 1, 0x400, 0x200);
        for (unsigned i = SECT_OFF + 80; i < HEADERS; i++)
                img[i] = (uint8_t) (i * 3);
}

typedef struct Range {
        size_t from, to;
} Range;

static void hash_ranges(const uint8_t *img, const Range *r, size_t n, uint8_t ret[32]) {
        EVP_MD_CTX *c = EVP_MD_CTX_new();
        unsigned len;

        ASSERT(c);
        ASSERT(EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1);
        for (size_t i = 0; i < n; i++)
                ASSERT(EVP_DigestUpdate(c, img + r[i].from, r[i].to - r[i].from) == 1);
        ASSERT(EVP_DigestFinal_ex(c, ret, &len) == 1);
        ASSERT_EQ(len, 32);
        EVP_MD_CTX_free(c);
}

static int digest(const uint8_t *img, size_t size, uint8_t ret[32]) {
        return pe_authenticode_digest(img, size, PCR_BANK_SHA256, ret);
}

static void test_ranges(void) {
        static uint8_t img[BIG];
        uint8_t d[32], want[32];
        const Range r[] = {
                { 0, CHECKSUM }, { CHECKSUM + 4, CERT_DIR }, { CERT_DIR + 8, HEADERS },
                { 0x200, 0x400 }, { 0x400, 0x600 }, { 0x600, IMAGE_SIZE },
        };

        make_image(img);
        hash_ranges(img, r, ELEMENTSOF(r), want);
        ASSERT_EQ(digest(img, IMAGE_SIZE, d), 32);
        ASSERT(memcmp(d, want, 32) == 0);

        /* The checksum and the certificate table entry are not hashed… */
        put32(img + CHECKSUM, 0xdeadbeef);
        ASSERT_EQ(digest(img, IMAGE_SIZE, d), 32);
        ASSERT(memcmp(d, want, 32) == 0);

        /* …nor the certificate table (at the end, after padding to 8 bytes,
         * as a signer appends it: the padding is hashed, as trailing data). */
        put32(img + CERT_DIR, 0x620);
        put32(img + CERT_DIR + 4, 0x40);
        memset(img + IMAGE_SIZE, 0, 0x620 - IMAGE_SIZE);
        for (unsigned i = 0x620; i < 0x660; i++)
                img[i] = (uint8_t) (i * 13);
        {
                const Range rs[] = {
                        { 0, CHECKSUM }, { CHECKSUM + 4, CERT_DIR }, { CERT_DIR + 8, HEADERS },
                        { 0x200, 0x600 }, { 0x600, 0x620 },
                };
                uint8_t want_signed[32];

                hash_ranges(img, rs, ELEMENTSOF(rs), want_signed);
                ASSERT_EQ(digest(img, 0x660, d), 32);
                ASSERT(memcmp(d, want_signed, 32) == 0);
                img[0x650] ^= 1;        /* the signature itself changes nothing */
                ASSERT_EQ(digest(img, 0x660, d), 32);
                ASSERT(memcmp(d, want_signed, 32) == 0);
        }

        /* Any other byte does. */
        make_image(img);
        img[0x333] ^= 1;
        ASSERT_EQ(digest(img, IMAGE_SIZE, d), 32);
        ASSERT(memcmp(d, want, 32) != 0);
        make_image(img);
        img[OPT_OFF + 70] ^= 1;
        ASSERT_EQ(digest(img, IMAGE_SIZE, d), 32);
        ASSERT(memcmp(d, want, 32) != 0);
}

static void test_layout(void) {
        static uint8_t img[BIG];
        uint8_t d[32], want[32];

        /* Sections are hashed in file order, whatever the table's order. */
        make_image(img);
        section(img, 0, 0x400, 0x200);
        section(img, 1, 0x200, 0x200);
        {
                const Range r[] = {
                        { 0, CHECKSUM }, { CHECKSUM + 4, CERT_DIR }, { CERT_DIR + 8, HEADERS },
                        { 0x200, 0x400 }, { 0x400, 0x600 }, { 0x600, IMAGE_SIZE },
                };
                hash_ranges(img, r, ELEMENTSOF(r), want);
        }
        ASSERT_EQ(digest(img, IMAGE_SIZE, d), 32);
        ASSERT(memcmp(d, want, 32) == 0);

        /* A section without raw data is skipped, wherever it points. */
        make_image(img);
        section(img, 1, 0x7fffffff, 0);
        {
                const Range r[] = {
                        { 0, CHECKSUM }, { CHECKSUM + 4, CERT_DIR }, { CERT_DIR + 8, HEADERS },
                        { 0x200, 0x400 }, { 0x400, IMAGE_SIZE },
                };
                hash_ranges(img, r, ELEMENTSOF(r), want);
        }
        ASSERT_EQ(digest(img, IMAGE_SIZE, d), 32);
        ASSERT(memcmp(d, want, 32) == 0);

        /* A gap between sections: the trailing data starts where the count
         * of bytes hashed says (SizeOfHeaders + the raw sizes), as the
         * firmware counts, not at the end of the last section. */
        make_image(img);
        section(img, 1, 0x480, 0x180);
        {
                const Range r[] = {
                        { 0, CHECKSUM }, { CHECKSUM + 4, CERT_DIR }, { CERT_DIR + 8, HEADERS },
                        { 0x200, 0x400 }, { 0x480, 0x600 }, { 0x580, IMAGE_SIZE },
                };
                hash_ranges(img, r, ELEMENTSOF(r), want);
        }
        ASSERT_EQ(digest(img, IMAGE_SIZE, d), 32);
        ASSERT(memcmp(d, want, 32) == 0);

        /* NumberOfRvaAndSizes ≤ 4: no certificate table entry to skip. */
        make_image(img);
        put32(img + N_DD, 4);
        {
                const Range r[] = {
                        { 0, CHECKSUM }, { CHECKSUM + 4, HEADERS }, { 0x200, IMAGE_SIZE },
                };
                hash_ranges(img, r, ELEMENTSOF(r), want);
        }
        ASSERT_EQ(digest(img, IMAGE_SIZE, d), 32);
        ASSERT(memcmp(d, want, 32) == 0);

        /* PE32: the data directory starts 16 bytes earlier. */
        make_image(img);
        put16(img + OPT_OFF, 0x10b);
        put32(img + OPT_OFF + 92, 16);
        put32(img + OPT_OFF + 96 + 32, 0);
        put32(img + OPT_OFF + 96 + 36, 0);
        {
                const Range r[] = {
                        { 0, CHECKSUM }, { CHECKSUM + 4, OPT_OFF + 96 + 32 }, { OPT_OFF + 96 + 40, HEADERS },
                        { 0x200, IMAGE_SIZE },
                };
                hash_ranges(img, r, ELEMENTSOF(r), want);
        }
        ASSERT_EQ(digest(img, IMAGE_SIZE, d), 32);
        ASSERT(memcmp(d, want, 32) == 0);

        /* Every bank's hash. */
        make_image(img);
        ASSERT_EQ(pe_authenticode_digest(img, IMAGE_SIZE, PCR_BANK_SHA1, d), 20);
        {
                uint8_t d512[64];
                ASSERT_EQ(pe_authenticode_digest(img, IMAGE_SIZE, PCR_BANK_SHA384, d512), 48);
                ASSERT_EQ(pe_authenticode_digest(img, IMAGE_SIZE, PCR_BANK_SHA512, d512), 64);
        }
        ASSERT_EQ(pe_authenticode_digest(img, IMAGE_SIZE, 0x0012 /* SM3 */, d), -EOPNOTSUPP);
}

static void expect_bad(const uint8_t *img, size_t size, const char *what) {
        uint8_t d[32];
        int r = digest(img, size, d);

        if (r != -EBADMSG) {
                fprintf(stderr, "%s: got %d, want -EBADMSG\n", what, r);
                abort();
        }
}

static void test_rejected(void) {
        static uint8_t img[BIG];
        uint8_t d[32];

        /* Every truncation: up to the end of the last section it is
         * malformed; after it, only the trailing data is shorter. */
        make_image(img);
        for (size_t n = 0; n < 0x600; n++)
                expect_bad(img, n, "truncated");
        for (size_t n = 0x600; n <= IMAGE_SIZE; n++)
                ASSERT_EQ(digest(img, n, d), 32);
        ASSERT_EQ(pe_authenticode_digest(NULL, 0, PCR_BANK_SHA256, d), -EBADMSG);

        make_image(img);
        img[1] = 'X';
        expect_bad(img, IMAGE_SIZE, "no MZ");
        make_image(img);
        img[PE_OFF + 1] = 'X';
        expect_bad(img, IMAGE_SIZE, "no PE signature");
        make_image(img);
        put16(img + OPT_OFF, 0x107);
        expect_bad(img, IMAGE_SIZE, "ROM magic");
        make_image(img);
        put32(img + 0x3c, 0xfffffff0);
        expect_bad(img, IMAGE_SIZE, "e_lfanew out of the file");

        /* Huge counts. */
        make_image(img);
        put16(img + PE_OFF + 6, 0xffff);
        expect_bad(img, IMAGE_SIZE, "65535 sections");
        make_image(img);
        put16(img + PE_OFF + 6, PE_SECTIONS_MAX + 1);
        put32(img + OPT_OFF + 60, 0x10000);
        expect_bad(img, IMAGE_SIZE, "97 sections");
        make_image(img);
        put32(img + N_DD, 0xffffffff);
        expect_bad(img, IMAGE_SIZE, "NumberOfRvaAndSizes 2^32-1");
        make_image(img);
        put32(img + N_DD, 17);
        expect_bad(img, IMAGE_SIZE, "more data directories than the optional header holds");
        make_image(img);
        put16(img + PE_OFF + 20, 100);
        expect_bad(img, IMAGE_SIZE, "optional header too short for its data directory");
        make_image(img);
        put16(img + PE_OFF + 20, 0xffff);
        expect_bad(img, IMAGE_SIZE, "optional header beyond the file");

        /* Headers and sections out of the file or overlapping. */
        make_image(img);
        put32(img + OPT_OFF + 60, 0x100);
        expect_bad(img, IMAGE_SIZE, "section table beyond SizeOfHeaders");
        make_image(img);
        put32(img + OPT_OFF + 60, 0xffffffff);
        expect_bad(img, IMAGE_SIZE, "SizeOfHeaders beyond the file");
        make_image(img);
        section(img, 1, 0x400, 0xffffffff);
        expect_bad(img, IMAGE_SIZE, "SizeOfRawData 2^32-1");
        make_image(img);
        section(img, 1, 0xffffffff, 0x200);
        expect_bad(img, IMAGE_SIZE, "PointerToRawData 2^32-1");
        make_image(img);
        section(img, 1, 0x300, 0x200);
        expect_bad(img, IMAGE_SIZE, "overlapping sections");
        make_image(img);
        section(img, 1, 0x200, 0x200);
        expect_bad(img, IMAGE_SIZE, "the same section twice");
        make_image(img);
        section(img, 0, 0x100, 0x200);
        section(img, 1, 0x300, 0x200);
        expect_bad(img, IMAGE_SIZE, "a section in the headers");

        /* The certificate table anywhere but at the end, after the sections. */
        make_image(img);
        put32(img + CERT_DIR, 0x600);
        put32(img + CERT_DIR + 4, 0x10);
        expect_bad(img, IMAGE_SIZE, "certificate table not at the end");
        make_image(img);
        put32(img + CERT_DIR, 0x500);
        put32(img + CERT_DIR + 4, IMAGE_SIZE - 0x500);
        expect_bad(img, IMAGE_SIZE, "certificate table over a section");
        make_image(img);
        put32(img + CERT_DIR, 0xfffffff0);
        put32(img + CERT_DIR + 4, 0x20);
        expect_bad(img, IMAGE_SIZE, "certificate table wrapping around");
        make_image(img);
        put32(img + CERT_DIR, 0x600);
        put32(img + CERT_DIR + 4, 0xffffffff);
        expect_bad(img, IMAGE_SIZE, "certificate table larger than the file");

        ASSERT_EQ(pe_authenticode_digest(img, (size_t) PE_IMAGE_SIZE_MAX + 1, PCR_BANK_SHA256, d), -EFBIG);
}

int main(void) {
        TEST(test_ranges);
        TEST(test_layout);
        TEST(test_rejected);
        return 0;
}
