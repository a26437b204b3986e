/*
 * arena.c -- a case's inputs and oracle outputs, made once in the host.
 *
 * Inputs live in three memfds per case: the statics, the KB__SETS timed
 * per-call sets (the calls arena) and the KB__PROBE fresh sets. The host
 * writes each, seals it against writes, then hands workers a read-only
 * descriptor, so a plugin cannot write them by mprotect or by reopening the
 * memfd. A worker gets the calls arena only once every case's prepare has
 * returned (trial.c), and the fresh sets after timing, one group for each
 * probe batch (worker_batch.c): prepare sees the statics and nothing else, so it
 * cannot precompute answers. The timed sets share
 * the statics of set 0 and differ in every per-call input. The fresh sets
 * are generated from a seed of their own (probe_seed), so nothing a worker
 * reads in the timed sets predicts them. Oracle outputs stay in host memory
 * and never reach a worker.
 *
 * A KB_TARGET_COLD_INPUTS target gets its per-call sets several times over
 * (replicas: byte copies at other addresses), enough that the copies
 * together are at least twice the last-level cache, so timed calls that
 * walk through them find their inputs in DRAM. Copies need no generation
 * and no oracle runs: the oracle's outputs for set s are right for every
 * replica of s.
 *
 * Output slots (per worker, per case) are page multiples: canary bytes, the
 * buffer right-aligned to 64 bytes, then the slot end; the worker maps each
 * slot between guard pages, so an overrun faults or changes a canary. There
 * is one set of slots (a lane) per call of a batch, up to KB__LANE_BYTES.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "trial.h"

#define KB__CANARY 0xa5
/* A cold case's arena stops growing here, colder or not: memory a trial of
 * several cases can afford, and the verdict says when it fell short. */
#define KB__COLD_ARENA_MAX (UINT64_C(1) << 30)

static size_t round_up(size_t x, size_t a)
{
    return (x + a - 1) / a * a;
}

static void oracle_log(const kb_host *h, const char *m)
{
    (void)h;
    (void)m;
}

/* Where buffer i of input set s lives (statics: always set 0's). */
static uint8_t *set_ptr(const kb__case_data *cd, int s, uint32_t i)
{
    const kb__layout *L = &cd->layout;
    if (L->buf[i].role == KB_ROLE_STATIC) return cd->base + L->buf[i].off[0];
    if (s < KB__SETS) return cd->cbase + L->buf[i].off[s];
    return cd->pbase + L->buf[i].poff[s - KB__SETS];
}

uint32_t kb__set_inputs(const kb__case_data *cd, uint32_t s, kb_buffer *bufs)
{
    const kb__layout *L = &cd->layout;
    const uint32_t n = L->n_statics + L->n_calls;
    for (uint32_t i = 0; i < n; i++)
        bufs[i] = (kb_buffer){set_ptr(cd, (int)s, i), L->buf[i].count, 0, L->buf[i].dtype, 0};
    return n;
}

/* Unmaps the writable view, seals the memfd against writes, maps it back
 * read-only and opens a read-only descriptor for workers. */
