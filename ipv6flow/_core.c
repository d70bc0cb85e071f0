/*
 * The compiled single pass of the fast decoder (issue 14): what
 * ipv6flow/fast/kernel.py `classify` does with numpy rounds over a batch,
 * done row by row in one walk (link layer, IP, the extension-header chain,
 * tunnels, transport), with the same decisions.
 *
 * The kernel is the specification. Each step below is its namesake in
 * kernel.py (step_eth, step_ipv4, step_ipv6 with _sixin4_kind and the
 * chain walk, step_udp, step_gre, start, pack), read per row; the rounds
 * of the numpy loop are counted per row too (a row moves to the next round
 * when its next token does not come later in STEPS), so a row still going
 * after MAX_ROUNDS rounds falls back exactly where the kernel's does. A row
 * that is not sure goes to the reference decoder, as there.
 *
 * Tables are not typed here: `configure(dict)` receives the kernel's own
 * lookup tables (ET_TOKEN, GRE_TOKEN, GENEVE_TOKEN, PPP_TOKEN, VERSION_TOKEN,
 * AYIYA_TOKEN, IS_MPLS, UDP_TUNNEL_KIND, the link types' first steps,
 * IS_VLAN, IS_TUNNEL_PORT, EXT_BIT, SEEN_BIT, UNKNOWN_NH, UL_MIN,
 * TRANSPORT_CODE, PROTO_TOKEN, PROTO_KIND, CLASS16 and
 * the address-class prefixes, the key's bit shifts, the anomaly bits,
 * tunnel codes and protocol numbers) and the registry's header layouts
 * that the link-layer and tunnel steps read (struct L, by name) once, at
 * import (fast/core.py), and checks their sizes; the token values the
 * switch below is written against are checked against the kernel's.
 *
 * The link layers and UDP tunnels of issues 14/19 (by_ethertype with PPPoE,
 * LLC/SNAP and MPLS; GRE versions 0 and 1 with PPP and ERSPAN; GTP-U with
 * its optional fields and extension headers, VXLAN, Geneve, L2TP, AYIYA;
 * Teredo's indications) are kernel.py's functions of the same names.
 *
 * Safety: every byte is read through rd8/rd16/rd32/rd64, which check the
 * read against the row's captured bytes [offset, offset + caplen); a read
 * outside (which the length checks of each step should make impossible)
 * turns the row into a fallback row and counts a guard hit (`guard_hits()`,
 * which the tests hold at 0). Rows whose offset and caplen do not lie in
 * the buffer fall back untouched. Nothing read from a packet sizes an
 * allocation: the only memory is the caller's output arrays (one entry per
 * row) and the 6rd prefix list of the options.
 *
 * classify(buf, offsets, caplens, linktypes, out, fallback, max_tunnel_depth,
 *          depth_cap, sixrd, long_prefix) -> number of fallback rows
 *   buf: the batch buffer; offsets, caplens, linktypes: int64[n];
 *   out: int64[NCOLS * n], column c of row i at out[c * n + i] (see the C_*
 *   names, and COLUMNS in fast/core.py); fallback: int64[n], receives the
 *   fallback rows' indices in order; sixrd: ((value_hi, mask_hi), ...) of
 *   the 6rd prefixes of at most 64 bits; long_prefix: some prefix is longer
 *   (rows that could be 6rd then fall back, as in the kernel).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "_buffers.h"

/* Row tokens, as kernel.py numbers them (checked by configure). T_PPP is
   GRE_TOKEN's marker of a protocol step_gre reads itself (PPP, ERSPAN). */
enum { T_DONE, T_FALLBACK, T_ETH, T_IPV4, T_IPV6, T_UDP, T_GRE, T_LLC, T_PPP = T_LLC };

/* Output columns (fast/core.py COLUMNS names them in this order). */
enum { C_KEY, C_CARRIER, C_PAYLOAD, C_TUNNEL, C_NTUN, C_PROTO, C_V6, C_IP, C_V4, C_L4,
       C_L4END, C_S_HI, C_S_LO, C_D_HI, C_D_LO, C_SPORT, C_DPORT, C_ICMP, C_V4S, C_V4D,
       C_MAC_S, C_MAC_D, C_FLAGS, NCOLS };

/* Key fields, in the order of the SHIFTS tuple configure receives. */
enum { F_CARRIER, F_PAYLOAD, F_TUNNEL, F_TRANSPORT, F_EXT, F_RTYPE, F_CHAIN, F_ANOM, F_SRC,
       F_DST, NFIELDS };

#define MAX_CLASS_PREFIXES 64
#define MAX_LINKS 64
/* first steps of a link type (fast/core.py LINK_KINDS) */
enum { L_ETH, L_RAW, L_RAW_IPV4, L_RAW_IPV6, L_COOKED, NLINKKINDS };
/* the steps of rare link layers and tunnels: out of the hot loop's code */
#define RARE __attribute__((noinline))
#define PREFETCH 6             /* rows ahead whose first bytes are prefetched */

typedef struct {
    int64_t cls;
    uint64_t vh, mh, vl, ml;
} ClassPrefix;

static struct {
    int ready;
    int8_t et_token[65536];
    uint8_t is_vlan[65536];
    uint8_t is_tunnel_port[65536];
    int64_t ext_bit[256], seen_bit[256], ul_min[256];
    uint8_t unknown_nh[256];
    int64_t transport_code[3 * 256];
    int8_t proto_token[257];
    int64_t proto_kind[2][257];
    int64_t class16[65536];
    int64_t class_other;
    int n_prefixes;
    ClassPrefix prefixes[MAX_CLASS_PREFIXES];
    int64_t shift[NFIELDS];
    int64_t a_repeated, a_hbh_not_first, a_rh0, a_atomic, a_unknown_nh, a_not_in_first;
    int64_t fam_non_ip, fam_ipv4, fam_ipv6;
    int64_t k_6in4, k_6to4, k_isatap, k_6rd, k_teredo, k_gre, k_gtpu, k_vxlan;
    int64_t max_rounds;
    /* protocol numbers (decode/constants.py) */
    int64_t p_hopopts, p_routing, p_fragment, p_esp, p_ah, p_none, p_dstopts;
    int64_t et_pppoe, ppp_ipv4, ppp_ipv6, et_max_length;
    int64_t port_gtpu, port_vxlan, port_teredo;
    int8_t gre_token[65536];
    /* issue 14/19: the link layers and UDP tunnels read in the pass */
    int8_t geneve_token[65536], ppp_token[65536], udp_tunnel_kind[65536];
    int8_t version_token[16], ayiya_token[256];
    uint8_t is_mpls[65536];
    int64_t max_mpls_labels, k_geneve, k_l2tp, k_ayiya, et_ppp, et_erspan2, et_erspan3;
    /* link type -> first step: (link type, kind, header length, ethertype offset) */
    int n_links;
    int64_t links[MAX_LINKS][4];
    /* what columns() reads (registry protocol numbers and header offsets) */
    int64_t p_tcp, p_udp, p_icmp, p_icmpv6, udp_sport, udp_dport, icmp_type, ipv4_src,
        linktype_ethernet, eth_dst, eth_src, eth_addr_len, tcp_flags;
    /* what spans() reads (registry: the DNS port, UDP and TCP header
       fields, the source address of each IP header) */
    int64_t dns_port, udp_len, udp_ulen, tcp_len, tcp_doff, ipv6_src, ipv6_addr_len,
        ipv4_addr_len;
} T;

/* Header layouts of the registry (decode/registry.py classes, handed in by
   name: "MPLS_LEN" is registry.MPLS.LEN) that the steps added for the
   link layers and UDP tunnels read. */
static struct {
    int64_t LLC_SNAP_LEN, LLC_SNAP_DSAP, LLC_SNAP_SSAP, LLC_SNAP_CONTROL, LLC_SNAP_TYPE;
    int64_t PPPOE_LEN, PPPOE_VER_TYPE, PPPOE_CODE, PPPOE_VERSION_TYPE, PPPOE_SESSION_DATA;
    int64_t PPP_COMPRESSED, PPP_ADDRESS, PPP_CONTROL;
    int64_t MPLS_LEN, MPLS_BOS, MPLS_BOS_BIT;
    int64_t GTPU_LEN, GTPU_FLAGS, GTPU_TYPE, GTPU_T_PDU, GTPU_VERSION_SHIFT, GTPU_VERSION,
        GTPU_PT, GTPU_OPTIONAL, GTPU_E_FLAG, GTPU_OPT_LEN, GTPU_OPT_NEXT_EXT, GTPU_EXT_UNIT,
        GTPU_MAX_EXTENSIONS;
    int64_t GRE_LEN, GRE_FLAGS, GRE_VER, GRE_PROTO, GRE_CHECKSUM, GRE_ROUTING, GRE_KEY, GRE_SEQ,
        GRE_VERSION_MASK, GRE_OPT_LEN, GRE_PAYLOAD_LEN, GRE_ACK;
    int64_t ERSPAN_V2_LEN, ERSPAN_V3_LEN, ERSPAN_V3_O_BYTE, ERSPAN_V3_O_BIT, ERSPAN_V3_SUBHEADER;
    int64_t VXLAN_LEN, VXLAN_FLAGS, VXLAN_I_FLAG;
    int64_t GENEVE_LEN, GENEVE_VER_OPT, GENEVE_VERSION_SHIFT, GENEVE_OPT_MASK, GENEVE_OPT_UNIT,
        GENEVE_PROTO;
    int64_t L2TP_LEN, L2TP_FLAGS, L2TP_FLAGS_LEN, L2TP_T_BIT, L2TP_L_BIT, L2TP_S_BIT,
        L2TP_O_BIT, L2TP_VERSION_MASK, L2TP_VERSION, L2TP_TUNNEL_SESSION, L2TP_LENGTH,
        L2TP_OFFSET_SIZE, L2TP_NS_NR_LEN;
    int64_t AYIYA_LEN, AYIYA_ID_LEN, AYIYA_SIG_LEN, AYIYA_NEXT, AYIYA_SIG_UNIT;
    int64_t TEREDO_INDICATION, TEREDO_AUTH, TEREDO_ORIGIN, TEREDO_AUTH_LEN, TEREDO_ID_LEN,
        TEREDO_AUTH_DATA_LEN, TEREDO_NONCE_CONFIRMATION, TEREDO_ORIGIN_LEN;
} L;

#define LAYOUT(name) {#name, &L.name}
static const struct { const char *name; int64_t *dst; } layout_names[] = {
    LAYOUT(LLC_SNAP_LEN), LAYOUT(LLC_SNAP_DSAP), LAYOUT(LLC_SNAP_SSAP), LAYOUT(LLC_SNAP_CONTROL),
    LAYOUT(LLC_SNAP_TYPE), LAYOUT(PPPOE_LEN), LAYOUT(PPPOE_VER_TYPE), LAYOUT(PPPOE_CODE),
    LAYOUT(PPPOE_VERSION_TYPE), LAYOUT(PPPOE_SESSION_DATA), LAYOUT(PPP_COMPRESSED),
    LAYOUT(PPP_ADDRESS), LAYOUT(PPP_CONTROL), LAYOUT(MPLS_LEN), LAYOUT(MPLS_BOS),
    LAYOUT(MPLS_BOS_BIT), LAYOUT(GTPU_LEN), LAYOUT(GTPU_FLAGS), LAYOUT(GTPU_TYPE),
    LAYOUT(GTPU_T_PDU), LAYOUT(GTPU_VERSION_SHIFT), LAYOUT(GTPU_VERSION), LAYOUT(GTPU_PT),
    LAYOUT(GTPU_OPTIONAL), LAYOUT(GTPU_E_FLAG), LAYOUT(GTPU_OPT_LEN), LAYOUT(GTPU_OPT_NEXT_EXT),
    LAYOUT(GTPU_EXT_UNIT), LAYOUT(GTPU_MAX_EXTENSIONS), LAYOUT(GRE_LEN), LAYOUT(GRE_FLAGS),
    LAYOUT(GRE_VER), LAYOUT(GRE_PROTO), LAYOUT(GRE_CHECKSUM), LAYOUT(GRE_ROUTING), LAYOUT(GRE_KEY),
    LAYOUT(GRE_SEQ), LAYOUT(GRE_VERSION_MASK), LAYOUT(GRE_OPT_LEN), LAYOUT(GRE_PAYLOAD_LEN),
    LAYOUT(GRE_ACK), LAYOUT(ERSPAN_V2_LEN), LAYOUT(ERSPAN_V3_LEN), LAYOUT(ERSPAN_V3_O_BYTE),
    LAYOUT(ERSPAN_V3_O_BIT), LAYOUT(ERSPAN_V3_SUBHEADER),
    LAYOUT(VXLAN_LEN), LAYOUT(VXLAN_FLAGS), LAYOUT(VXLAN_I_FLAG), LAYOUT(GENEVE_LEN),
    LAYOUT(GENEVE_VER_OPT), LAYOUT(GENEVE_VERSION_SHIFT), LAYOUT(GENEVE_OPT_MASK),
    LAYOUT(GENEVE_OPT_UNIT), LAYOUT(GENEVE_PROTO), LAYOUT(L2TP_LEN), LAYOUT(L2TP_FLAGS),
    LAYOUT(L2TP_FLAGS_LEN), LAYOUT(L2TP_T_BIT), LAYOUT(L2TP_L_BIT), LAYOUT(L2TP_S_BIT),
    LAYOUT(L2TP_O_BIT), LAYOUT(L2TP_VERSION_MASK), LAYOUT(L2TP_VERSION),
    LAYOUT(L2TP_TUNNEL_SESSION), LAYOUT(L2TP_LENGTH), LAYOUT(L2TP_OFFSET_SIZE),
    LAYOUT(L2TP_NS_NR_LEN), LAYOUT(AYIYA_LEN), LAYOUT(AYIYA_ID_LEN), LAYOUT(AYIYA_SIG_LEN),
    LAYOUT(AYIYA_NEXT), LAYOUT(AYIYA_SIG_UNIT), LAYOUT(TEREDO_INDICATION), LAYOUT(TEREDO_AUTH),
    LAYOUT(TEREDO_ORIGIN), LAYOUT(TEREDO_AUTH_LEN), LAYOUT(TEREDO_ID_LEN),
    LAYOUT(TEREDO_AUTH_DATA_LEN), LAYOUT(TEREDO_NONCE_CONFIRMATION), LAYOUT(TEREDO_ORIGIN_LEN),
};
#undef LAYOUT

static unsigned long long guard_count;

/* -- checked reads ---------------------------------------------------------- */

typedef struct {
    const uint8_t *b;
    int64_t lo, hi;          /* the row's captured bytes */
    int bad;                 /* a read fell outside them */
} Win;

/* Big-endian words from bytes the caller has bounds-checked: one load and
   a byte swap (the byte-at-a-time loops were a fifth of the pass's
   instructions under callgrind). */
static inline uint64_t be64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return v;
#else
    return __builtin_bswap64(v);
#endif
}

static inline uint32_t be32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return v;
#else
    return __builtin_bswap32(v);
#endif
}

static inline uint32_t rd8(Win *w, int64_t at)
{
    if (at < w->lo || at >= w->hi) {
        w->bad = 1;
        return 0;
    }
    return w->b[at];
}

static inline uint32_t rd16(Win *w, int64_t at)
{
    if (at < w->lo || at > w->hi - 2) {
        w->bad = 1;
        return 0;
    }
    return ((uint32_t)w->b[at] << 8) | w->b[at + 1];
}

static inline uint32_t rd32(Win *w, int64_t at)
{
    if (at < w->lo || at > w->hi - 4) {
        w->bad = 1;
        return 0;
    }
    return be32(w->b + at);
}

static inline uint64_t rd64(Win *w, int64_t at)
{
    if (at < w->lo || at > w->hi - 8) {
        w->bad = 1;
        return 0;
    }
    return be64(w->b + at);
}

/* -- per-row state, as kernel.Rows ----------------------------------------- */

typedef struct {
    int tok;
    int64_t pos, end;
    int64_t carrier, payload, tunnel, ntun, pending, proto, ext, rtype, chain, anom;
    int64_t v6, ip, v4, l4, l4end;
} Row;

typedef struct {
    int64_t max_tunnel_depth, depth_cap;
    Py_ssize_t n_sixrd;
    const uint64_t *sixrd;   /* value_hi, mask_hi pairs */
    int long_prefix;
} Opts;

static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

static inline void fall(Row *r) { r->tok = T_FALLBACK; }

/* _depth_ok: a row about to count one more tunnel than the cap allows */
static inline int depth_ok(Row *r, const Opts *o)
{
    if (r->pending != 0 && r->ntun >= o->max_tunnel_depth) {
        fall(r);
        return 0;
    }
    return 1;
}

/* _enter: the header being entered validated; count the pending tunnel */
static inline void enter(Row *r)
{
    if (r->pending != 0) {
        if (r->ntun == 0)
            r->tunnel = r->pending;
        r->ntun += 1;
        r->pending = 0;
    }
}

/* _next_by_proto: dispatch on an IP protocol number (256: stop) */
static inline void next_by_proto(Row *r, int64_t proto, int64_t pos, int64_t pend, int v6)
{
    r->tok = T.proto_token[proto];
    r->pending = T.proto_kind[v6][proto];
    r->pos = pos;
    r->end = pend;
    r->l4 = proto == 256 ? -1 : pos;
    r->l4end = pend;
}

