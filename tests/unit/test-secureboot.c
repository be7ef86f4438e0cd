/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The variable store parser and the PCR 7 model against real inputs:
 * Debian's OVMF variable stores (OVMF_VARS_4M.ms.fd with Microsoft's keys,
 * OVMF_VARS_4M.fd without), Debian's signed shim and grub, the VM suite's
 * real (Secure Boot off) event log in tests/unit/data, and, when present,
 * a real Secure Boot boot's log in tests/unit/data/secureboot/. Expected
 * digests are the published test vectors of the reference notes or were
 * computed apart from this code (Python, from the same bytes). Skips (77)
 * only when the Debian packages (ovmf, shim-signed, grub-efi-amd64-signed)
 * are not installed. */
#include <openssl/evp.h>

#include "efivars.h"
#include "encoding.h"
#include "eventlog.h"
#include "fileio.h"
#include "macro.h"
#include "pcr.h"
#include "pe.h"
#include "secureboot.h"
#include "tests.h"

#define OVMF_MS   "/usr/share/OVMF/OVMF_VARS_4M.ms.fd"
#define OVMF_NOSB "/usr/share/OVMF/OVMF_VARS_4M.fd"
#define SHIM      "/usr/lib/shim/shimx64.efi.signed"
#define GRUB      "/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed"

static const char *data_dir;

static void *load(const char *path, size_t *ret_size) {
        char *p = NULL;

        ASSERT_EQ(read_file_bounded(path, 256U * 1024U * 1024U, &p, ret_size), 0);
        return p;
}

static void hex_is(const uint8_t *d, size_t n, const char *hex) {
        _cleanup_free_ char *s = NULL;

        ASSERT(hex_encode(d, n, &s) >= 0);
        ASSERT_STREQ(s, hex);
}

static void test_parse_ms(void) {
        _cleanup_(efivars_freep) EfiVarStore *s = NULL;
        _cleanup_free_ uint8_t *buf = NULL;
        const EfiVariable *v;
        size_t n;

        buf = load(OVMF_MS, &n);
        ASSERT_EQ(efivars_parse_ovmf(buf, n, &s), 0);
        v = efivars_find(s, EFI_GLOBAL_VARIABLE_GUID, "PK");
        ASSERT(v);
        ASSERT_EQ(v->size, 1005);
        ASSERT_EQ(v->attributes, 0x27);
        ASSERT(memcmp(v->data, EFI_CERT_X509_GUID, 16) == 0);
        ASSERT_EQ(efivars_find(s, EFI_GLOBAL_VARIABLE_GUID, "KEK")->size, 2565);
        ASSERT_EQ(efivars_find(s, EFI_IMAGE_SECURITY_DATABASE_GUID, "db")->size, 3143);
        ASSERT_EQ(efivars_find(s, EFI_IMAGE_SECURITY_DATABASE_GUID, "dbx")->size, 76);
        ASSERT(!efivars_find(s, EFI_IMAGE_SECURITY_DATABASE_GUID, "dbt"));
        /* Stored there but computed by the firmware: no SecureBoot variable. */
        ASSERT(!efivars_find(s, EFI_GLOBAL_VARIABLE_GUID, "SecureBoot"));
        v = efivars_find(s, EFI_SECURE_BOOT_ENABLE_DISABLE_GUID, "SecureBootEnable");
        ASSERT(v && v->size == 1 && v->data[0] == 1);
        ASSERT_EQ(efivars_secure_boot(s), 1);
        /* Deleted entries are skipped: BootOrder was deleted and not
         * rewritten; CustomMode was written three times, the live one is 0. */
        ASSERT(!efivars_find(s, EFI_GLOBAL_VARIABLE_GUID, "BootOrder"));
        ASSERT(efivars_find(s, EFI_GLOBAL_VARIABLE_GUID, "Boot0002"));
        ASSERT(efivars_find(s, EFI_GLOBAL_VARIABLE_GUID, "ConOut")->size == 146);
        {
                static const uint8_t custom_mode_guid[16] = { 0x0c, 0xec, 0x76, 0xc0, 0x28, 0x70, 0x99, 0x43,
                                                              0xa0, 0x72, 0x71, 0xee, 0x5c, 0x44, 0x8b, 0x9f };

                v = efivars_find(s, custom_mode_guid, "CustomMode");
                ASSERT(v && v->size == 1 && v->data[0] == 0);
        }
        ASSERT_EQ(s->n_variables, 31);

        /* The store's db: two X.509 ESDs (Windows PCA 2011, UEFI CA 2011). */
        v = efivars_find(s, EFI_IMAGE_SECURITY_DATABASE_GUID, "db");
        ASSERT_EQ(efivars_signature_foreach(v->data, v->size, NULL, NULL), 0);
}

