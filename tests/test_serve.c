/*
 * test_serve.c -- `kbench serve` end to end, and the JSON round trip its
 * client relies on. The socket is owner-only; malformed and oversized
 * requests get an error and the server goes on; two clients at once are
 * queued one behind the other and each gets its own verdict; a client that
 * disconnects mid-trial hurts nobody; crashing, broken and wrong candidates
 * are verdicts; `kbench trial --server` prints what a local trial prints and
 * exits the same; `--against best` uses the server's --state unless the
 * client names its own; a shutdown request stops it and removes the socket.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <jansson.h>
#include <math.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "kb_run.h"
#include "kb_bg.h"
#include "cli.h"
#include "report.h"
#include "session.h"

static char g_dir[256], g_sock[512], g_err[512], g_state[512];
static kb_bg g_bg;
static int g_up;

static int connect_sock(void)
{
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (strlen(g_sock) >= sizeof sa.sun_path) return -1;
    memcpy(sa.sun_path, g_sock, strlen(g_sock));
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        if (fd >= 0) close(fd);
        return -1;
    }
    return fd;
}

static void send_str(int fd, const char *s)
{
    size_t n = strlen(s), off = 0;
    while (off < n) {
        ssize_t k = send(fd, s + off, n - off, MSG_NOSIGNAL);
        assert_true(k > 0);
        off += (size_t)k;
    }
}

/* One answer line as JSON, within timeout_ms; NULL on timeout or EOF. */
typedef struct conn {
    int fd;
    char buf[1 << 20];
    size_t len;
} conn;

static json_t *recv_doc(conn *c, int timeout_ms)
{
    const uint64_t end = kb_bg_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        char *nl = memchr(c->buf, '\n', c->len);
        if (nl) {
            size_t n = (size_t)(nl - c->buf);
            json_error_t je;
            json_t *d = json_loadb(c->buf, n, 0, &je);
            memmove(c->buf, nl + 1, c->len - n - 1);
            c->len -= n + 1;
            if (!d) print_error("server sent non-JSON: %s\n", je.text);
            return d;
        }
        uint64_t now = kb_bg_now_ms();
        if (now >= end) return NULL;
        struct pollfd p = {c->fd, POLLIN, 0};
        if (poll(&p, 1, (int)(end - now)) <= 0) continue;
        ssize_t r = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
        if (r <= 0) return NULL;
        c->len += (size_t)r;
    }
}

static conn *open_conn(void)
{
    conn *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->fd = connect_sock();
    assert_true(c->fd >= 0);
    return c;
}

static void close_conn(conn *c)
{
    close(c->fd);
    free(c);
}

static const char *kbs(json_t *doc, const char *key)
{
    const char *s = json_string_value(json_object_get(json_object_get(doc, "kbench"), key));
    return s ? s : "";
}

static void trial_req(conn *c, const char *cand, const char *budget, const char *id)
{
    char req[2048];
    snprintf(req, sizeof req,
             "{\"op\":\"trial\",\"candidate\":\"%s\",\"budget\":%s,\"id\":\"%s\"}\n", cand, budget,
             id);
    send_str(c->fd, req);
}

/* The verdict after any number of queued answers. */
static json_t *verdict(conn *c, int *position)
{
    for (;;) {
        json_t *d = recv_doc(c, 60000);
        if (!d) return NULL;
        if (json_is_true(json_object_get(d, "queued"))) {
            if (position) *position = (int)json_integer_value(json_object_get(d, "position"));
            json_decref(d);
            continue;
        }
        return d;
    }
}

static void status_ok(void)
{
    conn *c = open_conn();
    send_str(c->fd, "{\"op\":\"status\"}\n");
    json_t *d = recv_doc(c, 10000);
    assert_non_null(d);
    assert_string_equal(json_string_value(json_object_get(d, "op")), "status");
    json_decref(d);
    close_conn(c);
}

/* Polls `status` until the running job's description contains `what`. */
static void wait_running(const char *what)
{
    const uint64_t end = kb_bg_now_ms() + 60000;
    for (;;) {
        conn *c = open_conn();
        send_str(c->fd, "{\"op\":\"status\"}\n");
        json_t *d = recv_doc(c, 10000);
        close_conn(c);
        assert_non_null(d);
        const char *run = json_string_value(json_object_get(d, "running"));
        const int found = run && strstr(run, what);
        json_decref(d);
        if (found) return;
        if (kb_bg_now_ms() >= end) fail_msg("no running job matched \"%s\" within 60 s", what);
        usleep(5000);
    }
}

