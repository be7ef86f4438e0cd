/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "efivars.h"
#include "encoding.h"
#include "fileio.h"
#include "macro.h"

const uint8_t EFI_GLOBAL_VARIABLE_GUID[16] = { 0x61, 0xdf, 0xe4, 0x8b, 0xca, 0x93, 0xd2, 0x11,
                                               0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c };
const uint8_t EFI_IMAGE_SECURITY_DATABASE_GUID[16] = { 0xcb, 0xb2, 0x19, 0xd7, 0x3a, 0x3d, 0x96, 0x45,
                                                       0xa3, 0xbc, 0xda, 0xd0, 0x0e, 0x67, 0x65, 0x6f };
const uint8_t EFI_SHIM_LOCK_GUID[16] = { 0x50, 0xab, 0x5d, 0x60, 0x46, 0xe0, 0x00, 0x43,
                                         0xab, 0xb6, 0x3d, 0xd8, 0x10, 0xdd, 0x8b, 0x23 };
const uint8_t EFI_SECURE_BOOT_ENABLE_DISABLE_GUID[16] = { 0xc7, 0x0b, 0xa3, 0xf0, 0x08, 0xaf, 0x56, 0x45,
                                                          0x99, 0xc4, 0x00, 0x10, 0x09, 0xc9, 0x3a, 0x44 };
const uint8_t EFI_CERT_X509_GUID[16] = { 0xa1, 0x59, 0xc0, 0xa5, 0xe4, 0x94, 0xa7, 0x4a,
                                         0x87, 0xb5, 0xab, 0x15, 0x5c, 0x2b, 0xf0, 0x72 };
const uint8_t EFI_CERT_SHA256_GUID[16] = { 0x26, 0x16, 0xc4, 0xc1, 0x4c, 0x50, 0x92, 0x40,
                                           0xac, 0xa9, 0x41, 0xf9, 0x36, 0x93, 0x43, 0x28 };

/* fff12b8d-7696-4c8b-a985-2747075b4f50 */
static const uint8_t SYSTEM_NV_DATA_FV_GUID[16] = { 0x8d, 0x2b, 0xf1, 0xff, 0x96, 0x76, 0x8b, 0x4c,
                                                    0xa9, 0x85, 0x27, 0x47, 0x07, 0x5b, 0x4f, 0x50 };
/* aaf32c78-947b-439a-a180-2e144ec37792: VARIABLE_STORE_HEADER of authenticated variables */
static const uint8_t AUTHENTICATED_VARIABLE_GUID[16] = { 0x78, 0x2c, 0xf3, 0xaa, 0x7b, 0x94, 0x9a, 0x43,
                                                         0xa1, 0x80, 0x2e, 0x14, 0x4e, 0xc3, 0x77, 0x92 };
/* ddcf3616-3275-4164-98b6-fe85707ffe7d: plain variables */
static const uint8_t VARIABLE_GUID[16] = { 0x16, 0x36, 0xcf, 0xdd, 0x75, 0x32, 0x64, 0x41,
                                           0x98, 0xb6, 0xfe, 0x85, 0x70, 0x7f, 0xfe, 0x7d };

/* EFI_FIRMWARE_VOLUME_HEADER (PI spec vol. 3, 3.2.1). */
#define FV_FILESYSTEM_GUID 16
#define FV_LENGTH          32
#define FV_SIGNATURE       40
#define FV_HEADER_LENGTH   48
#define FV_HEADER_MIN      56   /* up to the first block map entry */

/* VARIABLE_STORE_HEADER (MdeModulePkg/Include/Guid/VariableFormat.h). */
#define STORE_HEADER_SIZE  28
#define STORE_SIZE         16
#define STORE_FORMAT       20
#define STORE_STATE        21
#define VARIABLE_STORE_FORMATTED 0x5a
#define VARIABLE_STORE_HEALTHY   0xfe

