/*
 * bench/catalogue.c - the catalogue checkout and order-intake run against: N SKUs ("C0000000"
 * ...) at L locations ("WH-1" ...) in peninsular Spain serving channel "web", each stock record
 * with the same units on hand.
 *
 * The bench loads it itself, in requests of about 1,000 ops from 4 threads sharing the client,
 * so the server's group commit takes several requests per fsync. A catalogue already there (its
 * last SKU has a record at every location) is not loaded again, so consecutive runs against one
 * server skip the load.
 */
#include "harness.h"

#include <string.h>

struct catalogue_opts catalogue = {
    .skus = 1000000,
    .locations = 5,
    .stock = 1000000,
    .load = "auto",
};

const struct bench_flag CATALOGUE_FLAGS[] = {
    {"skus", FLAG_U32, &catalogue.skus, 1, 50000000, "SKUs in the catalogue (1000000)"},
    {"locations", FLAG_U32, &catalogue.locations, 1, 256, "locations, each stocking every SKU (5)"},
    {"stock", FLAG_U64, &catalogue.stock, 1, TRASTENDA_LINE_QTY_MAX,
     "units on hand per stock record when loaded (1000000)"},
    {"load", FLAG_STR, &catalogue.load, 0, 0,
     "auto: load the catalogue when it is missing; no: never; only: load and exit (auto)"},
    {0},
};

/* Where the first locations are (micro-degrees); more are spread over a grid between them. */
static const int32_t CITIES[][2] = {
    {43362300, -8411500}, /* A Coruna */
    {40416800, -3703800}, /* Madrid */
    {41387400, 2168600},  /* Barcelona */
    {37389100, -5984500}, /* Sevilla */
    {39469900, -376300},  /* Valencia */
    {43263000, -2935000}, /* Bilbao */
    {41648800, -889100},  /* Zaragoza */
    {36721300, -4421400}, /* Malaga */
};
#define N_CITIES (sizeof(CITIES) / sizeof(CITIES[0]))

/* Peninsular Spain, roughly: where ship-to points and extra locations fall. */
#define LAT_MIN 36500000
#define LAT_MAX 43500000
#define LON_MIN -9000000
#define LON_MAX 3000000

void
catalogue_sku(char *out, size_t cap, uint32_t index)
{
    int n = snprintf(out, cap, "C%07u", index);
    BENCH_ASSERT(n > 0 && (size_t)n < cap);
}

void
catalogue_location(char *out, size_t cap, uint32_t index)
{
    int n = snprintf(out, cap, "WH-%u", index + 1);
    BENCH_ASSERT(n > 0 && (size_t)n < cap);
}

void
catalogue_ship_to(struct caller *c, int64_t *lat_e6, int64_t *lon_e6)
{
    *lat_e6 = LAT_MIN + bench_rand_below(c, LAT_MAX - LAT_MIN);
    *lon_e6 = LON_MIN + (int64_t)bench_rand_below(c, LON_MAX - LON_MIN);
    BENCH_ASSERT(*lat_e6 >= LAT_MIN && *lat_e6 < LAT_MAX);
}

static void
locations_upsert(struct bench *b)
{
    static const char *const channels[] = {BENCH_CHANNEL};
    static char ids[256][16];
    static trastenda_args a[256];
    uint32_t n = catalogue.locations;
    BENCH_ASSERT(n >= 1 && n <= 256);
    for (uint32_t i = 0; i < n; i++) {
        catalogue_location(ids[i], sizeof(ids[i]), i);
        trastenda_args_init(&a[i], "location.upsert");
        a[i].loc = ids[i];
        a[i].name = ids[i];
        a[i].channels = channels;
        a[i].n_channels = 1;
        if (i < N_CITIES) {
            a[i].lat_e6 = CITIES[i][0];
            a[i].lon_e6 = CITIES[i][1];
        } else { /* a 16 x 16 grid over the box */
            a[i].lat_e6 = LAT_MIN + (int64_t)(i % 16) * (LAT_MAX - LAT_MIN) / 16;
            a[i].lon_e6 = LON_MIN + (int64_t)(i / 16) * (LON_MAX - LON_MIN) / 16;
        }
    }
    bench_call_ok(b, a, n, "loading the locations",
                  "the server needs --locations-max at least the catalogue's --locations");
}

