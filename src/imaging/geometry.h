// 2-D geometry for faces: points, affine transforms, similarity fitting, hulls, Delaunay.
//
//   Affine m = estimate_similarity(face_points, template_points);  // least squares
//   Point2f p = m.apply(q);
//   std::vector<Triangle> tris = delaunay(points);                   // indices into points
#pragma once

#include <array>
#include <cmath>
#include <optional>
#include <vector>

namespace fswap {

struct Point2f {
  float x = 0, y = 0;
};

// Both coordinates are numbers (not NaN or infinite).
inline bool is_finite(const Point2f& p) { return std::isfinite(p.x) && std::isfinite(p.y); }

// 2×3 affine transform: [x' y']ᵀ = [[a b c] [d e f]] · [x y 1]ᵀ.
struct Affine {
  double a = 1, b = 0, c = 0;
  double d = 0, e = 1, f = 0;

  Point2f apply(Point2f p) const;
  // The inverse; nullopt when the transform is singular.
  std::optional<Affine> inverse() const;
  // (this ∘ first): applies `first`, then this.
  Affine after(const Affine& first) const;
  // Uniform scale factor of a similarity (sqrt of |det|).
  double scale() const;
};

// Least-squares similarity (rotation, uniform scale, translation; no reflection) mapping
// from[i] to to[i] (Umeyama). Needs at least 2 distinct points; identity otherwise.
Affine estimate_similarity(const std::vector<Point2f>& from, const std::vector<Point2f>& to);

// The affine transform mapping triangle `from` onto triangle `to`; nullopt when degenerate.
std::optional<Affine> affine_from_triangles(const std::array<Point2f, 3>& from, const std::array<Point2f, 3>& to);

// Convex hull (Andrew's monotone chain): vertices only, no repeated or collinear points,
// counter-clockwise in image coordinates, i.e. positive shoelace area with y pointing down
// (which looks clockwise on screen). Fewer than 3 distinct points come back as they are.
std::vector<Point2f> convex_hull(const std::vector<Point2f>& points);

struct Triangle {
  int a = 0, b = 0, c = 0;  // indices into the point list
};

// Delaunay triangulation of the points; duplicate points are ignored (the first is used).
// Triangles have positive area, the same orientation as convex_hull, reference only input
// indices, and together cover the convex hull (collinear hull points included).
// Exact integer predicates on a 2^26 grid over the points' extent, so collinear and
// cocircular inputs are safe; all-collinear input gives no triangles. O(n²) worst case.
std::vector<Triangle> delaunay(const std::vector<Point2f>& points);

}  // namespace fswap