/* ppp_protocol: the PPP protocol field at `at` (2 bytes, or 1 when its
   first byte is odd): its token (T_FALLBACK: cut short, the reference's
   "truncated"; T_DONE: not IP) and where the packet starts in *after */
static RARE int ppp_protocol(Win *w, int64_t at, int64_t end, int64_t *after)
{
    if (at + 1 > end) {
        *after = at + 1;
        return T_FALLBACK;
    }
    uint32_t b = rd8(w, at);
    if (b & L.PPP_COMPRESSED) {
        *after = at + 1;
        return T.ppp_token[b];
    }
    *after = at + 2;
    if (at + 2 > end)
        return T_FALLBACK;
    return T.ppp_token[rd16(w, at)];
}

/* _pppoe: the session stage; a header cut before the protocol field is the
   reference's, another version, type or code holds no IP */
static RARE void pppoe(Row *r, Win *w, int64_t pos, int64_t end)
{
    r->pos = pos;
    if (pos + L.PPPOE_LEN + 2 > end) {
        r->tok = T_FALLBACK;
        return;
    }
    if (rd8(w, pos + L.PPPOE_VER_TYPE) != L.PPPOE_VERSION_TYPE
        || rd8(w, pos + L.PPPOE_CODE) != L.PPPOE_SESSION_DATA) {
        r->tok = T_DONE;
        return;
    }
    r->tok = ppp_protocol(w, pos + L.PPPOE_LEN, end, &r->pos);
}

/* _mpls: the label stack to its bottom entry (at most max_mpls_labels),
   then the version nibble */
static RARE void mpls(Row *r, Win *w, int64_t pos, int64_t end)
{
    int64_t at = pos;
    uint32_t bottom = 0;
    r->tok = T_FALLBACK;
    for (int64_t k = 0; k < T.max_mpls_labels && !bottom; k++) {
        if (at + L.MPLS_LEN > end) {
            r->pos = at;
            return;
        }
        bottom = rd8(w, at + L.MPLS_BOS) & L.MPLS_BOS_BIT;
        at += L.MPLS_LEN;
    }
    r->pos = at;
    if (bottom && at + 1 <= end)
        r->tok = T.version_token[rd8(w, at) >> 4];
}

/* by_ethertype: the step after an ethertype (after the VLAN tags and LLC);
   IP and the ethertypes that hold none take the first branch */
static inline void by_ethertype(Row *r, Win *w, uint32_t et, int64_t pos, int64_t end)
{
    int tok = T.et_token[et];
    r->pos = pos;
    if (tok != T_FALLBACK && tok != T_LLC)
        r->tok = tok;
    else if (et <= T.et_max_length)
        r->tok = T_DONE;
    else if (et == T.et_pppoe)
        pppoe(r, w, pos, end);
    else if (T.is_mpls[et])
        mpls(r, w, pos, end);
    else
        r->tok = tok;
}

static void step_eth(Row *r, Win *w, const Opts *o)
{
    if (!depth_ok(r, o))
        return;
    int64_t pos = r->pos, end = r->end;
    if (pos + 14 > end) {
        fall(r);
        return;
    }
    enter(r);
    uint32_t et = rd16(w, pos + 12);
    pos += 14;
    for (int i = 0; i < 3 && T.is_vlan[et]; i++) {        /* up to three VLAN tags */
        if (pos + 4 > end) {
            fall(r);
            return;
        }
        et = rd16(w, pos + 2);
        pos += 4;
    }
    if (et <= T.et_max_length) {
        /* 802.3 length: LLC/SNAP carries an ethertype, other LLC no IP */
        if (end - pos >= L.LLC_SNAP_LEN && rd8(w, pos) == L.LLC_SNAP_DSAP
            && rd8(w, pos + 1) == L.LLC_SNAP_SSAP && rd8(w, pos + 2) == L.LLC_SNAP_CONTROL) {
            et = rd16(w, pos + L.LLC_SNAP_TYPE);
            pos += L.LLC_SNAP_LEN;
        } else {
            et = 0;
        }
    }
    by_ethertype(r, w, et, pos, end);
}

static void step_ipv4(Row *r, Win *w, const Opts *o)
{
    if (!depth_ok(r, o))
        return;
    int64_t pos = r->pos, end = r->end;
    if (pos + 20 > end) {
        fall(r);
        return;
    }
    uint32_t v = rd8(w, pos);
    int64_t ihl = (v & 0x0F) * 4;
    int64_t tot = rd16(w, pos + 2);
    int64_t pend = tot == 0 ? end : min64(end, pos + tot);
    if (v >> 4 != 4 || ihl < 20 || (tot != 0 && tot < ihl) || pos + ihl > pend) {
        fall(r);
        return;
    }
    enter(r);
    if (r->carrier == T.fam_non_ip)
        r->carrier = T.fam_ipv4;
    r->payload = T.fam_ipv4;
    r->ip = pos;
    r->v4 = pos;
    int64_t proto = rd8(w, pos + 9);
    r->proto = proto;
    if (rd16(w, pos + 6) & 0x1FFF)
        proto = 256;                            /* non-first fragment: done */
    next_by_proto(r, proto, pos + ihl, pend, 0);
}

/* _sixin4_kind: refine a pending 6in4 by the inner addresses; 0 if the row
   fell back */
static int sixin4_kind(Row *r, Win *w, const Opts *o, int64_t pos)
{
    if (r->pending != T.k_6in4)
        return 1;
    uint64_t src_hi = rd64(w, pos + 8), dst_hi = rd64(w, pos + 24);
    int six = (src_hi >> 48) == 0x2002 || (dst_hi >> 48) == 0x2002;
    uint32_t iid_s = rd32(w, pos + 16), iid_d = rd32(w, pos + 32);
    int isatap = (iid_s | 0x02000000u) == 0x02005EFEu || (iid_d | 0x02000000u) == 0x02005EFEu;
    int sixrd = 0;
    for (Py_ssize_t i = 0; i < o->n_sixrd && !sixrd; i++) {
        uint64_t vh = o->sixrd[2 * i], mh = o->sixrd[2 * i + 1];
        sixrd = (src_hi & mh) == vh || (dst_hi & mh) == vh;
    }
    r->pending = six ? T.k_6to4 : isatap ? T.k_isatap : sixrd ? T.k_6rd : T.k_6in4;
    if (o->long_prefix && !isatap && !six) {
        fall(r);
        return 0;
    }
    return 1;
}

static void step_ipv6(Row *r, Win *w, const Opts *o)
{
    if (!depth_ok(r, o))
        return;
    int64_t pos = r->pos, end = r->end;
    if (pos + 40 > end || rd8(w, pos) >> 4 != 6) {
        fall(r);
        return;
    }
    if (!sixin4_kind(r, w, o, pos))
        return;
    enter(r);
    if (r->carrier == T.fam_non_ip)
        r->carrier = T.fam_ipv6;
    r->payload = T.fam_ipv6;
    r->v6 = pos;
    r->ip = pos;
    int64_t plen = rd16(w, pos + 4);
    int64_t nh = rd8(w, pos + 6);
    int64_t decl = (plen == 0 && nh != T.p_none) ? end : pos + 40 + plen;
    int64_t limit = min64(end, decl);
    int outermost = r->chain < 0;

    /* the extension-header walk */
    int64_t cur = pos + 40, n = 0, seen = 0, dst_count = 0;
    int first_frag = 0, follow = 1, fallback = 0;
    for (int64_t depth = 0;; depth++) {
        if (!T.ext_bit[nh])
            break;
        if (depth == o->depth_cap) {
            fallback = 1;
            break;
        }
        int64_t h = nh, c = cur;
        n += 1;
        int rep;
        if (h == T.p_dstopts) {
            dst_count += 1;
            rep = dst_count > 2;
        } else {
            rep = (seen & T.seen_bit[h]) != 0;
        }
        seen |= T.seen_bit[h];
        r->ext |= T.ext_bit[h];
        if (rep)
            r->anom |= T.a_repeated;
        if (h == T.p_hopopts && n != 1)
            r->anom |= T.a_hbh_not_first;
        if (h == T.p_esp) {
            follow = 0;
            break;
        }
        int64_t hlen;
        if (h == T.p_fragment) {
            hlen = 8;
        } else {
            if (c + 1 >= end) {           /* past the bytes: the cut below */
                fallback = 1;
                break;
            }
            uint32_t b1 = rd8(w, c + 1);
            hlen = h == T.p_ah ? ((int64_t)b1 + 2) * 4 : ((int64_t)b1 + 1) * 8;
        }
        if (c + hlen > limit) {           /* runs past bytes or length: reference */
            fallback = 1;
            break;
        }
        if (h == T.p_routing) {
            /* one routing header per frame here; a second one: reference */
            if (r->rtype >= 0) {
                fallback = 1;
                break;
            }
            uint32_t rt = rd8(w, c + 2);
            r->rtype = rt;
            if (rt == 0)
                r->anom |= T.a_rh0;
        }
        int64_t nxt = rd8(w, c);
        if (h == T.p_fragment) {
            uint32_t fw = rd16(w, c + 2);
            uint32_t fo = fw >> 3, more = fw & 1;
            if (fo == 0 && more == 0)
                r->anom |= T.a_atomic;
            if (fo == 0 && more == 1)
                first_frag = 1;
            if (fo != 0) {
                nh = nxt;                 /* a non-first fragment keeps it as its protocol */
                cur = c + hlen;
                follow = 0;
                break;
            }
        }
        nh = nxt;
        cur = c + hlen;
    }
    if (follow && !fallback) {
        if (T.unknown_nh[nh])
            r->anom |= T.a_unknown_nh;
        if (first_frag && nh != T.p_none && cur + T.ul_min[nh] > decl)
            r->anom |= T.a_not_in_first;
    }
    if (outermost)
        r->chain = n;
    r->proto = nh;
    if (fallback) {
        fall(r);
        return;
    }
    next_by_proto(r, follow ? nh : 256, cur, limit, 1);
}

/* The UDP tunnels' steps (kernel._gtpu ... _ayiya): each accepts the row
   (it enters `kind` at `at`), sends it to the reference (UNSURE), or
   declines it (the datagram is then tried as Teredo). */
enum { ACCEPTED, UNSURE, DECLINED };

static int accept(Row *r, int tok, int64_t kind, int64_t at, int64_t end)
{
    r->tok = tok;
    r->pending = kind;
    r->pos = at;
    r->end = end;
    return ACCEPTED;
}

static int gtpu(Row *r, Win *w, int64_t pay, int64_t end)
{
    if (pay + L.GTPU_LEN > end)
        return DECLINED;
    uint32_t fl = rd8(w, pay + L.GTPU_FLAGS);
    if ((fl >> L.GTPU_VERSION_SHIFT) != L.GTPU_VERSION || !(fl & L.GTPU_PT)
        || rd8(w, pay + L.GTPU_TYPE) != L.GTPU_T_PDU)
        return DECLINED;
    int64_t at = pay + L.GTPU_LEN;
    if (fl & L.GTPU_OPTIONAL) {
        if (at + L.GTPU_OPT_LEN > end)
            return DECLINED;
        uint32_t nxt = (fl & L.GTPU_E_FLAG) ? rd8(w, at + L.GTPU_OPT_NEXT_EXT) : 0;
        at += L.GTPU_OPT_LEN;
        /* extension headers: at most MAX_EXTENSIONS - 1 end with next type 0 */
        for (int64_t k = 0; nxt != 0; k++) {
            if (k == L.GTPU_MAX_EXTENSIONS - 1 || at >= end)
                return DECLINED;
            int64_t ln = (int64_t)rd8(w, at) * L.GTPU_EXT_UNIT;
            if (ln == 0 || at + ln > end)
                return DECLINED;
            nxt = rd8(w, at + ln - 1);
            at += ln;
        }
    }
    if (at >= end)
        return DECLINED;
    int tok = T.version_token[rd8(w, at) >> 4];
    return tok == T_DONE ? DECLINED : accept(r, tok, T.k_gtpu, at, end);
}

static int vxlan(Row *r, Win *w, int64_t pay, int64_t end)
{
    if (pay + L.VXLAN_LEN <= end && (rd8(w, pay + L.VXLAN_FLAGS) & L.VXLAN_I_FLAG))
        return accept(r, T_ETH, T.k_vxlan, pay + L.VXLAN_LEN, end);
    return DECLINED;
}

static RARE int geneve(Row *r, Win *w, int64_t pay, int64_t end)
{
    if (pay + L.GENEVE_LEN > end)
        return DECLINED;
    uint32_t b0 = rd8(w, pay + L.GENEVE_VER_OPT);
    if ((b0 >> L.GENEVE_VERSION_SHIFT) != 0)
        return DECLINED;
    int tok = T.geneve_token[rd16(w, pay + L.GENEVE_PROTO)];
    if (tok == T_DONE)
        return DECLINED;
    if (tok == T_FALLBACK) {
        fall(r);
        return UNSURE;
    }
    return accept(r, tok, T.k_geneve,
                  pay + L.GENEVE_LEN + (int64_t)(b0 & L.GENEVE_OPT_MASK) * L.GENEVE_OPT_UNIT, end);
}

static RARE int l2tp(Row *r, Win *w, int64_t pay, int64_t end)
{
    if (pay + L.L2TP_LEN > end)
        return DECLINED;
    uint32_t fl = rd16(w, pay + L.L2TP_FLAGS);
    if ((fl & L.L2TP_VERSION_MASK) != L.L2TP_VERSION || (fl & L.L2TP_T_BIT))
        return DECLINED;
    int64_t at = pay + L.L2TP_FLAGS_LEN + ((fl & L.L2TP_L_BIT) ? L.L2TP_LENGTH : 0)
                 + L.L2TP_TUNNEL_SESSION + ((fl & L.L2TP_S_BIT) ? L.L2TP_NS_NR_LEN : 0);
    if (fl & L.L2TP_O_BIT) {
        if (at + L.L2TP_OFFSET_SIZE > end)
            return DECLINED;
        at += L.L2TP_OFFSET_SIZE + rd16(w, at);
    }
    if (end - at >= 2 && rd8(w, at) == L.PPP_ADDRESS && rd8(w, at + 1) == L.PPP_CONTROL)
        at += 2;
    int64_t after;
    int tok = ppp_protocol(w, at, end, &after);
    if (tok == T_FALLBACK) {
        fall(r);                              /* the PPP protocol cut: "truncated" */
        return UNSURE;
    }
    return tok == T_DONE ? DECLINED : accept(r, tok, T.k_l2tp, after, end);
}

static RARE int ayiya(Row *r, Win *w, int64_t pay, int64_t end)
{
    if (pay + L.AYIYA_LEN > end)
        return DECLINED;
    int tok = T.ayiya_token[rd8(w, pay + L.AYIYA_NEXT)];
    if (tok == T_DONE)
        return DECLINED;
    int64_t at = pay + L.AYIYA_LEN + ((int64_t)1 << (rd8(w, pay + L.AYIYA_ID_LEN) >> 4))
                 + L.AYIYA_SIG_UNIT * (int64_t)(rd8(w, pay + L.AYIYA_SIG_LEN) >> 4);
    return accept(r, tok, T.k_ayiya, at, end);
}

static void step_udp(Row *r, Win *w, const Opts *o)
{
    (void)o;
    int64_t pos = r->pos, end = r->end;
    if (pos + 8 > end) {
        fall(r);
        return;
    }
    int64_t sport = rd16(w, pos), dport = rd16(w, pos + 2), ulen = rd16(w, pos + 4);
    int64_t uend = (ulen >= 8 && pos + ulen <= end) ? pos + ulen : end;
    int64_t pay = pos + 8;
    r->tok = T_DONE;
    int on_s = T.is_tunnel_port[sport], on_d = T.is_tunnel_port[dport];
    if (on_s || on_d) {
        int64_t kind = on_d ? T.udp_tunnel_kind[dport] : T.udp_tunnel_kind[sport];
        int res;
        if (on_s && on_d && sport != dport)
            res = UNSURE;                      /* the reference tries both ports */
        else if (kind == T.k_gtpu)
            res = gtpu(r, w, pay, uend);
        else if (kind == T.k_vxlan)
            res = vxlan(r, w, pay, uend);
        else if (kind == T.k_geneve)
            res = geneve(r, w, pay, uend);
        else if (kind == T.k_l2tp)
            res = l2tp(r, w, pay, uend);
        else if (kind == T.k_ayiya)
            res = ayiya(r, w, pay, uend);
        else
            res = UNSURE;                      /* a port the pass has no step for */
        if (res == UNSURE)
            fall(r);
        if (res != DECLINED)
            return;
    }
    /* Teredo: over IPv4, UDP length valid */
    if (r->payload != T.fam_ipv4 || ulen < 8)
        return;
    int64_t tp = pay, te = uend, decl_end = pos + ulen;
    int on_port = sport == T.port_teredo || dport == T.port_teredo;
    if (tp + L.TEREDO_AUTH_LEN <= te && rd8(w, tp) == L.TEREDO_INDICATION
        && rd8(w, tp + 1) == L.TEREDO_AUTH)                 /* authentication indicator */
        tp += L.TEREDO_AUTH_LEN + rd8(w, tp + L.TEREDO_ID_LEN)
              + rd8(w, tp + L.TEREDO_AUTH_DATA_LEN) + L.TEREDO_NONCE_CONFIRMATION;
    if (tp + L.TEREDO_ORIGIN_LEN <= te && rd8(w, tp) == L.TEREDO_INDICATION
        && rd8(w, tp + 1) == L.TEREDO_ORIGIN)              /* origin indication */
        tp += L.TEREDO_ORIGIN_LEN;
    if (tp + 40 > te || rd8(w, tp) >> 4 != 6)
        return;
    int64_t plen = rd16(w, tp + 4);
    if (tp + 40 + plen > decl_end)
        return;
    if (!(on_port || rd32(w, tp + 8) == 0x20010000u || rd32(w, tp + 24) == 0x20010000u))
        return;
    r->tok = T_IPV6;
    r->pending = T.k_teredo;
    r->pos = tp;
    r->end = te;
}

