// gbench_pq.cpp -- the pq-l2 oracle's run timed by Google Benchmark, the
// standard tool, to check kbench's per-call figure against
// (scripts/gbench-agree.sh, docs/measurement.md "Agreement").
//
//   gbench_pq --oracle build/oracles/pq-l2/oracle.so
//             [--case 'n=65536,d=128,m=16/clustered'] [--seed N] [--sets N]
//             [benchmark flags: --benchmark_repetitions=20 ...]
//
// It loads the oracle with dlopen (no link to kbench), fills the case's
// sixteen input sets with the target's own generate(), prepares the oracle's
// plugin once and times run() cycling through the first --sets of them
// (default 1) into one output buffer. With one set every call finds its
// inputs in cache, as a kbench batch of a warm target does when its sets fit
// in L2 (host/trial/batch.c reads them in before the clock); with 16, each call
// reads a set the fifteen others have since pushed out of L2.
#include <dlfcn.h>

#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "kbench.h"

namespace {

// The case's sixteen input sets, generated as kbench generates them (all of
// them timed: host/trial/measure.c timed_sets); --sets picks how many run() uses.
constexpr uint32_t kSets = 16;

void *host_alloc(const kb_host *, size_t size, size_t align) {
    void *p = nullptr;
    return posix_memalign(&p, align, size ? size : 1) ? nullptr : p;
}
void host_free(const kb_host *, void *p) { free(p); }
void host_log(const kb_host *, const char *m) { std::fprintf(stderr, "[plugin] %s\n", m); }
const kb_host kHost = {sizeof(kb_host), 0, 0, host_log, host_alloc, host_free};

size_t dtype_size(uint32_t dt) {
    switch (dt) {
    case KB_DT_U8: return 1;
    case KB_DT_U16: return 2;
    case KB_DT_U32: case KB_DT_I32: case KB_DT_F32: return 4;
    default: return 8;
    }
}

struct Fixture {
    const kb_target *target = nullptr;
    const kb_plugin *plugin = nullptr;
    const kb_case_spec *cs = nullptr;
    std::vector<void *> owned;
    kb_buffer statics[KB_MAX_BUFFERS];
    uint32_t n_statics = 0;
    kb_buffer ins[kSets][KB_MAX_BUFFERS];
    uint32_t n_ins = 0;
    kb_buffer outs[KB_MAX_BUFFERS];
    uint32_t n_outs = 0;
    void *state = nullptr;
    kb_case kcase{};
    uint32_t n_sets = 1; // how many of the sets run() cycles through (--sets)
};

Fixture g;

// Returns an empty string, or what went wrong.
std::string setup(const char *oracle, const char *case_name, uint64_t seed) {
    void *h = dlopen(oracle, RTLD_NOW | RTLD_LOCAL);
    if (!h) return std::string("dlopen: ") + dlerror();
    auto te = reinterpret_cast<kb_target_entry_fn>(dlsym(h, "kb_target_entry_v1"));
    auto pe = reinterpret_cast<kb_plugin_entry_fn>(dlsym(h, "kb_plugin_entry_v1"));
    if (!te || !pe) return std::string(oracle) + " is not a kbench oracle";
    g.target = te();
    g.plugin = pe();
    for (uint32_t i = 0; i < g.target->n_cases; i++)
        if (std::strcmp(g.target->cases[i].name, case_name) == 0) g.cs = &g.target->cases[i];
    if (!g.cs) return std::string("no case ") + case_name + " in " + g.target->name;
    const kb_target *t = g.target;
    kb_buffer bufs[kSets][KB_MAX_BUFFERS];
    std::memset(bufs, 0, sizeof bufs);
    for (uint32_t s = 0; s < kSets; s++) {
        for (uint32_t b = 0; b < t->n_buffers; b++) {
            const kb_buffer_spec &bs = t->buffers[b];
            bufs[s][b].count = g.cs->lengths[b];
            bufs[s][b].dtype = bs.dtype;
            if (bs.role == KB_ROLE_OUTPUT) continue;  // generate gets NULL outputs
            if (bs.role == KB_ROLE_STATIC && s > 0) {
                bufs[s][b].data = bufs[0][b].data;
                continue;
            }
            void *p = host_alloc(nullptr, g.cs->lengths[b] * dtype_size(bs.dtype), 64);
            if (!p) return "out of memory";
            g.owned.push_back(p);
            bufs[s][b].data = p;
        }
        char err[512] = "";
        if (t->generate(g.cs, seed, s, bufs[s], t->n_buffers, err, sizeof err) != 0)
            return std::string("generate: ") + err;
    }
    for (uint32_t b = 0; b < t->n_buffers; b++) {
        const kb_buffer_spec &bs = t->buffers[b];
        if (bs.role == KB_ROLE_STATIC) g.statics[g.n_statics++] = bufs[0][b];
        if (bs.role == KB_ROLE_CALL) {
            for (uint32_t s = 0; s < kSets; s++) g.ins[s][g.n_ins] = bufs[s][b];
            g.n_ins++;
        }
        if (bs.role == KB_ROLE_OUTPUT) {
            kb_buffer o = bufs[0][b];
            o.data = host_alloc(nullptr, o.count * dtype_size(o.dtype), 64);
            if (!o.data) return "out of memory";
            g.owned.push_back(o.data);
            g.outs[g.n_outs++] = o;
        }
    }
    g.kcase = kb_case{g.cs->name, t->n_params, 0, g.cs->params, t->param_names};
    char err[512] = "";
    if (g.plugin->prepare(&kHost, &g.kcase, g.statics, g.n_statics, &g.state, err, sizeof err))
        return std::string("prepare: ") + err;
    return "";
}

void BM_oracle_run(benchmark::State &state) {
    kb_buffer outs[KB_MAX_BUFFERS];
    char err[512];
    uint32_t set = 0;
    for (auto _ : state) {
        std::memcpy(outs, g.outs, sizeof(kb_buffer) * g.n_outs);
        if (g.plugin->run(g.state, g.ins[set], g.n_ins, outs, g.n_outs, err, sizeof err) != 0) {
            state.SkipWithError(err);
            break;
        }
        benchmark::DoNotOptimize(outs[0].data);
        benchmark::ClobberMemory();
        if (++set == g.n_sets) set = 0;
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * g.cs->bytes_per_call));
}

}  // namespace

