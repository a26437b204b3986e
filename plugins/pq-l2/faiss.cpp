/*
 * faiss.cpp -- pq-l2 candidate "faiss": the target computed by FAISS, an
 * upstream library that knows nothing about kbench, as a side-by-side
 * contender for our own candidates.
 *
 * prepare builds a faiss::IndexPQ around the case's codebook (its
 * ProductQuantizer stores centroids as [M][ksub][dsub], the oracle's
 * [m][256][ds] layout, so the codebook is copied in as it is) and asks FAISS
 * for its transposed copy of the centroids (sync_transposed_centroids),
 * FAISS's faster table path, about 20 % quicker here than its default.
 * Both derive from the codebook alone, a static input, so they belong in
 * prepare. Per call FAISS does all the work, the way its flat-code searches
 * (HNSW, refinement, IndexPQ's distance computer) do it:
 *   - FlatCodesDistanceComputer::set_query, which is
 *     ProductQuantizer::compute_distance_table: table[j][c] from
 *     fvec_L2sqr_ny_transposed, one sub-space at a time;
 *   - FlatCodesDistanceComputer::distance_to_code for every vector, FAISS's
 *     code-distance routine (distance_single_code<PQDecoder8>: the sum of
 *     table[j][code_j] over j, in j order).
 * Only the loop over the n vectors is ours. The transposed path computes an
 * entry as ||q_j||^2 + ||c||^2 - 2 q_j.c rather than the oracle's sum of
 * squared differences, so results differ from the oracle's in the last bits;
 * the target's rel_tol (1e-4) allows for that.
 *
 * No exception leaves this file: every vtable function is noexcept and
 * catches what FAISS throws. The target is single-threaded; none of the
 * FAISS paths used here opens an OpenMP parallel region.
 */
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <new>

#include <faiss/IndexPQ.h>
#include <faiss/impl/DistanceComputer.h>

#include "kbench.h"

namespace
{

const uint32_t kCentroids = 256; /* nbits = 8 */

#define KB_STR_(x) #x
#define KB_STR(x)  KB_STR_(x)
#define KB_FAISS_VERSION \
    KB_STR(FAISS_VERSION_MAJOR) "." KB_STR(FAISS_VERSION_MINOR) "." KB_STR(FAISS_VERSION_PATCH)

struct State {
    State(uint64_t n_, uint32_t d_, uint32_t m_)
        : n(n_), d(d_), m(m_), index(static_cast<int>(d_), m_, 8, faiss::METRIC_L2)
    {
    }
    uint64_t n;
    uint32_t d, m;
    faiss::IndexPQ index;
    std::unique_ptr<faiss::FlatCodesDistanceComputer> dc; /* points into index */
};

int prepare(const kb_host *, const kb_case *cs, const kb_buffer *statics, uint32_t n_statics,
            void **state, char *err, size_t err_len) noexcept
{
    if (cs->n_params != 3 || n_statics != 1) {
        std::snprintf(err, err_len, "faiss: expected 3 params and 1 static buffer, got %u and %u",
                      cs->n_params, n_statics);
        return KB_ERR_UNSUPPORTED;
    }
    const int64_t n = cs->params[0], d = cs->params[1], m = cs->params[2];
    if (n < 1 || d < 1 || m < 1 || m > d || d % m != 0 || d > 1 << 16 ||
        statics[0].dtype != KB_DT_F32 ||
        statics[0].count != static_cast<uint64_t>(kCentroids) * static_cast<uint64_t>(d)) {
        std::snprintf(err, err_len, "faiss: unsupported shape n=%lld d=%lld m=%lld",
                      static_cast<long long>(n), static_cast<long long>(d),
                      static_cast<long long>(m));
        return KB_ERR_UNSUPPORTED;
    }
    try {
        std::unique_ptr<State> st(new State(static_cast<uint64_t>(n), static_cast<uint32_t>(d),
                                            static_cast<uint32_t>(m)));
        faiss::ProductQuantizer &pq = st->index.pq;
        if (pq.ksub != kCentroids || pq.centroids.size() != statics[0].count) {
            std::snprintf(err, err_len, "faiss: ProductQuantizer has %zu centroids of %zu floats",
                          pq.ksub, pq.dsub);
            return KB_ERR_INTERNAL;
        }
        std::memcpy(pq.centroids.data(), statics[0].data, statics[0].count * sizeof(float));
        st->index.is_trained = true;
        pq.sync_transposed_centroids();
        st->dc.reset(st->index.get_FlatCodesDistanceComputer());
        *state = st.release();
        return KB_OK;
    } catch (const std::bad_alloc &) {
        std::snprintf(err, err_len, "faiss: out of memory");
        return KB_ERR_NOMEM;
    } catch (const std::exception &e) {
        std::snprintf(err, err_len, "faiss: %s", e.what());
        return KB_ERR_INTERNAL;
    }
}

int run(void *state, const kb_buffer *inputs, uint32_t n_inputs, kb_buffer *outputs,
        uint32_t n_outputs, char *err, size_t err_len) noexcept
{
    State *st = static_cast<State *>(state);
    if (n_inputs != 2 || n_outputs != 1 || inputs[0].count != st->d ||
        inputs[1].count != st->n * st->m || outputs[0].count != st->n) {
        std::snprintf(err, err_len, "faiss: buffers do not match the prepared case");
        return KB_ERR_INTERNAL;
    }
    const uint8_t *codes = static_cast<const uint8_t *>(inputs[1].data);
    float *dist = static_cast<float *>(outputs[0].data);
    try {
        faiss::FlatCodesDistanceComputer &dc = *st->dc;
        dc.set_query(static_cast<const float *>(inputs[0].data));
        for (uint64_t i = 0; i < st->n; i++) dist[i] = dc.distance_to_code(codes + i * st->m);
        return KB_OK;
    } catch (const std::exception &e) {
        std::snprintf(err, err_len, "faiss: %s", e.what());
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
    p.target = "pq-l2";
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