static int seal(int fd, uint8_t **base, size_t size, int *ro_fd, char *err, size_t err_len)
{
    munmap(*base, size);
    *base = NULL;
    if (kb__memfd_seal(fd) != 0) {
        kb__errf(err, err_len, "cannot seal an input arena: %s", strerror(errno));
        return KB__EIO;
    }
    /* Populated: the host reads all of it (digest, oracle) right away, and
     * one populate costs far less than a fault per page on a VM. */
    void *m = mmap(NULL, size, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
    if (m == MAP_FAILED) {
        kb__errf(err, err_len, "cannot map inputs read-only: %s", strerror(errno));
        return KB__ENOMEM;
    }
    *base = m;
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    *ro_fd = open(path, O_RDONLY | O_CLOEXEC);
    if (*ro_fd < 0) {
        kb__errf(err, err_len, "cannot reopen an input arena read-only: %s", strerror(errno));
        return KB__EIO;
    }
    return 0;
}

static int make_memfd(const char *name, size_t size, char *err, size_t err_len)
{
    int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0 || ftruncate(fd, (off_t)size) != 0) {
        kb__errf(err, err_len, "cannot allocate %zu bytes of shared memory: %s", size,
                 strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    return fd;
}

/* A fresh writable memfd of `size` bytes, mapped at *base. */
static int make_arena(const char *name, size_t size, int *fd, uint8_t **base, char *err,
                      size_t err_len)
{
    *fd = make_memfd(name, size, err, err_len);
    if (*fd < 0) return KB__ENOMEM;
    void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, *fd, 0);
    if (m == MAP_FAILED) {
        kb__errf(err, err_len, "cannot map %zu bytes of inputs (%s): %s", size, name,
                 strerror(errno));
        return KB__ENOMEM;
    }
    *base = m;
    return 0;
}

/* Every input set: the timed ones from `seed`, the fresh ones from
 * `probe_seed`. A generator may write the statics for any set (pq-l2 writes
 * its codebook at set 0 and reads it for the others), so the fresh sets'
 * generator gets a copy of the timed statics to read and to write over. */
static int generate_all(const kb_target *t, kb__case_data *cd, uint64_t seed, uint64_t probe_seed,
                        char *err, size_t err_len)
{
    const kb__layout *L = &cd->layout;
    const kb_case_spec *cs = cd->cs;
    uint8_t *scratch = NULL;
    kb_buffer bufs[KB_MAX_BUFFERS];
    int rc = 0;
    for (int s = 0; s < (int)cd->n_sets && rc == 0; s++) {
        if (s == KB__SETS && L->n_statics) {
            scratch = malloc(cd->size);
            if (!scratch) {
                kb__errf(err, err_len, "out of memory for the fresh sets of case %s", cs->name);
                return KB__ENOMEM;
            }
            memcpy(scratch, cd->base, cd->size);
        }
        for (uint32_t i = 0; i < t->n_buffers; i++) {
            const int out = L->buf[i].role == KB_ROLE_OUTPUT;
            uint8_t *p = out ? NULL : set_ptr(cd, s, i);
            if (scratch && L->buf[i].role == KB_ROLE_STATIC) p = scratch + L->buf[i].off[0];
            bufs[i] = (kb_buffer){p, cs->lengths[i], 0, L->buf[i].dtype, 0};
        }
        char gerr[256] = "";
        if (t->generate(cs, s < KB__SETS ? seed : probe_seed, (uint32_t)s, bufs, t->n_buffers, gerr,
                        sizeof gerr) != 0) {
            gerr[sizeof gerr - 1] = 0;
            kb__errf(err, err_len, "oracle generator failed for case %s: %s", cs->name, gerr);
            rc = KB__ESPEC;
        }
    }
    free(scratch);
    return rc;
}

/* Buffer i's place: statics once (in the statics arena, at *soff),
 * per-call inputs once per set (in the calls arena, at *off), outputs in a
 * lane's slots (at *out_off); 64-byte aligned. Replica 0 of the per-call
 * sets is the span [0, *off) and further replicas follow it. */
static void place_buffers(const kb_target *t, const kb_case_spec *cs, kb__layout *L, size_t page,
                          size_t *soff, size_t *off, size_t *out_off)
{
    for (uint32_t i = 0; i < t->n_buffers; i++) {
        const kb_buffer_spec *b = &t->buffers[i];
        const size_t bytes = cs->lengths[i] * kb__dtype_size(b->dtype);
        L->buf[i].role = b->role;
        L->buf[i].dtype = b->dtype;
        L->buf[i].flags = b->flags;
        L->buf[i].count = cs->lengths[i];
        switch (b->role) {
        case KB_ROLE_STATIC:
            L->n_statics++;
            for (int s = 0; s < KB__SETS; s++) L->buf[i].off[s] = *soff;
            *soff = round_up(*soff + bytes, 64);
            break;
        case KB_ROLE_CALL:
            L->n_calls++;
            for (int s = 0; s < KB__SETS; s++) {
                L->buf[i].off[s] = *off;
                *off = round_up(*off + bytes, 64);
            }
            break;
        default: {
            L->n_outs++;
            const size_t data = round_up(bytes, 64);
            L->buf[i].slot_off = *out_off;
            L->buf[i].slot_size = round_up(data + 64, page);
            L->buf[i].data_off = L->buf[i].slot_size - data;
            *out_off += L->buf[i].slot_size;
        }
        }
    }
}

/* Fresh sets: each group of KB__PROBE_GROUP in pages of its own. */
static void place_fresh(const kb_target *t, const kb_case_spec *cs, kb__layout *L, size_t page)
{
    size_t poff = 0;
    for (uint32_t g = 0; g < KB__PROBE_GROUPS; g++) {
        poff = round_up(poff, page);
        L->group_off[g] = poff;
        for (uint32_t p = g * KB__PROBE_GROUP; p < (g + 1) * KB__PROBE_GROUP; p++)
            for (uint32_t i = 0; i < t->n_buffers; i++) {
                if (t->buffers[i].role != KB_ROLE_CALL) continue;
                L->buf[i].poff[p] = poff;
                poff = round_up(poff + cs->lengths[i] * kb__dtype_size(t->buffers[i].dtype), 64);
            }
    }
    L->group_off[KB__PROBE_GROUPS] = round_up(poff ? poff : 1, page);
}

/* A cold case's replicas, grown onto *off. At least 2 copies, so a call
 * never reads what the one before it read even when one copy alone
 * outgrows the cache. */
static void place_replicas(kb__case_data *cd, size_t soff, size_t *off)
{
    kb__layout *L = &cd->layout;
    cd->llc_bytes = kb__llc_bytes();
    uint64_t want = (2 * cd->llc_bytes + L->rep_stride - 1) / L->rep_stride;
    uint64_t most = soff < KB__COLD_ARENA_MAX
                        ? (KB__COLD_ARENA_MAX - soff) / (L->rep_stride ? L->rep_stride : 1)
                        : 1;
    if (want < 2) want = 2;
    if (most > KB__MAX_REPLICAS) most = KB__MAX_REPLICAS;
    L->n_reps = (uint32_t)(want < most ? want : most > 1 ? most : 1);
    *off += (size_t)(L->n_reps - 1) * L->rep_stride;
}

/* What workers are told about the case: every buffer's place, the arenas'
 * sizes, the lanes of output. */
static void case_layout(const kb_target *t, kb__case_data *cd, uint32_t slot, uint32_t lane_cap)
{
    const kb_case_spec *cs = cd->cs;
    kb__layout *L = &cd->layout;
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);

    L->n_bufs = t->n_buffers;
    L->slot = slot;
    L->n_params = t->n_params;
    for (uint32_t p = 0; p < t->n_params; p++) {
        L->params[p] = cs->params[p];
        snprintf(L->param_names[p], sizeof L->param_names[p], "%s", t->param_names[p]);
    }
    snprintf(L->case_name, sizeof L->case_name, "%s", cs->name);

    size_t soff = 0, off = 0, out_off = 0;
    place_buffers(t, cs, L, page, &soff, &off, &out_off);
    place_fresh(t, cs, L, page);
    L->rep_stride = off;
    L->n_reps = 1;
    if (t->flags & KB_TARGET_COLD_INPUTS) place_replicas(cd, soff, &off);
    cd->n_reps_trial = L->n_reps;
    /* Replicas are for timing: a check reads each set once. */
    if (cd->n_sets < KB__ALLSETS) {
        L->n_reps = 1;
        off = L->rep_stride;
    }
    L->arena_size = round_up(soff ? soff : 1, page);
    L->calls_size = round_up(off ? off : 1, page);
    L->probe_size = L->group_off[KB__PROBE_GROUPS];
    cd->psize = L->probe_size;
    L->lane_size = out_off;
    uint64_t lanes = KB__LANE_BYTES / (out_off ? out_off : 1);
    if (lanes > lane_cap) lanes = lane_cap;
    L->n_lanes = (uint32_t)(lanes < 1 ? 1 : lanes > KB__MAX_LANES ? KB__MAX_LANES : lanes);
    L->prod_off = (uint64_t)L->n_lanes * out_off;
    L->out_size = L->prod_off + round_up((size_t)L->n_lanes * L->n_outs * sizeof(kb_buffer), page);
    cd->size = L->arena_size;
    cd->csize = L->calls_size;
}

