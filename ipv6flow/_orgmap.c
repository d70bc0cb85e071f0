/*
 * The compiled per-batch part of the programme's scorecard (issue 16):
 * what ipv6flow/analysis/scorecard.py `Scorecard.observe` does with numpy
 * over a batch of rows, done row by row in one walk, with the same results.
 *
 * The numpy code is the specification and stays the no-compiler path
 * (tests/test_orgmap_compiled.py holds the two to identical state on every
 * sample, real capture and random maps). Each step below is its namesake
 * there:
 *
 *   groups       rows with one flow, client side, client key and client
 *                address (the hash of those eight words: the same
 *                grouping as `unique_any(hash_words(...))`), found with an
 *                open-addressing table; the first row of a group stands
 *                for it (every row of it agrees on what is looked up);
 *   _org         the longest-prefix match (orgmap.py): the disjoint ranges
 *                of IPv4 and of IPv6 up to /64 by binary search, prefixes
 *                longer than /64 per length, longest first, for addresses
 *                whose /64 holds one;
 *   _counters    the per-organisation counters, added in place;
 *   _items       the packed (organisation, client or flow) items of the
 *                batch, sorted and distinct (one run for the set);
 *   _destinations the (organisation, route, server) part, sorted by key,
 *                frames, bytes and SYNs summed.
 *
 * `union(runs, out)` is `_consolidate`'s union of the held set with the
 * pending runs (all sorted: merged pairwise).
 *
 * Constants are not typed here: `configure(dict)` receives scorecard.py's
 * counter columns, item categories, bit layout and protocol numbers once,
 * at import, as fast/core.py does for _core.c.
 *
 * Safety: every array is a checked contiguous buffer of the expected item
 * size and length (`get_array`); organisation indices from the map are
 * checked against the counter rows before use (an out-of-range one is a
 * ValueError). Memory: the caller's output arrays (sized by the row count),
 * scratch arrays of a few words per row kept for the next batch, and the
 * union's buffers (twice the pending items) kept for the next union. The
 * group table's slots come from a seeded mix of the hash (the hash itself
 * must be numpy's, a fixed function of packet fields); sorts are linear
 * whatever the keys (see bucket_sort).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#define BUFFER_ERROR_PREFIX "_orgmap: "
#include "_buffers.h"

/* -- configuration (scorecard.py) ---------------------------------------- */

static struct {
    int ready;
    int64_t k;                     /* counters per organisation */
    int64_t c_p4, c_b4, c_p6, c_b6, c_cp4, c_cb4, c_cp6, c_cb6, c_np, c_nb, c_tp, c_tb,
            c_xp, c_xb, c_s4, c_s6, c_sx;
    uint64_t cat_client, cat_c4, cat_c6, cat_c6e, cat_f4, cat_fx;
    uint64_t hash_mask, gshift, all_group, key_all;
    int64_t fam_ipv6, tcp, side_dst;
    uint64_t seed;                 /* of the group table's slots (random a process) */
} T;

static int cfg_int(PyObject *d, const char *name, int64_t *out)
{
    PyObject *v = PyDict_GetItemString(d, name);
    if (!v) {
        PyErr_Format(PyExc_KeyError, "_orgmap.configure: %s missing", name);
        return 0;
    }
    long long x = PyLong_AsLongLong(v);
    if (x == -1 && PyErr_Occurred())
        return 0;
    *out = (int64_t)x;
    return 1;
}

static int cfg_u64(PyObject *d, const char *name, uint64_t *out)
{
    PyObject *v = PyDict_GetItemString(d, name);
    if (!v) {
        PyErr_Format(PyExc_KeyError, "_orgmap.configure: %s missing", name);
        return 0;
    }
    unsigned long long x = PyLong_AsUnsignedLongLong(v);
    if (x == (unsigned long long)-1 && PyErr_Occurred())
        return 0;
    *out = (uint64_t)x;
    return 1;
}

static PyObject *configure(PyObject *self, PyObject *args)
{
    PyObject *d;
    if (!PyArg_ParseTuple(args, "O!", &PyDict_Type, &d))
        return NULL;
    T.ready = 0;
    if (!cfg_int(d, "K", &T.k) || !cfg_int(d, "C_P4", &T.c_p4) || !cfg_int(d, "C_B4", &T.c_b4)
        || !cfg_int(d, "C_P6", &T.c_p6) || !cfg_int(d, "C_B6", &T.c_b6)
        || !cfg_int(d, "C_CP4", &T.c_cp4) || !cfg_int(d, "C_CB4", &T.c_cb4)
        || !cfg_int(d, "C_CP6", &T.c_cp6) || !cfg_int(d, "C_CB6", &T.c_cb6)
        || !cfg_int(d, "C_NP", &T.c_np) || !cfg_int(d, "C_NB", &T.c_nb)
        || !cfg_int(d, "C_TP", &T.c_tp) || !cfg_int(d, "C_TB", &T.c_tb)
        || !cfg_int(d, "C_XP", &T.c_xp) || !cfg_int(d, "C_XB", &T.c_xb)
        || !cfg_int(d, "C_S4", &T.c_s4) || !cfg_int(d, "C_S6", &T.c_s6)
        || !cfg_int(d, "C_SX", &T.c_sx)
        || !cfg_u64(d, "CAT_CLIENT", &T.cat_client) || !cfg_u64(d, "CAT_C4", &T.cat_c4)
        || !cfg_u64(d, "CAT_C6", &T.cat_c6) || !cfg_u64(d, "CAT_C6E", &T.cat_c6e)
        || !cfg_u64(d, "CAT_F4", &T.cat_f4) || !cfg_u64(d, "CAT_FX", &T.cat_fx)
        || !cfg_u64(d, "HASH", &T.hash_mask) || !cfg_u64(d, "GSHIFT", &T.gshift)
        || !cfg_u64(d, "ALL", &T.all_group) || !cfg_u64(d, "KEY_ALL", &T.key_all)
        || !cfg_int(d, "FAM_IPV6", &T.fam_ipv6) || !cfg_int(d, "IPPROTO_TCP", &T.tcp)
        || !cfg_int(d, "SIDE_DST", &T.side_dst) || !cfg_u64(d, "SEED", &T.seed))
        return NULL;
    int64_t cols[] = {T.c_p4, T.c_b4, T.c_p6, T.c_b6, T.c_cp4, T.c_cb4, T.c_cp6, T.c_cb6,
                      T.c_np, T.c_nb, T.c_tp, T.c_tb, T.c_xp, T.c_xb, T.c_s4, T.c_s6, T.c_sx};
    for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++)
        if (cols[i] < 0 || cols[i] >= T.k) {
            PyErr_SetString(PyExc_ValueError, "_orgmap.configure: a counter column out of range");
            return NULL;
        }
    uint64_t cats[] = {T.cat_client, T.cat_c4, T.cat_c6, T.cat_c6e, T.cat_f4 + 1, T.cat_fx};
    for (size_t i = 0; i < sizeof cats / sizeof cats[0]; i++)
        if (cats[i] > 7) {
            PyErr_SetString(PyExc_ValueError, "_orgmap.configure: a category past 3 bits");
            return NULL;
        }
    if (T.gshift >= 64) {
        PyErr_SetString(PyExc_ValueError, "_orgmap.configure: GSHIFT out of range");
        return NULL;
    }
    T.ready = 1;
    Py_RETURN_NONE;
}

