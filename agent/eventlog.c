/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "eventlog.h"
#include "macro.h"
#include "pcr.h"

/* The header event (TCG_PCClientPCREvent, SHA-1 format): pcrIndex,
 * eventType, a 20-byte digest, eventDataSize, then the data. */
#define SHA1_EVENT_HEADER_SIZE (4 + 4 + 20 + 4)

/* TCG_EfiSpecIDEventStruct: signature[16], platformClass, specVersionMinor,
 * specVersionMajor, specErrata, uintnSize, numberOfAlgorithms, then
 * {algorithmId, digestSize} × numberOfAlgorithms, vendorInfoSize, vendorInfo. */
#define SPEC_ID_FIXED_SIZE (16 + 4 + 4 + 4)
static const char spec_id_signature[16] = "Spec ID Event03";

/* TCG_EfiStartupLocalityEvent: signature[16], StartupLocality. */
static const char startup_locality_signature[16] = "StartupLocality";

static uint16_t le16(const uint8_t *p) {
        return (uint16_t) (p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p) {
        return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

const EVP_MD *eventlog_bank_md(uint16_t bank) {
        switch (bank) {
        case PCR_BANK_SHA1:
                return EVP_sha1();
        case PCR_BANK_SHA256:
                return EVP_sha256();
        case PCR_BANK_SHA384:
                return EVP_sha384();
        case PCR_BANK_SHA512:
                return EVP_sha512();
        default:
                return NULL;
        }
}

const char *eventlog_type_to_string(uint32_t type) {
        static const struct {
                uint32_t type;
                const char *name;
        } table[] = {
                { EV_PREBOOT_CERT, "EV_PREBOOT_CERT" },
                { EV_POST_CODE, "EV_POST_CODE" },
                { EV_NO_ACTION, "EV_NO_ACTION" },
                { EV_SEPARATOR, "EV_SEPARATOR" },
                { EV_ACTION, "EV_ACTION" },
                { EV_EVENT_TAG, "EV_EVENT_TAG" },
                { EV_S_CRTM_CONTENTS, "EV_S_CRTM_CONTENTS" },
                { EV_S_CRTM_VERSION, "EV_S_CRTM_VERSION" },
                { EV_CPU_MICROCODE, "EV_CPU_MICROCODE" },
                { EV_PLATFORM_CONFIG_FLAGS, "EV_PLATFORM_CONFIG_FLAGS" },
                { EV_TABLE_OF_DEVICES, "EV_TABLE_OF_DEVICES" },
                { EV_COMPACT_HASH, "EV_COMPACT_HASH" },
                { EV_IPL, "EV_IPL" },
                { EV_IPL_PARTITION_DATA, "EV_IPL_PARTITION_DATA" },
                { EV_NONHOST_CODE, "EV_NONHOST_CODE" },
                { EV_NONHOST_CONFIG, "EV_NONHOST_CONFIG" },
                { EV_NONHOST_INFO, "EV_NONHOST_INFO" },
                { EV_OMIT_BOOT_DEVICE_EVENTS, "EV_OMIT_BOOT_DEVICE_EVENTS" },
                { EV_EFI_VARIABLE_DRIVER_CONFIG, "EV_EFI_VARIABLE_DRIVER_CONFIG" },
                { EV_EFI_VARIABLE_BOOT, "EV_EFI_VARIABLE_BOOT" },
                { EV_EFI_BOOT_SERVICES_APPLICATION, "EV_EFI_BOOT_SERVICES_APPLICATION" },
                { EV_EFI_BOOT_SERVICES_DRIVER, "EV_EFI_BOOT_SERVICES_DRIVER" },
                { EV_EFI_RUNTIME_SERVICES_DRIVER, "EV_EFI_RUNTIME_SERVICES_DRIVER" },
                { EV_EFI_GPT_EVENT, "EV_EFI_GPT_EVENT" },
                { EV_EFI_ACTION, "EV_EFI_ACTION" },
                { EV_EFI_PLATFORM_FIRMWARE_BLOB, "EV_EFI_PLATFORM_FIRMWARE_BLOB" },
                { EV_EFI_HANDOFF_TABLES, "EV_EFI_HANDOFF_TABLES" },
                { EV_EFI_PLATFORM_FIRMWARE_BLOB2, "EV_EFI_PLATFORM_FIRMWARE_BLOB2" },
                { EV_EFI_HANDOFF_TABLES2, "EV_EFI_HANDOFF_TABLES2" },
                { EV_EFI_VARIABLE_BOOT2, "EV_EFI_VARIABLE_BOOT2" },
                { EV_EFI_HCRTM_EVENT, "EV_EFI_HCRTM_EVENT" },
                { EV_EFI_VARIABLE_AUTHORITY, "EV_EFI_VARIABLE_AUTHORITY" },
                { EV_EFI_SPDM_FIRMWARE_BLOB, "EV_EFI_SPDM_FIRMWARE_BLOB" },
                { EV_EFI_SPDM_FIRMWARE_CONFIG, "EV_EFI_SPDM_FIRMWARE_CONFIG" },
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (table[i].type == type)
                        return table[i].name;
        return NULL;
}

EventLog *eventlog_free(EventLog *log) {
        if (!log)
                return NULL;
        free(log->events);
        free(log->buf);
        free(log);
        return NULL;
}

int eventlog_bank_index(const EventLog *log, uint16_t alg) {
        if (!log)
                return -EINVAL;
        for (size_t i = 0; i < log->n_banks; i++)
                if (log->banks[i].alg == alg)
                        return (int) i;
        return -ENOENT;
}

const uint8_t *eventlog_event_digest(const EventLog *log, const EventLogEvent *e, uint16_t alg) {
        int i;

        if (!e)
                return NULL;
        i = eventlog_bank_index(log, alg);
        return i < 0 ? NULL : e->digests[i];
}

/* The header event and its Spec ID structure. On success *ret_offset is
 * where the first TCG_PCR_EVENT2 starts. */
static int parse_header(EventLog *log, size_t *ret_offset) {
        const uint8_t *p = log->buf, *d;
        size_t size = log->size, data_size, n, off;

        if (size < SHA1_EVENT_HEADER_SIZE)
                return -EBADMSG;
        data_size = le32(p + 28);
        if (data_size > size - SHA1_EVENT_HEADER_SIZE)
                return -EBADMSG;
        d = p + SHA1_EVENT_HEADER_SIZE;

        /* A well-formed SHA-1 record that is not the crypto-agile header:
         * the TPM 1.2 format (maybe with a "Spec ID Event00/02" header),
         * whose records have no per-bank digests. */
        if (le32(p) != 0 || le32(p + 4) != EV_NO_ACTION || data_size < sizeof(spec_id_signature) ||
            memcmp(d, spec_id_signature, sizeof(spec_id_signature)) != 0)
                return le32(p) < PCR_MAX ? -EOPNOTSUPP : -EBADMSG;
        if (data_size < SPEC_ID_FIXED_SIZE)
                return -EBADMSG;

        log->platform_class = le32(d + 16);
        log->spec_version_minor = d[20];
        log->spec_version_major = d[21];
        log->spec_errata = d[22];
        log->uintn_size = d[23];
        n = le32(d + 24);
        if (n == 0 || n > EVENTLOG_BANKS_MAX)
                return -EBADMSG;
        /* n ≤ 8: no overflow. Then vendorInfoSize and vendorInfo, which end
         * the structure exactly. */
        off = SPEC_ID_FIXED_SIZE + 4 * n;
        if (off + 1 > data_size || off + 1 + d[off] != data_size)
                return -EBADMSG;

        for (size_t i = 0; i < n; i++) {
                uint16_t alg = le16(d + SPEC_ID_FIXED_SIZE + 4 * i);
                uint16_t dsize = le16(d + SPEC_ID_FIXED_SIZE + 4 * i + 2);
                size_t want = pcr_bank_digest_size(alg);

                if (dsize == 0 || dsize > EVENTLOG_DIGEST_MAX || (want > 0 && dsize != want))
                        return -EBADMSG;
                for (size_t j = 0; j < i; j++)
                        if (log->banks[j].alg == alg)
                                return -EBADMSG;
                log->banks[i] = (EventLogBank) { .alg = alg, .size = dsize };
        }
        log->n_banks = n;
        *ret_offset = SHA1_EVENT_HEADER_SIZE + data_size;
        return 0;
}

/* One TCG_PCR_EVENT2 at *offset; advances *offset past it. */
static int parse_event(const EventLog *log, size_t *offset, EventLogEvent *ret) {
        const uint8_t *p = log->buf;
        size_t off = *offset, left = log->size - *offset;
        EventLogEvent e = { .offset = off };
        uint32_t count;

        if (left < 12)
                return -EBADMSG;
        e.pcr = le32(p + off);
        e.type = le32(p + off + 4);
        count = le32(p + off + 8);
        off += 12;
        left -= 12;
        if (count != log->n_banks)
                return -EBADMSG;

        for (uint32_t i = 0; i < count; i++) {
                uint16_t alg;
                int b;

                if (left < 2)
                        return -EBADMSG;
                alg = le16(p + off);
                off += 2;
                left -= 2;
                b = eventlog_bank_index(log, alg);
                if (b < 0 || e.digests[b])
                        return -EBADMSG;
                if (left < log->banks[b].size)
                        return -EBADMSG;
                e.digests[b] = p + off;
                off += log->banks[b].size;
                left -= log->banks[b].size;
        }

        if (left < 4)
                return -EBADMSG;
        e.data_size = le32(p + off);
        off += 4;
        left -= 4;
        if (e.data_size > left)
                return -EBADMSG;
        e.data = e.data_size > 0 ? p + off : NULL;
        off += e.data_size;

        *offset = off;
        *ret = e;
        return 0;
}

int eventlog_parse(const void *p, size_t size, EventLog **ret) {
        _cleanup_(eventlog_freep) EventLog *log = NULL;
        size_t off, allocated = 0;
        int r;

        if (!ret || (!p && size > 0))
                return -EINVAL;
        if (size > EVENTLOG_SIZE_MAX)
                return -EFBIG;

        log = calloc(1, sizeof(*log));
        if (!log)
                return -ENOMEM;
        log->buf = malloc(size > 0 ? size : 1);
        if (!log->buf)
                return -ENOMEM;
        if (size > 0)
                memcpy(log->buf, p, size);
        log->size = size;

        r = parse_header(log, &off);
        if (r < 0)
                return r;

        while (off < size) {
                EventLogEvent e;

                r = parse_event(log, &off, &e);
                if (r < 0)
                        return r;
                if (log->n_events >= allocated) {
                        size_t n = allocated == 0 ? 64 : allocated * 2;
                        EventLogEvent *q;

                        if (allocated >= EVENTLOG_EVENTS_MAX)
                                return -EFBIG;
                        n = MIN(n, (size_t) EVENTLOG_EVENTS_MAX);
                        q = reallocarray(log->events, n, sizeof(*q));
                        if (!q)
                                return -ENOMEM;
                        log->events = q;
                        allocated = n;
                }
                log->events[log->n_events++] = e;
        }

        *ret = TAKE_PTR(log);
        return 0;
}

static void evp_md_ctx_freep(EVP_MD_CTX **c) {
        EVP_MD_CTX_free(*c);
}

int eventlog_replay(const EventLog *log, uint16_t alg, EventLogReplay *ret) {
        _cleanup_(evp_md_ctx_freep) EVP_MD_CTX *c = NULL;
        const EVP_MD *md;
        EventLogReplay r = { .bank = alg };
        bool locality_seen = false;
        size_t size;
        int b;

        if (!log || !ret)
                return -EINVAL;
        b = eventlog_bank_index(log, alg);
        if (b < 0)
                return b;
        md = eventlog_bank_md(alg);
        if (!md)
                return -EOPNOTSUPP;
        size = log->banks[b].size;
        if ((size_t) EVP_MD_get_size(md) != size)
                return -EBADMSG;
        r.digest_size = size;

        c = EVP_MD_CTX_new();
        if (!c)
                return -ENOMEM;

        for (unsigned i = 17; i <= 22; i++)
                memset(r.values[i], 0xff, size);

        for (size_t i = 0; i < log->n_events; i++) {
                const EventLogEvent *e = log->events + i;
                unsigned len = 0;

                if (e->type == EV_NO_ACTION) {
                        if (e->pcr == 0 && !locality_seen && !(r.extended & 1) && e->data_size >= 17 &&
                            memcmp(e->data, startup_locality_signature, sizeof(startup_locality_signature)) == 0) {
                                locality_seen = true;
                                r.startup_locality = e->data[16];
                                r.values[0][size - 1] = e->data[16];
                        }
                        continue;
                }
                if (e->pcr >= PCR_MAX)
                        continue;

                if (EVP_DigestInit_ex(c, md, NULL) != 1 ||
                    EVP_DigestUpdate(c, r.values[e->pcr], size) != 1 ||
                    EVP_DigestUpdate(c, e->digests[b], size) != 1 ||
                    EVP_DigestFinal_ex(c, r.values[e->pcr], &len) != 1 || len != size)
                        return -ENOMEM;
                r.extended |= UINT32_C(1) << e->pcr;
        }

        *ret = r;
        return 0;
}
