/*
 * Optional compiled helper for live capture (engine/live.py): frames out of
 * libpcap into a batch without a Python call per frame.
 *
 * Why: the Python path (live.Pending) calls pcap_next_ex through ctypes and
 * copies each frame with two ctypes memmoves, about 3 us a frame, which caps
 * `ipv6flow live` at 100,000-250,000 frames/s before any decoding. Here a C
 * loop calls pcap_dispatch and a C callback copies each frame into buffers
 * that Python takes whole, once per batch; the GIL is released meanwhile.
 *
 * No libpcap header and no link to libpcap: live.py opens the handle with the
 * ctypes binding it already uses (same options, same errors, pcap_stats) and
 * hands this helper the handle's address and the address of the loaded
 * libpcap's pcap_dispatch. struct pcap_pkthdr is declared below as libpcap
 * declares it on every Unix (a struct timeval, then two 32-bit lengths;
 * PKTHDR_SIZE lets live.py compare it with the binding's). So the helper
 * builds wherever a C compiler is (no libpcap-dev), uses the one libpcap the
 * system has, and a wheel carries no copy of libpcap and its dependencies.
 *
 * Batcher(pcap, dispatch, max_bytes, max_frames, room, fd=-1, linger_ms=0)
 *   pcap: address of an activated, non-blocking pcap_t (or one from
 *   pcap_open_offline); dispatch: address of pcap_dispatch. The data buffer
 *   holds max_bytes + room bytes; fill() stops asking for frames once
 *   max_bytes or max_frames are reached, so `room` (at least the snapshot
 *   length) is the room left for the frame that crosses max_bytes. fd: the
 *   handle's selectable descriptor, for the linger below.
 * fill(limit) -> status: reads up to limit frames. 0: limit read (or a
 *   signal came while lingering); 1: none was waiting (pcap_dispatch
 *   returned 0, and nothing came while lingering); 2: full; -1:
 *   pcap_dispatch failed (pcap_geterr says why); -2: libpcap handed over a
 *   frame larger than the room left (its captured length is in `oversize`;
 *   the frame is not kept). Frames read before a failure stay in the batch.
 *   Linger: when the ring runs empty and the batch holds frames, fill waits
 *   (poll on fd, GIL released) for the kernel's next block, up to linger_ms
 *   in all per call, before it says "none waiting", so that a busy link
 *   makes batches of max_bytes (a batch costs the decoder a fixed 2-3 ms
 *   besides its frames) instead of one batch per ring block.
 * take() -> (data: bytes, meta: bytearray) and empties the batch. meta holds
 *   4 rows of n native int64: ts seconds, ts microseconds, captured length,
 *   wire length.
 *
 * Bounds: pcap_dispatch is called for one frame at a time. Asked for more,
 * libpcap's TPACKET_V3 reader can hand over more than asked (its count
 * restarts at each ring block) and finishes a block after pcap_breakloop, so
 * a count would not bound the copies; one at a time it is exact, and the
 * per-call cost (no system call inside a ring block) is a few tens of ns.
 * Every copy is checked against the room left in the buffer (libpcap never
 * hands over more than the snapshot length, but a frame that would not fit
 * is refused, never written past the end); no length from a packet sizes an
 * allocation (the buffers are allocated once, from the arguments above).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

struct lc_pkthdr {                  /* libpcap's struct pcap_pkthdr */
    struct timeval ts;
    uint32_t caplen;
    uint32_t len;
};

typedef void (*lc_handler)(unsigned char *, const struct lc_pkthdr *, const unsigned char *);
typedef int (*lc_dispatch_fn)(void *, int, lc_handler, unsigned char *);

typedef struct {
    PyObject_HEAD
    void *pcap;
    lc_dispatch_fn dispatch;
    unsigned char *data;
    int64_t *meta;                  /* 4 columns of max_frames */
    Py_ssize_t max_bytes, max_frames, capacity;
    Py_ssize_t n, size;
    long long oversize;             /* caplen of a refused frame, else 0 */
    int fd, linger_ms;
    int busy;
} Batcher;

