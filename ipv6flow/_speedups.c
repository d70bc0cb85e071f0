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

/*
 * walk_sflow(buf, offsets, caplens, linktypes, port, udp_tunnel_ports, header_linktypes)
 *   -> (status, bounds, datagrams, agents, samples)
 *
 * The sFlow v5 datagrams of a batch of captured carrier frames (capture/
 * sflow.py, SflowFrames.add_batch), for the clean ones only: the pure
 * Python pair udp_payload() + parse_datagram() (decode/sflow.py) is the
 * definition, and every frame this walk is not sure of is left to it.
 *
 * buf is the batch buffer; offsets, caplens (native int64) and linktypes
 * (native int32) its rows. port is the sFlow UDP port,
 * udp_tunnel_ports a 65536-byte table (non-zero: a UDP tunnel port the
 * decoder follows), header_linktypes a table of native int64 link types by
 * raw-header protocol (-1: none), HEADER_PROTOCOLS entries.
 *
 * status (one byte per frame):
 *   0  surely not a datagram to the port (counted as another frame);
 *   1  a datagram walked whole without a problem or a bad sample: its
 *      figures are in the outputs below;
 *   2  not sure where the UDP payload is (another link type, an IPv4
 *      header length of 0, a fragment, IPv6 extension headers, a tunnel
 *      port, something Teredo might claim, ...): the Python pair decides;
 *   3  a datagram to the port whose walk met a problem or a bad sample:
 *      bounds says where it is, parse_datagram() walks it.
 * bounds: native int64 (start, stop) per frame, relative to the frame
 *   (status 1 and 3), as udp_payload() returns them.
 * datagrams: native int64 rows of DGRAM_COLS per status-1 frame, in frame
 *   order: frame index, agent address type (1 or 2), sub agent, sequence
 *   number, samples kept, then the counts of what was skipped, in the order
 *   of SKIP_NAMES in capture/sflow.py.
 * agents: 16 bytes per datagram row, the agent address (IPv4: 4 bytes,
 *   then zeros).
 * samples: native int64 rows of SAMPLE_COLS per kept sample, in order:
 *   datagram row, source id type, source index, sequence number, sampling
 *   rate, link type, wire length, header length, and where the header
 *   starts in buf (the caller copies the headers out with gather()).
 *
 * Bounds: every read is checked against the frame's captured bytes and the
 * enclosing datagram, sample or record; the outputs are sized by the batch
 * (frames, and the sum of captured lengths: a kept sample takes at least
 * 64 bytes of its frame), never by a field. They are written in place into
 * the bytes objects returned (no copy), which are then cut to size.
 */
#define SFLOW_SKIPS 10
#define DGRAM_COLS (5 + SFLOW_SKIPS)
#define SAMPLE_COLS 9
#define SAMPLE_MIN_BYTES 64          /* sample header 8, flow sample 32, record 8, raw header 16 */
#define MAX_FRAME_LENGTH 262144      /* decode/sflow.py MAX_FRAME_LENGTH */
#define MAX_VLAN_TAGS 8
#define N_HEADER_PROTOCOLS 32
enum { SK_COUNTER, SK_DISCARD, SK_ENTERPRISE_SAMPLE, SK_OTHER_SAMPLE, SK_TRAILING,
       SK_ENTERPRISE_RECORD, SK_OTHER_RECORD, SK_EXTRA_HEADER, SK_OTHER_PROTOCOL,
       SK_NO_HEADER };
enum { ST_OTHER = 0, ST_CLEAN = 1, ST_UNSURE = 2, ST_PYTHON_WALK = 3 };

static inline uint32_t be32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline uint32_t be16(const unsigned char *p) { return ((uint32_t)p[0] << 8) | p[1]; }

/* Where the UDP payload of a datagram to `port` is in frame d[0:len]:
   ST_CLEAN with *start, *stop set (the walk is still to come), ST_OTHER, or
   ST_UNSURE. The decode_frame() steps it mirrors are in the comments. */
