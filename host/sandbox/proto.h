/*
 * proto.h -- the private channel between the host and a worker.
 *
 * One SOCK_SEQPACKET socketpair per worker: a request is one message, its
 * reply is one message. File descriptors (the plugin snapshot, input arenas,
 * output buffers) travel as SCM_RIGHTS. Every reply echoes the worker's
 * nonce (a per-worker secret from getrandom) and the request's sequence
 * number; the host reads success only from such a reply, never from an exit
 * code or from anything the plugin prints.
 */
#ifndef KB_PROTO_H
#define KB_PROTO_H

#include <stdint.h>

#include "foreign.h"
#include "kb.h"

#define KB__PROTO_MAGIC 0x4b42574bu /* "KWBK" */
#define KB__START_FD    4           /* the worker's start channel; its main channel is fd 3 */
#define KB__SETS        16          /* input sets per case */
/* Fresh sets, sent to a worker only at the end of timing: the candidate's
 * speed on inputs it has never seen, against its timed speed, shows a
 * plugin that replays answers cached from earlier calls (measure.c). */
#define KB__PROBE 16
/* Fresh sets a probe batch runs (one call each); each group lies in its
 * own pages of the fresh arena and a worker maps one group at a time
 * (KB__REQ_BATCH), so no fresh set is in reach before the batch that runs
 * it. */
#define KB__PROBE_GROUP  1
#define KB__PROBE_GROUPS (KB__PROBE / KB__PROBE_GROUP)
#define KB__ALLSETS      (KB__SETS + KB__PROBE)
#define KB__MAX_CASES    64
#define KB__MAX_ORDER    16 /* set order cycled through within one batch */
/* Copies of a case's per-call sets for a KB_TARGET_COLD_INPUTS target
 * (arena.c); the worker keeps a descriptor row per copy and set. */
#define KB__MAX_REPLICAS 4096
#define KB__MAX_LANES    4096
#define KB__LANE_BYTES   (32u << 20) /* output copies per case and side */

enum kb__req_type {
    KB__REQ_LOAD = 1, /* fd: sealed snapshot; loads, reports kb__desc */
    KB__REQ_CASE,     /* fds: statics (read-only), outputs; prepare + verify */
    KB__REQ_BATCH,    /* `calls` runs cycling through `order` (and replicas), timed;
                        * fd, for a fresh batch: the fresh arena (read-only), of which
                        * group `group` alone is mapped, as sets
                        * KB__SETS + group * KB__PROBE_GROUP.. */
    KB__REQ_RELEASE,  /* release() one case */
    KB__REQ_QUIT,     /* exit(0) */
    KB__REQ_INPUTS    /* fd: the timed per-call sets (read-only), sent after CASE's
                        * reply, so prepare never had them */
};

/* Request flags: the target's rules the worker enforces. */
#define KB__REQF_FPENV_FREE 1u /* do not reject changes to FP control state */
/* Batch: send a KB__REP_STARTED message on the start channel (fd
 * KB__START_FD, which the host does not wait on, so sending wakes nobody)
 * just before the first call. The kernel stamps it and the reply as they
 * are sent (SO_TIMESTAMPNS), so the host's reading of the batch leaves out
 * both processes' wake-ups. A sent message cannot be taken back, and work
 * done before the start message still shows in the worker's CPU time. */
#define KB__REQF_STARTED 2u
/* Batch: before the start message the harness itself reads every input
 * byte of the batch's sets, so fresh sets meet the plugin in its caches
 * and TLB like the timed sets do (the fresh probe of a warm target). No
 * plugin code runs meanwhile: the plugin still sees them first at its call. */
#define KB__REQF_TOUCH 4u

enum kb__rep_type {
    KB__REP_OK = 1,
    KB__REP_FAIL,    /* the plugin returned non-zero; msg says why */
    KB__REP_FAULT,   /* last words of the harness's fault handler */
    KB__REP_REFUSED, /* the harness refused (bad descriptor, CPU features, ...) */
    KB__REP_STARTED  /* a batch's first call is about to begin (KB__REQF_STARTED) */
};

/* Where a case's buffers live. Inputs: a static's offset into the statics
 * arena (off[0]; later entries repeat it), a per-call input's offsets into
 * the calls arena, per set; replica r of a per-call set lies
 * rep_stride * r bytes after replica 0, which `off` gives.
 * Outputs: slot offset and size in the output memfd (page multiples) and
 * where the data starts inside the slot. */
typedef struct kb__layout {
    uint32_t n_bufs, n_statics, n_calls, n_outs;
    uint32_t n_params, slot; /* slot: the worker's case index */
    int64_t params[KB_MAX_PARAMS];
    char param_names[KB_MAX_PARAMS][32];
    char case_name[96];
    uint64_t arena_size, out_size, probe_size; /* arena: the statics */
    uint64_t calls_size;                       /* the timed per-call sets, replicas included */
    /* Copies of the per-call sets 0..KB__SETS-1 in the arena: 1 unless the
     * target is KB_TARGET_COLD_INPUTS. */
    uint32_t n_reps, pad3;
    uint64_t rep_stride;
    /* Every call of a batch writes its own copy of the outputs (a lane), so
     * the host can check any call afterwards, chosen after the fact: a
     * plugin cannot know which calls will be checked, so it must do all. */
    uint32_t n_lanes, pad2;
    uint64_t group_off[KB__PROBE_GROUPS + 1]; /* page-aligned span of each fresh group */
    uint64_t lane_size;                       /* bytes of one lane: the output slots */
    /* The batch's output descriptors, kb_buffer[n_lanes][n_outs], written
     * by the worker before the clock starts and read by the host after the
     * reply: a `produced` count needs no copying inside the clock. */
    uint64_t prod_off;
    struct {
        uint32_t role, dtype, flags, pad;
        uint64_t count;
        uint64_t off[KB__SETS];
        uint64_t poff[KB__PROBE]; /* fresh sets, in the probe arena */
        uint64_t slot_off, slot_size, data_off;
    } buf[KB_MAX_BUFFERS];
} kb__layout;

typedef struct kb__req {
    uint32_t magic, type;
    uint64_t nonce;
    uint64_t seq;
    uint32_t slot; /* case slot for CASE/BATCH/RELEASE */
    uint32_t n_order;
    uint32_t flags;       /* KB__REQF_* */
    uint32_t rep0;        /* BATCH: the replica the first call reads (< n_reps) */
    uint32_t group, pad4; /* BATCH with the fresh arena: the group to map */
    uint64_t calls;       /* BATCH */
    uint32_t order[KB__MAX_ORDER];
    char path[256];    /* LOAD: the plugin's path, for messages */
    kb__layout layout; /* CASE */
    kb__fplan foreign; /* LOAD: active for --foreign (foreign.h), bound by the host */
} kb__req;

typedef struct kb__rep {
    uint32_t magic, type;
    uint64_t nonce;
    uint64_t seq;
    int32_t code;
    uint32_t pad;
    uint64_t ns;                       /* worker-measured: batch time, or prepare time */
    uint64_t produced[KB_MAX_BUFFERS]; /* after the batch's last call */
    uint64_t threads;                  /* threads the worker saw after the call */
    kb__desc desc;                     /* LOAD */
    char msg[512];
} kb__rep;

/* The worker: `kbench __worker FD` exec'd by kb__worker_spawn. */
int kb__worker_main(int sock);

#endif /* KB_PROTO_H */
