/*
 * tests/engine/test_image.c - the state in pages (engine/image.c): what storage's materializer
 * writes and recovery loads.
 *
 * A leader applies a random command sequence (gen.h); a materializer engine applies each log
 * entry with page tracking on and, at random intervals, writes its changed pages into an
 * in-memory page store. At every write a fresh engine loads the store and must have the
 * materializer's digest; it then follows the leader's log and must keep the leader's digest after
 * every batch and pass the full invariant check. Malformed pages are refused without a change.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "gen.h"
#include "trastenda/log.h"

#define BATCHES 1200

/* One table's pages: page number -> bytes (NULL when absent). */
struct store {
    uint8_t *page[16][512];
    size_t len[16][512];
    uint64_t seq;
    int64_t time_ms;
    uint64_t epoch;
    uint64_t writes, deletes;
};

static trastenda_engine *
engine_new(bool roomy)
{
    trastenda_engine_config cfg;
    gen_config(&cfg, roomy);
    trastenda_engine *e = NULL;
    cr_assert_eq(trastenda_engine_create(&cfg, &e), TRASTENDA_OK);
    return e;
}

static void
store_write(struct store *st, trastenda_engine *m)
{
    for (int i = 0; i < TRASTENDA_IMAGE_TABLES; i++) {
        uint8_t t = trastenda_image_tables[i];
        for (uint32_t p = trastenda_engine_page_next(m, t, 0); p != UINT32_MAX;
             p = trastenda_engine_page_next(m, t, p + 1)) {
            cr_assert_lt(p, 512);
            const uint8_t *bytes;
            size_t len;
            cr_assert_eq(trastenda_engine_page_encode(m, t, p, &bytes, &len), TRASTENDA_OK);
            free(st->page[t][p]);
            st->page[t][p] = NULL;
            st->len[t][p] = 0;
            if (len == 0) {
                st->deletes++;
                continue;
            }
            st->page[t][p] = malloc(len);
            memcpy(st->page[t][p], bytes, len);
            st->len[t][p] = len;
            st->writes++;
        }
        cr_assert_eq(trastenda_engine_page_next(m, t, 0), UINT32_MAX, "encoding clears marks");
    }
    st->seq = trastenda_engine_seq(m);
    st->time_ms = trastenda_engine_time_ms(m);
    st->epoch = 1;
}

static trastenda_engine *
store_load(const struct store *st, bool roomy)
{
    trastenda_engine *e = engine_new(roomy);
    for (int i = 0; i < TRASTENDA_IMAGE_TABLES; i++) {
        uint8_t t = trastenda_image_tables[i];
        for (uint32_t p = 0; p < 512; p++) {
            if (st->page[t][p] == NULL) continue;
            trastenda_err err = trastenda_engine_load_page(e, t, st->page[t][p], st->len[t][p]);
            cr_assert_eq(err, TRASTENDA_OK, "table %u page %u: %s", t, p, trastenda_err_name(err));
        }
    }
    cr_assert_eq(trastenda_engine_load_finish(e, st->seq, st->time_ms, st->epoch), TRASTENDA_OK);
    return e;
}

static void
store_free(struct store *st)
{
    for (int t = 0; t < 16; t++)
        for (int p = 0; p < 512; p++)
            free(st->page[t][p]);
}

