/*
 * test_hostile_files.c -- candidates that attack the host through the file
 * itself rather than through the code in it: a FIFO, a device, a socket, a
 * directory or a symlink to one of them; a file too big to copy; a name
 * that forges Markdown, block or ledger lines; code that lives in another
 * library than the one hashed (RUNPATH, RPATH, a DT_NEEDED with a slash);
 * and a client that picks its own inputs or oracle. Each ends in a verdict
 * that is not keep, in bounded time, never a hang or exit 70.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <jansson.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

#include "kb.h"
#include "kb_run.h"
#include "kb_bg.h"
#include "ledger.h"
#include "session.h"
#include "report.h"

#define FX(name)  ((char *)kb_path("tests/fixtures/" name ".so"))
#define PI_PLUGIN ((char *)kb_path("plugins/posting-intersect/portable.so"))

static kb_run R; /* 80 KiB: not on the stack */
static char g_dir[256];

#define assert_contains(s, sub)                                                              \
    do {                                                                                     \
        if (!strstr((s), (sub))) {                                                           \
            print_error("expected \"%s\" in \"%s\"\nstdout:\n%s\nstderr:\n%s\n", (sub), (s), \
                        R.out, R.err);                                                       \
            fail();                                                                          \
        }                                                                                    \
    } while (0)

/* A hang is a failure of its own: SIGALRM ends this test program, and the
 * kbench it waits on is killed by its parent-death signal or by hand. */
static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "test_hostile_files: kbench hung (over the alarm)\n";
    if (write(2, msg, sizeof msg - 1) < 0) {
    }
    _exit(99);
}

static void expect(const char *status, int code, const char *sub)
{
    if (strcmp(kb_field(&R, "status"), status) != 0 || R.code != code)
        print_error("expected %s (%d), got '%s' (%d)\nstdout:\n%s\nstderr:\n%s\n", status, code,
                    kb_field(&R, "status"), R.code, R.out, R.err);
    assert_string_equal(kb_field(&R, "status"), status);
    assert_int_equal(R.code, code);
    if (sub) assert_contains(kb_field(&R, "reason"), sub);
}

static void path_in(char *out, size_t len, const char *name)
{
    snprintf(out, len, "%s/%s", g_dir, name);
}

