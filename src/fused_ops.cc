// Fused float32 CPU kernels for the BERT encoder, called through mindspore.ops.Custom(func_type="aot").
//
// src/fused_ops.py compiles this file with g++ at first use and falls back to standard MindSpore
// operators when it cannot (no compiler, not a CPU device). Each kernel has the MindSpore AOT
// signature
//     int Kernel(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
//                void *stream, void *extra)
// with the inputs first, then the outputs, in params. "Rows" are all leading dimensions of the
// first input; the last dimension is the row length. The math is the textbook formula of each
// operator in float32 (exact erf GELU, two-pass LayerNorm, max-shifted softmax); only the
// schedule differs from the unfused operators.
//
// Dropout multiplies by mask / (1 - p) with mask in {0, 1} (so nan * 0 stays nan, as in
// MindSpore's Dropout). Masks come from a counter-based hash: element i of a call with seed s is
// kept when the (i mod 2)-th 32-bit half of SplitMix64(s * 0x9E3779B97F4A7C15 + i / 2) is
// >= p * 2^32. The seed is an int32 tensor drawn by a MindSpore random operator in the graph, so
// masks follow mindspore.set_seed; every mask is returned to the graph (uint8, 1 = kept) for the
// backward pass.
//
// Each kernel splits its rows (or attention heads) into blocks that the threads take in turn.
// Scalars read inside the per-thread lambdas are locals, not closure members: GCC cannot prove
// that float stores do not alias a captured float, and then does not vectorise.

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#ifndef BERT_ZOO_SCALAR_MATH
// The vector variants of erff and expf in glibc's libmvec (2.35 and newer): with these
// declarations GCC calls them from "omp simd" loops. Built with -DBERT_ZOO_SCALAR_MATH when
// the C library has no libmvec erff.
#pragma omp declare simd notinbranch
extern "C" float erff(float);
#pragma omp declare simd notinbranch
extern "C" float expf(float);
#endif

namespace {

constexpr float kInvSqrt2 = 0.70710678118654752440f;
constexpr float kInvSqrt2Pi = 0.39894228040143267794f;

int64_t NumElements(int ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int i = 0; i < ndim; ++i) n *= shape[i];
  return n;
}

int NumThreads() {
  static const int threads = [] {
    const char *env = std::getenv("BERT_ZOO_KERNEL_THREADS");
    int t = env ? std::atoi(env) : 0;
    if (t <= 0) {
      cpu_set_t set;
      t = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;
    }
    return std::max(1, std::min(t, 64));
  }();
  return threads;
}

// [0, n) cut into blocks: about 8 per thread, at least min_chunk items per thread (one block in
// all when n is small or there is one thread).
struct Blocks {
  int64_t n, size, count;
  Blocks(int64_t n_, int64_t min_chunk) : n(n_) {
    const int64_t by_size = n / std::max<int64_t>(1, min_chunk);
    const int64_t threads = std::max<int64_t>(1, std::min<int64_t>(NumThreads(), by_size));
    size = threads == 1 ? std::max<int64_t>(1, n) : std::max<int64_t>(1, n / (8 * threads));
    count = (n + size - 1) / size;
  }
};

// Runs f(begin, end, block) for every block, on up to NumThreads() threads (the caller and
// workers) taking blocks from a shared counter: a thread that gets less CPU (MindSpore's pool
// threads spin-wait while a custom kernel runs) holds the others up by one block, not by half
// of the work. Per-block partial results (indexed by block) summed in block order do not depend
// on which thread ran which block, so the kernels are deterministic.
template <class F>
void ParallelFor(const Blocks &blocks, F &&f) {
  const int threads = static_cast<int>(std::min<int64_t>(NumThreads(), blocks.count));
  std::atomic<int64_t> next{0};
  auto work = [&f, &next, &blocks] {
    for (int64_t b = next.fetch_add(1); b < blocks.count; b = next.fetch_add(1)) {
      f(b * blocks.size, std::min(blocks.n, (b + 1) * blocks.size), b);
    }
  };
  std::vector<std::thread> workers;
  for (int t = 1; t < threads; ++t) workers.emplace_back(work);
  work();
  for (auto &w : workers) w.join();
}

inline uint64_t SplitMix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// Dropout mask bytes for elements [begin, end) of a call: two 32-bit draws per 64-bit hash.
void DropoutMask(uint64_t seed, float drop_prob, int64_t begin, int64_t end, uint8_t *mask) {
  const uint64_t threshold = static_cast<uint64_t>(static_cast<double>(drop_prob) * 4294967296.0);
  const uint64_t base = seed * 0x9E3779B97F4A7C15ULL;
  int64_t i = begin;
  if (i & 1) {  // odd start: the high half of the previous pair
    mask[i] = (SplitMix64(base + static_cast<uint64_t>(i >> 1)) >> 32) >= threshold;
    ++i;
  }
  const int64_t pairs_end = (end - i) / 2;
  uint8_t *m = mask + i;
  const uint64_t first = static_cast<uint64_t>(i >> 1);
#pragma omp simd
  for (int64_t k = 0; k < pairs_end; ++k) {
    uint64_t h = SplitMix64(base + first + static_cast<uint64_t>(k));
    m[2 * k] = (h & 0xFFFFFFFFULL) >= threshold;
    m[2 * k + 1] = (h >> 32) >= threshold;
  }
  i += 2 * pairs_end;
  if (i < end) mask[i] = (SplitMix64(base + static_cast<uint64_t>(i >> 1)) & 0xFFFFFFFFULL) >= threshold;
}

inline float DropProb(const float *keep_prob) { return 1.0f - keep_prob[0]; }

// The factor on the kept elements: 1 / keep_prob, or 1 without dropout.
inline float KeepScale(const float *keep_prob) { return DropProb(keep_prob) > 0.0f ? 1.0f / keep_prob[0] : 1.0f; }

// The mask bytes of elements [begin, end) of a call with this seed: DropoutMask's, or all 1 when drop is 0.
inline void FillDropoutMask(int32_t seed, float drop, int64_t begin, int64_t end, uint8_t *mask) {
  if (drop > 0.0f) {
    DropoutMask(static_cast<uint32_t>(seed), drop, begin, end, mask);
  } else {
    std::fill(mask + begin, mask + end, uint8_t{1});
  }
}

// out[j] = sum over blocks c of partial[c * stride + offset + j], for j < cols (per-block column
// sums, float or double, added up in double).
template <class T>
void ReduceColumns(const std::vector<T> &partial, int64_t blocks, int64_t stride, int64_t offset, int64_t cols,
                   float *out) {
  for (int64_t j = 0; j < cols; ++j) {
    double s = 0.0;
    for (int64_t c = 0; c < blocks; ++c) s += partial[c * stride + offset + j];
    out[j] = static_cast<float>(s);
  }
}

// mean and 1/sqrt(var + eps) of one row (two passes, float lanes, double combine).
inline void RowMoments(const float *z, int64_t h, float eps, float *mean_out, float *rstd_out) {
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < h; ++j) sum += z[j];
  const float mean = sum / static_cast<float>(h);
  float sq = 0.0f;
#pragma omp simd reduction(+ : sq)
  for (int64_t j = 0; j < h; ++j) {
    float d = z[j] - mean;
    sq += d * d;
  }
  *mean_out = mean;
  *rstd_out = 1.0f / std::sqrt(sq / static_cast<float>(h) + eps);
}

// d(LayerNorm input) of one row given g = dy * gamma and xhat: rstd * (g - mean(g) - xhat * mean(g * xhat)).
inline void RowLayerNormBackward(const float *g, const float *z, float mean, float rstd, int64_t h, float *dz) {
  float sum_g = 0.0f, sum_gx = 0.0f;
#pragma omp simd reduction(+ : sum_g, sum_gx)
  for (int64_t j = 0; j < h; ++j) {
    float xhat = (z[j] - mean) * rstd;
    sum_g += g[j];
    sum_gx += g[j] * xhat;
  }
  const float mg = sum_g / static_cast<float>(h), mgx = sum_gx / static_cast<float>(h);
#pragma omp simd
  for (int64_t j = 0; j < h; ++j) {
    float xhat = (z[j] - mean) * rstd;
    dz[j] = rstd * (g[j] - mg - xhat * mgx);
  }
}

// One row of dropout(softmax(x * scale + bias)) over its first n entries: probs = the softmax and
// out = probs * mask * keep_scale. work (which may be x or probs) holds x * scale + bias, then its
// exponentials shifted by the maximum.
inline void SoftmaxDropoutRow(const float *x, const float *bias, float scale, const uint8_t *mask, float keep_scale,
                              int64_t n, float *work, float *probs, float *out) {
  float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
  for (int64_t j = 0; j < n; ++j) {
    float v = x[j] * scale + bias[j];
    work[j] = v;
    mx = std::max(mx, v);
  }
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < n; ++j) {
    float e = expf(work[j] - mx);
    work[j] = e;
    sum += e;
  }
  const float inv = 1.0f / sum;
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) {
    float p = work[j] * inv;
    probs[j] = p;
    out[j] = p * (mask[j] * keep_scale);
  }
}

// The gradient of SoftmaxDropoutRow at x (into dx, which may be dout) from the one at out (dout): with
// dp = dout * mask * keep_scale, the gradient at probs, dx = scale * probs * (dp - sum_j dp probs). With
// kDropped, dropped gets SoftmaxDropoutRow's out (probs * mask * keep_scale) on the way.
template <bool kDropped>
inline void SoftmaxDropoutGradRow(const float *dout, const float *probs, const uint8_t *mask, float keep_scale,
                                  float scale, int64_t n, float *dx, float *dropped) {
  float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
  for (int64_t j = 0; j < n; ++j) {
    const float keep = mask[j] * keep_scale;
    if constexpr (kDropped) dropped[j] = probs[j] * keep;
    float dp = dout[j] * keep;
    dx[j] = dp;
    dot += dp * probs[j];
  }
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) dx[j] = scale * probs[j] * (dx[j] - dot);
}