static void step_gre(Row *r, Win *w, const Opts *o)
{
    (void)o;
    int64_t pos = r->pos, end = r->end;
    if (pos + L.GRE_LEN > end) {
        fall(r);
        return;
    }
    uint32_t fl = rd8(w, pos + L.GRE_FLAGS), b1 = rd8(w, pos + L.GRE_VER);
    uint32_t ver = b1 & L.GRE_VERSION_MASK, proto = rd16(w, pos + L.GRE_PROTO);
    int seq = (fl & L.GRE_SEQ) != 0;
    int64_t hlen;
    r->tok = T_DONE;
    if (ver == 0 && !(fl & L.GRE_ROUTING)) {
        hlen = L.GRE_OPT_LEN * (((fl & L.GRE_CHECKSUM) != 0) + ((fl & L.GRE_KEY) != 0) + seq);
    } else if (ver == 1 && pos + L.GRE_LEN + L.GRE_OPT_LEN <= end
               && rd16(w, pos + L.GRE_PAYLOAD_LEN) != 0) {
        hlen = L.GRE_OPT_LEN * (1 + seq + ((b1 & L.GRE_ACK) != 0));
    } else {
        return;                                  /* not followed */
    }
    int64_t at = pos + L.GRE_LEN + hlen;
    int tok = T.gre_token[proto];
    r->pending = T.k_gre;
    r->pos = at;
    if (tok != T_PPP) {
        r->tok = tok;
    } else if (proto == T.et_ppp) {
        /* PPP in enhanced GRE: optional address and control, the protocol */
        if (end - at >= 2 && rd8(w, at) == L.PPP_ADDRESS && rd8(w, at + 1) == L.PPP_CONTROL)
            at += 2;
        r->tok = ppp_protocol(w, at, end, &r->pos);
    } else if (proto == T.et_erspan2) {
        r->tok = T_ETH;
        r->pos = at + (seq ? L.ERSPAN_V2_LEN : 0);
    } else if (proto == T.et_erspan3) {
        if (at + L.ERSPAN_V3_LEN <= end) {
            r->tok = T_ETH;
            r->pos = at + L.ERSPAN_V3_LEN
                     + ((rd8(w, at + L.ERSPAN_V3_O_BYTE) & L.ERSPAN_V3_O_BIT)
                        ? L.ERSPAN_V3_SUBHEADER : 0);
        } else {
            r->tok = T_DONE;
        }
    } else {
        r->tok = T_DONE;
    }
}

/* start: the first token from the link type (others: reference) */
static void start(Row *r, Win *w, int64_t lt)
{
    r->tok = T_FALLBACK;
    const int64_t *l = NULL;
    for (int i = 0; i < T.n_links; i++) {
        if (T.links[i][0] == lt) {
            l = T.links[i];
            break;
        }
    }
    if (!l)
        return;
    switch (l[1]) {
    case L_ETH:
        r->tok = T_ETH;
        break;
    case L_RAW:                                  /* IP, the family by version */
        if (r->pos < r->end) {
            uint32_t v = rd8(w, r->pos) >> 4;
            r->tok = v == 4 ? T_IPV4 : v == 6 ? T_IPV6 : T_DONE;
        }
        break;
    case L_RAW_IPV4:
        r->tok = T_IPV4;
        break;
    case L_RAW_IPV6:
        r->tok = T_IPV6;
        break;
    default: {                                   /* Linux SLL, SLL2 */
        int64_t hlen = l[2], at = l[3], p = r->pos;
        r->pos = p + hlen;
        if (p + hlen <= r->end)
            by_ethertype(r, w, rd16(w, p + at), p + hlen, r->end);
    }
    }
}

/* Classes of the split /16s by their first 32 bits, for one classify call
   (a batch's addresses repeat: 2001:db8::/32 alone made the prefix scan a
   tenth of the pass's instructions on real traffic). Only first-32-bit
   values that no prefix longer than /32 starts with are kept: their class
   depends on those bits alone. key: the 32 bits plus 1 << 32 (0: empty). */
#define CLASS_CACHE 64
typedef struct {
    uint64_t key[CLASS_CACHE];
    int64_t cls[CLASS_CACHE];
} ClassCache;

static int64_t addr_class(uint64_t hi, uint64_t lo, ClassCache *cc)
{
    int64_t c = T.class16[hi >> 48];
    if (c >= 0)
        return c;
    const uint64_t top = hi & 0xFFFFFFFF00000000ULL;
    const uint64_t key = (hi >> 32) | (1ULL << 32);
    const unsigned slot = (unsigned)(((hi >> 32) * 0x9E3779B97F4A7C15ULL) >> 58);
    if (cc->key[slot] == key)
        return cc->cls[slot];
    /* a /16 that a longer prefix splits: first match in table order */
    c = T.class_other;
    for (int i = 0; i < T.n_prefixes; i++) {
        const ClassPrefix *p = &T.prefixes[i];
        if ((hi & p->mh) == p->vh && (lo & p->ml) == p->vl) {
            c = p->cls;
            break;
        }
    }
    for (int i = 0; i < T.n_prefixes; i++) {
        const ClassPrefix *p = &T.prefixes[i];
        if (((p->mh & 0xFFFFFFFFULL) != 0 || p->ml != 0)
            && (p->vh & 0xFFFFFFFF00000000ULL) == top)
            return c;                           /* a longer prefix starts here */
    }
    cc->key[slot] = key;
    cc->cls[slot] = c;
    return c;
}

/* One row: the walk, then its outputs. Returns 1 when it falls back. */
static int classify_row(Win *w, int64_t off, int64_t cap, int64_t lt, const Opts *o,
                        int64_t *out, Py_ssize_t n, Py_ssize_t i, unsigned long long *guards,
                        ClassCache *cc)
{
    Row r;
    /* field by field: a memset of the struct compiles to a slow `rep stos` */
    r.tok = T_FALLBACK;
    r.pos = off;
    r.end = off + cap;
    r.carrier = r.payload = r.tunnel = r.ntun = r.pending = r.proto = r.ext = r.anom = 0;
    r.l4end = 0;
    r.rtype = r.chain = r.v6 = r.ip = r.v4 = r.l4 = -1;
    w->lo = off;
    w->hi = off + cap;
    w->bad = 0;
    start(&r, w, lt);
    int64_t rounds = 0;
    while (!w->bad && r.tok >= T_ETH && r.tok <= T_GRE) {
        int old = r.tok;
        switch (old) {
        case T_ETH: step_eth(&r, w, o); break;
        case T_IPV4: step_ipv4(&r, w, o); break;
        case T_IPV6: step_ipv6(&r, w, o); break;
        case T_UDP: step_udp(&r, w, o); break;
        default: step_gre(&r, w, o); break;
        }
        /* the numpy loop runs the steps in token order once per round */
        if (r.tok >= T_ETH && r.tok <= T_GRE && r.tok <= old && ++rounds >= T.max_rounds)
            fall(&r);
    }
    if (w->bad) {
        *guards += 1;
        fall(&r);
    }
    uint64_t a[4] = {0, 0, 0, 0};
    if (r.v6 >= 0 && r.v6 + 40 <= w->hi) {
        for (int k = 0; k < 4; k++)
            a[k] = rd64(w, r.v6 + 8 + 8 * k);
    }
    int64_t key = 0;
    if (r.tok == T_DONE) {
        int64_t transport = T.transport_code[r.payload * 256 + (r.proto & 0xFF)];
        int64_t src = 0, dst = 0;
        if (r.payload == T.fam_ipv6 && r.v6 >= 0) {
            src = addr_class(a[0], a[1], cc) + 1;
            dst = addr_class(a[2], a[3], cc) + 1;
        }
        key = (r.carrier << T.shift[F_CARRIER]) | (r.payload << T.shift[F_PAYLOAD])
              | (r.tunnel << T.shift[F_TUNNEL]) | (transport << T.shift[F_TRANSPORT])
              | (r.ext << T.shift[F_EXT]) | ((r.rtype + 1) << T.shift[F_RTYPE])
              | ((r.chain + 1) << T.shift[F_CHAIN]) | (r.anom << T.shift[F_ANOM])
              | (src << T.shift[F_SRC]) | (dst << T.shift[F_DST]);
    }
    out[C_KEY * n + i] = key;
    out[C_CARRIER * n + i] = r.carrier;
    out[C_PAYLOAD * n + i] = r.payload;
    out[C_TUNNEL * n + i] = r.tunnel;
    out[C_NTUN * n + i] = r.ntun;
    out[C_PROTO * n + i] = r.proto;
    out[C_V6 * n + i] = r.v6;
    out[C_IP * n + i] = r.ip;
    out[C_V4 * n + i] = r.v4;
    out[C_L4 * n + i] = r.l4;
    out[C_L4END * n + i] = r.l4end;
    out[C_S_HI * n + i] = (int64_t)a[0];
    out[C_S_LO * n + i] = (int64_t)a[1];
    out[C_D_HI * n + i] = (int64_t)a[2];
    out[C_D_LO * n + i] = (int64_t)a[3];
    return r.tok != T_DONE;
}

/* -- the analyses' columns of a row (fast/__init__.py gather_columns) --------
 *
 * What fast.gather_columns reads with numpy for a classified row, read here
 * while the row's bytes are still in the cache: the transport ports, the
 * ICMP type, the innermost IPv4 addresses, the Ethernet addresses and the
 * TCP flags (C_SPORT .. C_FLAGS, -1 where there is none). gather_columns is
 * the specification and tests/test_core.py holds the two equal. The reads
 * clip into the batch buffer exactly as the numpy gathers do (kernel.Rows.u8
 * and word: the start clipped to the last position a whole item fits, bytes
 * past the end read as 0), so they stay inside the buffer whatever the row
 * state says.
 */
static inline uint64_t clipped_word(const uint8_t *b, int64_t len, int64_t at, int width)
{
    int64_t last = len >= width ? len - width : 0;
    int64_t s = at < 0 ? 0 : at > last ? last : at;
    if (len >= width && width == 8)          /* then s + width <= len */
        return be64(b + s);
    if (len >= width && width == 4)
        return be32(b + s);
    uint64_t v = 0;
    for (int k = 0; k < width; k++)
        v = (v << 8) | (s + k < len ? b[s + k] : 0);
    return v;
}

static inline int64_t clipped_u8(const uint8_t *b, int64_t len, int64_t at)
{
    if (len <= 0)
        return 0;
    return b[at < 0 ? 0 : at >= len ? len - 1 : at];
}

static void row_columns(const uint8_t *b, int64_t len, int64_t off, int64_t cap, int64_t lt,
                        int64_t *out, Py_ssize_t n, Py_ssize_t i)
{
#define ROW(c) out[(Py_ssize_t)(c) * n + i]
    int64_t fam = ROW(C_PAYLOAD), proto = ROW(C_PROTO), l4 = ROW(C_L4), l4end = ROW(C_L4END);
    int64_t v4 = ROW(C_V4);
    int has_l4 = l4 >= 0, tcp_udp = proto == T.p_tcp || proto == T.p_udp;
    int64_t sport = -1, dport = -1, icmp = -1, v4s = -1, v4d = -1, flags = -1;
    int64_t mac_s = -1, mac_d = -1;
    if (has_l4 && tcp_udp && l4 + T.udp_dport + 2 <= l4end) {
        uint64_t ports = clipped_word(b, len, l4 + T.udp_sport, 4);
        sport = (int64_t)(ports >> 16);
        dport = (int64_t)(ports & 0xFFFF);
    }
    if (has_l4 && !tcp_udp && proto == (fam == T.fam_ipv6 ? T.p_icmpv6 : T.p_icmp)
        && l4 < l4end)
        icmp = clipped_u8(b, len, l4 + T.icmp_type);
    if (v4 >= 0) {
        uint64_t a = clipped_word(b, len, v4 + T.ipv4_src, 8);
        v4s = (int64_t)(a >> 32);
        v4d = (int64_t)(a & 0xFFFFFFFFULL);
    }
    if (lt == T.linktype_ethernet && cap >= T.eth_src + T.eth_addr_len) {
        uint64_t w0 = clipped_word(b, len, off + T.eth_dst, 8);
        mac_d = (int64_t)(w0 >> 16);
        mac_s = (int64_t)((w0 & 0xFFFF) << 32)
                | (int64_t)clipped_word(b, len, off + T.eth_src + 2, 4);
    }
    if (has_l4 && proto == T.p_tcp && l4 + T.tcp_flags + 1 <= l4end)
        flags = clipped_u8(b, len, l4 + T.tcp_flags);
    ROW(C_SPORT) = sport;
    ROW(C_DPORT) = dport;
    ROW(C_ICMP) = icmp;
    ROW(C_V4S) = v4s;
    ROW(C_V4D) = v4d;
    ROW(C_MAC_S) = mac_s;
    ROW(C_MAC_D) = mac_d;
    ROW(C_FLAGS) = flags;
#undef ROW
}

/* -- the Python interface ---------------------------------------------------- */

static PyObject *classify(PyObject *self, PyObject *args)
{
    Py_buffer buf, offv, capv, ltv, outv, fbv;
    PyObject *offo, *capo, *lto, *outo, *fbo, *sixo;
    long long max_tunnel_depth, depth_cap;
    int long_prefix;
    if (!T.ready) {
        PyErr_SetString(PyExc_RuntimeError, "_core.configure() was not called");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "y*OOOOOLLOp", &buf, &offo, &capo, &lto, &outo, &fbo,
                          &max_tunnel_depth, &depth_cap, &sixo, &long_prefix))
        return NULL;
    PyObject *result = NULL;
    uint64_t *sixrd = NULL;
    int got = 0;
    if (!get_array(offo, &offv, 8, -1, 0, "offsets"))
        goto done;
    got = 1;
    Py_ssize_t n = offv.shape[0];
    if (!get_array(capo, &capv, 8, n, 0, "caplens"))
        goto done;
    got = 2;
    if (!get_array(lto, &ltv, 8, n, 0, "linktypes"))
        goto done;
    got = 3;
    if (!get_array(outo, &outv, 8, NCOLS * n, 1, "out"))
        goto done;
    got = 4;
    if (!get_array(fbo, &fbv, 8, n, 1, "fallback"))
        goto done;
    got = 5;
    PyObject *seq = PySequence_Fast(sixo, "sixrd must be a sequence");
    if (!seq)
        goto done;
    Py_ssize_t ns = PySequence_Fast_GET_SIZE(seq);
    sixrd = PyMem_Malloc((size_t)(ns ? ns : 1) * 2 * sizeof(uint64_t));
    if (!sixrd) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < ns; i++) {
        unsigned long long vh, mh;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i), "KK", &vh, &mh)) {
            Py_DECREF(seq);
            goto done;
        }
        sixrd[2 * i] = vh;
        sixrd[2 * i + 1] = mh;
    }
    Py_DECREF(seq);
    Opts o = {max_tunnel_depth, depth_cap, ns, sixrd, long_prefix};
    const int64_t *off = offv.buf, *cap = capv.buf;
    const int64_t *lt = ltv.buf;
    int64_t *out = outv.buf, *fb = fbv.buf;
    Win w = {(const uint8_t *)buf.buf, 0, 0, 0};
    Py_ssize_t nfb = 0;
    unsigned long long guards = 0;
    ClassCache cache, *cc = &cache;
    memset(&cache, 0, sizeof cache);
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t a = off[i], c = cap[i];
        /* the first header bytes of a row a few rows on: their cache miss
           is most of a row's time otherwise (a hint, never a read) */
        if (i + PREFETCH < n) {
            int64_t ahead = off[i + PREFETCH];
            if (ahead >= 0 && ahead < buf.len) {
                __builtin_prefetch((const uint8_t *)buf.buf + ahead);
                if (ahead + 64 < buf.len)     /* tunnels and IPv6 reach the next line */
                    __builtin_prefetch((const uint8_t *)buf.buf + ahead + 64);
            }
        }
        int bad_row = a < 0 || c < 0 || a > buf.len || c > buf.len - a;
        if (bad_row) {
            /* not a row of this buffer: the reference decides (as it will
               on the bytes the batch's slice gives) */
            for (int k = 0; k < C_SPORT; k++)
                out[(Py_ssize_t)k * n + i] = -1;
            fb[nfb++] = i;
        } else if (classify_row(&w, a, c, lt[i], &o, out, n, i, &guards, cc)) {
            fb[nfb++] = i;
        }
        row_columns(w.b, buf.len, a, c, lt[i], out, n, i);
    }
    Py_END_ALLOW_THREADS
    guard_count += guards;
    result = PyLong_FromSsize_t(nfb);