static int count_cb(const uint8_t type[16], const uint8_t *esd, size_t esd_size, void *userdata) {
        (*(unsigned *) userdata)++;
        return memcmp(type, EFI_CERT_X509_GUID, 16) == 0 && esd_size > 16 ? 0 : -EBADMSG;
}

static void test_signature_lists(void) {
        _cleanup_(efivars_freep) EfiVarStore *s = NULL;
        _cleanup_free_ uint8_t *buf = NULL, *copy = NULL;
        const EfiVariable *db;
        unsigned count = 0;
        size_t n;

        buf = load(OVMF_MS, &n);
        ASSERT_EQ(efivars_parse_ovmf(buf, n, &s), 0);
        db = efivars_find(s, EFI_IMAGE_SECURITY_DATABASE_GUID, "db");
        ASSERT_EQ(efivars_signature_foreach(db->data, db->size, count_cb, &count), 0);
        ASSERT_EQ(count, 2);
        /* Truncated anywhere: refused before any callback. */
        for (size_t k = 1; k < db->size; k += 7) {
                count = 0;
                ASSERT_EQ(efivars_signature_foreach(db->data, k, count_cb, &count), -EBADMSG);
                ASSERT_EQ(count, 0);
        }
        /* A SignatureSize that does not divide the list. */
        copy = malloc(db->size);
        memcpy(copy, db->data, db->size);
        copy[24]++;
        ASSERT_EQ(efivars_signature_foreach(copy, db->size, NULL, NULL), -EBADMSG);
        copy[24]--;
        copy[16] = 0xff, copy[17] = 0xff, copy[18] = 0xff, copy[19] = 0x7f;   /* ListSize past the end */
        ASSERT_EQ(efivars_signature_foreach(copy, db->size, NULL, NULL), -EBADMSG);
        ASSERT_EQ(efivars_signature_foreach(NULL, 0, NULL, NULL), 0);
}

static void test_parse_rejects(void) {
        _cleanup_free_ uint8_t *buf = NULL;
        EfiVarStore *s = NULL;
        size_t n;

        buf = load(OVMF_MS, &n);
        /* Every truncation either parses (a store cut inside its free
         * space) or is refused; never a crash (ASan/valgrind suites). */
        for (size_t k = 0; k < 0x6000; k += 3) {
                int r = efivars_parse_ovmf(buf, k, &s);

                ASSERT(r == 0 || r == -EBADMSG);
                s = efivars_free(s);
        }
        /* The FV signature, the store GUID, the store state. */
        buf[40] ^= 1;
        ASSERT_EQ(efivars_parse_ovmf(buf, n, &s), -EBADMSG);
        buf[40] ^= 1;
        buf[0x48] ^= 1;
        ASSERT_EQ(efivars_parse_ovmf(buf, n, &s), -EBADMSG);
        buf[0x48] ^= 1;
        buf[0x48 + 21] = 0xff;
        ASSERT_EQ(efivars_parse_ovmf(buf, n, &s), -EBADMSG);
        buf[0x48 + 21] = 0xfe;
        /* A live entry whose DataSize runs past the store. */
        buf[0xb8 + 40] = 0xff, buf[0xb8 + 41] = 0xff, buf[0xb8 + 42] = 0xff;
        ASSERT_EQ(efivars_parse_ovmf(buf, n, &s), -EBADMSG);
        buf[0xb8 + 40] = 4, buf[0xb8 + 41] = 0, buf[0xb8 + 42] = 0;
        ASSERT_EQ(efivars_parse_ovmf(buf, n, &s), 0);
        s = efivars_free(s);
        /* Two live copies of CustomMode: no one meaning. */
        buf[0x3ca0 + 2] = 0x3f;
        ASSERT_EQ(efivars_parse_ovmf(buf, n, &s), -EBADMSG);
        /* One in deleted transition with a live copy: the live one wins;
         * alone (the live one deleted), it counts. */
        buf[0x3ca0 + 2] = 0x3e;
        ASSERT_EQ(efivars_parse_ovmf(buf, n, &s), 0);
        s = efivars_free(s);
        buf[0x5944 + 2] = 0x3c;
        ASSERT_EQ(efivars_parse_ovmf(buf, n, &s), 0);
        {
                static const uint8_t custom_mode_guid[16] = { 0x0c, 0xec, 0x76, 0xc0, 0x28, 0x70, 0x99, 0x43,
                                                              0xa0, 0x72, 0x71, 0xee, 0x5c, 0x44, 0x8b, 0x9f };
                const EfiVariable *v = efivars_find(s, custom_mode_guid, "CustomMode");

                ASSERT(v && v->data[0] == 1);
        }
        s = efivars_free(s);
        ASSERT_EQ(efivars_parse_ovmf(NULL, 0, &s), -EBADMSG);
}

