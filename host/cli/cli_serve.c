/*
 * cli_serve.c -- `kbench serve --socket PATH`: a long-lived host on a Unix
 * socket, and its client, `kbench trial --server PATH`.
 *
 * Protocol: JSON lines (jansson both ways), one request per line:
 *
 *   {"op": "trial"|"verify", "candidate": PATH, "against": "oracle"|"best"|PATH,
 *    "budget": S, "cases": SEL, "ledger": PATH, "description": TEXT, "state": DIR,
 *    "seed": N, "min_gain": PCT, "worst_case": PCT, "oracles": DIR, "id": ANY}
 *
 * "seed" and "oracles" choose the inputs a candidate is judged on and who
 * judges it: the server pins both (its secret seed, its --oracles) and
 * answers a request that sets them with an error, unless it was started
 * with --allow-client-seed / --allow-client-oracles. A verdict on a chosen
 * seed says so (seed_chosen) and never makes a best.
 *   {"op": "list"} {"op": "status"} {"op": "shutdown"}
 *
 * A trial or verify is answered first with {"queued": true, "position": N}
 * (N trials ahead of it), then with the document `kbench trial --json`
 * prints plus "op", "exit_code" (and "id" when the request had one). Errors
 * are {"error": TEXT} (with "exit_code" when a trial could not start).
 * Paths are taken as the server sees them: the client makes them absolute.
 * Without "state" a trial against the best uses the server's state
 * directory (--state, else its $KBENCH_STATE_DIR, else its ./.kbench).
 *
 * Threads: this one polls the listening socket and every client; one trial
 * thread runs the queue in arrival order, so trials never overlap and
 * disturb each other's timings, through one kb__ctx_cache that keeps every
 * target's inputs and oracle outputs warm for the life of the server. A
 * client that goes away loses its answer and its queued requests, nothing
 * else. The socket is created 0600 (umask), and a peer of another uid is
 * refused even where the file mode would let it in.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "report.h"
#include "session.h"
#include "options.h"
#include "record.h"

#define KB__REQ_MAX     65536       /* bytes in one request line */
#define KB__OUT_MAX     (16u << 20) /* unread answers a client may leave */
#define KB__MAX_CLIENTS 64
#define KB__MAX_QUEUE   256

static const char SERVE_HELP[] =
    "usage: kbench serve --socket PATH [--oracles DIR] [--state DIR] [--allow-client-seed]\n"
    "                    [--allow-client-oracles]\n"
    "\n"
    "A long-lived kbench on a Unix socket (created 0600, owner only). Inputs and oracle\n"
    "outputs are generated once per target and case selection and reused by every trial,\n"
    "so a reload costs the trial's measuring time and little else. Trials run one at a\n"
    "time, in arrival order. Clients: `kbench trial --server PATH cand.so [options]`, or\n"
    "any program writing JSON lines:\n"
    "  {\"op\":\"trial\",\"candidate\":\"/abs/cand.so\",\"against\":\"best\",\"budget\":2}\n"
    "  {\"op\":\"verify\",...} {\"op\":\"list\"} {\"op\":\"status\"} {\"op\":\"shutdown\"}\n"
    "--state DIR: where `--against best` keeps each target's best (default: the server's\n"
    "$KBENCH_STATE_DIR, else .kbench in its working directory); a request's \"state\" (a\n"
    "client's own --state) overrides it for that request.\n"
    "SIGINT/SIGTERM or a shutdown request stop it after the running trial.\n"
    "The server pins the inputs' seed (a fresh secret) and the oracles (--oracles): a request\n"
    "with \"seed\" or \"oracles\" is refused unless started with --allow-client-seed or\n"
    "--allow-client-oracles. A verdict on a client's seed says seed_chosen: yes and never\n"
    "makes a best.\n";

/* ---- small helpers -------------------------------------------------- */
static double now_s(void)
{
    return (double)kb__now_ns() / 1e9;
}

/* Appends a compact JSON line for `doc` (stolen) to *buf. */
static char *json_line(json_t *doc)
{
    char *s = json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(10));
    json_decref(doc);
    if (!s) return NULL;
    size_t n = strlen(s);
    char *line = realloc(s, n + 2);
    if (!line) {
        free(s);
        return NULL;
    }
    line[n] = '\n';
    line[n + 1] = 0;
    return line;
}

static json_t *error_doc(const json_t *req, const char *op, const char *msg, int exit_code)
{
    json_t *d = json_object();
    if (op) json_object_set_new(d, "op", json_string(op));
    const json_t *id = req ? json_object_get(req, "id") : NULL;
    if (id) json_object_set(d, "id", (json_t *)id);
    /* messages carry paths: keep the document valid UTF-8 */
    char m[1024];
    snprintf(m, sizeof m, "%s", msg);
    for (unsigned char *p = (unsigned char *)m; *p; p++)
        if (*p >= 0x80) *p = '?';
    json_object_set_new(d, "error", json_string(m));
    if (exit_code >= 0) json_object_set_new(d, "exit_code", json_integer(exit_code));
    return d;
}