/* A worker maps every lane's output slot between guard pages, two
 * mappings per output per lane, and keeps every case of a trial mapped:
 * 13 cases of one small output at KB__MAX_LANES each would pass Linux's
 * default vm.max_map_count (65530) and fail to map. The lanes of all the
 * cases together get half of this machine's limit; the rest is the
 * plugin's, its libraries' and the inputs'. */
uint32_t kb__lane_cap(uint32_t n_cases, uint32_t n_outs)
{
    uint64_t max_maps = 65530;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    unsigned long long v;
    if (f && fscanf(f, "%llu", &v) == 1 && v > 0) max_maps = v;
    if (f) fclose(f);
    const uint64_t per = 2ull * (n_cases ? n_cases : 1) * (n_outs ? n_outs : 1);
    const uint64_t cap = max_maps / 2 / per;
    return (uint32_t)(cap < 1 ? 1 : cap > KB__MAX_LANES ? KB__MAX_LANES : cap);
}

/* The oracle's outputs for input set s, into fresh host memory; its
 * fastest call so far in cd->oracle_ns. */
static int oracle_set(const kb_plugin *oracle, void *state, kb__case_data *cd, int s, char *err,
                      size_t err_len)
{
    const kb__layout *L = &cd->layout;
    const char *name = cd->cs->name;
    kb_buffer ins[KB_MAX_BUFFERS], outs[KB_MAX_BUFFERS];
    for (uint32_t i = 0; i < L->n_calls; i++) {
        const uint32_t bi = L->n_statics + i;
        ins[i] = (kb_buffer){set_ptr(cd, s, bi), L->buf[bi].count, 0, L->buf[bi].dtype, 0};
    }
    for (uint32_t j = 0; j < L->n_outs; j++) {
        const uint32_t bi = L->n_statics + L->n_calls + j;
        const size_t bytes = L->buf[bi].count * kb__dtype_size(L->buf[bi].dtype);
        cd->ref[s][j] = kb__host_alloc(NULL, round_up(bytes, 64), 64);
        if (!cd->ref[s][j]) {
            kb__errf(err, err_len, "out of memory for oracle outputs of case %s", name);
            return KB__ENOMEM;
        }
        memset(cd->ref[s][j], 0, bytes);
        outs[j] = (kb_buffer){cd->ref[s][j], L->buf[bi].count, 0, L->buf[bi].dtype, 0};
    }
    char perr[256] = "";
    const uint64_t t0 = kb__now_ns();
    if (oracle->run(state, ins, L->n_calls, outs, L->n_outs, perr, sizeof perr) != 0) {
        perr[sizeof perr - 1] = 0;
        kb__errf(err, err_len, "oracle run failed for case %s: %s", name, perr);
        return KB__ESPEC;
    }
    const double dt = (double)(kb__now_ns() - t0);
    if (s == 0 || dt < cd->oracle_ns) cd->oracle_ns = dt;
    int rc = 0;
    for (uint32_t j = 0; j < L->n_outs; j++) {
        const uint32_t bi = L->n_statics + L->n_calls + j;
        cd->ref_produced[s][j] =
            (L->buf[bi].flags & KB_BUF_VARIABLE) ? outs[j].produced : L->buf[bi].count;
        if (cd->ref_produced[s][j] > L->buf[bi].count) {
            kb__errf(err, err_len, "oracle produced more than its capacity in case %s", name);
            rc = KB__ESPEC;
        }
    }
    return rc;
}

