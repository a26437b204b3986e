/*
 * faiss.cpp -- kmeans-assign contender "faiss": the assignment step as a
 * FAISS user writes it (faiss::Clustering does the same): the centroids in a
 * faiss::IndexFlatL2, and per call IndexFlatL2::search with k = 1 over the
 * points. Information for the agent, not a candidate to tune: it shows what
 * an upstream library gets.
 *
 * prepare adds the centroids to the index (a copy, and their squared norms
 * where FAISS keeps them): they come from the case's static input, so they
 * belong there. Per call FAISS does all the work: from 20 points up its
 * flat search is exhaustive_L2sqr_blas, |x|^2 + |c|^2 - 2 x.c by sgemm in
 * blocks of 4096 points x 1024 centroids with the nearest kept per point
 * (SingleBestResultHandler), which rounds differently from the oracle's
 * direct sums; the oracle's check says how far that may go. FAISS returns
 * labels as int64 and clamps negative distances to 0.
 *
 * The target is single-threaded. FAISS's loops are OpenMP regions and its
 * BLAS is OpenBLAS: the worker is pinned to one CPU, so both run one thread.
 * No exception leaves this file: every vtable function is noexcept.
 */
#include <cstdint>
#include <cstdio>
#include <exception>
#include <memory>
#include <new>
#include <vector>

#include <faiss/IndexFlat.h>

#include "kbench.h"

namespace
{

#define KB_STR_(x) #x
#define KB_STR(x)  KB_STR_(x)
#define KB_FAISS_VERSION \
    KB_STR(FAISS_VERSION_MAJOR) "." KB_STR(FAISS_VERSION_MINOR) "." KB_STR(FAISS_VERSION_PATCH)

struct State {
    State(uint64_t n_, uint32_t k_, uint32_t d_)
        : n(n_), k(k_), d(d_), index(static_cast<faiss::Index::idx_t>(d_)), labels(n_)
    {
    }
    uint64_t n;
    uint32_t k, d;
    faiss::IndexFlatL2 index;
    std::vector<faiss::Index::idx_t> labels; /* FAISS's int64 labels, narrowed per call */
};

int prepare(const kb_host *, const kb_case *cs, const kb_buffer *statics, uint32_t n_statics,
            void **state, char *err, size_t err_len) noexcept
{
    const int64_t *p = cs->params;
    if (cs->n_params != 3 || p[0] < 1 || p[1] < 1 || p[1] > 1 << 20 || p[2] < 1 || p[2] > 4096) {
        std::snprintf(err, err_len, "kmeans-assign faiss: unsupported shape %s", cs->name);
        return KB_ERR_UNSUPPORTED;
    }
    if (n_statics != 1 || statics[0].dtype != KB_DT_F32 ||
        statics[0].count != static_cast<uint64_t>(p[1]) * static_cast<uint64_t>(p[2])) {
        std::snprintf(err, err_len, "kmeans-assign faiss: prepare got the wrong centroids");
        return KB_ERR_INTERNAL;
    }
    try {
        std::unique_ptr<State> st(new State(
            static_cast<uint64_t>(p[0]), static_cast<uint32_t>(p[1]), static_cast<uint32_t>(p[2])));
        st->index.add(static_cast<faiss::Index::idx_t>(p[1]),
                      static_cast<const float *>(statics[0].data));
        *state = st.release();
        return KB_OK;
    } catch (const std::bad_alloc &) {
        std::snprintf(err, err_len, "kmeans-assign faiss: out of memory");
        return KB_ERR_NOMEM;
    } catch (const std::exception &e) {
        std::snprintf(err, err_len, "kmeans-assign faiss: %s", e.what());
        return KB_ERR_INTERNAL;
    }
}

int run(void *state, const kb_buffer *inputs, uint32_t n_inputs, kb_buffer *outputs,
        uint32_t n_outputs, char *err, size_t err_len) noexcept
{
    State *st = static_cast<State *>(state);
    if (n_inputs != 1 || n_outputs != 2 || inputs[0].count != st->n * st->d ||
        outputs[0].count != st->n || outputs[1].count != st->n) {
        std::snprintf(err, err_len, "kmeans-assign faiss: run got the wrong buffers");
        return KB_ERR_INTERNAL;
    }
    uint32_t *idx = static_cast<uint32_t *>(outputs[0].data);
    float *dist = static_cast<float *>(outputs[1].data);
    try {
        st->index.search(static_cast<faiss::Index::idx_t>(st->n),
                         static_cast<const float *>(inputs[0].data), 1, dist, st->labels.data());
        for (uint64_t i = 0; i < st->n; i++) idx[i] = static_cast<uint32_t>(st->labels[i]);
        return KB_OK;
    } catch (const std::bad_alloc &) {
        std::snprintf(err, err_len, "kmeans-assign faiss: out of memory");
        return KB_ERR_NOMEM;
    } catch (const std::exception &e) {
        std::snprintf(err, err_len, "kmeans-assign faiss: %s", e.what());
        return KB_ERR_INTERNAL;
    }
}

void release(void *state) noexcept
{
    delete static_cast<State *>(state);
}

kb_plugin make_descriptor()
{
    kb_plugin p = kb_plugin();
    p.magic = KB_ABI_MAGIC;
    p.abi_major = KB_ABI_MAJOR;
    p.abi_minor = KB_ABI_MINOR;
    p.struct_size = sizeof(kb_plugin);
    p.target = "kmeans-assign";
    p.name = "faiss";
    p.version = "faiss-" KB_FAISS_VERSION;
    p.cpu_features = 0; /* whatever FAISS was built for; Debian's is baseline x86-64 */
    p.prepare = prepare;
    p.run = run;
    p.release = release;
    return p;
}

/* Set by the .so's constructors, before the host can call the entry point. */
const kb_plugin descriptor = make_descriptor();

} // namespace

extern "C" KB_EXPORT const kb_plugin *kb_plugin_entry_v1(void)
{
    return &descriptor;
}