static int setup(void **s)
{
    (void)s;
    signal(SIGALRM, on_alarm);
    snprintf(g_dir, sizeof g_dir, "/tmp/kb_test_files.XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **s)
{
    (void)s;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- 5: files that are not regular files --------------------------------- */

/* Every kind of non-regular file, directly and through a symlink, is
 * rejected by trial, verify and info, each within the alarm; the reason
 * names what it is. A FIFO with no writer would block open() forever. */
static void test_special_files_are_rejected(void **state)
{
    (void)state;
    char fifo[512], dir[512], sock[512], l_fifo[512], l_zero[512], l_dir[512];
    path_in(fifo, sizeof fifo, "fifo.so");
    path_in(dir, sizeof dir, "dir.so");
    path_in(sock, sizeof sock, "sock.so");
    path_in(l_fifo, sizeof l_fifo, "link_fifo.so");
    path_in(l_zero, sizeof l_zero, "link_zero.so");
    path_in(l_dir, sizeof l_dir, "link_dir.so");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_int_equal(mkdir(dir, 0700), 0);
    int sfd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    assert_true(strlen(sock) < sizeof sa.sun_path);
    memcpy(sa.sun_path, sock, strlen(sock));
    assert_int_equal(bind(sfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(symlink(fifo, l_fifo), 0);
    assert_int_equal(symlink("/dev/zero", l_zero), 0);
    assert_int_equal(symlink(dir, l_dir), 0);
    const struct {
        char *path;
        const char *what;
    } cases[] = {
        {fifo, "a FIFO"},
        {l_fifo, "a FIFO"},
        {(char *)"/dev/zero", "a character device"},
        {l_zero, "a character device"},
        {dir, "a directory"},
        {l_dir, "a directory"},
        {sock, "a socket"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        alarm(60);
        KB_RUN(&R, "trial", cases[i].path, "--budget", "0.2");
        expect("rejected", 3, cases[i].what);
        assert_contains(kb_field(&R, "reason"), "not a regular file");
        KB_RUN(&R, "verify", cases[i].path);
        expect("rejected", 3, cases[i].what);
        KB_RUN(&R, "info", cases[i].path);
        assert_int_equal(R.code, 3);
        assert_contains(R.out, cases[i].what);
        alarm(0);
    }
    close(sfd);
}

/* A file under /proc says it is empty (its size is 0) and is never read to
 * its end: /proc/self/status, and one that never ends for a reader that
 * does not stop (/proc/self/pagemap is sized but unreadable at offset 0). */
static void test_proc_files_are_rejected(void **state)
{
    (void)state;
    alarm(60);
    KB_RUN(&R, "trial", "/proc/self/status", "--budget", "0.2");
    expect("rejected", 3, "empty file");
    KB_RUN(&R, "trial", "/proc/self/pagemap", "--budget", "0.2");
    assert_int_equal(R.code, 3);
    assert_string_equal(kb_field(&R, "status"), "rejected");
    alarm(0);
}

/* ---- 8: the size limit ---------------------------------------------------- */

/* A 1 GiB sparse file is refused from its size, before a byte is copied:
 * quickly and without a 1 GiB resident set. */
static void test_oversized_file_is_rejected(void **state)
{
    (void)state;
    char big[512];
    path_in(big, sizeof big, "big.so");
    int fd = open(big, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)1 << 30), 0);
    close(fd);
    alarm(60);
    KB_RUN(&R, "trial", big, "--budget", "0.2");
    expect("rejected", 3, "over kbench's plugin size limit of 256 MiB");
    KB_RUN(&R, "info", big);
    assert_int_equal(R.code, 3);
    assert_contains(R.out, "size limit");
    alarm(0);
    /* one byte over the limit is refused too, one at it is not refused for
     * its size (it is no ELF file, so rejected for that) */
    fd = open(big, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)KB__SNAPSHOT_MAX_BYTES + 1), 0);
    close(fd);
    kb__snapshot snap;
    char err[512];
    assert_int_equal(kb__snapshot_take(big, &snap, err, sizeof err), KB__EFORMAT);
    assert_non_null(strstr(err, "size limit"));
    fd = open(big, O_WRONLY | O_TRUNC);
    assert_int_equal(ftruncate(fd, (off_t)KB__SNAPSHOT_MAX_BYTES), 0);
    close(fd);
    assert_int_equal(kb__snapshot_take(big, &snap, err, sizeof err), 0);
    assert_int_equal(snap.size, KB__SNAPSHOT_MAX_BYTES);
    kb__snapshot_close(&snap);
    unlink(big);
}

/* ---- 7: names that forge output -------------------------------------------- */

static void copy_file(const char *from, const char *to)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", from, to);
    assert_int_equal(system(cmd), 0);
}

/* A candidate file name with newlines, tabs, a fake **keep**, a fake
 * "status: keep" line and an unclosed "<!--": whatever its verdict, the
 * Markdown shows it once and inert, the block has one status line, and the
 * ledger line keeps its columns with the real status in the 7th. */
static void test_hostile_name_forges_nothing(void **state)
{
    (void)state;
    if (access(PI_PLUGIN, R_OK) != 0) skip();
    char name[512], ledger[512];
    snprintf(name, sizeof name, "%s/x\n**keep**\nstatus: keep\n\tkeep\t<!-- |a| `b`.so", g_dir);
    path_in(ledger, sizeof ledger, "results.tsv");
    copy_file(FX("fx_wrong_pi"), name);
    alarm(120);
    KB_RUN(&R, "trial", name, "--budget", "0.2", "--format", "md");
    assert_int_equal(R.code, 2);
    assert_null(strstr(R.out, "**keep**"));
    assert_non_null(strstr(R.out, "**incorrect**"));
    assert_null(strstr(R.out, "\n<"));
    assert_null(strstr(R.out, "\nstatus"));
    KB_RUN(&R, "trial", name, "--budget", "0.2", "--ledger", ledger, "--description", "d\tkeep\n");
    expect("incorrect", 2, NULL);
    assert_null(strstr(R.out, "\nstatus: keep"));
    alarm(0);
    FILE *f = fopen(ledger, "r");
    assert_non_null(f);
    char line[4096];
    assert_non_null(fgets(line, sizeof line, f)); /* the header */
    assert_non_null(fgets(line, sizeof line, f));
    assert_null(fgets(line + 2048, 2048, f)); /* exactly one trial line */
    fclose(f);
    int tabs = 0;
    char *col[KB__LF_N2 + 4] = {line};
    for (char *p = line; *p; p++)
        if (*p == '\t' && tabs < KB__LF_N2 + 3) *p = 0, col[++tabs] = p + 1;
    assert_int_equal(tabs, KB__LF_N2 - 1);
    assert_string_equal(col[6], "incorrect");
}

/* ---- 9: who may choose the inputs or the oracle ------------------------- */

/* A CLI trial on a chosen seed says so in its block and its ledger line,
 * and its keep never makes a best (with no best yet, a keep would). */
static void test_chosen_seed_is_marked_and_never_promoted(void **state)
{
    (void)state;
    if (access(PI_PLUGIN, R_OK) != 0) skip();
    char st[512], ledger[512], so[600];
    path_in(st, sizeof st, "state-seed");
    path_in(ledger, sizeof ledger, "seed.tsv");
    alarm(300);
    KB_RUN(&R, "trial", PI_PLUGIN, "--against", "best", "--state", st, "--seed", "42", "--budget",
           "0.5", "--ledger", ledger, "--description", "[vs oracle; oracle_ratio 0.1; promoted] x");
    alarm(0);
    assert_string_equal(kb_field(&R, "seed_chosen"), "yes");
    assert_string_equal(kb_field(&R, "promoted"), "no");
    if (!strcmp(kb_field(&R, "status"), "keep"))
        assert_contains(kb_field(&R, "best_note"), "seed was chosen");
    snprintf(so, sizeof so, "%s/posting-intersect/best.so", st);
    assert_int_not_equal(access(so, F_OK), 0);
    FILE *f = fopen(ledger, "r");
    assert_non_null(f);
    char line[4096];
    assert_non_null(fgets(line, sizeof line, f));
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    assert_non_null(strstr(line, "[seed chosen] "));
    /* the user's brackets cannot forge the best's tag for `kbench log` */
    assert_null(strstr(line, "[vs oracle; oracle_ratio 0.1; promoted]"));
    assert_non_null(strstr(line, "(vs oracle; oracle_ratio 0.1; promoted) x"));
    KB_RUN(&R, "trial", PI_PLUGIN, "--budget", "0.2");
    assert_string_equal(kb_field(&R, "seed_chosen"), "no");
}

static char g_sock[512];
static kb_bg g_bg;

static int sock_connect(void)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, g_sock, strlen(g_sock));
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends one request line and returns the first answer that is not a
 * queue position (NULL after timeout_ms). */
