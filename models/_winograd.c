/* The tile transforms of Winograd F(4x4, 3x3) convolution for CPU float32 training (models/winograd.py).

   F(4x4, 3x3) computes a 4x4 block of a 3x3 convolution's outputs from a 6x6 block of its input with 36 products
   per (input channel, output channel) instead of 144 (Lavin & Gray, "Fast Algorithms for Convolutional Neural
   Networks", CVPR 2016, points 0, +-1, +-2, infinity):

       Y = A^T [ (G g G^T) (.) (B^T d B) ] A

   The 36 products of all tiles are 36 matrix products (done in Python, by oneDNN per product where torch has it);
   this file holds the memory-bound transforms around them, on NHWC float32 data, vectorised over channels (16 at a
   time). The three that read products (M, dV, dU) take them as one (36, ., .) array or as 36 separate planes
   (a table of pointers: oneDNN returns each product in its own buffer, and gathering them would cost a copy):

   - input_transform:  x (N, H, W, C) -> V (36, T, C) = B^T d B of every 6x6 input tile (zero padding outside x);
   - output_transform: M (36, T, K) -> y (N, Ho, Wo, K) = A^T m A of every tile, plus a bias, cropped to Ho x Wo;
   - grad_transform:   dy (N, Ho, Wo, K) -> dM (36, T, K) = A dy A^T (the adjoint of output_transform), whose
                       products with V give the gradient of the transformed weights and with U^T the gradient of V;
   - input_adjoint:    dV (36, T, C) -> dx (N, H, W, C) += B dV B^T (the adjoint of input_transform);
   - filter_adjoint:   dU (36, C, K) -> dW (3, 3, C, K) = G^T dU G (the adjoint of the filter transform; reads
                       products too).

   Dilation d is handled by tiling each of the d x d phase grids of the output on its own: a tile's 4x4 outputs are
   at rows a + d (4 ty + k) and columns b + d (4 tx + l), its 6x6 inputs d apart. Tiles are numbered
   t = (((n * nth + ty) * d + a) * ntw + tx) * d + b. Work is split over tiles between threads (pthreads; each
   output element is written by one tile), for input_adjoint over images (its tiles overlap). Built by make.sh /
   setup.py (plain C, no library); without it models.winograd is off and the convolutions run directly. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define LANES 16
#define MAX_THREADS 64

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__)) && !defined(__clang__)
#define VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define VECTOR_CLONES
#endif

typedef struct {
    const float *src;   /* x, M or dy */
    const float *const *planes; /* M, dV or dU as 36 separate planes, or NULL: consecutive from src */
    float *dst;         /* V, y or dM */
    const float *bias;  /* output_transform: K values or NULL */
    const float *zeros; /* C zeros for taps outside x */
    long N, H, W, C;    /* the NHWC tensor's sizes (x, or y / dy with H = Ho, W = Wo) */
    long pad, dil, nth, ntw, T;
    long t0, t1;        /* this worker's tiles */
} job_t;

static void tile_origin(const job_t *j, long t, long *n, long *row, long *col) {
    long b = t % j->dil;
    t /= j->dil;
    long tx = t % j->ntw;
    t /= j->ntw;
    long a = t % j->dil;
    t /= j->dil;
    long ty = t % j->nth;
    *n = t / j->nth;
    *row = a + j->dil * 4 * ty;
    *col = b + j->dil * 4 * tx;
}

/* Pointers to the NHWC pixels of tile t's size x size taps (d apart, starting `pad` before the tile's origin) in
   `base` (sizes H x W x C of the job), or `missing` for taps outside it. Returns whether any tap is inside. */
static int tile_taps(const job_t *j, long t, int size, long pad, const float *base, const float *missing,
                     const float **taps) {
    long n, r0, c0;
    int inside = 0;
    tile_origin(j, t, &n, &r0, &c0);
    for (int i = 0; i < size; i++) {
        for (int k = 0; k < size; k++) {
            long r = r0 - pad + j->dil * i, c = c0 - pad + j->dil * k;
            int in = r >= 0 && r < j->H && c >= 0 && c < j->W;
            taps[i * size + k] = in ? base + ((n * j->H + r) * j->W + c) * j->C : missing;
            inside |= in;
        }
    }
    return inside;
}

