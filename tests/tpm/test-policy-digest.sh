#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# unlockd computes PolicyPCR (+ PolicyAuthValue) digests offline (to seal to
# recorded PCR values); they must equal what the TPM computes in a trial
# session, for several selections, banks and with a PIN.
source "$(dirname "$0")/../lib.sh"
need swtpm tpm2_startauthsession tpm2_policypcr tpm2_pcrread tpm2_pcrextend
HELPER=$BUILD_DIR/tests/tpm/policy-digest

start_swtpm
tpm2_pcrextend "7:sha256=$(printf '%064x' 77),sha1=$(printf '%040x' 7)"
tpm2_pcrextend "9:sha256=$(printf '%064x' 99)"

check() {  # BANK PCRS(comma) [pin]
        local bank=$1 pcrs=$2 pin=${3:-} d=$TEST_DIR/p
        rm -f "$d".*
        tpm2_pcrread -Q "$bank:$pcrs" -o "$d.values" 2>/dev/null || : > "$d.values"
        [ -n "$pcrs" ] || : > "$d.values"
        tpm2_startauthsession -Q -S "$d.session"
        tpm2_policypcr -Q -S "$d.session" -l "$bank:$pcrs" -L "$d.policy"
        if [ -n "$pin" ]; then
                tpm2_policyauthvalue -Q -S "$d.session" -L "$d.policy"
        fi
        tpm2_flushcontext "$d.session"
        local tpm ours
        tpm=$(xxd -p -c 64 "$d.policy")
        ours=$("$HELPER" "$bank" "${pcrs//,/+}" "$d.values" $pin)
        assert_eq "$ours" "$tpm" "policy digest for $bank:$pcrs${pin:+ with PIN}"
        say "$bank:${pcrs:-(none)}${pin:+ +PIN} = $ours"
}

check sha256 0,7
check sha256 7
check sha256 4,9
check sha256 0,1,2,3,4,5,7,9
check sha256 7 pin
check sha256 0,7,9 pin
check sha1 0,7
check sha1 7 pin
echo PASS
