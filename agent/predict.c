/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <endian.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "eventlog.h"
#include "macro.h"
#include "predict.h"

#define UEFI_VARIABLE_NAME_MAX 1024U

static void evp_md_ctx_freep(EVP_MD_CTX **c) {
        EVP_MD_CTX_free(*c);
}

static int digest_init(uint16_t bank, EVP_MD_CTX **ret) {
        const EVP_MD *md = eventlog_bank_md(bank);
        EVP_MD_CTX *c;

        if (!md)
                return -EOPNOTSUPP;
        c = EVP_MD_CTX_new();
        if (!c)
                return -ENOMEM;
        if (EVP_DigestInit_ex(c, md, NULL) != 1) {
                EVP_MD_CTX_free(c);
                return -ENOMEM;
        }
        *ret = c;
        return 0;
}

static int digest_final(EVP_MD_CTX *c, uint8_t *ret) {
        unsigned len = 0;

        if (EVP_DigestFinal_ex(c, ret, &len) != 1)
                return -ENOMEM;
        return (int) len;
}

/* Strict UTF-8 (no overlong forms, no surrogates), BMP only. Returns the
 * code point and advances *s, or -EINVAL. */
static int utf8_next_bmp(const uint8_t **s) {
        const uint8_t *p = *s;
        uint32_t c;

        if (p[0] < 0x80) {
                *s = p + 1;
                return p[0];
        }
        if ((p[0] & 0xe0) == 0xc0) {
                if ((p[1] & 0xc0) != 0x80)
                        return -EINVAL;
                c = (uint32_t) (p[0] & 0x1f) << 6 | (p[1] & 0x3f);
                if (c < 0x80)
                        return -EINVAL;
                *s = p + 2;
                return (int) c;
        }
        if ((p[0] & 0xf0) == 0xe0) {
                if ((p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80)
                        return -EINVAL;
                c = (uint32_t) (p[0] & 0x0f) << 12 | (uint32_t) (p[1] & 0x3f) << 6 | (p[2] & 0x3f);
                if (c < 0x800 || (c >= 0xd800 && c <= 0xdfff))
                        return -EINVAL;
                *s = p + 3;
                return (int) c;
        }
        /* Four-byte sequences (outside the BMP) and stray bytes. */
        return -EINVAL;
}

int predict_cmdline_utf16(const char *cmdline, uint8_t **ret, size_t *ret_size) {
        _cleanup_free_ uint8_t *out = NULL;
        const uint8_t *s = (const uint8_t *) cmdline;
        size_t len, k = 0;

        if (!cmdline || !ret || !ret_size)
                return -EINVAL;
        len = strnlen(cmdline, PREDICT_CMDLINE_MAX + 1);
        if (len > PREDICT_CMDLINE_MAX)
                return -E2BIG;

        /* At most one UTF-16 unit per byte of UTF-8, plus the NUL. The
         * decoder reads past a lead byte only while the bytes are
         * continuation bytes, so it never passes the terminating NUL. */
        out = malloc((len + 1) * 2);
        if (!out)
                return -ENOMEM;
        while (*s) {
                int c = utf8_next_bmp(&s);

                if (c < 0)
                        return c;
                out[k++] = (uint8_t) (c & 0xff);
                out[k++] = (uint8_t) (c >> 8);
        }
        out[k++] = 0;
        out[k++] = 0;

        *ret = TAKE_PTR(out);
        *ret_size = k;
        return 0;
}

int predict_data_digest(const void *p, size_t size, uint16_t bank, uint8_t *ret) {
        _cleanup_(evp_md_ctx_freep) EVP_MD_CTX *c = NULL;
        int r;

        if (!ret || (!p && size > 0))
                return -EINVAL;
        r = digest_init(bank, &c);
        if (r < 0)
                return r;
        if (size > 0 && EVP_DigestUpdate(c, p, size) != 1)
                return -ENOMEM;
        return digest_final(c, ret);
}

int predict_cmdline_digest(const char *cmdline, uint16_t bank, uint8_t *ret) {
        _cleanup_free_ uint8_t *u = NULL;
        size_t n;
        int r;

        if (!eventlog_bank_md(bank))
                return -EOPNOTSUPP;
        r = predict_cmdline_utf16(cmdline, &u, &n);
        if (r < 0)
                return r;
        return predict_data_digest(u, n, bank, ret);
}

int predict_fd_digest(int fd, uint16_t bank, uint8_t *ret) {
        _cleanup_(evp_md_ctx_freep) EVP_MD_CTX *c = NULL;
        uint8_t buf[64 * 1024];
        int r;

        if (fd < 0 || !ret)
                return -EINVAL;
        r = digest_init(bank, &c);
        if (r < 0)
                return r;
        for (;;) {
                ssize_t n = read(fd, buf, sizeof(buf));

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                if (EVP_DigestUpdate(c, buf, (size_t) n) != 1)
                        return -ENOMEM;
        }
        return digest_final(c, ret);
}

static void le64_put(uint8_t *p, uint64_t v) {
        for (unsigned i = 0; i < 8; i++)
                p[i] = (uint8_t) (v >> (8 * i));
}

int predict_uefi_variable_digest(const uint8_t guid[16], const char *name, const void *data, size_t size,
                                 uint16_t bank, uint8_t *ret) {
        _cleanup_(evp_md_ctx_freep) EVP_MD_CTX *c = NULL;
        uint8_t head[32], unit[2];
        size_t n;
        int r;

        if (!guid || !name || !ret || (!data && size > 0))
                return -EINVAL;
        n = strnlen(name, UEFI_VARIABLE_NAME_MAX + 1);
        if (n > UEFI_VARIABLE_NAME_MAX)
                return -E2BIG;
        for (size_t i = 0; i < n; i++)
                if ((uint8_t) name[i] >= 0x80)
                        return -EINVAL;
        r = digest_init(bank, &c);
        if (r < 0)
                return r;

        memcpy(head, guid, 16);
        le64_put(head + 16, n);
        le64_put(head + 24, size);
        if (EVP_DigestUpdate(c, head, sizeof(head)) != 1)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                unit[0] = (uint8_t) name[i];
                unit[1] = 0;
                if (EVP_DigestUpdate(c, unit, sizeof(unit)) != 1)
                        return -ENOMEM;
        }
        if (size > 0 && EVP_DigestUpdate(c, data, size) != 1)
                return -ENOMEM;
        return digest_final(c, ret);
}