static int setup(void **s)
{
    (void)s;
    if (access(kb_path("plugins/posting-intersect/portable.so"), R_OK)) return 0;
    snprintf(g_dir, sizeof g_dir, "/tmp/kb_test_serve.XXXXXX");
    if (!mkdtemp(g_dir)) return -1;
    snprintf(g_sock, sizeof g_sock, "%s/kb.sock", g_dir);
    snprintf(g_err, sizeof g_err, "%s/serve.err", g_dir);
    snprintf(g_state, sizeof g_state, "%s/server-state", g_dir);
    char *const argv[] = {"kbench", "serve", "--socket", g_sock, "--state", g_state, NULL};
    kb_bg_start(&g_bg, argv, g_err);
    /* It says so once the socket is listening. */
    g_up = kb_bg_wait_file(g_err, "kbench serve: listening on", 60000) && access(g_sock, F_OK) == 0;
    if (!g_up) print_error("kbench serve did not start within 60 s\n");
    return g_up ? 0 : -1;
}

static int teardown(void **s)
{
    (void)s;
    if (g_up && g_bg.pid > 0) kb_bg_stop(&g_bg, SIGKILL, 2000);
    if (g_dir[0]) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
        if (system(cmd) != 0) return -1;
    }
    return 0;
}

static void need_up(void)
{
    if (!g_up) {
        print_message("posting-intersect candidates not built here; skipping\n");
        skip();
    }
}