/* The Secure Boot off store against the VM suite's real log: the six PCR 7
 * events one by one and the TPM's PCR 7. */

/* Walks log's PCR 7 events beside p's, asserting each one's type and its
 * digest in bank (and, with check_data, that the variable events carry the
 * bytes measured); returns how many there were. */
static size_t pcr_events_match(const EventLog *log, const SecureBootPrediction *p, uint16_t bank, bool check_data) {
        size_t k = 0;

        for (size_t i = 0; i < log->n_events; i++) {
                const EventLogEvent *e = log->events + i;

                if (e->pcr != p->pcr)
                        continue;
                ASSERT(k < p->n_events);
                ASSERT_EQ(e->type, p->events[k].type);
                ASSERT(memcmp(eventlog_event_digest(log, e, bank), p->events[k].digest, p->digest_size) == 0);
                /* The data the log carries is what was measured. */
                if (check_data && (e->type == EV_EFI_VARIABLE_AUTHORITY || e->type == EV_EFI_VARIABLE_DRIVER_CONFIG))
                        ASSERT(e->data_size >= 32 && e->data_size - 32 >= p->events[k].size &&
                               memcmp(e->data + e->data_size - p->events[k].size, p->events[k].data,
                                      p->events[k].size) == 0);
                k++;
        }
        return k;
}
/* PCR 4 of a real log: every event and the replayed value, in each of the
 * log's banks, predicted from the chain (the real boots tried one boot
 * option before the disk: QEMU's empty DVD drive). */
static void pcr4_is_log(const EventLog *log, const SecureBootImage *chain, size_t n_chain, size_t n_events) {
        for (size_t b = 0; b < log->n_banks; b++) {
                _cleanup_(secureboot_prediction_freep) SecureBootPrediction *p = NULL, *q = NULL;
                _cleanup_free_ char *error = NULL;
                uint16_t bank = log->banks[b].alg;
                EventLogReplay replay;

                if (!eventlog_bank_md(bank) || eventlog_replay(log, bank, &replay) < 0)
                        continue;
                ASSERT_EQ(secureboot_predict_pcr4(chain, n_chain, 1, bank, &p, &error), 0);
                ASSERT_EQ(p->pcr, 4);
                ASSERT_EQ(pcr_events_match(log, p, bank, false), n_events);
                ASSERT_EQ(p->n_events, n_events);
                ASSERT(memcmp(p->value, replay.values[4], p->digest_size) == 0);
                /* With no failed boot option: two events fewer, another value. */
                ASSERT_EQ(secureboot_predict_pcr4(chain, n_chain, 0, bank, &q, &error), 0);
                ASSERT_EQ(q->n_events, n_events - 2);
                ASSERT(memcmp(q->value, replay.values[4], q->digest_size) != 0);
        }
}

static void test_nosb_real_log(void) {
        _cleanup_(secureboot_prediction_freep) SecureBootPrediction *p = NULL;
        _cleanup_(efivars_freep) EfiVarStore *s = NULL;
        _cleanup_(eventlog_freep) EventLog *log = NULL;
        _cleanup_free_ uint8_t *buf = NULL, *lbuf = NULL;
        char path[4096];
        size_t n, k = 0;

        buf = load(OVMF_NOSB, &n);
        ASSERT_EQ(efivars_parse_ovmf(buf, n, &s), 0);
        ASSERT_EQ(efivars_secure_boot(s), 0);
        ASSERT_EQ(secureboot_predict_pcr7(s, NULL, 0, PCR_BANK_SHA256, &p, NULL), 0);
        ASSERT_EQ(p->n_events, 6);

        snprintf(path, sizeof(path), "%s/eventlog-ovmf-sdboot.bin", data_dir);
        lbuf = load(path, &n);
        ASSERT_EQ(eventlog_parse(lbuf, n, &log), 0);
        k = pcr_events_match(log, p, PCR_BANK_SHA256, false);
        ASSERT_EQ(k, p->n_events);
        /* pcr sha256 7 of eventlog-ovmf-sdboot.txt */
        hex_is(p->value, 32, "65caf8dd1e0ea7a6347b635d2b379c93b9a1351edc2afc3ecda700e534eb3068");

        /* And in SHA-1: the log's digests too. */
        p = secureboot_prediction_free(p);
        ASSERT_EQ(secureboot_predict_pcr7(s, NULL, 0, PCR_BANK_SHA1, &p, NULL), 0);
        hex_is(p->events[0].digest, 20, "57cd4dc19442475aa82743484f3b1caa88e142b8");
        hex_is(p->events[5].digest, 20, "9069ca78e7450a285173431b3e52c5c25299e473");
}

