/*
 * batch.c -- one batch of calls on one side, timed and judged.
 *
 * The host poisons the outputs, asks the worker for `calls` calls cycling
 * through the given input sets, each call writing its own lane of outputs,
 * and when the reply comes checks the last call and KB__CHECKED others,
 * drawn only now from the host's own generator: the worker cannot know
 * which calls will be looked at, so skipping any call risks `incorrect`.
 * The batch time is the host's measure (kb__worker_call): the kernel's
 * timestamps of the worker's start message and of its reply, or where the
 * socket gives no stamps (or they fall outside it) the host's own reading
 * from sending the request to reading the reply. The worker's reading is
 * never a sample: it sizes calibration and is a cross-check (it must lie
 * within the host's measure).
 * How many calls a batch may make is also decided here (the output
 * bytes of its lanes, kb__batch_calls_max).
 *
 * With cold inputs each batch goes on through the case's replicas where
 * the last batch, of either side, stopped, so neither side gets memory the
 * other just pulled into the cache. Which replica a call read does not
 * matter to the check: replicas are copies, and a lane is judged against
 * the oracle's output for its set, order[lane % n_order], as when warm.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trial.h"

#define KB__CHECKED        3     /* calls checked per batch besides the last */
#define KB__BATCH_MIN_NS   0.5e6 /* the shortest a batch is made for its output bytes */
#define KB__LANES_L2_SHARE 8     /* a batch's fresh output lanes: at most L2 / this */

uint64_t kb__lane_data(const kb__layout *L)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < L->n_bufs; i++)
        if (L->buf[i].role == KB_ROLE_OUTPUT) n += L->buf[i].slot_size - L->buf[i].data_off;
    return n;
}

/* Each call writes a lane of its own, so the host can check any call of
 * a batch. A kernel with large outputs then writes a batch's worth of
 * fresh memory, and once that outgrows L2 every call pays write misses
 * that the same kernel reusing one output buffer (as a caller would, and
 * as Google Benchmark does) never sees, and reads slower than Google
 * Benchmark does (docs/measurement.md, 3.4, has the figures). So a batch's
 * lanes stay within an eighth of L2, the rest left to the inputs; but a
 * batch is never made shorter than KB__BATCH_MIN_NS for it, where the
 * harness's fixed cost per batch is still subtracted whole (measure.c caps
 * that at 1%). */
uint64_t kb__batch_calls_max(const kb__layout *L, double per_call_ns, uint64_t l2_bytes)
{
    const uint64_t data = kb__lane_data(L);
    uint64_t k = data ? l2_bytes / KB__LANES_L2_SHARE / data : L->n_lanes;
    double least = per_call_ns > 0 ? KB__BATCH_MIN_NS / per_call_ns : 1;
    if (least > L->n_lanes) least = L->n_lanes; /* also keeps the cast in range */
    if (k < (uint64_t)least) k = (uint64_t)least;
    if (k < 1) k = 1;
    return k < L->n_lanes ? k : L->n_lanes;
}

/* Whether the worker's harness reads a batch's input sets in (a load of
 * every cache line) before the clock starts. Fresh sets of a warm target:
 * yes, or the probe would time a first touch (TLB misses, page walks) that
 * the timed sets never pay: 10-20x slower for a kernel that reads sparsely.
 * A warm target's timed sets: when they fit in touch_max (L2; the
 * trial's kb__case_run, 0 before timing starts). The four batches of an
 * ABBA block share their sets, so otherwise the block's first batch reads
 * them from beyond L2 and the rest from L2, a position effect that ABBA
 * cancels only on average, at far more noise per sample (docs/measurement.md
 * 3.4 has the figures). Sets that do not fit are read from beyond L2 by
 * every batch alike. A cold target's sets: never, they are meant to come
 * from DRAM. */
int kb__batch_reads_in(const kb_target *t, const kb__case_data *cd, uint64_t touch_max,
                       const uint32_t *order, uint32_t n_order)
{
    if (t->flags & KB_TARGET_COLD_INPUTS) return 0;
    if (n_order && order[0] >= KB__SETS) return 1;
    const uint64_t sets = n_order < KB__SETS ? n_order : KB__SETS;
    return touch_max && sets * (cd->layout.rep_stride / KB__SETS) <= touch_max;
}

/* The worker's reply to a batch, and what it left behind: its executable
 * memory as after loading, no thread of its own on a single-threaded
 * target. */