static int sflow_carrier(const unsigned char *d, Py_ssize_t len, int32_t linktype,
                         uint32_t port, const unsigned char *tunnel_ports,
                         Py_ssize_t *start, Py_ssize_t *stop)
{
    Py_ssize_t off = 0;
    int version;
    switch (linktype) {
    case 1: {                               /* Ethernet, 802.1Q/ad tags */
        if (len < 14)
            return ST_UNSURE;
        uint32_t et = be16(d + 12);
        off = 14;
        int tags = 0;
        while (et == 0x8100 || et == 0x88A8 || et == 0x9100) {
            if (++tags > MAX_VLAN_TAGS || off + 4 > len)
                return ST_UNSURE;
            et = be16(d + off + 2);
            off += 4;
        }
        if (et == 0x0800)
            version = 4;
        else if (et == 0x86DD)
            version = 6;
        else
            return ST_UNSURE;               /* LLC, MPLS, PPPoE, ARP...: the decoder's */
        break;
    }
    case 12: case 14: case 101:             /* raw IP: the version nibble */
        if (len < 1)
            return ST_UNSURE;
        version = d[0] >> 4;
        if (version != 4 && version != 6)
            return ST_UNSURE;
        break;
    case 228:
        version = 4;
        break;
    case 229:
        version = 6;
        break;
    default:
        return ST_UNSURE;
    }
    Py_ssize_t u, pend;
    if (version == 4) {
        if (off + 20 > len || d[off] >> 4 != 4)
            return ST_UNSURE;
        Py_ssize_t ihl = (Py_ssize_t)(d[off] & 0x0F) * 4;
        Py_ssize_t tot = be16(d + off + 2);
        if (ihl < 20 || tot < ihl)          /* tot 0 (TSO) included: the decoder's */
            return ST_UNSURE;
        pend = off + tot < len ? off + tot : len;
        if (off + ihl > pend || (be16(d + off + 6) & 0x1FFF) || d[off + 9] != 17)
            return ST_UNSURE;               /* cut options, a later fragment, not UDP */
        u = off + ihl;
    } else {
        if (off + 40 > len || d[off] >> 4 != 6 || d[off + 6] != 17)
            return ST_UNSURE;               /* extension headers: the decoder walks them */
        Py_ssize_t plen = be16(d + off + 4);
        Py_ssize_t decl = plen == 0 ? len : off + 40 + plen;
        pend = decl < len ? decl : len;
        u = off + 40;
    }
    if (u + 8 > pend)
        return ST_UNSURE;
    uint32_t sport = be16(d + u), dport = be16(d + u + 2);
    Py_ssize_t ulen = be16(d + u + 4);
    if (tunnel_ports[sport] || tunnel_ports[dport])
        return ST_UNSURE;
    if (version == 4 && ulen >= 8) {
        /* encap.teredo(): anything it might take is left to it */
        Py_ssize_t uend = (u + ulen <= pend) ? u + ulen : pend;
        Py_ssize_t p = u + 8;
        if (p + 4 <= uend && d[p] == 0 && d[p + 1] == 1)
            return ST_UNSURE;
        if (p + 8 <= uend && d[p] == 0 && d[p + 1] == 0)
            p += 8;
        if (p + 40 <= uend && d[p] >> 4 == 6)
            return ST_UNSURE;
    }
    if (dport != port)
        return ST_OTHER;
    Py_ssize_t e = u + (ulen > 8 ? ulen : 8);
    if (e > pend)
        e = pend;
    *start = u + 8;
    *stop = e;
    return ST_CLEAN;
}

struct sflow_out {
    int64_t *samples;
    Py_ssize_t nsamples, max_samples;
    Py_ssize_t base;                /* where the frame being walked starts in buf */
};

/* One flow sample (format 1, or 3 when expanded) in d[at:stop]: 0 when it
   is clean (its header, if any, appended to out), -1 when parse_datagram
   would count it bad (or the outputs are full: never, by their sizes). */