/* -- hashing: sketch.py hash_words (splitmix64's finalizer, word by word) -- */

static inline uint64_t mix(uint64_t z)
{
    z += 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static inline uint64_t hw1(uint64_t a) { return mix(a); }
static inline uint64_t hw2(uint64_t a, uint64_t b) { return mix(mix(a) ^ b); }

/* -- sorting: LSD radix sort of uint64 keys, an optional uint32 payload -- */

/* Sorts a[0..n) (and p alongside, if not NULL) using tmp/ptmp of n items;
   the result is in a (and p). Passes whose byte is the same in every key
   are skipped. */
static void radix_sort(uint64_t *a, uint32_t *p, size_t n, uint64_t *tmp, uint32_t *ptmp)
{
    size_t count[8][256];
    memset(count, 0, sizeof count);
    for (size_t i = 0; i < n; i++) {
        uint64_t x = a[i];
        for (int b = 0; b < 8; b++)
            count[b][(x >> (8 * b)) & 0xFF]++;
    }
    uint64_t *src = a, *dst = tmp;
    uint32_t *psrc = p, *pdst = ptmp;
    for (int b = 0; b < 8; b++) {
        size_t *c = count[b];
        int trivial = 0;
        for (int v = 0; v < 256; v++)
            if (c[v] == n) { trivial = 1; break; }
        if (trivial || n == 0)
            continue;
        size_t sum = 0;
        for (int v = 0; v < 256; v++) {
            size_t t = c[v];
            c[v] = sum;
            sum += t;
        }
        for (size_t i = 0; i < n; i++) {
            size_t at = c[(src[i] >> (8 * b)) & 0xFF]++;
            dst[at] = src[i];
            if (p)
                pdst[at] = psrc[i];
        }
        uint64_t *t = src; src = dst; dst = t;
        uint32_t *pt = psrc; psrc = pdst; pdst = pt;
    }
    if (src != a) {
        memcpy(a, src, n * sizeof *a);
        if (p)
            memcpy(p, psrc, n * sizeof *p);
    }
}

/* Sorts like radix_sort, for keys whose top bits are spread (hashes: every
   key sorted here is one): one pass by the top bits into about one bucket
   per key, then each bucket by insertion sort, or by radix_sort where a
   bucket is large (keys made to share top bits cannot make the sort
   quadratic). `counts` holds 1 << 16 + 1 entries. */
static void bucket_sort(uint64_t *a, uint32_t *p, size_t n, uint64_t *tmp, uint32_t *ptmp,
                        size_t *counts)
{
    int bits = 1;                       /* about two keys a bucket */
    while (bits < 16 && ((size_t)2 << bits) < n)
        bits++;
    size_t nb = (size_t)1 << bits;
    int shift = 64 - bits;
    memset(counts, 0, (nb + 1) * sizeof *counts);
    for (size_t i = 0; i < n; i++)
        counts[(a[i] >> shift) + 1]++;
    for (size_t b = 0; b < nb; b++)
        counts[b + 1] += counts[b];
    for (size_t i = 0; i < n; i++) {
        size_t at = counts[a[i] >> shift]++;
        tmp[at] = a[i];
        if (p)
            ptmp[at] = p[i];
    }
    /* counts[b] is now the end of bucket b (the start of b + 1) */
    size_t start = 0;
    for (size_t b = 0; b < nb; b++) {
        size_t end = counts[b], len = end - start;
        if (len > 32) {
            size_t i = start + 1;            /* one key many times (a client's): sorted */
            while (i < end && tmp[i] == tmp[start])
                i++;
            if (i < end)
                radix_sort(tmp + start, p ? ptmp + start : NULL, len, a + start,
                       p ? p + start : NULL);
        } else {
            for (size_t i = start + 1; i < end; i++) {
                uint64_t x = tmp[i];
                uint32_t y = p ? ptmp[i] : 0;
                size_t j = i;
                for (; j > start && tmp[j - 1] > x; j--) {
                    tmp[j] = tmp[j - 1];
                    if (p)
                        ptmp[j] = ptmp[j - 1];
                }
                tmp[j] = x;
                if (p)
                    ptmp[j] = y;
            }
        }
        start = end;
    }
    memcpy(a, tmp, n * sizeof *a);
    if (p)
        memcpy(p, ptmp, n * sizeof *p);
}

/* The scratch memory of `observe`, kept between calls (it is sized by the
   batch's rows; the GIL is held throughout, so one buffer serves). */
static void *scratch_mem;
static size_t scratch_size;

static void *scratch(size_t size)
{
    if (size > scratch_size) {
        void *m = PyMem_Realloc(scratch_mem, size);
        if (!m)
            return NULL;
        scratch_mem = m;
        scratch_size = size;
    }
    return scratch_mem;
}

/* -- buffers --------------------------------------------------------------- */

/* -- the longest-prefix match (orgmap.py) -------------------------------- */

typedef struct {
    const uint64_t *s4; const int64_t *o4; size_t n4;        /* IPv4 ranges */
    const uint64_t *s6; const int64_t *o6; size_t n6;        /* IPv6 /0-/64 ranges */
    const uint64_t *his; size_t nhis;                        /* /64s holding a longer prefix */
    const int64_t *lens; const int64_t *off; size_t nlen;    /* longer lengths, longest first */
    const uint64_t *lhi, *llo; const int64_t *lorg; size_t nl;
    int present;
} Map;

/* owner of the range holding x: owner[searchsorted(starts, x, "right") - 1];
   starts[0] is 0, so a range always holds x */
static inline int64_t find_range(const uint64_t *starts, const int64_t *owner, size_t n,
                                 uint64_t x)
{
    size_t lo = 0, hi = n;                 /* first start > x */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (starts[mid] <= x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo ? owner[lo - 1] : -1;
}

static int64_t lookup6(const Map *m, uint64_t hi, uint64_t lo, int valid)
{
    if (!valid)
        return -1;
    if (m->nlen) {
        size_t a = 0, b = m->nhis;
        while (a < b) {
            size_t mid = a + (b - a) / 2;
            if (m->his[mid] < hi)
                a = mid + 1;
            else
                b = mid;
        }
        if (a < m->nhis && m->his[a] == hi) {
            for (size_t t = 0; t < m->nlen; t++) {
                int64_t bits = m->lens[t] - 64;            /* 1..64 */
                uint64_t ml = bits >= 64 ? ~0ULL : ~0ULL << (64 - bits);
                uint64_t want = lo & ml;
                size_t x = (size_t)m->off[t], y = (size_t)m->off[t + 1];
                while (x < y) {                             /* sorted by (hi, lo) */
                    size_t mid = x + (y - x) / 2;
                    if (m->lhi[mid] < hi || (m->lhi[mid] == hi && m->llo[mid] < want))
                        x = mid + 1;
                    else
                        y = mid;
                }
                if (x < (size_t)m->off[t + 1] && m->lhi[x] == hi && m->llo[x] == want)
                    return m->lorg[x];
            }
        }
    }
    return find_range(m->s6, m->o6, m->n6, hi);
}

static inline int64_t lookup4(const Map *m, int64_t a)
{
    return a < 0 ? -1 : find_range(m->s4, m->o4, m->n4, (uint64_t)a);
}

/* scorecard.py _org: the address of the payload family first */
static inline int64_t org_of(const Map *m, int64_t v4, uint64_t hi, uint64_t lo, int has6,
                             int fam6)
{
    if (!m->present)
        return -1;
    int64_t o;
    if (fam6)
        return (o = lookup6(m, hi, lo, has6)) >= 0 ? o : lookup4(m, v4);
    return (o = lookup4(m, v4)) >= 0 ? o : lookup6(m, hi, lo, has6);
}

/* The organisations of the addresses looked up lately: a client's flows
   look its address up again and again, within a batch (on the benchmark
   capture, 4,450 addresses for 9,787 groups of a batch) and across
   batches, and each lookup is a few binary searches over tables larger
   than the cache. Direct-mapped, one entry a cache line's half; every field
   of the lookup is compared, so a hit is the lookup's answer. Kept across
   batches for one map: `observe` is given the map's token (its digest)
   and empties the memo when the token changes. On the benchmark capture
   the misses went from 58% of the lookups (4,096 entries emptied at each
   batch) to 19% (16,384 entries kept). */
#define MEMO_BITS 14
#define MEMO ((size_t)1 << MEMO_BITS)
typedef struct {
    int64_t v4;
    uint64_t hi, lo;
    int32_t org;                       /* the map's organisations are checked to fit */
    uint8_t how;                       /* 0: empty; else 1 + has6 + 2 fam6 */
} MemoEntry;

static MemoEntry *memo_mem;
static unsigned long long memo_token;

static inline int64_t org_memo(MemoEntry *c, const Map *m, int64_t v4, uint64_t hi,
                               uint64_t lo, int has6, int fam6)
{
    uint8_t how = (uint8_t)(1 + has6 + 2 * fam6);
    MemoEntry *e = c + ((((uint64_t)v4 * 0x9E3779B97F4A7C15ULL ^ hi * 0xBF58476D1CE4E5B9ULL
                          ^ lo * 0x94D049BB133111EBULL) >> (64 - MEMO_BITS)));
    if (e->how == how && e->v4 == v4 && e->hi == hi && e->lo == lo)
        return e->org;
    int64_t o = org_of(m, v4, hi, lo, has6, fam6);
    e->how = how;
    e->v4 = v4;
    e->hi = hi;
    e->lo = lo;
    e->org = (int32_t)o;
    return o;
}

/* -- observe ----------------------------------------------------------------- */

#define KEY_CACHE_BITS 13
#define KEY_CACHE ((size_t)1 << KEY_CACHE_BITS)

enum {
    A_V4S, A_V4D, A_V6S_HI, A_V6S_LO, A_V6D_HI, A_V6D_LO, A_FAM, A_HAS6, A_CARRIER, A_PROTO,
    A_FLAGS, A_WIRE, A_SIDE, A_TAG, A_VALUE, A_FLOW_H, A_FLOW_KEYED,
    A_ROWS,                                    /* the per-row columns end here */
    A_S4 = A_ROWS, A_O4, A_S6, A_O6, A_HIS, A_LENS, A_OFF, A_LHI, A_LLO, A_LORG,
    A_GKEYS, A_COUNTS, A_NAT, A_ITEMS, A_DKEY, A_DGROUP, A_DROUTE, A_DHI, A_DLO,
    A_DPACKETS, A_DBYTES, A_DSYN, A_N
};

static const struct { const char *name; Py_ssize_t size; int per_row; int writable; } SPEC[A_N] = {
    {"v4s", 8, 1, 0}, {"v4d", 8, 1, 0}, {"v6s_hi", 8, 1, 0}, {"v6s_lo", 8, 1, 0},
    {"v6d_hi", 8, 1, 0}, {"v6d_lo", 8, 1, 0}, {"fam", 8, 1, 0}, {"has6", 1, 1, 0},
    {"carrier", 8, 1, 0}, {"proto", 8, 1, 0}, {"flags", 8, 1, 0}, {"wire", 8, 1, 0},
    {"side", 8, 1, 0}, {"tag", 8, 1, 0}, {"value", 8, 1, 0}, {"flow_h", 8, 1, 0},
    {"flow_keyed", 1, 1, 0},
    {"v4 starts", 8, 0, 0}, {"v4 owners", 8, 0, 0}, {"v6 starts", 8, 0, 0},
    {"v6 owners", 8, 0, 0}, {"long /64s", 8, 0, 0}, {"long lengths", 8, 0, 0},
    {"long offsets", 8, 0, 0}, {"long hi", 8, 0, 0}, {"long lo", 8, 0, 0},
    {"long orgs", 8, 0, 0}, {"group keys", 8, 0, 0}, {"counts", 8, 0, 1},
    {"nat64 words", 8, 0, 0}, {"items out", 8, 0, 1}, {"dest key", 8, 0, 1},
    {"dest group", 8, 0, 1}, {"dest route", 8, 0, 1}, {"dest hi", 8, 0, 1},
    {"dest lo", 8, 0, 1}, {"dest packets", 8, 0, 1}, {"dest bytes", 8, 0, 1},
    {"dest syn", 8, 0, 1},
};

static int in_nat64(const uint64_t *w, size_t m, uint64_t hi, uint64_t lo)
{
    for (size_t i = 0; i < m; i++)       /* (value hi, value lo, mask hi, mask lo) */
        if ((hi & w[4 * i + 2]) == w[4 * i] && (lo & w[4 * i + 3]) == w[4 * i + 1])
            return 1;
    return 0;
}

/* observe(arrays, map_present, map_token) -> (items, destinations): `arrays`
   in the A_* order above (`map_token`: 64 bits of the map's digest, for the
   memo); the items (sorted, distinct) and the destination part (sorted by
   key) are written to the output arrays, their counts returned. */
static PyObject *observe(PyObject *self, PyObject *args)
{
    PyObject *seq, *res = NULL;
    int present;
    Py_buffer v[A_N];
    int got = 0;
    uint64_t *mem_rows;
    if (!T.ready) {
        PyErr_SetString(PyExc_RuntimeError, "_orgmap.configure() was not called");
        return NULL;
    }
    unsigned long long token;
    if (!PyArg_ParseTuple(args, "OpK", &seq, &present, &token))
        return NULL;
    seq = PySequence_Fast(seq, "_orgmap.observe: a sequence of arrays");
    if (!seq)
        return NULL;
    if (PySequence_Fast_GET_SIZE(seq) != A_N) {
        PyErr_Format(PyExc_ValueError, "_orgmap.observe: %d arrays expected", (int)A_N);
        goto done;
    }
    Py_ssize_t n = -1;
    for (got = 0; got < A_N; got++) {
        Py_ssize_t want = SPEC[got].per_row ? n : -1;
        if (!get_array(PySequence_Fast_GET_ITEM(seq, got), &v[got], SPEC[got].size, want,
                       SPEC[got].writable, SPEC[got].name))
            goto done;
        if (got == 0)
            n = v[0].shape[0];
    }
#define COL(i, t) ((const t *)v[i].buf)
#define LEN(i) ((size_t)v[i].shape[0])
    Map m = {COL(A_S4, uint64_t), COL(A_O4, int64_t), LEN(A_S4),
             COL(A_S6, uint64_t), COL(A_O6, int64_t), LEN(A_S6),
             COL(A_HIS, uint64_t), LEN(A_HIS),
             COL(A_LENS, int64_t), COL(A_OFF, int64_t), LEN(A_LENS),
             COL(A_LHI, uint64_t), COL(A_LLO, uint64_t), COL(A_LORG, int64_t), LEN(A_LHI),
             present};
    size_t ngroups = LEN(A_GKEYS), K = (size_t)T.k;
    if (LEN(A_O4) != m.n4 || LEN(A_O6) != m.n6 || (present && (m.n4 == 0 || m.n6 == 0))
        || LEN(A_OFF) != m.nlen + 1 || LEN(A_LLO) != m.nl || LEN(A_LORG) != m.nl
        || LEN(A_COUNTS) != ngroups * K || LEN(A_NAT) % 4 || ngroups == 0
        || LEN(A_ITEMS) < 12 * (size_t)n || LEN(A_DKEY) < (size_t)n) {
        PyErr_SetString(PyExc_ValueError, "_orgmap.observe: arrays of inconsistent sizes");
        goto done;
    }
    for (size_t i = A_DGROUP; i <= A_DSYN; i++)
        if (LEN(i) < (size_t)n) {
            PyErr_SetString(PyExc_ValueError, "_orgmap.observe: output arrays too short");
            goto done;
        }
    for (size_t t = 0; t <= m.nlen; t++) {
        int64_t o = m.off[t];
        if (o < 0 || (size_t)o > m.nl || (t && o < m.off[t - 1])
            || (t < m.nlen && (m.lens[t] <= 64 || m.lens[t] > 128))) {
            PyErr_SetString(PyExc_ValueError, "_orgmap.observe: bad long-prefix tables");
            goto done;
        }
    }
    /* every organisation the map can give must have its counter row (and
       fit the memo's 32 bits) */
    if (ngroups > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "_orgmap.observe: too many organisations");
        goto done;
    }
    for (size_t i = 0; i < m.n4; i++)
        if (m.o4[i] < -1 || m.o4[i] + 1 >= (int64_t)ngroups) goto bad_org;
    for (size_t i = 0; i < m.n6; i++)
        if (m.o6[i] < -1 || m.o6[i] + 1 >= (int64_t)ngroups) goto bad_org;
    for (size_t i = 0; i < m.nl; i++)
        if (m.lorg[i] < -1 || m.lorg[i] + 1 >= (int64_t)ngroups) goto bad_org;

    const int64_t *v4s = COL(A_V4S, int64_t), *v4d = COL(A_V4D, int64_t);
    const uint64_t *v6s_hi = COL(A_V6S_HI, uint64_t), *v6s_lo = COL(A_V6S_LO, uint64_t);
    const uint64_t *v6d_hi = COL(A_V6D_HI, uint64_t), *v6d_lo = COL(A_V6D_LO, uint64_t);
    const int64_t *fam = COL(A_FAM, int64_t), *carrier = COL(A_CARRIER, int64_t);
    const int64_t *proto = COL(A_PROTO, int64_t), *flags = COL(A_FLAGS, int64_t);
    const int64_t *wire = COL(A_WIRE, int64_t), *side = COL(A_SIDE, int64_t);
    const int64_t *tag = COL(A_TAG, int64_t);
    const uint64_t *value = COL(A_VALUE, uint64_t), *flow_h = COL(A_FLOW_H, uint64_t);
    const uint8_t *has6 = COL(A_HAS6, uint8_t), *flow_keyed = COL(A_FLOW_KEYED, uint8_t);
    const uint64_t *gkeys = COL(A_GKEYS, uint64_t), *nat_w = COL(A_NAT, uint64_t);
    size_t nnat = LEN(A_NAT) / 4;
    int64_t *counts = (int64_t *)v[A_COUNTS].buf;
    uint64_t *items = (uint64_t *)v[A_ITEMS].buf;
    uint64_t *dkey = (uint64_t *)v[A_DKEY].buf, *dhi = (uint64_t *)v[A_DHI].buf,
             *dlo = (uint64_t *)v[A_DLO].buf;
    int64_t *dgroup = (int64_t *)v[A_DGROUP].buf, *droute = (int64_t *)v[A_DROUTE].buf,
            *dpk = (int64_t *)v[A_DPACKETS].buf, *dby = (int64_t *)v[A_DBYTES].buf,
            *dsy = (int64_t *)v[A_DSYN].buf;
#undef COL
#undef LEN

    /* scratch: the group table (2^b >= 2n slots), per row its group, per
       group its first row, packets, bytes, SYNs, organisation group and
       NAT64 bit; the sort buffers (12 n words and payloads) */
    size_t nn = (size_t)n, slots = 16;
    while (slots < 2 * nn)
        slots <<= 1;
    size_t words = slots /* table hashes */ + 3 * nn /* packets, bytes, syn */
                   + 8 * nn /* item keys, sort tmp */ + 4 * nn /* dest key, tmp, g, server */;
    size_t halfs = slots /* table ids */ + nn /* row group */ + nn /* first row */
                   + nn /* dest payload */ + nn /* payload tmp */ + nn /* dst/nat flags */
                   + 8 * nn /* item kinds, sort tmp */;
    if (nn > ((size_t)1 << 28)) {
        PyErr_SetString(PyExc_ValueError, "_orgmap.observe: batch too large");
        goto done;
    }
    size_t *bcounts;
    {
        void *mem = scratch(((1 << 16) + 1) * sizeof(size_t) + words * 8 + halfs * 4);
        if (!mem) {
            PyErr_NoMemory();
            goto done;
        }
        bcounts = (size_t *)mem;
        mem_rows = (uint64_t *)(bcounts + (1 << 16) + 1);
    }
    if (!memo_mem) {
        memo_mem = PyMem_Calloc(MEMO, sizeof *memo_mem);
        if (!memo_mem) {
            PyErr_NoMemory();
            goto done;
        }
        memo_token = token;
    }
    if (token != memo_token) {
        memset(memo_mem, 0, MEMO * sizeof *memo_mem);
        memo_token = token;
    }
    MemoEntry *memo = memo_mem;
    uint64_t *th = mem_rows;
    uint64_t *gpk = th + slots, *gby = gpk + nn, *gsy = gby + nn;
    uint64_t *keys = gsy + nn, *ktmp = keys + 4 * nn;
    uint64_t *ekey = ktmp + 4 * nn, *etmp = ekey + nn, *gg = etmp + nn, *gsrv = gg + nn;
    uint32_t *tid = (uint32_t *)(gsrv + nn);
    uint32_t *rg = tid + slots, *first = rg + nn, *epay = first + nn, *eptmp = epay + nn,
             *gfl = eptmp + nn, *kind = gfl + nn, *kindtmp = kind + 4 * nn;
    memset(tid, 0xFF, slots * sizeof *tid);

    /* groups: the hashes first (rows independent, so the chains of
       multiplies overlap), then the table */
    size_t ng = 0, mask = slots - 1;
    uint64_t *rowh = keys;                 /* free until the items */
    for (size_t i = 0; i < nn; i++) {
        int dst = side[i] == T.side_dst;
        uint64_t c4 = (uint64_t)(dst ? v4d[i] : v4s[i]);
        uint64_t chi = dst ? v6d_hi[i] : v6s_hi[i], clo = dst ? v6d_lo[i] : v6s_lo[i];
        uint64_t h = mix(flow_h[i]);
        h = mix(h ^ (uint64_t)side[i]);
        h = mix(h ^ (uint64_t)tag[i]);
        h = mix(h ^ value[i]);
        h = mix(h ^ (uint64_t)(flow_keyed[i] != 0));
        h = mix(h ^ c4);
        h = mix(h ^ chi);
        rowh[i] = mix(h ^ clo);
    }
    for (size_t i = 0; i < nn; i++) {
        uint64_t h = rowh[i];
        /* the slot from a seeded mix of the hash: the hash is a fixed
           function of packet fields (it must equal numpy's), so without a
           secret a capture could be made whose rows crowd a few slots */
        size_t s = (size_t)mix(h ^ T.seed) & mask;
        while (tid[s] != UINT32_MAX && th[s] != h)
            s = (s + 1) & mask;
        if (tid[s] == UINT32_MAX) {
            tid[s] = (uint32_t)ng;
            th[s] = h;
            first[ng] = (uint32_t)i;
            gpk[ng] = gby[ng] = gsy[ng] = 0;
            ng++;
        }
        rg[i] = tid[s];
    }

    /* per group: organisation, server, NAT64 */
    for (size_t q = 0; q < ng; q++) {
        size_t r = first[q];
        int fam6 = fam[r] == T.fam_ipv6, h6 = has6[r] != 0, dst = side[r] == T.side_dst;
        int64_t c4 = dst ? v4d[r] : v4s[r];
        uint64_t chi = dst ? v6d_hi[r] : v6s_hi[r], clo = dst ? v6d_lo[r] : v6s_lo[r];
        int64_t org = org_memo(memo, &m, c4, chi, clo, h6, fam6);
        if (side[r] == 0 && org < 0) {
            /* undecided, the source in no organisation: the destination's */
            int64_t o2 = org_memo(memo, &m, v4d[r], v6d_hi[r], v6d_lo[r], h6, fam6);
            if (o2 >= 0) {
                org = o2;
                dst = 1;
            }
        }
        uint64_t shi = dst ? v6s_hi[r] : v6d_hi[r], slo = dst ? v6s_lo[r] : v6d_lo[r];
        int nat = nnat && fam6 && h6 && in_nat64(nat_w, nnat, shi, slo);
        gg[q] = (uint64_t)(org + 1);
        gfl[q] = (uint32_t)(dst | nat << 1);
    }

    /* counters, per row; the group's frames, bytes and SYNs */
    for (size_t i = 0; i < nn; i++) {
        size_t q = rg[i];
        int64_t *row = counts + gg[q] * K, w = wire[i];
        int f6 = fam[i] == T.fam_ipv6, c6 = carrier[i] == T.fam_ipv6, x = (gfl[q] >> 1) & 1;
        int sy = proto[i] == T.tcp && (flags[i] & 0x12) == 0x02;
        if (f6) { row[T.c_p6]++; row[T.c_b6] += w; } else { row[T.c_p4]++; row[T.c_b4] += w; }
        if (c6) { row[T.c_cp6]++; row[T.c_cb6] += w; } else { row[T.c_cp4]++; row[T.c_cb4] += w; }
        if (f6 && c6) { row[T.c_np]++; row[T.c_nb] += w; }
        if (f6 && !c6) { row[T.c_tp]++; row[T.c_tb] += w; }
        if (x) { row[T.c_xp]++; row[T.c_xb] += w; }
        if (sy) {
            if (!f6) row[T.c_s4]++;
            if (f6 && !x) row[T.c_s6]++;
            if (x) row[T.c_sx]++;
        }
        gpk[q]++;
        gby[q] += (uint64_t)w;
        gsy[q] += (uint64_t)sy;
    }

    /* items: (organisation, client or flow) and (whole capture, ...). The
       keys before their expansion into categories (numpy's `u` and `hs`,
       at most four a group) are sorted, with their kind (client or flow)
       alongside; an item is base | category and the base is the key's high
       bits, so expanding the sorted keys, the categories of equal bases
       united, gives the sorted distinct items. */
    size_t nk = 0;
    uint64_t allbits = T.all_group << T.gshift, low = 7;
    /* a client's keys recur in each of its flows, and a flow's in the
       groups of its two directions: a cache of the keys given lately, one
       for each kind, indexed by their top (hash) bits and their low bits
       (a client's keys as IPv4 and as IPv6 share their high bits), keeps
       most repeats out of the sort (repeats in a bucket of the sort send
       it to the radix sort: on the benchmark capture, with a cache of 256
       client keys by their top bits, that was half the sort's work). No
       key is all ones (its low bits are never 7): that marks an empty
       entry. */
    static uint64_t seen[2][KEY_CACHE];
    memset(seen, 0xFF, sizeof seen);
#define KEY(x, k) do { uint64_t x_ = (x); \
        uint64_t *c_ = &seen[k][((x_ >> (64 - KEY_CACHE_BITS)) ^ (x_ & 7) << (KEY_CACHE_BITS - 3)) \
                                & (KEY_CACHE - 1)]; \
        if (*c_ != x_) { *c_ = x_; keys[nk] = x_; kind[nk++] = k; } } while (0)
#define CLIENT_KEY(x) KEY(x, 0)
    for (size_t q = 0; q < ng; q++) {
        size_t r = first[q];
        uint64_t g = gg[q], gk = gkeys[g], gbits = g << T.gshift;
        int fam6 = fam[r] == T.fam_ipv6, nat = (gfl[q] >> 1) & 1;
        if (tag[r] != 0) {
            int dst = side[r] == T.side_dst;
            uint64_t chi = dst ? v6d_hi[r] : v6s_hi[r];
            uint64_t h = hw2((uint64_t)tag[r], value[r]);
            int global6 = fam6 && (chi >> 61) == 1, e2e6 = global6 && !nat;
            uint64_t bits = (uint64_t)!fam6 | (uint64_t)global6 << 1 | (uint64_t)e2e6 << 2;
            CLIENT_KEY((hw2(gk, h) & T.hash_mask) | gbits | bits);
            CLIENT_KEY((hw1(h ^ T.key_all) & T.hash_mask) | allbits | bits);
        }
        if (flow_keyed[r]) {
            uint64_t bits = (uint64_t)fam6 | (uint64_t)nat << 1, fh = flow_h[r];
            KEY((hw2(gk, fh) & T.hash_mask) | gbits | bits, 1);
            KEY((hw1(fh ^ T.key_all) & T.hash_mask) | allbits | bits, 1);
        }
    }
#undef CLIENT_KEY
#undef KEY
    bucket_sort(keys, kind, nk, ktmp, kindtmp, bcounts);
    size_t nu = 0;
    for (size_t a = 0; a < nk;) {
        uint64_t base = keys[a] & ~low;
        unsigned cats = 0;                  /* bit c: category c */
        for (; a < nk && (keys[a] & ~low) == base; a++) {
            uint64_t b = keys[a] & low;
            if (kind[a] == 0)
                cats |= 1u << T.cat_client | (unsigned)(b & 1) << T.cat_c4
                        | (unsigned)((b >> 1) & 1) << T.cat_c6
                        | (unsigned)((b >> 2) & 1) << T.cat_c6e;
            else
                cats |= 1u << (T.cat_f4 + (b & 1)) | (unsigned)((b >> 1) & 1) << T.cat_fx;
        }
        for (; cats; cats &= cats - 1)
            items[nu++] = base | (uint64_t)__builtin_ctz(cats);
    }

    /* destinations: IPv4 servers, and IPv6 ones with a connection attempt */
    size_t ne = 0;
    for (size_t q = 0; q < ng; q++) {
        size_t r = first[q];
        int fam6 = fam[r] == T.fam_ipv6, dst = gfl[q] & 1, nat = (gfl[q] >> 1) & 1;
        if (fam6 && !gsy[q])
            continue;
        uint64_t route = fam6 ? (nat ? 2 : 1) : 0;
        uint64_t hi = fam6 ? (dst ? v6s_hi[r] : v6d_hi[r]) : 0;
        uint64_t lo = fam6 ? (dst ? v6s_lo[r] : v6d_lo[r]) : (uint64_t)(dst ? v4s[r] : v4d[r]);
        uint64_t h = mix(gkeys[gg[q]]);
        h = mix(h ^ route);
        h = mix(h ^ hi);
        ekey[ne] = mix(h ^ lo);
        gsrv[q] = lo;
        epay[ne++] = (uint32_t)q;
    }
    bucket_sort(ekey, epay, ne, etmp, eptmp, bcounts);
    size_t nd = 0;
    for (size_t e = 0; e < ne; e++) {
        size_t q = epay[e], r = first[q];
        if (!nd || dkey[nd - 1] != ekey[e]) {
            int fam6 = fam[r] == T.fam_ipv6, dst = gfl[q] & 1, nat = (gfl[q] >> 1) & 1;
            dkey[nd] = ekey[e];
            dgroup[nd] = (int64_t)gg[q];
            droute[nd] = fam6 ? (nat ? 2 : 1) : 0;
            dhi[nd] = fam6 ? (dst ? v6s_hi[r] : v6d_hi[r]) : 0;
            dlo[nd] = gsrv[q];
            dpk[nd] = dby[nd] = dsy[nd] = 0;
            nd++;
        }
        dpk[nd - 1] += (int64_t)gpk[q];
        dby[nd - 1] += (int64_t)gby[q];
        dsy[nd - 1] += (int64_t)gsy[q];
    }
    res = Py_BuildValue("nn", (Py_ssize_t)nu, (Py_ssize_t)nd);
    goto done;
bad_org:
    PyErr_SetString(PyExc_ValueError, "_orgmap.observe: an organisation without a counter row");
done:
    for (int i = 0; i < got; i++)
        PyBuffer_Release(&v[i]);
    Py_DECREF(seq);
    return res;
}

