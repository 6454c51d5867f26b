/*
 * storage/archive.c - the archive of holds and orders removed by retention (storage/archive.h).
 */
#include "archive.h"

#include <stdlib.h>
#include <string.h>

#include "sys.h"
#include "trastenda/log.h"

struct archive_ref {
    uint8_t kind;  /* 'H' or 'O' */
    uint64_t id;   /* hold id */
    size_t id_off; /* order id in buf */
    uint8_t id_len;
    size_t rec_off; /* the record in buf */
    uint32_t rec_len;
};

static bool
keep(struct archive_acc *a, uint8_t kind, uint64_t id, trastenda_str oid, const uint8_t *rec,
     size_t rec_len)
{
    if (!sys_grow((void **)&a->buf, &a->cap, a->len + oid.len + rec_len, 1) ||
        !sys_grow((void **)&a->refs, &a->refs_cap, a->n + 1, sizeof(*a->refs)))
        return false;
    struct archive_ref *r = &a->refs[a->n++];
    r->kind = kind;
    r->id = id;
    r->id_off = a->len;
    r->id_len = (uint8_t)oid.len;
    memcpy(a->buf + a->len, oid.ptr, oid.len);
    a->len += oid.len;
    r->rec_off = a->len;
    r->rec_len = (uint32_t)rec_len;
    memcpy(a->buf + a->len, rec, rec_len);
    a->len += rec_len;
    return true;
}

bool
archive_acc_entry(struct archive_acc *a, trastenda_engine *mat, const uint8_t *entry, size_t len)
{
    trastenda_entry_header hdr;
    trastenda_entry_iter it;
    if (trastenda_entry_open(entry, len, &hdr, &it) != TRASTENDA_OK) return true;
    uint8_t type;
    const uint8_t *body;
    uint32_t blen;
    /* Removals come first in an entry (docs/LOG.md): stop at the first other record. */
    while (trastenda_entry_next(&it, &type, &body, &blen) == TRASTENDA_OK) {
        const uint8_t *rec;
        size_t rec_len;
        uint64_t id;
        trastenda_str oid;
        bool ok = trastenda_removed_decode(type, body, blen, &id, &oid) == TRASTENDA_OK;
        if (type == TRASTENDA_REC_HOLD_REMOVED && ok) {
            if (trastenda_engine_hold_encode(mat, id, &rec, &rec_len) != TRASTENDA_OK) continue;
            if (!keep(a, 'H', id, (trastenda_str){"", 0}, rec, rec_len)) return false;
        } else if (type == TRASTENDA_REC_ORDER_REMOVED && ok) {
            if (trastenda_engine_order_encode(mat, oid, &rec, &rec_len) != TRASTENDA_OK) continue;
            if (!keep(a, 'O', 0, oid, rec, rec_len)) return false;
        } else if (type != TRASTENDA_REC_KEY_REMOVED && type != TRASTENDA_REC_PO_REMOVED) {
            break;
        }
    }
    return true;
}

static int
ref_cmp(const void *x, const void *y)
{
    const struct archive_ref *a = x, *b = y;
    if (a->kind != b->kind) return a->kind < b->kind ? -1 : 1;
    if (a->id != b->id) return a->id < b->id ? -1 : 1;
    /* Ties in arrival order (buf only grows), so that the later record wins. */
    return a->rec_off < b->rec_off ? -1 : a->rec_off > b->rec_off;
}

static void
hold_page_key(uint8_t key[9], uint64_t page)
{
    key[0] = 'H';
    for (int i = 0; i < 8; i++)
        key[1 + i] = (uint8_t)(page >> (56 - 8 * i));
}

/* A hold page is u32 n, then n times: u64 hold id, u32 length, the hold's record (type, length,
 * body: docs/LOG.md). The id and length frame each record so that reading a page needs nothing
 * of the record's own encoding. */
#define HOLD_FRAME_B 12u