static int sflow_flow_sample(const unsigned char *d, Py_ssize_t at, Py_ssize_t stop,
                             int expanded, int64_t dgram, const int64_t *header_lts,
                             int64_t *skips, struct sflow_out *out)
{
    uint32_t seq, src_type, src_index, rate, nrec;
    if (expanded) {
        if (at + 44 > stop)
            return -1;
        seq = be32(d + at);
        src_type = be32(d + at + 4);
        src_index = be32(d + at + 8);
        rate = be32(d + at + 12);
        nrec = be32(d + at + 40);
        at += 44;
    } else {
        if (at + 32 > stop)
            return -1;
        seq = be32(d + at);
        uint32_t source = be32(d + at + 4);
        src_type = source >> 24;
        src_index = source & 0xFFFFFF;
        rate = be32(d + at + 8);
        nrec = be32(d + at + 28);
        at += 32;
    }
    if (rate == 0 || (Py_ssize_t)nrec > (stop - at) / 8)
        return -1;
    int kept = 0;
    for (uint32_t i = 0; i < nrec; i++) {
        if (at + 8 > stop)
            return -1;
        uint32_t fmt = be32(d + at), length = be32(d + at + 4);
        at += 8;
        Py_ssize_t rstop = at + (Py_ssize_t)length;
        if ((length & 3) || rstop > stop)
            return -1;
        if (fmt != 1) {
            skips[fmt >> 12 ? SK_ENTERPRISE_RECORD : SK_OTHER_RECORD]++;
        } else if (kept) {
            skips[SK_EXTRA_HEADER]++;
        } else if (at + 16 > rstop) {
            return -1;
        } else {
            uint32_t proto = be32(d + at), frame_length = be32(d + at + 4);
            uint32_t stripped = be32(d + at + 8), hlen = be32(d + at + 12);
            Py_ssize_t hstart = at + 16;
            if (hstart + (Py_ssize_t)hlen > rstop || frame_length > MAX_FRAME_LENGTH
                || stripped > frame_length || hlen > frame_length)
                return -1;
            int64_t lt = proto < N_HEADER_PROTOCOLS ? header_lts[proto] : -1;
            if (lt < 0) {
                skips[SK_OTHER_PROTOCOL]++;
            } else {
                if (out->nsamples >= out->max_samples)
                    return -1;
                kept = 1;
                uint32_t wire = frame_length - stripped;
                int64_t *r = out->samples + SAMPLE_COLS * out->nsamples++;
                r[0] = dgram;
                r[1] = src_type;
                r[2] = src_index;
                r[3] = seq;
                r[4] = rate;
                r[5] = lt;
                r[6] = wire > hlen ? wire : hlen;
                r[7] = hlen;
                r[8] = out->base + hstart;
            }
        }
        at = rstop;
    }
    if (!kept)
        skips[SK_NO_HEADER]++;
    return 0;
}

/* The datagram in d[off:end] (parse_datagram's walk): 0 and its row
   filled when clean, -1 (outputs rolled back) when the Python walk is to
   count what is wrong with it. */
static int sflow_datagram(const unsigned char *d, Py_ssize_t off, Py_ssize_t end,
                          int64_t dgram, const int64_t *header_lts, int64_t *row,
                          unsigned char *agent, struct sflow_out *out)
{
    Py_ssize_t nsamples0 = out->nsamples;
    int64_t skips[SFLOW_SKIPS] = {0};
    if (off + 8 > end || be32(d + off) != 5)
        return -1;
    uint32_t kind = be32(d + off + 4);
    Py_ssize_t alen = kind == 1 ? 4 : kind == 2 ? 16 : 0;
    Py_ssize_t at = off + 8;
    if (!alen || at + alen > end)
        return -1;
    memset(agent, 0, 16);
    memcpy(agent, d + at, alen);
    at += alen;
    if (at + 16 > end)
        return -1;
    uint32_t sub_agent = be32(d + at), sequence = be32(d + at + 4), count = be32(d + at + 12);
    at += 16;
    if ((Py_ssize_t)count > (end - at) / 8)
        return -1;
    for (uint32_t i = 0; i < count; i++) {
        if (at + 8 > end)
            goto unsure;
        uint32_t fmt = be32(d + at), length = be32(d + at + 4);
        at += 8;
        Py_ssize_t stop = at + (Py_ssize_t)length;
        if ((length & 3) || stop > end)
            goto unsure;
        if (fmt == 1 || fmt == 3) {
            if (sflow_flow_sample(d, at, stop, fmt == 3, dgram, header_lts, skips, out) < 0)
                goto unsure;
        } else if (fmt == 2 || fmt == 4) {
            skips[SK_COUNTER]++;
        } else if (fmt == 5) {
            skips[SK_DISCARD]++;
        } else if (fmt >> 12) {
            skips[SK_ENTERPRISE_SAMPLE]++;
        } else {
            skips[SK_OTHER_SAMPLE]++;
        }
        at = stop;
    }
    if (at != end)
        skips[SK_TRAILING]++;
    row[1] = kind;
    row[2] = sub_agent;
    row[3] = sequence;
    row[4] = out->nsamples - nsamples0;
    for (int k = 0; k < SFLOW_SKIPS; k++)
        row[5 + k] = skips[k];
    return 0;
unsure:
    out->nsamples = nsamples0;
    return -1;
}

