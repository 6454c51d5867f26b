/*
 * storage/ledger.c - the ledger index (storage/ledger.h): gathering movements from log entries,
 * writing them as per-SKU chunks, and reading them back newest first.
 *
 * Hold churn (reserve, release, expire) is left out: it never touches on_hand, and at checkout
 * rates it would be most of the index. Everything else - receipts, adjustments, confirmations,
 * allocations, shipments, cancellations, returns, transfers, purchase orders - is history.
 */
#include "ledger.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sys.h"
#include "trastenda/log.h"

struct ledger_ref {
    size_t sku_off; /* into buf (an offset: buf moves when it grows) */
    uint8_t sku_len;
    uint64_t seq;
    size_t row_off; /* the row (time, len, body) in buf */
    uint32_t row_len;
};

static void
put_i64(uint8_t *p, int64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)((uint64_t)v >> (8 * i));
}

static int64_t
get_i64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return (int64_t)v;
}

static bool
kept(uint8_t move)
{
    return move != TRASTENDA_MOVE_RESERVE && move != TRASTENDA_MOVE_RELEASE &&
           move != TRASTENDA_MOVE_EXPIRE;
}

bool
ledger_acc_entry(struct ledger_acc *a, const uint8_t *entry, size_t len)
{
    trastenda_entry_header hdr;
    trastenda_entry_iter it;
    if (trastenda_entry_open(entry, len, &hdr, &it) != TRASTENDA_OK) return true;
    uint8_t type;
    const uint8_t *body;
    uint32_t blen;
    while (trastenda_entry_next(&it, &type, &body, &blen) == TRASTENDA_OK) {
        if (type != TRASTENDA_REC_LEDGER) continue;
        trastenda_ledger_entry le;
        if (trastenda_ledger_decode(body, blen, &le) != TRASTENDA_OK || !kept(le.move)) continue;
        size_t row = 12 + blen;
        if (!sys_grow((void **)&a->buf, &a->cap, a->len + row, 1) ||
            !sys_grow((void **)&a->refs, &a->refs_cap, a->n + 1, sizeof(*a->refs)))
            return false;
        uint8_t *p = a->buf + a->len;
        put_i64(p, hdr.time_ms);
        sys_put_u32(p + 8, blen);
        memcpy(p + 12, body, blen);
        struct ledger_ref *r = &a->refs[a->n++];
        r->sku_off = a->len + 12 + (size_t)((const uint8_t *)le.sku.ptr - body);
        r->sku_len = (uint8_t)le.sku.len;
        r->seq = le.seq;
        r->row_off = a->len;
        r->row_len = (uint32_t)row;
        a->len += row;
    }
    return true;
}

static const uint8_t *ref_base; /* qsort has no context argument in C11 */

static int
ref_cmp(const void *x, const void *y)
{
    const struct ledger_ref *a = x, *b = y;
    uint32_t n = a->sku_len < b->sku_len ? a->sku_len : b->sku_len;
    int c = memcmp(ref_base + a->sku_off, ref_base + b->sku_off, n);
    if (c != 0) return c;
    if (a->sku_len != b->sku_len) return a->sku_len < b->sku_len ? -1 : 1;
    return a->seq > b->seq ? -1 : a->seq < b->seq; /* newest first */
}

uint64_t
ledger_acc_flush(struct ledger_acc *a, rocksdb_writebatch_t *wb)
{
    if (a->n == 0) return 0;
    ref_base = a->buf;
    qsort(a->refs, a->n, sizeof(*a->refs), ref_cmp);
    uint64_t chunks = 0;
    uint8_t *val = NULL;
    size_t val_cap = 0;
    for (size_t i = 0; i < a->n;) {
        size_t j = i, bytes = 4;
        while (j < a->n && a->refs[j].sku_len == a->refs[i].sku_len &&
               memcmp(a->buf + a->refs[j].sku_off, a->buf + a->refs[i].sku_off,
                      a->refs[i].sku_len) == 0)
            bytes += a->refs[j++].row_len;
        if (!sys_grow((void **)&val, &val_cap, bytes, 1)) abort();
        sys_put_u32(val, (uint32_t)(j - i));
        size_t at = 4;
        for (size_t k = i; k < j; k++) {
            memcpy(val + at, a->buf + a->refs[k].row_off, a->refs[k].row_len);
            at += a->refs[k].row_len;
        }
        uint8_t key[2 + 255 + 8];
        uint8_t sl = a->refs[i].sku_len;
        key[0] = 'G';
        key[1] = sl;
        memcpy(key + 2, a->buf + a->refs[i].sku_off, sl);
        uint64_t inv = UINT64_MAX - a->refs[i].seq; /* refs[i]: the newest of the chunk */
        for (int b = 0; b < 8; b++)
            key[2 + sl + b] = (uint8_t)(inv >> (56 - 8 * b));
        rocksdb_writebatch_put(wb, (const char *)key, 2 + sl + 8, (const char *)val, at);
        chunks++;
        i = j;
    }
    free(val);
    a->n = 0;
    a->len = 0;
    return chunks;
}

void
ledger_acc_fini(struct ledger_acc *a)
{
    free(a->buf);
    free(a->refs);
    memset(a, 0, sizeof(*a));
}

uint64_t
ledger_cut(rocksdb_t *db, rocksdb_readoptions_t *ro, int64_t horizon_ms, rocksdb_writebatch_t *wb)
{
    rocksdb_iterator_t *it = rocksdb_create_iterator(db, ro);
    uint64_t cut = 0;
    for (rocksdb_iter_seek(it, "G", 1); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        if (klen == 0 || k[0] != 'G') break;
        const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vlen);
        /* Rows are newest first: the chunk's first row is its newest. */
        if (vlen >= 12 && sys_get_u32(v) > 0 && get_i64(v + 4) < horizon_ms) {
            rocksdb_writebatch_delete(wb, k, klen);
            cut++;
        }
    }
    rocksdb_iter_destroy(it);
    return cut;
}