static void test_sb_chain(void) {
        _cleanup_(secureboot_prediction_freep) SecureBootPrediction *p = NULL;
        _cleanup_(efivars_freep) EfiVarStore *s = NULL;
        _cleanup_free_ uint8_t *buf = NULL, *shim = NULL, *grub = NULL;
        _cleanup_free_ char *error = NULL;
        SecureBootImage chain[3];
        unsigned major, minor;
        const char *sbat;
        size_t n, shim_size, grub_size, sbat_size;

        buf = load(OVMF_MS, &n);
        ASSERT_EQ(efivars_parse_ovmf(buf, n, &s), 0);
        shim = load(SHIM, &shim_size);
        grub = load(GRUB, &grub_size);

        ASSERT_EQ(secureboot_shim_version(shim, shim_size, &major, &minor), 0);
        ASSERT(major > 15 || (major == 15 && minor >= 7));
        ASSERT_EQ(secureboot_shim_sbatlevel(shim, shim_size, false, &sbat, &sbat_size), 0);
        ASSERT(sbat_size > 7 && memcmp(sbat, "sbat,1,", 7) == 0 && sbat[sbat_size - 1] == '\n');
        ASSERT_EQ(secureboot_shim_version(grub, grub_size, &major, &minor), -ENOENT);

        /* The pre-boot part alone. */
        ASSERT_EQ(secureboot_predict_pcr7(s, NULL, 0, PCR_BANK_SHA256, &p, NULL), 0);
        ASSERT_EQ(p->n_events, 6);
        hex_is(p->events[0].digest, 32, "ccfc4bb32888a345bc8aeadaba552b627d99348c767681ab3141f5b01e40a40e");
        hex_is(p->events[5].digest, 32, "df3f619804a92fdb4057192dc43dd748ea778adc52bc498ce80524c014b81119");
        p = secureboot_prediction_free(p);

        chain[0] = (SecureBootImage) { .name = "shimx64.efi", .data = shim, .size = shim_size };
        chain[1] = (SecureBootImage) { .name = "grubx64.efi", .data = grub, .size = grub_size };
        ASSERT_EQ(secureboot_predict_pcr7(s, chain, 2, PCR_BANK_SHA256, &p, &error), 0);
        ASSERT_EQ(p->n_events, 9);
        /* The firmware's db authority for shim: Microsoft Corporation UEFI
         * CA 2011 with Microsoft's owner GUID (published vector). */
        ASSERT_EQ(p->events[6].type, EV_EFI_VARIABLE_AUTHORITY);
        ASSERT_STREQ(p->events[6].name, "db");
        hex_is(p->events[6].digest, 32, "4d4a8e2c74133bbdc01a16eaf2dbb5d575afeb36f5d8dfcf609ae043909e2ee9");
        ASSERT_STREQ(p->events[7].name, "SbatLevel");
        ASSERT(p->events[7].size == sbat_size && memcmp(p->events[7].data, sbat, sbat_size) == 0);
        /* grub: Debian's vendor certificate, as MokListRT. */
        ASSERT_STREQ(p->events[8].name, "MokListRT");
        ASSERT(memcmp(p->events[8].guid, EFI_SHIM_LOCK_GUID, 16) == 0);
        ASSERT(memcmp(p->events[8].data, EFI_SHIM_LOCK_GUID, 16) == 0);
        ASSERT_EQ(p->events[8].data[16], 0x30);
        p = secureboot_prediction_free(p);

        /* grub twice (as the kernel, signed by the same CA, would be): de-duplicated. */
        chain[2] = chain[1];
        ASSERT_EQ(secureboot_predict_pcr7(s, chain, 3, PCR_BANK_SHA256, &p, &error), 0);
        ASSERT_EQ(p->n_events, 9);
        p = secureboot_prediction_free(p);

        /* shim alone: what it verifies is part of PCR 7. */
        ASSERT_EQ(secureboot_predict_pcr7(s, chain, 1, PCR_BANK_SHA256, &p, &error), -EINVAL);
        error = mfree(error);
        /* Secure Boot off: grub measures nothing; shim would, and is refused. */
        {
                _cleanup_(efivars_freep) EfiVarStore *off = NULL;
                _cleanup_free_ uint8_t *b2 = NULL;
                size_t n2;

                b2 = load(OVMF_NOSB, &n2);
                ASSERT_EQ(efivars_parse_ovmf(b2, n2, &off), 0);
                ASSERT_EQ(secureboot_predict_pcr7(off, chain, 2, PCR_BANK_SHA256, &p, &error), -EOPNOTSUPP);
                error = mfree(error);
                ASSERT_EQ(secureboot_predict_pcr7(off, chain + 1, 1, PCR_BANK_SHA256, &p, &error), 0);
                ASSERT_EQ(p->n_events, 6);
                p = secureboot_prediction_free(p);
        }

        /* grub first: no db entry allows it. */
        ASSERT_EQ(secureboot_predict_pcr7(s, chain + 1, 1, PCR_BANK_SHA256, &p, &error), -EPERM);
        ASSERT(error && strstr(error, "grubx64.efi"));
        error = mfree(error);

        /* A modified image: its signatures no longer match its digest. */
        {
                _cleanup_free_ uint8_t *bad = malloc(shim_size);

                memcpy(bad, shim, shim_size);
                bad[0x21000 + 100] ^= 1;        /* in .text */
                chain[0].data = bad;
                ASSERT_EQ(secureboot_predict_pcr7(s, chain, 2, PCR_BANK_SHA256, &p, &error), -EPERM);
                chain[0].data = shim;
                error = mfree(error);
        }
}