/* One hold page: what db has, with the new records of refs[i..j) replacing same ids. */
static void
hold_page_write(struct archive_acc *a, size_t i, size_t j, rocksdb_t *db, rocksdb_readoptions_t *ro,
                rocksdb_writebatch_t *wb)
{
    uint8_t key[9];
    hold_page_key(key, a->refs[i].id / 256);
    char *rerr = NULL;
    size_t olen = 0;
    char *old = rocksdb_get(db, ro, (const char *)key, sizeof(key), &olen, &rerr);
    rocksdb_free(rerr);
    size_t cap = 4 + olen;
    for (size_t k = i; k < j; k++)
        cap += HOLD_FRAME_B + a->refs[k].rec_len;
    uint8_t *val = malloc(cap);
    if (val == NULL) abort();
    size_t at = 4;
    uint32_t count = 0;
    /* Old records not replaced, then the new ones (sorted by id within each run). */
    const uint8_t *p = (const uint8_t *)old;
    if (old != NULL && olen >= 4) {
        uint32_t n = sys_get_u32(p);
        size_t off = 4;
        for (uint32_t r = 0; r < n && off + HOLD_FRAME_B <= olen; r++) {
            uint64_t id = sys_get_u64(p + off);
            size_t rl = HOLD_FRAME_B + (size_t)sys_get_u32(p + off + 8);
            if (rl > olen - off) break;
            bool replaced = false;
            for (size_t k = i; k < j && !replaced; k++)
                replaced = a->refs[k].id == id;
            if (!replaced) {
                memcpy(val + at, p + off, rl);
                at += rl;
                count++;
            }
            off += rl;
        }
    }
    for (size_t k = i; k < j; k++) {
        if (k + 1 < j && a->refs[k + 1].id == a->refs[k].id) continue; /* the later one wins */
        sys_put_u64(val + at, a->refs[k].id);
        sys_put_u32(val + at + 8, a->refs[k].rec_len);
        memcpy(val + at + HOLD_FRAME_B, a->buf + a->refs[k].rec_off, a->refs[k].rec_len);
        at += HOLD_FRAME_B + a->refs[k].rec_len;
        count++;
    }
    sys_put_u32(val, count);
    rocksdb_writebatch_put(wb, (const char *)key, sizeof(key), (const char *)val, at);
    rocksdb_free(old);
    free(val);
}

uint64_t
archive_acc_flush(struct archive_acc *a, rocksdb_t *db, rocksdb_readoptions_t *ro,
                  rocksdb_writebatch_t *wb)
{
    if (a->n == 0) return 0;
    qsort(a->refs, a->n, sizeof(*a->refs), ref_cmp);
    for (size_t i = 0; i < a->n;) {
        size_t j = i + 1;
        if (a->refs[i].kind == 'H') {
            while (j < a->n && a->refs[j].kind == 'H' && a->refs[j].id / 256 == a->refs[i].id / 256)
                j++;
            hold_page_write(a, i, j, db, ro, wb);
        } else {
            uint8_t key[1 + 255];
            key[0] = 'O';
            memcpy(key + 1, a->buf + a->refs[i].id_off, a->refs[i].id_len);
            rocksdb_writebatch_put(wb, (const char *)key, 1u + a->refs[i].id_len,
                                   (const char *)a->buf + a->refs[i].rec_off, a->refs[i].rec_len);
        }
        i = j;
    }
    uint64_t n = a->n;
    a->n = 0;
    a->len = 0;
    return n;
}

void
archive_acc_fini(struct archive_acc *a)
{
    free(a->buf);
    free(a->refs);
    memset(a, 0, sizeof(*a));
}

trastenda_err
archive_hold_get(rocksdb_t *db, rocksdb_readoptions_t *ro, const trastenda_engine *e, uint64_t id,
                 trastenda_hold_view *out)
{
    uint8_t key[9];
    hold_page_key(key, id / 256);
    char *rerr = NULL;
    size_t len = 0;
    char *v = rocksdb_get(db, ro, (const char *)key, sizeof(key), &len, &rerr);
    if (rerr != NULL) {
        rocksdb_free(rerr);
        return TRASTENDA_E_IO;
    }
    if (v == NULL) return TRASTENDA_E_UNKNOWN_HOLD;
    const uint8_t *p = (const uint8_t *)v;
    trastenda_err code = TRASTENDA_E_UNKNOWN_HOLD;
    if (len >= 4) {
        uint32_t n = sys_get_u32(p);
        size_t off = 4;
        for (uint32_t r = 0; r < n; r++) {
            if (len - off < HOLD_FRAME_B) {
                code = TRASTENDA_E_CORRUPT;
                break;
            }
            uint32_t rl = sys_get_u32(p + off + 8);
            if (len - off - HOLD_FRAME_B < rl) {
                code = TRASTENDA_E_CORRUPT;
                break;
            }
            if (sys_get_u64(p + off) == id) {
                code = trastenda_engine_hold_record_view(e, p + off + HOLD_FRAME_B, rl, out);
                break;
            }
            off += HOLD_FRAME_B + rl;
        }
    }
    rocksdb_free(v);
    return code;
}

trastenda_err
archive_order_get(rocksdb_t *db, rocksdb_readoptions_t *ro, const trastenda_engine *e,
                  trastenda_str id, trastenda_order_view *out)
{
    if (id.len == 0 || id.len > TRASTENDA_ID_BYTES_MAX) return TRASTENDA_E_INVALID;
    uint8_t key[1 + TRASTENDA_ID_BYTES_MAX];
    key[0] = 'O';
    memcpy(key + 1, id.ptr, id.len);
    char *rerr = NULL;
    size_t len = 0;
    char *v = rocksdb_get(db, ro, (const char *)key, 1 + id.len, &len, &rerr);
    if (rerr != NULL) {
        rocksdb_free(rerr);
        return TRASTENDA_E_IO;
    }
    if (v == NULL) return TRASTENDA_E_UNKNOWN_ORDER;
    trastenda_err code = trastenda_engine_order_record_view(e, (const uint8_t *)v, len, out);
    rocksdb_free(v);
    return code;
}
