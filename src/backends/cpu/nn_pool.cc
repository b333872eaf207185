// MaxPool, AveragePool (1-D/2-D/3-D, dilations, ceil_mode via the inferred output shape; 2-D also
// channels_last, [N, H, W, C]) and the global pools; parallel over (batch, channel) planes.
#include <cmath>
#include <limits>

#include "backends/cpu/nn_kernels.h"
#include "core/parallel.h"

namespace fswap {
namespace {

// Window taps of one axis: the first tap inside [lo, hi) and the count of such taps.
struct TapRange {
  std::int64_t first = 0, count = 0;
};
TapRange taps_inside(std::int64_t start, std::int64_t kernel, std::int64_t dilation, std::int64_t lo,
                     std::int64_t hi) {
  std::int64_t k0 = 0;
  if (start < lo) k0 = (lo - start + dilation - 1) / dilation;
  std::int64_t k1 = kernel;  // exclusive
  if (start + (kernel - 1) * dilation >= hi) k1 = hi - start <= 0 ? 0 : (hi - start + dilation - 1) / dilation;
  return {k0, std::max<std::int64_t>(0, std::min(k1, kernel) - k0)};
}

// The (n, c) planes of X and Y, in either layout (channels_last), and their window geometry.
struct PoolPlanes {
  ChannelLayout x, y;
  WindowGeometry g;
};
Result<PoolPlanes> pool_planes(const char* op, const KernelArgs& args) {
  PoolPlanes p;
  FSWAP_ASSIGN_OR_RETURN(p.x, channel_layout(op, args.attrs, args.inputs[0].shape, 3));
  FSWAP_ASSIGN_OR_RETURN(p.y, channel_layout(op, args.attrs, args.outputs[0].shape, 3));
  FSWAP_ASSIGN_OR_RETURN(p.g, pool_geometry(op, args.attrs, p.x.channels_first, p.y.channels_first));
  return p;
}

// fn(p, xs, ys) for each plane p = n·C + c, xs and ys its first elements in X and Y; spatial
// index s of the plane is at xs[s · planes.x.spatial_stride] (ys likewise).
template <class Fn>
void for_each_plane(const PoolPlanes& planes, const float* xd, float* yd, Fn&& fn) {
  const WindowGeometry& g = planes.g;
  parallel_for(
      static_cast<int>(planes.x.batch * planes.x.channels),
      [&](int p0, int p1) {
        for (std::int64_t p = p0; p < p1; ++p) fn(p, xd + planes.x.plane_offset(p), yd + planes.y.plane_offset(p));
      },
      static_cast<int>(std::max<std::int64_t>(1, 4096 / std::max<std::int64_t>(1, g.out_size() * g.kernel_size()))));
}

}  // namespace

Status max_pool_kernel(const KernelArgs& args) {
  constexpr const char* kOp = "MaxPool";
  if (args.inputs[0].dtype != DType::kFloat32 || args.outputs[0].dtype != DType::kFloat32)
    return unsupported(std::string(kOp) + ": dtype " + dtype_name(args.inputs[0].dtype) + " (float32 only)");
  FSWAP_ASSIGN_OR_RETURN(const PoolPlanes planes, pool_planes(kOp, args));
  const WindowGeometry& g = planes.g;
  if (args.attrs.i("storage_order", 0) != 0) return unsupported(std::string(kOp) + ": storage_order 1");
  // Optional output 1: flat indices into X (row-major, storage_order 0).
  std::int64_t* indices = args.outputs.size() > 1 && args.outputs[1].data != nullptr
                              ? args.outputs[1].as<std::int64_t>()
                              : nullptr;
  if (indices != nullptr && args.outputs[1].dtype != DType::kInt64)
    return unsupported(std::string(kOp) + ": Indices dtype " + dtype_name(args.outputs[1].dtype));
  if (indices != nullptr && planes.x.spatial_stride != 1)
    return unsupported(std::string(kOp) + ": the Indices output with channels_last");
  const std::int64_t in_size = g.in_size(), out_size = g.out_size();
  const std::int64_t x_step = planes.x.spatial_stride, y_step = planes.y.spatial_stride;
  for_each_plane(planes, args.inputs[0].as<const float>(), args.outputs[0].as<float>(),
                 [&](std::int64_t p, const float* xs, float* ys) {
    std::int64_t o = 0;
    for (std::int64_t od = 0; od < g.out[0]; ++od) {
      const std::int64_t sd = od * g.stride[0] - g.pad_begin[0];
      const TapRange td = taps_inside(sd, g.kernel[0], g.dilation[0], 0, g.in[0]);
      for (std::int64_t oh = 0; oh < g.out[1]; ++oh) {
        const std::int64_t sh = oh * g.stride[1] - g.pad_begin[1];
        const TapRange th = taps_inside(sh, g.kernel[1], g.dilation[1], 0, g.in[1]);
        for (std::int64_t ow = 0; ow < g.out[2]; ++ow, ++o) {
          const std::int64_t sw = ow * g.stride[2] - g.pad_begin[2];
          const TapRange tw = taps_inside(sw, g.kernel[2], g.dilation[2], 0, g.in[2]);
          float best = -std::numeric_limits<float>::infinity();
          std::int64_t best_at = -1;
          for (std::int64_t kd = td.first; kd < td.first + td.count; ++kd) {
            const std::int64_t id = sd + kd * g.dilation[0];
            for (std::int64_t kh = th.first; kh < th.first + th.count; ++kh) {
              const std::int64_t row = (id * g.in[1] + sh + kh * g.dilation[1]) * g.in[2];
              for (std::int64_t kw = tw.first; kw < tw.first + tw.count; ++kw) {
                const std::int64_t at = row + sw + kw * g.dilation[2];
                if (xs[at * x_step] > best || best_at < 0) {
                  best = xs[at * x_step];
                  best_at = at;
                }
              }
            }
          }
          ys[o * y_step] = best;
          if (indices != nullptr) indices[p * out_size + o] = best_at < 0 ? 0 : p * in_size + best_at;
        }
      }
    }
  });
  return Status::ok();
}

Status average_pool_kernel(const KernelArgs& args) {
  constexpr const char* kOp = "AveragePool";
  FSWAP_RETURN_IF_ERROR(require_float32(args, kOp));
  FSWAP_ASSIGN_OR_RETURN(const PoolPlanes planes, pool_planes(kOp, args));
  const WindowGeometry& g = planes.g;
  const bool include_pad = args.attrs.i("count_include_pad", 0) != 0;
  const std::int64_t x_step = planes.x.spatial_stride, y_step = planes.y.spatial_stride;
  for_each_plane(planes, args.inputs[0].as<const float>(), args.outputs[0].as<float>(),
                 [&](std::int64_t, const float* xs, float* ys) {
    std::int64_t o = 0;
    for (std::int64_t od = 0; od < g.out[0]; ++od) {
      const std::int64_t sd = od * g.stride[0] - g.pad_begin[0];
      const TapRange td = taps_inside(sd, g.kernel[0], g.dilation[0], 0, g.in[0]);
      const std::int64_t nd = taps_inside(sd, g.kernel[0], g.dilation[0], -g.pad_begin[0], g.in[0] + g.pad_end[0]).count;
      for (std::int64_t oh = 0; oh < g.out[1]; ++oh) {
        const std::int64_t sh = oh * g.stride[1] - g.pad_begin[1];
        const TapRange th = taps_inside(sh, g.kernel[1], g.dilation[1], 0, g.in[1]);
        const std::int64_t nh = taps_inside(sh, g.kernel[1], g.dilation[1], -g.pad_begin[1], g.in[1] + g.pad_end[1]).count;
        for (std::int64_t ow = 0; ow < g.out[2]; ++ow, ++o) {
          const std::int64_t sw = ow * g.stride[2] - g.pad_begin[2];
          const TapRange tw = taps_inside(sw, g.kernel[2], g.dilation[2], 0, g.in[2]);
          float sum = 0;
          for (std::int64_t kd = td.first; kd < td.first + td.count; ++kd) {
            const std::int64_t id = sd + kd * g.dilation[0];
            for (std::int64_t kh = th.first; kh < th.first + th.count; ++kh) {
              const float* row = xs + ((id * g.in[1] + sh + kh * g.dilation[1]) * g.in[2] + sw) * x_step;
              for (std::int64_t kw = tw.first; kw < tw.first + tw.count; ++kw) sum += row[kw * g.dilation[2] * x_step];
            }
          }
          // count_include_pad counts the taps inside the padded input (not the ceil_mode overhang).
          const std::int64_t count =
              include_pad ? nd * nh *
                                taps_inside(sw, g.kernel[2], g.dilation[2], -g.pad_begin[2], g.in[2] + g.pad_end[2]).count
                          : td.count * th.count * tw.count;
          ys[o * y_step] = count > 0 ? sum / static_cast<float>(count) : 0.0f;
        }
      }
    }
  });
  return Status::ok();
}

namespace {

Status global_pool(const KernelArgs& args, const char* op, bool max) {
  FSWAP_RETURN_IF_ERROR(require_float32(args, op));
  const TensorView& x = args.inputs[0];
  if (x.shape.size() < 2) return nn_shape_error(op, "X must have rank >= 2");
  const std::int64_t planes = x.shape[0] * x.shape[1], plane = x.elements() / std::max<std::int64_t>(1, planes);
  const float* xd = x.as<const float>();
  float* yd = args.outputs[0].as<float>();
  parallel_for(
      static_cast<int>(planes),
      [&](int p0, int p1) {
        for (std::int64_t p = p0; p < p1; ++p) {
          const float* xs = xd + p * plane;
          if (max) {
            float m = -std::numeric_limits<float>::infinity();
            for (std::int64_t i = 0; i < plane; ++i) m = std::max(m, xs[i]);
            yd[p] = m;
          } else {
            double s = 0;
            for (std::int64_t i = 0; i < plane; ++i) s += xs[i];
            yd[p] = plane > 0 ? static_cast<float>(s / static_cast<double>(plane)) : 0.0f;
          }
        }
      },
      static_cast<int>(std::max<std::int64_t>(1, 16384 / std::max<std::int64_t>(1, plane))));
  return Status::ok();
}

}  // namespace

Status global_average_pool_kernel(const KernelArgs& args) { return global_pool(args, "GlobalAveragePool", false); }
Status global_max_pool_kernel(const KernelArgs& args) { return global_pool(args, "GlobalMaxPool", true); }

}  // namespace fswap
