// The runtime's one persistent set of worker threads (a tbb::task_arena sized by -t), and the
// static row split that matrix ops use on it.
#pragma once
#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/partitioner.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <cstddef>

namespace kiln {

// Physical cores of this machine (SMT siblings counted once); at least 1.
int physical_core_count();

class thread_pool {
public:
    // n_threads 0 = physical_core_count().
    explicit thread_pool(int n_threads = 0);

    int size() const { return threads_; }

    // Runs f inside the arena: call once per forward pass so that every parallel op inside
    // reuses the same threads.
    template <typename F>
    void run(F&& f) {
        arena_.execute(std::forward<F>(f));
    }

    // Calls fn(begin, end) on contiguous ranges that cover [0, n), one range per thread, each
    // boundary a multiple of grain (static: the same split every call, no stealing, so results
    // never depend on timing). Work below min_parallel_work elements runs on the calling thread.
    template <typename F>
    void parallel_rows(size_t n, size_t grain, size_t work_per_row, F&& fn) const {
        const size_t chunks = std::min<size_t>(size_t(threads_), (n + grain - 1) / grain);
        if (chunks <= 1 || n * work_per_row < min_parallel_work) {
            fn(size_t(0), n);
            return;
        }
        const size_t rows_per_chunk = ((n + chunks - 1) / chunks + grain - 1) / grain * grain;
        tbb::parallel_for(
            tbb::blocked_range<size_t>(0, chunks, 1),
            [&](const tbb::blocked_range<size_t>& r) {
                for (size_t c = r.begin(); c < r.end(); ++c) {
                    const size_t begin = std::min(n, c * rows_per_chunk), end = std::min(n, begin + rows_per_chunk);
                    if (begin < end) fn(begin, end);
                }
            },
            tbb::static_partitioner());
    }

private:
    // Below this many multiply-adds a parallel_for costs more than it saves (~100k cycles).
    static constexpr size_t min_parallel_work = 64 * 1024;
    int threads_;
    tbb::task_arena arena_;
};

}  // namespace kiln