static bool file_sha256_is(const uint8_t *d, size_t n, const char *hex) {
        _cleanup_free_ char *s = NULL;
        uint8_t md[32];
        unsigned len = 0;

        ASSERT(EVP_Digest(d, n, md, &len, EVP_sha256(), NULL) == 1);
        ASSERT(hex_encode(md, 32, &s) >= 0);
        return streq(s, hex);
}

/* The value of "pcr BANK 7 HEX" in the .txt beside the real log. */
static void txt_pcr7(const char *txt, const char *bank, char *ret, size_t size) {
        char key[32];
        const char *s;

        snprintf(key, sizeof(key), "pcr %s 7 ", bank);
        s = strstr(txt, key);
        ASSERT(s);
        s += strlen(key);
        ASSERT(strcspn(s, "\n") < size);
        snprintf(ret, size, "%.*s", (int) strcspn(s, "\n"), s);
}

/* A real Secure Boot boot (tests/unit/data/secureboot): every PCR 7 event
 * of its log and the TPM's PCR 7, in each bank, predicted from the store
 * it booted with (and from the store after that boot, which shim had
 * written its SbatLevel to, and from the booted system's efivarfs) and
 * Debian's signed shim, grub and kernel. */
static void test_sb_real_log(void) {
        static const uint16_t banks[] = { PCR_BANK_SHA1, PCR_BANK_SHA256, PCR_BANK_SHA384 };
        static const char *const stores[] = { OVMF_MS, "secureboot/OVMF_VARS.after.fd", "secureboot/efivars" };
        _cleanup_(eventlog_freep) EventLog *log = NULL;
        _cleanup_free_ uint8_t *lbuf = NULL, *shim = NULL, *grub = NULL, *kernel = NULL;
        _cleanup_free_ char *txt = NULL;
        SecureBootImage chain[3];
        size_t n, shim_size, grub_size, kernel_size = 0, n_chain = 2;
        char path[4096];

        snprintf(path, sizeof(path), "%s/secureboot/eventlog-ovmf-shim.txt", data_dir);
        txt = load(path, &n);
        snprintf(path, sizeof(path), "%s/secureboot/eventlog-ovmf-shim.bin", data_dir);
        lbuf = load(path, &n);
        ASSERT_EQ(eventlog_parse(lbuf, n, &log), 0);
        shim = load(SHIM, &shim_size);
        grub = load(GRUB, &grub_size);
        if (!file_sha256_is(shim, shim_size, "0fc347af103ec1dfac6e3f184c0a5241a2ce756a0932b359c404d39c45423806") ||
            !file_sha256_is(grub, grub_size, "78313ff24688c8b2e1d4f4e1eff13236b2bd29b0f76ba749fd7fff4d305a1d94")) {
                /* Another shim-signed or grub-efi-amd64-signed than the one
                 * booted: the log is not theirs. The model was still checked
                 * on the installed builds by test_sb_chain. */
                printf("# note: the installed shim or grub is not the build of the real log; not compared\n");
                return;
        }
        chain[0] = (SecureBootImage) { .name = "shimx64.efi", .data = shim, .size = shim_size };
        chain[1] = (SecureBootImage) { .name = "grubx64.efi", .data = grub, .size = grub_size };
        if (access("/boot/vmlinuz-6.1.0-57-amd64", R_OK) >= 0) {
                kernel = load("/boot/vmlinuz-6.1.0-57-amd64", &kernel_size);
                if (file_sha256_is(kernel, kernel_size,
                                   "85667e6c72245133bd7e3e80bac7d16b26fda15c0a3c68faa4b713850ea526cd")) {
                        chain[2] = (SecureBootImage) { .name = "vmlinuz", .data = kernel, .size = kernel_size };
                        n_chain = 3;
                }
        }

        for (size_t si = 0; si < ELEMENTSOF(stores); si++) {
                _cleanup_(efivars_freep) EfiVarStore *s = NULL;

                if (si == 0)
                        snprintf(path, sizeof(path), "%s", stores[si]);
                else
                        snprintf(path, sizeof(path), "%s/%s", data_dir, stores[si]);
                ASSERT_EQ(efivars_load(path, &s), 0);
                /* The store after the boot holds the SbatLevel shim wrote;
                 * the booted system's efivarfs its mirror and SecureBoot. */
                ASSERT(si != 1 || efivars_find(s, EFI_SHIM_LOCK_GUID, "SbatLevel"));
                ASSERT(si != 2 || (efivars_find(s, EFI_SHIM_LOCK_GUID, "SbatLevelRT") &&
                                   !s->computed_secure_boot && efivars_secure_boot(s) == 1));

                for (size_t b = 0; b < ELEMENTSOF(banks); b++) {
                        _cleanup_(secureboot_prediction_freep) SecureBootPrediction *p = NULL;
                        _cleanup_free_ char *error = NULL, *got = NULL;
                        char want[2 * EVENTLOG_DIGEST_MAX + 1];
                        size_t k = 0;

                        ASSERT_EQ(secureboot_predict_pcr7(s, chain, n_chain, banks[b], &p, &error), 0);
                        k = pcr_events_match(log, p, banks[b], true);
                        ASSERT_EQ(k, p->n_events);
                        ASSERT_EQ(k, 9);
                        txt_pcr7(txt, pcr_bank_to_string(banks[b]), want, sizeof(want));
                        ASSERT(hex_encode(p->value, p->digest_size, &got) >= 0);
                        ASSERT_STREQ(got, want);
                }
        }
        /* PCR 4: shim, grub, and (when its build is here) the kernel twice. */
        if (n_chain == 3)
                pcr4_is_log(log, chain, n_chain, 8);
        else
                printf("# note: the kernel of the real log is not installed; PCR 4 not compared\n");
}

