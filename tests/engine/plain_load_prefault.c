/*
 * tests/engine/plain_load_prefault.c - a large state loads while another thread faults its
 * memory in (trastenda_engine_load_expect / trastenda_engine_load_prefault, engine/image.c).
 *
 * A plain executable (exit 0 = pass; Criterion does not run under ThreadSanitizer, and the point
 * here is a second thread beside the load). A materializer engine builds 60,000 stock records
 * (60,000 SKUs at one location, each received, some adjusted, a quarter reserved under an
 * idempotency key) on tables of several MiB, so that the stock and SKU tables are dense enough
 * to be loaded onto huge pages, and writes its pages to memory. A fresh engine is told what the
 * pages hold, and loads them while a second thread prefaults the same tables; it must then have the
 * materializer's digest, pass the invariant check, and keep the same digest as the materializer
 * over more batches that create records past the loaded ones (tables back on 4 KiB pages for what
 * was not mapped). The calls refuse what they must: an unknown table, an engine past load_finish.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trastenda/engine.h"
#include "trastenda/log.h"

#define SKUS       60000u
#define BATCH      1000u
#define PAGES_MAX  1024u
#define EXTRA_SKUS 3000u

static int failures;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond) && ++failures <= 10) {                                                         \
            fprintf(stderr, "plain_load_prefault: FAIL (%s:%d): ", __FILE__, __LINE__);            \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
        }                                                                                          \
    } while (0)

static void
config(trastenda_engine_config *cfg)
{
    trastenda_engine_config_default(cfg);
    cfg->locations_max = 4;
    cfg->skus_max = 200000;  /* a 4 MiB map: 60,000 SKUs are one per 4 KiB and more */
    cfg->stock_max = 200000; /* records of 12+ MiB, a 4 MiB map */
    cfg->batch_cmds_max = BATCH;
}

static trastenda_engine *
engine_new(void)
{
    trastenda_engine_config cfg;
    config(&cfg);
    trastenda_engine *e = NULL;
    if (trastenda_engine_create(&cfg, &e) != TRASTENDA_OK) {
        fprintf(stderr, "plain_load_prefault: FAIL: engine_create\n");
        exit(1);
    }
    return e;
}

/* Applies cmds as one batch to a and, through its log entry, to b and c (unless NULL). */
static void
apply(trastenda_engine *a, trastenda_engine *b, trastenda_engine *c, int64_t now,
      trastenda_cmd *cmds, uint32_t n)
{
    static trastenda_result res[BATCH];
    trastenda_batch_out out;
    trastenda_err err = trastenda_engine_apply(a, now, cmds, n, res, &out);
    CHECK(err == TRASTENDA_OK, "apply: %s", trastenda_err_name(err));
    for (uint32_t i = 0; i < n; i++)
        CHECK(res[i].code == TRASTENDA_OK, "command %u: %s", i, res[i].message);
    err = trastenda_engine_apply_entry(b, out.entry, out.entry_len);
    CHECK(err == TRASTENDA_OK, "apply_entry: %s", trastenda_err_name(err));
    if (c == NULL) return;
    err = trastenda_engine_apply_entry(c, out.entry, out.entry_len);
    CHECK(err == TRASTENDA_OK, "apply_entry (loaded engine): %s", trastenda_err_name(err));
}

/* SKUs from..to-1, each created and received at w1 (some adjusted too); every fourth one also
 * reserved under an idempotency key (holds and keys: tables a load packs from slot 0). */
static void
skus_add(trastenda_engine *a, trastenda_engine *b, trastenda_engine *c, int64_t *now, uint32_t from,
         uint32_t to)
{
    static char ids[BATCH][16], keys[BATCH][16];
    static trastenda_cmd cmds[BATCH];
    static trastenda_line lines[BATCH];
    for (uint32_t base = from; base < to;) {
        uint32_t n = 0;
        for (uint32_t k = 0; n + 3 <= BATCH && base < to; base++, k++) {
            char *id = ids[k];
            int len = snprintf(id, 16, "sku-%u", base);
            trastenda_ref sku = {{id, (uint32_t)len}, TRASTENDA_IX_NONE};
            trastenda_ref w1 = {{"w1", 2}, TRASTENDA_IX_NONE};
            memset(&cmds[n], 0, 3 * sizeof(cmds[0]));
            cmds[n].op = TRASTENDA_OP_SKU_UPSERT;
            cmds[n].sku = sku;
            cmds[n].active = 1;
            cmds[n + 1].op = base % 7 == 0 ? TRASTENDA_OP_ADJUST : TRASTENDA_OP_RECEIVE;
            cmds[n + 1].sku = sku;
            cmds[n + 1].loc = w1;
            cmds[n + 1].qty = (int32_t)(1 + base % 50);
            cmds[n + 1].reason = TRASTENDA_REASON_FOUND;
            n += 2;
            if (base % 4 != 0) continue;
            lines[k] = (trastenda_line){sku, w1, 1, 0};
            int klen = snprintf(keys[k], 16, "k-%u", base);
            cmds[n].op = TRASTENDA_OP_RESERVE;
            cmds[n].key = (trastenda_str){keys[k], (uint32_t)klen};
            cmds[n].lines = &lines[k];
            cmds[n].line_count = 1;
            cmds[n].ttl_ms = 3600000;
            n++;
        }
        apply(a, b, c, ++*now, cmds, n);
    }
}

