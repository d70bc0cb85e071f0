/*
 * Optional compiled helper: a read-only map of part of a capture file,
 * guarded against the file shrinking under it.
 *
 * Why: reading a plain pcap file into a buffer copies every byte from the
 * page cache (0.16 s of a 0.9 s run on the 1.3 GB benchmark capture); a
 * map hands the batch walk the page cache's own pages, and the decoder
 * then touches only the headers. capture/source.py uses it for plain
 * (uncompressed, regular) files and reads into buffers otherwise, or when
 * this module is not built.
 *
 * The catch of any file map: if another program truncates the file while
 * it is mapped (tcpdump -W overwriting the oldest file of its ring, say),
 * touching a page past the new end raises SIGBUS, which kills the process.
 * So every FileMap registers its range, and a SIGBUS handler, for a fault
 * inside a registered range, maps zero-filled anonymous pages over the rest
 * of that range (the reads go on, seeing zeros) and counts the event;
 * torn() returns the count, and the reader turns a change of it into a
 * one-line error naming the file at its next step (source.py). A fault
 * anywhere else goes to the handler that was there before (faulthandler's,
 * or the default action).
 *
 * FileMap(fd, offset, length): maps [offset, offset + length) of the open
 * file fd (length > 0; the caller keeps it inside the file's size at the
 * time of the call). The object exposes exactly those bytes through the
 * buffer protocol, read-only; the map is removed when the object and every
 * view of it are gone. No length here comes from a packet.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define SLOTS 64

/* The ranges the handler may repair: [start, end) page-aligned, 0 if free.
 * Written only by this thread, with the GIL; read by the handler. */
static volatile uintptr_t slot_start[SLOTS], slot_end[SLOTS];
static volatile sig_atomic_t torn_count = 0;
static struct sigaction previous;
static int installed = 0;
static uintptr_t page_size = 4096;

static void on_sigbus(int sig, siginfo_t *info, void *context)
{
    uintptr_t at = (uintptr_t)info->si_addr;
    for (int i = 0; i < SLOTS; i++) {
        uintptr_t start = slot_start[i], end = slot_end[i];
        if (start && at >= start && at < end) {
            uintptr_t from = at & ~(page_size - 1);
            void *got = mmap((void *)from, end - from, PROT_READ,
                             MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
            if (got != MAP_FAILED) {
                torn_count++;
                return;
            }
            break;
        }
    }
    /* not ours: whoever handled SIGBUS before, or the default action */
    if (previous.sa_flags & SA_SIGINFO) {
        previous.sa_sigaction(sig, info, context);
        return;
    }
    if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
        previous.sa_handler(sig);
        return;
    }
    signal(SIGBUS, SIG_DFL);   /* returning re-runs the access: it dies there */
}

static int install(void)
{
    if (installed)
        return 0;
    long size = sysconf(_SC_PAGESIZE);
    if (size > 0)
        page_size = (uintptr_t)size;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_sigbus;
    action.sa_flags = SA_SIGINFO;
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGBUS, &action, &previous) != 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    installed = 1;
    return 0;
}

typedef struct {
    PyObject_HEAD
    char *base;        /* the map, page-aligned */
    size_t mapped;     /* its length */
    Py_ssize_t skip;   /* offset - aligned offset */
    Py_ssize_t length; /* the bytes exposed */
    int slot;
} FileMap;

static void filemap_dealloc(FileMap *self)
{
    if (self->base) {
        if (self->slot >= 0) {
            slot_start[self->slot] = 0;
            slot_end[self->slot] = 0;
        }
        munmap(self->base, self->mapped);
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *filemap_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    int fd;
    long long offset, length;
    static char *names[] = {"fd", "offset", "length", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "iLL", names, &fd, &offset, &length))
        return NULL;
    if (offset < 0 || length <= 0 || length > PY_SSIZE_T_MAX / 2) {
        PyErr_SetString(PyExc_ValueError, "FileMap: offset or length out of range");
        return NULL;
    }
    if (install() < 0)
        return NULL;
    int slot = -1;
    for (int i = 0; i < SLOTS; i++)
        if (!slot_start[i]) {
            slot = i;
            break;
        }
    if (slot < 0) {
        PyErr_SetString(PyExc_OSError, "FileMap: too many maps alive");
        return NULL;
    }
    long long aligned = offset & ~(long long)(page_size - 1);
    size_t mapped = (size_t)(offset - aligned) + (size_t)length;
    void *base = mmap(NULL, mapped, PROT_READ, MAP_SHARED, fd, (off_t)aligned);
    if (base == MAP_FAILED)
        return PyErr_SetFromErrno(PyExc_OSError);
    FileMap *self = (FileMap *)type->tp_alloc(type, 0);
    if (!self) {
        munmap(base, mapped);
        return NULL;
    }
    self->base = base;
    self->mapped = mapped;
    self->skip = (Py_ssize_t)(offset - aligned);
    self->length = (Py_ssize_t)length;
    self->slot = slot;
    slot_end[slot] = ((uintptr_t)base + mapped + page_size - 1) & ~(page_size - 1);
    slot_start[slot] = (uintptr_t)base;
    return (PyObject *)self;
}

static int filemap_getbuffer(FileMap *self, Py_buffer *view, int flags)
{
    return PyBuffer_FillInfo(view, (PyObject *)self, self->base + self->skip,
                             self->length, 1, flags);
}

static Py_ssize_t filemap_len(FileMap *self) { return self->length; }

static PyBufferProcs filemap_as_buffer = {(getbufferproc)filemap_getbuffer, NULL};
static PySequenceMethods filemap_as_sequence = {.sq_length = (lenfunc)filemap_len};

static PyTypeObject FileMapType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "ipv6flow._filemap.FileMap",
    .tp_basicsize = sizeof(FileMap),
    .tp_dealloc = (destructor)filemap_dealloc,
    .tp_as_buffer = &filemap_as_buffer,
    .tp_as_sequence = &filemap_as_sequence,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "FileMap(fd, offset, length): a read-only map of part of a file.",
    .tp_new = filemap_new,
};

static PyObject *torn(PyObject *self, PyObject *unused)
{
    return PyLong_FromLong((long)torn_count);
}

static PyMethodDef methods[] = {
    {"torn", torn, METH_NOARGS, "How many times a map's file shrank under it."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_filemap", NULL, -1, methods};

PyMODINIT_FUNC PyInit__filemap(void)
{
    if (PyType_Ready(&FileMapType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m)
        return NULL;
    Py_INCREF(&FileMapType);
    if (PyModule_AddObject(m, "FileMap", (PyObject *)&FileMapType) < 0) {
        Py_DECREF(&FileMapType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