done:
    PyMem_Free(sixrd);
    if (got >= 5)
        PyBuffer_Release(&fbv);
    if (got >= 4)
        PyBuffer_Release(&outv);
    if (got >= 3)
        PyBuffer_Release(&ltv);
    if (got >= 2)
        PyBuffer_Release(&capv);
    if (got >= 1)
        PyBuffer_Release(&offv);
    PyBuffer_Release(&buf);
    return result;
}

/* -- configure: the kernel's tables ------------------------------------------ */

static PyObject *item(PyObject *d, const char *name)
{
    PyObject *v = PyDict_GetItemString(d, name);    /* borrowed */
    if (!v)
        PyErr_Format(PyExc_KeyError, "_core.configure: %s missing", name);
    return v;
}

static int get_int(PyObject *d, const char *name, int64_t *dst)
{
    PyObject *v = item(d, name);
    if (!v)
        return 0;
    long long x = PyLong_AsLongLong(v);
    if (x == -1 && PyErr_Occurred())
        return 0;
    *dst = x;
    return 1;
}

static int put_item(const char *name, Py_ssize_t i, long long x, void *dst, int dst_size)
{
    if (dst_size == 1) {
        if (x < -128 || x > 255) {
            PyErr_Format(PyExc_ValueError, "_core.configure: %s[%zd] out of range", name, i);
            return 0;
        }
        ((int8_t *)dst)[i] = (int8_t)x;
    } else {
        ((int64_t *)dst)[i] = x;
    }
    return 1;
}

/* Table NAME: `count` integers, copied (converted) into dst of dst_size
   bytes per item, signed. A sequence of ints, or a 1-d buffer of 1- or
   8-byte integers (a numpy array: no list of 65,536 ints to build at
   start-up). */
static int get_table(PyObject *d, const char *name, Py_ssize_t count, void *dst,
                     int dst_size)
{
    PyObject *v = item(d, name);
    if (!v)
        return 0;
    if (PyObject_CheckBuffer(v) && !PyBytes_Check(v)) {
        Py_buffer b;
        if (PyObject_GetBuffer(v, &b, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
            return 0;
        size_t flen = b.format ? strlen(b.format) : 0;
        char f = flen ? b.format[flen - 1] : 0;
        int ok = b.ndim == 1 && b.shape[0] == count
                 && ((b.itemsize == 1 && strchr("bB?", f)) || (b.itemsize == 8 && strchr("qlQL", f)));
        if (!ok) {
            PyErr_Format(PyExc_ValueError, "_core.configure: %s is not %zd integers", name, count);
            PyBuffer_Release(&b);
            return 0;
        }
        int sign = f == 'b' || f == 'q' || f == 'l';
        for (Py_ssize_t i = 0; i < count; i++) {
            long long x;
            if (b.itemsize == 1)
                x = sign ? ((const int8_t *)b.buf)[i] : ((const uint8_t *)b.buf)[i];
            else
                x = ((const int64_t *)b.buf)[i];
            if (!put_item(name, i, x, dst, dst_size)) {
                PyBuffer_Release(&b);
                return 0;
            }
        }
        PyBuffer_Release(&b);
        return 1;
    }
    PyObject *seq = PySequence_Fast(v, name);
    if (!seq)
        return 0;
    if (PySequence_Fast_GET_SIZE(seq) != count) {
        PyErr_Format(PyExc_ValueError, "_core.configure: %s has %zd items, not %zd", name,
                     PySequence_Fast_GET_SIZE(seq), count);
        Py_DECREF(seq);
        return 0;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        long long x = PyLong_AsLongLong(PySequence_Fast_GET_ITEM(seq, i));
        if (x == -1 && PyErr_Occurred()) {
            Py_DECREF(seq);
            return 0;
        }
        if (!put_item(name, i, x, dst, dst_size)) {
            Py_DECREF(seq);
            return 0;
        }
    }
    Py_DECREF(seq);
    return 1;
}

static PyObject *configure(PyObject *self, PyObject *args)
{
    PyObject *d;
    if (!PyArg_ParseTuple(args, "O!", &PyDict_Type, &d))
        return NULL;
    T.ready = 0;
    /* the tokens and key fields this file is written against */
    int64_t tokens[8];
    if (!get_table(d, "TOKENS", 8, tokens, 8))
        return NULL;
    for (int i = 0; i < 8; i++) {
        if (tokens[i] != i) {
            PyErr_SetString(PyExc_ValueError, "_core.configure: kernel tokens changed");
            return NULL;
        }
    }
    int64_t steps[5];
    if (!get_table(d, "STEPS", 5, steps, 8))
        return NULL;
    for (int i = 0; i < 5; i++) {
        if (steps[i] != T_ETH + i) {
            PyErr_SetString(PyExc_ValueError, "_core.configure: kernel step order changed");
            return NULL;
        }
    }
    int64_t t_ppp;
    if (!get_int(d, "T_PPP", &t_ppp))
        return NULL;
    if (t_ppp != T_PPP) {
        PyErr_SetString(PyExc_ValueError, "_core.configure: kernel tokens changed");
        return NULL;
    }
    int64_t ncols;
    if (!get_int(d, "NCOLS", &ncols))
        return NULL;
    if (ncols != NCOLS) {
        PyErr_SetString(PyExc_ValueError, "_core.configure: column count changed");
        return NULL;
    }
    int8_t bools[65536];
    if (!get_table(d, "ET_TOKEN", 65536, T.et_token, 1)
        || !get_table(d, "IS_VLAN", 65536, bools, 1))
        return NULL;
    memcpy(T.is_vlan, bools, sizeof bools);
    if (!get_table(d, "IS_TUNNEL_PORT", 65536, bools, 1))
        return NULL;
    memcpy(T.is_tunnel_port, bools, sizeof bools);
    if (!get_table(d, "UNKNOWN_NH", 256, bools, 1))
        return NULL;
    memcpy(T.unknown_nh, bools, 256);
    int64_t kinds[2 * 257], prefixes[5 * MAX_CLASS_PREFIXES], nprefixes;
    if (!get_table(d, "EXT_BIT", 256, T.ext_bit, 8)
        || !get_table(d, "SEEN_BIT", 256, T.seen_bit, 8)
        || !get_table(d, "UL_MIN", 256, T.ul_min, 8)
        || !get_table(d, "TRANSPORT_CODE", 3 * 256, T.transport_code, 8)
        || !get_table(d, "PROTO_TOKEN", 257, T.proto_token, 1)
        || !get_table(d, "PROTO_KIND", 2 * 257, kinds, 8)
        || !get_table(d, "CLASS16", 65536, T.class16, 8)
        || !get_table(d, "SHIFTS", NFIELDS, T.shift, 8)
        || !get_int(d, "N_CLASS_PREFIXES", &nprefixes))
        return NULL;
    if (nprefixes < 0 || nprefixes > MAX_CLASS_PREFIXES) {
        PyErr_SetString(PyExc_ValueError, "_core.configure: too many address-class prefixes");
        return NULL;
    }
    if (!get_table(d, "CLASS_PREFIXES", 5 * nprefixes, prefixes, 8))
        return NULL;
    memcpy(T.proto_kind, kinds, sizeof kinds);
    T.n_prefixes = (int)nprefixes;
    for (int i = 0; i < T.n_prefixes; i++) {
        T.prefixes[i].cls = prefixes[5 * i];
        T.prefixes[i].vh = (uint64_t)prefixes[5 * i + 1];
        T.prefixes[i].mh = (uint64_t)prefixes[5 * i + 2];
        T.prefixes[i].vl = (uint64_t)prefixes[5 * i + 3];
        T.prefixes[i].ml = (uint64_t)prefixes[5 * i + 4];
    }
    int64_t nlinks;
    if (!get_table(d, "GRE_TOKEN", 65536, T.gre_token, 1) || !get_int(d, "N_LINKS", &nlinks))
        return NULL;
    if (nlinks < 0 || nlinks > MAX_LINKS) {
        PyErr_SetString(PyExc_ValueError, "_core.configure: too many link types");
        return NULL;
    }
    if (!get_table(d, "LINKS", 4 * nlinks, T.links, 8))
        return NULL;
    T.n_links = (int)nlinks;
    for (int i = 0; i < T.n_links; i++) {
        int64_t *l = T.links[i];
        if (l[1] < 0 || l[1] >= NLINKKINDS
            || (l[1] == L_COOKED && (l[2] > 64 || l[3] < 0 || l[3] + 2 > l[2]))) {
            PyErr_SetString(PyExc_ValueError, "_core.configure: LINKS out of range");
            return NULL;
        }
    }
    if (!get_table(d, "GENEVE_TOKEN", 65536, T.geneve_token, 1)
        || !get_table(d, "PPP_TOKEN", 65536, T.ppp_token, 1)
        || !get_table(d, "UDP_TUNNEL_KIND", 65536, T.udp_tunnel_kind, 1)
        || !get_table(d, "VERSION_TOKEN", 16, T.version_token, 1)
        || !get_table(d, "AYIYA_TOKEN", 256, T.ayiya_token, 1)
        || !get_table(d, "IS_MPLS", 65536, bools, 1))
        return NULL;
    memcpy(T.is_mpls, bools, sizeof bools);
    for (size_t i = 0; i < sizeof layout_names / sizeof layout_names[0]; i++) {
        if (!get_int(d, layout_names[i].name, layout_names[i].dst))
            return NULL;
        if (*layout_names[i].dst < 0 || *layout_names[i].dst > 0xFFFF) {
            PyErr_Format(PyExc_ValueError, "_core.configure: %s out of range",
                         layout_names[i].name);
            return NULL;
        }
    }
    struct { const char *name; int64_t *dst; } ints[] = {
        {"MAX_MPLS_LABELS", &T.max_mpls_labels}, {"K_GENEVE", &T.k_geneve},
        {"K_L2TP", &T.k_l2tp}, {"K_AYIYA", &T.k_ayiya}, {"ETHERTYPE_PPP", &T.et_ppp},
        {"ETHERTYPE_ERSPAN2", &T.et_erspan2}, {"ETHERTYPE_ERSPAN3", &T.et_erspan3},
        {"CLASS_OTHER", &T.class_other}, {"MAX_ROUNDS", &T.max_rounds},
        {"A_REPEATED", &T.a_repeated}, {"A_HBH_NOT_FIRST", &T.a_hbh_not_first},
        {"A_RH0", &T.a_rh0}, {"A_ATOMIC", &T.a_atomic}, {"A_UNKNOWN_NH", &T.a_unknown_nh},
        {"A_NOT_IN_FIRST", &T.a_not_in_first},
        {"FAM_NON_IP", &T.fam_non_ip}, {"FAM_IPV4", &T.fam_ipv4}, {"FAM_IPV6", &T.fam_ipv6},
        {"K_6IN4", &T.k_6in4}, {"K_6TO4", &T.k_6to4}, {"K_ISATAP", &T.k_isatap},
        {"K_6RD", &T.k_6rd}, {"K_TEREDO", &T.k_teredo}, {"K_GRE", &T.k_gre},
        {"K_GTPU", &T.k_gtpu}, {"K_VXLAN", &T.k_vxlan},
        {"IPPROTO_HOPOPTS", &T.p_hopopts}, {"IPPROTO_ROUTING", &T.p_routing},
        {"IPPROTO_FRAGMENT", &T.p_fragment}, {"IPPROTO_ESP", &T.p_esp},
        {"IPPROTO_AH", &T.p_ah}, {"IPPROTO_NONE", &T.p_none},
        {"IPPROTO_DSTOPTS", &T.p_dstopts},
        {"ETHERTYPE_PPPOE_SESS", &T.et_pppoe}, {"ETHERTYPE_MAX_LENGTH", &T.et_max_length},
        {"PPP_IPV4", &T.ppp_ipv4}, {"PPP_IPV6", &T.ppp_ipv6},
        {"UDP_PORT_GTPU", &T.port_gtpu}, {"UDP_PORT_VXLAN", &T.port_vxlan},
        {"UDP_PORT_TEREDO", &T.port_teredo},
        {"IPPROTO_TCP", &T.p_tcp}, {"IPPROTO_UDP", &T.p_udp}, {"IPPROTO_ICMP", &T.p_icmp},
        {"IPPROTO_ICMPV6", &T.p_icmpv6}, {"UDP_SPORT", &T.udp_sport},
        {"UDP_DPORT", &T.udp_dport}, {"ICMP_TYPE", &T.icmp_type}, {"IPV4_SRC", &T.ipv4_src},
        {"LINKTYPE_ETHERNET", &T.linktype_ethernet}, {"ETH_DST", &T.eth_dst},
        {"ETH_SRC", &T.eth_src}, {"ETH_ADDR_LEN", &T.eth_addr_len},
        {"TCP_FLAGS", &T.tcp_flags},
        {"DNS_PORT", &T.dns_port}, {"UDP_LEN", &T.udp_len}, {"UDP_ULEN", &T.udp_ulen},
        {"TCP_LEN", &T.tcp_len}, {"TCP_DOFF", &T.tcp_doff}, {"IPV6_SRC", &T.ipv6_src},
        {"IPV6_ADDR_LEN", &T.ipv6_addr_len}, {"IPV4_ADDR_LEN", &T.ipv4_addr_len},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        if (!get_int(d, ints[i].name, ints[i].dst))
            return NULL;
    }
    /* values used as indices or shifts must be in range */
    for (int i = 0; i < 257; i++) {
        if (T.proto_token[i] < 0 || T.proto_token[i] > T_LLC) {
            PyErr_SetString(PyExc_ValueError, "_core.configure: PROTO_TOKEN out of range");
            return NULL;
        }
    }
    for (int i = 0; i < 65536; i++) {
        if (T.et_token[i] < 0 || T.et_token[i] > T_LLC || T.gre_token[i] < 0
            || T.gre_token[i] > T_PPP || T.geneve_token[i] < 0 || T.geneve_token[i] > T_GRE
            || T.ppp_token[i] < 0 || T.ppp_token[i] > T_GRE || T.udp_tunnel_kind[i] < 0
            || (i < 256 && (T.ayiya_token[i] < 0 || T.ayiya_token[i] > T_GRE))
            || (i < 16 && (T.version_token[i] < 0 || T.version_token[i] > T_GRE))) {
            PyErr_SetString(PyExc_ValueError, "_core.configure: ET_TOKEN out of range");
            return NULL;
        }
    }
    for (int i = 0; i < NFIELDS; i++) {
        if (T.shift[i] < 0 || T.shift[i] > 62) {
            PyErr_SetString(PyExc_ValueError, "_core.configure: SHIFTS out of range");
            return NULL;
        }
    }
    if (T.fam_non_ip < 0 || T.fam_ipv4 < 0 || T.fam_ipv6 < 0 || T.fam_non_ip > 2
        || T.fam_ipv4 > 2 || T.fam_ipv6 > 2) {
        PyErr_SetString(PyExc_ValueError, "_core.configure: families out of range");
        return NULL;
    }
    T.ready = 1;
    Py_RETURN_NONE;
}

/* -- clients, flows and interface identifiers (analysis/population.py) -------
 *
 * population(cols, has6, out, mode, prefixes): what Population.derive and
 * the hashing steps of _clients, _flows and _iids compute with numpy, row by
 * row over the column arrays (decode/columns.py). population.py is the
 * specification and the no-compiler path; tests/test_population.py holds
 * the two equal. Nothing here reads packet bytes: the inputs are decoded
 * columns, and the only tables indexed by them (ICMP_SIDE, SERVER_PORT) are
 * indexed after a range check.
 *
 *   cols: a tuple of P_NIN int64[n] arrays in the order of P_IN below
 *   (population.py COMPILED_INPUTS); has6: uint8[n]; out: int64[P_NOUT * n],
 *   column c of row i at out[c * n + i] (population.py COMPILED_OUTPUTS);
 *   mode: 0 auto, 1 mac, 2 ipv4, 3 ipv6-64; prefixes: ((family, value_hi,
 *   mask_hi, value_lo, mask_lo), ...), the client prefixes (IPv4: value and
 *   mask in the low words).
 */
enum { I_FAM, I_TUNNEL, I_PROTO, I_SPORT, I_DPORT, I_ICMP, I_V4S, I_V4D, I_V6S_HI, I_V6S_LO,
       I_V6D_HI, I_V6D_LO, I_MAC_S, I_MAC_D, P_NIN };
enum { O_SIDE, O_TAG, O_VALUE, O_FLOW_H, O_FLOW_KEYED, O_CLIENT_H, O_FLOW_CODED, O_IID_SEL,
       O_IID_ADDR, O_IID_PREFIX, P_NOUT };
#define MAX_CLIENT_PREFIXES 4096

static struct {
    int ready;
    int64_t icmp_side[2 * 257];
    uint8_t server_port[65536];
    int64_t fam_ipv4, fam_ipv6, tcp, udp, teredo_hi32, isatap_mask, isatap_hi32;
    int64_t tag_mac, tag_v4, tag_v6, side_src, side_dst;
} PT;

static inline uint64_t mix64(uint64_t z)
{
    z += 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* sketch.hash_words of one row's words */
static inline uint64_t hash2(uint64_t a, uint64_t b) { return mix64(mix64(a) ^ b); }

typedef struct {
    int64_t fam;
    uint64_t vh, mh, vl, ml;
} ClientPrefix;

static int64_t iid_class(uint64_t lo)
{
    int64_t hi32 = (int64_t)(lo >> 32), lo32 = (int64_t)(lo & 0xFFFFFFFFULL);
    int64_t top = lo32 >> 24, lo16 = lo32 & 0xFFFF, up16 = lo32 >> 16;
    int zero_hi = hi32 == 0;
    if ((hi32 & 0xFF) == 0xFF && top == 0xFE)
        return 0;                                               /* eui64 */
    if ((hi32 & PT.isatap_mask) == PT.isatap_hi32)
        return 1;                                               /* isatap */
    if (zero_hi && top != 0 && lo16 != 0)
        return 2;                                               /* ::a.b.c.d */
    if (zero_hi && top == 0 && PT.server_port[lo16])
        return 3;                                               /* port */
    if (zero_hi && (lo32 & 0xFF00) == 0 && PT.server_port[up16])
        return 3;                                               /* port, reversed */
    if (zero_hi && top == 0 && lo16 != 0)
        return 4;                                               /* low_byte */
    if ((hi32 >> 16) <= 0x255 && (hi32 & 0xFFFF) <= 0x255 && up16 <= 0x255 && lo16 <= 0x255)
        return 2;                                               /* decimal bytes */
    int zeros = 0;
    for (int b = 0; b < 64; b += 8)
        zeros += ((lo >> b) & 0xFF) == 0;
    return zeros > 2 ? 5 : 6;                                   /* pattern_bytes, random */
}

static void population_row(const int64_t *const *c, const uint8_t *has6col, Py_ssize_t i,
                           int64_t mode, const ClientPrefix *cp, Py_ssize_t ncp,
                           int64_t *out, Py_ssize_t n)
{
    int64_t fam = c[I_FAM][i], proto = c[I_PROTO][i];
    int64_t sport = c[I_SPORT][i], dport = c[I_DPORT][i], icmp = c[I_ICMP][i];
    int64_t v4s = c[I_V4S][i], v4d = c[I_V4D][i];
    uint64_t s_hi = (uint64_t)c[I_V6S_HI][i], s_lo = (uint64_t)c[I_V6S_LO][i];
    uint64_t d_hi = (uint64_t)c[I_V6D_HI][i], d_lo = (uint64_t)c[I_V6D_LO][i];
    int has6 = has6col[i] != 0;
    int v6 = fam == PT.fam_ipv6;

    /* client_side: ports, ICMP, multicast, client prefixes */
    int64_t ks = sport + (sport >= 1024) * 65536, kd = dport + (dport >= 1024) * 65536;
    int64_t side = (ks > kd) * PT.side_src + (kd > ks) * PT.side_dst;
    if (icmp >= -1 && icmp <= 255)
        side += PT.icmp_side[v6 * 257 + icmp + 1];
    int mcast = v6 ? (d_hi >> 56) == 0xFF : ((v4d >> 28) == 0xE) || v4d == 0xFFFFFFFFLL;
    if (mcast)
        side = PT.side_src;
    if (ncp) {
        int s_in = 0, d_in = 0, has4 = v4s >= 0;
        for (Py_ssize_t k = 0; k < ncp; k++) {
            if (cp[k].fam == PT.fam_ipv4) {
                s_in |= has4 && ((uint64_t)v4s & cp[k].ml) == cp[k].vl;
                d_in |= has4 && ((uint64_t)v4d & cp[k].ml) == cp[k].vl;
            } else {
                s_in |= has6 && (s_hi & cp[k].mh) == cp[k].vh && (s_lo & cp[k].ml) == cp[k].vl;
                d_in |= has6 && (d_hi & cp[k].mh) == cp[k].vh && (d_lo & cp[k].ml) == cp[k].vl;
            }
        }
        side = s_in && !d_in ? PT.side_src : d_in && !s_in ? PT.side_dst : s_in ? side : 0;
    }

    /* client_keys */
    int src = side == PT.side_src;
    int64_t mac = src ? c[I_MAC_S][i] : c[I_MAC_D][i];
    int64_t a4 = src ? v4s : v4d;
    uint64_t a6 = src ? s_hi : d_hi, a6lo = src ? s_lo : d_lo;
    int has_mac = mac >= 0, has4 = a4 > 0;
    int key6 = has6 && (a6 >> 54) != 0x3FA && (a6 | a6lo) != 0;
    int64_t tag = 0;
    uint64_t value = 0;
    if (side != 0) {
        switch (mode) {
        case 1: if (has_mac) { tag = PT.tag_mac; value = (uint64_t)mac; } break;
        case 2: if (has4) { tag = PT.tag_v4; value = (uint64_t)a4; } break;
        case 3: if (key6) { tag = PT.tag_v6; value = a6; } break;
        default:
            if (has_mac) { tag = PT.tag_mac; value = (uint64_t)mac; }
            else if (v6 && key6) { tag = PT.tag_v6; value = a6; }
            else if (!v6 && has4) { tag = PT.tag_v4; value = (uint64_t)a4; }
        }
    }

    /* flow_hashes: the bidirectional 5-tuple */
    int tp = proto == PT.tcp || proto == PT.udp;
    int keyed = !tp || sport >= 0;
    int64_t sp = tp ? sport : 0, dp = tp ? dport : 0;
    uint64_t a_hi = v6 ? s_hi : 0, a_lo = v6 ? s_lo : (uint64_t)v4s;
    uint64_t b_hi = v6 ? d_hi : 0, b_lo = v6 ? d_lo : (uint64_t)v4d;
    int swap = a_hi > b_hi || (a_hi == b_hi && (a_lo > b_lo || (a_lo == b_lo && sp > dp)));
    uint64_t x_hi = swap ? b_hi : a_hi, y_hi = swap ? a_hi : b_hi;
    uint64_t x_lo = swap ? b_lo : a_lo, y_lo = swap ? a_lo : b_lo;
    int64_t xp = swap ? dp : sp, yp = swap ? sp : dp;
    uint64_t h = mix64((uint64_t)(fam * 256 + proto));
    h = mix64(h ^ x_hi);
    h = mix64(h ^ x_lo);
    h = mix64(h ^ y_hi);
    h = mix64(h ^ y_lo);
    h = mix64(h ^ (uint64_t)(xp * 65536 + yp));

    /* the streams: a client with its families, a flow with its tunnel and
       family, an interface identifier with its class (low bits) */
    uint64_t hi = src ? s_hi : d_hi;
    uint64_t bits = v6 ? ((hi >> 61) == 1 ? 2 : 0) : 1;
    uint64_t client_h = tag ? ((hash2((uint64_t)tag, value) & ~3ULL) | bits) : 0;
    uint64_t code = (uint64_t)c[I_TUNNEL][i] * 2 + (uint64_t)v6;
    int iid = v6 && has6 && (s_hi >> 61) == 1 && (int64_t)(s_hi >> 32) != PT.teredo_hi32;
    uint64_t iid_addr = 0, iid_prefix = 0;
    if (iid) {
        uint64_t cls = (uint64_t)iid_class(s_lo);
        iid_addr = (hash2(s_hi, s_lo) & ~7ULL) | cls;
        iid_prefix = (mix64(s_hi) & ~7ULL) | cls;
    }
    out[O_SIDE * n + i] = side;
    out[O_TAG * n + i] = tag;
    out[O_VALUE * n + i] = (int64_t)value;
    out[O_FLOW_H * n + i] = (int64_t)h;
    out[O_FLOW_KEYED * n + i] = keyed;
    out[O_CLIENT_H * n + i] = (int64_t)client_h;
    out[O_FLOW_CODED * n + i] = (int64_t)((h & ~31ULL) | code);
    out[O_IID_SEL * n + i] = iid;
    out[O_IID_ADDR * n + i] = (int64_t)iid_addr;
    out[O_IID_PREFIX * n + i] = (int64_t)iid_prefix;
}

static PyObject *population(PyObject *self, PyObject *args)
{
    PyObject *colso, *has6o, *outo, *prefo;
    long long mode;
    if (!PT.ready) {
        PyErr_SetString(PyExc_RuntimeError, "_core.configure_population() was not called");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "O!OOLO", &PyTuple_Type, &colso, &has6o, &outo, &mode, &prefo))
        return NULL;
    if (PyTuple_GET_SIZE(colso) != P_NIN) {
        PyErr_Format(PyExc_ValueError, "population: %d columns expected", (int)P_NIN);
        return NULL;
    }
    Py_buffer cv[P_NIN], hv, ov;
    const int64_t *cols[P_NIN];
    int got = 0, got_h = 0, got_o = 0;
    PyObject *result = NULL, *seq = NULL;
    ClientPrefix *cp = NULL;
    Py_ssize_t n = -1;
    for (; got < P_NIN; got++) {
        if (!get_array(PyTuple_GET_ITEM(colso, got), &cv[got], 8, n, 0, "population column"))
            goto done;
        n = cv[got].shape[0];
        cols[got] = cv[got].buf;
    }
    if (!(got_h = get_array(has6o, &hv, 1, n, 0, "has6")))
        goto done;
    if (!(got_o = get_array(outo, &ov, 8, P_NOUT * n, 1, "out")))
        goto done;
    seq = PySequence_Fast(prefo, "prefixes must be a sequence");
    if (!seq)
        goto done;
    Py_ssize_t ncp = PySequence_Fast_GET_SIZE(seq);
    if (ncp > MAX_CLIENT_PREFIXES) {
        PyErr_SetString(PyExc_ValueError, "population: too many client prefixes");
        goto done;
    }
    cp = PyMem_Malloc((size_t)(ncp ? ncp : 1) * sizeof(ClientPrefix));
    if (!cp) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t k = 0; k < ncp; k++) {
        long long fam;
        unsigned long long vh, mh, vl, ml;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, k), "LKKKK", &fam, &vh, &mh, &vl,
                              &ml))
            goto done;
        cp[k] = (ClientPrefix){fam, vh, mh, vl, ml};
    }
    const uint8_t *has6 = hv.buf;
    int64_t *out = ov.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++)
        population_row(cols, has6, i, mode, cp, ncp, out, n);
    Py_END_ALLOW_THREADS
    result = Py_None;
    Py_INCREF(result);