/* The Secure Boot-off log: systemd-boot, then the kernel it starts through
 * the firmware's LoadImage, each measured once. */
static void test_pcr4_sdboot_log(void) {
        _cleanup_(eventlog_freep) EventLog *log = NULL;
        _cleanup_free_ uint8_t *lbuf = NULL, *sdboot = NULL, *kernel = NULL;
        SecureBootImage chain[2];
        size_t n, sdboot_size, kernel_size;
        char path[4096];

        if (access("/usr/lib/systemd/boot/efi/systemd-bootx64.efi", R_OK) < 0 ||
            access("/boot/vmlinuz-6.1.0-57-amd64", R_OK) < 0) {
                printf("# note: systemd-boot or the kernel of the real log is not installed; not compared\n");
                return;
        }
        sdboot = load("/usr/lib/systemd/boot/efi/systemd-bootx64.efi", &sdboot_size);
        kernel = load("/boot/vmlinuz-6.1.0-57-amd64", &kernel_size);
        if (!file_sha256_is(sdboot, sdboot_size, "10288fece5e90ce3ba3e7160f49695b022d648f7ef41774678db8c77774db167") ||
            !file_sha256_is(kernel, kernel_size, "85667e6c72245133bd7e3e80bac7d16b26fda15c0a3c68faa4b713850ea526cd")) {
                printf("# note: the installed systemd-boot or kernel is not the build of the real log; not compared\n");
                return;
        }
        snprintf(path, sizeof(path), "%s/eventlog-ovmf-sdboot.bin", data_dir);
        lbuf = load(path, &n);
        ASSERT_EQ(eventlog_parse(lbuf, n, &log), 0);
        chain[0] = (SecureBootImage) { .name = "systemd-bootx64.efi", .data = sdboot, .size = sdboot_size };
        chain[1] = (SecureBootImage) { .name = "vmlinuz", .data = kernel, .size = kernel_size };
        pcr4_is_log(log, chain, 2, 6);
}

