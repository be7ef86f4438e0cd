/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <time.h>

#include "pcr.h"
#include "strutil.h"

void free_and_printf(char **s, const char *fmt, ...) {
        va_list ap;
        char *n = NULL;

        va_start(ap, fmt);
        if (vasprintf(&n, fmt, ap) < 0)
                n = NULL;
        va_end(ap);
        free(*s);
        *s = n;
}

int parse_unsigned(const char *s, unsigned max, unsigned *ret) {
        unsigned long long v = 0;

        if (!s || !*s)
                return -EINVAL;
        for (; *s; s++) {
                if (*s < '0' || *s > '9')
                        return -EINVAL;
                v = v * 10 + (unsigned) (*s - '0');
                if (v > max)
                        return -EINVAL;
        }
        *ret = (unsigned) v;
        return 0;
}

int parse_boolean(const char *s) {
        if (streq(s, "1") || streq(s, "yes") || streq(s, "true") || streq(s, "on"))
                return 1;
        if (streq(s, "0") || streq(s, "no") || streq(s, "false") || streq(s, "off"))
                return 0;
        return -EINVAL;
}

json_object *json_pcr_array(uint32_t mask) {
        json_object *a = json_object_new_array();

        for (unsigned i = 0; a && i < PCR_MAX; i++)
                if (mask & (1u << i))
                        json_object_array_add(a, json_object_new_int((int) i));
        return a;
}

char *cescape(const char *s) {
        size_t n = strlen(s);
        char *out = malloc(n * 4 + 1), *p = out;

        if (!out)
                return NULL;
        for (const unsigned char *c = (const unsigned char *) s; *c; c++) {
                if (*c == '\\') {
                        *p++ = '\\';
                        *p++ = '\\';
                } else if (*c < 0x20 || *c == 0x7f) {
                        sprintf(p, "\\x%02x", *c);
                        p += 4;
                } else
                        *p++ = (char) *c;
        }
        *p = 0;
        return out;
}

uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

char **strv_free(char **l) {
        for (char **p = l; p && *p; p++)
                free(*p);
        free(l);
        return NULL;
}

bool strv_contains_case(char **l, const char *s) {
        for (char **p = l; p && *p; p++)
                if (strcasecmp(*p, s) == 0)
                        return true;
        return false;
}