static void on_frame(unsigned char *user, const struct lc_pkthdr *h, const unsigned char *bytes)
{
    Batcher *b = (Batcher *)user;
    Py_ssize_t cap = (Py_ssize_t)h->caplen;
    if (b->n >= b->max_frames || cap > b->capacity - b->size) {
        b->oversize = (long long)h->caplen;
        return;
    }
    memcpy(b->data + b->size, bytes, (size_t)cap);
    int64_t *m = b->meta;
    Py_ssize_t i = b->n, mf = b->max_frames;
    m[i] = (int64_t)h->ts.tv_sec;
    m[mf + i] = (int64_t)h->ts.tv_usec;
    m[2 * mf + i] = (int64_t)cap;
    m[3 * mf + i] = (int64_t)h->len;
    b->n = i + 1;
    b->size += cap;
}

static double monotonic(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec / 1e9;
}

static int Batcher_init(Batcher *b, PyObject *args, PyObject *kw)
{
    unsigned long long pcap, dispatch;
    Py_ssize_t max_bytes, max_frames, room;
    int fd = -1, linger_ms = 0;
    if (!PyArg_ParseTuple(args, "KKnnn|ii", &pcap, &dispatch, &max_bytes, &max_frames, &room,
                          &fd, &linger_ms))
        return -1;
    if (linger_ms < 0 || linger_ms > 10000) {
        PyErr_SetString(PyExc_ValueError, "linger_ms out of range");
        return -1;
    }
    if (!pcap || !dispatch) {
        PyErr_SetString(PyExc_ValueError, "no pcap handle or no pcap_dispatch");
        return -1;
    }
    if (max_bytes < 1 || max_frames < 1 || room < 0 || max_bytes > ((Py_ssize_t)1 << 40)
        || room > ((Py_ssize_t)1 << 40) || max_frames > ((Py_ssize_t)1 << 32)) {
        PyErr_SetString(PyExc_ValueError, "batch sizes out of range");
        return -1;
    }
    if (b->data || b->meta) {
        PyErr_SetString(PyExc_RuntimeError, "Batcher is initialised once");
        return -1;
    }
    b->pcap = (void *)(uintptr_t)pcap;
    b->dispatch = (lc_dispatch_fn)(uintptr_t)dispatch;
    b->max_bytes = max_bytes;
    b->max_frames = max_frames;
    b->capacity = max_bytes + room;
    b->fd = fd;
    b->linger_ms = fd >= 0 ? linger_ms : 0;
    b->data = PyMem_Malloc((size_t)b->capacity);
    b->meta = PyMem_Malloc((size_t)max_frames * 4 * sizeof(int64_t));
    if (!b->data || !b->meta) {
        PyMem_Free(b->data);
        PyMem_Free(b->meta);
        b->data = NULL;
        b->meta = NULL;
        PyErr_NoMemory();
        return -1;
    }
    b->n = b->size = 0;
    b->oversize = 0;
    return 0;
}

static void Batcher_dealloc(Batcher *b)
{
    PyMem_Free(b->data);
    PyMem_Free(b->meta);
    Py_TYPE(b)->tp_free((PyObject *)b);
}

static int ready(Batcher *b)
{
    if (!b->data) {
        PyErr_SetString(PyExc_RuntimeError, "Batcher not initialised");
        return 0;
    }
    if (b->busy) {
        PyErr_SetString(PyExc_RuntimeError, "Batcher in use by another thread");
        return 0;
    }
    return 1;
}