const char *predict_component_to_string(PredictComponent c) {
        static const char *const table[_PREDICT_COMPONENT_MAX] = {
                [PREDICT_BOOT_LOADER] = "boot-loader",
                [PREDICT_KERNEL] = "kernel",
                [PREDICT_INITRD] = "initrd",
                [PREDICT_CMDLINE] = "cmdline",
        };
        return c >= 0 && c < _PREDICT_COMPONENT_MAX ? table[c] : NULL;
}

/* The EV_EVENT_TAG of the Linux EFI stub with tag id in PCR 9: its data is
 * TCG_PCClientTaggedEvent (UINT32 id, UINT32 size, size bytes). */
static bool is_linux_tag(const EventLogEvent *e, uint32_t id) {
        uint32_t v, size;

        if (e->pcr != 9 || e->type != EV_EVENT_TAG || e->data_size < 8)
                return false;
        memcpy(&v, e->data, 4);
        memcpy(&size, e->data + 4, 4);
        return le32toh(v) == id && le32toh(size) <= e->data_size - 8;
}

static bool is_application(const EventLogEvent *e) {
        return e->pcr == 4 && e->type == EV_EFI_BOOT_SERVICES_APPLICATION;
}

/* The index of the event that stands for component c, or -ENOENT. */
static ssize_t find_component(const EventLog *log, PredictComponent c, size_t *ret_n_apps) {
        ssize_t first = -1, last = -1, found = -1;
        size_t n_apps = 0;

        for (size_t i = 0; i < log->n_events; i++) {
                const EventLogEvent *e = log->events + i;

                if (is_application(e)) {
                        if (first < 0)
                                first = (ssize_t) i;
                        last = (ssize_t) i;
                        n_apps++;
                }
                if (found < 0 && c == PREDICT_INITRD && is_linux_tag(e, LINUX_EVENT_TAG_INITRD))
                        found = (ssize_t) i;
                if (found < 0 && c == PREDICT_CMDLINE && is_linux_tag(e, LINUX_EVENT_TAG_LOAD_OPTIONS))
                        found = (ssize_t) i;
        }
        if (ret_n_apps)
                *ret_n_apps = n_apps;
        if (c == PREDICT_BOOT_LOADER)
                found = first;
        else if (c == PREDICT_KERNEL)
                found = last;
        return found < 0 ? -ENOENT : found;
}