done:
    Py_XDECREF(seq);
    PyMem_Free(cp);
    if (got_o)
        PyBuffer_Release(&ov);
    if (got_h)
        PyBuffer_Release(&hv);
    while (got > 0)
        PyBuffer_Release(&cv[--got]);
    return result;
}

static PyObject *configure_population(PyObject *self, PyObject *args)
{
    PyObject *d;
    if (!PyArg_ParseTuple(args, "O!", &PyDict_Type, &d))
        return NULL;
    PT.ready = 0;
    int64_t counts[2];
    int8_t ports[65536];
    if (!get_table(d, "COUNTS", 2, counts, 8))
        return NULL;
    if (counts[0] != P_NIN || counts[1] != P_NOUT) {
        PyErr_SetString(PyExc_ValueError, "_core.configure_population: column counts changed");
        return NULL;
    }
    if (!get_table(d, "ICMP_SIDE", 2 * 257, PT.icmp_side, 8)
        || !get_table(d, "SERVER_PORT", 65536, ports, 1))
        return NULL;
    memcpy(PT.server_port, ports, sizeof ports);
    struct { const char *name; int64_t *dst; } ints[] = {
        {"FAM_IPV4", &PT.fam_ipv4}, {"FAM_IPV6", &PT.fam_ipv6},
        {"IPPROTO_TCP", &PT.tcp}, {"IPPROTO_UDP", &PT.udp},
        {"TEREDO_HI32", &PT.teredo_hi32}, {"ISATAP_IID_MASK", &PT.isatap_mask},
        {"ISATAP_IID_HI32", &PT.isatap_hi32}, {"TAG_MAC", &PT.tag_mac},
        {"TAG_V4", &PT.tag_v4}, {"TAG_V6", &PT.tag_v6}, {"SIDE_SRC", &PT.side_src},
        {"SIDE_DST", &PT.side_dst},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        if (!get_int(d, ints[i].name, ints[i].dst))
            return NULL;
    }
    PT.ready = 1;
    Py_RETURN_NONE;
}

/* -- DNS segments and ICMPv6 messages of a batch (fast/__init__.py) ---------
 *
 * spans(buf, out, idx, dns, icmp, icmp_type) -> (k, j): fast.dns_segments
 * and fast.icmpv6_spans of the classified rows idx (int64[m], each in
 * [0, n)) in one walk. out is classify's output (int64[NCOLS * n]): the
 * rows' state and ports, read, never written. dns (int64[5 * m]) receives
 * the k DNS segments as five columns of m (payload start, stop, 1 for TCP,
 * sender address start, stop), icmp (int64[2 * m]) the j ICMPv6 messages
 * as two (start, stop), of type icmp_type only when it is >= 0 (the pass's
 * ICMP type column, which holds the byte at l4 of such rows). The header
 * bytes read (UDP length, TCP data offset) are read as the numpy forms'
 * gathers read them: each index clipped into the buffer. The numpy forms
 * are the specification (tests/test_core.py holds them equal).
 */
static PyObject *spans(PyObject *self, PyObject *args)
{
    Py_buffer buf, outv, idxv, dnsv, icmpv;
    PyObject *outo, *idxo, *dnso, *icmpo;
    long long icmp_type;
    if (!T.ready) {
        PyErr_SetString(PyExc_RuntimeError, "_core.configure() was not called");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "y*OOOOL", &buf, &outo, &idxo, &dnso, &icmpo, &icmp_type))
        return NULL;
    PyObject *result = NULL;
    int got = 0;
    if (!get_array(outo, &outv, 8, -1, 0, "out"))
        goto done;
    got = 1;
    if (!get_array(idxo, &idxv, 8, -1, 0, "idx"))
        goto done;
    got = 2;
    Py_ssize_t m = idxv.shape[0];
    if (!get_array(dnso, &dnsv, 8, 5 * m, 1, "dns"))
        goto done;
    got = 3;
    if (!get_array(icmpo, &icmpv, 8, 2 * m, 1, "icmp"))
        goto done;
    got = 4;
    if (outv.shape[0] % NCOLS) {
        PyErr_SetString(PyExc_ValueError, "out: not classify's output");
        goto done;
    }
    Py_ssize_t n = outv.shape[0] / NCOLS;
    const int64_t *out = outv.buf, *idx = idxv.buf;
    for (Py_ssize_t i = 0; i < m; i++) {
        if (idx[i] < 0 || idx[i] >= n) {
            PyErr_SetString(PyExc_ValueError, "idx: a row outside the batch");
            goto done;
        }
    }
    const uint8_t *b = buf.buf;
    int64_t len = buf.len;
    int64_t *dns = dnsv.buf, *icmp = icmpv.buf;
    Py_ssize_t k = 0, j = 0;
    Py_BEGIN_ALLOW_THREADS
    /* First the rows, from the pass's columns alone (the ICMP type is one:
       the ICMPv6 rows' message type, read where l4 < l4end): the ICMPv6
       messages, and the candidate DNS rows with their header's bytes
       prefetched (the batch is far larger than a cache); then the UDP
       length or TCP data offset of each candidate. */
    Py_ssize_t c = 0;
    for (Py_ssize_t i = 0; i < m; i++) {
        Py_ssize_t r = idx[i];
#define ROW(col) out[(Py_ssize_t)(col) * n + r]
        int64_t proto = ROW(C_PROTO), l4 = ROW(C_L4), l4end = ROW(C_L4END);
        if (l4 < 0)
            continue;
        if (proto == T.p_udp || proto == T.p_tcp) {
            if ((ROW(C_SPORT) == T.dns_port || ROW(C_DPORT) == T.dns_port)
                && l4 + T.udp_len <= l4end) {
                dns[c++] = r;               /* overwritten below, in order */
                if (l4 < len)
                    __builtin_prefetch(b + l4);     /* a hint, never a read */
            }
        } else if (ROW(C_PAYLOAD) == T.fam_ipv6 && proto == T.p_icmpv6 && l4 < l4end
                   && (icmp_type < 0 || ROW(C_ICMP) == icmp_type)) {
            icmp[j] = l4;
            icmp[m + j] = l4end;
            j++;
        }
    }
    for (Py_ssize_t i = 0; i < c; i++) {
        Py_ssize_t r = dns[i];
        int64_t l4 = ROW(C_L4), l4end = ROW(C_L4END);
        int tcp = ROW(C_PROTO) == T.p_tcp;
        int64_t ulen = clipped_u8(b, len, l4 + T.udp_ulen) << 8
                       | clipped_u8(b, len, l4 + T.udp_ulen + 1);
        int64_t doff = (clipped_u8(b, len, l4 + T.tcp_doff) >> 4) * 4;
        int ok = tcp ? l4 + T.tcp_len <= l4end && doff >= T.tcp_len && l4 + doff <= l4end
                     : ulen >= T.udp_len && l4 + ulen <= l4end;
        if (!ok)
            continue;
        int v6 = ROW(C_PAYLOAD) == T.fam_ipv6;
        int64_t src = ROW(C_IP) + (v6 ? T.ipv6_src : T.ipv4_src);
        dns[k] = tcp ? l4 + doff : l4 + T.udp_len;  /* k <= i: candidate i is read */
        dns[m + k] = tcp ? l4end : l4 + ulen;
        dns[2 * m + k] = tcp;
        dns[3 * m + k] = src;
        dns[4 * m + k] = src + (v6 ? T.ipv6_addr_len : T.ipv4_addr_len);
        k++;
#undef ROW
    }
    Py_END_ALLOW_THREADS
    result = Py_BuildValue("nn", k, j);