/* ---- server state --------------------------------------------------- */
typedef struct kb__job {
    uint64_t client; /* id of the client that asked */
    json_t *req;
    struct kb__job *next;
} kb__job;

typedef struct kb__done {
    uint64_t client;
    char *line;
    struct kb__done *next;
} kb__done;

typedef struct kb__client {
    int fd; /* -1: free slot */
    uint64_t id;
    char in[KB__REQ_MAX + 1];
    size_t in_len;
    char *out;
    size_t out_len, out_off;
    int eof;     /* peer shut its write side: answer, then close */
    int closing; /* close once out is flushed */
    int pending; /* its jobs queued or running */
} kb__client;

typedef struct kb__server {
    const char *socket_path;
    const char *oracles_dir, *state_dir; /* state_dir: never NULL once started */
    char state_buf[PATH_MAX];
    int allow_seed, allow_oracles; /* may a client choose them? */
    int lfd, wake[2];
    kb__client clients[KB__MAX_CLIENTS];
    uint64_t next_id;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    kb__job *head, *tail; /* queue */
    uint32_t n_queued;
    kb__job *running;
    char running_what[600];
    kb__done *done;
    int stop; /* no more trials; drain and exit */
    uint64_t trials;
    kb__ctx_cache cache;   /* owned by the trial thread */
    uint64_t builds, hits; /* copies, under mu */
    uint32_t n_ctx;
    double started;
} kb__server;

static volatile sig_atomic_t g_signal;
static int g_wake_fd = -1;

static void on_signal(int sig)
{
    g_signal = sig;
    if (g_wake_fd >= 0) {
        int e = errno;
        ssize_t n = write(g_wake_fd, "s", 1);
        (void)n;
        errno = e;
    }
}

