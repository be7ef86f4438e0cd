/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The event log parser and replay, and the component digests, against a
 * real log (tests/unit/data/eventlog-ovmf-sdboot.bin, a VM suite boot: OVMF,
 * systemd-boot 252, Linux 6.1 EFI stub, swtpm with 4 banks) and the PCR
 * values the TPM reported in that boot (eventlog-ovmf-sdboot.txt); then
 * crafted logs for the rules the real one does not exercise and for what
 * must be rejected. */
#include <fcntl.h>
#include <openssl/evp.h>

#include "encoding.h"
#include "eventlog.h"
#include "fileio.h"
#include "macro.h"
#include "pcr.h"
#include "predict.h"
#include "tests.h"

static const char *data_dir;

typedef struct Expected {
        uint8_t pcr[4][PCR_MAX][EVENTLOG_DIGEST_MAX];   /* sha1, sha256, sha384, sha512 */
        char cmdline[4096];
        uint8_t initrd[32];
        uint8_t app_digest[2][32];
        size_t n_apps;
} Expected;

static const uint16_t banks[4] = { PCR_BANK_SHA1, PCR_BANK_SHA256, PCR_BANK_SHA384, PCR_BANK_SHA512 };

static int bank_slot(uint16_t bank) {
        for (int i = 0; i < 4; i++)
                if (banks[i] == bank)
                        return i;
        return -1;
}

static void unhex(const char *s, uint8_t *ret, size_t size) {
        _cleanup_free_ void *d = NULL;
        size_t n;

        ASSERT_EQ(hex_decode(s, strlen(s), &d, &n), 0);
        ASSERT_EQ(n, size);
        memcpy(ret, d, n);
}

static void load_expected(Expected *x) {
        char path[4096], line[8192];
        FILE *f;

        memset(x, 0, sizeof(*x));
        snprintf(path, sizeof(path), "%s/eventlog-ovmf-sdboot.txt", data_dir);
        f = fopen(path, "re");
        ASSERT(f);
        while (fgets(line, sizeof(line), f)) {
                char bank[16], hex[200], name[256], fsha[80];
                unsigned idx;
                uint16_t b;

                line[strcspn(line, "\n")] = 0;
                if (sscanf(line, "pcr %15s %u %199s", bank, &idx, hex) == 3) {
                        ASSERT_EQ(pcr_bank_from_string(bank, &b), 0);
                        ASSERT(idx < PCR_MAX);
                        unhex(hex, x->pcr[bank_slot(b)][idx], pcr_bank_digest_size(b));
                } else if (startswith(line, "cmdline ")) {
                        ASSERT(strlen(line + strlen("cmdline ")) < sizeof(x->cmdline));
                        strcpy(x->cmdline, line + strlen("cmdline "));
                } else if (sscanf(line, "initrd-sha256 %199s", hex) == 1)
                        unhex(hex, x->initrd, 32);
                else if (sscanf(line, "boot-application %255s %79s %199s", name, fsha, hex) == 3) {
                        ASSERT(x->n_apps < 2);
                        unhex(hex, x->app_digest[x->n_apps++], 32);
                }
        }
        fclose(f);
        ASSERT(x->cmdline[0]);
        ASSERT_EQ(x->n_apps, 2);
}

static EventLog *load_real_log(char **ret_data, size_t *ret_size) {
        char path[4096];
        char *data;
        size_t size;
        EventLog *log = NULL;

        snprintf(path, sizeof(path), "%s/eventlog-ovmf-sdboot.bin", data_dir);
        ASSERT_EQ(read_file_bounded(path, EVENTLOG_SIZE_MAX, &data, &size), 0);
        ASSERT_EQ(eventlog_parse(data, size, &log), 0);
        if (ret_data) {
                *ret_data = data;
                *ret_size = size;
        } else
                free(data);
        return log;
}

/* Replay of the real log = the TPM's values, in every bank, for every PCR
 * the log extends (0-7, 9, 12) and every PCR it leaves alone (reset values:
 * 8, 11, 13-23; all-ones for 17-22). PCR 10 is IMA's, extended by the
 * kernel after boot and not in the firmware's log: its replay differs from
 * the TPM, so it is not predictable from this log. */
static void test_real_replay(void) {
        _cleanup_(eventlog_freep) EventLog *log = load_real_log(NULL, NULL);
        Expected x;

        load_expected(&x);
        ASSERT_EQ(log->spec_version_major, 2);
        ASSERT_EQ(log->uintn_size, 2);
        ASSERT_EQ(log->n_banks, 4);
        for (int i = 0; i < 4; i++)
                ASSERT_EQ(log->banks[i].alg, banks[i]);
        ASSERT_EQ(log->n_events, 32);

        for (int s = 0; s < 4; s++) {
                EventLogReplay r;
                size_t n = pcr_bank_digest_size(banks[s]);

                ASSERT_EQ(eventlog_replay(log, banks[s], &r), 0);
                ASSERT_EQ(r.digest_size, n);
                ASSERT_EQ(r.extended, (1u << 0) | (1u << 1) | (1u << 2) | (1u << 3) | (1u << 4) | (1u << 5) |
                                      (1u << 6) | (1u << 7) | (1u << 9) | (1u << 12));
                ASSERT_EQ(r.startup_locality, 0);
                for (unsigned i = 0; i < PCR_MAX; i++) {
                        bool same = memcmp(r.values[i], x.pcr[s][i], n) == 0;

                        if (i == 10) {
                                ASSERT(!same);
                                continue;
                        }
                        if (!same) {
                                fprintf(stderr, "bank %s PCR %u: replay differs from the TPM\n",
                                        pcr_bank_to_string(banks[s]), i);
                                abort();
                        }
                }
                printf("# %s: replay = TPM for PCRs 0-9, 11-23 (10 is IMA's)\n", pcr_bank_to_string(banks[s]));
        }
}

