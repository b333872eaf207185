#include "imaging/geometry.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <unordered_map>

#include "core/status.h"

namespace fswap {

Point2f Affine::apply(Point2f p) const {
  return {static_cast<float>(a * p.x + b * p.y + c), static_cast<float>(d * p.x + e * p.y + f)};
}

std::optional<Affine> Affine::inverse() const {
  const double det = a * e - b * d;
  const double norm = std::abs(a) + std::abs(b) + std::abs(d) + std::abs(e);
  if (!std::isfinite(det) || std::abs(det) <= 1e-12 * norm * norm) return std::nullopt;
  Affine inv;
  inv.a = e / det;
  inv.b = -b / det;
  inv.d = -d / det;
  inv.e = a / det;
  inv.c = -(inv.a * c + inv.b * f);
  inv.f = -(inv.d * c + inv.e * f);
  return inv;
}

Affine Affine::after(const Affine& first) const {
  Affine m;
  m.a = a * first.a + b * first.d;
  m.b = a * first.b + b * first.e;
  m.c = a * first.c + b * first.f + c;
  m.d = d * first.a + e * first.d;
  m.e = d * first.b + e * first.e;
  m.f = d * first.c + e * first.f + f;
  return m;
}

double Affine::scale() const { return std::sqrt(std::abs(a * e - b * d)); }

// In 2-D, Umeyama's SVD solution with the reflection correction reduces to a closed form:
// the rotation maximising trace(Rᵀ Σ) has cos/sin proportional to the symmetric and
// antisymmetric parts of the cross-covariance Σ, and the scale is that trace over var(from).
Affine estimate_similarity(const std::vector<Point2f>& from, const std::vector<Point2f>& to) {
  FSWAP_CHECK(from.size() == to.size(), "estimate_similarity needs as many `to` points as `from` points");
  const std::size_t n = from.size();
  if (n < 2) return Affine{};
  double mfx = 0, mfy = 0, mtx = 0, mty = 0;
  for (std::size_t i = 0; i < n; ++i) {
    mfx += from[i].x;
    mfy += from[i].y;
    mtx += to[i].x;
    mty += to[i].y;
  }
  mfx /= static_cast<double>(n);
  mfy /= static_cast<double>(n);
  mtx /= static_cast<double>(n);
  mty /= static_cast<double>(n);
  double var = 0, dot = 0, cross = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double fx = from[i].x - mfx, fy = from[i].y - mfy;
    const double tx = to[i].x - mtx, ty = to[i].y - mty;
    var += fx * fx + fy * fy;
    dot += fx * tx + fy * ty;
    cross += fx * ty - fy * tx;
  }
  double extent = 0;
  for (std::size_t i = 0; i < n; ++i) extent = std::max({extent, std::abs(from[i].x - mfx), std::abs(from[i].y - mfy)});
  if (!(var > 1e-20 * std::max(1.0, extent * extent))) return Affine{};
  Affine m;
  m.a = dot / var;   // s·cos θ
  m.d = cross / var; // s·sin θ
  m.b = -m.d;
  m.e = m.a;
  m.c = mtx - (m.a * mfx + m.b * mfy);
  m.f = mty - (m.d * mfx + m.e * mfy);
  return m;
}

std::optional<Affine> affine_from_triangles(const std::array<Point2f, 3>& from, const std::array<Point2f, 3>& to) {
  const double ux = from[1].x - from[0].x, uy = from[1].y - from[0].y;
  const double vx = from[2].x - from[0].x, vy = from[2].y - from[0].y;
  const double det = ux * vy - vx * uy;
  const double size2 = ux * ux + uy * uy + vx * vx + vy * vy;
  if (!std::isfinite(det) || std::abs(det) <= 1e-10 * size2) return std::nullopt;
  // A = T · F⁻¹ with F = [u v] (from edges) and T = [u' v'] (to edges).
  const double ia = vy / det, ib = -vx / det, id = -uy / det, ie = ux / det;
  const double tux = to[1].x - to[0].x, tuy = to[1].y - to[0].y;
  const double tvx = to[2].x - to[0].x, tvy = to[2].y - to[0].y;
  Affine m;
  m.a = tux * ia + tvx * id;
  m.b = tux * ib + tvx * ie;
  m.d = tuy * ia + tvy * id;
  m.e = tuy * ib + tvy * ie;
  m.c = to[0].x - (m.a * from[0].x + m.b * from[0].y);
  m.f = to[0].y - (m.d * from[0].x + m.e * from[0].y);
  return m;
}

