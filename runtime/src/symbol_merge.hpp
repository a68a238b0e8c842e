// The BPE merge loop shared by both tokenizers: repeatedly merge the best adjacent pair, in O(n log n).
#pragma once
#include <cstdint>
#include <optional>
#include <queue>
#include <vector>

namespace kiln::detail {

// What a pair of adjacent symbols would merge into, and how eager that merge is (higher first).
struct merge_candidate {
    double priority;
    int32_t merged_id;
};

// Merges symbol ids in place until no adjacent pair merges. At every step the pair with the
// highest priority wins, the leftmost on ties: exactly the result of llama2.c's quadratic loop
// (which rescans the whole sequence after each merge), but with a heap of candidate pairs and a
// linked list. Heap entries go stale when a neighbour merges; they are recognised on pop by
// checking that both symbols still hold the ids they had when the entry was pushed.
// find_merge(left_id, right_id) returns std::optional<merge_candidate>.
template <typename FindMerge>
void merge_symbols(std::vector<int32_t>& ids, FindMerge&& find_merge) {
    const int32_t count = static_cast<int32_t>(ids.size());
    if (count < 2) return;
    struct pending_pair {
        double priority;
        int32_t left;  // index of the left symbol; symbols keep their index, so it orders positions
        int32_t right;
        int32_t left_id;
        int32_t right_id;
        int32_t merged_id;
    };
    auto runs_later = [](const pending_pair& a, const pending_pair& b) {
        if (a.priority != b.priority) return a.priority < b.priority;
        return a.left > b.left;
    };
    std::priority_queue<pending_pair, std::vector<pending_pair>, decltype(runs_later)> heap(runs_later);
    std::vector<int32_t> prev(count), next(count);
    for (int32_t i = 0; i < count; ++i) {
        prev[i] = i - 1;
        next[i] = i + 1 < count ? i + 1 : -1;
    }
    std::vector<bool> alive(count, true);
    auto consider = [&](int32_t left, int32_t right) {
        if (left < 0 || right < 0) return;
        if (std::optional<merge_candidate> merge = find_merge(ids[left], ids[right]))
            heap.push({merge->priority, left, right, ids[left], ids[right], merge->merged_id});
    };
    for (int32_t i = 0; i + 1 < count; ++i) consider(i, i + 1);

    while (!heap.empty()) {
        const pending_pair best = heap.top();
        heap.pop();
        if (!alive[best.left] || !alive[best.right] || next[best.left] != best.right ||
            ids[best.left] != best.left_id || ids[best.right] != best.right_id)
            continue;
        ids[best.left] = best.merged_id;
        alive[best.right] = false;
        next[best.left] = next[best.right];
        if (next[best.right] >= 0) prev[next[best.right]] = best.left;
        consider(prev[best.left], best.left);
        consider(best.left, next[best.left]);
    }
    int32_t kept = 0;
    for (int32_t i = 0; i >= 0; i = next[i]) ids[kept++] = ids[i];
    ids.resize(kept);
}

}  // namespace kiln::detail
