/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <string.h>

#include "eventlog.h"
#include "macro.h"
#include "pe.h"

/* Offsets (PE Format, "Optional Header"). The optional header follows the
 * 4-byte signature and the 20-byte COFF header. */
#define DOS_E_LFANEW            0x3c
#define COFF_HEADER_SIZE        20
#define COFF_NUMBER_OF_SECTIONS 2
#define COFF_SIZE_OF_OPT_HEADER 16
#define OPT_MAGIC               0
#define OPT_SIZE_OF_HEADERS     60
#define OPT_CHECKSUM            64
#define OPT_MAGIC_PE32          0x10b
#define OPT_MAGIC_PE32PLUS      0x20b
#define SECTION_HEADER_SIZE     40
#define SECTION_SIZE_OF_RAW     16
#define SECTION_POINTER_TO_RAW  20
#define DATA_DIR_SECURITY       4

typedef struct Range {
        uint64_t offset;
        uint64_t size;
} Range;

static uint16_t le16(const uint8_t *p) {
        return (uint16_t) (p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p) {
        return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

static void evp_md_ctx_freep(EVP_MD_CTX **c) {
        EVP_MD_CTX_free(*c);
}

static int hash_range(EVP_MD_CTX *c, const uint8_t *image, uint64_t from, uint64_t to) {
        if (to <= from)
                return 0;
        return EVP_DigestUpdate(c, image + from, (size_t) (to - from)) == 1 ? 0 : -ENOMEM;
}

/* The headers an image is read by. */
typedef struct PeHeaders {
        uint64_t pe;            /* "PE\0\0" */
        uint64_t opt;           /* the optional header */
        uint64_t dd;            /* the data directory, from opt */
        uint64_t n_dd;
        uint64_t headers;       /* SizeOfHeaders */
        uint64_t sect;          /* the section table */
        unsigned n_sections;
        uint64_t cert_off, cert_size;   /* the certificate table (size 0: none) */
} PeHeaders;

/* Reads and checks the DOS, COFF and optional headers: all arithmetic is in
 * 64 bits on values read as 32 bits at most, and every offset is compared
 * with size before it is read; the section table lies within the headers,
 * the certificate table within the file. */
static int pe_headers(const uint8_t *p, size_t size, PeHeaders *ret) {
        PeHeaders h = {};
        uint64_t opt_size;
        uint16_t magic;

        if (size > PE_IMAGE_SIZE_MAX)
                return -EFBIG;
        if (size < DOS_E_LFANEW + 4 || p[0] != 'M' || p[1] != 'Z')
                return -EBADMSG;
        h.pe = le32(p + DOS_E_LFANEW);
        h.opt = h.pe + 4 + COFF_HEADER_SIZE;
        if (h.opt + OPT_CHECKSUM + 4 > size || memcmp(p + h.pe, "PE\0\0", 4) != 0)
                return -EBADMSG;
        h.n_sections = le16(p + h.pe + 4 + COFF_NUMBER_OF_SECTIONS);
        opt_size = le16(p + h.pe + 4 + COFF_SIZE_OF_OPT_HEADER);
        magic = le16(p + h.opt + OPT_MAGIC);
        if (magic == OPT_MAGIC_PE32)
                h.dd = 96;
        else if (magic == OPT_MAGIC_PE32PLUS)
                h.dd = 112;
        else
                return -EBADMSG;
        /* NumberOfRvaAndSizes is the last field before the data directory. */
        if (opt_size < h.dd || h.opt + opt_size > size)
                return -EBADMSG;
        h.n_dd = le32(p + h.opt + h.dd - 4);
        if (h.n_dd > (opt_size - h.dd) / 8 || h.n_sections > PE_SECTIONS_MAX)
                return -EBADMSG;
        /* The headers, the section table included, end at SizeOfHeaders. */
        h.headers = le32(p + h.opt + OPT_SIZE_OF_HEADERS);
        h.sect = h.opt + opt_size;
        if (h.sect + (uint64_t) h.n_sections * SECTION_HEADER_SIZE > h.headers || h.headers > size)
                return -EBADMSG;
        if (h.n_dd > DATA_DIR_SECURITY) {
                h.cert_off = le32(p + h.opt + h.dd + DATA_DIR_SECURITY * 8);
                h.cert_size = le32(p + h.opt + h.dd + DATA_DIR_SECURITY * 8 + 4);
                if (h.cert_size > 0 && (h.cert_off > size || h.cert_size > size - h.cert_off))
                        return -EBADMSG;
        }
        *ret = h;
        return 0;
}

int pe_authenticode_digest(const void *image, size_t size, uint16_t bank, uint8_t *ret) {
        _cleanup_(evp_md_ctx_freep) EVP_MD_CTX *c = NULL;
        const uint8_t *p = image;
        Range sections[PE_SECTIONS_MAX];
        uint64_t opt, dd, n_dd, sect, headers, sum, cert_off, cert_size, end, last;
        unsigned n_sections, n = 0;
        unsigned len = 0;
        const EVP_MD *md;
        PeHeaders h;
        int r;

        if (!ret || (!image && size > 0))
                return -EINVAL;
        md = eventlog_bank_md(bank);
        if (!md)
                return -EOPNOTSUPP;
        r = pe_headers(p, size, &h);
        if (r < 0)
                return r;
        opt = h.opt;
        dd = h.dd;
        n_dd = h.n_dd;
        headers = h.headers;
        sect = h.sect;
        n_sections = h.n_sections;
        cert_off = h.cert_off;
        cert_size = h.cert_size;

        /* The sections with raw data, in file order (insertion sort: at most
         * 96). They may neither overlap each other nor the headers: the
         * firmware's "as laid out" reading then has one meaning, and the
         * work is bounded by the size of the image. */
        sum = headers;
        for (unsigned i = 0; i < n_sections; i++) {
                const uint8_t *s = p + sect + (uint64_t) i * SECTION_HEADER_SIZE;
                Range x = {
                        .offset = le32(s + SECTION_POINTER_TO_RAW),
                        .size = le32(s + SECTION_SIZE_OF_RAW),
                };
                unsigned j;

                if (x.size == 0)
                        continue;
                if (x.offset + x.size > size)
                        return -EBADMSG;
                for (j = n; j > 0 && sections[j - 1].offset > x.offset; j--)
                        sections[j] = sections[j - 1];
                sections[j] = x;
                n++;
                sum += x.size;
        }
        last = headers;
        for (unsigned i = 0; i < n; i++) {
                if (sections[i].offset < last)
                        return -EBADMSG;
                last = sections[i].offset + sections[i].size;
        }

        /* The certificate table, when there is one, is the end of the file
         * and comes after every section. */
        end = size;
        if (cert_size > 0) {
                if (cert_off < last || cert_off + cert_size != size)
                        return -EBADMSG;
                end = cert_off;
        }

        c = EVP_MD_CTX_new();
        if (!c || EVP_DigestInit_ex(c, md, NULL) != 1)
                return -ENOMEM;

        r = hash_range(c, p, 0, opt + OPT_CHECKSUM);
        if (r < 0)
                return r;
        if (n_dd > DATA_DIR_SECURITY) {
                uint64_t cert_entry = opt + dd + DATA_DIR_SECURITY * 8;

                r = hash_range(c, p, opt + OPT_CHECKSUM + 4, cert_entry);
                if (r < 0)
                        return r;
                r = hash_range(c, p, cert_entry + 8, headers);
        } else
                r = hash_range(c, p, opt + OPT_CHECKSUM + 4, headers);
        if (r < 0)
                return r;

        for (unsigned i = 0; i < n; i++) {
                r = hash_range(c, p, sections[i].offset, sections[i].offset + sections[i].size);
                if (r < 0)
                        return r;
        }

        /* Trailing data: from the count of bytes hashed so far (not from the
         * end of the last section: the two differ when sections leave gaps,
         * and the firmware counts) to the certificate table. */
        r = hash_range(c, p, sum, end);
        if (r < 0)
                return r;

        if (EVP_DigestFinal_ex(c, ret, &len) != 1)
                return -ENOMEM;
        return (int) len;
}

/* Whether section header s is called name: its 8 bytes, NUL-padded, or for
 * a longer name "/N", N the decimal offset of the name in the COFF string
 * table (after the symbol table, 18 bytes a symbol), as linkers write the
 * long names of EFI binaries' sections (".sbatlevel"). */
static bool section_name_is(const uint8_t *p, size_t size, uint64_t coff, const uint8_t *s, const char *name,
                            size_t len) {
        uint64_t symtab, strtab, off = 0;

        if (s[0] != '/')
                return len <= 8 && memcmp(s, name, len) == 0 && (len == 8 || s[len] == 0);
        for (unsigned i = 1; i < 8 && s[i] != 0; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return false;
                off = off * 10 + (uint64_t) (s[i] - '0');
        }
        symtab = le32(p + coff + 8);
        strtab = symtab + (uint64_t) le32(p + coff + 12) * 18;
        if (symtab == 0 || strtab + off >= size || size - (strtab + off) < len + 1)
                return false;
        return memcmp(p + strtab + off, name, len) == 0 && p[strtab + off + len] == 0;
}

int pe_find_section(const void *image, size_t size, const char *name, size_t *ret_offset, size_t *ret_size) {
        const uint8_t *p = image;
        PeHeaders h;
        size_t len;
        int r;

        if (!image || !name || !ret_offset || !ret_size)
                return -EINVAL;
        len = strlen(name);
        if (len == 0 || len > 64)
                return -EINVAL;
        r = pe_headers(p, size, &h);
        if (r < 0)
                return r;
        for (unsigned i = 0; i < h.n_sections; i++) {
                const uint8_t *s = p + h.sect + (uint64_t) i * SECTION_HEADER_SIZE;
                uint64_t vsize = le32(s + 8), raw = le32(s + SECTION_SIZE_OF_RAW),
                         ptr = le32(s + SECTION_POINTER_TO_RAW);

                if (!section_name_is(p, size, h.pe + 4, s, name, len))
                        continue;
                if (ptr > size || raw > size - ptr)
                        return -EBADMSG;
                *ret_offset = (size_t) ptr;
                *ret_size = (size_t) (vsize > 0 && vsize < raw ? vsize : raw);
                return 0;
        }
        return -ENOENT;
}

int pe_certificate_table(const void *image, size_t size, size_t *ret_offset, size_t *ret_size) {
        PeHeaders h;
        int r;

        if (!image || !ret_offset || !ret_size)
                return -EINVAL;
        r = pe_headers(image, size, &h);
        if (r < 0)
                return r;
        if (h.cert_size == 0)
                return -ENOENT;
        *ret_offset = (size_t) h.cert_off;
        *ret_size = (size_t) h.cert_size;
        return 0;
}