/* The 36 (T, C) planes of the job's (36, T, C) source: the given table, or consecutive from src. */
static void source_planes(const job_t *j, const float **pl) {
    for (long i = 0; i < 36; i++) {
        pl[i] = j->planes ? j->planes[i] : j->src + i * j->T * j->C;
    }
}

/* 16 float32 lanes as one value: gcc lowers it to one AVX-512 register, two AVX2 ones, or four SSE ones. */
typedef float v16 __attribute__((vector_size(64)));
typedef float v16u __attribute__((vector_size(64), aligned(4)));

#define load16(p) (*(const v16u *)(p))
#define store16(p, v) (*(v16u *)(p) = (v))

/* V = B^T d B for tiles t0..t1: B^T rows (4 0 -5 0 1 0) (0 -4 -4 1 1 0) (0 4 -4 -1 1 0) (0 -2 -1 2 1 0)
   (0 2 -1 -2 1 0) (0 4 0 -5 0 1). */
VECTOR_CLONES static void input_tiles(const job_t *j) {
    const long C = j->C, plane = j->T * j->C;
    const float *p[6][6];
    v16 tmp[6][6];
    for (long t = j->t0; t < j->t1; t++) {
        tile_taps(j, t, 6, j->pad, j->src, j->zeros, &p[0][0]);
        float *out = j->dst + t * C;
        for (long c = 0; c < C; c += LANES) {
            for (int k = 0; k < 6; k++) {
                v16 d0 = load16(p[0][k] + c), d1 = load16(p[1][k] + c), d2 = load16(p[2][k] + c);
                v16 d3 = load16(p[3][k] + c), d4 = load16(p[4][k] + c), d5 = load16(p[5][k] + c);
                tmp[0][k] = 4.0f * d0 - 5.0f * d2 + d4;
                tmp[1][k] = -4.0f * (d1 + d2) + d3 + d4;
                tmp[2][k] = 4.0f * (d1 - d2) - d3 + d4;
                tmp[3][k] = 2.0f * (d3 - d1) - d2 + d4;
                tmp[4][k] = 2.0f * (d1 - d3) - d2 + d4;
                tmp[5][k] = 4.0f * d1 - 5.0f * d3 + d5;
            }
            for (int u = 0; u < 6; u++) {
                float *o = out + (long)u * 6 * plane + c;
                v16 e0 = tmp[u][0], e1 = tmp[u][1], e2 = tmp[u][2], e3 = tmp[u][3], e4 = tmp[u][4], e5 = tmp[u][5];
                store16(o, 4.0f * e0 - 5.0f * e2 + e4);
                store16(o + plane, -4.0f * (e1 + e2) + e3 + e4);
                store16(o + 2 * plane, 4.0f * (e1 - e2) - e3 + e4);
                store16(o + 3 * plane, 2.0f * (e3 - e1) - e2 + e4);
                store16(o + 4 * plane, 2.0f * (e1 - e3) - e2 + e4);
                store16(o + 5 * plane, 4.0f * e1 - 5.0f * e3 + e5);
            }
        }
    }
}