done:
    if (got >= 4)
        PyBuffer_Release(&icmpv);
    if (got >= 3)
        PyBuffer_Release(&dnsv);
    if (got >= 2)
        PyBuffer_Release(&idxv);
    if (got >= 1)
        PyBuffer_Release(&outv);
    PyBuffer_Release(&buf);
    return result;
}

/* -- DNS messages of a batch, grouped (analysis/nat64.py observe_dns_segments)
 *
 * dns_groups(buf, start, stop, tcp, src, src_end, keep_all, answerless,
 * max_tcp, out) -> g, or -1 when a span does not lie in the buffer or the
 * messages do not fit in out (the caller then takes its per-message path).
 * Segment i is the payload buf[start[i]:stop[i]] (tcp: uint8[n], 1 for a
 * TCP segment) sent by buf[src[i]:src_end[i]]. Its DNS messages, as
 * Nat64State.observe_dns_many takes them (a UDP payload is one; a TCP
 * segment holds the whole length-prefixed messages at its start, at most
 * max_tcp, as dnsmsg.tcp_messages), and of those only the ones that carry
 * evidence (keep_all: every one; else responses of 12 bytes or more with
 * answers, or without them with answerless), are grouped: two are alike
 * when their bytes without the 2-byte ID and their senders are equal. out
 * (int64[5 * room], five columns of room) receives the g groups in order
 * of first appearance: the first message's start, stop, sender start,
 * sender end, and how many messages are alike to it, so the caller
 * handles each distinct message once with its count. room bounds the
 * messages too. Messages are compared by a 64-bit hash in an
 * open-addressing table sized from room (never from a packet) and then by
 * memcmp, so a hash collision never merges two messages.
 */
static inline uint64_t hash_bytes(const uint8_t *p, int64_t len, uint64_t h)
{
    /* four lanes of 8 bytes: four independent multiply chains, not one */
    uint64_t l0 = h, l1 = h ^ 0x9E3779B97F4A7C15ULL, l2 = h ^ 0xBF58476D1CE4E5B9ULL,
             l3 = h ^ 0x94D049BB133111EBULL;
    int64_t k = 0;
    for (; k + 32 <= len; k += 32) {
        uint64_t w[4];
        memcpy(w, p + k, 32);
        l0 = mix64(l0 ^ w[0]);
        l1 = mix64(l1 ^ w[1]);
        l2 = mix64(l2 ^ w[2]);
        l3 = mix64(l3 ^ w[3]);
    }
    h = mix64(l0 ^ mix64(l1 ^ mix64(l2 ^ mix64(l3))));
    for (; k + 8 <= len; k += 8) {
        uint64_t w;
        memcpy(&w, p + k, 8);
        h = mix64(h ^ w);
    }
    uint64_t w = 0;
    for (int j = 0; k < len; k++, j++)
        w |= (uint64_t)p[k] << (8 * j);
    return mix64(h ^ w ^ ((uint64_t)len << 56));
}

/* does buf[a:e] carry evidence (observe_dns_many's test)? */
static inline int dns_evidence(const uint8_t *b, int64_t a, int64_t e, int keep_all,
                               int answerless)
{
    return keep_all || (e - a >= 12 && (b[a + 2] & 0x80)
                        && (b[a + 6] || b[a + 7] || answerless));
}

static PyObject *dns_groups(PyObject *self, PyObject *args)
{
    Py_buffer buf, v[5], ov;
    PyObject *o[5], *oo;
    int keep_all, answerless;
    long long max_tcp;
    const char *what[5] = {"start", "stop", "tcp", "src", "src_end"};
    if (!PyArg_ParseTuple(args, "y*OOOOOppLO", &buf, &o[0], &o[1], &o[2], &o[3], &o[4],
                          &keep_all, &answerless, &max_tcp, &oo))
        return NULL;
    int got = 0, got_o = 0;
    PyObject *result = NULL;
    int64_t *table = NULL, *msg = NULL;
    Py_ssize_t n = -1;
    for (; got < 5; got++) {
        if (!get_array(o[got], &v[got], got == 2 ? 1 : 8, n, 0, what[got]))
            goto done;
        n = v[got].shape[0];
    }
    if (!(got_o = get_array(oo, &ov, 8, -1, 1, "out")))
        goto done;
    if (ov.shape[0] % 5) {
        PyErr_SetString(PyExc_ValueError, "out: expected five columns");
        goto done;
    }
    Py_ssize_t room = ov.shape[0] / 5;
    const int64_t *start = v[0].buf, *stop = v[1].buf, *src = v[3].buf, *src_end = v[4].buf;
    const uint8_t *tcp = v[2].buf;
    int64_t len = buf.len;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (start[i] < 0 || stop[i] < start[i] || stop[i] > len || src[i] < 0
            || src_end[i] < src[i] || src_end[i] > len) {
            result = PyLong_FromLong(-1);
            goto done;
        }
    }
    Py_ssize_t size = 16;
    while (size < 2 * room)
        size <<= 1;
    table = PyMem_Malloc((size_t)size * sizeof(int64_t));
    msg = PyMem_Malloc((size_t)(room > 0 ? room : 1) * 4 * sizeof(int64_t));
    if (!table || !msg) {
        PyErr_NoMemory();
        goto done;
    }
    const uint8_t *b = buf.buf;
    int64_t *ms = msg, *me = msg + room, *rs = msg + 2 * room, *re = msg + 3 * room;
    int64_t *out = ov.buf;
    Py_ssize_t m = 0, g = 0;
    int full = 0;
    Py_BEGIN_ALLOW_THREADS
    /* the messages, in order */
    for (Py_ssize_t i = 0; i < n && !full; i++) {
        if (i + 8 < n)
            __builtin_prefetch(b + start[i + 8]);   /* a hint, never a read */
        if (!tcp[i]) {
            if (dns_evidence(b, start[i], stop[i], keep_all, answerless)) {
                if (m == room) {
                    full = 1;
                    break;
                }
                ms[m] = start[i], me[m] = stop[i], rs[m] = src[i], re[m] = src_end[i];
                m++;
            }
            continue;
        }
        int64_t off = start[i], end = stop[i];
        for (long long count = 0; off + 2 <= end && count < max_tcp; count++) {
            int64_t ln = (int64_t)b[off] << 8 | b[off + 1];
            if (ln == 0 || off + 2 + ln > end)
                break;
            if (dns_evidence(b, off + 2, off + 2 + ln, keep_all, answerless)) {
                if (m == room) {
                    full = 1;
                    break;
                }
                ms[m] = off + 2, me[m] = off + 2 + ln, rs[m] = src[i], re[m] = src_end[i];
                m++;
            }
            off += 2 + ln;
        }
    }
    /* their groups: table slots hold group numbers, out the groups */
    for (Py_ssize_t k = 0; k < size; k++)
        table[k] = -1;
    for (Py_ssize_t i = 0; i < m && !full; i++) {
        int64_t s = ms[i] + 2 < me[i] ? ms[i] + 2 : me[i];
        int64_t blen = me[i] - s, rlen = re[i] - rs[i];
        uint64_t h = hash_bytes(b + rs[i], rlen, hash_bytes(b + s, blen, 0));
        Py_ssize_t slot = (Py_ssize_t)(h & (uint64_t)(size - 1));
        for (;;) {
            int64_t j = table[slot];
            if (j < 0) {
                table[slot] = g;
                out[g] = ms[i], out[room + g] = me[i], out[2 * room + g] = rs[i];
                out[3 * room + g] = re[i], out[4 * room + g] = 1;
                g++;
                break;
            }
            int64_t sj = out[j] + 2 < out[room + j] ? out[j] + 2 : out[room + j];
            if (out[room + j] - sj == blen && out[3 * room + j] - out[2 * room + j] == rlen
                && memcmp(b + sj, b + s, (size_t)blen) == 0
                && memcmp(b + out[2 * room + j], b + rs[i], (size_t)rlen) == 0) {
                out[4 * room + j]++;
                break;
            }
            slot = (slot + 1) & (size - 1);
        }
    }
    Py_END_ALLOW_THREADS
    result = PyLong_FromSsize_t(full ? -1 : g);
done:
    PyMem_Free(table);
    PyMem_Free(msg);
    if (got_o)
        PyBuffer_Release(&ov);
    while (got > 0)
        PyBuffer_Release(&v[--got]);
    PyBuffer_Release(&buf);
    return result;
}

/* -- one DNS message parsed (analysis/dnsmsg.py parse) --------------------
 *
 * dns_parse(msg) -> (response, qname, qtype, rcode, records), or None where
 * dnsmsg.parse raises DnsError: dnsmsg.parse step by step (it is the
 * specification and the no-compiler path; tests/test_nat64.py holds the
 * two equal on any bytes). Every read is checked against the message's
 * length; names are built in a fixed buffer (255 octets at most, each
 * escaped to two bytes at most, dots between), never sized from a packet.
 * configure_dns(max_pointers, max_name, max_records, type_a, type_cname,
 * type_aaaa, class_in) hands in dnsmsg's constants once.
 */
static struct {
    int ready;
    long long max_pointers, max_name, max_records, type_a, type_cname, type_aaaa, class_in;
} D;

#define DNS_NAME_BUF 1024

/* the name at off: its end in the message (or -1: malformed), and into
   out (when not NULL) its text as latin-1 bytes, lowered as str.lower
   lowers them, a dot or backslash inside a label escaped */
static int64_t dns_name(const uint8_t *b, int64_t n, int64_t off, char *out, Py_ssize_t *olen)
{
    int64_t end = -1, size = 0;
    long long jumps = 0;
    Py_ssize_t k = 0;
    for (;;) {
        if (off >= n)
            return -1;
        int64_t ln = b[off];
        if (ln == 0) {
            off += 1;
            break;
        }
        int64_t kind = ln & 0xC0;
        if (kind == 0xC0) {
            if (off + 1 >= n)
                return -1;
            int64_t target = ((ln & 0x3F) << 8) | b[off + 1];
            if (end < 0)
                end = off + 2;
            jumps++;
            if (jumps > D.max_pointers || target >= off)
                return -1;
            off = target;
            continue;
        }
        if (kind)
            return -1;
        if (off + 1 + ln > n)
            return -1;
        size += ln + 1;
        if (size > D.max_name)
            return -1;
        if (out) {
            if (k + 1 + 2 * ln > DNS_NAME_BUF)   /* max_name beyond 255: never */
                return -1;
            if (k)
                out[k++] = '.';
            for (int64_t j = off + 1; j <= off + ln; j++) {
                uint8_t c = b[j];
                if (c == '\\' || c == '.')
                    out[k++] = '\\';
                else if ((c >= 'A' && c <= 'Z') || (c >= 0xC0 && c <= 0xDE && c != 0xD7))
                    c += 0x20;
                out[k++] = (char)c;
            }
        }
        off += 1 + ln;
    }
    if (olen)
        *olen = k;
    return end >= 0 ? end : off;
}

static PyObject *dns_text(const char *s, Py_ssize_t len)
{
    return PyUnicode_DecodeLatin1(s, len, NULL);
}

static PyObject *dns_parse(PyObject *self, PyObject *args)
{
    Py_buffer mv;
    if (!D.ready) {
        PyErr_SetString(PyExc_RuntimeError, "_core.configure_dns() was not called");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "y*", &mv))
        return NULL;
    const uint8_t *b = mv.buf;
    int64_t n = mv.len;
    PyObject *result = NULL, *qname = NULL, *qtype = NULL, *records = NULL, *rec = NULL;
    char name[DNS_NAME_BUF];
    Py_ssize_t nlen = 0;
    if (n < 12)
        goto malformed;
    int64_t flags = b[2] << 8 | b[3], qd = b[4] << 8 | b[5], an = b[6] << 8 | b[7];
    int response = (flags & 0x8000) != 0;
    if (!response)
        an = 0;
    int64_t off = 12;
    for (int64_t i = 0; i < qd && i < D.max_records; i++) {
        off = dns_name(b, n, off, i == 0 ? name : NULL, &nlen);
        if (off < 0 || off + 4 > n)
            goto malformed;
        if (i == 0) {
            if (!(qname = dns_text(name, nlen)) || !(qtype = PyLong_FromLong(b[off] << 8 | b[off + 1])))
                goto done;
        }
        off += 4;
    }
    if (!(records = PyList_New(0)))
        goto done;
    for (int64_t i = 0; i < an && i < D.max_records; i++) {
        int64_t owner_end = dns_name(b, n, off, name, &nlen);
        if (owner_end < 0 || owner_end + 10 > n)
            goto malformed;
        off = owner_end;
        int64_t rtype = b[off] << 8 | b[off + 1], rclass = b[off + 2] << 8 | b[off + 3];
        int64_t rdlen = b[off + 8] << 8 | b[off + 9];
        off += 10;
        if (off + rdlen > n)
            goto malformed;
        if (rclass == D.class_in) {
            PyObject *rdata = NULL;
            if ((rtype == D.type_a && rdlen == 4) || (rtype == D.type_aaaa && rdlen == 16)) {
                rdata = PyBytes_FromStringAndSize((const char *)b + off, rdlen);
            } else if (rtype == D.type_cname) {
                char target[DNS_NAME_BUF];
                Py_ssize_t tlen = 0;
                if (dns_name(b, n, off, target, &tlen) < 0)
                    goto malformed;
                rdata = dns_text(target, tlen);
            }
            if (rdata || PyErr_Occurred()) {
                if (!rdata)
                    goto done;
                PyObject *owner = dns_text(name, nlen);
                rec = owner ? Py_BuildValue("(NLN)", owner, (long long)rtype, rdata) : NULL;
                if (!owner)
                    Py_DECREF(rdata);
                if (!rec || PyList_Append(records, rec) < 0)
                    goto done;
                Py_CLEAR(rec);
            }
        }
        off += rdlen;
    }
    result = Py_BuildValue("(OOOLO)", response ? Py_True : Py_False, qname ? qname : Py_None,
                           qtype ? qtype : Py_None, (long long)(flags & 0x0F), records);
    goto done;
malformed:
    result = Py_None;
    Py_INCREF(result);
done:
    Py_XDECREF(qname);
    Py_XDECREF(qtype);
    Py_XDECREF(records);
    Py_XDECREF(rec);
    PyBuffer_Release(&mv);
    return result;
}

static PyObject *configure_dns(PyObject *self, PyObject *args)
{
    D.ready = 0;
    if (!PyArg_ParseTuple(args, "LLLLLLL", &D.max_pointers, &D.max_name, &D.max_records,
                          &D.type_a, &D.type_cname, &D.type_aaaa, &D.class_in))
        return NULL;
    if (D.max_name < 0 || 2 * D.max_name + 1 > DNS_NAME_BUF) {
        PyErr_SetString(PyExc_ValueError, "configure_dns: max_name out of range");
        return NULL;
    }
    D.ready = 1;
    Py_RETURN_NONE;
}

/* -- distinct 64-bit values (arrays.py distinct_unordered) ------------------
 *
 * unique_u64(values, out[, inverse]) -> k: out[:k] holds the distinct values
 * of `values` (uint64[n]) in order of first appearance (out: uint64[n]);
 * inverse (int64[n]), if given, receives each row's index into them. An
 * open-addressing table of row indices, sized from n (never from a value),
 * probed from the top bits of value * golden ratio. numpy's form is
 * np.unique (a sort), which orders them; the callers (population.py) want
 * the set only.
 */
/* An open-addressing table for n keys: 2**bits >= 2n slots (bits >= 4), each
   -1 (empty), sized from n, never from a value; NULL with MemoryError set. */
static int64_t *empty_table(Py_ssize_t n, int *bits)
{
    int b = 4;
    while (((Py_ssize_t)1 << b) < 2 * n)
        b++;
    Py_ssize_t size = (Py_ssize_t)1 << b;
    int64_t *table = PyMem_Malloc((size_t)size * sizeof(int64_t));
    if (!table) {
        PyErr_NoMemory();
        return NULL;
    }
    memset(table, 0xFF, (size_t)size * sizeof(int64_t));
    *bits = b;
    return table;
}

/* `count` arrays of 8-byte integers (get_array): the first of any length n,
   array i of n * scale[i] (scale NULL: n), those from `writable` on
   writable. 0, or -1 with those taken released and the error set. */
