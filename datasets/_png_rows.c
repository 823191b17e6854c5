/* Decode the first rows of a greyscale PNG (libpng), GIL released: crop511 object masks, read only down to the
 * last row an augmentation crop reads.
 *
 * decode_rows(data, out, rows) -> (width, height, decoded)
 *
 *   data: the PNG file's bytes (any buffer).
 *   out:  a writable C-contiguous uint8 buffer of at least height * width bytes, seen as (height, width).
 *   rows: how many rows from the top to decode (clamped to [0, height]).
 *
 * Rows [0, rows) are written to `out` as 8-bit grey (1, 2 and 4-bit grey expanded to 0..255 as libpng's
 * png_set_expand_gray_1_2_4_to_8 does, which is what cv2.imdecode gives); rows below are not decoded (a PNG's rows
 * come one after the other in one zlib stream, so the rows above cannot be skipped, the rows below can). When `out`
 * is too small nothing is decoded and `decoded` is False. Anything but non-interlaced 1/2/4/8-bit grey without a
 * transparency chunk, and any libpng error or warning (corrupt data, a bad CRC) raises ValueError: the caller then
 * decodes the whole file with OpenCV, strictly, which names it (datasets/masks.py).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <setjmp.h>
#include <string.h>

#include <png.h>

typedef struct {
    const unsigned char *data;
    size_t len, pos;
    char message[200];
    int warned;
} source;

static void on_read(png_structp png, png_bytep dst, png_size_t n) {
    source *src = (source *)png_get_io_ptr(png);
    if (n > src->len - src->pos) {
        snprintf(src->message, sizeof(src->message), "PNG data cut short");
        png_longjmp(png, 1);
    }
    memcpy(dst, src->data + src->pos, n);
    src->pos += n;
}

static void on_error(png_structp png, png_const_charp msg) {
    source *src = (source *)png_get_error_ptr(png);
    snprintf(src->message, sizeof(src->message), "%s", msg);
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg) {
    source *src = (source *)png_get_error_ptr(png);
    if (!src->warned++)
        snprintf(src->message, sizeof(src->message), "%s", msg);
}

static PyObject *decode_rows(PyObject *self, PyObject *args) {
    Py_buffer data, out;
    int rows;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*w*i", &data, &out, &rows))
        return NULL;
    source src = {(const unsigned char *)data.buf, (size_t)data.len, 0, "", 0};
    volatile int width = 0, height = 0, decoded = 0, failed = 0;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (png == NULL || info == NULL) {
        png_destroy_read_struct(png ? &png : NULL, NULL, NULL);
        PyBuffer_Release(&data);
        PyBuffer_Release(&out);
        return PyErr_NoMemory();
    }
    Py_BEGIN_ALLOW_THREADS
    if (setjmp(png_jmpbuf(png))) {
        failed = 1;
    } else {
        png_set_read_fn(png, &src, on_read);
        png_read_info(png, info);
        width = (int)png_get_image_width(png, info);
        height = (int)png_get_image_height(png, info);
        int depth = png_get_bit_depth(png, info), colour = png_get_color_type(png, info);
        if (colour != PNG_COLOR_TYPE_GRAY || depth > 8 || png_get_interlace_type(png, info) != PNG_INTERLACE_NONE
            || png_get_valid(png, info, PNG_INFO_tRNS)) {
            snprintf(src.message, sizeof(src.message), "not a plain greyscale PNG (colour type %d, %d bits)",
                     colour, depth);
            failed = 1;
        } else if ((Py_ssize_t)width * height <= out.len && width > 0 && height > 0) {
            if (depth < 8)
                png_set_expand_gray_1_2_4_to_8(png);
            png_read_update_info(png, info);
            if (png_get_rowbytes(png, info) != (png_size_t)width) {
                snprintf(src.message, sizeof(src.message), "unexpected row size");
                failed = 1;
            } else {
                int n = rows < 0 ? 0 : (rows > height ? height : rows);
                unsigned char *base = (unsigned char *)out.buf;
                for (int y = 0; y < n; y++)
                    png_read_row(png, base + (size_t)y * width, NULL);
                decoded = 1;
            }
        }
        if (src.warned)
            failed = 1;
    }
    png_destroy_read_struct(&png, &info, NULL);
    Py_END_ALLOW_THREADS

    PyBuffer_Release(&data);
    PyBuffer_Release(&out);
    if (failed) {
        PyErr_Format(PyExc_ValueError, "PNG decode failed: %s", src.message);
        return NULL;
    }
    return Py_BuildValue("iiO", width, height, decoded ? Py_True : Py_False);
}

static PyMethodDef methods[] = {
    {"decode_rows", decode_rows, METH_VARARGS,
     "decode_rows(data, out, rows) -> (width, height, decoded): decode the first `rows` rows of a greyscale PNG\n"
     "into out, a (height, width) uint8 buffer."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_png_rows", "Decode the top rows of a greyscale PNG with libpng.", -1, methods,
    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__png_rows(void) { return PyModule_Create(&module); }
