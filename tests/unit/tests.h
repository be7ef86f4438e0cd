/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Minimal assertions for the unit tests: print where and abort. */
#define ASSERT(expr)                                                                   \
        do {                                                                           \
                if (!(expr)) {                                                         \
                        fprintf(stderr, "%s:%d: %s: assertion failed: %s\n", __FILE__, \
                                __LINE__, __func__, #expr);                            \
                        abort();                                                       \
                }                                                                      \
        } while (0)

#define ASSERT_EQ(a, b)                                                                        \
        do {                                                                                   \
                long long _a = (long long) (a), _b = (long long) (b);                          \
                if (_a != _b) {                                                                \
                        fprintf(stderr, "%s:%d: %s: %s == %s failed: %lld != %lld\n", __FILE__, \
                                __LINE__, __func__, #a, #b, _a, _b);                           \
                        abort();                                                               \
                }                                                                              \
        } while (0)

#define ASSERT_STREQ(a, b)                                                                     \
        do {                                                                                   \
                const char *_a = (a), *_b = (b);                                               \
                if (!_a || !_b || strcmp(_a, _b) != 0) {                                       \
                        fprintf(stderr, "%s:%d: %s: \"%s\" != \"%s\"\n", __FILE__, __LINE__,  \
                                __func__, _a ? _a : "(null)", _b ? _b : "(null)");             \
                        abort();                                                               \
                }                                                                              \
        } while (0)

#define TEST(f)                                     \
        do {                                        \
                f();                                \
                printf("ok - %s\n", #f);            \
        } while (0)
