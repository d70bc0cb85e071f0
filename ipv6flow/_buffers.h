/* The one checked view of a numpy array that the compiled helpers
 * (_core.c, _orgmap.c) take from Python: a contiguous 1-d buffer of `count`
 * integers of `itemsize` bytes (count < 0: any length), writable if asked.
 * 0 with a ValueError naming `what` otherwise (prefixed with
 * BUFFER_ERROR_PREFIX, which the including file may define first). */
#ifndef IPV6FLOW_BUFFERS_H
#define IPV6FLOW_BUFFERS_H

#include <Python.h>
#include <string.h>

#ifndef BUFFER_ERROR_PREFIX
#define BUFFER_ERROR_PREFIX ""
#endif

static int get_array(PyObject *obj, Py_buffer *v, Py_ssize_t itemsize, Py_ssize_t count,
                     int writable, const char *what)
{
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, v, flags) < 0)
        return 0;
    size_t flen = v->format ? strlen(v->format) : 0;
    if (v->itemsize != itemsize || v->ndim != 1 || (count >= 0 && v->shape[0] != count)
        || flen == 0 || !strchr("bBhHiIlLqQ", v->format[flen - 1])) {
        PyErr_Format(PyExc_ValueError, BUFFER_ERROR_PREFIX "%s: expected %zd integers of %zd bytes",
                     what, count, itemsize);
        PyBuffer_Release(v);
        return 0;
    }
    return 1;
}

#endif
