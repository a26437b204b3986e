/*
 * worker_main.c -- the worker's request loop: reads one request at a time
 * from the private channel, checks its magic, nonce and sequence, and hands
 * it to the part that serves it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "worker.h"

struct kb__wk kb__wk;

int kb__worker_main(int sock)
{
    W.sock = sock;
    W.page = sysconf(_SC_PAGESIZE);
    W.base_threads = kb__wk_count_threads();
    kb__wk_install_fault_handler();
    (void)kb__wk_lock_down(sock);
    static kb__req q; /* large: keep it off the stack */
    for (;;) {
        int fds[2] = {-1, -1};
        char cbuf[CMSG_SPACE(sizeof(int) * 2)];
        struct iovec iov = {&q, sizeof q};
        struct msghdr mh = {
            .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
        ssize_t n;
        block_signals();
        do n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
        while (n < 0 && errno == EINTR);
        if (n > 0 && q.type != KB__REQ_BATCH) unblock_signals();
        if (n <= 0) return n == 0 ? 0 : 1; /* host gone: nothing to report to */
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
                size_t nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                memcpy(fds, CMSG_DATA(c), (nfd > 2 ? 2 : nfd) * sizeof(int));
            }
        if ((size_t)n != sizeof q || q.magic != KB__PROTO_MAGIC) return 2;
        if (W.seq == 0) W.nonce = q.nonce; /* the first request sets it */
        if (q.nonce != W.nonce) return 2;
        W.seq = q.seq;
        switch (q.type) {
        case KB__REQ_LOAD:
            q.path[sizeof q.path - 1] = 0;
            kb__wk_do_load(fds[0], q.path, &q.foreign);
            break;
        case KB__REQ_CASE:
            kb__wk_do_case(&q, fds[0], fds[1]);
            fds[0] = fds[1] = -1;
            break;
        case KB__REQ_BATCH: kb__wk_do_batch(&q, &fds[0]); break;
        case KB__REQ_RELEASE: kb__wk_do_release(&q); break;
        case KB__REQ_INPUTS: kb__wk_do_inputs(&q, fds[0]); break;
        case KB__REQ_QUIT:
            kb__wk_reply_code(KB__REP_OK, 0, NULL);
            if (KB__ASAN) {
                fflush(NULL);
                _exit(0);
            }
            return 0; /* exit handlers and the plugin's destructors run, confined */
        default: kb__wk_reply_code(KB__REP_REFUSED, -1, "unknown request"); break;
        }
        /* fds[0] of LOAD stays open: dlopen keeps using the path. */
        if (q.type != KB__REQ_LOAD && q.type != KB__REQ_CASE)
            for (int i = 0; i < 2; i++)
                if (fds[i] >= 0) close(fds[i]);
    }
}