/* (AUTHENTICATED_)VARIABLE_HEADER: StartId u16, State u8, Reserved u8,
 * Attributes u32, [MonotonicCount u64, TimeStamp EFI_TIME(16), PubKeyIndex
 * u32,] NameSize u32, DataSize u32, VendorGuid. The name (UTF-16, with its
 * NUL) follows the header and the data the name, both unpadded (EDK2's
 * ALIGNMENT is 1 on x86 and ARM); the next header starts 4-aligned. */
#define VARIABLE_START_ID      0x55aa
#define AUTH_HEADER_SIZE       60
#define PLAIN_HEADER_SIZE      32
#define VAR_IN_DELETED_TRANSITION 0xfe
#define VAR_ADDED              0x3f

static uint16_t le16(const uint8_t *p) {
        return (uint16_t) (p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p) {
        return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

static uint64_t le64(const uint8_t *p) {
        return (uint64_t) le32(p) | (uint64_t) le32(p + 4) << 32;
}

EfiVarStore *efivars_free(EfiVarStore *s) {
        if (!s)
                return NULL;
        for (size_t i = 0; i < s->n_variables; i++) {
                free(s->variables[i].name);
                free(s->variables[i].data);
        }
        free(s->variables);
        free(s);
        return NULL;
}

const EfiVariable *efivars_find(const EfiVarStore *s, const uint8_t guid[16], const char *name) {
        if (!s || !guid || !name)
                return NULL;
        for (size_t i = 0; i < s->n_variables; i++)
                if (memcmp(s->variables[i].guid, guid, 16) == 0 && streq(s->variables[i].name, name))
                        return s->variables + i;
        return NULL;
}

uint8_t efivars_secure_boot(const EfiVarStore *s) {
        const EfiVariable *v;

        if (!s)
                return 0;
        if (s->computed_secure_boot) {
                /* EDK2's AuthVariableLib: user mode (PK present) and
                 * SecureBootEnable, which it creates as enabled when it is
                 * missing in user mode. */
                const EfiVariable *pk = efivars_find(s, EFI_GLOBAL_VARIABLE_GUID, "PK");

                if (!pk || pk->size == 0)
                        return 0;
                v = efivars_find(s, EFI_SECURE_BOOT_ENABLE_DISABLE_GUID, "SecureBootEnable");
                if (!v)
                        return 1;
                return v->size >= 1 && v->data[0] == 1 ? 1 : 0;
        }
        v = efivars_find(s, EFI_GLOBAL_VARIABLE_GUID, "SecureBoot");
        return v && v->size >= 1 ? v->data[0] : 0;
}

static int store_add(EfiVarStore *s, const uint8_t guid[16], char *name, uint32_t attributes, const uint8_t *data,
                     size_t size) {
        EfiVariable *n, *v;

        if (s->n_variables >= EFIVARS_VARIABLES_MAX) {
                free(name);
                return -EFBIG;
        }
        n = realloc(s->variables, (s->n_variables + 1) * sizeof(*n));
        if (!n) {
                free(name);
                return -ENOMEM;
        }
        s->variables = n;
        v = n + s->n_variables;
        *v = (EfiVariable) { .name = name, .attributes = attributes, .size = size };
        memcpy(v->guid, guid, 16);
        if (size > 0) {
                v->data = malloc(size);
                if (!v->data) {
                        free(name);
                        return -ENOMEM;
                }
                memcpy(v->data, data, size);
        }
        s->n_variables++;
        return 0;
}

/* The name of NameSize bytes of UTF-16LE ending in a NUL unit (and having no
 * other), as ASCII with '?' for the rest. */
static int name_from_utf16(const uint8_t *p, size_t size, char **ret) {
        size_t n;
        char *s;

        if (size < 2 || size % 2 != 0 || size / 2 - 1 > EFIVARS_NAME_MAX || le16(p + size - 2) != 0)
                return -EBADMSG;
        n = size / 2 - 1;
        s = malloc(n + 1);
        if (!s)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                uint16_t u = le16(p + 2 * i);

                if (u == 0) {
                        free(s);
                        return -EBADMSG;
                }
                s[i] = u < 0x80 ? (char) u : '?';
        }
        s[n] = 0;
        *ret = s;
        return 0;
}

typedef struct Entry {
        size_t header, name, data;      /* offsets */
        uint32_t name_size, data_size, attributes;
        uint8_t state;
} Entry;

int efivars_parse_ovmf(const void *buf, size_t size, EfiVarStore **ret) {
        _cleanup_(efivars_freep) EfiVarStore *s = NULL;
        _cleanup_free_ Entry *entries = NULL;
        const uint8_t *p = buf;
        size_t store, end, off, n = 0, hsize, nameoff;
        uint64_t fv_length;
        uint32_t store_size;
        bool auth;
        int r;

        if (!ret || (!buf && size > 0))
                return -EINVAL;
        if (size > EFIVARS_FILE_MAX)
                return -EFBIG;
        if (size < FV_HEADER_MIN || memcmp(p + FV_SIGNATURE, "_FVH", 4) != 0 ||
            memcmp(p + FV_FILESYSTEM_GUID, SYSTEM_NV_DATA_FV_GUID, 16) != 0)
                return -EBADMSG;
        fv_length = le64(p + FV_LENGTH);
        store = le16(p + FV_HEADER_LENGTH);
        if (fv_length > size || store < FV_HEADER_MIN || store + STORE_HEADER_SIZE > fv_length)
                return -EBADMSG;

        if (memcmp(p + store, AUTHENTICATED_VARIABLE_GUID, 16) == 0)
                auth = true;
        else if (memcmp(p + store, VARIABLE_GUID, 16) == 0)
                auth = false;
        else
                return -EBADMSG;
        store_size = le32(p + store + STORE_SIZE);
        if (store_size < STORE_HEADER_SIZE || store_size > fv_length - store ||
            p[store + STORE_FORMAT] != VARIABLE_STORE_FORMATTED || p[store + STORE_STATE] != VARIABLE_STORE_HEALTHY)
                return -EBADMSG;
        end = store + store_size;
        hsize = auth ? AUTH_HEADER_SIZE : PLAIN_HEADER_SIZE;
        nameoff = auth ? 36 : 8;        /* NameSize; DataSize follows, then the GUID */

        /* First pass: the entries' layout. Each is checked to lie within
         * the store before anything of it is read. */
        off = store + STORE_HEADER_SIZE;
        off = (off + 3) & ~(size_t) 3;
        while (off + hsize <= end && le16(p + off) == VARIABLE_START_ID) {
                Entry e = {
                        .header = off,
                        .state = p[off + 2],
                        .attributes = le32(p + off + 4),
                        .name_size = le32(p + off + nameoff),
                        .data_size = le32(p + off + nameoff + 4),
                };
                Entry *m;

                e.name = off + hsize;
                if (e.name_size > end - e.name || e.data_size > end - e.name - e.name_size)
                        return -EBADMSG;
                e.data = e.name + e.name_size;
                off = e.data + e.data_size;
                off = (off + 3) & ~(size_t) 3;

                if (e.state != VAR_ADDED && e.state != (VAR_ADDED & VAR_IN_DELETED_TRANSITION))
                        continue;       /* deleted, or only a header written */
                if (n >= EFIVARS_VARIABLES_MAX)
                        return -EFBIG;
                m = realloc(entries, (n + 1) * sizeof(*m));
                if (!m)
                        return -ENOMEM;
                entries = m;
                entries[n++] = e;
        }

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->computed_secure_boot = true;

        /* Second pass: the live entries; one in deleted transition only
         * where no VAR_ADDED one of the same variable exists. */
        for (size_t i = 0; i < n; i++) {
                const Entry *e = entries + i;
                const uint8_t *guid = p + e->header + nameoff + 8;
                char *name = NULL;
                bool shadowed = false;

                for (size_t j = 0; j < n; j++) {
                        const Entry *o = entries + j;

                        if (j == i || o->name_size != e->name_size ||
                            memcmp(p + o->header + nameoff + 8, guid, 16) != 0 ||
                            memcmp(p + o->name, p + e->name, e->name_size) != 0)
                                continue;
                        if (e->state == VAR_ADDED && o->state == VAR_ADDED)
                                return -EBADMSG;        /* two live copies: no one meaning */
                        if (e->state != VAR_ADDED && o->state == VAR_ADDED)
                                shadowed = true;
                        if (e->state != VAR_ADDED && o->state != VAR_ADDED)
                                return -EBADMSG;
                }
                if (shadowed)
                        continue;
                r = name_from_utf16(p + e->name, e->name_size, &name);
                if (r < 0)
                        return r;
                r = store_add(s, guid, name, e->attributes, p + e->data, e->data_size);
                if (r < 0)
                        return r;
        }

        *ret = TAKE_PTR(s);
        return 0;
}

static int json_add(EfiVarStore *s, json_object *root, const char *key, const uint8_t guid[16]) {
        _cleanup_free_ void *data = NULL;
        json_object *v;
        size_t n = 0;
        char *name;
        int r;

        if (!json_object_object_get_ex(root, key, &v) || json_object_is_type(v, json_type_null))
                return 0;
        if (!json_object_is_type(v, json_type_string))
                return -EBADMSG;
        r = base64_decode(json_object_get_string(v), (size_t) json_object_get_string_len(v), false, &data, &n);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return -EBADMSG;
        r = efivars_signature_foreach(data, n, NULL, NULL);
        if (r < 0)
                return r;
        name = strdup(key);
        if (!name)
                return -ENOMEM;
        return store_add(s, guid, name,
                         EFI_VARIABLE_NON_VOLATILE | EFI_VARIABLE_BOOTSERVICE_ACCESS | EFI_VARIABLE_RUNTIME_ACCESS |
                                 EFI_VARIABLE_TIME_BASED_AUTHENTICATED_WRITE_ACCESS,
                         data, n);
}

int efivars_parse_json(const char *text, size_t size, EfiVarStore **ret) {
        _cleanup_(efivars_freep) EfiVarStore *s = NULL;
        json_tokener *tok;
        json_object *root;
        int r = 0;

        if (!text || !ret)
                return -EINVAL;
        if (size > EFIVARS_FILE_MAX || size > INT32_MAX)
                return -EFBIG;
        tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        root = json_tokener_parse_ex(tok, text, (int) size);
        if (!root || json_tokener_get_error(tok) != json_tokener_success ||
            json_tokener_get_parse_end(tok) != size || !json_object_is_type(root, json_type_object))
                r = -EBADMSG;
        json_tokener_free(tok);
        if (r < 0) {
                json_object_put(root);
                return r;
        }

        s = calloc(1, sizeof(*s));
        if (!s) {
                json_object_put(root);
                return -ENOMEM;
        }
        s->computed_secure_boot = true;         /* no SecureBootEnable: on with a PK */
        if ((r = json_add(s, root, "PK", EFI_GLOBAL_VARIABLE_GUID)) < 0 ||
            (r = json_add(s, root, "KEK", EFI_GLOBAL_VARIABLE_GUID)) < 0 ||
            (r = json_add(s, root, "db", EFI_IMAGE_SECURITY_DATABASE_GUID)) < 0 ||
            (r = json_add(s, root, "dbx", EFI_IMAGE_SECURITY_DATABASE_GUID)) < 0) {
                json_object_put(root);
                return r;
        }
        json_object_put(root);
        *ret = TAKE_PTR(s);
        return 0;
}

/* "8be4df61-93ca-11d2-aa0d-00e098032b8c" → the GUID as on the wire. */
static int guid_from_string(const char *s, uint8_t ret[16]) {
        static const unsigned order[16] = { 3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15 };
        uint8_t b[16];
        unsigned k = 0;

        if (strlen(s) != 36)
                return -EINVAL;
        for (unsigned i = 0; i < 36;) {
                int hi, lo;

                if (i == 8 || i == 13 || i == 18 || i == 23) {
                        if (s[i] != '-')
                                return -EINVAL;
                        i++;
                        continue;
                }
                hi = s[i] >= '0' && s[i] <= '9' ? s[i] - '0' : s[i] >= 'a' && s[i] <= 'f' ? s[i] - 'a' + 10 : -1;
                lo = s[i + 1] >= '0' && s[i + 1] <= '9' ? s[i + 1] - '0' :
                     s[i + 1] >= 'a' && s[i + 1] <= 'f' ? s[i + 1] - 'a' + 10 : -1;
                if (hi < 0 || lo < 0)
                        return -EINVAL;
                b[k++] = (uint8_t) (hi << 4 | lo);
                i += 2;
        }
        for (unsigned i = 0; i < 16; i++)
                ret[i] = b[order[i]];
        return 0;
}

/* An efivarfs directory (/sys/firmware/efi/efivars, or a copy of it): files
 * NAME-GUID of the attributes (u32 LE) and the data. What it shows is the
 * running firmware's view: SecureBoot as stored. */
static int load_efivarfs(const char *path, EfiVarStore **ret) {
        _cleanup_(efivars_freep) EfiVarStore *s = NULL;
        struct dirent *de;
        DIR *d;
        int r = 0;

        d = opendir(path);
        if (!d)
                return -errno;
        s = calloc(1, sizeof(*s));
        if (!s) {
                closedir(d);
                return -ENOMEM;
        }
        while ((de = readdir(d))) {
                _cleanup_free_ char *buf = NULL, *full = NULL;
                size_t len = strlen(de->d_name), n;
                uint8_t guid[16];
                char *name;
                uint32_t attr;

                if (len < 38 || len - 37 > EFIVARS_NAME_MAX || de->d_name[len - 37] != '-' ||
                    guid_from_string(de->d_name + len - 36, guid) < 0)
                        continue;
                if (asprintf(&full, "%s/%s", path, de->d_name) < 0) {
                        r = -ENOMEM;
                        break;
                }
                r = read_file_regular(full, EFIVARS_FILE_MAX, &buf, &n);
                if (r < 0)
                        break;
                if (n < 4) {
                        r = -EBADMSG;
                        break;
                }
                attr = le32((const uint8_t *) buf);
                name = strndup(de->d_name, len - 37);
                if (!name) {
                        r = -ENOMEM;
                        break;
                }
                for (char *c = name; *c; c++)
                        if ((unsigned char) *c >= 0x80)
                                *c = '?';
                if (efivars_find(s, guid, name)) {
                        free(name);
                        r = -EBADMSG;
                        break;
                }
                r = store_add(s, guid, name, attr, (const uint8_t *) buf + 4, n - 4);
                if (r < 0)
                        break;
        }
        closedir(d);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

/* Which database an ESL file of a directory is: "PK.esl", "KEK.esl" or
 * "KEK-*.esl", and so "db" and "dbx"; -1 for other files. */
static int esl_file_kind(const char *f) {
        static const char *const kinds[] = { "PK", "KEK", "db", "dbx" };
        size_t n = strlen(f);

        if (n < 5 || !streq(f + n - 4, ".esl"))
                return -1;
        for (int k = 0; k < (int) ELEMENTSOF(kinds); k++) {
                size_t m = strlen(kinds[k]);

                if (strncmp(f, kinds[k], m) == 0 && (f[m] == '.' || (f[m] == '-' && k != 0)))
                        return k;
        }
        return -1;
}

static int dirent_name_cmp(const struct dirent **a, const struct dirent **b) {
        return strcmp((*a)->d_name, (*b)->d_name);
}

/* A directory of EFI_SIGNATURE_LIST files (what cert-to-efi-sig-list and
 * virt-fw-vars make): PK.esl, KEK*.esl, db*.esl, dbx*.esl, each database
 * the concatenation of its files in name order. Secure Boot is on when PK
 * is there. -ENOENT when there are none. */
static int load_esl_dir(const char *path, EfiVarStore **ret) {
        static const char *const names[] = { "PK", "KEK", "db", "dbx" };
        _cleanup_(efivars_freep) EfiVarStore *s = NULL;
        uint8_t *db[4] = {};
        size_t db_size[4] = {}, found = 0;
        struct dirent **list = NULL;
        int n, r = 0;

        n = scandir(path, &list, NULL, dirent_name_cmp);
        if (n < 0)
                return -errno;
        for (int i = 0; i < n && r >= 0; i++) {
                _cleanup_free_ char *buf = NULL, *full = NULL;
                int k = esl_file_kind(list[i]->d_name);
                size_t size;
                uint8_t *m;

                if (k < 0)
                        continue;
                if (asprintf(&full, "%s/%s", path, list[i]->d_name) < 0) {
                        r = -ENOMEM;
                        break;
                }
                r = read_file_regular(full, EFIVARS_FILE_MAX, &buf, &size);
                if (r < 0)
                        break;
                r = efivars_signature_foreach(buf, size, NULL, NULL);
                if (r < 0)
                        break;
                if (size > EFIVARS_FILE_MAX - db_size[k]) {
                        r = -EFBIG;
                        break;
                }
                m = realloc(db[k], db_size[k] + size + 1);
                if (!m) {
                        r = -ENOMEM;
                        break;
                }
                memcpy(m + db_size[k], buf, size);
                db[k] = m;
                db_size[k] += size;
                found++;
        }
        for (int i = 0; i < n; i++)
                free(list[i]);
        free(list);
        if (r >= 0 && found == 0)
                r = -ENOENT;
        if (r >= 0) {
                s = calloc(1, sizeof(*s));
                if (!s)
                        r = -ENOMEM;
        }
        for (int k = 0; r >= 0 && k < 4; k++) {
                char *name;

                if (!db[k])
                        continue;
                name = strdup(names[k]);
                if (!name) {
                        r = -ENOMEM;
                        break;
                }
                r = store_add(s, k < 2 ? EFI_GLOBAL_VARIABLE_GUID : EFI_IMAGE_SECURITY_DATABASE_GUID, name,
                              EFI_VARIABLE_NON_VOLATILE | EFI_VARIABLE_BOOTSERVICE_ACCESS |
                                      EFI_VARIABLE_RUNTIME_ACCESS | EFI_VARIABLE_TIME_BASED_AUTHENTICATED_WRITE_ACCESS,
                              db[k], db_size[k]);
        }
        for (int k = 0; k < 4; k++)
                free(db[k]);
        if (r < 0)
                return r;
        s->computed_secure_boot = true;
        *ret = TAKE_PTR(s);
        return 0;
}

int efivars_load(const char *path, EfiVarStore **ret) {
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        size_t n;
        int r;

        if (stat(path, &st) < 0)
                return -errno;
        if (S_ISDIR(st.st_mode)) {
                r = load_esl_dir(path, ret);
                return r == -ENOENT ? load_efivarfs(path, ret) : r;
        }
        r = read_file_bounded(path, EFIVARS_FILE_MAX, &buf, &n);
        if (r < 0)
                return r;
        if (n >= FV_HEADER_MIN && memcmp(buf + FV_SIGNATURE, "_FVH", 4) == 0)
                return efivars_parse_ovmf(buf, n, ret);
        return efivars_parse_json(buf, n, ret);
}

#define ESL_HEADER_SIZE 28

static int signature_walk(const uint8_t *p, size_t size, EfiSignatureCallback cb, void *userdata) {
        size_t off = 0;

        while (off < size) {
                uint32_t list, header, sig;
                size_t body;

                if (size - off < ESL_HEADER_SIZE)
                        return -EBADMSG;
                list = le32(p + off + 16);
                header = le32(p + off + 20);
                sig = le32(p + off + 24);
                if (list < ESL_HEADER_SIZE || list > size - off || header > list - ESL_HEADER_SIZE || sig < 16)
                        return -EBADMSG;
                body = list - ESL_HEADER_SIZE - header;
                if (body % sig != 0)
                        return -EBADMSG;
                if (cb)
                        for (size_t k = off + ESL_HEADER_SIZE + header; k < off + list; k += sig) {
                                int r = cb(p + off, p + k, sig, userdata);

                                if (r != 0)
                                        return r;
                        }
                off += list;
        }
        return 0;
}

int efivars_signature_foreach(const void *db, size_t size, EfiSignatureCallback cb, void *userdata) {
        int r;

        if (!db && size > 0)
                return -EINVAL;
        r = signature_walk(db, size, NULL, NULL);
        if (r < 0 || !cb)
                return r;
        return signature_walk(db, size, cb, userdata);
}