int predict_substitute(const EventLog *log, const PredictDigests *d, PredictResult *ret) {
        _cleanup_free_ EventLogEvent *events = NULL;
        EventLog copy;
        size_t dsize;
        int bi, r;

        assert(log);
        assert(d);
        assert(ret);

        *ret = (PredictResult) {};
        r = eventlog_replay(log, d->bank, &ret->current);
        if (r < 0)
                return r;
        bi = eventlog_bank_index(log, d->bank);
        if (bi < 0)
                return bi;
        dsize = log->banks[bi].size;

        events = log->n_events > 0 ? malloc(log->n_events * sizeof(*events)) : NULL;
        if (log->n_events > 0 && !events)
                return -ENOMEM;
        if (log->n_events > 0)
                memcpy(events, log->events, log->n_events * sizeof(*events));

        for (PredictComponent c = 0; c < _PREDICT_COMPONENT_MAX; c++) {
                const uint8_t *old;
                size_t n_apps;
                ssize_t k;

                if (!d->has[c])
                        continue;
                k = find_component(log, c, &n_apps);
                if (k < 0) {
                        ret->missing = c;
                        return -ENOENT;
                }
                if ((c == PREDICT_BOOT_LOADER || c == PREDICT_KERNEL) && d->has[PREDICT_BOOT_LOADER] &&
                    d->has[PREDICT_KERNEL] && n_apps < 2)
                        return -EINVAL;
                old = log->events[k].digests[bi];
                for (size_t i = 0; i < log->n_events; i++) {
                        const EventLogEvent *e = log->events + i;
                        bool same;

                        /* The command line: the stub's event in PCR 9 and
                         * systemd-boot's of the same string in PCR 12. */
                        if (c == PREDICT_CMDLINE)
                                same = (e->pcr == 9 || e->pcr == 12) && e->type != EV_NO_ACTION;
                        else
                                same = e->pcr == log->events[k].pcr && e->type == log->events[k].type;
                        if (!same || memcmp(e->digests[bi], old, dsize) != 0)
                                continue;
                        if (events[i].digests[bi] != e->digests[bi])
                                return -EINVAL;         /* two components claim one event */
                        if (ret->n_substitutions >= PREDICT_SUBSTITUTIONS_MAX)
                                return -E2BIG;
                        events[i].digests[bi] = d->digest[c];
                        ret->substitutions[ret->n_substitutions].event = i;
                        ret->substitutions[ret->n_substitutions].pcr = e->pcr;
                        ret->substitutions[ret->n_substitutions].component = c;
                        ret->n_substitutions++;
                        if (e->pcr < PCR_MAX)
                                ret->substituted |= 1u << e->pcr;
                }
        }

        copy = *log;
        copy.events = events;
        return eventlog_replay(&copy, d->bank, &ret->predicted);
}