/* Oracle outputs of every set, in the host: the oracle is pinned and
 * trusted. */
static int oracle_outputs(const kb_plugin *oracle, kb__case_data *cd, char *err, size_t err_len)
{
    const kb__layout *L = &cd->layout;
    static const kb_host host = {sizeof(kb_host), 0, 0, oracle_log, kb__host_alloc, kb__host_free};
    kb_host h = host;
    h.cpu_features = kb__cpu_features();
    const char *names[KB_MAX_PARAMS];
    for (uint32_t p = 0; p < L->n_params; p++) names[p] = L->param_names[p];
    kb_case kc = {L->case_name, L->n_params, 0, L->params, names};
    kb_buffer statics[KB_MAX_BUFFERS];
    for (uint32_t i = 0; i < L->n_statics; i++)
        statics[i] =
            (kb_buffer){cd->base + L->buf[i].off[0], L->buf[i].count, 0, L->buf[i].dtype, 0};
    void *state = NULL;
    char perr[256] = "";
    if (oracle->prepare(&h, &kc, statics, L->n_statics, &state, perr, sizeof perr) != 0) {
        perr[sizeof perr - 1] = 0;
        kb__errf(err, err_len, "oracle prepare failed for case %s: %s", cd->cs->name, perr);
        return KB__ESPEC;
    }
    int rc = 0;
    for (int s = 0; s < (int)cd->n_sets && rc == 0; s++)
        rc = oracle_set(oracle, state, cd, s, err, err_len);
    oracle->release(state);
    return rc;
}