/* What the model refuses: no image, too many failed options, a shim other
 * than 16, grub not started by shim, something that is not PE. */
static void test_pcr4_refusals(void) {
        _cleanup_free_ uint8_t *shim = NULL, *grub = NULL, *old = NULL;
        _cleanup_free_ char *error = NULL;
        SecureBootPrediction *p = NULL;
        SecureBootImage chain[3];
        size_t shim_size, grub_size, off, len;

        shim = load(SHIM, &shim_size);
        grub = load(GRUB, &grub_size);
        chain[0] = (SecureBootImage) { .name = "shimx64.efi", .data = shim, .size = shim_size };
        chain[1] = (SecureBootImage) { .name = "grubx64.efi", .data = grub, .size = grub_size };
        chain[2] = (SecureBootImage) { .name = "junk", .data = (const uint8_t *) "MZ junk", .size = 7 };
        ASSERT_EQ(secureboot_predict_pcr4(chain, 0, 0, PCR_BANK_SHA256, &p, &error), -EINVAL);
        ASSERT_EQ(secureboot_predict_pcr4(chain, 2, SECUREBOOT_FAILED_BOOT_OPTIONS_MAX + 1, PCR_BANK_SHA256, &p, &error),
                  -E2BIG);
        ASSERT_EQ(secureboot_predict_pcr4(chain, 3, 0, PCR_BANK_SHA256, &p, &error), -EBADMSG);
        ASSERT(strstr(error, "junk"));
        /* grub first (no shim), loading what follows: not modelled. */
        chain[2] = chain[1];
        ASSERT_EQ(secureboot_predict_pcr4(chain + 1, 2, 0, PCR_BANK_SHA256, &p, &error), -EOPNOTSUPP);
        ASSERT(strstr(error, "grub"));
        /* A shim that says it is 15.8 (its .data.ident edited). */
        old = malloc(shim_size);
        ASSERT(old);
        memcpy(old, shim, shim_size);
        ASSERT_EQ(pe_find_section(old, shim_size, ".data.ident", &off, &len), 0);
        {
                uint8_t *v = memmem(old + off, len, "$Version: 16.", 13);

                ASSERT(v);
                memcpy(v, "$Version: 15.8", 14);
        }
        chain[0].data = old;
        ASSERT_EQ(secureboot_predict_pcr4(chain, 2, 0, PCR_BANK_SHA256, &p, &error), -EOPNOTSUPP);
        ASSERT(strstr(error, "15.8"));
        ASSERT(!p);
}

static void write_file(const char *dir, const char *name, const void *p, size_t n) {
        char path[4096];
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        f = fopen(path, "we");
        ASSERT(f);
        ASSERT(fwrite(p, 1, n, f) == n);
        ASSERT(fclose(f) == 0);
}

/* A directory of ESL files with the same keys (db split in two files, in
 * name order) gives the same PCR 7; a malformed one is refused. */
static void test_esl_dir(void) {
        _cleanup_(secureboot_prediction_freep) SecureBootPrediction *a = NULL, *b = NULL;
        _cleanup_(efivars_freep) EfiVarStore *s = NULL, *d = NULL;
        _cleanup_free_ uint8_t *buf = NULL;
        const EfiVariable *v;
        char dir[] = "/tmp/test-secureboot.XXXXXX", cmd[4200];
        uint32_t first;
        size_t n;

        buf = load(OVMF_MS, &n);
        ASSERT_EQ(efivars_parse_ovmf(buf, n, &s), 0);
        ASSERT(mkdtemp(dir));
        v = efivars_find(s, EFI_GLOBAL_VARIABLE_GUID, "PK");
        write_file(dir, "PK.esl", v->data, v->size);
        v = efivars_find(s, EFI_GLOBAL_VARIABLE_GUID, "KEK");
        write_file(dir, "KEK-microsoft.esl", v->data, v->size);
        v = efivars_find(s, EFI_IMAGE_SECURITY_DATABASE_GUID, "db");
        memcpy(&first, v->data + 16, 4);
        ASSERT(first < v->size);
        write_file(dir, "db-1.esl", v->data, first);
        write_file(dir, "db-2.esl", v->data + first, v->size - first);
        v = efivars_find(s, EFI_IMAGE_SECURITY_DATABASE_GUID, "dbx");
        write_file(dir, "dbx.esl", v->data, v->size);
        write_file(dir, "README", "not an ESL", 10);

        ASSERT_EQ(efivars_load(dir, &d), 0);
        ASSERT_EQ(d->n_variables, 4);
        ASSERT_EQ(efivars_secure_boot(d), 1);
        ASSERT_EQ(secureboot_predict_pcr7(s, NULL, 0, PCR_BANK_SHA256, &a, NULL), 0);
        ASSERT_EQ(secureboot_predict_pcr7(d, NULL, 0, PCR_BANK_SHA256, &b, NULL), 0);
        ASSERT(memcmp(a->value, b->value, 32) == 0);
        d = efivars_free(d);

        write_file(dir, "db-3.esl", "junk", 4);
        ASSERT_EQ(efivars_load(dir, &d), -EBADMSG);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        ASSERT(system(cmd) == 0);
}

