/* Decode only a rectangle of a JPEG (libjpeg-turbo's jpeg_skip_scanlines / jpeg_crop_scanline), BGR, GIL released.
 *
 * header(data) -> (width, height, components)
 * decode_region(data, out, x0, y0, x1, y1) -> (width, height, decoded)
 *
 *   data: the JPEG file's bytes (any buffer).
 *   out:  a writable C-contiguous uint8 buffer of at least height * width * 3 bytes, seen as (height, width, 3) BGR.
 *   x0, y0, x1, y1: the pixels needed, columns [x0, x1) and rows [y0, y1) (clamped to the image).
 *
 * The rows and columns of the rectangle are written at their place in `out` (other pixels may be written too:
 * the columns are widened to whole iMCUs); nothing else of `out` is touched. When `out` is too small nothing is
 * decoded and `decoded` is False, so the caller can allocate (width, height, 3) and call again. Any libjpeg error
 * (corrupt data, an unsupported colour space) raises ValueError, and so does a libjpeg warning met while decoding
 * the rectangle (corrupt entropy data: "Corrupt JPEG data: ..."), which OpenCV's reader would only print; the caller
 * then decodes the whole file strictly and names it (datasets/jpeg.py, utils/images.py).
 *
 * Rows are exact (jpeg_skip_scanlines); a column crop differs from a full decode in its first and last column
 * (horizontal chroma upsampling lacks its neighbour), so callers ask for a few columns more than they read
 * (datasets/jpeg.py: 8 on each side). The pixels then equal those of a full decode with libjpeg's defaults (islow
 * IDCT, fancy upsampling), which is what cv2.imdecode does; datasets/jpeg.py checks this once per process against
 * cv2 and falls back to cv2 otherwise.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <jpeglib.h>

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
} error_mgr;

static void on_error(j_common_ptr cinfo) {
    error_mgr *err = (error_mgr *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, err->message);
    longjmp(err->jump, 1);
}

static void on_message(j_common_ptr cinfo, int level) {
    error_mgr *err = (error_mgr *)cinfo->err;
    if (level >= 0)
        return; /* trace messages */
    if (err->pub.num_warnings++ == 0) /* a warning: corrupt data; the first one is kept */
        (*cinfo->err->format_message)(cinfo, err->message);
}

#define MAX_ROWS 16

static PyObject *decode_region(PyObject *self, PyObject *args) {
    Py_buffer data, out;
    int x0, y0, x1, y1;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*w*iiii", &data, &out, &x0, &y0, &x1, &y1))
        return NULL;
    struct jpeg_decompress_struct cinfo;
    error_mgr err;
    volatile int width = 0, height = 0, decoded = 0, failed = 0;
    memset(&cinfo, 0, sizeof(cinfo));
    err.message[0] = '\0';
    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = on_error;
    err.pub.emit_message = on_message;

    Py_BEGIN_ALLOW_THREADS
    if (setjmp(err.jump)) {
        failed = 1;
    } else {
        jpeg_create_decompress(&cinfo);
        jpeg_mem_src(&cinfo, (const unsigned char *)data.buf, (unsigned long)data.len);
        jpeg_read_header(&cinfo, TRUE);
        width = (int)cinfo.image_width;
        height = (int)cinfo.image_height;
        if ((Py_ssize_t)width * height * 3 <= out.len && width > 0 && height > 0) {
            cinfo.out_color_space = JCS_EXT_BGR;
            x0 = x0 < 0 ? 0 : (x0 > width ? width : x0);
            x1 = x1 < x0 ? x0 : (x1 > width ? width : x1);
            y0 = y0 < 0 ? 0 : (y0 > height ? height : y0);
            y1 = y1 < y0 ? y0 : (y1 > height ? height : y1);
            if (x1 > x0 && y1 > y0) {
                jpeg_start_decompress(&cinfo);
                JDIMENSION xoff = (JDIMENSION)x0, xwidth = (JDIMENSION)(x1 - x0);
                if (xwidth < (JDIMENSION)width)
                    jpeg_crop_scanline(&cinfo, &xoff, &xwidth);
                if (y0 > 0)
                    jpeg_skip_scanlines(&cinfo, (JDIMENSION)y0);
                unsigned char *base = (unsigned char *)out.buf;
                JSAMPROW rows[MAX_ROWS];
                while (cinfo.output_scanline < (JDIMENSION)y1) {
                    int want = y1 - (int)cinfo.output_scanline;
                    if (want > MAX_ROWS)
                        want = MAX_ROWS;
                    for (int i = 0; i < want; i++)
                        rows[i] = base + ((size_t)(cinfo.output_scanline + i) * width + xoff) * 3;
                    jpeg_read_scanlines(&cinfo, rows, (JDIMENSION)want);
                }
            }
            decoded = 1;
        }
        if (err.pub.num_warnings > 0)
            failed = 1;
    }
    jpeg_destroy_decompress(&cinfo);
    Py_END_ALLOW_THREADS

    PyBuffer_Release(&data);
    PyBuffer_Release(&out);
    if (failed) {
        PyErr_Format(PyExc_ValueError, "JPEG decode failed: %s", err.message);
        return NULL;
    }
    return Py_BuildValue("iiO", width, height, decoded ? Py_True : Py_False);
}

static PyObject *header(PyObject *self, PyObject *args) {
    Py_buffer data;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*", &data))
        return NULL;
    struct jpeg_decompress_struct cinfo;
    error_mgr err;
    volatile int width = 0, height = 0, components = 0, failed = 0;
    memset(&cinfo, 0, sizeof(cinfo));
    err.message[0] = '\0';
    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = on_error;
    err.pub.emit_message = on_message;
    if (setjmp(err.jump)) {
        failed = 1;
    } else {
        jpeg_create_decompress(&cinfo);
        jpeg_mem_src(&cinfo, (const unsigned char *)data.buf, (unsigned long)data.len);
        jpeg_read_header(&cinfo, TRUE);
        width = (int)cinfo.image_width;
        height = (int)cinfo.image_height;
        components = cinfo.num_components;
    }
    jpeg_destroy_decompress(&cinfo);
    PyBuffer_Release(&data);
    if (failed) {
        PyErr_Format(PyExc_ValueError, "JPEG header unreadable: %s", err.message);
        return NULL;
    }
    return Py_BuildValue("iii", width, height, components);
}

static PyMethodDef methods[] = {
    {"header", header, METH_VARARGS, "header(data) -> (width, height, components) of a JPEG."},
    {"decode_region", decode_region, METH_VARARGS,
     "decode_region(data, out, x0, y0, x1, y1) -> (width, height, decoded): decode columns [x0, x1) and rows\n"
     "[y0, y1) of a JPEG as BGR into out, a (height, width, 3) uint8 buffer."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_jpeg_region", "Decode a rectangle of a JPEG with libjpeg(-turbo).", -1, methods,
    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__jpeg_region(void) { return PyModule_Create(&module); }