namespace {

double cross(Point2f o, Point2f p, Point2f q) {
  return (static_cast<double>(p.x) - o.x) * (static_cast<double>(q.y) - o.y) -
         (static_cast<double>(p.y) - o.y) * (static_cast<double>(q.x) - o.x);
}

bool lex_less(Point2f p, Point2f q) { return p.x < q.x || (p.x == q.x && p.y < q.y); }

}  // namespace

std::vector<Point2f> convex_hull(const std::vector<Point2f>& points) {
  std::vector<Point2f> p;
  p.reserve(points.size());
  for (const Point2f& q : points)
    if (is_finite(q)) p.push_back(q);
  std::sort(p.begin(), p.end(), lex_less);
  p.erase(std::unique(p.begin(), p.end(), [](Point2f u, Point2f v) { return u.x == v.x && u.y == v.y; }), p.end());
  if (p.size() < 3) return p;
  std::vector<Point2f> hull(2 * p.size());
  std::size_t k = 0;
  for (std::size_t i = 0; i < p.size(); ++i) {  // lower chain
    while (k >= 2 && cross(hull[k - 2], hull[k - 1], p[i]) <= 0) --k;
    hull[k++] = p[i];
  }
  for (std::size_t i = p.size() - 1, lower = k + 1; i-- > 0;) {  // upper chain
    while (k >= lower && cross(hull[k - 2], hull[k - 1], p[i]) <= 0) --k;
    hull[k++] = p[i];
  }
  hull.resize(k - 1);  // the last point repeats the first
  return hull;
}

// Delaunay: a sweep builds some triangulation of the convex hull, then Lawson flips make
// every edge locally Delaunay. Both steps use exact integer predicates on points snapped
// to a 2^26 grid, so collinear and cocircular inputs (face boundary points on the image
// edges) never produce degenerate triangles or holes, which a finite Bowyer–Watson super-
// triangle cannot guarantee when a point lies on or next to a hull edge.
namespace {

__extension__ typedef __int128 Int128;

struct GridPoint {
  std::int64_t x, y;
  int index;  // into the caller's points
};

std::int64_t orient(const GridPoint& a, const GridPoint& b, const GridPoint& c) {
  return (b.x - a.x) * (c.y - a.y) - (b.y - a.y) * (c.x - a.x);
}

// > 0 when d is strictly inside the circumcircle of the counter-clockwise triangle abc.
bool in_circle(const GridPoint& a, const GridPoint& b, const GridPoint& c, const GridPoint& d) {
  const Int128 adx = a.x - d.x, ady = a.y - d.y;
  const Int128 bdx = b.x - d.x, bdy = b.y - d.y;
  const Int128 cdx = c.x - d.x, cdy = c.y - d.y;
  const Int128 al = adx * adx + ady * ady, bl = bdx * bdx + bdy * bdy, cl = cdx * cdx + cdy * cdy;
  const Int128 det = al * (bdx * cdy - bdy * cdx) - bl * (adx * cdy - ady * cdx) + cl * (adx * bdy - ady * bdx);
  return det > 0;
}

std::uint64_t edge_key(int u, int v) {
  return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(u)) << 32) | static_cast<std::uint32_t>(v);
}

class FlipMesh {
 public:
  explicit FlipMesh(const std::vector<GridPoint>& p) : p_(p) {}

  void add(int a, int b, int c) {  // counter-clockwise
    const int t = static_cast<int>(tris_.size());
    tris_.push_back({a, b, c});
    set_edges(t);
  }

  void make_delaunay() {
    std::vector<std::uint64_t> stack;
    stack.reserve(edges_.size());
    for (const auto& [key, t] : edges_) stack.push_back(key);
    while (!stack.empty()) {
      const std::uint64_t key = stack.back();
      stack.pop_back();
      const int u = static_cast<int>(key >> 32), v = static_cast<int>(key & 0xffffffffu);
      const auto it1 = edges_.find(key);
      const auto it2 = edges_.find(edge_key(v, u));
      if (it1 == edges_.end() || it2 == edges_.end()) continue;  // flipped away, or a hull edge
      const int t1 = it1->second, t2 = it2->second;
      const int w = third(t1, u, v), x = third(t2, v, u);
      if (!in_circle(p_[u], p_[v], p_[w], p_[x])) continue;
      // Quad u, x, v, w is convex (Lawson); replace diagonal u–v by x–w.
      edges_.erase(it1);
      edges_.erase(edge_key(v, u));
      tris_[t1] = {u, x, w};
      tris_[t2] = {x, v, w};
      set_edges(t1);
      set_edges(t2);
      stack.push_back(edge_key(u, x));
      stack.push_back(edge_key(x, v));
      stack.push_back(edge_key(v, w));
      stack.push_back(edge_key(w, u));
    }
  }