static PyObject *Batcher_fill(Batcher *b, PyObject *args)
{
    Py_ssize_t limit;
    if (!PyArg_ParseTuple(args, "n", &limit) || !ready(b))
        return NULL;
    int status = 0;
    b->busy = 1;
    b->oversize = 0;
    Py_BEGIN_ALLOW_THREADS
    double waited = 0, linger = b->linger_ms / 1000.0;
    for (Py_ssize_t got = 0; got < limit;) {
        if (b->n >= b->max_frames || b->size >= b->max_bytes) {
            status = 2;
            break;
        }
        int r = b->dispatch(b->pcap, 1, on_frame, (unsigned char *)b);
        if (b->oversize) {
            status = -2;
            break;
        }
        if (r < 0) {                /* PCAP_ERROR; -2 (breakloop) is never asked for */
            status = -1;
            break;
        }
        if (r > 0) {
            got++;
            continue;
        }
        /* The ring is empty: linger for the next block if there is a batch
           to make bigger, else let the caller wait. The waits of one call
           add up to linger_ms at most, so a trickle of frames cannot keep
           the caller from its clock (status lines, --duration, a stop). */
        if (b->n == 0 || waited >= linger) {
            status = 1;
            break;
        }
        struct pollfd pfd = {.fd = b->fd, .events = POLLIN};
        double before = monotonic();
        int r2 = poll(&pfd, 1, (int)((linger - waited) * 1000.0) + 1);
        waited += monotonic() - before;
        if (r2 < 0) {
            if (errno == EINTR)     /* a signal: back to Python, which handles it */
                break;
            status = 1;
            break;
        }
    }
    Py_END_ALLOW_THREADS
    b->busy = 0;
    if (status == 0 && (b->n >= b->max_frames || b->size >= b->max_bytes))
        status = 2;
    return PyLong_FromLong(status);
}

static PyObject *Batcher_take(Batcher *b, PyObject *unused)
{
    if (!ready(b))
        return NULL;
    Py_ssize_t n = b->n, mf = b->max_frames;
    PyObject *data = PyBytes_FromStringAndSize((const char *)b->data, b->size);
    PyObject *meta = PyByteArray_FromStringAndSize(NULL, n * 4 * (Py_ssize_t)sizeof(int64_t));
    if (!data || !meta) {
        Py_XDECREF(data);
        Py_XDECREF(meta);
        return NULL;
    }
    int64_t *out = (int64_t *)PyByteArray_AS_STRING(meta);
    for (int col = 0; col < 4; col++)
        memcpy(out + col * n, b->meta + col * mf, (size_t)n * sizeof(int64_t));
    b->n = b->size = 0;
    return Py_BuildValue("(NN)", data, meta);
}

static Py_ssize_t Batcher_len(Batcher *b) { return b->n; }

static PyObject *Batcher_get_size(Batcher *b, void *c) { return PyLong_FromSsize_t(b->size); }
static PyObject *Batcher_get_oversize(Batcher *b, void *c) { return PyLong_FromLongLong(b->oversize); }

static PyMethodDef Batcher_methods[] = {
    {"fill", (PyCFunction)Batcher_fill, METH_VARARGS,
     "fill(limit) -> status: 0 limit read, 1 none waiting, 2 full, -1 pcap error, "
     "-2 a frame larger than the room left (see oversize)."},
    {"take", (PyCFunction)Batcher_take, METH_NOARGS,
     "take() -> (data, meta): the batch's bytes and 4 int64 columns; empties it."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Batcher_getset[] = {
    {"size", (getter)Batcher_get_size, NULL, "bytes in the batch", NULL},
    {"oversize", (getter)Batcher_get_oversize, NULL,
     "captured length of the frame the last fill refused (0: none)", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PySequenceMethods Batcher_as_sequence = {.sq_length = (lenfunc)Batcher_len};

static PyTypeObject BatcherType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "ipv6flow._livecap.Batcher",
    .tp_basicsize = sizeof(Batcher),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Frames from pcap_dispatch into one batch buffer (see the module source).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Batcher_init,
    .tp_dealloc = (destructor)Batcher_dealloc,
    .tp_methods = Batcher_methods,
    .tp_getset = Batcher_getset,
    .tp_as_sequence = &Batcher_as_sequence,
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_livecap", NULL, -1, NULL};

PyMODINIT_FUNC PyInit__livecap(void)
{
    if (PyType_Ready(&BatcherType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m)
        return NULL;
    Py_INCREF(&BatcherType);
    if (PyModule_AddObject(m, "Batcher", (PyObject *)&BatcherType) < 0
        || PyModule_AddIntConstant(m, "PKTHDR_SIZE", (long)sizeof(struct lc_pkthdr)) < 0) {
        Py_DECREF(&BatcherType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
