/*
 * calls.h -- the timed loop of a batch: the only code between a worker's two
 * clock readings besides the plugin's own. scripts/overhead.c includes it
 * too, so the overhead it prints is this loop's, not a copy's.
 */
#ifndef KB_CALLS_H
#define KB_CALLS_H

#include <stdint.h>

#include "kbench.h"

/* Runs `calls` calls: call c gets input set order[c % n_order] and the
 * output descriptors lanes[c * n_outs ...], fresh from the caller (so
 * nothing a plugin writes into one call's descriptors reaches another's),
 * and per call costs one indirect call and a compare. Returns the first
 * non-zero status, with *done the calls made including that one. */
static inline int kb__run_calls(const kb_plugin *p, void *state,
                                const kb_buffer (*ins)[KB_MAX_BUFFERS], uint32_t n_ins,
                                kb_buffer *lanes, uint32_t n_outs, const uint32_t *order,
                                uint32_t n_order, uint64_t calls, uint64_t *done, char *err,
                                size_t err_len)
{
    int (*const run)(void *, const kb_buffer *, uint32_t, kb_buffer *, uint32_t, char *, size_t) =
        p->run;
    uint32_t o = 0;
    uint64_t c = 0;
    int rc = 0;
    while (c < calls) {
        rc = run(state, ins[order[o]], n_ins, lanes, n_outs, err, err_len);
        c++;
        if (rc != 0) break;
        lanes += n_outs;
        if (++o == n_order) o = 0;
    }
    *done = c;
    return rc;
}

#endif /* KB_CALLS_H */