static json_t *ask(const char *req, int timeout_ms)
{
    int fd = sock_connect();
    assert_true(fd >= 0);
    assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
    static char buf[1 << 20];
    size_t len = 0;
    json_t *doc = NULL;
    const uint64_t end = kb_bg_now_ms() + (uint64_t)timeout_ms;
    while (!doc && kb_bg_now_ms() < end) {
        char *nl = memchr(buf, '\n', len);
        if (nl) {
            json_error_t je;
            doc = json_loadb(buf, (size_t)(nl - buf), 0, &je);
            memmove(buf, nl + 1, len - (size_t)(nl - buf) - 1);
            len -= (size_t)(nl - buf) + 1;
            if (doc && json_is_true(json_object_get(doc, "queued"))) {
                json_decref(doc);
                doc = NULL;
            }
            continue;
        }
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 200) <= 0) continue;
        ssize_t r = read(fd, buf + len, sizeof buf - 1 - len);
        if (r <= 0) break;
        len += (size_t)r;
    }
    close(fd);
    return doc;
}

static void serve_start(char *const extra[])
{
    char err[600];
    path_in(g_sock, sizeof g_sock, "kb.sock");
    path_in(err, sizeof err, "serve.err");
    unlink(g_sock);
    char *argv[8] = {"kbench", "serve", "--socket", g_sock};
    int n = 4;
    for (; extra && *extra && n < 7; extra++) argv[n++] = *extra;
    argv[n] = NULL;
    kb_bg_start(&g_bg, argv, err);
    for (int i = 0; i < 500 && access(g_sock, F_OK) != 0; i++) usleep(10000);
    assert_int_equal(access(g_sock, F_OK), 0);
}