static const EventLogEvent *find_event(const EventLog *log, uint32_t pcr, uint32_t type, unsigned nth) {
        for (size_t i = 0; i < log->n_events; i++)
                if (log->events[i].pcr == pcr && log->events[i].type == type && nth-- == 0)
                        return log->events + i;
        return NULL;
}

static uint32_t le32(const uint8_t *p) {
        return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

/* A real Secure Boot boot (eventlog-ovmf-secureboot.bin, the VM suite's
 * Secure Boot flavour: OVMF with Microsoft's keys, shim 16.1 -> grub 2.06
 * -> Linux 6.1, all signed): the replay equals the TPM's values in every
 * bank for every PCR but IMA's 10, including grub's 8 and 9 and shim's 14;
 * PCR 7 holds the five Secure Boot variables, the separator and three
 * authorities (db for shim, then shim's SbatLevel and MokListRT). */
static void test_secureboot_replay(void) {
        static uint8_t tpm[4][PCR_MAX][EVENTLOG_DIGEST_MAX];
        static const uint8_t shim_lock_guid[16] = { 0x50, 0xab, 0x5d, 0x60, 0x46, 0xe0, 0x00, 0x43,
                                                    0xab, 0xb6, 0x3d, 0xd8, 0x10, 0xdd, 0x8b, 0x23 };
        static const char *const config[] = { "SecureBoot", "PK", "KEK", "db", "dbx" };
        static const char *const authority[] = { "db", "SbatLevel", "MokListRT" };
        _cleanup_(eventlog_freep) EventLog *log = NULL;
        _cleanup_free_ char *data = NULL;
        char path[4096], line[8192];
        size_t size, n_config = 0, n_authority = 0, n_values = 0;
        bool separator = false;
        FILE *f;

        snprintf(path, sizeof(path), "%s/eventlog-ovmf-secureboot.txt", data_dir);
        f = fopen(path, "re");
        ASSERT(f);
        while (fgets(line, sizeof(line), f)) {
                char bank[16], hex[200];
                unsigned idx;
                uint16_t b;

                if (sscanf(line, "pcr %15s %u %199s", bank, &idx, hex) != 3)
                        continue;
                ASSERT_EQ(pcr_bank_from_string(bank, &b), 0);
                ASSERT(idx < PCR_MAX && bank_slot(b) >= 0);
                unhex(hex, tpm[bank_slot(b)][idx], pcr_bank_digest_size(b));
                n_values++;
        }
        fclose(f);
        ASSERT_EQ(n_values, 4 * PCR_MAX);

        snprintf(path, sizeof(path), "%s/eventlog-ovmf-secureboot.bin", data_dir);
        ASSERT_EQ(read_file_bounded(path, EVENTLOG_SIZE_MAX, &data, &size), 0);
        ASSERT_EQ(eventlog_parse(data, size, &log), 0);
        ASSERT_EQ(log->n_banks, 4);

        for (int s = 0; s < 4; s++) {
                EventLogReplay r;
                size_t n = pcr_bank_digest_size(banks[s]);

                ASSERT_EQ(eventlog_replay(log, banks[s], &r), 0);
                ASSERT_EQ(r.extended & ((1u << 7) | (1u << 8) | (1u << 9) | (1u << 14)),
                          (1u << 7) | (1u << 8) | (1u << 9) | (1u << 14));
                for (unsigned i = 0; i < PCR_MAX; i++) {
                        if (i == 10)
                                continue;
                        if (memcmp(r.values[i], tpm[s][i], n) != 0) {
                                fprintf(stderr, "bank %s PCR %u: replay of the Secure Boot log differs from the TPM\n",
                                        pcr_bank_to_string(banks[s]), i);
                                abort();
                        }
                }
        }

        /* PCR 7 in log order: UEFI_VARIABLE_DATA = GUID(16) || name length
         * (u64, characters) || data length (u64) || UCS-2 name || data. */
        for (size_t i = 0; i < log->n_events; i++) {
                const EventLogEvent *e = log->events + i;
                char name[32] = "";
                uint64_t len;

                if (e->pcr != 7)
                        continue;
                if (e->type == EV_SEPARATOR) {
                        ASSERT_EQ(n_config, ELEMENTSOF(config));
                        ASSERT_EQ(n_authority, 0u);
                        separator = true;
                        continue;
                }
                ASSERT(e->type == EV_EFI_VARIABLE_DRIVER_CONFIG || e->type == EV_EFI_VARIABLE_AUTHORITY);
                ASSERT(e->data_size >= 32);
                len = (uint64_t) le32(e->data + 16) | (uint64_t) le32(e->data + 20) << 32;
                ASSERT(len < sizeof(name) && 32 + 2 * len <= e->data_size);
                for (size_t k = 0; k < len; k++)
                        name[k] = (char) e->data[32 + 2 * k];
                if (e->type == EV_EFI_VARIABLE_DRIVER_CONFIG) {
                        ASSERT(!separator && n_config < ELEMENTSOF(config));
                        ASSERT(streq(name, config[n_config++]));
                } else {
                        ASSERT(separator && n_authority < ELEMENTSOF(authority));
                        ASSERT(streq(name, authority[n_authority]));
                        /* shim's own events carry its GUID. */
                        ASSERT_EQ(memcmp(e->data, shim_lock_guid, 16) == 0, n_authority > 0);
                        n_authority++;
                }
        }
        ASSERT(separator);
        ASSERT_EQ(n_authority, ELEMENTSOF(authority));
        printf("# Secure Boot log: replay = TPM for PCRs 0-9, 11-23; PCR 7: 5 variables, separator, 3 authorities\n");
}

/* Each component digest as the real boot logged it, in every bank. */
static void test_real_components(void) {
        _cleanup_(eventlog_freep) EventLog *log = load_real_log(NULL, NULL);
        static const uint8_t global_guid[16] = { 0x61, 0xdf, 0xe4, 0x8b, 0xca, 0x93, 0xd2, 0x11,
                                                 0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c };
        static const char calling[] = "Calling EFI Application from Boot Option";
        static const uint8_t separator[4] = { 0 };
        const EventLogEvent *e;
        Expected x;
        uint8_t d[64];

        load_expected(&x);

        /* PCR 9, the EFI stub: the command line (LoadOptions, UTF-16LE with
         * its NUL) and the initrd (SHA-256 of the file). */
        e = find_event(log, 9, EV_EVENT_TAG, 0);
        ASSERT(e && e->data_size >= 8);
        ASSERT_EQ(le32(e->data), LINUX_EVENT_TAG_LOAD_OPTIONS);
        ASSERT(memmem(e->data, e->data_size, "LOADED_IMAGE::LoadOptions", 25));
        for (int s = 0; s < 4; s++) {
                int n = predict_cmdline_digest(x.cmdline, banks[s], d);
                ASSERT_EQ(n, pcr_bank_digest_size(banks[s]));
                ASSERT(memcmp(d, eventlog_event_digest(log, e, banks[s]), n) == 0);
        }
        e = find_event(log, 9, EV_EVENT_TAG, 1);
        ASSERT(e && e->data_size >= 8);
        ASSERT_EQ(le32(e->data), LINUX_EVENT_TAG_INITRD);
        ASSERT(memcmp(eventlog_event_digest(log, e, PCR_BANK_SHA256), x.initrd, 32) == 0);
        ASSERT(!find_event(log, 9, EV_EVENT_TAG, 2));

        /* PCR 12, systemd-boot: the same digest, the UTF-16LE string as the
         * event data. */
        e = find_event(log, 12, EV_IPL, 0);
        ASSERT(e);
        {
                _cleanup_free_ uint8_t *u = NULL;
                size_t n;

                ASSERT_EQ(predict_cmdline_utf16(x.cmdline, &u, &n), 0);
                ASSERT_EQ(n, e->data_size);
                ASSERT(memcmp(u, e->data, n) == 0);
        }
        for (int s = 0; s < 4; s++) {
                int n = predict_cmdline_digest(x.cmdline, banks[s], d);
                ASSERT(memcmp(d, eventlog_event_digest(log, e, banks[s]), n) == 0);
        }
        /* One character more and it differs. */
        {
                char other[sizeof(x.cmdline) + 2];
                snprintf(other, sizeof(other), "%s ", x.cmdline);
                ASSERT_EQ(predict_cmdline_digest(other, PCR_BANK_SHA256, d), 32);
                ASSERT(memcmp(d, eventlog_event_digest(log, e, PCR_BANK_SHA256), 32) != 0);
        }

        /* PCR 4: the boot applications (systemd-boot, the kernel) are the
         * fixture's, after "Calling EFI Application from Boot Option" (twice:
         * OVMF tried a boot option that failed first) and the separator. */
        for (unsigned i = 0; i < 2; i++) {
                e = find_event(log, 4, EV_EFI_BOOT_SERVICES_APPLICATION, i);
                ASSERT(e);
                ASSERT(memcmp(eventlog_event_digest(log, e, PCR_BANK_SHA256), x.app_digest[i], 32) == 0);
        }
        e = find_event(log, 4, EV_EFI_ACTION, 0);
        ASSERT(e && e->data_size == strlen(calling) && memcmp(e->data, calling, e->data_size) == 0);
        for (int s = 0; s < 4; s++) {
                int n = predict_data_digest(calling, strlen(calling), banks[s], d);
                ASSERT(memcmp(d, eventlog_event_digest(log, e, banks[s]), n) == 0);
        }
        for (uint32_t pcr = 0; pcr <= 7; pcr++) {
                e = find_event(log, pcr, EV_SEPARATOR, 0);
                ASSERT(e && e->data_size == 4);
                for (int s = 0; s < 4; s++) {
                        int n = predict_data_digest(separator, 4, banks[s], d);
                        ASSERT(memcmp(d, eventlog_event_digest(log, e, banks[s]), n) == 0);
                }
        }

        /* PCR 7: SecureBoot, PK, KEK, db, dbx as UEFI_VARIABLE_DATA (Secure
         * Boot off here: SecureBoot = 00, the databases empty). The
         * digest is recomputed from the name, GUID and data the event
         * carries. */
        {
                static const char *const names[] = { "SecureBoot", "PK", "KEK", "db", "dbx" };

                for (unsigned i = 0; i < ELEMENTSOF(names); i++) {
                        char name[64];
                        uint64_t nlen, dlen;

                        e = find_event(log, 7, EV_EFI_VARIABLE_DRIVER_CONFIG, i);
                        ASSERT(e && e->data_size >= 32);
                        memcpy(&nlen, e->data + 16, 8);
                        memcpy(&dlen, e->data + 24, 8);
                        ASSERT(nlen < sizeof(name) && 32 + 2 * nlen + dlen == e->data_size);
                        for (uint64_t k = 0; k < nlen; k++)
                                name[k] = (char) e->data[32 + 2 * k];
                        name[nlen] = 0;
                        ASSERT_STREQ(name, names[i]);
                        if (i < 3)
                                ASSERT(memcmp(e->data, global_guid, 16) == 0);
                        for (int s = 0; s < 4; s++) {
                                int n = predict_uefi_variable_digest(e->data, name, e->data + 32 + 2 * nlen,
                                                                     dlen, banks[s], d);
                                ASSERT_EQ(n, pcr_bank_digest_size(banks[s]));
                                ASSERT(memcmp(d, eventlog_event_digest(log, e, banks[s]), n) == 0);
                        }
                }
                ASSERT(!find_event(log, 7, EV_EFI_VARIABLE_DRIVER_CONFIG, ELEMENTSOF(names)));
        }
        /* PCR 1, EV_EFI_VARIABLE_BOOT (BootOrder first): OVMF hashes the
         * variable's data alone, not UEFI_VARIABLE_DATA. */
        e = find_event(log, 1, EV_EFI_VARIABLE_BOOT, 0);
        ASSERT(e && e->data_size > 32);
        {
                uint64_t nlen, dlen;
                memcpy(&nlen, e->data + 16, 8);
                memcpy(&dlen, e->data + 24, 8);
                ASSERT(32 + 2 * nlen + dlen == e->data_size);
                ASSERT_EQ(predict_data_digest(e->data + 32 + 2 * nlen, dlen, PCR_BANK_SHA256, d), 32);
                ASSERT(memcmp(d, eventlog_event_digest(log, e, PCR_BANK_SHA256), 32) == 0);
        }
}

/* Every prefix of the real log: one that ends between two records parses
 * (fewer events), any other is malformed; nothing reads past the end (ASan
 * and valgrind runs check that). */
static void test_real_truncated(void) {
        _cleanup_free_ char *data = NULL;
        _cleanup_(eventlog_freep) EventLog *full = load_real_log(&data, &(size_t) { 0 });
        size_t boundary = 0, size = full->size;

        for (size_t n = 0; n <= size; n++) {
                EventLog *log = NULL;
                int r;
                bool at_boundary = false;

                while (boundary < full->n_events && full->events[boundary].offset < n)
                        boundary++;
                at_boundary = (boundary < full->n_events && full->events[boundary].offset == n) || n == size;
                r = eventlog_parse(data, n, &log);
                if (at_boundary) {
                        ASSERT_EQ(r, 0);
                        ASSERT_EQ(log->n_events, boundary < full->n_events &&
                                                 full->events[boundary].offset == n ? boundary : full->n_events);
                } else
                        ASSERT(r == -EBADMSG || r == -EOPNOTSUPP);
                eventlog_free(log);
        }
}

/* Crafted logs. */

typedef struct Buf {
        uint8_t *p;
        size_t n, allocated;
} Buf;

static void put(Buf *b, const void *p, size_t n) {
        if (n == 0)
                return;
        if (b->n + n > b->allocated) {
                b->allocated = MAX(b->allocated * 2, b->n + n + 256);
                b->p = realloc(b->p, b->allocated);
                ASSERT(b->p);
        }
        memcpy(b->p + b->n, p, n);
        b->n += n;
}

static void put8(Buf *b, uint8_t v) {
        put(b, &v, 1);
}

static void put16(Buf *b, uint16_t v) {
        uint8_t x[2] = { (uint8_t) v, (uint8_t) (v >> 8) };
        put(b, x, 2);
}

static void put32(Buf *b, uint32_t v) {
        uint8_t x[4] = { (uint8_t) v, (uint8_t) (v >> 8), (uint8_t) (v >> 16), (uint8_t) (v >> 24) };
        put(b, x, 4);
}

/* The header event for the banks given ({alg, size} pairs). */
static void put_header(Buf *b, const EventLogBank *bk, size_t n, const char *signature) {
        static const uint8_t zero[20] = { 0 };
        char sig[16] = { 0 };

        memcpy(sig, signature, MIN(strlen(signature), sizeof(sig)));
        put32(b, 0);
        put32(b, EV_NO_ACTION);
        put(b, zero, 20);
        put32(b, 16 + 4 + 4 + 4 + 4 * n + 1);
        put(b, sig, 16);
        put32(b, 0);            /* platformClass */
        put8(b, 0);
        put8(b, 2);
        put8(b, 0);
        put8(b, 2);
        put32(b, n);
        for (size_t i = 0; i < n; i++) {
                put16(b, bk[i].alg);
                put16(b, bk[i].size);
        }
        put8(b, 0);             /* vendorInfoSize */
}

static void put_event(Buf *b, uint32_t pcr, uint32_t type, const EventLogBank *bk, size_t n, uint8_t fill,
                      const void *data, uint32_t data_size) {
        uint8_t d[EVENTLOG_DIGEST_MAX];

        memset(d, fill, sizeof(d));
        put32(b, pcr);
        put32(b, type);
        put32(b, n);
        for (size_t i = 0; i < n; i++) {
                put16(b, bk[i].alg);
                put(b, d, bk[i].size);
        }
        put32(b, data_size);
        put(b, data, data_size);
}

static int parse(const Buf *b, EventLog **ret) {
        return eventlog_parse(b->p, b->n, ret);
}

static void extend(uint8_t v[32], uint8_t fill) {
        uint8_t in[64];
        unsigned len;

        memcpy(in, v, 32);
        memset(in + 32, fill, 32);
        ASSERT(EVP_Digest(in, 64, v, &len, EVP_sha256(), NULL) == 1);
}

static const EventLogBank sha256_only[] = { { PCR_BANK_SHA256, 32 } };

static void test_startup_locality(void) {
        static const uint8_t locality3[17] = "StartupLocality\0\3";
        _cleanup_(eventlog_freep) EventLog *log = NULL;
        EventLogReplay r;
        uint8_t want[32] = { 0 };
        Buf b = {};

        put_header(&b, sha256_only, 1, "Spec ID Event03");
        put_event(&b, 0, EV_NO_ACTION, sha256_only, 1, 0, locality3, sizeof(locality3));
        put_event(&b, 0, EV_S_CRTM_VERSION, sha256_only, 1, 0xaa, "v", 1);
        /* Too late: PCR 0 was extended already. */
        put_event(&b, 0, EV_NO_ACTION, sha256_only, 1, 0, "StartupLocality\0\4", 17);
        put_event(&b, 0, EV_SEPARATOR, sha256_only, 1, 0xbb, "\0\0\0\0", 4);
        ASSERT_EQ(parse(&b, &log), 0);
        ASSERT_EQ(log->n_events, 4);
        ASSERT_EQ(eventlog_replay(log, PCR_BANK_SHA256, &r), 0);
        ASSERT_EQ(r.startup_locality, 3);
        want[31] = 3;
        extend(want, 0xaa);
        extend(want, 0xbb);
        ASSERT(memcmp(r.values[0], want, 32) == 0);
        ASSERT_EQ(r.extended, 1);
        ASSERT_EQ(eventlog_replay(log, PCR_BANK_SHA1, &r), -ENOENT);
        free(b.p);

        /* Without it PCR 0 starts at zero; an EV_NO_ACTION elsewhere, or one
         * with other data, extends nothing. */
        b = (Buf) {};
        log = eventlog_free(log);
        put_header(&b, sha256_only, 1, "Spec ID Event03");
        put_event(&b, 0, EV_NO_ACTION, sha256_only, 1, 0, "StartupLocalitX\0\3", 17);
        put_event(&b, 5, EV_NO_ACTION, sha256_only, 1, 0x11, "StartupLocality\0\3", 17);
        put_event(&b, 0, EV_S_CRTM_VERSION, sha256_only, 1, 0xaa, NULL, 0);
        put_event(&b, 31, EV_IPL, sha256_only, 1, 0xcc, NULL, 0);     /* no such PCR: skipped */
        ASSERT_EQ(parse(&b, &log), 0);
        ASSERT(log->events[2].data == NULL && log->events[2].data_size == 0);
        ASSERT_EQ(eventlog_replay(log, PCR_BANK_SHA256, &r), 0);
        ASSERT_EQ(r.startup_locality, 0);
        memset(want, 0, sizeof(want));
        extend(want, 0xaa);
        ASSERT(memcmp(r.values[0], want, 32) == 0);
        ASSERT_EQ(r.extended, 1);
        free(b.p);
}

static void test_banks(void) {
        const EventLogBank with_sm3[] = { { 0x0012, 32 }, { PCR_BANK_SHA256, 32 } };
        _cleanup_(eventlog_freep) EventLog *log = NULL;
        EventLogReplay r;
        Buf b = {};

        /* A bank OpenSSL has no hash for here parses, and only its replay
         * is refused. Digests may come in any order within a record. */
        put_header(&b, with_sm3, 2, "Spec ID Event03");
        put_event(&b, 4, EV_IPL, with_sm3, 2, 0x42, "x", 1);
        {
                const EventLogBank swapped[] = { with_sm3[1], with_sm3[0] };
                put_event(&b, 4, EV_IPL, swapped, 2, 0x43, "y", 1);
        }
        ASSERT_EQ(parse(&b, &log), 0);
        ASSERT_EQ(eventlog_bank_index(log, 0x0012), 0);
        ASSERT_EQ(eventlog_bank_index(log, PCR_BANK_SHA1), -ENOENT);
        ASSERT_EQ(eventlog_replay(log, 0x0012, &r), -EOPNOTSUPP);
        ASSERT_EQ(eventlog_replay(log, PCR_BANK_SHA256, &r), 0);
        {
                uint8_t want[32] = { 0 };
                extend(want, 0x42);
                extend(want, 0x43);
                ASSERT(memcmp(r.values[4], want, 32) == 0);
        }
        ASSERT_STREQ(eventlog_type_to_string(EV_EFI_BOOT_SERVICES_APPLICATION), "EV_EFI_BOOT_SERVICES_APPLICATION");
        ASSERT(!eventlog_type_to_string(0x7777));
        free(b.p);
}

static void expect_parse(const Buf *b, int want, const char *what) {
        EventLog *log = NULL;
        int r = parse(b, &log);

        if (r != want) {
                fprintf(stderr, "%s: got %d, want %d\n", what, r, want);
                abort();
        }
        eventlog_free(log);
}

static void test_rejected(void) {
        const EventLogBank two[] = { { PCR_BANK_SHA1, 20 }, { PCR_BANK_SHA256, 32 } };
        static const uint8_t zero[20] = { 0 };
        Buf b = {};

        /* TPM 1.2 / SHA-1-only logs: not the crypto-agile header. */
        put32(&b, 0);
        put32(&b, EV_S_CRTM_VERSION);
        put(&b, zero, 20);
        put32(&b, 2);
        put(&b, "1\0", 2);
        expect_parse(&b, -EOPNOTSUPP, "SHA-1 log");
        b.n = 0;
        put_header(&b, two, 2, "Spec ID Event02");
        expect_parse(&b, -EOPNOTSUPP, "Spec ID Event02 (EFI 1.22, SHA-1)");
        b.n = 0;
        put_header(&b, two, 2, "Spec ID Event00");
        expect_parse(&b, -EOPNOTSUPP, "Spec ID Event00");
        b.n = 0;
        put(&b, "\xff\xff\xff\xff", 4);
        put32(&b, 3);
        put(&b, zero, 20);
        put32(&b, 0);
        expect_parse(&b, -EBADMSG, "garbage");
        b.n = 0;
        expect_parse(&b, -EBADMSG, "empty");

        /* Header fields. */
        {
                const EventLogBank none[] = { { PCR_BANK_SHA256, 32 } };
                const EventLogBank dup[] = { { PCR_BANK_SHA256, 32 }, { PCR_BANK_SHA256, 32 } };
                const EventLogBank wrong[] = { { PCR_BANK_SHA256, 20 } };
                const EventLogBank zero_size[] = { { 0x0012, 0 } };
                const EventLogBank too_long[] = { { 0x0012, 65 } };
                EventLogBank nine[9];

                b.n = 0;
                put_header(&b, none, 0, "Spec ID Event03");
                expect_parse(&b, -EBADMSG, "no banks");
                for (unsigned i = 0; i < 9; i++)
                        nine[i] = (EventLogBank) { .alg = (uint16_t) (0x100 + i), .size = 32 };
                b.n = 0;
                put_header(&b, nine, 9, "Spec ID Event03");
                expect_parse(&b, -EBADMSG, "9 banks");
                b.n = 0;
                put_header(&b, dup, 2, "Spec ID Event03");
                expect_parse(&b, -EBADMSG, "a bank twice");
                b.n = 0;
                put_header(&b, wrong, 1, "Spec ID Event03");
                expect_parse(&b, -EBADMSG, "sha256 of 20 bytes");
                b.n = 0;
                put_header(&b, zero_size, 1, "Spec ID Event03");
                expect_parse(&b, -EBADMSG, "a digest of 0 bytes");
                b.n = 0;
                put_header(&b, too_long, 1, "Spec ID Event03");
                expect_parse(&b, -EBADMSG, "a digest of 65 bytes");
        }
        b.n = 0;
        put_header(&b, two, 2, "Spec ID Event03");
        b.p[28] += 1;           /* eventDataSize one more than the structure */
        put8(&b, 0);
        expect_parse(&b, -EBADMSG, "Spec ID structure shorter than its event");
        b.n = 0;
        put_header(&b, two, 2, "Spec ID Event03");
        b.p[32 + 24] = 0xff;    /* numberOfAlgorithms 0x...ff */
        b.p[32 + 27] = 0xff;
        expect_parse(&b, -EBADMSG, "numberOfAlgorithms huge");
        b.n = 0;
        put_header(&b, two, 2, "Spec ID Event03");
        b.p[b.n - 1] = 200;     /* vendorInfoSize beyond the event */
        expect_parse(&b, -EBADMSG, "vendorInfoSize beyond the event");
        b.n = 0;
        put_header(&b, two, 2, "Spec ID Event03");
        b.p[28] = 0xff;         /* eventDataSize beyond the log */
        b.p[31] = 0xff;
        expect_parse(&b, -EBADMSG, "header eventDataSize beyond the log");

        /* Records. */
        b.n = 0;
        put_header(&b, two, 2, "Spec ID Event03");
        expect_parse(&b, 0, "header alone");
        put_event(&b, 0, EV_IPL, two, 1, 0, NULL, 0);
        expect_parse(&b, -EBADMSG, "a bank missing");
        b.n = 0;
        put_header(&b, two, 2, "Spec ID Event03");
        {
                const EventLogBank again[] = { two[0], two[0] };
                put_event(&b, 0, EV_IPL, again, 2, 0, NULL, 0);
        }
        expect_parse(&b, -EBADMSG, "a bank twice in a record");
        b.n = 0;
        put_header(&b, two, 2, "Spec ID Event03");
        {
                const EventLogBank other[] = { two[0], { PCR_BANK_SHA384, 32 } };
                put_event(&b, 0, EV_IPL, other, 2, 0, NULL, 0);
        }
        expect_parse(&b, -EBADMSG, "a bank the header does not declare");
        b.n = 0;
        put_header(&b, two, 2, "Spec ID Event03");
        put32(&b, 0);
        put32(&b, EV_IPL);
        put32(&b, 0xffffffff);
        expect_parse(&b, -EBADMSG, "digest count 2^32-1");
        b.n = 0;
        put_header(&b, two, 2, "Spec ID Event03");
        put_event(&b, 0, EV_IPL, two, 2, 0, "abc", 3);
        b.p[b.n - 4] = 0xff;    /* eventSize 0xff000003 */
        expect_parse(&b, -EBADMSG, "eventSize beyond the log");
        free(b.p);
}

static void test_bounds(void) {
        const EventLogBank sha1_only[] = { { PCR_BANK_SHA1, 20 } };
        EventLog *log = NULL;
        uint8_t byte = 0;
        Buf b = {};

        ASSERT_EQ(eventlog_parse(&byte, (size_t) EVENTLOG_SIZE_MAX + 1, &log), -EFBIG);

        put_header(&b, sha1_only, 1, "Spec ID Event03");
        for (unsigned i = 0; i < EVENTLOG_EVENTS_MAX; i++)
                put_event(&b, i % 24, EV_IPL, sha1_only, 1, (uint8_t) i, NULL, 0);
        ASSERT_EQ(parse(&b, &log), 0);
        ASSERT_EQ(log->n_events, EVENTLOG_EVENTS_MAX);
        log = eventlog_free(log);
        put_event(&b, 0, EV_IPL, sha1_only, 1, 0, NULL, 0);
        ASSERT_EQ(parse(&b, &log), -EFBIG);
        ASSERT(!log);
        free(b.p);
}

static void test_component_helpers(void) {
        _cleanup_free_ uint8_t *u = NULL;
        uint8_t d[64], want[32];
        size_t n;
        int fd;

        /* "aé€" → 61 00 e9 00 ac 20 00 00. */
        ASSERT_EQ(predict_cmdline_utf16("a\xc3\xa9\xe2\x82\xac", &u, &n), 0);
        ASSERT_EQ(n, 8);
        ASSERT(memcmp(u, "a\0\xe9\0\xac\x20\0\0", 8) == 0);
        u = mfree(u);
        ASSERT_EQ(predict_cmdline_utf16("", &u, &n), 0);
        ASSERT_EQ(n, 2);
        u = mfree(u);
        ASSERT_EQ(predict_cmdline_utf16("\xf0\x9f\x98\x80", &u, &n), -EINVAL);  /* outside the BMP */
        ASSERT_EQ(predict_cmdline_utf16("\xc0\xaf", &u, &n), -EINVAL);          /* overlong */
        ASSERT_EQ(predict_cmdline_utf16("\xed\xa0\x80", &u, &n), -EINVAL);      /* surrogate */
        ASSERT_EQ(predict_cmdline_utf16("a\xe2\x82", &u, &n), -EINVAL);         /* cut short */
        ASSERT_EQ(predict_cmdline_utf16("\x80", &u, &n), -EINVAL);
        {
                char *big = malloc(PREDICT_CMDLINE_MAX + 2);
                ASSERT(big);
                memset(big, 'x', PREDICT_CMDLINE_MAX + 1);
                big[PREDICT_CMDLINE_MAX + 1] = 0;
                ASSERT_EQ(predict_cmdline_utf16(big, &u, &n), -E2BIG);
                ASSERT_EQ(predict_cmdline_digest(big, PCR_BANK_SHA256, d), -E2BIG);
                big[PREDICT_CMDLINE_MAX] = 0;
                ASSERT_EQ(predict_cmdline_utf16(big, &u, &n), 0);
                ASSERT_EQ(n, 2 * PREDICT_CMDLINE_MAX + 2);
                u = mfree(u);
                free(big);
        }
        ASSERT_EQ(predict_cmdline_digest("x", 0x0012, d), -EOPNOTSUPP);
        ASSERT_EQ(predict_data_digest("x", 1, 0x0012, d), -EOPNOTSUPP);

        /* The streamed digest of a file equals the one of its bytes. */
        {
                char path[4096];
                _cleanup_free_ char *data = NULL;
                size_t size;

                snprintf(path, sizeof(path), "%s/eventlog-ovmf-sdboot.bin", data_dir);
                ASSERT_EQ(read_file_bounded(path, EVENTLOG_SIZE_MAX, &data, &size), 0);
                ASSERT_EQ(predict_data_digest(data, size, PCR_BANK_SHA256, want), 32);
                fd = open(path, O_RDONLY | O_CLOEXEC);
                ASSERT(fd >= 0);
                ASSERT_EQ(predict_fd_digest(fd, PCR_BANK_SHA256, d), 32);
                close(fd);
                ASSERT(memcmp(d, want, 32) == 0);
        }

        /* UEFI_VARIABLE_DATA: the SecureBoot = 01 digest secboot and real
         * logs have (reference/secboot-cvm.md §3.2). */
        {
                static const uint8_t global[16] = { 0x61, 0xdf, 0xe4, 0x8b, 0xca, 0x93, 0xd2, 0x11,
                                                    0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c };
                uint8_t one = 1;

                unhex("ccfc4bb32888a345bc8aeadaba552b627d99348c767681ab3141f5b01e40a40e", want, 32);
                ASSERT_EQ(predict_uefi_variable_digest(global, "SecureBoot", &one, 1, PCR_BANK_SHA256, d), 32);
                ASSERT(memcmp(d, want, 32) == 0);
                unhex("d4fdd1f14d4041494deb8fc990c45343d2277d08", want, 20);
                ASSERT_EQ(predict_uefi_variable_digest(global, "SecureBoot", &one, 1, PCR_BANK_SHA1, d), 20);
                ASSERT(memcmp(d, want, 20) == 0);
                ASSERT_EQ(predict_uefi_variable_digest(global, "S\xc3\xa9", &one, 1, PCR_BANK_SHA1, d), -EINVAL);
        }
}

/* Substitution against the real log: the components it booted, put in
 * their own place, predict the TPM's values exactly (the events are found
 * and the digests are right); a new initrd changes PCR 9 alone, to the
 * replay of the log with that one digest swapped by hand; a new command
 * line changes PCRs 9 and 12; a new kernel or boot loader PCR 4. */
static void test_substitute(void) {
        _cleanup_(eventlog_freep) EventLog *log = load_real_log(NULL, NULL);
        const EventLogEvent *e;
        PredictDigests d;
        PredictResult *res = malloc(sizeof(*res));
        Expected x;
        uint8_t v[32], z[32];
        EVP_MD_CTX *c;
        unsigned len;

        ASSERT(res);
        load_expected(&x);

        /* The same components: the prediction is the TPM's value. */
        d = (PredictDigests) { .bank = PCR_BANK_SHA256 };
        d.has[PREDICT_INITRD] = d.has[PREDICT_CMDLINE] = d.has[PREDICT_KERNEL] = d.has[PREDICT_BOOT_LOADER] = true;
        memcpy(d.digest[PREDICT_INITRD], x.initrd, 32);
        ASSERT_EQ(predict_cmdline_digest(x.cmdline, PCR_BANK_SHA256, d.digest[PREDICT_CMDLINE]), 32);
        memcpy(d.digest[PREDICT_BOOT_LOADER], x.app_digest[0], 32);
        memcpy(d.digest[PREDICT_KERNEL], x.app_digest[1], 32);
        ASSERT_EQ(predict_substitute(log, &d, res), 0);
        ASSERT_EQ(res->substituted, (1u << 4) | (1u << 9) | (1u << 12));
        ASSERT(res->n_substitutions >= 5);      /* kernel, boot loader, initrd, cmdline in 9 and 12 */
        for (unsigned i = 0; i < PCR_MAX; i++)
                if (i != 10)
                        ASSERT(memcmp(res->predicted.values[i], x.pcr[1][i], 32) == 0);

        /* A new initrd: PCR 9 = H(H(0 || cmdline) || new), nothing else. */
        d = (PredictDigests) { .bank = PCR_BANK_SHA256, .has[PREDICT_INITRD] = true };
        memset(d.digest[PREDICT_INITRD], 0x5a, 32);
        ASSERT_EQ(predict_substitute(log, &d, res), 0);
        ASSERT_EQ(res->substituted, 1u << 9);
        ASSERT_EQ(res->n_substitutions, 1);
        ASSERT_EQ(res->substitutions[0].component, PREDICT_INITRD);
        e = find_event(log, 9, EV_EVENT_TAG, 0);
        memset(z, 0, sizeof(z));
        c = EVP_MD_CTX_new();
        ASSERT(c);
        ASSERT(EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1);
        EVP_DigestUpdate(c, z, 32);
        EVP_DigestUpdate(c, eventlog_event_digest(log, e, PCR_BANK_SHA256), 32);
        EVP_DigestFinal_ex(c, v, &len);
        ASSERT(EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1);
        EVP_DigestUpdate(c, v, 32);
        EVP_DigestUpdate(c, d.digest[PREDICT_INITRD], 32);
        EVP_DigestFinal_ex(c, v, &len);
        EVP_MD_CTX_free(c);
        ASSERT(memcmp(res->predicted.values[9], v, 32) == 0);
        for (unsigned i = 0; i < PCR_MAX; i++)
                if (i != 9)
                        ASSERT(memcmp(res->predicted.values[i], res->current.values[i], 32) == 0);
        ASSERT(memcmp(res->predicted.values[9], res->current.values[9], 32) != 0);

        /* A new command line: PCRs 9 and 12, in every bank. */
        for (int s = 0; s < 4; s++) {
                size_t n = pcr_bank_digest_size(banks[s]);

                d = (PredictDigests) { .bank = banks[s], .has[PREDICT_CMDLINE] = true };
                ASSERT_EQ(predict_cmdline_digest("root=/dev/vda2 quiet", banks[s], d.digest[PREDICT_CMDLINE]), (int) n);
                ASSERT_EQ(predict_substitute(log, &d, res), 0);
                ASSERT_EQ(res->substituted, (1u << 9) | (1u << 12));
                ASSERT(memcmp(res->predicted.values[9], x.pcr[s][9], n) != 0);
                ASSERT(memcmp(res->predicted.values[12], x.pcr[s][12], n) != 0);
                ASSERT(memcmp(res->predicted.values[4], x.pcr[s][4], n) == 0);
        }

        /* A new kernel, a new boot loader: PCR 4 only, and not the same. */
        d = (PredictDigests) { .bank = PCR_BANK_SHA256, .has[PREDICT_KERNEL] = true };
        memset(d.digest[PREDICT_KERNEL], 0x11, 32);
        ASSERT_EQ(predict_substitute(log, &d, res), 0);
        ASSERT_EQ(res->substituted, 1u << 4);
        memcpy(v, res->predicted.values[4], 32);
        d = (PredictDigests) { .bank = PCR_BANK_SHA256, .has[PREDICT_BOOT_LOADER] = true };
        memset(d.digest[PREDICT_BOOT_LOADER], 0x11, 32);
        ASSERT_EQ(predict_substitute(log, &d, res), 0);
        ASSERT_EQ(res->substituted, 1u << 4);
        ASSERT(memcmp(v, res->predicted.values[4], 32) != 0);
        ASSERT(memcmp(v, x.pcr[1][4], 32) != 0);
        free(res);
}

/* A log without the component's event says which one is missing. */
static void test_substitute_missing(void) {
        static const EventLogBank bk[] = { { PCR_BANK_SHA256, 32 } };
        Buf b = {};
        EventLog *log = NULL;
        PredictDigests d = { .bank = PCR_BANK_SHA256, .has[PREDICT_INITRD] = true };
        PredictResult *res = malloc(sizeof(*res));

        ASSERT(res);
        put_header(&b, bk, 1, "Spec ID Event03");
        put_event(&b, 4, EV_SEPARATOR, bk, 1, 0x22, NULL, 0);
        ASSERT_EQ(parse(&b, &log), 0);
        ASSERT_EQ(predict_substitute(log, &d, res), -ENOENT);
        ASSERT_EQ(res->missing, PREDICT_INITRD);
        d = (PredictDigests) { .bank = PCR_BANK_SHA256, .has[PREDICT_KERNEL] = true, .has[PREDICT_BOOT_LOADER] = true };
        ASSERT_EQ(predict_substitute(log, &d, res), -ENOENT);
        d = (PredictDigests) { .bank = PCR_BANK_SHA384, .has[PREDICT_KERNEL] = true };
        ASSERT_EQ(predict_substitute(log, &d, res), -ENOENT);
        eventlog_free(log);
        free(b.p);
        free(res);
}

int main(int argc, char *argv[]) {
        static char dir[4096];
        const char *src = getenv("UNLOCKD_SOURCE_DIR");

        if (argc > 1)
                data_dir = argv[1];
        else if (src) {
                snprintf(dir, sizeof(dir), "%s/tests/unit/data", src);
                data_dir = dir;
        } else
                data_dir = "tests/unit/data";

        TEST(test_real_replay);
        TEST(test_secureboot_replay);
        TEST(test_real_components);
        TEST(test_real_truncated);
        TEST(test_startup_locality);
        TEST(test_banks);
        TEST(test_rejected);
        TEST(test_bounds);
        TEST(test_component_helpers);
        TEST(test_substitute);
        TEST(test_substitute_missing);
        return 0;
}