int kb__case_build(const kb_target *t, const kb_plugin *oracle, uint32_t case_index, uint32_t slot,
                   uint64_t seed, uint64_t probe_seed, kb__case_data *cd, char *err, size_t err_len)
{
    int rc = kb__case_build_spec(t, oracle, &t->cases[case_index], slot, KB__MAX_LANES, KB__ALLSETS,
                                 seed, probe_seed, cd, err, err_len);
    cd->index = case_index;
    return rc;
}

int kb__case_build_spec(const kb_target *t, const kb_plugin *oracle, const kb_case_spec *cs,
                        uint32_t slot, uint32_t lane_cap, uint32_t n_sets, uint64_t seed,
                        uint64_t probe_seed, kb__case_data *cd, char *err, size_t err_len)
{
    memset(cd, 0, sizeof *cd);
    cd->fd = cd->ro_fd = cd->cfd = cd->cro_fd = cd->pfd = cd->pro_fd = -1;
    cd->index = UINT32_MAX;
    cd->cs = cs;
    cd->n_sets = n_sets < KB__ALLSETS ? KB__SETS : KB__ALLSETS;
    case_layout(t, cd, slot, lane_cap);
    const kb__layout *L = &cd->layout;
    /* Fresh sets go to workers only in the fresh probe, after timing: a
     * check has no probe, so its fresh arena stays one empty page. */
    if (cd->n_sets < KB__ALLSETS) cd->psize = (size_t)sysconf(_SC_PAGESIZE);

    int rc = make_arena("kb-statics", cd->size, &cd->fd, &cd->base, err, err_len);
    if (!rc) rc = make_arena("kb-inputs", cd->csize, &cd->cfd, &cd->cbase, err, err_len);
    if (!rc) rc = make_arena("kb-fresh-inputs", cd->psize, &cd->pfd, &cd->pbase, err, err_len);
    if (!rc) rc = generate_all(t, cd, seed, probe_seed, err, err_len);
    if (rc) return rc;
    for (uint32_t r = 1; r < L->n_reps; r++)
        memcpy(cd->cbase + r * L->rep_stride, cd->cbase, L->rep_stride);
    /* Seal: a worker could otherwise reopen /proc/self/fd/N read-write. The
     * host keeps only a read-only view from here on. */
    if (seal(cd->fd, &cd->base, cd->size, &cd->ro_fd, err, err_len) != 0 ||
        seal(cd->cfd, &cd->cbase, cd->csize, &cd->cro_fd, err, err_len) != 0 ||
        seal(cd->pfd, &cd->pbase, cd->psize, &cd->pro_fd, err, err_len) != 0)
        return KB__EIO;
    cd->input_digest = kb__case_digest(cd);
    return oracle_outputs(oracle, cd, err, err_len);
}

static void mib(char *out, size_t len, double bytes)
{
    const double m = bytes / (1u << 20);
    snprintf(out, len, m >= 10 ? "%.0f" : "%.1f", m);
}

/* A check (verify, run) builds no replicas: the figures are a trial's. */
static void check_note(char *out, size_t len)
{
    const size_t n = strlen(out);
    if (n == 0 || out[n - 1] != ')') return;
    out[n - 1] = 0;
    snprintf(out + n - 1, len - (n - 1), "; in a trial: a check reads each set once)");
}

void kb__inputs_describe(const kb_target *t, const kb__case_data *cases, uint32_t n, char *out,
                         size_t len)
{
    if (!(t->flags & KB_TARGET_COLD_INPUTS)) {
        snprintf(out, len, "warm");
        return;
    }
    /* a check's context (verify, run): its layout has no replicas */
    const int check = n > 0 && cases[0].n_sets == KB__SETS;
    uint32_t rlo = UINT32_MAX, rhi = 0, short_of = 0;
    double wlo = INFINITY, whi = 0, llc = 0;
    for (uint32_t c = 0; c < n; c++) {
        const kb__layout *L = &cases[c].layout;
        const uint32_t reps = check ? cases[c].n_reps_trial : L->n_reps;
        const double w = (double)reps * (double)L->rep_stride;
        rlo = reps < rlo ? reps : rlo;
        rhi = reps > rhi ? reps : rhi;
        wlo = w < wlo ? w : wlo;
        whi = w > whi ? w : whi;
        llc = (double)cases[c].llc_bytes;
        short_of += w < 2 * llc;
    }
    if (n == 0) {
        snprintf(out, len, "cold");
        return;
    }
    char reps[32], ws[48], a[16], b[16], l[16];
    if (rlo == rhi)
        snprintf(reps, sizeof reps, "%u replica%s", rlo, rlo == 1 ? "" : "s");
    else
        snprintf(reps, sizeof reps, "%u-%u replicas", rlo, rhi);
    mib(a, sizeof a, wlo);
    mib(b, sizeof b, whi);
    mib(l, sizeof l, llc);
    if (strcmp(a, b))
        snprintf(ws, sizeof ws, "%s-%s", a, b);
    else
        snprintf(ws, sizeof ws, "%s", a);
    if (!short_of)
        snprintf(out, len, "cold (%s, %s MiB working set > LLC %s MiB)", reps, ws, l);
    else
        snprintf(out, len,
                 "cold (%s, %s MiB working set, under 2x LLC %s MiB in %u of %u cases: capped at "
                 "%llu MiB of inputs or %u replicas per case)",
                 reps, ws, l, short_of, n, (unsigned long long)(KB__COLD_ARENA_MAX >> 20),
                 KB__MAX_REPLICAS);
    if (check) check_note(out, len);
}