/* The walk over n rows whose buffers are held by walk_sflow. */
static PyObject *sflow_rows(const unsigned char *b, Py_ssize_t size, Py_ssize_t n,
                            const int64_t *offs, const int64_t *caps, const int32_t *lts,
                            uint32_t port, const unsigned char *tunnel_ports,
                            const int64_t *header_lts)
{
    Py_ssize_t total = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (offs[i] < 0 || caps[i] < 0 || offs[i] > size || caps[i] > size - offs[i]) {
            PyErr_SetString(PyExc_ValueError, "walk_sflow: a row runs past the buffer");
            return NULL;
        }
        if (caps[i] > PY_SSIZE_T_MAX / 4 - total) {
            PyErr_SetString(PyExc_ValueError, "walk_sflow: too many bytes in one call");
            return NULL;
        }
        total += caps[i];
    }
    struct sflow_out out = {0};
    out.max_samples = total / SAMPLE_MIN_BYTES + 1;
    const Py_ssize_t w = (Py_ssize_t)sizeof(int64_t);
    PyObject *st_o = PyBytes_FromStringAndSize(NULL, n);
    PyObject *bo_o = PyBytes_FromStringAndSize(NULL, n * 2 * w);
    PyObject *dg_o = PyBytes_FromStringAndSize(NULL, n * DGRAM_COLS * w);
    PyObject *ag_o = PyBytes_FromStringAndSize(NULL, n * 16);
    PyObject *sa_o = PyBytes_FromStringAndSize(NULL, out.max_samples * SAMPLE_COLS * w);
    if (!st_o || !bo_o || !dg_o || !ag_o || !sa_o) {
        Py_XDECREF(st_o);
        Py_XDECREF(bo_o);
        Py_XDECREF(dg_o);
        Py_XDECREF(ag_o);
        Py_XDECREF(sa_o);
        return NULL;
    }
    unsigned char *status = (unsigned char *)PyBytes_AS_STRING(st_o);
    int64_t *bounds = (int64_t *)PyBytes_AS_STRING(bo_o);
    int64_t *dgrams = (int64_t *)PyBytes_AS_STRING(dg_o);
    unsigned char *agents = (unsigned char *)PyBytes_AS_STRING(ag_o);
    out.samples = (int64_t *)PyBytes_AS_STRING(sa_o);
    Py_ssize_t nd = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        const unsigned char *d = b + offs[i];
        Py_ssize_t start = 0, stop = 0;
        int st = sflow_carrier(d, caps[i], lts[i], port, tunnel_ports, &start, &stop);
        bounds[2 * i] = start;
        bounds[2 * i + 1] = stop;
        if (st == ST_CLEAN) {
            int64_t *row = dgrams + DGRAM_COLS * nd;
            out.base = offs[i];
            if (sflow_datagram(d, start, stop, nd, header_lts, row, agents + 16 * nd, &out) < 0) {
                st = ST_PYTHON_WALK;
            } else {
                row[0] = i;
                nd++;
            }
        }
        status[i] = (unsigned char)st;
    }
    /* cut to size: shrinking, so in place or a remap, never a failure
       that leaves an object behind (on failure the object is freed) */
    if (_PyBytes_Resize(&dg_o, nd * DGRAM_COLS * w) < 0 || _PyBytes_Resize(&ag_o, nd * 16) < 0
        || _PyBytes_Resize(&sa_o, out.nsamples * SAMPLE_COLS * w) < 0) {
        Py_DECREF(st_o);
        Py_DECREF(bo_o);
        Py_XDECREF(dg_o);
        Py_XDECREF(ag_o);
        Py_XDECREF(sa_o);
        return NULL;
    }
    return Py_BuildValue("(NNNNN)", st_o, bo_o, dg_o, ag_o, sa_o);
}

