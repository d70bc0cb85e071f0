/*
 * Optional compiled helper for the record walks (classic pcap, and runs of
 * pcapng Enhanced Packet Blocks).
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

/* Room for the rows of a walk: at most one per `step` bytes of the buffer
   from pos on, so bounded by the buffer, not by any length field. NULL
   (with MemoryError set, the view released) when out of memory. */
static int64_t *alloc_rows(Py_buffer *view, Py_ssize_t pos, Py_ssize_t step, int width)
{
    Py_ssize_t cap = (view->len > pos ? (view->len - pos) / step : 0) + 1;
    int64_t *rows = PyMem_Malloc((size_t)cap * width * sizeof(int64_t));
    if (!rows) {
        PyBuffer_Release(view);
        PyErr_NoMemory();
    }
    return rows;
}

/* The rows as bytes; frees them and releases the view. */
static PyObject *rows_blob(int64_t *rows, Py_ssize_t n, int width, Py_buffer *view)
{
    PyObject *blob = PyBytes_FromStringAndSize((const char *)rows,
                                               n * width * (Py_ssize_t)sizeof(int64_t));
    PyMem_Free(rows);
    PyBuffer_Release(view);
    return blob;
}

#define WALK_AHEAD 8192

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
    int64_t *rows = alloc_rows(&view, pos, 16, 5);      /* 16: a record header */
    if (!rows)
        return NULL;
    Py_ssize_t n = 0;
    int too_long = 0;
    uint32_t caplen = 0;
    Py_ssize_t ahead = pos;       /* the buffer is prefetched up to here */
    while (pos >= 0 && size - pos >= 16) {
        const unsigned char *h = b + pos;
        /* Each record's header is found from the one before (a chain of
           dependent reads, one cache miss each on a buffer fresh from the
           kernel): keep the lines WALK_AHEAD bytes on requested, so the
           misses overlap instead (a hint, never a read). */
        for (; ahead < pos + WALK_AHEAD && ahead < size; ahead += 64)
            __builtin_prefetch(b + ahead);
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
    PyObject *blob = rows_blob(rows, n, 5, &view);
    if (!blob)
        return NULL;
    return Py_BuildValue("(NnOk)", blob, pos, too_long ? Py_True : Py_False, (unsigned long)caplen);
}

/*
 * walk_pcapng(buf, pos, big_endian, interfaces, max_block)
 *   -> (rows: bytes, pos: int)
 * The run of Enhanced Packet Blocks starting at pos that the Python block
 * loop in capture/pcapng.py (PcapngReader.records) would read without a
 * word: each wholly inside buf, with a legal total length (at least 32, a
 * multiple of 4, at most max_block), a trailing length equal to the
 * leading one, an interface id below `interfaces` (the kept ones), a
 * captured length that fits the block, and options that fit it. rows
 * holds native int64 sextuples (data offset, caplen, original length,
 * timestamp high, timestamp low, interface id); pos is where the walk
 * stopped: at the first block that is anything else, which the Python loop
 * then reads (and reports, if it is bad), exactly as without this helper.
 */
static int options_fit(const unsigned char *b, Py_ssize_t start, Py_ssize_t end, int big)
{
    while (end - start >= 4) {
        uint32_t code = big ? ((uint32_t)b[start] << 8) | b[start + 1]
                            : ((uint32_t)b[start + 1] << 8) | b[start];
        uint32_t len = big ? ((uint32_t)b[start + 2] << 8) | b[start + 3]
                           : ((uint32_t)b[start + 3] << 8) | b[start + 2];
        if (code == 0)
            return 1;
        Py_ssize_t value = start + 4;
        if ((Py_ssize_t)len > end - value)
            return 0;
        start = value + (((Py_ssize_t)len + 3) & ~(Py_ssize_t)3);
    }
    return 1;
}

static PyObject *walk_pcapng(PyObject *self, PyObject *args)
{
    Py_buffer view;
    Py_ssize_t pos, interfaces;
    int big;
    unsigned long max_block;
    if (!PyArg_ParseTuple(args, "y*nink", &view, &pos, &big, &interfaces, &max_block))
        return NULL;
    const unsigned char *b = (const unsigned char *)view.buf;
    Py_ssize_t size = view.len;
    int64_t *rows = alloc_rows(&view, pos, 32, 6);      /* 32: the smallest EPB */
    if (!rows)
        return NULL;
    Py_ssize_t n = 0;
    while (pos >= 0 && size - pos >= 32) {
        const unsigned char *h = b + pos;
        uint32_t btype = rd32(h, big), blen = rd32(h + 4, big);
        if (btype != 6 || blen < 32 || (blen & 3) || blen > max_block
            || (Py_ssize_t)blen > size - pos || rd32(h + blen - 4, big) != blen)
            break;
        uint32_t iface = rd32(h + 8, big), caplen = rd32(h + 20, big);
        if ((Py_ssize_t)iface >= interfaces || caplen > blen - 32)
            break;
        Py_ssize_t start = pos + 28;
        Py_ssize_t opts = start + (((Py_ssize_t)caplen + 3) & ~(Py_ssize_t)3);
        if (opts < pos + (Py_ssize_t)blen - 4 && !options_fit(b, opts, pos + blen - 4, big))
            break;
        int64_t *r = rows + 6 * n++;
        r[0] = start;
        r[1] = caplen;
        r[2] = rd32(h + 24, big);
        r[3] = rd32(h + 12, big);
        r[4] = rd32(h + 16, big);
        r[5] = iface;
        pos += blen;
    }
    PyObject *blob = rows_blob(rows, n, 6, &view);
    if (!blob)
        return NULL;
    return Py_BuildValue("(Nn)", blob, pos);
}

static PyMethodDef methods[] = {
    {"walk_pcap", walk_pcap, METH_VARARGS, "Walk classic-pcap record headers in a buffer."},
    {"walk_pcapng", walk_pcapng, METH_VARARGS, "Walk a run of pcapng enhanced packet blocks in a buffer."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_speedups", NULL, -1, methods};

PyMODINIT_FUNC PyInit__speedups(void) { return PyModule_Create(&module); }
