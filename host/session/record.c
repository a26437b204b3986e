/*
 * record.c -- a trial run and recorded: describe, commit, print, ledger.
 *
 * The ledger line is written after the verdict is shown, so a slow or full
 * disk never delays what the user or agent is waiting for, and a ledger
 * error is reported on its own after the verdict it concerns.
 */
#include <stdio.h>
#include <string.h>

#include "ledger.h"
#include "record.h"

int kb__trial_record(const kb__trial_opts *o, kb__record *rec, kb__result *r, kb__best_info *bi,
                     char *err, size_t err_len, char *lerr, size_t lerr_len)
{
    const char *desc = rec->description ? rec->description : "";
    lerr[0] = 0;
    snprintf(r->description, sizeof r->description, "%s", desc);
    if (rec->ledger && !o->verify_only) {
        const int rc = kb__ledger_check(rec->ledger, err, err_len);
        if (rc != 0) return rc;
    }
    if (rec->in_trial) *rec->in_trial = 1;
    int rc = kb__trial_any(o, rec->state_dir, rec->cache, r, bi, err, err_len);
    if (rec->in_trial) *rec->in_trial = 0;
    rec->done_ns = kb__now_ns();
    if (rc != 0) return rc;
    if (!r->target[0] && rec->target_hint)
        snprintf(r->target, sizeof r->target, "%s", rec->target_hint);
    kb__best_describe(bi, desc, r->description, sizeof r->description);
    if (rec->ledger) kb__git_commit(o->candidate, r->git_commit, sizeof r->git_commit);
    if (rec->print) rec->print(r, bi, rec->print_arg);
    if (rec->ledger && !o->verify_only &&
        kb__ledger_append(rec->ledger, r, bi, lerr, lerr_len) != 0 && !lerr[0])
        snprintf(lerr, lerr_len, "%s: cannot append to the ledger", rec->ledger);
    return 0;
}