// Register tile of Gemm: kTileRows x kTileCols accumulators (16 AVX-512 registers).
constexpr int64_t kTileRows = 8;
constexpr int64_t kTileCols = 32;

inline int64_t RoundUp(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// c[m x n] = op(a) b[k x n], op(a) = a [m x k] or, with kTransposeA, the transpose of a [k x m];
// row-major with leading dimensions; m % kTileRows == 0 and n % kTileCols == 0 (callers pad
// their buffers with zeros).
template <bool kTransposeA>
void Gemm(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *b, int64_t ldb, float *c,
          int64_t ldc) {
  for (int64_t i0 = 0; i0 < m; i0 += kTileRows) {
    for (int64_t j0 = 0; j0 < n; j0 += kTileCols) {
      float acc[kTileRows][kTileCols] = {};
      for (int64_t p = 0; p < k; ++p) {
        const float *br = b + p * ldb + j0;
#pragma GCC unroll 8
        for (int64_t r = 0; r < kTileRows; ++r) {
          const float av = kTransposeA ? a[p * lda + i0 + r] : a[(i0 + r) * lda + p];
#pragma omp simd
          for (int64_t jj = 0; jj < kTileCols; ++jj) acc[r][jj] += av * br[jj];
        }
      }
      for (int64_t r = 0; r < kTileRows; ++r) {
#pragma omp simd
        for (int64_t jj = 0; jj < kTileCols; ++jj) c[(i0 + r) * ldc + j0 + jj] = acc[r][jj];
      }
    }
  }
}

// dst[rows x cols] (leading dimension ld) = x[rows, 0:cols] (row stride h) + bias, or its transpose
// dst[cols x rows] when transpose.
inline void LoadHead(const float *x, const float *bias, int64_t rows, int64_t h, int64_t cols, bool transpose,
                     float *dst, int64_t ld) {
  for (int64_t i = 0; i < rows; ++i) {
    const float *xr = x + i * h;
    if (transpose) {
      for (int64_t c = 0; c < cols; ++c) dst[c * ld + i] = xr[c] + bias[c];
    } else {
#pragma omp simd
      for (int64_t c = 0; c < cols; ++c) dst[i * ld + c] = xr[c] + bias[c];
    }
  }
}

// dst[i * ld_dst + c] = src[i * ld_src + c] for i < rows, c < cols.
inline void CopyBlock(const float *src, int64_t ld_src, int64_t rows, int64_t cols, float *dst, int64_t ld_dst) {
  for (int64_t i = 0; i < rows; ++i) {
#pragma omp simd
    for (int64_t c = 0; c < cols; ++c) dst[i * ld_dst + c] = src[i * ld_src + c];
  }
}

// dst[k] += src[k] for k < n.
inline void AddTo(const float *src, int64_t n, float *dst) {
#pragma omp simd
  for (int64_t k = 0; k < n; ++k) dst[k] += src[k];
}

}  // namespace