/* A pinned server (the default) answers a request that sets "seed" or
 * "oracles" with an error that says how to allow it, and runs nothing; a
 * FIFO as the candidate is a rejected verdict, after which the server still
 * answers and SIGTERM still stops it. */
static void test_serve_pins_seed_and_oracles(void **state)
{
    (void)state;
    if (access(PI_PLUGIN, R_OK) != 0) skip();
    alarm(300);
    serve_start(NULL);
    char req[2048], fifo[512];
    snprintf(req, sizeof req, "{\"op\":\"trial\",\"candidate\":\"%s\",\"seed\":7,\"budget\":0.2}\n",
             PI_PLUGIN);
    json_t *d = ask(req, 30000);
    assert_non_null(d);
    assert_non_null(strstr(json_string_value(json_object_get(d, "error")), "--allow-client-seed"));
    assert_int_equal(json_integer_value(json_object_get(d, "exit_code")), 64);
    json_decref(d);
    snprintf(req, sizeof req,
             "{\"op\":\"trial\",\"candidate\":\"%s\",\"oracles\":\"%s\",\"budget\":0.2}\n",
             PI_PLUGIN, g_dir);
    d = ask(req, 30000);
    assert_non_null(d);
    assert_non_null(
        strstr(json_string_value(json_object_get(d, "error")), "--allow-client-oracles"));
    json_decref(d);

    path_in(fifo, sizeof fifo, "serve_fifo.so");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    snprintf(req, sizeof req, "{\"op\":\"trial\",\"candidate\":\"%s\",\"budget\":0.2}\n", fifo);
    d = ask(req, 60000);
    assert_non_null(d);
    assert_string_equal(json_string_value(json_object_get(json_object_get(d, "kbench"), "status")),
                        "rejected");
    json_decref(d);
    /* the seed 0 means "a secret one": allowed on a pinned server */
    snprintf(req, sizeof req, "{\"op\":\"trial\",\"candidate\":\"%s\",\"seed\":0,\"budget\":0.2}\n",
             PI_PLUGIN);
    d = ask(req, 120000);
    assert_non_null(d);
    assert_null(json_object_get(d, "error"));
    assert_true(json_is_false(json_object_get(json_object_get(d, "kbench"), "seed_chosen")));
    json_decref(d);
    assert_int_equal(kb_bg_stop(&g_bg, SIGTERM, 30000), 0);
    alarm(0);
}

/* Started with --allow-client-seed, the server runs a client's seed and its
 * verdict says seed_chosen; with --against best it is never promoted. */
static void test_serve_allowed_seed_is_marked(void **state)
{
    (void)state;
    if (access(PI_PLUGIN, R_OK) != 0) skip();
    char st[512], so[600], req[2048];
    path_in(st, sizeof st, "state-serve");
    char *extra[] = {"--allow-client-seed", "--state", st, NULL};
    alarm(300);
    serve_start(extra);
    snprintf(
        req, sizeof req,
        "{\"op\":\"trial\",\"candidate\":\"%s\",\"seed\":7,\"budget\":0.5,\"against\":\"best\"}\n",
        PI_PLUGIN);
    json_t *d = ask(req, 120000);
    assert_non_null(d);
    json_t *kb = json_object_get(d, "kbench");
    assert_true(json_is_true(json_object_get(kb, "seed_chosen")));
    assert_true(json_is_false(json_object_get(json_object_get(kb, "best"), "promoted")) ||
                !json_object_get(json_object_get(kb, "best"), "promoted"));
    json_decref(d);
    snprintf(so, sizeof so, "%s/posting-intersect/best.so", st);
    assert_int_not_equal(access(so, F_OK), 0);
    assert_int_equal(kb_bg_stop(&g_bg, SIGTERM, 30000), 0);
    alarm(0);
}

/* The ledger description: the tag first, the user's brackets defused; what
 * a trial ran against and its oracle_ratio are ledger columns, never
 * description text. */