/* union(runs, out) -> count: the sorted distinct union of sorted arrays
   (the held set first, then the pending runs) in out (at least as long as
   all of them): the pending runs by rounds of pairwise merges (log2(runs)
   linear passes over them), then one merge with the held set, the largest,
   which so is read once */
static size_t merge2(const uint64_t *x, size_t nx, const uint64_t *y, size_t ny, uint64_t *out)
{
    size_t i = 0, j = 0, k = 0;
    if (!nx && !ny)
        return 0;
    /* the first value, then each one that differs from the last written
       (without branches on the data: these would be mispredicted half the
       time) */
    uint64_t last = (!ny || (nx && x[0] <= y[0])) ? x[0] : y[0];
    out[k++] = last;
    while (i < nx && j < ny) {
        uint64_t a = x[i], b = y[j];
        int t = a <= b;
        uint64_t z = t ? a : b;
        i += (size_t)t;
        j += (size_t)!t;
        out[k] = z;
        k += z != last;
        last = z;
    }
    for (; i < nx; i++) {
        out[k] = x[i];
        k += x[i] != last;
        last = x[i];
    }
    for (; j < ny; j++) {
        out[k] = y[j];
        k += y[j] != last;
        last = y[j];
    }
    return k;
}

static uint64_t *union_mem;
static size_t union_size;