static void
run(uint64_t seed, bool roomy_loader)
{
    static struct batch b;
    static trastenda_result res[BATCH_MAX];
    static struct store st;
    memset(&st, 0, sizeof(st));
    trastenda_engine *leader = engine_new(false), *mat = engine_new(false), *loaded = NULL;
    cr_assert_eq(trastenda_engine_pages_track(mat), TRASTENDA_OK);
    struct gen g = {.rng = {seed}};
    trastenda_batch_out out;
    uint32_t loads = 0, next_write = 1;
    setup_batch(&b);
    for (uint32_t i = 0; i <= BATCHES; i++) {
        if (i > 0) next_batch(&g, &b);
        cr_assert_eq(trastenda_engine_apply(leader, b.now, b.cmds, b.n, res, &out), TRASTENDA_OK);
        learn(&g, b.g, res, b.n);
        cr_assert_eq(trastenda_engine_apply_entry(mat, out.entry, out.entry_len), TRASTENDA_OK);
        uint64_t want = trastenda_engine_digest(leader);
        if (loaded != NULL) {
            cr_assert_eq(trastenda_engine_apply_entry(loaded, out.entry, out.entry_len),
                         TRASTENDA_OK);
            cr_assert_eq(trastenda_engine_digest(loaded), want,
                         "seed %" PRIu64 " batch %u: a loaded engine diverged from the log", seed,
                         i);
        }
        if (i + 1 < next_write) continue;
        next_write = i + 1 + rng_below(&g.rng, 60);
        store_write(&st, mat);
        trastenda_engine_destroy(loaded);
        loaded = store_load(&st, roomy_loader && loads % 2 == 1);
        loads++;
        cr_assert_eq(trastenda_engine_digest(loaded), want,
                     "seed %" PRIu64 " batch %u: loaded pages differ from the materializer", seed,
                     i);
        trastenda_engine_check(loaded);
    }
    cr_assert_gt(loads, 20);
    cr_assert_gt(st.writes, loads, "pages were written");
    trastenda_engine_check(loaded);
    trastenda_engine_destroy(loaded);
    trastenda_engine_destroy(mat);
    trastenda_engine_destroy(leader);
    store_free(&st);
}

Test(engine_image, loaded_pages_equal_the_materializer_and_follow_the_log)
{
    run(11, false);
    run(0xfeed, true); /* loaders with other capacities: other slots, same state */
}

/* A small state with one page per table, for the malformed-page tests. */
static void
small_state(trastenda_engine **leader, trastenda_engine **mat)
{
    static struct batch b;
    static trastenda_result res[BATCH_MAX];
    *leader = engine_new(false);
    *mat = engine_new(false);
    cr_assert_eq(trastenda_engine_pages_track(*mat), TRASTENDA_OK);
    struct gen g = {.rng = {5}};
    trastenda_batch_out out;
    setup_batch(&b);
    for (int i = 0; i < 40; i++) {
        if (i > 0) next_batch(&g, &b);
        cr_assert_eq(trastenda_engine_apply(*leader, b.now, b.cmds, b.n, res, &out), TRASTENDA_OK);
        learn(&g, b.g, res, b.n);
        cr_assert_eq(trastenda_engine_apply_entry(*mat, out.entry, out.entry_len), TRASTENDA_OK);
    }
}

static uint8_t *
page_copy(trastenda_engine *m, uint8_t t, size_t *len)
{
    const uint8_t *bytes;
    cr_assert_eq(trastenda_engine_page_encode(m, t, 0, &bytes, len), TRASTENDA_OK);
    cr_assert_gt(*len, 4);
    uint8_t *p = malloc(*len);
    memcpy(p, bytes, *len);
    return p;
}