uint64_t kb__case_digest(const kb__case_data *cd)
{
    return kb__hash(cd->base, cd->size, 0) ^ kb__hash(cd->cbase, cd->csize, 2) ^
           kb__hash(cd->pbase, cd->psize, 1);
}

void kb__case_free(kb__case_data *cd)
{
    for (int s = 0; s < KB__ALLSETS; s++)
        for (int j = 0; j < KB_MAX_BUFFERS; j++) free(cd->ref[s][j]);
    if (cd->base) munmap(cd->base, cd->size);
    if (cd->pbase) munmap(cd->pbase, cd->psize);
    if (cd->cbase) munmap(cd->cbase, cd->csize);
    if (cd->fd >= 0) close(cd->fd);
    if (cd->ro_fd >= 0) close(cd->ro_fd);
    if (cd->cfd >= 0) close(cd->cfd);
    if (cd->cro_fd >= 0) close(cd->cro_fd);
    if (cd->pfd >= 0) close(cd->pfd);
    if (cd->pro_fd >= 0) close(cd->pro_fd);
    memset(cd, 0, sizeof *cd);
    cd->fd = cd->ro_fd = cd->cfd = cd->cro_fd = cd->pfd = cd->pro_fd = -1;
}

int kb__outbuf_create(const kb__layout *L, kb__outbuf *ob, char *err, size_t err_len)
{
    ob->size = L->out_size;
    ob->fd = make_memfd("kb-outputs", ob->size, err, err_len);
    if (ob->fd < 0) return KB__ENOMEM;
    ob->base = mmap(NULL, ob->size, PROT_READ | PROT_WRITE, MAP_SHARED, ob->fd, 0);
    if (ob->base == MAP_FAILED) {
        ob->base = NULL;
        kb__errf(err, err_len, "cannot map output memory: %s", strerror(errno));
        return KB__ENOMEM;
    }
    /* Canary bytes go into a lane when it is first used (kb__outbuf_poison):
     * filling every lane of every case at once costs page faults for up to
     * KB__LANE_BYTES a case (docs/lab/trial-figures.md), and most lanes of a
     * slow kernel are never used. */
    ob->ready = 0;
    return 0;
}

/* 0xff bytes: NaN for floats, all-ones for integers; never a right answer
 * left over from an earlier call. */
void kb__outbuf_poison(const kb__layout *L, kb__outbuf *ob, uint64_t lanes)
{
    if (lanes > L->n_lanes) lanes = L->n_lanes;
    if (lanes > ob->ready) {
        memset(ob->base + ob->ready * L->lane_size, KB__CANARY, (lanes - ob->ready) * L->lane_size);
        ob->ready = lanes;
    }
    for (uint64_t l = 0; l < lanes; l++)
        for (uint32_t i = 0; i < L->n_bufs; i++) {
            if (L->buf[i].role != KB_ROLE_OUTPUT) continue;
            uint8_t *slot = ob->base + l * L->lane_size + L->buf[i].slot_off;
            memset(slot + L->buf[i].data_off, 0xff, L->buf[i].slot_size - L->buf[i].data_off);
        }
    memset(ob->base + L->prod_off, 0xff, (size_t)lanes * L->n_outs * sizeof(kb_buffer));
}

void kb__outbuf_free(kb__outbuf *ob)
{
    if (ob->base) munmap(ob->base, ob->size);
    if (ob->fd >= 0) close(ob->fd);
    ob->base = NULL;
    ob->fd = -1;
}
