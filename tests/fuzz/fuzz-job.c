/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Re-seal job files: parse, and format what parsed. */
#include <stdlib.h>
#include <string.h>

#include "job.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *s = malloc(size + 1), *json = NULL, *err = NULL;
        ResealJob *j = NULL;

        if (!s)
                return 0;
        memcpy(s, data, size);
        s[size] = 0;
        if (reseal_job_parse(s, &j, &err) == 0 && reseal_job_format(j, &json) == 0) {
                ResealJob *j2 = NULL;
                if (reseal_job_parse(json, &j2, NULL) != 0 || j2->generation != j->generation)
                        abort();
                reseal_job_free(j2);
        }
        free(json);
        free(err);
        reseal_job_free(j);
        free(s);
        return 0;
}