/* y = A^T m A (+ bias) for tiles t0..t1: A^T rows (1 1 1 1 1 0) (0 1 -1 2 -2 0) (0 1 1 4 4 0) (0 1 -1 8 -8 1). */
VECTOR_CLONES static void output_tiles(const job_t *j) {
    const long K = j->C;
    const float *pl[36];
    source_planes(j, pl);
    v16 tmp[4][6];
    float *q[4][4];
    for (long t = j->t0; t < j->t1; t++) {
        if (!tile_taps(j, t, 4, 0, j->dst, NULL, (const float **)&q[0][0])) {
            continue;
        }
        const long row = t * K;
        for (long c = 0; c < K; c += LANES) {
            v16 b = j->bias ? load16(j->bias + c) : (v16){0};
            for (int v = 0; v < 6; v++) {
                const long at = row + c;
                v16 m0 = load16(pl[v] + at), m1 = load16(pl[6 + v] + at), m2 = load16(pl[12 + v] + at);
                v16 m3 = load16(pl[18 + v] + at), m4 = load16(pl[24 + v] + at), m5 = load16(pl[30 + v] + at);
                tmp[0][v] = m0 + m1 + m2 + m3 + m4;
                tmp[1][v] = m1 - m2 + 2.0f * (m3 - m4);
                tmp[2][v] = m1 + m2 + 4.0f * (m3 + m4);
                tmp[3][v] = m1 - m2 + 8.0f * (m3 - m4) + m5;
            }
            for (int i = 0; i < 4; i++) {
                v16 e0 = tmp[i][0], e1 = tmp[i][1], e2 = tmp[i][2], e3 = tmp[i][3], e4 = tmp[i][4], e5 = tmp[i][5];
                v16 y[4] = {e0 + e1 + e2 + e3 + e4 + b, e1 - e2 + 2.0f * (e3 - e4) + b,
                            e1 + e2 + 4.0f * (e3 + e4) + b, e1 - e2 + 8.0f * (e3 - e4) + e5 + b};
                for (int k = 0; k < 4; k++) {
                    if (q[i][k]) {
                        store16(q[i][k] + c, y[k]);
                    }
                }
            }
        }
    }
}

/* dM = A dy A^T for tiles t0..t1 (dy zero outside Ho x Wo); A = (A^T)^T. */
VECTOR_CLONES static void grad_tiles(const job_t *j) {
    const long K = j->C, plane = j->T * j->C;
    v16 tmp[6][4];
    const float *p[4][4];
    for (long t = j->t0; t < j->t1; t++) {
        tile_taps(j, t, 4, 0, j->src, j->zeros, &p[0][0]);
        float *out = j->dst + t * K;
        for (long c = 0; c < K; c += LANES) {
            for (int k = 0; k < 4; k++) {
                v16 y0 = load16(p[0][k] + c), y1 = load16(p[1][k] + c), y2 = load16(p[2][k] + c);
                v16 y3 = load16(p[3][k] + c);
                tmp[0][k] = y0;
                tmp[1][k] = y0 + y1 + y2 + y3;
                tmp[2][k] = y0 - y1 + y2 - y3;
                tmp[3][k] = y0 + 2.0f * y1 + 4.0f * y2 + 8.0f * y3;
                tmp[4][k] = y0 - 2.0f * y1 + 4.0f * y2 - 8.0f * y3;
                tmp[5][k] = y3;
            }
            for (int u = 0; u < 6; u++) {
                float *o = out + (long)u * 6 * plane + c;
                v16 e0 = tmp[u][0], e1 = tmp[u][1], e2 = tmp[u][2], e3 = tmp[u][3];
                store16(o, e0);
                store16(o + plane, e0 + e1 + e2 + e3);
                store16(o + 2 * plane, e0 - e1 + e2 - e3);
                store16(o + 3 * plane, e0 + 2.0f * e1 + 4.0f * e2 + 8.0f * e3);
                store16(o + 4 * plane, e0 - 2.0f * e1 + 4.0f * e2 - 8.0f * e3);
                store16(o + 5 * plane, e3);
            }
        }
    }
}

/* dx += B dV B^T of tiles t0..t1, added into x's layout at the tile's taps (the adjoint of input_tiles; taps in
   the zero padding are dropped). Overlapping tiles add into the same pixels, so a worker's tiles must cover whole
   images (run_parallel's whole_images). The map x -> B x (columns of B^T) is (4x0) (-4x1 +4x2 -2x3 +2x4 +4x5)
   (-5x0 -4x1 -4x2 -x3 -x4) (x1 -x2 +2x3 -2x4 -5x5) (x0 +x1 +x2 +x3 +x4) (x5). */
#define B_MAP(x0, x1, x2, x3, x4, x5, y)                                                                            \
    do {                                                                                                            \
        y[0] = 4.0f * (x0);                                                                                         \
        y[1] = 4.0f * ((x2) - (x1) + (x5)) + 2.0f * ((x4) - (x3));                                                  \
        y[2] = -5.0f * (x0) - 4.0f * ((x1) + (x2)) - (x3) - (x4);                                                   \
        y[3] = (x1) - (x2) + 2.0f * ((x3) - (x4)) - 5.0f * (x5);                                                    \
        y[4] = (x0) + (x1) + (x2) + (x3) + (x4);                                                                    \
        y[5] = (x5);                                                                                                \
    } while (0)