Test(engine_image, malformed_pages_are_refused_and_change_nothing)
{
    trastenda_engine *leader, *mat;
    small_state(&leader, &mat);
    size_t ll, sl, kl;
    uint8_t *locs = page_copy(mat, TRASTENDA_REC_LOCATION, &ll);
    uint8_t *skus = page_copy(mat, TRASTENDA_REC_SKU, &sl);
    uint8_t *stock = page_copy(mat, TRASTENDA_REC_STOCK, &kl);
    trastenda_engine *e = engine_new(false);
    uint64_t empty = trastenda_engine_digest(e);
    /* Stock before the SKUs and locations it names. */
    cr_assert_eq(trastenda_engine_load_page(e, TRASTENDA_REC_STOCK, stock, kl),
                 TRASTENDA_E_CORRUPT);
    /* A page of another table. */
    cr_assert_eq(trastenda_engine_load_page(e, TRASTENDA_REC_LOCATION, skus, sl),
                 TRASTENDA_E_CORRUPT);
    /* Truncated anywhere, or with a wrong record count. */
    for (size_t cut = 0; cut < ll; cut += 7)
        cr_assert_neq(trastenda_engine_load_page(e, TRASTENDA_REC_LOCATION, locs, cut),
                      TRASTENDA_OK, "cut at %zu", cut);
    locs[0]++;
    cr_assert_eq(trastenda_engine_load_page(e, TRASTENDA_REC_LOCATION, locs, ll),
                 TRASTENDA_E_CORRUPT);
    locs[0]--;
    cr_assert_eq(trastenda_engine_digest(e), empty, "a refused page changed the state");
    /* The same pages in order load; after load_finish nothing more does. */
    cr_assert_eq(trastenda_engine_load_page(e, TRASTENDA_REC_LOCATION, locs, ll), TRASTENDA_OK);
    cr_assert_eq(trastenda_engine_load_page(e, TRASTENDA_REC_SKU, skus, sl), TRASTENDA_OK);
    cr_assert_eq(trastenda_engine_load_page(e, TRASTENDA_REC_STOCK, stock, kl), TRASTENDA_OK);
    /* A record already loaded, from a second page holding it again (a page of an older layout
     * left behind, storage's repack), is refused, not silently preferred. */
    size_t hl, yl;
    uint8_t *holds = page_copy(mat, TRASTENDA_REC_HOLD, &hl);
    uint8_t *keys = page_copy(mat, TRASTENDA_REC_KEY, &yl);
    cr_assert_eq(trastenda_engine_load_page(e, TRASTENDA_REC_HOLD, holds, hl), TRASTENDA_OK);
    uint64_t before = trastenda_engine_digest(e);
    cr_assert_eq(trastenda_engine_load_page(e, TRASTENDA_REC_HOLD, holds, hl), TRASTENDA_E_CORRUPT);
    cr_assert_eq(trastenda_engine_load_page(e, TRASTENDA_REC_KEY, keys, yl), TRASTENDA_OK);
    cr_assert_neq(trastenda_engine_digest(e), before);
    before = trastenda_engine_digest(e);
    cr_assert_eq(trastenda_engine_load_page(e, TRASTENDA_REC_KEY, keys, yl), TRASTENDA_E_CORRUPT);
    cr_assert_eq(trastenda_engine_digest(e), before, "a refused page changed the state");
    free(holds);
    free(keys);
    cr_assert_eq(trastenda_engine_load_page(e, 99, stock, kl), TRASTENDA_E_INVALID);
    cr_assert_eq(trastenda_engine_load_finish(e, 0, 0, 1), TRASTENDA_E_INVALID);
    cr_assert_eq(trastenda_engine_load_finish(e, 40, trastenda_engine_time_ms(mat), 1),
                 TRASTENDA_OK);
    cr_assert_eq(trastenda_engine_seq(e), 40);
    cr_assert_eq(trastenda_engine_load_page(e, TRASTENDA_REC_STOCK, stock, kl),
                 TRASTENDA_E_INVALID);
    cr_assert_eq(trastenda_engine_load_finish(e, 41, trastenda_engine_time_ms(mat), 1),
                 TRASTENDA_E_INVALID);
    free(locs);
    free(skus);
    free(stock);
    trastenda_engine_destroy(e);
    trastenda_engine_destroy(mat);
    trastenda_engine_destroy(leader);
}