extern "C" {

// ---------------------------------------------------------------------------------------------
// GELU (exact, erf) of x + bias.
//   BiasGelu:      x [.., C], bias [C] -> y [.., C]
//   BiasGeluGrad:  x [.., C], bias [C], dy [.., C] -> dx [.., C], dbias [C]
// ---------------------------------------------------------------------------------------------
int BiasGelu(int nparam, void **params, int *ndims, int64_t **shapes, const char **, void *, void *) {
  if (nparam != 3) return 1;
  const float *x = static_cast<const float *>(params[0]);
  const float *bias = static_cast<const float *>(params[1]);
  float *y = static_cast<float *>(params[2]);
  const int64_t cols = shapes[0][ndims[0] - 1];
  const int64_t rows = NumElements(ndims[0], shapes[0]) / cols;
  ParallelFor(Blocks(rows, std::max<int64_t>(1, 16384 / cols)), [=](int64_t r0, int64_t r1, int64_t) {
    for (int64_t r = r0; r < r1; ++r) {
      const float *xr = x + r * cols;
      float *yr = y + r * cols;
#pragma omp simd
      for (int64_t j = 0; j < cols; ++j) {
        float u = xr[j] + bias[j];
        yr[j] = 0.5f * u * (1.0f + erff(u * kInvSqrt2));
      }
    }
  });
  return 0;
}

int BiasGeluGrad(int nparam, void **params, int *ndims, int64_t **shapes, const char **, void *, void *) {
  if (nparam != 5) return 1;
  const float *x = static_cast<const float *>(params[0]);
  const float *bias = static_cast<const float *>(params[1]);
  const float *dy = static_cast<const float *>(params[2]);
  float *dx = static_cast<float *>(params[3]);
  float *dbias = static_cast<float *>(params[4]);
  const int64_t cols = shapes[0][ndims[0] - 1];
  const int64_t rows = NumElements(ndims[0], shapes[0]) / cols;
  const Blocks blocks(rows, std::max<int64_t>(1, 16384 / cols));
  std::vector<double> partial(static_cast<size_t>(blocks.count * cols), 0.0);
  double *const partial_data = partial.data();
  ParallelFor(blocks, [=](int64_t r0, int64_t r1, int64_t c) {
    double *acc = partial_data + c * cols;
    for (int64_t r = r0; r < r1; ++r) {
      const float *xr = x + r * cols;
      const float *dyr = dy + r * cols;
      float *dxr = dx + r * cols;
#pragma omp simd
      for (int64_t j = 0; j < cols; ++j) {
        float u = xr[j] + bias[j];
        float cdf = 0.5f * (1.0f + erff(u * kInvSqrt2));
        float pdf = kInvSqrt2Pi * expf(-0.5f * u * u);
        float g = dyr[j] * (cdf + u * pdf);
        dxr[j] = g;
        acc[j] += g;
      }
    }
  });
  ReduceColumns(partial, blocks.count, cols, 0, cols, dbias);
  return 0;
}

// ---------------------------------------------------------------------------------------------
// LayerNorm(dropout(x + bias) + residual): the end of every attention and feed-forward block.
//   DropoutAddLayerNorm:  x, bias [H], residual, gamma [H], beta [H], eps [1], keep_prob [1], seed [1] int32
//                         -> y, z (the LayerNorm input), mean [rows], rstd [rows], mask uint8
//   DropoutAddLayerNormGrad:  dy, z, mean, rstd, gamma, mask, keep_prob
//                         -> dx, dresidual, dbias [H], dgamma [H], dbeta [H]
// ---------------------------------------------------------------------------------------------
int DropoutAddLayerNorm(int nparam, void **params, int *ndims, int64_t **shapes, const char **, void *, void *) {
  if (nparam != 13) return 1;
  const float *x = static_cast<const float *>(params[0]);
  const float *bias = static_cast<const float *>(params[1]);
  const float *residual = static_cast<const float *>(params[2]);
  const float *gamma = static_cast<const float *>(params[3]);
  const float *beta = static_cast<const float *>(params[4]);
  const float *keep_prob = static_cast<const float *>(params[6]);
  const int32_t seed = static_cast<const int32_t *>(params[7])[0];
  float *y = static_cast<float *>(params[8]);
  float *z = static_cast<float *>(params[9]);
  float *mean = static_cast<float *>(params[10]);
  float *rstd = static_cast<float *>(params[11]);
  uint8_t *mask = static_cast<uint8_t *>(params[12]);
  const int64_t h = shapes[0][ndims[0] - 1];
  const int64_t rows = NumElements(ndims[0], shapes[0]) / h;
  ParallelFor(Blocks(rows, std::max<int64_t>(1, 8192 / h)), [=](int64_t r0, int64_t r1, int64_t) {
    // locals, see the header
    const float eps = static_cast<const float *>(params[5])[0];
    const float drop = DropProb(keep_prob);
    const float scale = KeepScale(keep_prob);
    FillDropoutMask(seed, drop, r0 * h, r1 * h, mask);
    for (int64_t r = r0; r < r1; ++r) {
      const float *xr = x + r * h;
      const float *rr = residual + r * h;
      const uint8_t *mr = mask + r * h;
      float *zr = z + r * h;
      if (drop > 0.0f) {
#pragma omp simd
        for (int64_t j = 0; j < h; ++j) zr[j] = (xr[j] + bias[j]) * (mr[j] * scale) + rr[j];
      } else {
#pragma omp simd
        for (int64_t j = 0; j < h; ++j) zr[j] = (xr[j] + bias[j]) + rr[j];
      }
      float m, s;
      RowMoments(zr, h, eps, &m, &s);
      mean[r] = m;
      rstd[r] = s;
      float *yr = y + r * h;
#pragma omp simd
      for (int64_t j = 0; j < h; ++j) yr[j] = (zr[j] - m) * s * gamma[j] + beta[j];
    }
  });
  return 0;
}

int DropoutAddLayerNormGrad(int nparam, void **params, int *ndims, int64_t **shapes, const char **, void *,
                            void *) {
  if (nparam != 12) return 1;
  const float *dy = static_cast<const float *>(params[0]);
  const float *z = static_cast<const float *>(params[1]);
  const float *mean = static_cast<const float *>(params[2]);
  const float *rstd = static_cast<const float *>(params[3]);
  const float *gamma = static_cast<const float *>(params[4]);
  const uint8_t *mask = static_cast<const uint8_t *>(params[5]);
  const float *keep_prob = static_cast<const float *>(params[6]);
  float *dx = static_cast<float *>(params[7]);
  float *dres = static_cast<float *>(params[8]);
  float *dbias = static_cast<float *>(params[9]);
  float *dgamma = static_cast<float *>(params[10]);
  float *dbeta = static_cast<float *>(params[11]);
  const int64_t h = shapes[0][ndims[0] - 1];
  const int64_t rows = NumElements(ndims[0], shapes[0]) / h;
  const Blocks blocks(rows, std::max<int64_t>(1, 8192 / h));
  std::vector<double> partial(static_cast<size_t>(blocks.count * 3 * h), 0.0);
  double *const partial_data = partial.data();
  ParallelFor(blocks, [=](int64_t r0, int64_t r1, int64_t c) {
    // locals, see the header
    const float scale = KeepScale(keep_prob);
    double *acc_bias = partial_data + c * 3 * h;
    double *acc_gamma = acc_bias + h;
    double *acc_beta = acc_gamma + h;
    std::vector<float> g(static_cast<size_t>(h));
    for (int64_t r = r0; r < r1; ++r) {
      const float *dyr = dy + r * h;
      const float *zr = z + r * h;
      const uint8_t *mr = mask + r * h;
      const float m = mean[r], s = rstd[r];
      float *dzr = dres + r * h;
      float *dxr = dx + r * h;
#pragma omp simd
      for (int64_t j = 0; j < h; ++j) {
        g[j] = dyr[j] * gamma[j];
        acc_gamma[j] += dyr[j] * ((zr[j] - m) * s);
        acc_beta[j] += dyr[j];
      }
      RowLayerNormBackward(g.data(), zr, m, s, h, dzr);
#pragma omp simd
      for (int64_t j = 0; j < h; ++j) {
        float d = dzr[j] * (mr[j] * scale);
        dxr[j] = d;
        acc_bias[j] += d;
      }
    }
  });
  ReduceColumns(partial, blocks.count, 3 * h, 0, h, dbias);
  ReduceColumns(partial, blocks.count, 3 * h, h, h, dgamma);
  ReduceColumns(partial, blocks.count, 3 * h, 2 * h, h, dbeta);
  return 0;
}

// ---------------------------------------------------------------------------------------------
// dropout(LayerNorm(x)): the end of the embeddings.
//   LayerNormDropout:      x, gamma [H], beta [H], eps [1], keep_prob [1], seed [1] int32
//                          -> y, mean [rows], rstd [rows], mask uint8
//   LayerNormDropoutGrad:  dy, x, mean, rstd, gamma, mask, keep_prob -> dx, dgamma [H], dbeta [H]
// ---------------------------------------------------------------------------------------------
int LayerNormDropout(int nparam, void **params, int *ndims, int64_t **shapes, const char **, void *, void *) {
  if (nparam != 10) return 1;
  const float *x = static_cast<const float *>(params[0]);
  const float *gamma = static_cast<const float *>(params[1]);
  const float *beta = static_cast<const float *>(params[2]);
  const float *keep_prob = static_cast<const float *>(params[4]);
  const int32_t seed = static_cast<const int32_t *>(params[5])[0];
  float *y = static_cast<float *>(params[6]);
  float *mean = static_cast<float *>(params[7]);
  float *rstd = static_cast<float *>(params[8]);
  uint8_t *mask = static_cast<uint8_t *>(params[9]);
  const int64_t h = shapes[0][ndims[0] - 1];
  const int64_t rows = NumElements(ndims[0], shapes[0]) / h;
  ParallelFor(Blocks(rows, std::max<int64_t>(1, 8192 / h)), [=](int64_t r0, int64_t r1, int64_t) {
    // locals, see the header
    const float eps = static_cast<const float *>(params[3])[0];
    const float drop = DropProb(keep_prob);
    const float scale = KeepScale(keep_prob);
    FillDropoutMask(seed, drop, r0 * h, r1 * h, mask);
    for (int64_t r = r0; r < r1; ++r) {
      const float *xr = x + r * h;
      const uint8_t *mr = mask + r * h;
      float *yr = y + r * h;
      float m, s;
      RowMoments(xr, h, eps, &m, &s);
      mean[r] = m;
      rstd[r] = s;
      if (drop > 0.0f) {
#pragma omp simd
        for (int64_t j = 0; j < h; ++j) yr[j] = ((xr[j] - m) * s * gamma[j] + beta[j]) * (mr[j] * scale);
      } else {
#pragma omp simd
        for (int64_t j = 0; j < h; ++j) yr[j] = (xr[j] - m) * s * gamma[j] + beta[j];
      }
    }
  });
  return 0;
}

int LayerNormDropoutGrad(int nparam, void **params, int *ndims, int64_t **shapes, const char **, void *, void *) {
  if (nparam != 10) return 1;
  const float *dy = static_cast<const float *>(params[0]);
  const float *x = static_cast<const float *>(params[1]);
  const float *mean = static_cast<const float *>(params[2]);
  const float *rstd = static_cast<const float *>(params[3]);
  const float *gamma = static_cast<const float *>(params[4]);
  const uint8_t *mask = static_cast<const uint8_t *>(params[5]);
  const float *keep_prob = static_cast<const float *>(params[6]);
  float *dx = static_cast<float *>(params[7]);
  float *dgamma = static_cast<float *>(params[8]);
  float *dbeta = static_cast<float *>(params[9]);
  const int64_t h = shapes[0][ndims[0] - 1];
  const int64_t rows = NumElements(ndims[0], shapes[0]) / h;
  const Blocks blocks(rows, std::max<int64_t>(1, 8192 / h));
  std::vector<double> partial(static_cast<size_t>(blocks.count * 2 * h), 0.0);
  double *const partial_data = partial.data();
  ParallelFor(blocks, [=](int64_t r0, int64_t r1, int64_t c) {
    // locals, see the header
    const float scale = KeepScale(keep_prob);
    double *acc_gamma = partial_data + c * 2 * h;
    double *acc_beta = acc_gamma + h;
    std::vector<float> g(static_cast<size_t>(h));
    for (int64_t r = r0; r < r1; ++r) {
      const float *dyr = dy + r * h;
      const float *xr = x + r * h;
      const uint8_t *mr = mask + r * h;
      const float m = mean[r], s = rstd[r];
#pragma omp simd
      for (int64_t j = 0; j < h; ++j) {
        float d = dyr[j] * (mr[j] * scale);  // gradient at the LayerNorm output
        acc_gamma[j] += d * ((xr[j] - m) * s);
        acc_beta[j] += d;
        g[j] = d * gamma[j];
      }
      RowLayerNormBackward(g.data(), xr, m, s, h, dx + r * h);
    }
  });
  ReduceColumns(partial, blocks.count, 2 * h, 0, h, dgamma);
  ReduceColumns(partial, blocks.count, 2 * h, h, h, dbeta);
  return 0;
}

// ---------------------------------------------------------------------------------------------
// dropout(softmax(scores * scale + mask_bias)) over the last axis: attention probabilities.
//   MaskedSoftmaxDropout:      scores [B, .., T], mask_bias [B, T], scale [1], keep_prob [1], seed [1] int32
//                              -> out, probs (before dropout), mask uint8 (all [B, .., T])
//   MaskedSoftmaxDropoutGrad:  dout, probs, mask, scale, keep_prob -> dscores
// mask_bias is added to every row of the same batch element.
// ---------------------------------------------------------------------------------------------
int MaskedSoftmaxDropout(int nparam, void **params, int *ndims, int64_t **shapes, const char **, void *, void *) {
  if (nparam != 8) return 1;
  const float *scores = static_cast<const float *>(params[0]);
  const float *mask_bias = static_cast<const float *>(params[1]);
  const float *keep_prob = static_cast<const float *>(params[3]);
  const int32_t seed = static_cast<const int32_t *>(params[4])[0];
  float *out = static_cast<float *>(params[5]);
  float *probs = static_cast<float *>(params[6]);
  uint8_t *mask = static_cast<uint8_t *>(params[7]);
  const int64_t t = shapes[0][ndims[0] - 1];
  const int64_t rows = NumElements(ndims[0], shapes[0]) / t;
  const int64_t batch = NumElements(ndims[1], shapes[1]) / t;
  if (batch <= 0 || rows % batch != 0) return 2;
  const int64_t rows_per_batch = rows / batch;
  ParallelFor(Blocks(rows, std::max<int64_t>(1, 8192 / t)), [=](int64_t r0, int64_t r1, int64_t) {
    // locals, see the header
    const float scale = static_cast<const float *>(params[2])[0];
    const float drop = DropProb(keep_prob);
    const float keep_scale = KeepScale(keep_prob);
    FillDropoutMask(seed, drop, r0 * t, r1 * t, mask);
    for (int64_t r = r0; r < r1; ++r) {
      float *pr = probs + r * t;
      SoftmaxDropoutRow(scores + r * t, mask_bias + (r / rows_per_batch) * t, scale, mask + r * t, keep_scale, t,
                        pr, pr, out + r * t);
    }
  });
  return 0;
}

int MaskedSoftmaxDropoutGrad(int nparam, void **params, int *ndims, int64_t **shapes, const char **, void *,
                             void *) {
  if (nparam != 6) return 1;
  const float *dout = static_cast<const float *>(params[0]);
  const float *probs = static_cast<const float *>(params[1]);
  const uint8_t *mask = static_cast<const uint8_t *>(params[2]);
  const float *keep_prob = static_cast<const float *>(params[4]);
  float *dscores = static_cast<float *>(params[5]);
  const int64_t t = shapes[0][ndims[0] - 1];
  const int64_t rows = NumElements(ndims[0], shapes[0]) / t;
  ParallelFor(Blocks(rows, std::max<int64_t>(1, 8192 / t)), [=](int64_t r0, int64_t r1, int64_t) {
    // locals, see the header
    const float scale = static_cast<const float *>(params[3])[0];
    const float keep_scale = KeepScale(keep_prob);
    for (int64_t r = r0; r < r1; ++r) {
      SoftmaxDropoutGradRow<false>(dout + r * t, probs + r * t, mask + r * t, keep_scale, scale, t, dscores + r * t,
                                   nullptr);
    }
  });
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Multi-head self-attention from the fused Q|K|V projection in token layout (no head transposes):
//   ctx[b, i, n*D + d] = sum_j dropout(P)[b, n, i, j] V[b, j, n*D + d]
//   P[b, n, i, :] = softmax(scale * sum_d Q[b, i, n*D + d] K[b, :, n*D + d] + mask_bias[b, :])
// where Q, K, V are the three H-column blocks of qkv + bias.
//   SelfAttention:      qkv [B, S, 3H], bias [3H], mask_bias [B, S], heads [1] int32, scale [1], keep_prob [1],
//                       seed [1] int32 -> context [B, S, H], probs [B, N, S, S], mask uint8 [B, N, S, S]
//   SelfAttentionGrad:  dcontext [B, S, H], qkv, bias, probs, mask, heads, scale, keep_prob
//                       -> dqkv [B, S, 3H], dbias [3H]
// The dropout mask has the layout and the hash of MaskedSoftmaxDropout's.
//
// Keys after the last unmasked one (mask_bias > -5000; padding) are skipped: their scores carry
// -10000, so exp(score - max) underflows to exactly 0 in float32 and their probabilities, their
// share of the context and their gradients are 0 whatever is computed. Only the sums' order (and
// so the last bit) can differ from the full computation. Every query row is still computed.
// SelfAttentionGrad, which has no mask_bias, finds the key range from the probabilities: one past
// the last nonzero one of the head (never past the forward's range).
//
// NEZHA's self-attention with relative positions, the same with one table T [R, D] (R = 2K + 1)
// shared by every head; rel(i, j) = clip(j - i, -K, K) + K:
//   z[i, j] = (Q_i·K_j + Q_i·T[rel(i, j)]) * scale + mask_bias[j],  P = softmax_j(z),  Pd = dropout(P)
//   ctx_i = sum_j Pd[i, j] V_j + sum_j Pd[i, j] T[rel(i, j)]
// Per head the score term is a gather from QT = Q Tᵀ [S, R] (one GEMM), and the context term is W T
// with W[i, r] = sum of Pd[i, j] over the j with rel(i, j) = r (one j per bin for |j - i| < K; bins 0
// and 2K collect the clipped tails). Only the table rows that some pair (i, j) reaches enter the
// GEMMs: first = max(0, K - S + 1) to min(2K, K + S - 1). With dS = d(Q·K_j + Q·T[rel]) (the softmax
// gradient times scale) and dSb, W the bucketings of dS and Pd:
//   d(Pd)[i, j] = dC_i·V_j + dCT[i, rel(i, j)] (dCT = dC Tᵀ);  dQ = dS K + dSb T;  dK = dSᵀ Q;
//   dV = Pdᵀ dC;  dT = sum over batch and heads of dSbᵀ Q + Wᵀ dC.
//   RelativeSelfAttention:      qkv [B, S, 3H], bias [3H], mask_bias [B, S], table [R, D], heads [1] int32,
//                               scale [1], keep_prob [1], seed [1] int32, table_grad [1] int32
//                               -> context [B, S, H], probs [B, N, S, S], mask uint8 [B, N, S, S]
//   RelativeSelfAttentionGrad:  dcontext [B, S, H], qkv, bias, mask_bias, table, probs, mask, heads, scale,
//                               keep_prob, table_grad -> dqkv [B, S, 3H], dbias [3H], dtable [R, D]
// dtable is 0 without computing it when table_grad is 0 (a constant table, the functional NEZHA);
// the forward ignores table_grad (an input only so that the backward gets it). The dropout mask and
// the skipped padding keys are SelfAttention's (same layout, hash and key range; the backward takes
// the range from mask_bias).
//
// The four kernels share one forward and one backward body (AttentionForward, AttentionBackward);
// the relative terms are computed only with a table.
// ---------------------------------------------------------------------------------------------
namespace {

// The sizes of an attention call on the [B, S, 3H] Q|K|V projection: D = H / N, and S and D rounded up to
// multiples of both GEMM tiles (the leading dimensions of the per-head buffers).
struct AttentionSizes {
  int64_t batch, s, h, h3, heads, d, sp, dp;
  AttentionSizes(int64_t batch_, int64_t s_, int64_t h_, int64_t heads_)
      : batch(batch_), s(s_), h(h_), h3(3 * h_), heads(heads_), d(heads_ > 0 ? h_ / heads_ : 0),
        sp(RoundUp(s_, kTileCols)), dp(RoundUp(d, kTileCols)) {}
  bool valid() const { return heads > 0 && h % heads == 0; }
};

// Head n of batch element b of qkv + bias: Q [s x d] into q (leading dimension dp); with transpose_k,
// Kᵀ [d x s] into k (leading dimension sp) and V [s x d] into v, else K [s x d] and Vᵀ [d x s].
inline void LoadQkvHead(const float *qkv, const float *bias, const AttentionSizes &a, int64_t b, int64_t n,
                        bool transpose_k, float *q, float *k, float *v) {
  const float *x = qkv + b * a.s * a.h3 + n * a.d;
  LoadHead(x, bias + n * a.d, a.s, a.h3, a.d, false, q, a.dp);
  LoadHead(x + a.h, bias + a.h + n * a.d, a.s, a.h3, a.d, transpose_k, k, transpose_k ? a.sp : a.dp);
  LoadHead(x + 2 * a.h, bias + 2 * a.h + n * a.d, a.s, a.h3, a.d, !transpose_k, v, transpose_k ? a.dp : a.sp);
}

// Keys [0, KeyRange) hold every key with mask_bias > -5000; all s keys when none has.
inline int64_t KeyRange(const float *mask_bias, int64_t s) {
  for (int64_t j = s - 1; j >= 0; --j) {
    if (mask_bias[j] > -5000.0f) return j + 1;
  }
  return s;
}

// The forward's key range from a head's probabilities p [s x s]: one past the last nonzero one (at least 1).
inline int64_t ProbsKeyRange(const float *p, int64_t s) {
  int64_t keys = 1;
  for (int64_t i = 0; i < s; ++i) {
    for (int64_t j = s - 1; j >= keys; --j) {
      if (p[i * s + j] != 0.0f) {
        keys = j + 1;
        break;
      }
    }
  }
  return keys;
}

// K and the table rows [first, first + count) that pairs of positions in a sequence of s reach (count 0:
// no table, SelfAttention).
struct RelativeRows {
  int64_t k = 0, first = 0, count = 0;
  RelativeRows() = default;
  RelativeRows(int64_t rows, int64_t s)
      : k((rows - 1) / 2), first(std::max<int64_t>(0, k - s + 1)),
        count(std::min<int64_t>(2 * k, k + s - 1) - std::max<int64_t>(0, k - s + 1) + 1) {}
};

// Query row i's keys [0, keys) by bin: [0, lo) in bin 0 (j - i <= -K), [lo, hi) in bin j - i + K,
// [hi, keys) in bin 2K (j - i >= K). Bin 0 (2K) is reachable, so first == 0 (first + count == 2K + 1),
// whenever its range is not empty.
struct RowBins {
  int64_t lo, hi;
  RowBins(int64_t i, int64_t k, int64_t keys)
      : lo(std::clamp<int64_t>(i - k + 1, 0, keys)), hi(std::clamp<int64_t>(i + k, lo, keys)) {}
};

// row[j] += qt[rel(i, j) - first] for j < keys: qt holds one query row of Q Tᵀ (or dC Tᵀ).
inline void AddRelative(const float *qt, int64_t i, const RelativeRows &rel, int64_t keys, float *row) {
  const RowBins bins(i, rel.k, keys);
  const int64_t lo = bins.lo, hi = bins.hi, offset = rel.k - rel.first - i;
  const float head = lo > 0 ? qt[0] : 0.0f, tail = hi < keys ? qt[2 * rel.k - rel.first] : 0.0f;
#pragma omp simd
  for (int64_t j = 0; j < lo; ++j) row[j] += head;
#pragma omp simd
  for (int64_t j = lo; j < hi; ++j) row[j] += qt[j + offset];
#pragma omp simd
  for (int64_t j = hi; j < keys; ++j) row[j] += tail;
}

// w[r - first] = sum of p[j] over j < keys with rel(i, j) = r, for the rel.count reachable rows r.
inline void BucketRow(const float *p, int64_t i, const RelativeRows &rel, int64_t keys, float *w) {
  const RowBins bins(i, rel.k, keys);
  const int64_t lo = bins.lo, hi = bins.hi, offset = rel.k - rel.first - i;
  std::fill(w, w + rel.count, 0.0f);
  float head = 0.0f, tail = 0.0f;
#pragma omp simd reduction(+ : head)
  for (int64_t j = 0; j < lo; ++j) head += p[j];
#pragma omp simd reduction(+ : tail)
  for (int64_t j = hi; j < keys; ++j) tail += p[j];
  for (int64_t j = lo; j < hi; ++j) w[j + offset] = p[j];
  if (lo > 0) w[0] += head;
  if (hi < keys) w[2 * rel.k - rel.first] += tail;
}

// The reachable rows of the table, zero-padded: Tᵀ [dp x rp] (for Q Tᵀ) and T [rp x dp] (for W T).
void LoadTable(const float *table, const RelativeRows &rel, int64_t d, int64_t dp, int64_t rp, std::vector<float> *tt,
               std::vector<float> *tab) {
  tt->assign(static_cast<size_t>(dp * rp), 0.0f);
  tab->assign(static_cast<size_t>(rp * dp), 0.0f);
  for (int64_t r = 0; r < rel.count; ++r) {
    const float *src = table + (rel.first + r) * d;
    for (int64_t c = 0; c < d; ++c) {
      (*tt)[c * rp + r] = src[c];
      (*tab)[r * dp + c] = src[c];
    }
  }
}

// The forward of SelfAttention and, with a table (rel: its reachable rows), of RelativeSelfAttention;
// scale_in and keep_prob point to the [1] inputs.
void AttentionForward(const AttentionSizes &a, const float *qkv, const float *bias, const float *mask_bias,
                      const float *table, const RelativeRows &rel, const float *scale_in, const float *keep_prob,
                      int32_t seed, float *context, float *probs, uint8_t *mask) {
  const int64_t batch = a.batch, s = a.s, h = a.h, heads = a.heads, d = a.d, sp = a.sp, dp = a.dp;
  const bool relative = table != nullptr;
  const int64_t rp = RoundUp(rel.count, kTileCols);
  std::vector<float> tt, tab;
  if (relative) LoadTable(table, rel, d, dp, rp, &tt, &tab);
  const float *tt_data = tt.data(), *tab_data = tab.data();
  ParallelFor(Blocks(batch * heads, 1), [=](int64_t t0, int64_t t1, int64_t) {
    // locals, see the header
    const float scale = scale_in[0];
    const float drop = DropProb(keep_prob);
    const float keep_scale = KeepScale(keep_prob);
    const RelativeRows rows = rel;
    // per task: Q, Kᵀ, V, the scores, dropout(P) and the context, and with a table Q Tᵀ, W and the context's
    // W T term (zero padding stays zero: only the [s x d] / [s x s] parts are written below)
    const int64_t rel_size = relative ? sp * rp : 0;
    std::vector<float> qh(sp * dp, 0.0f), kt(dp * sp, 0.0f), vh(sp * dp, 0.0f), scores(sp * sp, 0.0f),
        dropped(sp * sp, 0.0f), ctx(sp * dp, 0.0f), qt(rel_size, 0.0f), w(rel_size, 0.0f),
        ctx_rel(relative ? sp * dp : 0, 0.0f);
    for (int64_t task = t0; task < t1; ++task) {
      const int64_t b = task / heads, n = task % heads;
      LoadQkvHead(qkv, bias, a, b, n, true, qh.data(), kt.data(), vh.data());
      const float *mb = mask_bias + b * s;
      const int64_t keys = KeyRange(mb, s);
      Gemm<false>(sp, RoundUp(keys, kTileCols), d, qh.data(), dp, kt.data(), sp, scores.data(), sp);  // Q Kᵀ
      if (relative) Gemm<false>(sp, rp, d, qh.data(), dp, tt_data, rp, qt.data(), rp);               // Q Tᵀ
      float *p_head = probs + task * s * s;
      const uint8_t *m_head = mask + task * s * s;
      FillDropoutMask(seed, drop, task * s * s, (task + 1) * s * s, mask);
      for (int64_t i = 0; i < s; ++i) {
        float *row = scores.data() + i * sp, *pr = p_head + i * s, *dr = dropped.data() + i * sp;
        if (relative) AddRelative(qt.data() + i * rp, i, rows, keys, row);
        SoftmaxDropoutRow(row, mb, scale, m_head + i * s, keep_scale, keys, row, pr, dr);
        std::fill(pr + keys, pr + s, 0.0f);
        if (relative) BucketRow(dr, i, rows, keys, w.data() + i * rp);
      }
      Gemm<false>(sp, dp, keys, dropped.data(), sp, vh.data(), dp, ctx.data(), dp);  // dropout(P) V
      if (relative) {
        Gemm<false>(sp, dp, rows.count, w.data(), rp, tab_data, dp, ctx_rel.data(), dp);  // W T
        AddTo(ctx_rel.data(), sp * dp, ctx.data());
      }
      CopyBlock(ctx.data(), dp, s, d, context + b * s * h + n * d, h);
    }
  });
}

// The backward of SelfAttention and, with a table, of RelativeSelfAttention (dtable, when table_grad, is
// computed, else set to 0). mask_bias is null for SelfAttentionGrad (see the header).
void AttentionBackward(const AttentionSizes &a, const float *dcontext, const float *qkv, const float *bias,
                       const float *mask_bias, const float *table, const RelativeRows &rel, bool table_grad,
                       const float *probs, const uint8_t *mask, const float *scale_in, const float *keep_prob,
                       float *dqkv, float *dbias, float *dtable) {
  const int64_t batch = a.batch, s = a.s, h = a.h, h3 = a.h3, heads = a.heads, d = a.d, sp = a.sp, dp = a.dp;
  const bool relative = table != nullptr;
  const int64_t rp = RoundUp(rel.count, kTileCols);
  std::vector<float> tt, tab;
  if (relative) LoadTable(table, rel, d, dp, rp, &tt, &tab);
  const float *tt_data = tt.data(), *tab_data = tab.data();
  const Blocks blocks(batch * heads, 1);
  const int64_t stride = h3 + rel.count * d;  // per block: dbias, then the reachable rows of dtable
  std::vector<double> partial(static_cast<size_t>(blocks.count * stride), 0.0);
  double *const partial_data = partial.data();
  ParallelFor(blocks, [=](int64_t t0, int64_t t1, int64_t block) {
    // locals, see the header
    const float scale = scale_in[0];
    const float keep_scale = KeepScale(keep_prob);
    const RelativeRows rows = rel;
    const bool with_table = relative && table_grad;
    double *acc = partial_data + block * stride, *acc_table = acc + h3;
    // qd = [Q; dC] and sw = [dSb; W], each half sp rows (zero past s), so that one GEMM gives
    // dT = [dSb; W]ᵀ [Q; dC] = dSbᵀ Q + Wᵀ dC
    const int64_t rel_size = relative ? sp * rp : 0;
    std::vector<float> qd(2 * sp * dp, 0.0f), kh(sp * dp, 0.0f), vt(dp * sp, 0.0f), ds(sp * sp, 0.0f),
        dropped(sp * sp, 0.0f), dqh(sp * dp), dkh(sp * dp), dvh(sp * dp), zeros(d, 0.0f), dct(rel_size, 0.0f),
        sw(2 * rel_size, 0.0f), dq_rel(relative ? sp * dp : 0), dt(relative ? rp * dp : 0);
    float *qh = qd.data(), *dc = qd.data() + sp * dp, *dsb = sw.data(), *w = sw.data() + rel_size;
    for (int64_t task = t0; task < t1; ++task) {
      const int64_t b = task / heads, n = task % heads;
      LoadQkvHead(qkv, bias, a, b, n, false, qh, kh.data(), vt.data());
      CopyBlock(dcontext + b * s * h + n * d, h, s, d, dc, dp);
      const float *p_head = probs + task * s * s;
      const uint8_t *m_head = mask + task * s * s;
      const int64_t keys = mask_bias != nullptr ? KeyRange(mask_bias + b * s, s) : ProbsKeyRange(p_head, s);
      const int64_t kp = RoundUp(keys, kTileCols);
      Gemm<false>(sp, kp, d, dc, dp, vt.data(), sp, ds.data(), sp);                // dC Vᵀ
      if (relative) Gemm<false>(sp, rp, d, dc, dp, tt_data, rp, dct.data(), rp);  // dC Tᵀ
      for (int64_t i = 0; i < s; ++i) {
        const float *pr = p_head + i * s;
        float *row = ds.data() + i * sp, *dr = dropped.data() + i * sp;
        if (relative) AddRelative(dct.data() + i * rp, i, rows, keys, row);  // d(dropout(P))
        SoftmaxDropoutGradRow<true>(row, pr, m_head + i * s, keep_scale, scale, keys, row, dr);  // dS
        if (relative) BucketRow(row, i, rows, keys, dsb + i * rp);
        if (with_table) BucketRow(dr, i, rows, keys, w + i * rp);
      }
      // rows [keys, kp) of dK and dV below read stale columns of ds / dropped: they are not written out
      Gemm<false>(sp, dp, keys, ds.data(), sp, kh.data(), dp, dqh.data(), dp);  // dQ = dS K
      if (relative) {
        Gemm<false>(sp, dp, rows.count, dsb, rp, tab_data, dp, dq_rel.data(), dp);  //    + dSb T
        AddTo(dq_rel.data(), sp * dp, dqh.data());
      }
      Gemm<true>(kp, dp, s, ds.data(), sp, qh, dp, dkh.data(), dp);       // dK = dSᵀ Q
      Gemm<true>(kp, dp, s, dropped.data(), sp, dc, dp, dvh.data(), dp);  // dV = dropout(P)ᵀ dC
      if (with_table) {
        Gemm<true>(rp, dp, 2 * sp, sw.data(), rp, qd.data(), dp, dt.data(), dp);  // dT = dSbᵀ Q + Wᵀ dC
        for (int64_t r = 0; r < rows.count; ++r) {
          const float *tr = dt.data() + r * dp;
          double *ar = acc_table + r * d;
#pragma omp simd
          for (int64_t c = 0; c < d; ++c) ar[c] += tr[c];
        }
      }
      float *out = dqkv + b * s * h3 + n * d;
      double *aq = acc + n * d, *ak = acc + h + n * d, *av = acc + 2 * h + n * d;
      for (int64_t i = 0; i < s; ++i) {
        float *oq = out + i * h3, *ok = oq + h, *ov = oq + 2 * h;
        const float *sq = dqh.data() + i * dp, *sk = dkh.data() + i * dp, *sv = dvh.data() + i * dp;
        if (i >= keys) sk = sv = zeros.data();  // a key past the range: no gradient
#pragma omp simd
        for (int64_t c = 0; c < d; ++c) {
          oq[c] = sq[c];
          ok[c] = sk[c];
          ov[c] = sv[c];
          aq[c] += sq[c];
          ak[c] += sk[c];
          av[c] += sv[c];
        }
      }
    }
  });
  ReduceColumns(partial, blocks.count, stride, 0, h3, dbias);
  if (relative) {
    std::fill(dtable, dtable + (2 * rel.k + 1) * d, 0.0f);  // the unreachable rows
    ReduceColumns(partial, blocks.count, stride, h3, rel.count * d, dtable + rel.first * d);
  }
}

}  // namespace

int SelfAttention(int nparam, void **params, int *ndims, int64_t **shapes, const char **, void *, void *) {
  if (nparam != 10 || ndims[0] != 3) return 1;
  const AttentionSizes a(shapes[0][0], shapes[0][1], shapes[0][2] / 3, static_cast<const int32_t *>(params[3])[0]);
  if (shapes[0][2] % 3 != 0 || !a.valid()) return 2;
  // qkv, bias, mask_bias, no table, scale, keep_prob, seed -> context, probs, mask
  AttentionForward(a, static_cast<const float *>(params[0]), static_cast<const float *>(params[1]),
                   static_cast<const float *>(params[2]), nullptr, RelativeRows(),
                   static_cast<const float *>(params[4]), static_cast<const float *>(params[5]),
                   static_cast<const int32_t *>(params[6])[0], static_cast<float *>(params[7]),
                   static_cast<float *>(params[8]), static_cast<uint8_t *>(params[9]));
  return 0;
}

int SelfAttentionGrad(int nparam, void **params, int *ndims, int64_t **shapes, const char **, void *, void *) {
  if (nparam != 10 || ndims[0] != 3) return 1;
  const AttentionSizes a(shapes[0][0], shapes[0][1], shapes[0][2], static_cast<const int32_t *>(params[5])[0]);
  if (!a.valid() || shapes[1][2] != a.h3) return 2;
  // dcontext, qkv, bias, no mask_bias nor table, probs, mask, scale, keep_prob -> dqkv, dbias
  AttentionBackward(a, static_cast<const float *>(params[0]), static_cast<const float *>(params[1]),
                    static_cast<const float *>(params[2]), nullptr, nullptr, RelativeRows(), false,
                    static_cast<const float *>(params[3]), static_cast<const uint8_t *>(params[4]),
                    static_cast<const float *>(params[6]), static_cast<const float *>(params[7]),
                    static_cast<float *>(params[8]), static_cast<float *>(params[9]), nullptr);
  return 0;
}

int RelativeSelfAttention(int nparam, void **params, int *ndims, int64_t **shapes, const char **, void *, void *) {
  if (nparam != 12 || ndims[0] != 3 || ndims[3] != 2) return 1;
  const AttentionSizes a(shapes[0][0], shapes[0][1], shapes[0][2] / 3, static_cast<const int32_t *>(params[4])[0]);
  if (shapes[0][2] % 3 != 0 || !a.valid()) return 2;
  if (shapes[3][0] % 2 != 1 || shapes[3][1] != a.d || NumElements(ndims[2], shapes[2]) != a.batch * a.s) return 2;
  // qkv, bias, mask_bias, table, scale, keep_prob, seed (not table_grad) -> context, probs, mask
  AttentionForward(a, static_cast<const float *>(params[0]), static_cast<const float *>(params[1]),
                   static_cast<const float *>(params[2]), static_cast<const float *>(params[3]),
                   RelativeRows(shapes[3][0], a.s), static_cast<const float *>(params[5]),
                   static_cast<const float *>(params[6]), static_cast<const int32_t *>(params[7])[0],
                   static_cast<float *>(params[9]), static_cast<float *>(params[10]),
                   static_cast<uint8_t *>(params[11]));
  return 0;
}

int RelativeSelfAttentionGrad(int nparam, void **params, int *ndims, int64_t **shapes, const char **, void *,
                              void *) {
  if (nparam != 14 || ndims[0] != 3 || ndims[4] != 2) return 1;
  const AttentionSizes a(shapes[0][0], shapes[0][1], shapes[0][2], static_cast<const int32_t *>(params[7])[0]);
  if (!a.valid() || shapes[1][2] != a.h3) return 2;
  if (shapes[4][0] % 2 != 1 || shapes[4][1] != a.d || NumElements(ndims[3], shapes[3]) != a.batch * a.s) return 2;
  // dcontext, qkv, bias, mask_bias, table, table_grad, probs, mask, scale, keep_prob -> dqkv, dbias, dtable
  AttentionBackward(a, static_cast<const float *>(params[0]), static_cast<const float *>(params[1]),
                    static_cast<const float *>(params[2]), static_cast<const float *>(params[3]),
                    static_cast<const float *>(params[4]), RelativeRows(shapes[4][0], a.s),
                    static_cast<const int32_t *>(params[10])[0] != 0, static_cast<const float *>(params[5]),
                    static_cast<const uint8_t *>(params[6]), static_cast<const float *>(params[8]),
                    static_cast<const float *>(params[9]), static_cast<float *>(params[11]),
                    static_cast<float *>(params[12]), static_cast<float *>(params[13]));
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Dropout alone (the heads' dropout before a classifier), with the seeded masks of the others.
//   Dropout:     x [..], keep [1], seed int32 [1] -> y [..], mask uint8 [..]
//   DropoutGrad: dy [..], mask [..], keep [1] -> dx [..]
// ---------------------------------------------------------------------------------------------
int Dropout(int nparam, void **params, int *ndims, int64_t **shapes, const char **, void *, void *) {
  if (nparam != 5) return 1;
  const float *x = static_cast<const float *>(params[0]);
  const float *keep_prob = static_cast<const float *>(params[1]);
  const int32_t seed = static_cast<const int32_t *>(params[2])[0];
  float *y = static_cast<float *>(params[3]);
  uint8_t *mask = static_cast<uint8_t *>(params[4]);
  const int64_t n = NumElements(ndims[0], shapes[0]);
  ParallelFor(Blocks(n, 1 << 14), [=](int64_t i0, int64_t i1, int64_t) {
    const float drop = DropProb(keep_prob);
    const float scale = KeepScale(keep_prob);
    FillDropoutMask(seed, drop, i0, i1, mask);
#pragma omp simd
    for (int64_t i = i0; i < i1; ++i) y[i] = x[i] * (mask[i] * scale);
  });
  return 0;
}

int DropoutGrad(int nparam, void **params, int *ndims, int64_t **shapes, const char **, void *, void *) {
  if (nparam != 4) return 1;
  const float *dy = static_cast<const float *>(params[0]);
  const uint8_t *mask = static_cast<const uint8_t *>(params[1]);
  const float *keep_prob = static_cast<const float *>(params[2]);
  float *dx = static_cast<float *>(params[3]);
  const int64_t n = NumElements(ndims[0], shapes[0]);
  ParallelFor(Blocks(n, 1 << 14), [=](int64_t i0, int64_t i1, int64_t) {
    const float scale = KeepScale(keep_prob);
#pragma omp simd
    for (int64_t i = i0; i < i1; ++i) dx[i] = dy[i] * (mask[i] * scale);
  });
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Softmax cross-entropy of logits + bias: the masked-LM loss over the vocabulary, one pass over
// the [N, V] logits forward and one backward (instead of a bias Add, LogSoftmax, its gradient, a
// GatherD gradient and the bias gradient's ReduceSum, each a pass of its own).
//   BiasSoftmaxCrossEntropy:      logits [N, V], bias [V], labels int32 [N]
//                                 -> nll [N] = lse - (logits + bias)[label], lse [N] = logsumexp(logits + bias)
//   BiasSoftmaxCrossEntropyGrad:  dnll [N], logits, bias, labels, lse
//                                 -> dlogits [N, V] = dnll * (softmax - onehot(label)), dbias [V]
// A label outside [0, V) is an error (status 3), not a read out of bounds.
// ---------------------------------------------------------------------------------------------
namespace {

bool LabelsInRange(const int32_t *labels, int64_t rows, int64_t v) {
  for (int64_t r = 0; r < rows; ++r) {
    if (labels[r] < 0 || labels[r] >= v) return false;
  }
  return true;
}

}  // namespace

int BiasSoftmaxCrossEntropy(int nparam, void **params, int *ndims, int64_t **shapes, const char **, void *,
                            void *) {
  if (nparam != 5) return 1;
  const float *logits = static_cast<const float *>(params[0]);
  const float *bias = static_cast<const float *>(params[1]);
  const int32_t *labels = static_cast<const int32_t *>(params[2]);
  float *nll = static_cast<float *>(params[3]);
  float *lse = static_cast<float *>(params[4]);
  const int64_t v = shapes[0][ndims[0] - 1];
  const int64_t rows = NumElements(ndims[0], shapes[0]) / v;
  if (NumElements(ndims[1], shapes[1]) != v || NumElements(ndims[2], shapes[2]) != rows) return 2;
  if (!LabelsInRange(labels, rows, v)) return 3;
  ParallelFor(Blocks(rows, 1), [=](int64_t r0, int64_t r1, int64_t) {
    for (int64_t r = r0; r < r1; ++r) {
      const float *x = logits + r * v;
      float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
      for (int64_t j = 0; j < v; ++j) mx = std::max(mx, x[j] + bias[j]);
      float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
      for (int64_t j = 0; j < v; ++j) sum += expf(x[j] + bias[j] - mx);
      const float l = mx + std::log(sum);
      lse[r] = l;
      nll[r] = l - (x[labels[r]] + bias[labels[r]]);
    }
  });
  return 0;
}

int BiasSoftmaxCrossEntropyGrad(int nparam, void **params, int *ndims, int64_t **shapes, const char **, void *,
                                void *) {
  if (nparam != 7) return 1;
  const float *dnll = static_cast<const float *>(params[0]);
  const float *logits = static_cast<const float *>(params[1]);
  const float *bias = static_cast<const float *>(params[2]);
  const int32_t *labels = static_cast<const int32_t *>(params[3]);
  const float *lse = static_cast<const float *>(params[4]);
  float *dlogits = static_cast<float *>(params[5]);
  float *dbias = static_cast<float *>(params[6]);
  const int64_t v = shapes[1][ndims[1] - 1];
  const int64_t rows = NumElements(ndims[1], shapes[1]) / v;
  if (!LabelsInRange(labels, rows, v)) return 3;
  const Blocks blocks(rows, 1);
  std::vector<float> partial(static_cast<size_t>(blocks.count * v), 0.0f);  // dbias of each block
  ParallelFor(blocks, [&](int64_t r0, int64_t r1, int64_t c) {
    float *acc = partial.data() + c * v;
    for (int64_t r = r0; r < r1; ++r) {
      const float *x = logits + r * v;
      float *dx = dlogits + r * v;
      const float g = dnll[r], l = lse[r];
#pragma omp simd
      for (int64_t j = 0; j < v; ++j) {
        float d = g * expf(x[j] + bias[j] - l);
        dx[j] = d;
        acc[j] += d;
      }
      dx[labels[r]] -= g;
      acc[labels[r]] -= g;
    }
  });
  ReduceColumns(partial, blocks.count, v, 0, v, dbias);
  return 0;
}

// ---------------------------------------------------------------------------------------------
// SumOfSquares: any number of float32 tensors -> float32 [1], the sum of the squares of all their
// elements (the squared global norm of a gradient tuple; inf or nan when any element is).
// ---------------------------------------------------------------------------------------------
int SumOfSquares(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *, void *) {
  const int inputs = nparam - 1;
  if (inputs < 1) return 1;
  std::vector<int64_t> start(static_cast<size_t>(inputs) + 1, 0);
  for (int i = 0; i < inputs; ++i) {
    if (std::string(dtypes[i]) != "float32") return 2;
    start[i + 1] = start[i] + NumElements(ndims[i], shapes[i]);
  }
  const Blocks blocks(start[inputs], 1 << 16);
  std::vector<double> partial(static_cast<size_t>(blocks.count), 0.0);
  ParallelFor(blocks, [&](int64_t begin, int64_t end, int64_t c) {
    double total = 0.0;
    int i = static_cast<int>(std::upper_bound(start.begin(), start.end(), begin) - start.begin()) - 1;
    for (int64_t pos = begin; pos < end; ++i) {
      const float *data = static_cast<const float *>(params[i]);
      const int64_t stop = std::min(end, start[i + 1]);
      for (int64_t block = pos; block < stop; block += 4096) {  // float lanes per block, double across blocks
        const float *x = data + (block - start[i]);
        const int64_t n = std::min<int64_t>(4096, stop - block);
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int64_t j = 0; j < n; ++j) sum += x[j] * x[j];
        total += sum;
      }
      pos = stop;
    }
    partial[c] = total;
  });
  double sum = 0.0;
  for (int64_t c = 0; c < blocks.count; ++c) sum += partial[c];
  static_cast<float *>(params[inputs])[0] = static_cast<float>(sum);
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Linear-chain CRF (src/crf.py): the forward algorithm, its forward-backward gradient and Viterbi,
// one row of the batch per block. The semantics are src/crf.py's general mask: a row's sequence is
// its ON positions (on[b, i] != 0); alpha starts as start + E[0], takes start + E[i] at the first
// ON position, moves over consecutive ON positions by the transitions and is carried unchanged
// through OFF positions. One call replaces the 8 x S small graph operators of the unrolled loop.
//   CrfForward:     E [B, S, T], on [B, S], start [T], end [T], trans [T, T]
//                   -> log_z [B] (not zeroed for rows without an ON position), alphas [B, S, T]
//   CrfForwardGrad: dlog_z [B], E, on, start, end, trans, log_z, alphas
//                   -> dE [B, S, T], dstart [T], dend [T], dtrans [T, T]
//   CrfViterbi:     E, on, start, end, trans -> tags int32 [B, S] (0 at OFF positions)
// ---------------------------------------------------------------------------------------------
namespace {

inline float LogSumExp(const float *x, int64_t n, int64_t stride) {
  float m = x[0];
  for (int64_t k = 1; k < n; ++k) m = std::max(m, x[k * stride]);
  if (!std::isfinite(m)) return m;
  float s = 0.0f;
  for (int64_t k = 0; k < n; ++k) s += std::exp(x[k * stride] - m);
  return std::log(s) + m;
}

}  // namespace

int CrfForward(int nparam, void **params, int *ndims, int64_t **shapes, const char **, void *, void *) {
  if (nparam != 7 || ndims[0] != 3) return 1;
  const int64_t b = shapes[0][0], s = shapes[0][1], t = shapes[0][2];
  const float *e = static_cast<const float *>(params[0]), *on = static_cast<const float *>(params[1]);
  const float *start = static_cast<const float *>(params[2]), *end = static_cast<const float *>(params[3]);
  const float *trans = static_cast<const float *>(params[4]);
  float *log_z = static_cast<float *>(params[5]), *alphas = static_cast<float *>(params[6]);
  ParallelFor(Blocks(b, 1), [&](int64_t begin, int64_t stop, int64_t) {
    std::vector<float> scratch(static_cast<size_t>(t * t));
    for (int64_t r = begin; r < stop; ++r) {
      const float *er = e + r * s * t, *onr = on + r * s;
      float *ar = alphas + r * s * t;
      for (int64_t j = 0; j < t; ++j) ar[j] = start[j] + er[j];
      bool started = onr[0] != 0.0f;
      for (int64_t i = 1; i < s; ++i) {
        const float *prev = ar + (i - 1) * t;
        float *cur = ar + i * t;
        if (onr[i] == 0.0f) {
          std::copy(prev, prev + t, cur);
        } else if (!started) {
          for (int64_t j = 0; j < t; ++j) cur[j] = start[j] + er[i * t + j];
          started = true;
        } else {
          for (int64_t p = 0; p < t; ++p)
            for (int64_t j = 0; j < t; ++j) scratch[p * t + j] = prev[p] + trans[p * t + j];
          for (int64_t j = 0; j < t; ++j) cur[j] = LogSumExp(scratch.data() + j, t, t) + er[i * t + j];
        }
      }
      for (int64_t j = 0; j < t; ++j) scratch[j] = ar[(s - 1) * t + j] + end[j];
      log_z[r] = LogSumExp(scratch.data(), t, 1);
    }
  });
  return 0;
}

int CrfForwardGrad(int nparam, void **params, int *ndims, int64_t **shapes, const char **, void *, void *) {
  if (nparam != 12 || ndims[1] != 3) return 1;
  const int64_t b = shapes[1][0], s = shapes[1][1], t = shapes[1][2];
  const float *dz = static_cast<const float *>(params[0]), *e = static_cast<const float *>(params[1]);
  const float *on = static_cast<const float *>(params[2]), *end = static_cast<const float *>(params[4]);
  const float *trans = static_cast<const float *>(params[5]), *log_z = static_cast<const float *>(params[6]);
  const float *alphas = static_cast<const float *>(params[7]);
  float *de = static_cast<float *>(params[8]), *dstart = static_cast<float *>(params[9]);
  float *dend = static_cast<float *>(params[10]), *dtrans = static_cast<float *>(params[11]);
  const int64_t stride = 2 * t + t * t;  // per row: dstart, dend, dtrans
  std::vector<double> partial(static_cast<size_t>(b * stride), 0.0);
  ParallelFor(Blocks(b, 1), [&](int64_t begin, int64_t stop, int64_t) {
    std::vector<float> beta(static_cast<size_t>(s * t)), scratch(static_cast<size_t>(t));
    for (int64_t r = begin; r < stop; ++r) {
      const float *er = e + r * s * t, *onr = on + r * s, *ar = alphas + r * s * t;
      float *der = de + r * s * t;
      double *part = partial.data() + r * stride;
      const float g = dz[r], z = log_z[r];
      // linked[i]: ON with an ON position before it
      std::vector<char> linked(static_cast<size_t>(s), 0);
      bool seen = false;
      for (int64_t i = 0; i < s; ++i) {
        linked[i] = onr[i] != 0.0f && seen;
        seen = seen || onr[i] != 0.0f;
      }
      float *br = beta.data();
      std::copy(end, end + t, br + (s - 1) * t);
      for (int64_t i = s - 1; i > 0; --i) {
        const float *next = br + i * t;
        float *cur = br + (i - 1) * t;
        if (!linked[i]) {
          std::copy(next, next + t, cur);
          continue;
        }
        for (int64_t p = 0; p < t; ++p) {
          for (int64_t k = 0; k < t; ++k) scratch[k] = trans[p * t + k] + er[i * t + k] + next[k];
          cur[p] = LogSumExp(scratch.data(), t, 1);
        }
      }
      bool first_seen = false;
      for (int64_t i = 0; i < s; ++i) {
        const bool is_on = onr[i] != 0.0f;
        for (int64_t j = 0; j < t; ++j) {
          const float u = is_on ? std::exp(ar[i * t + j] + br[i * t + j] - z) * g : 0.0f;
          der[i * t + j] = u;
          if (is_on && !first_seen) part[j] += u;
        }
        first_seen = first_seen || is_on;
        if (linked[i]) {
          for (int64_t p = 0; p < t; ++p)
            for (int64_t k = 0; k < t; ++k)
              part[2 * t + p * t + k] +=
                  std::exp(ar[(i - 1) * t + p] + trans[p * t + k] + er[i * t + k] + br[i * t + k] - z) * g;
        }
      }
      for (int64_t j = 0; j < t; ++j) scratch[j] = ar[(s - 1) * t + j] + end[j];
      const float last = LogSumExp(scratch.data(), t, 1);
      for (int64_t j = 0; j < t; ++j) part[t + j] = std::exp(scratch[j] - last) * g;
    }
  });
  ReduceColumns(partial, b, stride, 0, t, dstart);
  ReduceColumns(partial, b, stride, t, t, dend);
  ReduceColumns(partial, b, stride, 2 * t, t * t, dtrans);
  return 0;
}

int CrfViterbi(int nparam, void **params, int *ndims, int64_t **shapes, const char **, void *, void *) {
  if (nparam != 6 || ndims[0] != 3) return 1;
  const int64_t b = shapes[0][0], s = shapes[0][1], t = shapes[0][2];
  const float *e = static_cast<const float *>(params[0]), *on = static_cast<const float *>(params[1]);
  const float *start = static_cast<const float *>(params[2]), *end = static_cast<const float *>(params[3]);
  const float *trans = static_cast<const float *>(params[4]);
  int32_t *tags = static_cast<int32_t *>(params[5]);
  ParallelFor(Blocks(b, 1), [&](int64_t begin, int64_t stop, int64_t) {
    std::vector<float> best(static_cast<size_t>(t)), next(static_cast<size_t>(t));
    std::vector<int32_t> pointers(static_cast<size_t>(s * t));
    for (int64_t r = begin; r < stop; ++r) {
      const float *er = e + r * s * t, *onr = on + r * s;
      for (int64_t j = 0; j < t; ++j) best[j] = start[j] + er[j];
      bool started = onr[0] != 0.0f;
      for (int64_t i = 1; i < s; ++i) {
        int32_t *ptr = pointers.data() + i * t;
        const bool linked = onr[i] != 0.0f && started;
        for (int64_t j = 0; j < t; ++j) {
          int32_t arg = 0;
          float value = best[0] + trans[j];
          for (int64_t p = 1; p < t; ++p) {  // the first maximum, as ops.max
            const float v = best[p] + trans[p * t + j];
            if (v > value) value = v, arg = static_cast<int32_t>(p);
          }
          ptr[j] = linked ? arg : static_cast<int32_t>(j);
          next[j] = onr[i] == 0.0f ? best[j] : (started ? value : start[j]) + er[i * t + j];
        }
        best.swap(next);
        started = started || onr[i] != 0.0f;
      }
      int32_t tag = 0;
      float top = best[0] + end[0];
      for (int64_t j = 1; j < t; ++j) {
        if (best[j] + end[j] > top) top = best[j] + end[j], tag = static_cast<int32_t>(j);
      }
      int32_t *out = tags + r * s;
      for (int64_t i = s - 1; i >= 0; --i) {
        out[i] = onr[i] != 0.0f ? tag : 0;
        if (i > 0) tag = pointers[i * t + tag];
      }
    }
  });
  return 0;
}


// ---------------------------------------------------------------------------------------------
// Projections of the real tokens only (built with -DBERT_ZOO_DNNL, linked to the oneDNN library
// that MindSpore ships): y = x Wᵀ on the rows whose rows[r] != 0, and 0 on the other (padding)
// rows. The selected rows are packed together, multiplied by oneDNN's sgemm (each thread its own
// share of the rows, or of W's rows for dW) and scattered back. Each padding row of y is a
// constant 0, so its dy is ignored: dx is 0 there and dW sums over the selected rows only.
//   RowMatMul:     x [T, K], w [N, K], rows int32 [T] -> y [T, N]
//   RowMatMulGrad: x, w, rows, dy [T, N] -> dx [T, K], dw [N, K]
// ---------------------------------------------------------------------------------------------
#ifdef BERT_ZOO_DNNL
extern "C" int dnnl_sgemm(char transa, char transb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                          int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc);

namespace {

// The selected rows (rows[r] != 0) and the others.
struct RowSplit {
  std::vector<int64_t> selected, others;
  RowSplit(const int32_t *rows, int64_t t) {
    selected.reserve(static_cast<size_t>(t));
    for (int64_t r = 0; r < t; ++r) (rows[r] != 0 ? selected : others).push_back(r);
  }
};

// A few large blocks (about two per thread, at least min_rows each): sgemm is efficient on tall
// blocks, and a thread that gets less CPU still holds the others up by one block only.
Blocks GemmBlocks(int64_t n, int64_t min_rows) {
  Blocks blocks(n, min_rows);
  if (blocks.count > 1) {
    const int64_t threads = std::min<int64_t>(NumThreads(), std::max<int64_t>(1, n / min_rows));
    blocks.size = std::max<int64_t>(1, (n + 2 * threads - 1) / (2 * threads));
    blocks.count = (n + blocks.size - 1) / blocks.size;
  }
  return blocks;
}

// Packing buffers of the calling thread, kept between calls (no page faults in the steady state;
// kernels that MindSpore runs concurrently run on different calling threads). Buffers above
// kKeptScratch floats are given back after the call (ReleaseLargeScratch), so that a large model
// does not hold hundreds of MB per thread.
constexpr size_t kKeptScratch = size_t{16} << 20;  // 64 MB of floats per slot

std::vector<float> *ScratchBuffers() {
  thread_local std::vector<float> buffers[3];
  return buffers;
}

float *Scratch(int slot, int64_t size) {
  std::vector<float> &buffer = ScratchBuffers()[slot];
  if (static_cast<int64_t>(buffer.size()) < size) buffer.resize(static_cast<size_t>(size));
  return buffer.data();
}

void ReleaseLargeScratch() {
  for (int slot = 0; slot < 3; ++slot) {
    std::vector<float> &buffer = ScratchBuffers()[slot];
    if (buffer.size() > kKeptScratch) std::vector<float>().swap(buffer);
  }
}

// out[i] = in[index[i]] for i in [begin, end), rows of cols floats.
void GatherRows(const float *in, const std::vector<int64_t> &index, int64_t begin, int64_t end, int64_t cols,
                float *out) {
  for (int64_t i = begin; i < end; ++i) std::copy_n(in + index[i] * cols, cols, out + i * cols);
}

// out[index[i]] = in[i] for i in [begin, end).
void ScatterRows(const float *in, const std::vector<int64_t> &index, int64_t begin, int64_t end, int64_t cols,
                 float *out) {
  for (int64_t i = begin; i < end; ++i) std::copy_n(in + i * cols, cols, out + index[i] * cols);
}

void ZeroRows(const std::vector<int64_t> &index, int64_t cols, float *out) {
  for (int64_t r : index) std::fill_n(out + r * cols, cols, 0.0f);
}

}  // namespace

int RowMatMul(int nparam, void **params, int *ndims, int64_t **shapes, const char **, void *, void *) {
  if (nparam != 4 || ndims[0] != 2 || ndims[1] != 2 || ndims[2] != 1) return 1;
  const float *x = static_cast<const float *>(params[0]);
  const float *w = static_cast<const float *>(params[1]);
  const int32_t *rows = static_cast<const int32_t *>(params[2]);
  float *y = static_cast<float *>(params[3]);
  const int64_t t = shapes[0][0], k = shapes[0][1], n = shapes[1][0];
  if (shapes[1][1] != k || shapes[2][0] != t) return 2;
  const RowSplit split(rows, t);
  const int64_t r = static_cast<int64_t>(split.selected.size());
  std::atomic<int> status{0};
  if (r == t) {  // no padding: straight into y
    ParallelFor(GemmBlocks(t, 64), [&](int64_t r0, int64_t r1, int64_t) {
      if (dnnl_sgemm('N', 'T', r1 - r0, n, k, 1.0f, x + r0 * k, k, w, k, 0.0f, y + r0 * n, n) != 0) status = 3;
    });
    return status;
  }
  ZeroRows(split.others, n, y);
  float *packed_x = Scratch(0, r * k), *packed_y = Scratch(1, r * n);
  ParallelFor(GemmBlocks(r, 64), [&](int64_t r0, int64_t r1, int64_t) {
    GatherRows(x, split.selected, r0, r1, k, packed_x);
    if (dnnl_sgemm('N', 'T', r1 - r0, n, k, 1.0f, packed_x + r0 * k, k, w, k, 0.0f, packed_y + r0 * n, n) != 0) {
      status = 3;
    }
    ScatterRows(packed_y, split.selected, r0, r1, n, y);
  });
  ReleaseLargeScratch();
  return status;
}

int RowMatMulGrad(int nparam, void **params, int *ndims, int64_t **shapes, const char **, void *, void *) {
  if (nparam != 6 || ndims[0] != 2 || ndims[1] != 2 || ndims[2] != 1 || ndims[3] != 2) return 1;
  const float *x = static_cast<const float *>(params[0]);
  const float *w = static_cast<const float *>(params[1]);
  const int32_t *rows = static_cast<const int32_t *>(params[2]);
  const float *dy = static_cast<const float *>(params[3]);
  float *dx = static_cast<float *>(params[4]);
  float *dw = static_cast<float *>(params[5]);
  const int64_t t = shapes[0][0], k = shapes[0][1], n = shapes[1][0];
  if (shapes[1][1] != k || shapes[2][0] != t || shapes[3][0] != t || shapes[3][1] != n) return 2;
  const RowSplit split(rows, t);
  const int64_t r = static_cast<int64_t>(split.selected.size());
  const bool packed = r < t;
  const float *xs = x, *dys = dy;
  float *dxs = dx;
  if (packed) {
    ZeroRows(split.others, k, dx);
    float *px = Scratch(0, r * k), *pdy = Scratch(1, r * n);
    ParallelFor(Blocks(r, 256), [&](int64_t r0, int64_t r1, int64_t) {
      GatherRows(x, split.selected, r0, r1, k, px);
      GatherRows(dy, split.selected, r0, r1, n, pdy);
    });
    xs = px;
    dys = pdy;
    dxs = Scratch(2, r * k);
  }
  std::atomic<int> status{0};
  if (r > 0) {
    ParallelFor(GemmBlocks(r, 64), [&](int64_t r0, int64_t r1, int64_t) {  // dx = dy W
      if (dnnl_sgemm('N', 'N', r1 - r0, k, n, 1.0f, dys + r0 * n, n, w, k, 0.0f, dxs + r0 * k, k) != 0) status = 3;
      if (packed) ScatterRows(dxs, split.selected, r0, r1, k, dx);
    });
  }
  if (r == 0) {
    std::fill_n(dw, n * k, 0.0f);
  } else if (k > n) {
    // dW = dyᵀ x by column blocks of dW: each block reads its columns of the wider x once
    ParallelFor(GemmBlocks(k, 16), [&](int64_t k0, int64_t k1, int64_t) {
      if (dnnl_sgemm('T', 'N', n, k1 - k0, r, 1.0f, dys, n, xs + k0, k, 0.0f, dw + k0, k) != 0) status = 3;
    });
  } else {
    ParallelFor(GemmBlocks(n, 16), [&](int64_t n0, int64_t n1, int64_t) {  // dW = dyᵀ x, by row blocks of dW
      if (dnnl_sgemm('T', 'N', n1 - n0, k, r, 1.0f, dys + n0, n, xs, k, 0.0f, dw + n0 * k, k) != 0) status = 3;
    });
  }
  ReleaseLargeScratch();
  return status;
}
#endif  // BERT_ZOO_DNNL

}  // extern "C"