/* A table's pages, encoded by the materializer. */
struct pages {
    uint8_t *page[PAGES_MAX];
    size_t len[PAGES_MAX];
    uint32_t last; /* highest page number + 1 */
};

static struct pages tables[TRASTENDA_IMAGE_TABLES];

static void
pages_write(trastenda_engine *m)
{
    for (int i = 0; i < TRASTENDA_IMAGE_TABLES; i++) {
        uint8_t t = trastenda_image_tables[i];
        for (uint32_t p = trastenda_engine_page_next(m, t, 0); p != UINT32_MAX;
             p = trastenda_engine_page_next(m, t, p + 1)) {
            CHECK(p < PAGES_MAX, "page %u of table %u", p, t);
            if (p >= PAGES_MAX) return;
            const uint8_t *bytes;
            size_t len;
            CHECK(trastenda_engine_page_encode(m, t, p, &bytes, &len) == TRASTENDA_OK, "encode");
            if (len == 0) continue;
            tables[i].page[p] = malloc(len);
            memcpy(tables[i].page[p], bytes, len);
            tables[i].len[p] = len;
            tables[i].last = p + 1;
        }
    }
}

struct prefault {
    trastenda_engine *e;
    uint64_t records[TRASTENDA_IMAGE_TABLES];
    int errors;
};

static void *
prefault_main(void *arg)
{
    struct prefault *pf = arg;
    for (int i = 0; i < TRASTENDA_IMAGE_TABLES; i++)
        if (trastenda_engine_load_prefault(pf->e, trastenda_image_tables[i], pf->records[i]) !=
            TRASTENDA_OK)
            pf->errors++;
    return NULL;
}

int
main(void)
{
    trastenda_engine *leader = engine_new(), *mat = engine_new();
    CHECK(trastenda_engine_pages_track(mat) == TRASTENDA_OK, "pages_track");
    int64_t now = 1000000;
    trastenda_cmd loc = {0};
    loc.op = TRASTENDA_OP_LOCATION_UPSERT;
    loc.loc = (trastenda_ref){{"w1", 2}, TRASTENDA_IX_NONE};
    loc.active = 1;
    apply(leader, mat, NULL, ++now, &loc, 1);
    skus_add(leader, mat, NULL, &now, 0, SKUS);
    pages_write(mat);

    trastenda_engine *loaded = engine_new();
    static struct prefault pf;
    pf.e = loaded;
    for (int i = 0; i < TRASTENDA_IMAGE_TABLES; i++) {
        uint8_t t = trastenda_image_tables[i];
        pf.records[i] = (uint64_t)tables[i].last * TRASTENDA_PAGE_SLOTS;
        CHECK(trastenda_engine_load_expect(loaded, t, pf.records[i]) == TRASTENDA_OK,
              "load_expect table %u", t);
    }
    CHECK(trastenda_engine_load_expect(loaded, 99, 1) == TRASTENDA_E_INVALID, "unknown table");
    CHECK(trastenda_engine_load_prefault(loaded, 99, 1) == TRASTENDA_E_INVALID, "unknown table");
    pthread_t thread;
    if (pthread_create(&thread, NULL, prefault_main, &pf) != 0) {
        fprintf(stderr, "plain_load_prefault: FAIL: pthread_create\n");
        return 1;
    }
    for (int i = 0; i < TRASTENDA_IMAGE_TABLES; i++)
        for (uint32_t p = 0; p < tables[i].last; p++) {
            if (tables[i].page[p] == NULL) continue;
            trastenda_err err = trastenda_engine_load_page(loaded, trastenda_image_tables[i],
                                                           tables[i].page[p], tables[i].len[p]);
            CHECK(err == TRASTENDA_OK, "table %u page %u: %s", trastenda_image_tables[i], p,
                  trastenda_err_name(err));
        }
    pthread_join(thread, NULL);
    CHECK(pf.errors == 0, "load_prefault failed %d times", pf.errors);
    CHECK(trastenda_engine_load_finish(loaded, trastenda_engine_seq(mat),
                                       trastenda_engine_time_ms(mat), 1) == TRASTENDA_OK,
          "load_finish");
    CHECK(trastenda_engine_load_expect(loaded, TRASTENDA_REC_STOCK, 1) == TRASTENDA_E_INVALID,
          "load_expect after load_finish");
    CHECK(trastenda_engine_digest(loaded) == trastenda_engine_digest(mat),
          "the loaded engine differs from the materializer");
    trastenda_engine_check(loaded);

    /* More records past the loaded ones: the loaded engine follows the log as the materializer. */
    skus_add(leader, mat, loaded, &now, SKUS, SKUS + EXTRA_SKUS);
    CHECK(trastenda_engine_digest(loaded) == trastenda_engine_digest(mat),
          "the loaded engine diverged from the log");
    CHECK(trastenda_engine_digest(leader) == trastenda_engine_digest(mat),
          "the materializer diverged from the leader");
    trastenda_engine_check(loaded);

    trastenda_engine_destroy(loaded);
    trastenda_engine_destroy(mat);
    trastenda_engine_destroy(leader);
    for (int i = 0; i < TRASTENDA_IMAGE_TABLES; i++)
        for (uint32_t p = 0; p < PAGES_MAX; p++)
            free(tables[i].page[p]);
    if (failures > 0) return 1;
    printf("plain_load_prefault: ok (%u stock records loaded with a prefaulting thread)\n", SKUS);
    return 0;
}