/* ---- reading ---- */

/* Copies a row body into the page's arena; NULL when out of memory. */
static uint8_t *
arena_copy(trastenda_ledger_page *page, const uint8_t *p, size_t n)
{
    if (!sys_grow((void **)&page->arena_, &page->arena_cap_, page->arena_len_ + n, 1)) return NULL;
    uint8_t *dst = page->arena_ + page->arena_len_;
    memcpy(dst, p, n);
    page->arena_len_ += n;
    return dst;
}

/* Rows scanned per call at most: filters that match little cannot make one call unbounded. */
#define SCAN_MAX 200000

static bool
str_eq(trastenda_str a, trastenda_str b)
{
    return a.len == b.len && memcmp(a.ptr, b.ptr, a.len) == 0;
}

trastenda_err
ledger_read(rocksdb_t *db, rocksdb_readoptions_t *ro, const trastenda_ledger_query *q,
            trastenda_ledger_page *page, char *err, size_t errlen)
{
    /* Rows are decoded from the arena after it stops growing: first pass stores offsets. */
    size_t offs[TRASTENDA_PAGE_MAX];
    uint32_t lens[TRASTENDA_PAGE_MAX];
    int64_t times[TRASTENDA_PAGE_MAX];
    uint8_t prefix[2 + TRASTENDA_ID_BYTES_MAX + 8];
    uint8_t sl = (uint8_t)q->sku.len;
    prefix[0] = 'G';
    prefix[1] = sl;
    memcpy(prefix + 2, q->sku.ptr, sl);
    uint64_t below = q->before_seq == 0 ? UINT64_MAX : q->before_seq;
    uint64_t inv = UINT64_MAX - (below - 1);
    for (int b = 0; b < 8; b++)
        prefix[2 + sl + b] = (uint8_t)(inv >> (56 - 8 * b));
    rocksdb_iterator_t *it = rocksdb_create_iterator(db, ro);
    /* The chunk holding below - 1 is the last one whose key is <= the target. */
    rocksdb_iter_seek_for_prev(it, (const char *)prefix, 2 + sl + 8);
    size_t klen;
    if (!rocksdb_iter_valid(it) || (klen = 0, rocksdb_iter_key(it, &klen), klen != 2u + sl + 8) ||
        memcmp(rocksdb_iter_key(it, &klen), prefix, 2 + sl) != 0)
        rocksdb_iter_seek(it, (const char *)prefix, 2 + sl + 8);
    uint32_t n = 0;
    uint64_t scanned = 0, last_seq = 0;
    bool more = false, stop = false;
    trastenda_err code = TRASTENDA_OK;
    for (; rocksdb_iter_valid(it) && !stop; rocksdb_iter_next(it)) {
        const char *k = rocksdb_iter_key(it, &klen);
        if (klen != 2u + sl + 8 || memcmp(k, prefix, 2 + sl) != 0) break;
        size_t vlen;
        const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vlen);
        if (vlen < 4) {
            code = TRASTENDA_E_CORRUPT;
            break;
        }
        uint32_t rows = sys_get_u32(v);
        size_t at = 4;
        for (uint32_t r = 0; r < rows; r++) {
            if (at + 12 > vlen || at + 12 + sys_get_u32(v + at + 8) > vlen) {
                code = TRASTENDA_E_CORRUPT;
                stop = true;
                break;
            }
            int64_t t = get_i64(v + at);
            uint32_t blen = sys_get_u32(v + at + 8);
            const uint8_t *body = v + at + 12;
            at += 12 + blen;
            trastenda_ledger_entry le;
            if (trastenda_ledger_decode(body, blen, &le) != TRASTENDA_OK) {
                code = TRASTENDA_E_CORRUPT;
                stop = true;
                break;
            }
            if (le.seq >= below) continue;
            if (++scanned > SCAN_MAX) {
                more = true;
                stop = true;
                last_seq = le.seq + 1; /* continue with this row */
                break;
            }
            if (q->to_ms != 0 && t > q->to_ms) continue;
            if (q->from_ms != 0 && t < q->from_ms) {
                stop = true; /* older rows are older still */
                break;
            }
            if (q->loc.len != 0 && !str_eq(le.loc, q->loc)) continue;
            if (n == q->limit) {
                more = true;
                stop = true;
                break;
            }
            uint8_t *copy = arena_copy(page, body, blen);
            if (copy == NULL) {
                code = TRASTENDA_E_NOMEM;
                stop = true;
                break;
            }
            offs[n] = (size_t)(copy - page->arena_);
            lens[n] = blen;
            times[n] = t;
            last_seq = le.seq;
            n++;
        }
    }
    if (code == TRASTENDA_OK) {
        char *rerr = NULL;
        rocksdb_iter_get_error(it, &rerr);
        if (rerr != NULL) {
            snprintf(err, errlen, "ledger: %s", rerr);
            rocksdb_free(rerr);
            code = TRASTENDA_E_IO;
        }
    } else if (code == TRASTENDA_E_CORRUPT) {
        snprintf(err, errlen, "ledger: a malformed index chunk");
    }
    rocksdb_iter_destroy(it);
    if (code != TRASTENDA_OK) return code;
    for (uint32_t i = 0; i < n; i++) {
        page->rows[i].time_ms = times[i];
        if (trastenda_ledger_decode(page->arena_ + offs[i], lens[i], &page->rows[i].e) !=
            TRASTENDA_OK)
            return TRASTENDA_E_CORRUPT;
    }
    page->count = n;
    page->next = more ? last_seq : 0;
    return TRASTENDA_OK;
}
