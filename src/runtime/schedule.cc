#include "runtime/schedule.h"

#include <algorithm>
#include <functional>
#include <numeric>

#include "runtime/memory_plan.h"

namespace fswap {
namespace {

// The dependence graph of the nodes and the arena values they read and write.
struct Dag {
  std::vector<std::vector<int>> preds, succs;  // per node: distinct producer / reader nodes
  std::vector<std::vector<int>> reads;         // per node: distinct arena values read
  std::vector<std::vector<int>> writes;        // per node: arena values written
  std::vector<std::size_t> bytes;              // per value: its block in the arena, 0 outside it
  std::vector<int> producer;                   // per value: the node writing it, -1 for the rest
  std::vector<std::vector<int>> read_by;       // per value: the distinct nodes reading it
  std::vector<bool> kept;                      // per value: a graph input or output (never freed early)
  std::vector<int> over;  // per node: the input its output 0 may be written over (plan_memory's rule), else -1
};

Dag make_dag(const Graph& g) {
  const std::size_t nn = g.nodes.size(), nv = g.values.size();
  Dag d;
  d.preds.resize(nn);
  d.succs.resize(nn);
  d.reads.resize(nn);
  d.writes.resize(nn);
  d.bytes.assign(nv, 0);
  d.read_by.resize(nv);
  d.kept.assign(nv, false);
  for (std::size_t v = 0; v < nv; ++v) {
    const Value& value = g.values[v];
    if (value.weight >= 0 || value.constant >= 0) continue;
    const std::size_t raw = static_cast<std::size_t>(shape_elements(value.shape)) * dtype_size(value.dtype);
    d.bytes[v] = (raw + MemoryPlan::kAlignment - 1) / MemoryPlan::kAlignment * MemoryPlan::kAlignment;
  }
  for (int v : g.inputs) d.kept[v] = true;
  for (int v : g.outputs) d.kept[v] = true;
  d.producer.assign(nv, -1);
  d.over.assign(nn, -1);
  for (std::size_t i = 0; i < nn; ++i) {
    const Node& n = g.nodes[i];
    for (int v : n.outputs)
      if (v >= 0) {
        d.producer[v] = static_cast<int>(i);
        if (d.bytes[v] > 0) d.writes[i].push_back(v);
      }
    if (writes_over_input(g, n)) {
      const int x = n.inputs[0], y = n.outputs[0];
      if (d.bytes[x] > 0 && !d.kept[x] && !d.kept[y]) d.over[i] = x;
    }
  }
  for (std::size_t i = 0; i < nn; ++i) {
    for (int v : g.nodes[i].inputs) {
      if (v < 0) continue;
      if (d.bytes[v] > 0 && std::find(d.reads[i].begin(), d.reads[i].end(), v) == d.reads[i].end()) {
        d.reads[i].push_back(v);
        d.read_by[v].push_back(static_cast<int>(i));
      }
      const int p = d.producer[v];
      if (p >= 0 && std::find(d.preds[i].begin(), d.preds[i].end(), p) == d.preds[i].end()) {
        d.preds[i].push_back(p);
        d.succs[p].push_back(static_cast<int>(i));
      }
    }
  }
  return d;
}

// Emits every node once, each after all of `before[n]`, picking among the ready ones the best
// by `better(a, b)` (a strict order); `emitted(n)` runs after each pick.
std::vector<int> greedy_order(const std::vector<std::vector<int>>& before, const std::vector<std::vector<int>>& after,
                              const std::function<bool(int, int)>& better, const std::function<void(int)>& emitted) {
  const int nn = static_cast<int>(before.size());
  std::vector<int> waiting(nn), order;
  std::vector<int> ready;
  for (int i = 0; i < nn; ++i)
    if ((waiting[i] = static_cast<int>(before[i].size())) == 0) ready.push_back(i);
  while (!ready.empty()) {
    auto best = ready.begin();
    for (auto it = ready.begin() + 1; it != ready.end(); ++it)
      if (better(*it, *best)) best = it;
    const int n = *best;
    ready.erase(best);
    order.push_back(n);
    emitted(n);
    for (int s : after[n])
      if (--waiting[s] == 0) ready.push_back(s);
  }
  return order;
}

// Forward: a node's gain is the bytes of the inputs it is the last reader of, minus its outputs.
std::vector<int> list_order(const Dag& d) {
  std::vector<std::size_t> unread(d.read_by.size());
  for (std::size_t v = 0; v < unread.size(); ++v) unread[v] = d.read_by[v].size();
  auto gain = [&](int n) {
    std::int64_t g = 0;
    for (int v : d.reads[n])
      if (unread[v] == 1 && !d.kept[v]) g += static_cast<std::int64_t>(d.bytes[v]);
    for (int v : d.writes[n]) g -= static_cast<std::int64_t>(d.bytes[v]);
    return g;
  };
  return greedy_order(
      d.preds, d.succs,
      [&](int a, int b) {
        const std::int64_t ga = gain(a), gb = gain(b);
        return ga != gb ? ga > gb : a < b;
      },
      [&](int n) {
        for (int v : d.reads[n]) --unread[v];
      });
}

// Backward: placing a node (from the end) ends its outputs' lives and starts those of its inputs
// that no node placed so far reads.
std::vector<int> reverse_order(const Dag& d) {
  std::vector<bool> live(d.bytes.size(), false);
  auto gain = [&](int n) {
    std::int64_t g = 0;
    for (int v : d.writes[n]) g += static_cast<std::int64_t>(d.bytes[v]);
    for (int v : d.reads[n])
      if (!live[v]) g -= static_cast<std::int64_t>(d.bytes[v]);
    return g;
  };
  std::vector<int> order = greedy_order(
      d.succs, d.preds,
      [&](int a, int b) {
        const std::int64_t ga = gain(a), gb = gain(b);
        return ga != gb ? ga > gb : a > b;
      },
      [&](int n) {
        for (int v : d.reads[n]) live[v] = true;
      });
  std::reverse(order.begin(), order.end());
  return order;
}

// Every node as late as possible: from the end, the latest node of the given order whose readers
// are all placed.
std::vector<int> late_order(const Dag& d) {
  std::vector<int> order = greedy_order(d.succs, d.preds, [](int a, int b) { return a > b; }, [](int) {});
  std::reverse(order.begin(), order.end());
  return order;
}

// The most bytes live at one step of an order, as plan_memory sees liveness without placing
// anything: a value is live from its producer's step (graph inputs: before the first) to its last
// reader's (graph outputs: after the last); an output written over its dying input starts a step
// later.
std::size_t live_peak(const Dag& d, const std::vector<int>& order) {
  const int nn = static_cast<int>(order.size());
  std::vector<int> at(nn);
  for (int k = 0; k < nn; ++k) at[order[k]] = k;
  std::vector<int> last(d.bytes.size(), -1);
  for (int n = 0; n < nn; ++n)
    for (int v : d.reads[n]) last[v] = std::max(last[v], at[n]);
  std::vector<std::int64_t> change(static_cast<std::size_t>(nn) + 3, 0);  // by step + 1
  for (std::size_t v = 0; v < d.bytes.size(); ++v) {
    if (d.bytes[v] == 0) continue;
    const int p = d.producer[v];
    int first = p < 0 ? -1 : at[p];
    const int end = d.kept[v] || (p < 0 && last[v] < 0) ? nn : std::max(last[v], first);
    if (p >= 0 && d.over[p] >= 0 && d.writes[p].front() == static_cast<int>(v) && last[d.over[p]] == first) ++first;
    if (first > end) continue;
    change[static_cast<std::size_t>(first + 1)] += static_cast<std::int64_t>(d.bytes[v]);
    change[static_cast<std::size_t>(end + 2)] -= static_cast<std::int64_t>(d.bytes[v]);
  }
  std::size_t peak = 0;
  std::int64_t live = 0;
  for (std::int64_t c : change) peak = std::max(peak, static_cast<std::size_t>(live += c));
  return peak;
}

// One pass of sunk() below over `order`, whose live peak is `peak` (updated).
std::vector<int> sunk_once(const Dag& d, std::vector<int> order, std::size_t& peak) {
  const int nn = static_cast<int>(order.size());
  std::vector<int> at(nn);
  const std::vector<int> visit(order.rbegin(), order.rend());
  for (int n : visit) {
    for (int k = 0; k < nn; ++k) at[order[k]] = k;
    int to = nn;  // the first reader's position
    for (int s : d.succs[n]) to = std::min(to, at[s]);
    if (to == at[n] + 1) continue;
    // Moving n later makes its outputs later and keeps alive the inputs it reads last.
    std::int64_t gain = 0;
    for (int v : d.writes[n]) gain += static_cast<std::int64_t>(d.bytes[v]);
    for (int v : d.reads[n]) {
      const bool read_last = std::none_of(d.read_by[v].begin(), d.read_by[v].end(), [&](int r) { return at[r] > at[n]; });
      if (read_last && !d.kept[v]) gain -= static_cast<std::int64_t>(d.bytes[v]);
    }
    std::vector<int> moved = order;
    std::rotate(moved.begin() + at[n], moved.begin() + at[n] + 1, moved.begin() + to);
    const std::size_t p = live_peak(d, moved);
    if (p < peak || (p == peak && gain >= 0)) {
      peak = p;
      order = std::move(moved);
    }
  }
  return order;
}

// Moves nodes later, last first: each to just before its first reader (to the end when nothing
// reads it) when that lowers the live peak, or keeps it and the node's outputs are at least the
// inputs it reads last (which it would keep alive longer). A chain read late moves as a whole:
// its last node first, then the one feeding it, and so on. Passes repeat while one moves a node
// (two chains reading one value: the second pass moves the first chain's head once the other
// chain has moved), at most kMaxPasses.
std::vector<int> sunk(const Dag& d, std::vector<int> order) {
  constexpr int kMaxPasses = 4;
  std::size_t peak = live_peak(d, order);
  for (int pass = 0; pass < kMaxPasses; ++pass) {
    std::vector<int> next = sunk_once(d, order, peak);
    if (next == order) break;
    order = std::move(next);
  }
  return order;
}

// The graph's nodes in `order` (a permutation of their indices).
std::vector<Node> permuted(const std::vector<Node>& nodes, const std::vector<int>& order) {
  std::vector<Node> out;
  out.reserve(nodes.size());
  for (int i : order) out.push_back(nodes[static_cast<std::size_t>(i)]);
  return out;
}

}  // namespace

Result<ScheduleReport> order_for_memory(Graph& g) {
  ScheduleReport report;
  FSWAP_ASSIGN_OR_RETURN(const MemoryPlan given, plan_memory(g));
  report.given_bytes = report.arena_bytes = given.arena_bytes;
  report.order = "given";
  const Dag d = make_dag(g);
  const std::vector<Node> original = g.nodes;
  std::vector<int> best_order;
  std::vector<int> given_order(original.size());
  std::iota(given_order.begin(), given_order.end(), 0);
  const std::pair<std::string, std::vector<int>> bases[] = {
      {"given", given_order}, {"list", list_order(d)}, {"reverse", reverse_order(d)}, {"late", late_order(d)}};
  for (const auto& [name, base] : bases) {
    if (base.size() != original.size())
      return internal_error(g.path + ": the " + name + " node order left nodes out; the graph has a cycle");
    for (const auto& [label, order] : {std::make_pair(name, base), std::make_pair(name + "+sunk", sunk(d, base))}) {
      if (order == given_order) continue;
      g.nodes = permuted(original, order);
      FSWAP_ASSIGN_OR_RETURN(const MemoryPlan plan, plan_memory(g));
      if (plan.arena_bytes < report.arena_bytes) {
        report.arena_bytes = plan.arena_bytes;
        report.order = label;
        best_order = order;
      }
    }
  }
  g.nodes = best_order.empty() ? original : permuted(original, best_order);
  return report;
}

}  // namespace fswap
