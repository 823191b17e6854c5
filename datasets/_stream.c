/* float32 batch rows written with streaming (non-temporal) stores, GIL released.
 *
 * subtract(src, dst, value)   dst[i] = (float)src[i] - value        (uint8 -> float32)
 * label(src, dst)             dst[i] = src[i] > 127 ? 1.0f : -1.0f  (uint8 warped mask -> +1 / -1 mask label)
 * fill(dst, value)            dst[i] = value
 *
 *   src: a C-contiguous uint8 buffer of n bytes; dst: a writable C-contiguous buffer of n float32 (same count).
 *
 * A DataLoader worker writes each sample into its row of a shared batch buffer (datasets/shared_batches.py), tens
 * of megabytes that are never in the cache: an ordinary store first reads every cache line it writes from memory
 * (read for ownership), which costs about twice the write itself. Streaming stores write whole lines without
 * reading them. The values are exactly those of numpy's float32 arithmetic (uint8 -> float32 is exact, then one
 * float32 subtraction), so a sample is the same either way. x86-64 (SSE2, the baseline) gets the streaming loop;
 * elsewhere plain loops do the same arithmetic.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>

#if defined(__SSE2__) || defined(_M_X64)
#include <emmintrin.h>
#define HAVE_SSE2 1
#else
#define HAVE_SSE2 0
#endif

enum { OP_SUBTRACT, OP_LABEL };

/* The scalar value of one element. */
static inline float convert(int op, uint8_t v, float value) {
    return op == OP_SUBTRACT ? (float)v - value : (v > 127 ? 1.0f : -1.0f);
}

static void run(int op, const uint8_t *src, float *dst, Py_ssize_t n, float value) {
    Py_ssize_t i = 0;
#if HAVE_SSE2
    /* scalar head until dst is 16-byte aligned (rows of a batch buffer start anywhere on a 4-byte boundary) */
    while (i < n && ((uintptr_t)(dst + i) & 15) != 0) {
        dst[i] = convert(op, src[i], value);
        i++;
    }
    const __m128i zero = _mm_setzero_si128();
    const __m128 sub = _mm_set1_ps(value), half = _mm_set1_ps(127.5f), two = _mm_set1_ps(2.0f),
                 one = _mm_set1_ps(1.0f);
    for (; i + 16 <= n; i += 16) {
        __m128i bytes = _mm_loadu_si128((const __m128i *)(src + i));
        __m128i lo = _mm_unpacklo_epi8(bytes, zero), hi = _mm_unpackhi_epi8(bytes, zero);
        __m128 f[4] = {_mm_cvtepi32_ps(_mm_unpacklo_epi16(lo, zero)), _mm_cvtepi32_ps(_mm_unpackhi_epi16(lo, zero)),
                       _mm_cvtepi32_ps(_mm_unpacklo_epi16(hi, zero)), _mm_cvtepi32_ps(_mm_unpackhi_epi16(hi, zero))};
        for (int k = 0; k < 4; k++) {
            __m128 out;
            if (op == OP_SUBTRACT)
                out = _mm_sub_ps(f[k], sub);
            else /* 2 * (v > 127.5) - 1: +1 above 127, else -1 (integers: > 127.5 is > 127) */
                out = _mm_sub_ps(_mm_and_ps(_mm_cmpgt_ps(f[k], half), two), one);
            _mm_stream_ps(dst + i + 4 * k, out);
        }
    }
    _mm_sfence();
#endif
    for (; i < n; i++)
        dst[i] = convert(op, src[i], value);
}

static void run_fill(float *dst, Py_ssize_t n, float value) {
    Py_ssize_t i = 0;
#if HAVE_SSE2
    while (i < n && ((uintptr_t)(dst + i) & 15) != 0)
        dst[i++] = value;
    const __m128 v = _mm_set1_ps(value);
    for (; i + 4 <= n; i += 4)
        _mm_stream_ps(dst + i, v);
    _mm_sfence();
#endif
    for (; i < n; i++)
        dst[i] = value;
}

/* Parse (src, dst[, value]) and check that dst holds as many float32 as src has bytes. */
static PyObject *convert_call(PyObject *args, int op) {
    Py_buffer src, dst;
    float value = 0.0f;
    if (op == OP_SUBTRACT) {
        if (!PyArg_ParseTuple(args, "y*w*f", &src, &dst, &value))
            return NULL;
    } else if (!PyArg_ParseTuple(args, "y*w*", &src, &dst)) {
        return NULL;
    }
    if (dst.len != src.len * (Py_ssize_t)sizeof(float) || ((uintptr_t)dst.buf & 3) != 0) {
        PyBuffer_Release(&src);
        PyBuffer_Release(&dst);
        PyErr_SetString(PyExc_ValueError, "dst must hold one aligned float32 per byte of src");
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    run(op, (const uint8_t *)src.buf, (float *)dst.buf, src.len, value);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&src);
    PyBuffer_Release(&dst);
    Py_RETURN_NONE;
}

static PyObject *subtract(PyObject *self, PyObject *args) {
    (void)self;
    return convert_call(args, OP_SUBTRACT);
}

static PyObject *label(PyObject *self, PyObject *args) {
    (void)self;
    return convert_call(args, OP_LABEL);
}

static PyObject *fill(PyObject *self, PyObject *args) {
    Py_buffer dst;
    float value;
    (void)self;
    if (!PyArg_ParseTuple(args, "w*f", &dst, &value))
        return NULL;
    if (dst.len % (Py_ssize_t)sizeof(float) != 0 || ((uintptr_t)dst.buf & 3) != 0) {
        PyBuffer_Release(&dst);
        PyErr_SetString(PyExc_ValueError, "dst must be an aligned float32 buffer");
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    run_fill((float *)dst.buf, dst.len / (Py_ssize_t)sizeof(float), value);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&dst);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"subtract", subtract, METH_VARARGS, "subtract(src, dst, value): dst = float32(src) - value, streaming stores."},
    {"label", label, METH_VARARGS, "label(src, dst): dst = +1 where src > 127 else -1, streaming stores."},
    {"fill", fill, METH_VARARGS, "fill(dst, value): every float32 of dst = value, streaming stores."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_stream", "float32 batch rows written with streaming stores.", -1, methods,
    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__stream(void) { return PyModule_Create(&module); }
