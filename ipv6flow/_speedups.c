/*
 * Optional compiled helper for the classic-pcap record walk.
 *
 * Why: the walk from one record header to the next is a chain of
 * dependent reads (each record's caplen says where the next one starts), so
 * numpy cannot vectorize it; in Python it costs about 1 us per record, more
 * than the whole numpy classification. This helper does exactly what the
 * pure-Python loop in capture/pcap.py (PcapReader.batches) does, and that
 * loop stays as the fallback when this module is not built.
 *
 * walk_pcap(buf, pos, big_endian, swapped, limit)
 *   -> (rows: bytes, pos: int, too_long: bool, caplen: int)
 * rows holds native int64 quintuples (offset, ts_sec, ts_frac, caplen,
 * wirelen) for every record wholly inside buf, starting at pos. The walk
 * stops at the first record that runs past the buffer (pos is its start)
 * or whose caplen exceeds limit (too_long, with that caplen).
 * swapped: 0 lengths as stored, 1 always swapped, 2 swapped when caplen > len
 * (pcap 2.0-2.2 files; see pcap.py).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static inline uint32_t rd32(const unsigned char *p, int big)
{
    if (big)
        return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
    return ((uint32_t)p[3] << 24) | ((uint32_t)p[2] << 16) | ((uint32_t)p[1] << 8) | p[0];
}

static PyObject *walk_pcap(PyObject *self, PyObject *args)
{
    Py_buffer view;
    Py_ssize_t pos;
    int big, swapped;
    unsigned long limit;
    if (!PyArg_ParseTuple(args, "y*niik", &view, &pos, &big, &swapped, &limit))
        return NULL;
    const unsigned char *b = (const unsigned char *)view.buf;
    Py_ssize_t size = view.len;
    /* at most one row per 16 header bytes: bounded by the buffer, not by
       any length field */
    Py_ssize_t cap = (size > pos ? (size - pos) / 16 : 0) + 1;
    int64_t *rows = PyMem_Malloc((size_t)cap * 5 * sizeof(int64_t));
    if (!rows) {
        PyBuffer_Release(&view);
        return PyErr_NoMemory();
    }
    Py_ssize_t n = 0;
    int too_long = 0;
    uint32_t caplen = 0;
    while (pos >= 0 && size - pos >= 16) {
        const unsigned char *h = b + pos;
        uint32_t c = rd32(h + 8, big), w = rd32(h + 12, big);
        caplen = c;
        if (swapped && (swapped == 1 || c > w))
            caplen = w;
        if (caplen > limit) {
            too_long = 1;
            break;
        }
        Py_ssize_t stop = pos + 16 + (Py_ssize_t)caplen;
        if (stop > size)
            break;
        int64_t *r = rows + 5 * n++;
        r[0] = pos;
        r[1] = rd32(h, big);
        r[2] = rd32(h + 4, big);
        r[3] = c;
        r[4] = w;
        pos = stop;
    }
    PyObject *blob = PyBytes_FromStringAndSize((const char *)rows, n * 5 * (Py_ssize_t)sizeof(int64_t));
    PyMem_Free(rows);
    PyBuffer_Release(&view);
    if (!blob)
        return NULL;
    return Py_BuildValue("(NnOk)", blob, pos, too_long ? Py_True : Py_False, (unsigned long)caplen);
}

static PyMethodDef methods[] = {
    {"walk_pcap", walk_pcap, METH_VARARGS, "Walk classic-pcap record headers in a buffer."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_speedups", NULL, -1, methods};

PyMODINIT_FUNC PyInit__speedups(void) { return PyModule_Create(&module); }
