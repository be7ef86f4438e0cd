/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The firmware's event log as the prediction engine reads it: parsed, then
 * replayed in every bank it declares, as it is and with every component
 * substituted. */
#include <stdint.h>
#include <stdlib.h>

#include "eventlog.h"
#include "predict.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        EventLog *log = NULL;
        EventLogReplay r;

        if (eventlog_parse(data, size, &log) < 0)
                return 0;
        for (size_t i = 0; i < log->n_banks; i++) {
                PredictDigests d = { .bank = log->banks[i].alg };
                static PredictResult res;

                (void) eventlog_replay(log, log->banks[i].alg, &r);
                for (int c = 0; c < _PREDICT_COMPONENT_MAX; c++) {
                        d.has[c] = true;
                        d.digest[c][0] = (uint8_t) c;
                }
                (void) predict_substitute(log, &d, &res);
                d.has[PREDICT_BOOT_LOADER] = false;
                (void) predict_substitute(log, &d, &res);
        }
        for (size_t i = 0; i < log->n_events; i++)
                (void) eventlog_type_to_string(log->events[i].type);
        eventlog_free(log);
        return 0;
}