static PyObject *union_(PyObject *self, PyObject *args)
{
    PyObject *ro, *oo, *seq, *res = NULL;
    Py_buffer o, r;
    if (!PyArg_ParseTuple(args, "OO", &ro, &oo))
        return NULL;
    seq = PySequence_Fast(ro, "_orgmap.union: a sequence of arrays");
    if (!seq)
        return NULL;
    if (!get_array(oo, &o, 8, -1, 1, "out")) {
        Py_DECREF(seq);
        return NULL;
    }
    Py_ssize_t nr = PySequence_Fast_GET_SIZE(seq);
    size_t total = 0;
    uint64_t *a = NULL, *b = NULL;
    size_t *bounds = PyMem_Malloc((size_t)(nr + 2) * sizeof *bounds);
    if (!bounds) {
        PyErr_NoMemory();
        goto done;
    }
    if (nr == 0) {
        res = PyLong_FromSize_t(0);
        goto done;
    }
    Py_buffer held;
    if (!get_array(PySequence_Fast_GET_ITEM(seq, 0), &held, 8, -1, 0, "held"))
        goto done;
    /* the pending runs one after the other in a; bounds[i]: where run i + 1
       starts */
    for (int pass = 0; pass < 2; pass++) {
        size_t at = 0;
        for (Py_ssize_t i = 1; i < nr; i++) {
            if (!get_array(PySequence_Fast_GET_ITEM(seq, i), &r, 8, -1, 0, "run"))
                goto done;
            size_t len = (size_t)r.shape[0];
            const uint64_t *x = r.buf;
            if (pass) {
                for (size_t k = 1; k < len; k++)
                    if (x[k] < x[k - 1]) {
                        PyBuffer_Release(&r);
                        PyBuffer_Release(&held);
                        PyErr_SetString(PyExc_ValueError, "_orgmap.union: a run not sorted");
                        goto done;
                    }
                memcpy(a + at, x, len * sizeof *a);
                bounds[i - 1] = at;
            }
            at += len;
            PyBuffer_Release(&r);
        }
        if (!pass) {
            total = at;
            if ((size_t)o.shape[0] < total + (size_t)held.shape[0]) {
                PyBuffer_Release(&held);
                PyErr_SetString(PyExc_ValueError, "_orgmap.union: out too short");
                goto done;
            }
            /* kept between calls, as observe's scratch: fresh pages for
               each consolidation cost more than the merging (the kernel
               zeroes them); at most twice the pending items */
            if (2 * total > union_size) {
                PyMem_Free(union_mem);
                union_size = 2 * (total ? total : 1);
                union_mem = PyMem_Malloc(union_size * sizeof *union_mem);
                if (!union_mem)
                    union_size = 0;
            }
            a = union_mem;
            b = union_mem ? union_mem + total : NULL;
            if (!a || !b) {
                PyBuffer_Release(&held);
                PyErr_NoMemory();
                goto done;
            }
        }
    }
    const uint64_t *hx = held.buf;
    size_t nh = (size_t)held.shape[0];
    for (size_t k = 1; k < nh; k++)
        if (hx[k] < hx[k - 1]) {
            PyBuffer_Release(&held);
            PyErr_SetString(PyExc_ValueError, "_orgmap.union: a run not sorted");
            goto done;
        }
    bounds[0] = 0;
    bounds[nr - 1] = total;
    size_t nseg = (size_t)nr - 1;
    while (nseg > 1) {
        size_t k = 0, m = 0;
        for (size_t i = 0; i < nseg; i += 2) {
            size_t s0 = bounds[i], e0 = bounds[i + 1];
            size_t s1 = i + 1 < nseg ? bounds[i + 1] : e0, e1 = i + 1 < nseg ? bounds[i + 2] : e0;
            size_t got = merge2(a + s0, e0 - s0, a + s1, e1 - s1, b + k);
            bounds[m++] = k;
            k += got;
        }
        bounds[m] = k;
        nseg = m;
        uint64_t *t = a; a = b; b = t;
    }
    size_t n = merge2(hx, nh, a, nseg ? bounds[1] : 0, (uint64_t *)o.buf);
    PyBuffer_Release(&held);
    res = PyLong_FromSize_t(n);
done:
    PyMem_Free(bounds);
    PyBuffer_Release(&o);
    Py_DECREF(seq);
    return res;
}

static PyMethodDef methods[] = {
    {"configure", configure, METH_VARARGS, "Set the scorecard's constants (a dict)."},
    {"observe", observe, METH_VARARGS,
     "observe(arrays, map_present, map_token) -> (items, destinations) of one batch."},
    {"union", union_, METH_VARARGS, "union(runs, out) -> count."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_orgmap",
    "The compiled per-batch part of the scorecard (see the source).", -1, methods,
};

PyMODINIT_FUNC PyInit__orgmap(void) { return PyModule_Create(&module); }