/* True when the last SKU has a record at every location. */
static bool
catalogue_present(struct bench *b)
{
    char sku[24];
    catalogue_sku(sku, sizeof(sku), catalogue.skus - 1);
    trastenda_reply r;
    trastenda_err e = trastenda_stock(b->client, sku, &r);
    bool present = false;
    if (e == TRASTENDA_OK && r.code == TRASTENDA_OK) {
        char *j = trastenda_result_json(&r);
        present = j != NULL && bench_json_count(j, "loc") == catalogue.locations;
        free(j);
    }
    trastenda_reply_clear(&r);
    return present;
}

/* SKUs per loading request: an upsert and one receive per location each, about 1,000 ops. */
static uint32_t
chunk_skus(void)
{
    uint32_t per = 1 + catalogue.locations;
    uint32_t n = 1000 / per;
    return n > 0 ? n : 1;
}

static void
load_chunk(void *arg, uint64_t index)
{
    struct bench *b = arg;
    uint32_t per = 1 + catalogue.locations, skus = chunk_skus();
    uint32_t first = (uint32_t)index * skus;
    uint32_t last = first + skus < catalogue.skus ? first + skus : catalogue.skus;
    trastenda_args *a = xcalloc((size_t)skus * per, sizeof(*a));
    char(*ids)[24] = xcalloc(skus, sizeof(*ids));
    char(*locs)[16] = xcalloc(catalogue.locations, sizeof(*locs));
    for (uint32_t l = 0; l < catalogue.locations; l++)
        catalogue_location(locs[l], sizeof(locs[l]), l);
    uint32_t n = 0;
    for (uint32_t k = first; k < last; k++) {
        char *id = ids[k - first];
        catalogue_sku(id, sizeof(ids[0]), k);
        trastenda_args_init(&a[n], "sku.upsert");
        a[n++].sku = id;
        for (uint32_t l = 0; l < catalogue.locations; l++) {
            trastenda_args_init(&a[n], "receive");
            a[n].sku = id;
            a[n].loc = locs[l];
            a[n++].qty = (int64_t)catalogue.stock;
        }
    }
    BENCH_ASSERT(n >= per && n <= BENCH_OPS_MAX);
    bench_call_ok(b, a, n, "loading the catalogue",
                  "the server needs --skus-max >= --skus and --stock-max >= --skus x --locations");
    free(a);
    free(ids);
    free(locs);
}

void
catalogue_check(void)
{
    if (strcmp(catalogue.load, "auto") != 0 && strcmp(catalogue.load, "no") != 0 &&
        strcmp(catalogue.load, "only") != 0)
        bench_usage_error("--load: must be auto, no or only (got '%s')", catalogue.load);
    BENCH_ASSERT(catalogue.skus >= 1 && catalogue.locations >= 1);
    /* receive takes at most TRASTENDA_LINE_QTY_MAX units a command: the flag's range. */
    BENCH_ASSERT(catalogue.stock <= TRASTENDA_LINE_QTY_MAX);
}

void
catalogue_setup(struct bench *b)
{
    bool only = strcmp(catalogue.load, "only") == 0;
    if (strcmp(catalogue.load, "no") == 0) return;
    char a[40], c[40];
    if (catalogue_present(b)) {
        fprintf(stderr, BENCH_NAME ": catalogue of %s SKUs x %u locations already loaded\n",
                num(a, catalogue.skus), catalogue.locations);
    } else {
        uint64_t t0 = now_ns();
        locations_upsert(b);
        uint64_t chunks = (catalogue.skus + chunk_skus() - 1) / chunk_skus();
        fprintf(stderr, BENCH_NAME ": loading %s SKUs x %u locations (%s ops)...\n",
                num(a, catalogue.skus), catalogue.locations,
                num(c, (double)catalogue.skus * (1 + catalogue.locations)));
        bench_parallel(4, chunks, load_chunk, b);
        double s = (double)(now_ns() - t0) / 1e9;
        fprintf(stderr, BENCH_NAME ": loaded in %.1f s (%s ops/s)\n", s,
                num(a, (double)catalogue.skus * (1 + catalogue.locations) / s));
    }
    if (only) exit(0);
}
