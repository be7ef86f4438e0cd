/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "pcr.h"
#include "reseal.h"
#include "tests.h"

#define V32 "\"0000000000000000000000000000000000000000000000000000000000000007\""

static const char good[] =
        "{\"version\":1,\"uuid\":\"60c2cbfc-badb-482e-bbda-9239fe18911e\",\"device\":\"/dev/vda2\","
        "\"method\":\"recovery-key\",\"keyslot\":3,\"generation\":2,\"pcr-bank\":\"sha256\","
        "\"pcrs\":[7],\"pcr-values\":[" V32 "],"
        "\"stale\":[{\"token\":1,\"keyslot\":2,\"blob-sha256\":" V32 ",\"salt\":\"c2FsdA==\"}]}";

static void test_roundtrip(void) {
        ResealJob *j = NULL, *j2 = NULL;
        char *json = NULL;

        ASSERT_EQ(reseal_job_parse(good, &j, NULL), 0);
        ASSERT_STREQ(j->uuid, "60c2cbfc-badb-482e-bbda-9239fe18911e");
        ASSERT_EQ(j->keyslot, 3);
        ASSERT_EQ(j->generation, 2);
        ASSERT_EQ(j->pcr_bank, PCR_BANK_SHA256);
        ASSERT_EQ(j->pcr_mask, 1u << 7);
        ASSERT_EQ(j->pcr_values_size, 32);
        ASSERT_EQ(j->pcr_values[31], 7);
        ASSERT_EQ(j->n_stale, 1);
        ASSERT_EQ(j->stale[0].keyslot, 2);
        ASSERT_STREQ(j->stale[0].salt, "c2FsdA==");
        ASSERT_EQ(reseal_job_format(j, &json), 0);
        ASSERT_EQ(reseal_job_parse(json, &j2, NULL), 0);
        ASSERT_EQ(j2->generation, 2);
        ASSERT(memcmp(j2->stale[0].blob_sha256, j->stale[0].blob_sha256, 32) == 0);
        free(json);
        reseal_job_free(j);
        reseal_job_free(j2);
}

static void test_rejects(void) {
        const char *bad[] = {
                "",
                "{\"version\":1",                                       /* torn */
                "[]",
                "{\"version\":2}",
                "{\"version\":1,\"uuid\":\"../../etc\",\"keyslot\":3,\"generation\":1,\"pcr-bank\":\"sha256\",\"pcrs\":[],\"pcr-values\":[],\"stale\":[]}",
                "{\"version\":1,\"uuid\":\"abcd\",\"keyslot\":32,\"generation\":1,\"pcr-bank\":\"sha256\",\"pcrs\":[],\"pcr-values\":[],\"stale\":[]}",
                "{\"version\":1,\"uuid\":\"abcd\",\"keyslot\":3,\"generation\":0,\"pcr-bank\":\"sha256\",\"pcrs\":[],\"pcr-values\":[],\"stale\":[]}",
                "{\"version\":1,\"uuid\":\"abcd\",\"keyslot\":3,\"generation\":1,\"pcr-bank\":\"md5\",\"pcrs\":[],\"pcr-values\":[],\"stale\":[]}",
                "{\"version\":1,\"uuid\":\"abcd\",\"keyslot\":3,\"generation\":1,\"pcr-bank\":\"sha256\",\"pcrs\":[7],\"pcr-values\":[],\"stale\":[]}",
                "{\"version\":1,\"uuid\":\"abcd\",\"keyslot\":3,\"generation\":1,\"pcr-bank\":\"sha256\",\"pcrs\":[7],\"pcr-values\":[\"00\"],\"stale\":[]}",
                "{\"version\":1,\"uuid\":\"abcd\",\"keyslot\":3,\"generation\":1,\"pcr-bank\":\"sha256\",\"pcrs\":[24],\"pcr-values\":[" V32 "],\"stale\":[]}",
                "{\"version\":1,\"uuid\":\"abcd\",\"keyslot\":3,\"generation\":1,\"pcr-bank\":\"sha256\",\"pcrs\":[],\"pcr-values\":[],\"stale\":[{\"token\":40,\"keyslot\":1,\"blob-sha256\":" V32 ",\"salt\":\"x\"}]}",
                "{\"version\":1,\"uuid\":\"abcd\",\"keyslot\":3,\"generation\":1,\"pcr-bank\":\"sha256\",\"pcrs\":[],\"pcr-values\":[],\"stale\":[{\"token\":1,\"keyslot\":1,\"blob-sha256\":\"00\",\"salt\":\"x\"}]}",
                "{\"version\":1,\"uuid\":\"abcd\",\"keyslot\":3,\"generation\":1,\"pcr-bank\":\"sha256\",\"pcrs\":[],\"pcr-values\":[],\"stale\":[{\"token\":1,\"keyslot\":1,\"blob-sha256\":" V32 "}]}",
                "{\"version\":1,\"uuid\":\"abcd\",\"keyslot\":3,\"generation\":1,\"pcr-bank\":\"sha256\",\"pcrs\":[],\"pcr-values\":[],\"stale\":[1,2,3,4,5,6,7,8,9]}",
                "{\"version\":1,\"uuid\":\"abcd\",\"keyslot\":\"3\",\"generation\":1,\"pcr-bank\":\"sha256\",\"pcrs\":[],\"pcr-values\":[],\"stale\":[]}",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                ResealJob *j = NULL;
                char *err = NULL;
                int r = reseal_job_parse(bad[i], &j, &err);

                if (r != -EBADMSG || !err || j) {
                        fprintf(stderr, "hostile job %zu: r=%d err=%s\n", i, r, err ? err : "(null)");
                        abort();
                }
                free(err);
        }
}

int main(void) {
        TEST(test_roundtrip);
        TEST(test_rejects);
        return 0;
}