/* The JSON form of the same keys gives the same pre-boot events. */
static void test_json(void) {
        _cleanup_(secureboot_prediction_freep) SecureBootPrediction *a = NULL, *b = NULL;
        _cleanup_(efivars_freep) EfiVarStore *s = NULL, *j = NULL;
        _cleanup_free_ uint8_t *buf = NULL;
        _cleanup_free_ char *json = NULL;
        static const char *const names[] = { "PK", "KEK", "db", "dbx" };
        size_t n, len = 0;

        buf = load(OVMF_MS, &n);
        ASSERT_EQ(efivars_parse_ovmf(buf, n, &s), 0);
        json = strdup("{");
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                const EfiVariable *v = efivars_find(s, i < 2 ? EFI_GLOBAL_VARIABLE_GUID : EFI_IMAGE_SECURITY_DATABASE_GUID,
                                                    names[i]);
                _cleanup_free_ char *b64 = NULL;
                char *t;

                ASSERT(base64_encode(v->data, v->size, false, &b64) >= 0);
                ASSERT(asprintf(&t, "%s%s\"%s\": \"%s\"", json, i ? ", " : "", names[i], b64) > 0);
                free(json);
                json = t;
        }
        {
                char *t;

                ASSERT(asprintf(&t, "%s, \"omitsReadyToBootEvent\": false}", json) > 0);
                free(json);
                json = t;
        }
        len = strlen(json);
        ASSERT_EQ(efivars_parse_json(json, len, &j), 0);
        ASSERT_EQ(efivars_secure_boot(j), 1);
        ASSERT_EQ(secureboot_predict_pcr7(s, NULL, 0, PCR_BANK_SHA256, &a, NULL), 0);
        ASSERT_EQ(secureboot_predict_pcr7(j, NULL, 0, PCR_BANK_SHA256, &b, NULL), 0);
        ASSERT_EQ(a->n_events, b->n_events);
        ASSERT(memcmp(a->value, b->value, 32) == 0);

        efivars_free(j);
        j = NULL;
        ASSERT_EQ(efivars_parse_json("{\"PK\": 1}", 9, &j), -EBADMSG);
        ASSERT_EQ(efivars_parse_json("{\"db\": \"AAAA\"}", 14, &j), -EBADMSG);  /* 3 bytes: no ESL */
        ASSERT_EQ(efivars_parse_json("[]", 2, &j), -EBADMSG);
        ASSERT_EQ(efivars_parse_json("{} x", 4, &j), -EBADMSG);
        ASSERT_EQ(efivars_parse_json("{}", 2, &j), 0);
        ASSERT_EQ(efivars_secure_boot(j), 0);
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
        if (access(OVMF_MS, R_OK) < 0 || access(OVMF_NOSB, R_OK) < 0 || access(SHIM, R_OK) < 0 ||
            access(GRUB, R_OK) < 0) {
                printf("SKIP: ovmf, shim-signed or grub-efi-amd64-signed is not installed (tools/install-deps)\n");
                return 77;
        }

        TEST(test_parse_ms);
        TEST(test_signature_lists);
        TEST(test_parse_rejects);
        TEST(test_nosb_real_log);
        TEST(test_sb_chain);
        TEST(test_sb_real_log);
        TEST(test_pcr4_sdboot_log);
        TEST(test_pcr4_refusals);
        TEST(test_json);
        TEST(test_esl_dir);
        return 0;
}