Test(engine_image, only_changed_pages_are_marked)
{
    trastenda_engine_config cfg;
    gen_config(&cfg, false);
    cfg.stock_max = 4 * TRASTENDA_PAGE_SLOTS;
    trastenda_engine *leader = NULL, *mat = NULL;
    cr_assert_eq(trastenda_engine_create(&cfg, &leader), TRASTENDA_OK);
    cr_assert_eq(trastenda_engine_create(&cfg, &mat), TRASTENDA_OK);
    cr_assert_eq(trastenda_engine_page_next(mat, TRASTENDA_REC_STOCK, 0), UINT32_MAX,
                 "untracked engines mark nothing");
    cr_assert_eq(trastenda_engine_pages_track(mat), TRASTENDA_OK);
    static struct batch b;
    static trastenda_result res[BATCH_MAX];
    trastenda_batch_out out;
    setup_batch(&b);
    cr_assert_eq(trastenda_engine_apply(leader, b.now, b.cmds, b.n, res, &out), TRASTENDA_OK);
    cr_assert_eq(trastenda_engine_apply_entry(mat, out.entry, out.entry_len), TRASTENDA_OK);
    /* The catalog batch touched locations, SKUs, channels and meta; no stock yet. */
    cr_assert_eq(trastenda_engine_page_next(mat, TRASTENDA_REC_LOCATION, 0), 0);
    cr_assert_eq(trastenda_engine_page_next(mat, TRASTENDA_REC_SKU, 0), 0);
    cr_assert_eq(trastenda_engine_page_next(mat, TRASTENDA_REC_META, 0), 0);
    cr_assert_eq(trastenda_engine_page_next(mat, TRASTENDA_REC_STOCK, 0), UINT32_MAX);
    cr_assert_eq(trastenda_engine_page_next(mat, TRASTENDA_REC_HOLD, 0), UINT32_MAX);
    const uint8_t *bytes;
    size_t len;
    cr_assert_eq(trastenda_engine_page_encode(mat, TRASTENDA_REC_SKU, 0, &bytes, &len),
                 TRASTENDA_OK);
    cr_assert_gt(len, 4);
    cr_assert_eq(trastenda_engine_page_next(mat, TRASTENDA_REC_SKU, 0), UINT32_MAX);
    /* An empty page encodes to nothing; a page past the table is refused. */
    cr_assert_eq(trastenda_engine_page_encode(mat, TRASTENDA_REC_STOCK, 3, &bytes, &len),
                 TRASTENDA_OK);
    cr_assert_eq(len, 0);
    cr_assert_eq(trastenda_engine_page_encode(mat, TRASTENDA_REC_STOCK, 4, &bytes, &len),
                 TRASTENDA_E_INVALID);
    trastenda_engine_pages_mark_all(mat);
    cr_assert_eq(trastenda_engine_page_next(mat, TRASTENDA_REC_SKU, 0), 0);
    cr_assert_eq(trastenda_engine_page_next(mat, TRASTENDA_REC_STOCK, 0), UINT32_MAX);
    trastenda_engine_destroy(mat);
    trastenda_engine_destroy(leader);
}

Test(engine_image, single_records_encode_and_view_back)
{
    trastenda_engine *leader, *mat;
    small_state(&leader, &mat);
    trastenda_hold_view live, back;
    const uint8_t *rec;
    size_t len;
    /* The first live hold of the state. */
    uint64_t id = 0;
    for (uint64_t h = 1; h < 5000 && id == 0; h++)
        if (trastenda_engine_hold_get(mat, h, &live) == TRASTENDA_OK) id = h;
    cr_assert_neq(id, 0, "the state has a hold");
    cr_assert_eq(trastenda_engine_hold_encode(mat, id, &rec, &len), TRASTENDA_OK);
    uint8_t *copy = malloc(len);
    memcpy(copy, rec, len);
    cr_assert_eq(trastenda_engine_hold_record_view(mat, copy, len, &back), TRASTENDA_OK);
    cr_assert(back.id == live.id && back.state == live.state &&
              back.created_ms == live.created_ms && back.line_count == live.line_count);
    for (uint32_t i = 0; i < live.line_count; i++)
        cr_assert(back.lines[i].sku_ix == live.lines[i].sku_ix &&
                  back.lines[i].loc_ix == live.lines[i].loc_ix &&
                  back.lines[i].qty == live.lines[i].qty);
    for (size_t cut = 0; cut < len; cut += 5)
        cr_assert_eq(trastenda_engine_hold_record_view(mat, copy, cut, &back), TRASTENDA_E_CORRUPT);
    trastenda_order_view ov;
    cr_assert_eq(trastenda_engine_order_record_view(mat, copy, len, &ov), TRASTENDA_E_CORRUPT,
                 "a hold record is not an order");
    cr_assert_eq(trastenda_engine_hold_encode(mat, 999999, &rec, &len), TRASTENDA_E_UNKNOWN_HOLD);
    cr_assert_eq(trastenda_engine_order_encode(mat, (trastenda_str){"zz", 2}, &rec, &len),
                 TRASTENDA_E_UNKNOWN_ORDER);
    free(copy);
    trastenda_engine_destroy(mat);
    trastenda_engine_destroy(leader);
}