static void test_socket_is_owner_only(void **s)
{
    (void)s;
    need_up();
    struct stat st;
    assert_int_equal(lstat(g_sock, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    /* a second server on the same socket refuses to start */
    kb_run r;
    KB_RUN(&r, "serve", "--socket", g_sock);
    assert_int_equal(r.code, 64);
    assert_non_null(strstr(r.err, "another kbench serve"));
}

static void test_malformed_and_oversized(void **s)
{
    (void)s;
    need_up();
    conn *c = open_conn();
    send_str(c->fd, "{\"op\": \"trial\", \"candidate\": \n");
    json_t *d = recv_doc(c, 10000);
    assert_non_null(d);
    assert_non_null(strstr(json_string_value(json_object_get(d, "error")), "malformed JSON"));
    json_decref(d);
    send_str(c->fd, "[1, 2, 3]\n{\"op\":\"frobnicate\"}\n{\"op\":\"trial\"}\n");
    for (int i = 0; i < 3; i++) {
        d = recv_doc(c, 10000);
        assert_non_null(d);
        assert_true(json_is_string(json_object_get(d, "error")));
        json_decref(d);
    }
    /* the same connection still works */
    send_str(c->fd, "{\"op\":\"list\"}\n");
    d = recv_doc(c, 10000);
    assert_non_null(d);
    assert_true(json_array_size(json_object_get(d, "targets")) >= 1);
    json_decref(d);
    /* 70000 bytes without a newline: an error, then the server hangs up */
    static char big[70001];
    memset(big, 'a', sizeof big - 1);
    send(c->fd, big, sizeof big - 1, MSG_NOSIGNAL);
    d = recv_doc(c, 10000);
    assert_non_null(d);
    assert_non_null(strstr(json_string_value(json_object_get(d, "error")), "larger than 65536"));
    json_decref(d);
    assert_null(recv_doc(c, 5000));
    close_conn(c);
    status_ok();
}

/* The documented exit code of a verdict, by its name. */
static int code_of(const char *status)
{
    static const struct {
        const char *name;
        int code;
    } map[] = {{"keep", 0},    {"discard", 1},  {"incorrect", 2},    {"crash", 3},
               {"timeout", 3}, {"rejected", 3}, {"inconclusive", 4}, {"correct", 0}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(map[i].name, status)) return map[i].code;
    return -1;
}

static void test_two_clients_queue(void **s)
{
    (void)s;
    need_up();
    conn *a = open_conn(), *b = open_conn();
    /* b is sent once a is queued (its answer says so), while a's trial
     * builds its inputs and runs for its budget: b waits behind it. */
    trial_req(a, kb_path("plugins/posting-intersect/portable.so"), "1", "a");
    json_t *qa = recv_doc(a, 60000);
    assert_non_null(qa);
    assert_true(json_is_true(json_object_get(qa, "queued")));
    const int pa = (int)json_integer_value(json_object_get(qa, "position"));
    json_decref(qa);
    trial_req(b, kb_path("plugins/posting-intersect/baseline.so"), "0.5", "b");
    int pb = -1;
    json_t *va = verdict(a, NULL), *vb = verdict(b, &pb);
    assert_non_null(va);
    assert_non_null(vb);
    assert_int_equal(pa, 0);
    assert_int_equal(pb, 1); /* behind a's trial */
    assert_string_equal(json_string_value(json_object_get(va, "id")), "a");
    assert_string_equal(json_string_value(json_object_get(vb, "id")), "b");
    assert_string_equal(kbs(va, "candidate_name"), "portable");
    assert_string_equal(kbs(vb, "candidate_name"), "baseline");
    /* exit_code is the verdict's */
    assert_int_equal(json_integer_value(json_object_get(va, "exit_code")),
                     code_of(kbs(va, "status")));
    assert_int_equal(json_integer_value(json_object_get(vb, "exit_code")),
                     code_of(kbs(vb, "status")));
    json_decref(va);
    json_decref(vb);
    close_conn(a);
    close_conn(b);
}

static void test_disconnect_mid_trial(void **s)
{
    (void)s;
    need_up();
    conn *a = open_conn();
    trial_req(a, kb_path("plugins/posting-intersect/portable.so"), "1", "gone");
    json_t *q = recv_doc(a, 10000);
    assert_non_null(q);
    json_decref(q);
    wait_running(kb_path("plugins/posting-intersect/portable.so"));
    close_conn(a);
    status_ok();
    conn *b = open_conn();
    trial_req(b, kb_path("plugins/posting-intersect/baseline.so"), "0.3", "next");
    json_t *v = verdict(b, NULL);
    assert_non_null(v);
    assert_string_equal(json_string_value(json_object_get(v, "id")), "next");
    assert_string_equal(kbs(v, "candidate_name"), "baseline");
    json_decref(v);
    close_conn(b);
}

static void expect_verdict(const char *fixture, const char *status, int code)
{
    char rel[256];
    snprintf(rel, sizeof rel, "tests/fixtures/%s", fixture);
    if (access(kb_path(rel), R_OK)) {
        print_message("%s not built; skipped\n", rel);
        return;
    }
    conn *c = open_conn();
    trial_req(c, kb_path(rel), "0.3", fixture);
    json_t *v = verdict(c, NULL);
    assert_non_null(v);
    if (strcmp(kbs(v, "status"), status))
        print_error("%s: %s (%s)\n", fixture, kbs(v, "status"), kbs(v, "reason"));
    assert_string_equal(kbs(v, "status"), status);
    assert_int_equal(json_integer_value(json_object_get(v, "exit_code")), code);
    json_decref(v);
    close_conn(c);
}

static void test_bad_candidates_are_verdicts(void **s)
{
    (void)s;
    need_up();
    expect_verdict("fx_segv_in_run.so", "crash", 3);
    expect_verdict("fx_abort_in_run.so", "crash", 3);
    expect_verdict("fx_bad_magic.so", "rejected", 3);
    expect_verdict("fx_wrong_pi.so", "incorrect", 2);
    /* a path that does not exist is a usage error, as on the command line */
    conn *c = open_conn();
    trial_req(c, "/nonexistent/cand.so", "0.3", "missing");
    json_t *v = verdict(c, NULL);
    assert_non_null(v);
    assert_true(json_is_string(json_object_get(v, "error")));
    assert_int_equal(json_integer_value(json_object_get(v, "exit_code")), 64);
    json_decref(v);
    close_conn(c);
    status_ok();
}

static void test_client_matches_local(void **s)
{
    (void)s;
    need_up();
    kb_run r;
    KB_RUN(&r, "trial", "--server", g_sock,
           (char *)kb_path("plugins/posting-intersect/portable.so"), "--budget", "0.5");
    int want = code_of(kb_field(&r, "status"));
    if (r.code != want) print_error("%s\n%s\n", r.out, r.err);
    assert_int_equal(r.code, want);
    assert_string_equal(kb_field(&r, "target"), "posting-intersect");
    if (!kb_emulated_timing_verdict(&r)) {
        if (atoi(kb_field(&r, "cases")) != 4) print_error("%s\n", r.out);
        assert_int_equal(atoi(kb_field(&r, "cases")), 4);
    }
    assert_true(strlen(kb_field(&r, "candidate_digest")) == 16);
    /* crash: exit 3, as locally */
    if (access(kb_path("tests/fixtures/fx_segv_in_run.so"), R_OK) == 0) {
        KB_RUN(&r, "trial", "--server", g_sock,
               (char *)kb_path("tests/fixtures/fx_segv_in_run.so"));
        assert_int_equal(r.code, 3);
        assert_string_equal(kb_field(&r, "status"), "crash");
    }
    /* --json prints the --json document */
    KB_RUN(&r, "verify", "--server", g_sock,
           (char *)kb_path("plugins/posting-intersect/portable.so"), "--json");
    if (r.code != 0) print_error("verify --server --json: exit %d\n%s\n%s\n", r.code, r.out, r.err);
    assert_int_equal(r.code, 0);
    json_error_t je;
    json_t *d = json_loads(r.out, 0, &je);
    assert_non_null(d);
    assert_string_equal(kbs(d, "status"), "correct");
    json_decref(d);
    /* no server there: a clear error, not a hang */
    KB_RUN(&r, "trial", "--server", "/nonexistent/kb.sock",
           (char *)kb_path("plugins/posting-intersect/portable.so"));
    assert_int_equal(r.code, 70);
    assert_non_null(strstr(r.err, "kbench serve"));
}

/* Plants <state>/posting-intersect/best.so, a copy of `so`, with the
 * best.tsv a promotion writes; its digest in digest. */
static void plant_best(const char *state, const char *so, char digest[17])
{
    char dir[700], cmd[2400], tsv[800];
    snprintf(dir, sizeof dir, "%s/posting-intersect", state);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp '%s' '%s/best.so' && : >'%s/.lock'", dir, so,
             dir, dir);
    assert_int_equal(system(cmd), 0);
    FILE *f = fopen(so, "rb");
    assert_non_null(f);
    static char buf[64 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    kb__hex64(kb__hash(buf, n, 0), digest);
    snprintf(tsv, sizeof tsv, "%s/best.tsv", dir);
    f = fopen(tsv, "w");
    assert_non_null(f);
    fprintf(f,
            "target\tposting-intersect\ndigest\t%s\noracle_digest\t0000000000000000\n"
            "oracle_ratio\t1.0\nsource\t%s\nledger\tn/a\n",
            digest, so);
    assert_int_equal(fclose(f), 0);
}

/* `kbench serve --state DIR` keeps the best there: a client that names no
 * state directory is timed against the best in the server's, and one that
 * says --state gets its own. */
static void test_state_dir_is_the_servers(void **s)
{
    (void)s;
    need_up();
    char want[17], cstate[600];
    plant_best(g_state, kb_path("plugins/posting-intersect/baseline.so"), want);
    kb_run r;
    KB_RUN(&r, "trial", "--server", g_sock,
           (char *)kb_path("plugins/posting-intersect/portable.so"), "--against", "best",
           "--budget", "0.3");
    if (strcmp(kb_field(&r, "best_digest"), want)) print_error("%s\n%s\n", r.out, r.err);
    assert_string_equal(kb_field(&r, "best_digest"), want);
    /* the status says which directory that is */
    conn *c = open_conn();
    send_str(c->fd, "{\"op\":\"status\"}\n");
    json_t *d = recv_doc(c, 10000);
    assert_non_null(d);
    assert_string_equal(json_string_value(json_object_get(d, "state")), g_state);
    json_decref(d);
    close_conn(c);
    /* a client's own --state: no best there yet, so the oracle is the baseline */
    snprintf(cstate, sizeof cstate, "%s/client-state", g_dir);
    KB_RUN(&r, "trial", "--server", g_sock,
           (char *)kb_path("plugins/posting-intersect/portable.so"), "--against", "best",
           "--budget", "0.3", "--state", cstate);
    if (strcmp(kb_field(&r, "best_digest"), "n/a")) print_error("%s\n%s\n", r.out, r.err);
    assert_string_equal(kb_field(&r, "best_digest"), "n/a");
    assert_string_equal(kb_field(&r, "against"), "oracle");
}

/* The client rebuilds the result from the server's JSON and prints it:
 * every field of the block must survive the trip. */
static void test_json_round_trip(void **s)
{
    (void)s;
    kb__result *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
    assert_non_null(a);
    assert_non_null(b);
    a->status = KB__ST_DISCARD;
    snprintf(a->reason, sizeof a->reason, "geomean 1.0100 is not below 0.99");
    snprintf(a->target, sizeof a->target, "posting-intersect");
    snprintf(a->candidate, sizeof a->candidate, "/tmp/x \"quoted\" path.so");
    snprintf(a->cand_name, sizeof a->cand_name, "portable");
    snprintf(a->cand_digest, sizeof a->cand_digest, "0123456789abcdef");
    snprintf(a->against, sizeof a->against, "oracle");
    snprintf(a->against_digest, sizeof a->against_digest, "fedcba9876543210");
    snprintf(a->oracle_digest, sizeof a->oracle_digest, "fedcba9876543210");
    snprintf(a->description, sizeof a->description, "tabs\tand\nnewlines");
    snprintf(a->worst_case, sizeof a->worst_case, "k=2,n=4096,ratio=16/sparse");
    a->seed = 0x1234567890abcdefull;
    a->geomean = (kb__ci){1.01, 0.98, 1.04};
    a->worst = (kb__ci){1.2, 1.1, 1.3};
    a->n_cases = 2;
    for (int i = 0; i < 2; i++) {
        snprintf(a->cases[i].name, sizeof a->cases[i].name, "case%d", i);
        a->cases[i].samples = 40 + (uint32_t)i;
        a->cases[i].calls = 17;
        a->cases[i].cand_ns = 1234.5 + i;
        a->cases[i].base_ns = 1200.25;
        a->cases[i].ratio = (kb__ci){1.01, 0.99, 1.03};
        a->cases[i].bytes_per_call = 65536;
    }
    a->trial_seconds = 1.234;
    a->peak_rss_kb = 11000;
    a->prepare_ms = 0.25;
    snprintf(a->inputs, sizeof a->inputs, "cold (8 replicas, 64 MiB working set > LLC 32 MiB)");
    json_t *doc = kb__result_to_json(a, NULL);
    assert_non_null(doc);
    char err[256];
    assert_int_equal(kb__result_from_json(doc, b, NULL, err, sizeof err), 0);
    json_decref(doc);
    char *ba = NULL, *bb = NULL, *ja = NULL, *jb = NULL;
    size_t la, lb, lja, ljb;
    FILE *fa = open_memstream(&ba, &la), *fb = open_memstream(&bb, &lb);
    kb__result_print_block(a, fa);
    kb__result_print_table(a, fa);
    kb__result_print_block(b, fb);
    kb__result_print_table(b, fb);
    fclose(fa);
    fclose(fb);
    assert_string_equal(ba, bb);
    assert_string_equal(b->inputs, a->inputs);
    /* and the JSON a client prints is the server's, date aside */
    fa = open_memstream(&ja, &lja);
    fb = open_memstream(&jb, &ljb);
    kb__result_print_json(a, fa);
    kb__result_print_json(b, fb);
    fclose(fa);
    fclose(fb);
    char *da = strstr(ja, "\"date\""), *db = strstr(jb, "\"date\"");
    assert_non_null(da);
    assert_non_null(db);
    assert_string_equal(strchr(da, '\n'), strchr(db, '\n'));
    free(ba);
    free(bb);
    free(ja);
    free(jb);
    free(a);
    free(b);
}

static void test_shutdown(void **s)
{
    (void)s;
    need_up();
    conn *c = open_conn();
    send_str(c->fd, "{\"op\":\"shutdown\"}\n");
    json_t *d = recv_doc(c, 10000);
    assert_non_null(d);
    assert_true(json_is_true(json_object_get(d, "ok")));
    json_decref(d);
    close_conn(c);
    assert_int_equal(kb_bg_stop(&g_bg, 0, 20000), 0);
    assert_int_not_equal(access(g_sock, F_OK), 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_round_trip),
        cmocka_unit_test(test_socket_is_owner_only),
        cmocka_unit_test(test_malformed_and_oversized),
        cmocka_unit_test(test_two_clients_queue),
        cmocka_unit_test(test_disconnect_mid_trial),
        cmocka_unit_test(test_bad_candidates_are_verdicts),
        cmocka_unit_test(test_client_matches_local),
        cmocka_unit_test(test_state_dir_is_the_servers),
        cmocka_unit_test(test_shutdown),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