VECTOR_CLONES static void input_adjoint_tiles(const job_t *j) {
    const long C = j->C;
    const float *pl[36];
    source_planes(j, pl);
    float *q[6][6];
    v16 tmp[6][6];
    for (long t = j->t0; t < j->t1; t++) {
        tile_taps(j, t, 6, j->pad, j->dst, NULL, (const float **)&q[0][0]);
        const long row = t * C;
        for (long c = 0; c < C; c += LANES) {
            for (int v = 0; v < 6; v++) { /* tmp[i][v] = sum_u B^T[u][i] dV[u][v] */
                const long at = row + c;
                v16 y[6];
                B_MAP(load16(pl[v] + at), load16(pl[6 + v] + at), load16(pl[12 + v] + at), load16(pl[18 + v] + at),
                      load16(pl[24 + v] + at), load16(pl[30 + v] + at), y);
                for (int i = 0; i < 6; i++) {
                    tmp[i][v] = y[i];
                }
            }
            for (int i = 0; i < 6; i++) { /* dD[i][k] = sum_v tmp[i][v] B^T[v][k] */
                v16 y[6];
                B_MAP(tmp[i][0], tmp[i][1], tmp[i][2], tmp[i][3], tmp[i][4], tmp[i][5], y);
                for (int k = 0; k < 6; k++) {
                    if (q[i][k]) {
                        store16(q[i][k] + c, load16(q[i][k] + c) + y[k]);
                    }
                }
            }
        }
    }
}

/* dW = G^T dU G for rows (input channels) t0..t1 of the 36 (C, K) planes of dU: the adjoint of the filter
   transform U = G w G^T, written as (3, 3, C, K) (dW[i][j][c][k] = sum_uv G[u][i] G[v][j] dU[6u+v][c][k]). */
static const float GT[3][6] = {{1.0f / 4, -1.0f / 6, -1.0f / 6, 1.0f / 24, 1.0f / 24, 0.0f},
                               {0.0f, -1.0f / 6, 1.0f / 6, 1.0f / 12, -1.0f / 12, 0.0f},
                               {0.0f, -1.0f / 6, -1.0f / 6, 1.0f / 6, 1.0f / 6, 1.0f}};

VECTOR_CLONES static void filter_adjoint_rows(const job_t *j) {
    const long K = j->C, C = j->T;
    const float *pl[36];
    source_planes(j, pl);
    for (long c = j->t0; c < j->t1; c++) {
        for (long k = 0; k < K; k += LANES) {
            const long at = c * K + k;
            v16 tmp[6][3];
            for (int u = 0; u < 6; u++) { /* tmp[u][jj] = sum_v dU[u][v] G[v][jj] */
                v16 p0 = load16(pl[6 * u] + at), p1 = load16(pl[6 * u + 1] + at), p2 = load16(pl[6 * u + 2] + at);
                v16 p3 = load16(pl[6 * u + 3] + at), p4 = load16(pl[6 * u + 4] + at), p5 = load16(pl[6 * u + 5] + at);
                for (int jj = 0; jj < 3; jj++) {
                    tmp[u][jj] = GT[jj][0] * p0 + GT[jj][1] * p1 + GT[jj][2] * p2 + GT[jj][3] * p3 + GT[jj][4] * p4 +
                                 GT[jj][5] * p5;
                }
            }
            for (int i = 0; i < 3; i++) {
                for (int jj = 0; jj < 3; jj++) {
                    v16 y = GT[i][0] * tmp[0][jj] + GT[i][1] * tmp[1][jj] + GT[i][2] * tmp[2][jj] +
                            GT[i][3] * tmp[3][jj] + GT[i][4] * tmp[4][jj] + GT[i][5] * tmp[5][jj];
                    store16(j->dst + ((long)(i * 3 + jj) * C + c) * K + k, y);
                }
            }
        }
    }
}

typedef void (*tile_fn)(const job_t *);