/* ---- the trial thread ----------------------------------------------- */
static const char *jstr(const json_t *req, const char *key)
{
    const json_t *v = json_object_get(req, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Reads an optional number member into *out; 0 ok, -1 mistyped. */
static int jnum(const json_t *req, const char *key, double *out)
{
    const json_t *v = json_object_get(req, key);
    if (!v) return 0;
    if (!json_is_number(v)) return -1;
    *out = json_number_value(v);
    return 0;
}

/* NULL when the request may run here, else why not: a client may choose
 * neither its inputs' seed nor its oracle on a server that pins them. */
static const char *pinned(const kb__server *sv, const json_t *req)
{
    const json_t *seed = json_object_get(req, "seed");
    const int chose_seed =
        seed && !json_is_null(seed) && !(json_is_number(seed) && json_number_value(seed) == 0);
    if (chose_seed && !sv->allow_seed)
        return "this server pins the inputs' seed: a client may not set \"seed\" (drop it, or "
               "start the server with kbench serve --allow-client-seed)";
    const json_t *orc = json_object_get(req, "oracles");
    if (orc && !json_is_null(orc) && !sv->allow_oracles)
        return "this server pins its oracles: a client may not set \"oracles\" (drop it, or "
               "start the server with kbench serve --oracles DIR --allow-client-oracles)";
    return NULL;
}

/* A trial request's options over the command line's defaults; NULL, or
 * why the request is refused. */
static const char *request_opts(const kb__server *sv, const json_t *req, kb__trial_args *a)
{
    kb__trial_args_init(a);
    kb__trial_opts *o = &a->o;
    o->exe = kb__worker_exe();
    o->verify_only = !strcmp(jstr(req, "op"), "verify");
    o->candidate = jstr(req, "candidate");
    o->against = jstr(req, "against");
    o->cases = jstr(req, "cases");
    o->oracles_dir = jstr(req, "oracles") ? jstr(req, "oracles") : sv->oracles_dir;
    a->ledger = jstr(req, "ledger");
    a->desc = jstr(req, "description") ? jstr(req, "description") : "";
    a->state = jstr(req, "state") ? jstr(req, "state") : sv->state_dir;
    double gain = KB__MIN_GAIN_DEFAULT_PCT, worst = KB__WORST_CASE_DEFAULT_PCT, seed = 0;
    if (!o->candidate) return "\"candidate\" (a path to a .so) is required";
    if (jnum(req, "budget", &o->budget) || jnum(req, "min_gain", &gain) ||
        jnum(req, "worst_case", &worst) || jnum(req, "seed", &seed) || !kb__budget_ok(o->budget) ||
        gain < 0 || worst < 0 || seed < 0)
        return "budget must be a number in (0, " KB__BUDGET_MAX_TXT
               "], min_gain, worst_case and seed non-negative numbers";
    o->rule.min_gain = gain / 100.0;
    o->rule.worst_case = worst / 100.0;
    o->seed = (uint64_t)seed;
    return NULL;
}

static char *run_job(kb__server *sv, const json_t *req)
{
    const char *op = jstr(req, "op");
    const char *refused = pinned(sv, req);
    kb__trial_args a;
    if (!refused) refused = request_opts(sv, req, &a);
    if (refused) return json_line(error_doc(req, op, refused, 64));
    kb__result *r = calloc(1, sizeof *r);
    if (!r) return json_line(error_doc(req, op, "out of memory", KB__EXIT_SOFTWARE));
    kb__best_info bi;
    char err[1024], lerr[1024];
    kb__record rec = {
        .state_dir = a.state, .cache = &sv->cache, .description = a.desc, .ledger = a.ledger};
    int rc = kb__trial_record(&a.o, &rec, r, &bi, err, sizeof err, lerr, sizeof lerr);
    if (rc != 0) {
        free(r);
        return json_line(
            error_doc(req, op, err, rc == KB__EUSAGE ? KB__EXIT_USAGE : KB__EXIT_SOFTWARE));
    }
    int code = lerr[0] ? KB__EXIT_SOFTWARE : kb__status_exit_code(r->status);
    json_t *doc = kb__result_to_json(r, &bi);
    free(r);
    if (!doc) return json_line(error_doc(req, op, "out of memory", KB__EXIT_SOFTWARE));
    json_object_set_new(doc, "op", json_string(op));
    const json_t *id = json_object_get(req, "id");
    if (id) json_object_set(doc, "id", (json_t *)id);
    json_object_set_new(doc, "exit_code", json_integer(code));
    if (lerr[0]) json_object_set_new(doc, "ledger_error", json_string(lerr));
    return json_line(doc);
}

static void *trial_thread(void *arg)
{
    kb__server *sv = arg;
    pthread_mutex_lock(&sv->mu);
    for (;;) {
        while (!sv->head && !sv->stop) pthread_cond_wait(&sv->cv, &sv->mu);
        if (!sv->head) break; /* stopping, nothing left */
        kb__job *j = sv->head;
        sv->head = j->next;
        if (!sv->head) sv->tail = NULL;
        sv->n_queued--;
        sv->running = j;
        const char *cand = jstr(j->req, "candidate");
        snprintf(sv->running_what, sizeof sv->running_what, "%s %s", jstr(j->req, "op"),
                 cand ? cand : "?");
        pthread_mutex_unlock(&sv->mu);

        char *line = run_job(sv, j->req);

        pthread_mutex_lock(&sv->mu);
        sv->running = NULL;
        sv->trials++;
        sv->builds = sv->cache.builds;
        sv->hits = sv->cache.hits;
        sv->n_ctx = sv->cache.n;
        kb__done *d = calloc(1, sizeof *d);
        if (d && line) {
            d->client = j->client;
            d->line = line;
            d->next = sv->done;
            sv->done = d;
        } else {
            free(d);
            free(line);
        }
        json_decref(j->req);
        free(j);
        ssize_t n = write(sv->wake[1], "d", 1);
        (void)n;
    }
    pthread_mutex_unlock(&sv->mu);
    return NULL;
}

/* ---- clients -------------------------------------------------------- */
static kb__client *client_by_id(kb__server *sv, uint64_t id)
{
    for (int i = 0; i < KB__MAX_CLIENTS; i++)
        if (sv->clients[i].fd >= 0 && sv->clients[i].id == id) return &sv->clients[i];
    return NULL;
}

static void client_send(kb__client *c, const char *line)
{
    size_t n = strlen(line);
    if (c->closing || c->out_len - c->out_off + n > KB__OUT_MAX) {
        c->closing = 1; /* it does not read its answers: let it go */
        return;
    }
    if (c->out_off && c->out_off == c->out_len) c->out_off = c->out_len = 0;
    char *p = realloc(c->out, c->out_len + n);
    if (!p) {
        c->closing = 1;
        return;
    }
    memcpy(p + c->out_len, line, n);
    c->out = p;
    c->out_len += n;
}

static void client_send_doc(kb__client *c, json_t *doc)
{
    char *line = json_line(doc);
    if (line) client_send(c, line);
    free(line);
}

/* Drops a client; its queued jobs go with it (a running one finishes: its
 * verdict is still a ledger line). */
static void client_close(kb__server *sv, kb__client *c)
{
    pthread_mutex_lock(&sv->mu);
    for (kb__job **pp = &sv->head; *pp;) {
        kb__job *j = *pp;
        if (j->client == c->id) {
            *pp = j->next;
            sv->n_queued--;
            json_decref(j->req);
            free(j);
        } else {
            pp = &j->next;
        }
    }
    sv->tail = NULL;
    for (kb__job *j = sv->head; j; j = j->next) sv->tail = j;
    pthread_mutex_unlock(&sv->mu);
    close(c->fd);
    free(c->out);
    memset(c, 0, sizeof *c);
    c->fd = -1;
}

static void flush_client(kb__server *sv, kb__client *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (n <= 0) {
            client_close(sv, c); /* gone (EPIPE, ECONNRESET) */
            return;
        }
        c->out_off += (size_t)n;
    }
    c->out_off = c->out_len = 0;
    if (c->closing || (c->eof && !c->pending)) client_close(sv, c);
}

static json_t *list_doc(const kb__server *sv);

static json_t *status_doc(kb__server *sv)
{
    json_t *d = json_object();
    json_object_set_new(d, "op", json_string("status"));
    json_object_set_new(d, "pid", json_integer(getpid()));
    json_object_set_new(d, "socket", json_string(sv->socket_path));
    json_object_set_new(d, "state", json_string(sv->state_dir));
    json_object_set_new(d, "uptime_s", json_real(now_s() - sv->started));
    int nc = 0;
    for (int i = 0; i < KB__MAX_CLIENTS; i++) nc += sv->clients[i].fd >= 0;
    json_object_set_new(d, "clients", json_integer(nc));
    pthread_mutex_lock(&sv->mu);
    json_object_set_new(d, "queued", json_integer(sv->n_queued));
    json_object_set_new(d, "running", sv->running ? json_string(sv->running_what) : json_null());
    json_object_set_new(d, "trials", json_integer((json_int_t)sv->trials));
    json_t *w = json_object();
    json_object_set_new(w, "contexts", json_integer(sv->n_ctx));
    json_object_set_new(w, "builds", json_integer((json_int_t)sv->builds));
    json_object_set_new(w, "hits", json_integer((json_int_t)sv->hits));
    json_object_set_new(d, "warm", w);
    pthread_mutex_unlock(&sv->mu);
    return d;
}

static void handle_line(kb__server *sv, kb__client *c, const char *line, size_t len)
{
    json_error_t je;
    json_t *req = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
    if (!req) {
        char m[300];
        snprintf(m, sizeof m, "malformed JSON at column %d: %s", je.column, je.text);
        client_send_doc(c, error_doc(NULL, NULL, m, -1));
        return;
    }
    const char *op = json_is_object(req) ? jstr(req, "op") : NULL;
    if (!op) {
        client_send_doc(c, error_doc(json_is_object(req) ? req : NULL, NULL,
                                     "a request is a JSON object with \"op\": trial, verify, list, "
                                     "status or shutdown",
                                     -1));
    } else if ((!strcmp(op, "trial") || !strcmp(op, "verify")) && !jstr(req, "candidate")) {
        client_send_doc(c, error_doc(req, op, "\"candidate\" (a path to a .so) is required", 64));
    } else if (!strcmp(op, "trial") || !strcmp(op, "verify")) {
        pthread_mutex_lock(&sv->mu);
        const uint32_t ahead = sv->n_queued + (sv->running ? 1 : 0);
        int full = sv->n_queued >= KB__MAX_QUEUE || sv->stop;
        kb__job *j = full ? NULL : calloc(1, sizeof *j);
        if (j) {
            j->client = c->id;
            j->req = json_incref(req);
            if (sv->tail)
                sv->tail->next = j;
            else
                sv->head = j;
            sv->tail = j;
            sv->n_queued++;
            c->pending++;
            pthread_cond_signal(&sv->cv);
        }
        pthread_mutex_unlock(&sv->mu);
        if (!j) {
            client_send_doc(c, error_doc(req, op,
                                         sv->stop ? "the server is shutting down"
                                                  : "the queue is full; try again later",
                                         -1));
        } else {
            json_t *q = json_object();
            json_object_set_new(q, "op", json_string(op));
            const json_t *id = json_object_get(req, "id");
            if (id) json_object_set(q, "id", (json_t *)id);
            json_object_set_new(q, "queued", json_true());
            json_object_set_new(q, "position", json_integer(ahead));
            client_send_doc(c, q);
        }
    } else if (!strcmp(op, "status")) {
        client_send_doc(c, status_doc(sv));
    } else if (!strcmp(op, "list")) {
        client_send_doc(c, list_doc(sv));
    } else if (!strcmp(op, "shutdown")) {
        json_t *d = json_object();
        json_object_set_new(d, "op", json_string("shutdown"));
        json_object_set_new(d, "ok", json_true());
        client_send_doc(c, d);
        pthread_mutex_lock(&sv->mu);
        sv->stop = 1;
        pthread_mutex_unlock(&sv->mu);
    } else {
        char m[160];
        snprintf(m, sizeof m, "unknown op \"%.40s\"; ops: trial, verify, list, status, shutdown",
                 op);
        client_send_doc(c, error_doc(req, op, m, -1));
    }
    json_decref(req);
}

static void read_client(kb__server *sv, kb__client *c)
{
    for (;;) {
        if (c->in_len == KB__REQ_MAX) {
            client_send_doc(
                c, error_doc(NULL, NULL,
                             "request larger than 65536 bytes; the connection is closed", -1));
            c->closing = 1;
            c->in_len = 0;
            return;
        }
        ssize_t n = recv(c->fd, c->in + c->in_len, KB__REQ_MAX - c->in_len, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (n <= 0) {
            c->eof = 1;
            return;
        }
        size_t start = 0;
        c->in_len += (size_t)n;
        for (size_t i = c->in_len - (size_t)n; i < c->in_len; i++) {
            if (c->in[i] != '\n') continue;
            size_t len = i - start;
            if (len && c->in[start + len - 1] == '\r') len--;
            if (len) handle_line(sv, c, c->in + start, len);
            start = i + 1;
        }
        memmove(c->in, c->in + start, c->in_len - start);
        c->in_len -= start;
    }
}

static void accept_clients(kb__server *sv)
{
    for (;;) {
        int fd = accept4(sv->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) return;
        struct ucred cr;
        socklen_t cl = sizeof cr;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) != 0 || cr.uid != geteuid()) {
            close(fd); /* owner only, whatever the file mode says */
            continue;
        }
        kb__client *c = NULL;
        for (int i = 0; i < KB__MAX_CLIENTS && !c; i++)
            if (sv->clients[i].fd < 0) c = &sv->clients[i];
        if (!c) {
            static const char busy[] = "{\"error\":\"too many clients\"}\n";
            ssize_t n = send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL);
            (void)n;
            close(fd);
            continue;
        }
        memset(c, 0, sizeof *c);
        c->fd = fd;
        c->id = ++sv->next_id;
    }
}