static int get_int64_arrays(PyObject **o, Py_buffer *v, int count, const Py_ssize_t *scale,
                            int writable, const char *const *what)
{
    Py_ssize_t n = -1;
    for (int i = 0; i < count; i++) {
        Py_ssize_t want = i == 0 ? -1 : n * (scale ? scale[i] : 1);
        if (!get_array(o[i], &v[i], 8, want, i >= writable, what[i])) {
            while (i > 0)
                PyBuffer_Release(&v[--i]);
            return -1;
        }
        if (i == 0)
            n = v[0].shape[0];
    }
    return 0;
}

static PyObject *unique_u64(PyObject *self, PyObject *args)
{
    PyObject *vo, *oo, *io = Py_None;
    if (!PyArg_ParseTuple(args, "OO|O", &vo, &oo, &io))
        return NULL;
    Py_buffer vv, ov, iv;
    if (!get_array(vo, &vv, 8, -1, 0, "values"))
        return NULL;
    Py_ssize_t n = vv.shape[0];
    if (!get_array(oo, &ov, 8, n, 1, "out")) {
        PyBuffer_Release(&vv);
        return NULL;
    }
    int64_t *inverse = NULL;
    if (io != Py_None) {
        if (!get_array(io, &iv, 8, n, 1, "inverse")) {
            PyBuffer_Release(&ov);
            PyBuffer_Release(&vv);
            return NULL;
        }
        inverse = iv.buf;
    }
    int bits;
    int64_t *table = empty_table(n, &bits);
    if (!table) {
        if (inverse)
            PyBuffer_Release(&iv);
        PyBuffer_Release(&ov);
        PyBuffer_Release(&vv);
        return NULL;
    }
    Py_ssize_t size = (Py_ssize_t)1 << bits;
    const uint64_t *v = vv.buf;
    uint64_t *out = ov.buf;
    Py_ssize_t k = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        uint64_t x = v[i];
        Py_ssize_t slot = (Py_ssize_t)((x * 0x9E3779B97F4A7C15ULL) >> (64 - bits));
        for (;;) {
            int64_t j = table[slot];
            if (j < 0) {
                table[slot] = (int64_t)k;
                if (inverse)
                    inverse[i] = (int64_t)k;
                out[k++] = x;
                break;
            }
            if (out[j] == x) {
                if (inverse)
                    inverse[i] = j;
                break;
            }
            slot = (slot + 1) & (size - 1);
        }
    }
    Py_END_ALLOW_THREADS
    PyMem_Free(table);
    if (inverse)
        PyBuffer_Release(&iv);
    PyBuffer_Release(&ov);
    PyBuffer_Release(&vv);
    return PyLong_FromSsize_t(k);
}

/* -- sums by key (arrays.py group_sums) ---------------------------------------
 *
 * group_sum(keys, weights, out_keys, counts, sums) -> k: the distinct keys
 * (int64[n]) in order of first appearance in out_keys[:k], with how many
 * rows each has (counts) and the sum of their weights (int64[n]; sums).
 * The table is sized from n, as unique_u64's. numpy's form: a sort and two
 * bincounts.
 */
static PyObject *group_sum(PyObject *self, PyObject *args)
{
    PyObject *o[5];
    Py_buffer v[5];
    static const char *const what[5] = {"keys", "weights", "out_keys", "counts", "sums"};
    if (!PyArg_ParseTuple(args, "OOOOO", &o[0], &o[1], &o[2], &o[3], &o[4]))
        return NULL;
    if (get_int64_arrays(o, v, 5, NULL, 2, what) < 0)
        return NULL;
    int got = 5;
    Py_ssize_t n = v[0].shape[0];
    PyObject *result = NULL;
    int bits;
    int64_t *table = empty_table(n, &bits);
    if (!table)
        goto done;
    Py_ssize_t size = (Py_ssize_t)1 << bits;
    const int64_t *keys = v[0].buf, *w = v[1].buf;
    int64_t *uk = v[2].buf, *cnt = v[3].buf, *sum = v[4].buf;
    Py_ssize_t k = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        uint64_t x = (uint64_t)keys[i];
        Py_ssize_t slot = (Py_ssize_t)((x * 0x9E3779B97F4A7C15ULL) >> (64 - bits));
        for (;;) {
            int64_t j = table[slot];
            if (j < 0) {
                table[slot] = (int64_t)k;
                uk[k] = keys[i];
                cnt[k] = 1;
                sum[k] = w[i];
                k++;
                break;
            }
            if (uk[j] == keys[i]) {
                cnt[j]++;
                sum[j] += w[i];
                break;
            }
            slot = (slot + 1) & (size - 1);
        }
    }
    Py_END_ALLOW_THREADS
    result = PyLong_FromSsize_t(k);
done:
    PyMem_Free(table);
    while (got > 0)
        PyBuffer_Release(&v[--got]);
    return result;
}

/* -- time bins of a batch (bin_sums, bin_flows) ------------------------------
 *
 * A batch's distinct time bins in order of first appearance: `ub[:k]`, and
 * an open-addressing table of their ranks sized from the batch (never from
 * a value). Rows of one bin come in runs, so the previous row's bin is
 * tried first. */
typedef struct {
    int64_t *table;
    int bits;
    int64_t *ub;                /* the bins, in order of first appearance */
    Py_ssize_t k;
    int64_t last;               /* the rank of the previous row's bin */
} Bins;

/* The bin of a float64 timestamp given as its int64 bits, floor(ts /
   interval), in *bin; 0 when it is odd (|bin| >= odd_bin, or NaN). */
static inline int time_bin(int64_t bits, double interval, double odd_bin, int64_t *bin)
{
    double t;
    memcpy(&t, &bits, sizeof t);
    double fb = floor(t / interval);
    if (!(fabs(fb) < odd_bin))
        return 0;
    *bin = (int64_t)fb;
    return 1;
}

/* The rank of bin `b` in `bs`, added (and *added set) when it is new. */
static inline int64_t bin_rank(Bins *bs, int64_t b, int *added)
{
    *added = 0;
    if (bs->k && bs->ub[bs->last] == b)
        return bs->last;
    Py_ssize_t mask = ((Py_ssize_t)1 << bs->bits) - 1;
    Py_ssize_t slot = (Py_ssize_t)(((uint64_t)b * 0x9E3779B97F4A7C15ULL) >> (64 - bs->bits));
    for (;;) {
        int64_t j = bs->table[slot];
        if (j < 0) {
            bs->table[slot] = bs->last = (int64_t)bs->k;
            bs->ub[bs->k++] = b;
            *added = 1;
            return bs->last;
        }
        if (bs->ub[j] == b)
            return bs->last = j;
        slot = (slot + 1) & mask;
    }
}

/* -- a batch's IP frames by time bin (fold.py _add_figures) ----------------
 *
 * bin_sums(keys, ts_bits, wire, interval, odd_bin, fields, out_bins, out_sums)
 *   -> k, or -1
 * For the rows whose payload family ((keys >> pshift) & pmask) is not
 * non_ip: their time bin floor(ts / interval) (ts: the float64 timestamps,
 * passed as their int64 bits) and, per bin, the eight sums of the Summary's
 * bins in their order (payload IPv4 packets, bytes; payload IPv6 packets,
 * bytes; carrier IPv4 packets, bytes; carrier IPv6 packets, bytes), a
 * family other than v4fam counted as IPv6 as Summary.add_bin counts it.
 * out_bins[:k] (int64[n]) are the distinct bins in order of first
 * appearance, out_sums[8 j ...] (int64[8 n]) bin j's sums. -1 as soon as a
 * row's bin is odd (|bin| >= odd_bin, or NaN): the caller's numpy form
 * takes the batch. fields: (pshift, pmask, cshift, cmask, non_ip, v4fam).
 * The bins' table is sized from n (never from a value), as group_sum's.
 */
static PyObject *bin_sums(PyObject *self, PyObject *args)
{
    PyObject *o[5];
    Py_buffer v[5];
    static const char *const what[5] = {"keys", "ts_bits", "wire", "out_bins", "out_sums"};
    double interval, odd_bin;
    long long ps, pm, cs, cm, non_ip, v4fam;
    if (!PyArg_ParseTuple(args, "OOOdd(LLLLLL)OO", &o[0], &o[1], &o[2], &interval, &odd_bin,
                          &ps, &pm, &cs, &cm, &non_ip, &v4fam, &o[3], &o[4]))
        return NULL;
    if (ps < 0 || ps > 63 || cs < 0 || cs > 63 || !(interval > 0)) {
        PyErr_SetString(PyExc_ValueError, "bin_sums: shifts 0-63 and an interval > 0");
        return NULL;
    }
    static const Py_ssize_t scale[5] = {1, 1, 1, 1, 8};
    if (get_int64_arrays(o, v, 5, scale, 3, what) < 0)
        return NULL;
    int got = 5;
    Py_ssize_t n = v[0].shape[0];
    PyObject *result = NULL;
    Bins bs = {.ub = v[3].buf};
    if (!(bs.table = empty_table(n, &bs.bits)))
        goto done;
    const int64_t *keys = v[0].buf, *tsb = v[1].buf, *w = v[2].buf;
    int64_t *sums = v[4].buf;
    int odd = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t fam = (keys[i] >> ps) & pm, b;
        if (fam == non_ip)
            continue;
        if (!time_bin(tsb[i], interval, odd_bin, &b)) {
            odd = 1;
            break;
        }
        int added;
        int64_t *row = sums + 8 * bin_rank(&bs, b, &added);
        if (added)
            memset(row, 0, 8 * sizeof *row);
        int64_t carrier = (keys[i] >> cs) & cm;
        int p = fam == v4fam ? 0 : 2, c = carrier == v4fam ? 4 : 6;
        row[p]++;
        row[p + 1] += w[i];
        row[c]++;
        row[c + 1] += w[i];
    }
    Py_END_ALLOW_THREADS
    result = PyLong_FromSsize_t(odd ? -1 : bs.k);
done:
    PyMem_Free(bs.table);
    while (got > 0)
        PyBuffer_Release(&v[--got]);
    return result;
}

/* -- a batch's flows by time bin (population.py _bin_flows) -----------------
 *
 * bin_flows(ts_bits, keyed, coded, interval, odd_bin, out_bins, out_rows,
 *           out_pair_bins, out_pair_flows) -> (k, odd, pairs)
 * Of the rows whose uint8 `keyed` is non-zero: the time bin of each,
 * floor(ts / interval) (ts: float64 timestamps passed as their int64
 * bits), the distinct bins in order of first appearance (out_bins[:k],
 * int64[n]) with their row counts (out_rows[:k]), and the distinct (bin,
 * flow) pairs (out_pair_bins[:pairs], the bin's rank in out_bins;
 * out_pair_flows[:pairs], the uint64 `coded` flow) in order of first
 * appearance. A row whose bin is odd (|bin| >= odd_bin, or NaN) is only
 * counted (odd). Both tables are sized from n, never from a value.
 */
static PyObject *bin_flows(PyObject *self, PyObject *args)
{
    PyObject *o[7];
    Py_buffer v[7];
    static const char *const what[7] = {"ts_bits", "keyed", "coded", "out_bins", "out_rows",
                                        "out_pair_bins", "out_pair_flows"};
    double interval, odd_bin;
    if (!PyArg_ParseTuple(args, "OOOddOOOO", &o[0], &o[1], &o[2], &interval, &odd_bin,
                          &o[3], &o[4], &o[5], &o[6]))
        return NULL;
    if (!(interval > 0)) {
        PyErr_SetString(PyExc_ValueError, "bin_flows: an interval > 0");
        return NULL;
    }
    if (!get_array(o[0], &v[0], 8, -1, 0, what[0]))
        return NULL;
    Py_ssize_t n = v[0].shape[0];
    int got = 1;
    PyObject *result = NULL;
    Bins bs = {NULL};
    int64_t *ptable = NULL;
    for (; got < 7; got++) {
        if (!get_array(o[got], &v[got], got == 1 ? 1 : 8, n, got >= 3, what[got]))
            goto done;
    }
    int pbits;
    if (!(bs.table = empty_table(n, &bs.bits)) || !(ptable = empty_table(n, &pbits)))
        goto done;
    bs.ub = v[3].buf;
    Py_ssize_t pmask = ((Py_ssize_t)1 << pbits) - 1;
    const int64_t *tsb = v[0].buf;
    const uint8_t *keyed = v[1].buf;
    const uint64_t *coded = v[2].buf;
    int64_t *rows = v[4].buf, *pb = v[5].buf;
    uint64_t *pf = v[6].buf;
    Py_ssize_t pairs = 0, odd = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t b;
        if (!keyed[i])
            continue;
        if (!time_bin(tsb[i], interval, odd_bin, &b)) {
            odd++;
            continue;
        }
        int added;
        int64_t r = bin_rank(&bs, b, &added);
        if (added)
            rows[r] = 0;
        rows[r]++;
        uint64_t h = coded[i];
        uint64_t x = (h ^ ((uint64_t)r * 0xC2B2AE3D27D4EB4FULL)) * 0x9E3779B97F4A7C15ULL;
        Py_ssize_t slot = (Py_ssize_t)(x >> (64 - pbits));
        for (;;) {
            int64_t j = ptable[slot];
            if (j < 0) {
                ptable[slot] = (int64_t)pairs;
                pb[pairs] = r;
                pf[pairs++] = h;
                break;
            }
            if (pf[j] == h && pb[j] == r)
                break;
            slot = (slot + 1) & pmask;
        }
    }
    Py_END_ALLOW_THREADS
    result = Py_BuildValue("(nnn)", bs.k, odd, pairs);
done:
    PyMem_Free(bs.table);
    PyMem_Free(ptable);
    while (got > 0)
        PyBuffer_Release(&v[--got]);
    return result;
}

/* -- distinct values grouped by their low bits (arrays.py code_groups) -------
 *
 * code_groups(values, select, order, out, offsets) -> k: the distinct values
 * of uint64[n] `values` (only rows whose uint8 `select` is non-zero, when
 * `select` is not None), each with its low `bits` bits (its code) cleared,
 * written to out[:k] grouped by order[code]: group g is
 * out[offsets[g]:offsets[g + 1]], its values in order of first appearance.
 * `order` is int64[2**bits] (1 <= bits <= 8), each entry a group number
 * below 2**bits; offsets is int64[2**bits + 1]. Values are told apart by all
 * 64 bits, so one with two codes is in both groups. The tables are sized
 * from n, never from a value.
 */
static PyObject *code_groups(PyObject *self, PyObject *args)
{
    PyObject *o[5];
    Py_buffer v[5];
    const char *what[5] = {"values", "select", "order", "out", "offsets"};
    if (!PyArg_ParseTuple(args, "OOOOO", &o[0], &o[1], &o[2], &o[3], &o[4]))
        return NULL;
    int held[5] = {0, 0, 0, 0, 0};
    PyObject *result = NULL;
    int64_t *table = NULL;
    uint64_t *seen = NULL;
    if (!get_array(o[0], &v[0], 8, -1, 0, what[0]))
        goto done;
    held[0] = 1;
    Py_ssize_t n = v[0].shape[0];
    if (o[1] != Py_None) {
        if (!get_array(o[1], &v[1], 1, n, 0, what[1]))
            goto done;
        held[1] = 1;
    }
    if (!get_array(o[2], &v[2], 8, -1, 0, what[2]))
        goto done;
    held[2] = 1;
    Py_ssize_t ncodes = v[2].shape[0];
    int bits = 0;
    while (bits <= 8 && ((Py_ssize_t)1 << bits) < ncodes)
        bits++;
    if (bits < 1 || bits > 8 || ((Py_ssize_t)1 << bits) != ncodes) {
        PyErr_SetString(PyExc_ValueError, "code_groups: order must hold 2**bits groups, 1 <= bits <= 8");
        goto done;
    }
    const int64_t *order = v[2].buf;
    for (Py_ssize_t c = 0; c < ncodes; c++)
        if (order[c] < 0 || order[c] >= ncodes) {
            PyErr_SetString(PyExc_ValueError, "code_groups: a group number out of range");
            goto done;
        }
    if (!get_array(o[3], &v[3], 8, n, 1, what[3]))
        goto done;
    held[3] = 1;
    if (!get_array(o[4], &v[4], 8, ncodes + 1, 1, what[4]))
        goto done;
    held[4] = 1;
    int tbits;
    if (!(table = empty_table(n, &tbits)))
        goto done;
    Py_ssize_t size = (Py_ssize_t)1 << tbits;
    seen = PyMem_Malloc((size_t)(n ? n : 1) * sizeof(uint64_t));
    if (!seen) {
        PyErr_NoMemory();
        goto done;
    }
    const uint64_t *x = v[0].buf;
    const uint8_t *sel = held[1] ? v[1].buf : NULL;
    uint64_t *out = v[3].buf;
    int64_t *off = v[4].buf;
    const uint64_t low = ((uint64_t)1 << bits) - 1;
    Py_ssize_t k = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t c = 0; c <= ncodes; c++)
        off[c] = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (sel && !sel[i])
            continue;
        uint64_t y = x[i];
        Py_ssize_t slot = (Py_ssize_t)((y * 0x9E3779B97F4A7C15ULL) >> (64 - tbits));
        for (;;) {
            int64_t j = table[slot];
            if (j < 0) {
                table[slot] = (int64_t)k;
                seen[k++] = y;
                off[order[y & low] + 1]++;
                break;
            }
            if (seen[j] == y)
                break;
            slot = (slot + 1) & (size - 1);
        }
    }
    for (Py_ssize_t c = 0; c < ncodes; c++)
        off[c + 1] += off[c];
    /* each value to its group's cursor */
    int64_t cursor[256];
    for (Py_ssize_t c = 0; c < ncodes; c++)
        cursor[c] = off[c];
    for (Py_ssize_t j = 0; j < k; j++)
        out[cursor[order[seen[j] & low]]++] = seen[j] & ~low;
    Py_END_ALLOW_THREADS
    result = PyLong_FromSsize_t(k);