static void test_describe_tags_cannot_be_forged(void **state)
{
    (void)state;
    kb__best_info bi;
    memset(&bi, 0, sizeof bi);
    char out[256];
    kb__best_describe(&bi, "[vs best 0123; oracle_ratio 0.01; promoted]", out, sizeof out);
    assert_string_equal(out, "(vs best 0123; oracle_ratio 0.01; promoted)");
    bi.seed_chosen = 1;
    kb__best_describe(&bi, "d", out, sizeof out);
    assert_string_equal(out, "[seed chosen] d");
    bi.used = 1;
    bi.oracle_ratio = 0.5;
    kb__best_describe(&bi, "d", out, sizeof out);
    assert_string_equal(out, "[seed chosen] d");
}

/* ---- 6: code outside the hashed file ----------------------------------- */

/* A stub whose kernel is in a library found through a RUNPATH, an RPATH,
 * $ORIGIN, a DT_NEEDED by path or an auxiliary filter is rejected before it
 * loads, with a reason that names the file, the entry and the fix. */
static void test_kernel_in_another_library_is_rejected(void **state)
{
    (void)state;
    const struct {
        const char *fx, *what;
    } cases[] = {
        {"fx_kernel_via_runpath", "has a RUNPATH"},
        {"fx_kernel_via_rpath", "has an RPATH"},
        {"fx_kernel_via_origin", "$ORIGIN"},
        {"fx_kernel_by_path", "needs a library by path"},
        {"fx_kernel_via_auxiliary", "auxiliary filter library (DT_AUXILIARY)"},
    };
    alarm(120);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char fx[256];
        snprintf(fx, sizeof fx, "tests/fixtures/%s.so", cases[i].fx);
        char *path = (char *)kb_path(fx);
        if (access(path, R_OK) != 0) skip();
        KB_RUN(&R, "trial", path, "--budget", "0.2");
        expect("rejected", 3, cases[i].what);
        assert_contains(kb_field(&R, "reason"), cases[i].fx);
        assert_contains(kb_field(&R, "reason"), "link that library statically");
        /* as a baseline too: the digest of what it is timed against */
        KB_RUN(&R, "trial", PI_PLUGIN, "--against", path, "--budget", "0.2");
        expect("rejected", 3, cases[i].what);
    }
    alarm(0);
}

/* A library found only through the caller's LD_LIBRARY_PATH is not found:
 * the loader is asked with an empty environment and the worker gets no
 * LD_* variables, so what is hashed is what the worker would load. */
static void test_ld_library_path_is_not_a_way_in(void **state)
{
    (void)state;
    char *path = (char *)kb_path("tests/fixtures/fx_kernel_via_env.so");
    if (access(path, R_OK) != 0) skip();
    setenv("LD_LIBRARY_PATH", kb_path("tests/fixtures/deps-lib"), 1);
    alarm(120);
    KB_RUN(&R, "trial", path, "--budget", "0.2");
    alarm(0);
    unsetenv("LD_LIBRARY_PATH");
    expect("rejected", 3, "not in the system's library directories");
    assert_contains(kb_field(&R, "reason"), "libfxkernel.so");
}