static int check_reply(kb__side *s, const kb__case_data *cd, const kb__rep *rep, kb__failure *fail)
{
    if (rep->type != KB__REP_OK) {
        fail->status = KB__ST_REJECTED;
        kb__errf(fail->reason, sizeof fail->reason, "%s %s in case %s", s->w.label, rep->msg,
                 cd->cs->name);
        return KB__ECHILD;
    }
    /* What runs between batches is only the harness's code if its
     * executable memory is as it was after loading (maps.c; the host reads
     * it after the reply, outside every timed interval). */
    char why[400];
    if (kb__maps_quick_changed(s->w.pid, &s->maps, why, sizeof why)) {
        fail->status = KB__ST_REJECTED;
        kb__errf(fail->reason, sizeof fail->reason, "%s %s (case %s)", s->w.label, why,
                 cd->cs->name);
        return KB__ECHILD;
    }
    if (!s->threaded_ok && rep->threads > 1) {
        fail->status = KB__ST_REJECTED;
        kb__errf(fail->reason, sizeof fail->reason,
                 "target is single-threaded; %s started %llu threads (case %s)", s->w.label,
                 (unsigned long long)(rep->threads - 1), cd->cs->name);
        return KB__ECHILD;
    }
    return 0;
}

/* Judges the last call of the batch and KB__CHECKED others drawn now from
 * the side's generator. */
static int check_lanes(kb__side *s, const kb_target *t, const kb__case_data *cd,
                       const uint32_t *order, uint32_t n_order, uint64_t calls, kb__failure *fail)
{
    char detail[400];
    for (int i = 0; i <= KB__CHECKED; i++) {
        uint64_t lane = calls - 1;
        if (i > 0) {
            if (calls == 1) break;
            lane = kb__splitmix64(&s->rng) % (calls - 1);
        }
        int c = kb__outputs_check(t, cd, &s->ob[cd->layout.slot], lane, order[lane % n_order],
                                  detail, sizeof detail);
        if (c != 0) {
            fail->status = c == 1 ? KB__ST_INCORRECT : KB__ST_REJECTED;
            kb__errf(fail->reason, sizeof fail->reason, "%s (call %llu of a batch of %llu)", detail,
                     (unsigned long long)lane + 1, (unsigned long long)calls);
            return KB__ECHILD;
        }
    }
    return 0;
}

int kb__side_batch(kb__side *s, const kb_target *t, const kb__case_data *cd, kb__case_run *run,
                   const uint32_t *order, uint32_t n_order, uint64_t calls, double timeout_s,
                   double *ns, kb__failure *fail)
{
    const uint32_t slot = cd->layout.slot;
    if (calls > cd->layout.n_lanes) calls = cd->layout.n_lanes; /* measure.c keeps within */
    kb__outbuf_poison(&cd->layout, &s->ob[slot], calls);
    kb__req q;
    memset(&q, 0, sizeof q);
    q.type = KB__REQ_BATCH;
    q.slot = slot;
    q.calls = calls;
    q.n_order = n_order;
    memcpy(q.order, order, sizeof(uint32_t) * n_order);
    if (kb__batch_reads_in(t, cd, run->touch_max, order, n_order)) q.flags |= KB__REQF_TOUCH;
    if (cd->layout.n_reps > 1) {
        q.rep0 = run->rep_next;
        run->rep_next =
            (uint32_t)((run->rep_next + (calls + KB__SETS - 1) / KB__SETS) % cd->layout.n_reps);
    }
    kb__rep rep;
    uint64_t host_ns = 0;
    char what[160];
    snprintf(what, sizeof what, "run of case %s", cd->cs->name);
    /* Fresh sets: the worker maps their group alone (proto.h). */
    const int fresh = n_order && order[0] >= KB__SETS;
    if (fresh) q.group = (order[0] - KB__SETS) / KB__PROBE_GROUP;
    int rc = kb__worker_call(&s->w, &q, fresh ? &cd->pro_fd : NULL, fresh, &rep, timeout_s,
                             &host_ns, fail, what);
    if (rc != 0) return rc;
    if ((rc = check_reply(s, cd, &rep, fail)) != 0) return rc;
    if ((rc = check_lanes(s, t, cd, order, n_order, calls, fail)) != 0) return rc;
    /* The worker's interval lies inside the host's, so its reading can only
     * be shorter; a longer one is a forged record. Shorter is the harness's
     * own work between the stamps and the worker's clock (and, unstamped,
     * IPC and wake-ups), which measure.c estimates from these gaps. */
    if (rep.ns > host_ns + 20000) {
        fail->status = KB__ST_REJECTED;
        kb__errf(fail->reason, sizeof fail->reason,
                 "%s reported a batch time of %.0f us but the host measured %.0f us: forged "
                 "timing record (case %s)",
                 s->w.label, rep.ns / 1e3, host_ns / 1e3, cd->cs->name);
        return KB__ECHILD;
    }
    if (s->n_gaps < KB__MAX_GAPS) {
        s->excess[s->n_gaps++] = (double)s->w.last_excess;
    }
    s->last_worker_ns = (double)rep.ns;
    s->last_gap_ns = host_ns > rep.ns ? (double)(host_ns - rep.ns) : 0.0;
    *ns = (double)host_ns;
    return 0;
}