typedef struct {
    tile_fn fn;
    job_t job;
} task_t;

static void *run_task(void *arg) {
    task_t *task = (task_t *)arg;
    task->fn(&task->job);
    return NULL;
}

/* Runs fn over the tiles 0..T split into `threads` contiguous parts; returns 0, or -1 when no thread started. */
static int run_parallel(tile_fn fn, const job_t *proto, int threads, int whole_images) {
    task_t tasks[MAX_THREADS];
    pthread_t ids[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    if (threads < 1) {
        threads = 1;
    }
    if (threads > MAX_THREADS) {
        threads = MAX_THREADS;
    }
    const long units = whole_images ? proto->N : proto->T; /* split tiles, or images (tiles of one image are
                                                               consecutive) */
    if (threads > units) {
        threads = (int)(units > 0 ? units : 1);
    }
    for (int i = 0; i < threads; i++) {
        tasks[i].fn = fn;
        tasks[i].job = *proto;
        tasks[i].job.t0 = units * i / threads * (proto->T / units);
        tasks[i].job.t1 = units * (i + 1) / threads * (proto->T / units);
    }
    for (int i = 1; i < threads; i++) {
        started[i] = pthread_create(&ids[i], NULL, run_task, &tasks[i]) == 0;
        if (!started[i]) {
            run_task(&tasks[i]); /* no thread: this one does the part */
        }
    }
    run_task(&tasks[0]);
    for (int i = 1; i < threads; i++) {
        if (started[i]) {
            pthread_join(ids[i], NULL);
        }
    }
    return 0;
}

static PyObject *run_transform(tile_fn fn, job_t *job, int threads, long zeros_len, int whole_images) {
    float *zeros = NULL;
    if (zeros_len > 0) {
        zeros = (float *)calloc((size_t)zeros_len, sizeof(float));
        if (!zeros) {
            return PyErr_NoMemory();
        }
    }
    job->zeros = zeros;
    Py_BEGIN_ALLOW_THREADS
    run_parallel(fn, job, threads, whole_images);
    Py_END_ALLOW_THREADS
    free(zeros);
    Py_RETURN_NONE;
}

/* Checks the sizes, fills in the pointers and the tile count, and runs fn over every tile. */
static PyObject *run_job(tile_fn fn, job_t *job, unsigned long long src, unsigned long long dst, int threads,
                         long zeros_len, int whole_images) {
    if (job->C <= 0 || job->C % LANES || job->dil < 1 || job->nth < 1 || job->ntw < 1 || job->N < 1) {
        PyErr_SetString(PyExc_ValueError, "winograd: channels must be a positive multiple of 16, tiles >= 1");
        return NULL;
    }
    job->src = (const float *)(uintptr_t)src;
    job->dst = (float *)(uintptr_t)dst;
    job->T = job->N * job->nth * job->dil * job->ntw * job->dil;
    return run_transform(fn, job, threads, zeros_len, whole_images);
}

/* Runs fn with the arguments (src_ptr, N, H, W, C, pad, dil, nth, ntw, dst_ptr, threads[, planes_ptr]), x's
   sizes; planes_ptr (input_adjoint): a table of 36 plane pointers that replaces src_ptr, or 0. */
static PyObject *run_x_side(tile_fn fn, PyObject *args, long zeros, int whole_images) {
    unsigned long long src, dst, planes = 0;
    job_t job = {0};
    int threads;
    if (!PyArg_ParseTuple(args, "KllllllllKi|K", &src, &job.N, &job.H, &job.W, &job.C, &job.pad, &job.dil, &job.nth,
                          &job.ntw, &dst, &threads, &planes)) {
        return NULL;
    }
    job.planes = planes ? (const float *const *)(uintptr_t)planes : NULL;
    return run_job(fn, &job, src, dst, threads, zeros ? job.C : 0, whole_images);
}

/* input_transform(x_ptr, N, H, W, C, pad, dil, nth, ntw, v_ptr, threads) */
static PyObject *py_input_transform(PyObject *self, PyObject *args) { return run_x_side(input_tiles, args, 1, 0); }

/* output_transform(m_ptr, N, Ho, Wo, K, dil, nth, ntw, bias_ptr or 0, y_ptr, threads[, planes_ptr or 0]) */
static PyObject *py_output_transform(PyObject *self, PyObject *args) {
    unsigned long long src, dst, bias, planes = 0;
    job_t job = {0};
    int threads;
    if (!PyArg_ParseTuple(args, "KlllllllKKi|K", &src, &job.N, &job.H, &job.W, &job.C, &job.dil, &job.nth, &job.ntw,
                          &bias, &dst, &threads, &planes)) {
        return NULL;
    }
    job.bias = bias ? (const float *)(uintptr_t)bias : NULL;
    job.planes = planes ? (const float *const *)(uintptr_t)planes : NULL;
    return run_job(output_tiles, &job, src, dst, threads, 0, 0);
}

/* grad_transform(dy_ptr, N, Ho, Wo, K, dil, nth, ntw, dm_ptr, threads) */
static PyObject *py_grad_transform(PyObject *self, PyObject *args) {
    unsigned long long src, dst;
    job_t job = {0};
    int threads;
    if (!PyArg_ParseTuple(args, "KlllllllKi", &src, &job.N, &job.H, &job.W, &job.C, &job.dil, &job.nth, &job.ntw,
                          &dst, &threads)) {
        return NULL;
    }
    return run_job(grad_tiles, &job, src, dst, threads, job.C, 0);
}

/* input_adjoint(dv_ptr, N, H, W, C, pad, dil, nth, ntw, dx_ptr (zeroed or to add to), threads[, planes_ptr]) */
static PyObject *py_input_adjoint(PyObject *self, PyObject *args) {
    return run_x_side(input_adjoint_tiles, args, 0, 1);
}

/* filter_adjoint(du_ptr, C, K, dw_ptr, threads[, planes_ptr or 0]): dU (36, C, K) -> dW (3, 3, C, K) */
static PyObject *py_filter_adjoint(PyObject *self, PyObject *args) {
    unsigned long long src, dst, planes = 0;
    job_t job = {0};
    int threads;
    if (!PyArg_ParseTuple(args, "KllKi|K", &src, &job.T, &job.C, &dst, &threads, &planes)) {
        return NULL;
    }
    if (job.C <= 0 || job.C % LANES || job.T < 1) {
        PyErr_SetString(PyExc_ValueError, "winograd: channels must be a positive multiple of 16");
        return NULL;
    }
    job.N = job.T; /* split rows between the threads */
    job.src = (const float *)(uintptr_t)src;
    job.dst = (float *)(uintptr_t)dst;
    job.planes = planes ? (const float *const *)(uintptr_t)planes : NULL;
    return run_transform(filter_adjoint_rows, &job, threads, 0, 0);
}

static PyMethodDef methods[] = {
    {"input_transform", py_input_transform, METH_VARARGS, "x (N,H,W,C) -> V (36,T,C) = B^T d B per tile"},
    {"output_transform", py_output_transform, METH_VARARGS, "M (36,T,K) -> y (N,Ho,Wo,K) = A^T m A + bias"},
    {"grad_transform", py_grad_transform, METH_VARARGS, "dy (N,Ho,Wo,K) -> dM (36,T,K) = A dy A^T per tile"},
    {"input_adjoint", py_input_adjoint, METH_VARARGS, "dV (36,T,C) -> dx (N,H,W,C) += B dV B^T per tile"},
    {"filter_adjoint", py_filter_adjoint, METH_VARARGS, "dU (36,C,K) -> dW (3,3,C,K) = G^T dU G per channel pair"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_winograd",
                                    "Tile transforms of Winograd F(4x4, 3x3) (models/winograd.py).", -1, methods};

/* PLANE_TABLES: output_transform / input_adjoint / filter_adjoint take the optional table of 36 plane pointers, and
   filter_adjoint exists (an extension built before them has neither; models/winograd.py then gathers the planes
   into one array and takes the weight gradient with torch). */
PyMODINIT_FUNC PyInit__winograd(void) {
    PyObject *m = PyModule_Create(&module);
    if (m && PyModule_AddIntConstant(m, "PLANE_TABLES", 1) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