done:
    PyMem_Free(seen);
    PyMem_Free(table);
    for (int i = 4; i >= 0; i--)
        if (held[i])
            PyBuffer_Release(&v[i]);
    return result;
}

/* -- HyperLogLog registers (analysis/sketch.py update_registers) ------------
 *
 * hll_update(regs, hashes, p): regs[h >> (64 - p)] = max(itself, rank of h),
 * the rank being one plus the leading zeros of the low 64 - p bits (65 - p
 * for none set), as sketch.hll_parts computes it with numpy. regs: uint8[2**p]
 * (writable), hashes: uint64[n]; 4 <= p <= 24. The index comes from the top
 * p bits, so it is always inside regs.
 */
static PyObject *hll_update(PyObject *self, PyObject *args)
{
    PyObject *rego, *ho;
    int p;
    if (!PyArg_ParseTuple(args, "OOi", &rego, &ho, &p))
        return NULL;
    if (p < 4 || p > 24) {
        PyErr_SetString(PyExc_ValueError, "hll_update: precision out of range");
        return NULL;
    }
    Py_buffer rv, hv;
    if (!get_array(rego, &rv, 1, (Py_ssize_t)1 << p, 1, "registers"))
        return NULL;
    if (!get_array(ho, &hv, 8, -1, 0, "hashes")) {
        PyBuffer_Release(&rv);
        return NULL;
    }
    uint8_t *regs = rv.buf;
    const uint64_t *h = hv.buf;
    Py_ssize_t n = hv.shape[0];
    const uint64_t low = ((uint64_t)1 << (64 - p)) - 1;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        uint64_t rest = h[i] & low;
        uint8_t rank = (uint8_t)(rest ? __builtin_clzll(rest) - p + 1 : 65 - p);
        uint8_t *r = &regs[h[i] >> (64 - p)];
        if (rank > *r)
            *r = rank;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&hv);
    PyBuffer_Release(&rv);
    Py_RETURN_NONE;
}

/* -- addresses in prefixes (decode/addresses.py) -------------------------------
 *
 * A prefix table is uint64[4 m] (value high, mask high, value low, mask
 * low per prefix, the values already masked; m <= 64), an address two
 * uint64 words. One pass over the rows for all the prefixes, where numpy
 * makes two to six per prefix (addresses.words_in_prefix, the
 * specification). The table is copied into locals so that nothing the
 * loops write may alias it; the compare of the high word comes first and
 * mostly fails, so the loop branches (twice as fast here as branch-free).
 * No length here comes from a packet: n is the arrays', m the caller's.
 */
typedef struct {
    int m;
    uint64_t vh[64], mh[64], vl[64], ml[64];
} prefix_table;

static int get_prefixes(PyObject *o, prefix_table *pt)
{
    Py_buffer v;
    if (!get_array(o, &v, 8, -1, 0, "table"))
        return 0;
    Py_ssize_t words = v.shape[0];
    if (words % 4 || words / 4 > 64) {
        PyBuffer_Release(&v);
        PyErr_SetString(PyExc_ValueError, "prefix table: 4 words per prefix, at most 64");
        return 0;
    }
    const uint64_t *t = v.buf;
    pt->m = (int)(words / 4);
    for (int p = 0; p < pt->m; p++) {
        pt->vh[p] = t[4 * p];
        pt->mh[p] = t[4 * p + 1];
        pt->vl[p] = t[4 * p + 2];
        pt->ml[p] = t[4 * p + 3];
    }
    PyBuffer_Release(&v);
    return 1;
}

static inline uint64_t in_prefixes(const prefix_table *pt, uint64_t h, uint64_t l)
{
    uint64_t bits = 0;
    for (int p = 0; p < pt->m; p++)
        if ((h & pt->mh[p]) == pt->vh[p] && (l & pt->ml[p]) == pt->vl[p])
            bits |= (uint64_t)1 << p;
    return bits;
}

/* prefix_any(hi, lo, table, out): out[i] (uint8[n]) = 1 when the address
 * (hi[i], lo[i]) lies in any prefix of the table (words_in_prefixes). */
static PyObject *prefix_any(PyObject *self, PyObject *args)
{
    PyObject *o[4];
    Py_buffer v[3];
    const char *what[3] = {"hi", "lo", "out"};
    prefix_table pt;
    if (!PyArg_ParseTuple(args, "OOOO", &o[0], &o[1], &o[2], &o[3]))
        return NULL;
    if (!get_prefixes(o[2], &pt))
        return NULL;
    PyObject *args3[3] = {o[0], o[1], o[3]};
    int got = 0;
    Py_ssize_t n = -1;
    for (; got < 3; got++) {
        if (!get_array(args3[got], &v[got], got == 2 ? 1 : 8, n, got == 2, what[got]))
            goto done;
        n = v[got].shape[0];
    }
    const uint64_t *hi = v[0].buf, *lo = v[1].buf;
    uint8_t *out = v[2].buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++)
        out[i] = in_prefixes(&pt, hi[i], lo[i]) != 0;
    Py_END_ALLOW_THREADS
done:
    while (got > 0)
        PyBuffer_Release(&v[--got]);
    if (PyErr_Occurred())
        return NULL;
    Py_RETURN_NONE;
}

/* prefix_rows(s_hi, s_lo, d_hi, d_lo, keep, table, limits, rows, s_bits,
 * d_bits) -> k: the rows i (ascending, into rows[:k]) with keep[i] set
 * (uint8[n]) whose source or destination address lies in a prefix p of
 * the table that counts there (i < limits[p], int64[m]), and for each the
 * bits of those prefixes holding its source (s_bits[:k]) and its
 * destination (d_bits[:k]). rows, s_bits, d_bits: n items each. */
static PyObject *prefix_rows(PyObject *self, PyObject *args)
{
    PyObject *o[10];
    Py_buffer v[9];
    const char *what[9] = {"s_hi", "s_lo", "d_hi", "d_lo", "keep", "limits", "rows",
                           "s_bits", "d_bits"};
    prefix_table pt;
    if (!PyArg_ParseTuple(args, "OOOOOOOOOO", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5],
                          &o[6], &o[7], &o[8], &o[9]))
        return NULL;
    if (!get_prefixes(o[5], &pt))
        return NULL;
    PyObject *arrays[9] = {o[0], o[1], o[2], o[3], o[4], o[6], o[7], o[8], o[9]};
    int got = 0;
    Py_ssize_t n = -1, k = 0;
    for (; got < 9; got++) {
        Py_ssize_t count = got == 5 ? pt.m : n;
        if (!get_array(arrays[got], &v[got], got == 4 ? 1 : 8, count, got >= 6, what[got]))
            goto done;
        if (got == 0)
            n = v[0].shape[0];
    }
    const uint64_t *sh = v[0].buf, *sl = v[1].buf, *dh = v[2].buf, *dl = v[3].buf;
    const uint8_t *keep = v[4].buf;
    const int64_t *limits = v[5].buf;
    int64_t *rows = v[6].buf;
    uint64_t *sb = v[7].buf, *db = v[8].buf;
    /* the rows from which each prefix no longer counts, as a mask to drop */
    int64_t first_cut = n;
    for (int p = 0; p < pt.m; p++)
        if (limits[p] < first_cut)
            first_cut = limits[p] < 0 ? 0 : limits[p];
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!keep[i])
            continue;
        uint64_t s = in_prefixes(&pt, sh[i], sl[i]), d = in_prefixes(&pt, dh[i], dl[i]);
        if (!(s | d))
            continue;
        if (i >= first_cut) {
            uint64_t gone = 0;
            for (int p = 0; p < pt.m; p++)
                if (i >= limits[p])
                    gone |= (uint64_t)1 << p;
            s &= ~gone;
            d &= ~gone;
            if (!(s | d))
                continue;
        }
        rows[k] = i;
        sb[k] = s;
        db[k] = d;
        k++;
    }
    Py_END_ALLOW_THREADS
done:
    while (got > 0)
        PyBuffer_Release(&v[--got]);
    if (PyErr_Occurred())
        return NULL;
    return PyLong_FromSsize_t(k);
}

/* -- the analyses' columns, in place (fast/core.py compiled_columns) ---------
 *
 * compact(out, n, which, idx): for each row r of which (int64), the first
 * k items of row r of out (int64[R n], R rows of n) become its items idx
 * (int64[k]), in place: row r's values at idx moved to its front. idx must
 * rise strictly from 0 .. n - 1 (checked: then idx[j] >= j, so an item is
 * read before any write reaches it). One read and one write of the same
 * memory, where a gather (np.take) reads it and fills a new array.
 */
static PyObject *compact(PyObject *self, PyObject *args)
{
    PyObject *o[3];
    Py_ssize_t n;
    Py_buffer v[3];
    const char *what[3] = {"out", "which", "idx"};
    if (!PyArg_ParseTuple(args, "OnOO", &o[0], &n, &o[1], &o[2]))
        return NULL;
    int got = 0;
    for (; got < 3; got++)
        if (!get_array(o[got], &v[got], 8, -1, got == 0, what[got]))
            goto done;
    int64_t *out = v[0].buf;
    const int64_t *which = v[1].buf, *idx = v[2].buf;
    Py_ssize_t total = v[0].shape[0], nw = v[1].shape[0], k = v[2].shape[0];
    if (n < 0 || (n && total % n) || (!n && total) || k > n) {
        PyErr_SetString(PyExc_ValueError, "compact: out is not rows of n items, or idx longer");
        goto done;
    }
    Py_ssize_t nrows = n ? total / n : 0;
    for (Py_ssize_t w = 0; w < nw; w++)
        if (which[w] < 0 || which[w] >= nrows) {
            PyErr_SetString(PyExc_ValueError, "compact: a row outside out");
            goto done;
        }
    for (Py_ssize_t j = 0; j < k; j++)
        if (idx[j] >= n || (j ? idx[j] <= idx[j - 1] : idx[j] < 0)) {
            PyErr_SetString(PyExc_ValueError, "compact: idx does not rise strictly inside n");
            goto done;
        }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t w = 0; w < nw; w++) {
        int64_t *row = out + which[w] * n;
        for (Py_ssize_t j = 0; j < k; j++)
            row[j] = row[idx[j]];
    }
    Py_END_ALLOW_THREADS
done:
    while (got > 0)
        PyBuffer_Release(&v[--got]);
    if (PyErr_Occurred())
        return NULL;
    Py_RETURN_NONE;
}

/* -- translation's candidate rows (analysis/translation.py candidates) -------
 *
 * xlat_candidates(fam, has6, tunnel, ntun, v4s, v4d, s_hi, s_lo, d_hi, d_lo,
 * table, codes, out): out[i] (uint8[n]) = 1 for a row that may belong to a
 * mechanism, as TranslationState.candidates (the specification) decides:
 * 4in6 (IPv4 payload, IPv6 header, outermost tunnel 4in6, one tunnel);
 * IPv6 with a side whose interface identifier has the MAP form (16 zero
 * bits, then an IPv4 address whose first octet is not 0) or in a NAT64
 * prefix of the table (at most 64); plain IPv4 (no IPv6 header, no tunnel)
 * from or to a /29 (codes[4]: its address >> 3). codes: FAM_IPV4, FAM_IPV6,
 * the 4in6 and no-tunnel codes, the /29. has6: uint8[n]; fam, tunnel,
 * ntun, v4s, v4d: int64[n] (v4s, v4d -1 for none); addresses uint64[n].
 */
static PyObject *xlat_candidates(PyObject *self, PyObject *args)
{
    PyObject *o[13];
    Py_buffer v[12];
    const char *what[12] = {"fam", "has6", "tunnel", "ntun", "v4s", "v4d", "s_hi", "s_lo",
                            "d_hi", "d_lo", "codes", "out"};
    prefix_table pt;
    if (!PyArg_ParseTuple(args, "OOOOOOOOOOOOO", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5],
                          &o[6], &o[7], &o[8], &o[9], &o[10], &o[11], &o[12]))
        return NULL;
    if (!get_prefixes(o[10], &pt))
        return NULL;
    PyObject *arrays[12] = {o[0], o[1], o[2], o[3], o[4], o[5], o[6], o[7], o[8], o[9],
                            o[11], o[12]};
    int got = 0;
    Py_ssize_t n = -1;
    for (; got < 12; got++) {
        int one_byte = got == 1 || got == 11;
        if (!get_array(arrays[got], &v[got], one_byte ? 1 : 8, got == 10 ? 5 : n, got == 11,
                       what[got]))
            goto done;
        if (got == 0)
            n = v[0].shape[0];
    }
    const int64_t *fam = v[0].buf, *tunnel = v[2].buf, *ntun = v[3].buf, *v4s = v[4].buf,
                  *v4d = v[5].buf, *codes = v[10].buf;
    const uint8_t *has6 = v[1].buf;
    const uint64_t *sh = v[6].buf, *sl = v[7].buf, *dh = v[8].buf, *dl = v[9].buf;
    uint8_t *out = v[11].buf;
    const int64_t fam4 = codes[0], fam6 = codes[1], t4in6 = codes[2], tnone = codes[3],
                  b4 = codes[4];
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        int yes = 0;
        if (has6[i]) {
            if (fam[i] == fam4)
                yes = tunnel[i] == t4in6 && ntun[i] == 1;
            else if (fam[i] == fam6)
                yes = (sl[i] >> 40) - 1 < 255 || (dl[i] >> 40) - 1 < 255
                      || in_prefixes(&pt, sh[i], sl[i]) || in_prefixes(&pt, dh[i], dl[i]);
        } else if (fam[i] == fam4 && tunnel[i] == tnone) {
            yes = (v4s[i] >= 0 && (v4s[i] >> 3) == b4) || (v4d[i] >= 0 && (v4d[i] >> 3) == b4);
        }
        out[i] = (uint8_t)yes;
    }
    Py_END_ALLOW_THREADS
done:
    while (got > 0)
        PyBuffer_Release(&v[--got]);
    if (PyErr_Occurred())
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *guard_hits(PyObject *self, PyObject *args)
{
    return PyLong_FromUnsignedLongLong(guard_count);
}

static PyMethodDef methods[] = {
    {"configure", configure, METH_VARARGS, "Take the kernel's tables (a dict)."},
    {"classify", classify, METH_VARARGS, "Classify a batch in one pass (see _core.c)."},
    {"configure_population", configure_population, METH_VARARGS,
     "Take population.py's tables (a dict)."},
    {"population", population, METH_VARARGS,
     "Client side, client key, flow hash and the distinct-count streams of column arrays."},
    {"spans", spans, METH_VARARGS,
     "The DNS segments and ICMPv6 messages of classified rows (see _core.c)."},
    {"configure_dns", configure_dns, METH_VARARGS, "Take dnsmsg's constants."},
    {"dns_parse", dns_parse, METH_VARARGS, "Parse one DNS message as dnsmsg.parse (see _core.c)."},
    {"dns_groups", dns_groups, METH_VARARGS,
     "Group a batch's DNS messages that are alike but for their ID (see _core.c)."},
    {"unique_u64", unique_u64, METH_VARARGS,
     "The distinct values of a uint64 array, in order of first appearance."},
    {"group_sum", group_sum, METH_VARARGS,
     "Distinct int64 keys with their row counts and weight sums (see _core.c)."},
    {"bin_sums", bin_sums, METH_VARARGS,
     "A batch's IP frames summed by time bin (see _core.c)."},
    {"bin_flows", bin_flows, METH_VARARGS,
     "A batch's distinct flows by time bin (see _core.c)."},
    {"code_groups", code_groups, METH_VARARGS,
     "Distinct uint64 values grouped by their low bits (see _core.c)."},
    {"hll_update", hll_update, METH_VARARGS,
     "Raise HyperLogLog registers to the ranks of 64-bit hashes (see _core.c)."},
    {"xlat_candidates", xlat_candidates, METH_VARARGS,
     "translation.py's candidate rows in one pass (see _core.c)."},
    {"compact", compact, METH_VARARGS,
     "Move the items idx of rows of a 2-d array to their fronts, in place (see _core.c)."},
    {"prefix_any", prefix_any, METH_VARARGS,
     "Whether any of up to 64 IPv6 prefixes holds each address (see _core.c)."},
    {"prefix_rows", prefix_rows, METH_VARARGS,
     "The rows whose source or destination lies in one of up to 64 IPv6 prefixes."},
    {"guard_hits", guard_hits, METH_NOARGS,
     "Reads the checked readers refused since import (0 unless a step lacks a length check)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_core", NULL, -1, methods};

PyMODINIT_FUNC PyInit__core(void) { return PyModule_Create(&module); }