static uint64_t file_hash(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[64 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    return kb__hash(buf, n, 0);
}

/* The digest names everything that runs: a plugin that needs glibc alone
 * keeps the hash of its file; one that loads libstdc++, BLAS, OpenMP
 * (faiss.so) gets a digest with those libraries' bytes folded in. */
static void test_digest_covers_loaded_libraries(void **state)
{
    (void)state;
    const char *plain = kb_path("plugins/posting-intersect/portable.so");
    const char *faiss = kb_path("plugins/pq-l2/faiss.so");
    kb__snapshot snap;
    char err[512];
    if (access(plain, R_OK) == 0) {
        assert_int_equal(kb__snapshot_take(plain, &snap, err, sizeof err), 0);
        assert_true(snap.digest == file_hash(plain));
        kb__snapshot_close(&snap);
    }
    if (access(faiss, R_OK) != 0) {
        print_message("faiss.so not built here; its half is skipped\n");
        return;
    }
    if (kb__snapshot_take(faiss, &snap, err, sizeof err) != 0)
        fail_msg("faiss.so, an honest plugin, was refused: %s", err);
    assert_true(snap.digest != file_hash(faiss));
    kb__snapshot s2;
    assert_int_equal(kb__snapshot_take(faiss, &s2, err, sizeof err), 0);
    assert_true(s2.digest == snap.digest); /* and it is stable */
    kb__snapshot_close(&s2);
    kb__snapshot_close(&snap);
}

/* kb__elf_deps on the bytes: the sonames of an honest plugin, and an
 * RPATH, a RUNPATH, a path and a garbled string table refused in words. */
static void test_elf_deps_unit(void **state)
{
    (void)state;
    char *path = (char *)kb_path("tests/fixtures/fx_kernel_via_runpath.so");
    if (access(path, R_OK) != 0) skip();
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static unsigned char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    kb__deps d;
    char err[512];
    assert_int_equal(kb__elf_deps(buf, n, "x.so", &d, err, sizeof err), KB__EFORMAT);
    assert_non_null(strstr(err, "x.so: has a RUNPATH"));
    assert_int_equal(kb__elf_deps(buf, 10, "x.so", &d, err, sizeof err), 1);
    assert_int_equal(kb__elf_deps("not an elf file at all, no.....................................",
                                  64, "x.so", &d, err, sizeof err),
                     1);
    f = fopen(PI_PLUGIN, "rb");
    if (!f) return;
    n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    assert_int_equal(kb__elf_deps(buf, n, "p.so", &d, err, sizeof err), 0);
    /* libc, and in a sanitizer build (KB_SANITIZE) the sanitizer runtimes */
    int libc = 0, other = 0;
    for (uint32_t i = 0; i < d.n; i++) {
        if (!strcmp(d.name[i], "libc.so.6"))
            libc++;
        else if (strncmp(d.name[i], "libasan.so.", 11) && strncmp(d.name[i], "libubsan.so.", 12))
            other++;
    }
    assert_int_equal(libc, 1);
    assert_int_equal(other, 0);
}

/* The next holes of the same kind: an oracle directory holding a FIFO named
 * oracle.so (kbench list would dlopen it and block), and a FIFO or device
 * named as the ledger. Each is refused in words, within the alarm. */
static void test_fifo_oracle_and_ledger_do_not_hang(void **state)
{
    (void)state;
    char odir[512], fifo[600], ledger[512];
    path_in(odir, sizeof odir, "oracles");
    snprintf(fifo, sizeof fifo, "%s/fifo-target", odir);
    assert_int_equal(mkdir(odir, 0700), 0);
    assert_int_equal(mkdir(fifo, 0700), 0);
    snprintf(fifo, sizeof fifo, "%s/fifo-target/oracle.so", odir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    alarm(120);
    KB_RUN(&R, "list", "--oracles", odir);
    assert_contains(R.out, "oracle.so is broken");
    assert_contains(R.out, "a FIFO");
    if (access(PI_PLUGIN, R_OK) == 0) {
        path_in(ledger, sizeof ledger, "ledger.fifo");
        assert_int_equal(mkfifo(ledger, 0600), 0);
        KB_RUN(&R, "trial", PI_PLUGIN, "--budget", "0.2", "--ledger", ledger);
        assert_contains(R.err, "not a regular file");
        KB_RUN(&R, "trial", PI_PLUGIN, "--budget", "0.2", "--ledger", "/dev/null");
        assert_contains(R.err, "not a regular file");
    }
    alarm(0);
}

/* kbench report writes --plot, --target and --title into gnuplot's
 * double-quoted strings, where a backquote runs a shell command: refused. */
static void test_report_args_cannot_run_commands(void **state)
{
    (void)state;
    char marker[512], plot[1200], ledger[512];
    path_in(marker, sizeof marker, "pwned");
    path_in(ledger, sizeof ledger, "empty.tsv");
    snprintf(plot, sizeof plot, "%s/`touch %s`.png", g_dir, marker);
    KB_RUN(&R, "report", "--target", "posting-intersect", "--plot", plot, "--ledger", ledger);
    assert_int_equal(R.code, 64);
    KB_RUN(&R, "report", "--target", "t`touch x`", "--plot", "/tmp/x.png", "--ledger", ledger);
    assert_int_equal(R.code, 64);
    assert_int_not_equal(access(marker, F_OK), 0);
}

/* The next status line of a background kbench, "" on timeout. */
static const char *next_status(kb_bg *b, int timeout_ms)
{
    static char line[4096];
    const uint64_t end = kb_bg_now_ms() + (uint64_t)timeout_ms;
    while (kb_bg_now_ms() < end) {
        int got = kb_bg_line(b, line, sizeof line, (int)(end - kb_bg_now_ms()));
        if (got < 0) break;
        if (got > 0 && !strncmp(line, "status: ", 8)) return line + 8;
    }
    return "";
}

/* kbench watch on a FIFO: a rejected verdict, and it goes on judging: a
 * real plugin renamed over the FIFO gets a verdict of its own. */
static void test_watch_goes_on_after_a_fifo(void **state)
{
    (void)state;
    if (access(PI_PLUGIN, R_OK) != 0) skip();
    char fifo[512], tmp[512], err[512];
    path_in(fifo, sizeof fifo, "watched.so");
    path_in(tmp, sizeof tmp, "watched.tmp");
    path_in(err, sizeof err, "watch.err");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    char *const argv[] = {"kbench", "watch", fifo, "--budget", "0.2", NULL};
    kb_bg_start(&g_bg, argv, err);
    alarm(300);
    assert_string_equal(next_status(&g_bg, 60000), "rejected");
    copy_file(PI_PLUGIN, tmp);
    assert_int_equal(rename(tmp, fifo), 0);
    const char *st = next_status(&g_bg, 120000);
    /* A verdict of its own: a timed one (where timing cannot be trusted,
     * kbench says inconclusive, host/core/trust.c). */
    assert_true(!strcmp(st, "keep") || !strcmp(st, "discard") || !strcmp(st, "inconclusive"));
    kb_bg_stop(&g_bg, SIGTERM, 30000);
    alarm(0);
}

/* A write lease held on the candidate would make a blocking open() wait
 * for the lease-break time (45 s by default) while the holder stalls: the
 * snapshot opens without blocking and reports the file as busy. */
static void test_leased_file_does_not_stall(void **state)
{
    (void)state;
    if (access(PI_PLUGIN, R_OK) != 0) skip();
    char path[512];
    path_in(path, sizeof path, "leased.so");
    copy_file(PI_PLUGIN, path);
    signal(SIGIO, SIG_IGN); /* the lease-break notice comes to us */
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    if (fcntl(fd, F_SETLEASE, F_WRLCK) != 0) {
        close(fd);
        print_message("no write lease here (%s); skipping\n", strerror(errno));
        skip();
    }
    alarm(120);
    KB_RUN(&R, "trial", path, "--budget", "0.2");
    alarm(0);
    fcntl(fd, F_SETLEASE, F_UNLCK);
    close(fd);
    expect("rejected", 3, "changed while being read");
}

/* kbench info prints the file name and the reason as key: value lines too:
 * a name with a newline cannot add a "status: ok" line. */
static void test_info_cannot_be_forged(void **state)
{
    (void)state;
    char name[512];
    snprintf(name, sizeof name, "%s/y\nstatus: ok\n.so", g_dir);
    copy_file(FX("fx_bad_magic"), name);
    KB_RUN(&R, "info", name);
    assert_int_equal(R.code, 3);
    assert_null(strstr(R.out, "\nstatus: ok"));
    assert_non_null(strstr(R.out, "\nstatus: rejected\n"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_special_files_are_rejected),
        cmocka_unit_test(test_proc_files_are_rejected),
        cmocka_unit_test(test_leased_file_does_not_stall),
        cmocka_unit_test(test_oversized_file_is_rejected),
        cmocka_unit_test(test_hostile_name_forges_nothing),
        cmocka_unit_test(test_info_cannot_be_forged),
        cmocka_unit_test(test_fifo_oracle_and_ledger_do_not_hang),
        cmocka_unit_test(test_watch_goes_on_after_a_fifo),
        cmocka_unit_test(test_report_args_cannot_run_commands),
        cmocka_unit_test(test_kernel_in_another_library_is_rejected),
        cmocka_unit_test(test_ld_library_path_is_not_a_way_in),
        cmocka_unit_test(test_digest_covers_loaded_libraries),
        cmocka_unit_test(test_elf_deps_unit),
        cmocka_unit_test(test_describe_tags_cannot_be_forged),
        cmocka_unit_test(test_chosen_seed_is_marked_and_never_promoted),
        cmocka_unit_test(test_serve_pins_seed_and_oracles),
        cmocka_unit_test(test_serve_allowed_seed_is_marked),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