  const std::vector<std::array<int, 3>>& triangles() const { return tris_; }

 private:
  void set_edges(int t) {
    const auto& [a, b, c] = tris_[t];
    edges_[edge_key(a, b)] = t;
    edges_[edge_key(b, c)] = t;
    edges_[edge_key(c, a)] = t;
  }
  int third(int t, int u, int v) const {
    for (int k = 0; k < 3; ++k)
      if (tris_[t][k] != u && tris_[t][k] != v) return tris_[t][k];
    return -1;
  }

  const std::vector<GridPoint>& p_;
  std::vector<std::array<int, 3>> tris_;
  std::unordered_map<std::uint64_t, int> edges_;  // directed edge → triangle holding it
};

}  // namespace

std::vector<Triangle> delaunay(const std::vector<Point2f>& points) {
  double min_x = std::numeric_limits<double>::infinity(), min_y = min_x;
  double max_x = -min_x, max_y = -min_x;
  for (const Point2f& q : points) {
    if (!is_finite(q)) continue;
    min_x = std::min<double>(min_x, q.x);
    max_x = std::max<double>(max_x, q.x);
    min_y = std::min<double>(min_y, q.y);
    max_y = std::max<double>(max_y, q.y);
  }
  const double extent = std::max(max_x - min_x, max_y - min_y);
  if (!(extent > 0)) return {};
  // 2^26 keeps orient() within int64 and in_circle() within int128 with room to spare.
  const double grid = static_cast<double>(1 << 26) / extent;
  std::vector<GridPoint> p;
  p.reserve(points.size());
  for (std::size_t i = 0; i < points.size(); ++i) {
    const Point2f& q = points[i];
    if (!is_finite(q)) continue;
    p.push_back({std::llround((q.x - min_x) * grid), std::llround((q.y - min_y) * grid), static_cast<int>(i)});
  }
  std::stable_sort(p.begin(), p.end(), [](const GridPoint& u, const GridPoint& v) {
    return u.x < v.x || (u.x == v.x && u.y < v.y);
  });
  p.erase(std::unique(p.begin(), p.end(), [](const GridPoint& u, const GridPoint& v) { return u.x == v.x && u.y == v.y; }),
          p.end());
  const int n = static_cast<int>(p.size());
  if (n < 3) return {};

  int k = 2;  // first point not on the line through p[0], p[1]
  while (k < n && orient(p[0], p[1], p[k]) == 0) ++k;
  if (k == n) return {};

  FlipMesh mesh(p);
  std::vector<int> hull;  // counter-clockwise, collinear boundary points included
  const bool left = orient(p[0], p[1], p[k]) > 0;
  for (int i = 0; i + 1 < k; ++i) {
    if (left) mesh.add(i, i + 1, k);
    else mesh.add(i + 1, i, k);
  }
  if (left) {
    for (int i = 0; i <= k; ++i) hull.push_back(i);
  } else {
    for (int i = k - 1; i >= 0; --i) hull.push_back(i);
    hull.push_back(k);
  }

  // Each new point is lexicographically last, so it lies strictly outside the current hull
  // and sees a contiguous run of hull edges.
  std::vector<char> visible;
  std::vector<int> next_hull;
  for (int j = k + 1; j < n; ++j) {
    const int m = static_cast<int>(hull.size());
    visible.assign(m, 0);
    for (int i = 0; i < m; ++i) visible[i] = orient(p[hull[i]], p[hull[(i + 1) % m]], p[j]) < 0;
    int s = 0;
    while (s < m && !(visible[s] && !visible[(s + m - 1) % m])) ++s;
    if (s == m) continue;  // unreachable with exact predicates; keeps the loop bounded
    int run = 0;
    while (visible[(s + run) % m]) {
      const int a = hull[(s + run) % m], b = hull[(s + run + 1) % m];
      mesh.add(b, a, j);
      ++run;
    }
    next_hull.clear();
    for (int i = s + run; i <= s + m; ++i) next_hull.push_back(hull[i % m]);
    next_hull.push_back(j);
    hull.swap(next_hull);
  }

  mesh.make_delaunay();
  std::vector<Triangle> out;
  out.reserve(mesh.triangles().size());
  for (const auto& [a, b, c] : mesh.triangles()) out.push_back({p[a].index, p[b].index, p[c].index});
  return out;
}

}  // namespace fswap