static void deliver_done(kb__server *sv)
{
    pthread_mutex_lock(&sv->mu);
    kb__done *d = sv->done;
    sv->done = NULL;
    pthread_mutex_unlock(&sv->mu);
    while (d) {
        kb__done *next = d->next;
        kb__client *c = client_by_id(sv, d->client);
        if (c) {
            c->pending--;
            client_send(c, d->line);
        }
        free(d->line);
        free(d);
        d = next;
    }
}

/* A socket at `path` that answers is another server; one that does not is
 * left over from a server that died, and goes. */
static int make_listener(const char *path, char *err, size_t err_len)
{
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sa.sun_path) {
        kb__errf(err, err_len, "--socket %s: longer than %zu bytes; use a shorter path", path,
                 sizeof sa.sun_path - 1);
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path));
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            kb__errf(err, err_len, "--socket %s: exists and is not a socket; pick another path",
                     path);
            return -1;
        }
        int t = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (t >= 0 && connect(t, (struct sockaddr *)&sa, sizeof sa) == 0) {
            close(t);
            kb__errf(err, err_len, "--socket %s: another kbench serve is listening there", path);
            return -1;
        }
        if (t >= 0) close(t);
        unlink(path);
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        kb__errf(err, err_len, "socket: %s", strerror(errno));
        return -1;
    }
    mode_t old = umask(0177); /* the socket is born 0600: no window for others */
    int rc = bind(fd, (struct sockaddr *)&sa, sizeof sa);
    umask(old);
    if (rc != 0 || chmod(path, 0600) != 0 || listen(fd, 64) != 0) {
        kb__errf(err, err_len, "--socket %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* Reads the command line into sv; 0, or an exit code (usage, or 0 after
 * --help with *done). */
static int serve_args(int argc, char **argv, kb__server *sv, int *done)
{
    struct option opts[8];
    kb__longopts("socket oracles state allow-client-seed allow-client-oracles help", opts,
                 sizeof opts / sizeof opts[0]);
    const kb__cmdline cl = {"serve", SERVE_HELP, "h", opts};
    optind = 1;
    for (int c; (c = kb__getopt(argc, argv, &cl)) != -1;) {
        if (c == 'U')
            sv->socket_path = optarg;
        else if (c == 'o')
            sv->oracles_dir = optarg;
        else if (c == 'T')
            sv->state_dir = optarg;
        else if (c == 'A')
            sv->allow_seed = 1;
        else if (c == 'O')
            sv->allow_oracles = 1;
        else if (c == 'h')
            return fputs(SERVE_HELP, stdout), *done = 1, 0;
        else
            return KB__EXIT_USAGE;
    }
    if (!sv->socket_path || optind != argc) {
        fputs("kbench serve: --socket PATH is required, and nothing else\n", stderr);
        return kb__usage("serve", SERVE_HELP);
    }
    char serr[256];
    if (!sv->state_dir && kb__state_dir(sv->state_buf, sizeof sv->state_buf, 0, serr, sizeof serr))
        snprintf(sv->state_buf, sizeof sv->state_buf, "%s", KB__STATE_DIR_DEFAULT);
    if (!sv->state_dir) sv->state_dir = sv->state_buf;
    return 0;
}

/* The socket, the wake pipe, the signals and the trial thread; 0, or an
 * exit code with what is already open closed again. */
static int serve_start(kb__server *sv, pthread_t *th)
{
    char err[1024];
    for (int i = 0; i < KB__MAX_CLIENTS; i++) sv->clients[i].fd = -1;
    sv->lfd = make_listener(sv->socket_path, err, sizeof err);
    if (sv->lfd < 0) {
        fprintf(stderr, "kbench serve: %s\n", err);
        return KB__EXIT_USAGE;
    }
    if (pipe2(sv->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        fprintf(stderr, "kbench serve: pipe: %s\n", strerror(errno));
        close(sv->lfd);
        unlink(sv->socket_path);
        return KB__EXIT_SOFTWARE;
    }
    pthread_mutex_init(&sv->mu, NULL);
    pthread_cond_init(&sv->cv, NULL);
    sv->started = now_s();
    g_wake_fd = sv->wake[1];
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART; /* poll still returns EINTR; the pipe wakes it anyway */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* The trial thread starts every worker: it must outlive them all, since
     * they die with the thread that forked them (PR_SET_PDEATHSIG). */
    if (pthread_create(th, NULL, trial_thread, sv) != 0) {
        fprintf(stderr, "kbench serve: cannot start the trial thread\n");
        close(sv->lfd);
        unlink(sv->socket_path);
        return KB__EXIT_SOFTWARE;
    }
    fprintf(stderr, "kbench serve: listening on %s (pid %d)\n", sv->socket_path, (int)getpid());
    return 0;
}

/* Stop taking work: queued trials are answered now, not run, and the
 * socket goes. */
static void serve_stop_taking(kb__server *sv)
{
    pthread_mutex_lock(&sv->mu);
    for (kb__job *j = sv->head; j;) {
        kb__job *next = j->next;
        kb__client *c = client_by_id(sv, j->client);
        if (c) {
            c->pending--;
            client_send_doc(
                c, error_doc(j->req, jstr(j->req, "op"), "the server is shutting down", -1));
        }
        json_decref(j->req);
        free(j);
        j = next;
    }
    sv->head = sv->tail = NULL;
    sv->n_queued = 0;
    pthread_cond_broadcast(&sv->cv);
    pthread_mutex_unlock(&sv->mu);
    close(sv->lfd);
    sv->lfd = -1;
    unlink(sv->socket_path);
}

/* Whether a stopping server is done: no trial running, no answer unsent. */
static int serve_drained(kb__server *sv)
{
    pthread_mutex_lock(&sv->mu);
    int busy = sv->running != NULL || sv->done != NULL;
    pthread_mutex_unlock(&sv->mu);
    int unsent = 0;
    for (int i = 0; i < KB__MAX_CLIENTS; i++)
        unsent |= sv->clients[i].fd >= 0 && sv->clients[i].out_len > sv->clients[i].out_off;
    return !busy && !unsent;
}

/* One poll over the wake pipe, the listener and every client, and what
 * came in. -1 when poll failed. */
static int serve_poll(kb__server *sv, int stopping)
{
    struct pollfd pfd[KB__MAX_CLIENTS + 2];
    kb__client *who[KB__MAX_CLIENTS + 2];
    int n = 0;
    pfd[n] = (struct pollfd){sv->wake[0], POLLIN, 0};
    who[n++] = NULL;
    if (sv->lfd >= 0) {
        pfd[n] = (struct pollfd){sv->lfd, POLLIN, 0};
        who[n++] = NULL;
    }
    for (int i = 0; i < KB__MAX_CLIENTS; i++) {
        kb__client *c = &sv->clients[i];
        if (c->fd < 0) continue;
        short ev = (c->eof || c->closing ? 0 : POLLIN) | (c->out_len > c->out_off ? POLLOUT : 0);
        pfd[n] = (struct pollfd){c->fd, ev, 0};
        who[n++] = c;
    }
    if (poll(pfd, (nfds_t)n, stopping ? 100 : -1) < 0 && errno != EINTR) return -1;
    for (int i = 0; i < n; i++) {
        if (!pfd[i].revents) continue;
        if (pfd[i].fd == sv->wake[0]) {
            char b[64];
            while (read(sv->wake[0], b, sizeof b) > 0) {
            }
        } else if (pfd[i].fd == sv->lfd) {
            accept_clients(sv);
        } else if (who[i] && who[i]->fd == pfd[i].fd) {
            kb__client *c = who[i];
            if (pfd[i].revents & (POLLERR | POLLNVAL)) {
                client_close(sv, c);
                continue;
            }
            if (pfd[i].revents & POLLIN) read_client(sv, c);
            if (c->fd >= 0 && (pfd[i].revents & POLLHUP) && !(pfd[i].revents & POLLIN))
                client_close(sv, c); /* hung up: its answers have nowhere to go */
        }
    }
    return 0;
}

/* Answers what the trial thread finished, and flushes or closes clients. */
static void serve_answer(kb__server *sv)
{
    deliver_done(sv);
    for (int i = 0; i < KB__MAX_CLIENTS; i++) {
        kb__client *c = &sv->clients[i];
        if (c->fd < 0) continue;
        if (c->out_len > c->out_off)
            flush_client(sv, c);
        else if (c->closing || (c->eof && !c->pending))
            client_close(sv, c);
    }
}

/* After the loop: the trial thread joined, every client and fd closed. */
static void serve_end(kb__server *sv, pthread_t th)
{
    pthread_mutex_lock(&sv->mu);
    sv->stop = 1;
    pthread_cond_broadcast(&sv->cv);
    pthread_mutex_unlock(&sv->mu);
    pthread_join(th, NULL);
    for (int i = 0; i < KB__MAX_CLIENTS; i++)
        if (sv->clients[i].fd >= 0) client_close(sv, &sv->clients[i]);
    if (sv->lfd >= 0) {
        close(sv->lfd);
        unlink(sv->socket_path);
    }
    fprintf(stderr,
            "kbench serve: stopped after %llu trials (warm contexts built %llu, reused %llu)\n",
            (unsigned long long)sv->trials, (unsigned long long)sv->cache.builds,
            (unsigned long long)sv->cache.hits);
    kb__ctx_cache_free(&sv->cache);
    g_wake_fd = -1;
    close(sv->wake[0]);
    close(sv->wake[1]);
}

int kb__cli_serve(int argc, char **argv)
{
    kb__server *sv = calloc(1, sizeof *sv);
    if (!sv) return KB__EXIT_SOFTWARE;
    pthread_t th;
    int done = 0, rc = serve_args(argc, argv, sv, &done);
    if (!rc && !done) rc = serve_start(sv, &th);
    if (rc || done) {
        free(sv);
        return rc;
    }
    for (int stopping = 0;;) {
        if (g_signal && !stopping) {
            fprintf(stderr, "kbench serve: %s, stopping after the running trial\n",
                    g_signal == SIGINT ? "interrupted" : "terminated");
            pthread_mutex_lock(&sv->mu);
            sv->stop = 1;
            pthread_mutex_unlock(&sv->mu);
        }
        if (sv->stop && !stopping) {
            stopping = 1;
            serve_stop_taking(sv);
        }
        if (stopping && serve_drained(sv)) break;
        if (serve_poll(sv, stopping) != 0) break;
        serve_answer(sv);
    }
    serve_end(sv, th);
    free(sv);
    return 0;
}

/* ---- list ----------------------------------------------------------- */
static void list_one(const kb__oracle_seen *o, void *targets)
{
    json_t *t = json_object();
    json_object_set_new(t, "oracle", json_string(o->path));
    if (!o->lib) {
        json_object_set_new(t, "target", json_string(o->name));
        json_object_set_new(t, "error", json_string(o->err));
        json_array_append_new(targets, t);
        return;
    }
    const kb_target *tg = o->lib->target;
    json_object_set_new(t, "oracle_digest", json_string(o->digest_hex));
    json_object_set_new(t, "target", json_string(tg->name));
    json_object_set_new(t, "description", json_string(tg->description ? tg->description : ""));
    json_object_set_new(t, "upstream", json_string(tg->upstream ? tg->upstream : ""));
    json_t *cases = json_array();
    for (uint32_t c = 0; c < tg->n_cases; c++) {
        json_t *cj = json_object();
        json_object_set_new(cj, "name", json_string(tg->cases[c].name));
        json_object_set_new(cj, "quick", json_boolean(tg->cases[c].flags & KB_CASE_QUICK));
        json_array_append_new(cases, cj);
    }
    json_object_set_new(t, "cases", cases);
    if (o->pin_dir) {
        json_object_set_new(t, "pin",
                            json_string(o->pin == 0  ? "ok"
                                        : o->pin > 0 ? "mismatch"
                                                     : "unknown"));
        if (o->pin) json_object_set_new(t, "pin_message", json_string(o->pin_msg));
    }
    json_array_append_new(targets, t);
}

static json_t *list_doc(const kb__server *sv)
{
    json_t *d = json_object(), *targets = json_array();
    json_object_set_new(d, "op", json_string("list"));
    kb__oracle_roots roots;
    kb__oracle_roots_get(sv->oracles_dir, &roots);
    kb__oracles_each(&roots, list_one, targets);
    json_object_set_new(d, "targets", targets);
    return d;
}

/* ---- the client ------------------------------------------------------ */
/* An absolute form of a path the server will open; a file that does not
 * exist yet (a ledger) keeps its name under the resolved directory. */
static json_t *abs_path(const char *p)
{
    char out[PATH_MAX], cwd[PATH_MAX];
    if (realpath(p, out)) return json_string(out);
    if (p[0] == '/' || !getcwd(cwd, sizeof cwd)) return json_string(p);
    char joined[PATH_MAX * 2];
    snprintf(joined, sizeof joined, "%s/%s", cwd, p);
    return json_string(joined);
}

/* Connects to the server; the fd, or -1 with the reason on stderr and *code
 * the exit code. */
static int remote_connect(const char *socket_path, int *code)
{
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (strlen(socket_path) >= sizeof sa.sun_path) {
        fprintf(stderr, "kbench: --server %s: path too long\n", socket_path);
        *code = KB__EXIT_USAGE;
        return -1;
    }
    memcpy(sa.sun_path, socket_path, strlen(socket_path));
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        fprintf(stderr,
                "kbench: cannot reach a kbench serve at %s: %s; start one with `kbench serve "
                "--socket %s`, or drop --server\n",
                socket_path, strerror(errno), socket_path);
        if (fd >= 0) close(fd);
        *code = KB__EXIT_SOFTWARE;
        return -1;
    }
    return fd;
}

/* The request line for q (the protocol at the top of this file), paths
 * made absolute; NULL when it cannot be encoded. */
static char *remote_request(const kb__remote_req *q)
{
    const kb__trial_opts *o = q->o;
    json_t *req = json_object();
    json_object_set_new(req, "op", json_string(o->verify_only ? "verify" : "trial"));
    json_object_set_new(req, "candidate", abs_path(o->candidate));
    if (o->against)
        json_object_set_new(req, "against",
                            !strcmp(o->against, "oracle") || !strcmp(o->against, "best")
                                ? json_string(o->against)
                                : abs_path(o->against));
    json_object_set_new(req, "budget", json_real(o->budget));
    json_object_set_new(req, "min_gain", json_real(o->rule.min_gain * 100));
    json_object_set_new(req, "worst_case", json_real(o->rule.worst_case * 100));
    if (o->cases) json_object_set_new(req, "cases", json_string(o->cases));
    if (o->seed) json_object_set_new(req, "seed", json_integer((json_int_t)o->seed));
    if (o->oracles_dir) json_object_set_new(req, "oracles", abs_path(o->oracles_dir));
    if (q->ledger) json_object_set_new(req, "ledger", abs_path(q->ledger));
    if (q->description) json_object_set_new(req, "description", json_string(q->description));
    /* Only a state directory the client names: otherwise the server's own
     * (its --state, its $KBENCH_STATE_DIR, its ./.kbench) keeps the best. */
    if (q->state_dir) json_object_set_new(req, "state", abs_path(q->state_dir));
    return json_line(req);
}

static int send_all(int fd, const char *line, const char *socket_path)
{
    size_t len = strlen(line), off = 0;
    while (off < len) {
        ssize_t n = send(fd, line + off, len - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            fprintf(stderr, "kbench: lost the server at %s: %s\n", socket_path, strerror(errno));
            return -1;
        }
        off += (size_t)n;
    }
    return 0;
}

/* Prints the server's verdict like a local trial; its exit code. */
static int remote_verdict(const kb__remote_req *q, const json_t *doc)
{
    const json_t *ec = json_object_get(doc, "exit_code");
    kb__result *r = calloc(1, sizeof *r);
    kb__best_info bi;
    char err[512];
    int code = KB__EXIT_SOFTWARE;
    if (!r || kb__result_from_json(doc, r, &bi, err, sizeof err) != 0) {
        fprintf(stderr, "kbench: the server's verdict is unreadable: %s\n",
                r ? err : "out of memory");
    } else {
        if (q->json == 2) {
            kb__result_print_md(r, stdout);
        } else if (q->json) {
            kb__result_print_json_ext(r, &bi, stdout);
        } else {
            if (!q->quiet && isatty(1) && r->n_cases) kb__result_print_table(r, stdout);
            kb__result_print_block(r, stdout);
            kb__best_print(&bi, stdout);
        }
        fflush(stdout);
        const char *le = jstr(doc, "ledger_error");
        if (le) fprintf(stderr, "kbench: %s\n", le);
        code = json_is_integer(ec) ? (int)json_integer_value(ec) : KB__EXIT_SOFTWARE;
    }
    free(r);
    return code;
}

/* One answer line: 1 when it was the last (a verdict or an error, *code
 * set), 0 for a queue position, -1 when it is not JSON. */
static int remote_answer(const kb__remote_req *q, const char *line, size_t len, int *code)
{
    json_error_t je;
    json_t *doc = json_loadb(line, len, 0, &je);
    if (!doc) {
        fprintf(stderr, "kbench: the server sent something that is not JSON: %s\n", je.text);
        return -1;
    }
    const json_t *ec = json_object_get(doc, "exit_code");
    const char *e = jstr(doc, "error");
    int last = 1;
    if (json_is_true(json_object_get(doc, "queued"))) {
        json_int_t pos = json_integer_value(json_object_get(doc, "position"));
        if (pos > 0 && isatty(2))
            fprintf(stderr, "kbench: queued behind %lld trial(s)\n", (long long)pos);
        last = 0;
    } else if (e) {
        fprintf(stderr, "kbench: %s\n", e);
        *code = json_is_integer(ec) ? (int)json_integer_value(ec) : KB__EXIT_SOFTWARE;
    } else {
        *code = remote_verdict(q, doc);
    }
    json_decref(doc);
    return last;
}

/* Answers: any number of {"queued": ...}, then the verdict or an error. */
static int remote_answers(const kb__remote_req *q, int fd)
{
    size_t cap = 1 << 16, have = 0;
    char *buf = malloc(cap);
    int code = KB__EXIT_SOFTWARE;
    for (int done = 0; buf && !done;) {
        char *nl = memchr(buf, '\n', have);
        if (!nl) {
            if (have == cap) {
                if (cap >= KB__OUT_MAX) break;
                char *nb = realloc(buf, cap * 2);
                if (!nb) break;
                buf = nb;
                cap *= 2;
            }
            ssize_t n = recv(fd, buf + have, cap - have, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                fprintf(stderr,
                        "kbench: the server at %s closed the connection without a verdict\n",
                        q->socket_path);
                break;
            }
            have += (size_t)n;
            continue;
        }
        size_t ll = (size_t)(nl - buf);
        int last = remote_answer(q, buf, ll, &code);
        memmove(buf, nl + 1, have - ll - 1);
        have -= ll + 1;
        if (last != 0) done = 1;
    }
    free(buf);
    return code;
}

int kb__trial_remote(const kb__remote_req *q)
{
    int code = KB__EXIT_SOFTWARE, fd = remote_connect(q->socket_path, &code);
    if (fd < 0) return code;
    char *line = remote_request(q);
    if (!line) {
        fprintf(stderr, "kbench: cannot encode the request (a path that is not UTF-8?)\n");
        close(fd);
        return KB__EXIT_USAGE;
    }
    int sent = send_all(fd, line, q->socket_path);
    free(line);
    if (sent == 0) code = remote_answers(q, fd);
    close(fd);
    return code;
}