static PyObject *walk_sflow(PyObject *self, PyObject *args)
{
    Py_buffer buf, tunv, hltv, cols[3];
    PyObject *colo[3];
    unsigned long port;
    if (!PyArg_ParseTuple(args, "y*OOOky*y*", &buf, &colo[0], &colo[1], &colo[2], &port,
                          &tunv, &hltv))
        return NULL;
    PyObject *result = NULL;
    int held = 0;
    Py_ssize_t n = 0;
    static const char *names[3] = {"offsets", "caplens", "linktypes"};
    static const Py_ssize_t sizes[3] = {8, 8, 4};
    if (tunv.len != 65536 || hltv.len != N_HEADER_PROTOCOLS * (Py_ssize_t)sizeof(int64_t)) {
        PyErr_SetString(PyExc_ValueError, "walk_sflow: bad port or protocol table");
    } else {
        for (; held < 3; held++) {
            if (PyObject_GetBuffer(colo[held], &cols[held], PyBUF_C_CONTIGUOUS) < 0)
                break;
            if (held == 0)
                n = cols[0].len / sizes[0];
            if (cols[held].len != n * sizes[held]) {
                PyErr_Format(PyExc_ValueError, "walk_sflow: %s has %zd bytes, not %zd",
                             names[held], cols[held].len, n * sizes[held]);
                PyBuffer_Release(&cols[held]);
                break;
            }
        }
        if (held == 3)
            result = sflow_rows((const unsigned char *)buf.buf, buf.len, n,
                                (const int64_t *)cols[0].buf, (const int64_t *)cols[1].buf,
                                (const int32_t *)cols[2].buf, (uint32_t)port,
                                (const unsigned char *)tunv.buf, (const int64_t *)hltv.buf);
    }
    while (held > 0)
        PyBuffer_Release(&cols[--held]);
    PyBuffer_Release(&hltv);
    PyBuffer_Release(&tunv);
    PyBuffer_Release(&buf);
    return result;
}

/*
 * gather(buf, offsets, lens) -> bytes
 * The pieces buf[offsets[i]:offsets[i] + lens[i]] (native int64 columns)
 * back to back: the headers of one sampling group out of a walk's headers
 * (capture/sflow.py). Every piece must lie inside buf (else ValueError), so
 * the result is no longer than the pieces a caller chose.
 */
static PyObject *gather(PyObject *self, PyObject *args)
{
    Py_buffer buf, offv, lenv;
    if (!PyArg_ParseTuple(args, "y*y*y*", &buf, &offv, &lenv))
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t n = offv.len / (Py_ssize_t)sizeof(int64_t), total = 0;
    const int64_t *offs = (const int64_t *)offv.buf, *lens = (const int64_t *)lenv.buf;
    int ok = lenv.len == offv.len && offv.len % (Py_ssize_t)sizeof(int64_t) == 0;
    for (Py_ssize_t i = 0; ok && i < n; i++) {
        if (offs[i] < 0 || lens[i] < 0 || offs[i] > buf.len || lens[i] > buf.len - offs[i]
            || lens[i] > PY_SSIZE_T_MAX - total)
            ok = 0;
        else
            total += lens[i];
    }
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "gather: a piece lies outside the buffer");
    } else {
        result = PyBytes_FromStringAndSize(NULL, total);
        if (result) {
            char *to = PyBytes_AS_STRING(result);
            const char *from = (const char *)buf.buf;
            for (Py_ssize_t i = 0; i < n; i++) {
                memcpy(to, from + offs[i], (size_t)lens[i]);
                to += lens[i];
            }
        }
    }
    PyBuffer_Release(&lenv);
    PyBuffer_Release(&offv);
    PyBuffer_Release(&buf);
    return result;
}

static PyMethodDef methods[] = {
    {"walk_pcap", walk_pcap, METH_VARARGS, "Walk classic-pcap record headers in a buffer."},
    {"walk_pcapng", walk_pcapng, METH_VARARGS, "Walk a run of pcapng enhanced packet blocks in a buffer."},
    {"walk_sflow", walk_sflow, METH_VARARGS, "Walk the clean sFlow v5 datagrams of a batch of frames."},
    {"gather", gather, METH_VARARGS, "Join pieces of a buffer."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_speedups", NULL, -1, methods};

PyMODINIT_FUNC PyInit__speedups(void) { return PyModule_Create(&module); }