int main(int argc, char **argv) {
    const char *oracle = nullptr, *case_name = "n=65536,d=128,m=16/clustered";
    uint64_t seed = 1;
    std::vector<char *> rest{argv[0]};
    for (int i = 1; i < argc; i++) {
        if (std::strcmp(argv[i], "--oracle") == 0 && i + 1 < argc) oracle = argv[++i];
        else if (std::strcmp(argv[i], "--case") == 0 && i + 1 < argc) case_name = argv[++i];
        else if (std::strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
            seed = std::strtoull(argv[++i], nullptr, 0);
        else if (std::strcmp(argv[i], "--sets") == 0 && i + 1 < argc) {
            const unsigned long n = std::strtoul(argv[++i], nullptr, 10);
            if (n < 1 || n > kSets) {
                std::fprintf(stderr, "gbench_pq: --sets takes 1 to %u\n", kSets);
                return 64;
            }
            g.n_sets = static_cast<uint32_t>(n);
        }
        else rest.push_back(argv[i]);
    }
    if (!oracle) {
        std::fprintf(stderr, "usage: gbench_pq --oracle ORACLE.so [--case NAME] [--seed N] "
                             "[--sets N] [benchmark flags]\n");
        return 64;
    }
    std::string why = setup(oracle, case_name, seed);
    if (!why.empty()) {
        std::fprintf(stderr, "gbench_pq: %s\n", why.c_str());
        return 2;
    }
    int bargc = static_cast<int>(rest.size());
    benchmark::Initialize(&bargc, rest.data());
    if (benchmark::ReportUnrecognizedArguments(bargc, rest.data())) return 64;
    std::string name = std::string(g.target->name) + "/" + g.cs->name + "/oracle";
    benchmark::RegisterBenchmark(name.c_str(), BM_oracle_run)->Unit(benchmark::kNanosecond);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    g.plugin->release(g.state);
    for (void *p : g.owned) free(p);
    return 0;
}
