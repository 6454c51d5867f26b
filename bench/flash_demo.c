/*
 * bench/flash_demo.c - trastenda-demo: an in-process flash sale on the engine.
 *
 * A small shop (five warehouses and stores in Spain and Galicia, three dozen SKUs) opens a sale
 * on four hot SKUs. Simulated shoppers arrive front-loaded over five minutes: most reserve a cart
 * (routed: channel + ship-to) and then check out (CONFIRM), some release their cart, some walk
 * away and let the hold expire, some place an order directly (ORDER_PLACE); a few retry a request
 * with the same idempotency key, as a client does when a response is lost. Every batch's log
 * entry is read for its events and replayed on a replica. The report checks that nothing was
 * oversold against the initial stock.
 *
 * Deterministic: a fixed-seed PRNG (no rand()) and a simulated clock (one batch per 50 ms tick).
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base.h" /* ts_splitmix64: the fixed-seed PRNG */
#include "trastenda/engine.h"
#include "trastenda/log.h"

#define SHOPPERS      40000u
#define SALE_MS       300000 /* arrivals spread over five minutes, most in the first */
#define TICK_MS       50     /* one batch per tick */
#define HOLD_TTL_MS   120000 /* a cart is held two minutes */
#define TICKS         ((SALE_MS + 2 * HOLD_TTL_MS) / TICK_MS)
#define BATCH_MAX     4096u
#define CART_MAX      2u
#define SALE_START_MS 1764324000000ll /* 2025-11-28 10:00:00 UTC */
#define TIMELINE_MAX  14u

/* ---- the shop ---- */

#define LOCS 5u
static const struct {
    const char *id, *name;
    int32_t lat_e6, lon_e6;
    int32_t priority;
} LOC[LOCS] = {
    {"ALM-MAD", "Almacén Madrid (Getafe)", 40305700, -3732900, 1},
    {"ALM-BCN", "Almacén Barcelona (El Prat)", 41327500, 2094700, 1},
    {"TDA-LCG", "Tenda A Coruña", 43362300, -8411500, 2},
    {"TDA-VGO", "Tenda Vigo", 42240600, -8720700, 2},
    {"ALM-SVQ", "Almacén Sevilla", 37389100, -5984500, 1},
};

#define HOT 4u
static const struct {
    const char *id, *name;
    int32_t stock[LOCS]; /* initial units per location */
    uint32_t weight;     /* share of shoppers who want it, % */
} HOT_SKU[HOT] = {
    {"ZAP-ESTRELA", "Zapatillas Estrela, edición limitada", {600, 400, 300, 300, 200}, 40},
    {"CHA-NORDES", "Chaqueta impermeable Nordés", {500, 300, 600, 600, 0}, 25},
    {"CON-RETRO", "Consola retro mini", {1500, 1500, 400, 400, 800}, 20},
    {"AUR-BRISA", "Auriculares Brisa", {2000, 2000, 500, 500, 1000}, 15},
};
#define HOT_REORDER_POINT 50

#define REGULAR 32u
static const char *const REGULAR_NAME[REGULAR] = {
    "Camiseta básica",
    "Sudadera con capucha",
    "Calcetíns de la",
    "Bufanda de la",
    "Gorro de punto",
    "Mochila urbana",
    "Botella térmica",
    "Paraugas plegable",
    "Cunca de cerámica",
    "Vaso de vidro",
    "Libreta de notas",
    "Bolígrafo de madeira",
    "Funda de móbil",
    "Cargador USB-C",
    "Cable USB-C 2 m",
    "Altofalante Bluetooth",
    "Lámpada de escritorio",
    "Manta de sofá",
    "Almofada",
    "Toalla de praia",
    "Lentes de sol",
    "Gorra de visera",
    "Cinto de coiro",
    "Carteira",
    "Reloxo dixital",
    "Pulseira",
    "Xabón artesán",
    "Vela aromática",
    "Té verde 100 g",
    "Café de pota 250 g",
    "Chocolate negro",
    "Xogo de mesa",
};

static const trastenda_str CH_WEB = {"web", 3};
static const trastenda_str CH_STORE = {"store", 5};

/* Where shoppers live: ship-to points. */
#define CITIES 18u
static const struct {
    const char *name;
    int32_t lat_e6, lon_e6;
} CITY[CITIES] = {
    {"Santiago", 42878200, -8544800}, {"Ourense", 42335800, -7863900},
    {"Lugo", 43009700, -7556800},     {"Pontevedra", 42431000, -8644400},
    {"Ferrol", 43483200, -8236900},   {"Vigo", 42240600, -8720700},
    {"A Coruña", 43362300, -8411500}, {"Oviedo", 43361400, -5859300},
    {"León", 42598700, -5567100},     {"Valladolid", 41652300, -4724500},
    {"Bilbao", 43263000, -2935000},   {"Zaragoza", 41648800, -889100},
    {"Madrid", 40416800, -3703800},   {"Barcelona", 41387400, 2168600},
    {"Valencia", 39469900, -376300},  {"Sevilla", 37389100, -5984500},
    {"Málaga", 36721300, -4421400},   {"Murcia", 37992200, -1130700},
};

/* ---- shoppers and their scheduled actions ---- */

enum flow {
    FLOW_CHECKOUT, /* reserve, then confirm */
    FLOW_RELEASE,  /* reserve, then release the cart */
    FLOW_ABANDON,  /* reserve, then walk away: the hold expires */
    FLOW_DIRECT    /* ORDER_PLACE */
};

enum act {
    ACT_ARRIVE,
    ACT_RETRY, /* the same request again, same key: the client lost the response */
    ACT_CONFIRM,
    ACT_RELEASE
};

struct shopper {
    uint8_t flow, cart_n, retried;
    trastenda_line cart[CART_MAX];
    int32_t lat_e6, lon_e6;
    uint64_t hold_id, order_no;
    char key[16], order_id[16];
};

struct action {
    uint32_t shopper;
    uint32_t next; /* next action of the same tick; UINT32_MAX ends */
    uint8_t act;
};

struct tally {
    uint64_t arrivals, reserves, reserve_short, orders_confirmed, orders_direct, direct_short;
    uint64_t released, late_confirms, retries, retries_matched;
    uint64_t units_sold, sold[HOT][LOCS];
    uint64_t commands, batches, ledger, events, entry_bytes;
    uint64_t ev[8];
    double apply_s;
};

struct demo {
    trastenda_engine *e, *replica;
    uint64_t rng;
    struct shopper *shoppers;
    struct action *acts;
    uint32_t n_acts, acts_max;
    uint32_t *tick_head;
    trastenda_cmd cmds[BATCH_MAX];
    trastenda_result res[BATCH_MAX];
    uint32_t cmd_act[BATCH_MAX];
    uint32_t hot_ix[HOT], loc_ix[LOCS];
    int64_t now_ms;
    struct tally t;
    struct stock_event {
        int64_t at_ms;
        uint8_t kind;
        char sku[24], loc[16];
        int64_t available;
    } timeline[TIMELINE_MAX];
    uint32_t n_timeline;
    bool out_now[HOT][LOCS], low_seen[HOT][LOCS], out_seen[HOT][LOCS];
    int64_t all_out_at[HOT]; /* first time every location of the SKU was out, 0 when never */
};

_Noreturn static void
die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "trastenda-demo: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static trastenda_str
str(const char *s)
{
    return (trastenda_str){s, (uint32_t)strlen(s)};
}

static trastenda_ref
ref(const char *id)
{
    return (trastenda_ref){str(id), TRASTENDA_IX_NONE};
}

static void
cmd_clear(trastenda_cmd *c, uint32_t op)
{
    memset(c, 0, sizeof(*c));
    c->op = op;
    c->sku.ix = c->loc.ix = c->loc_to.ix = TRASTENDA_IX_NONE;
}

static void
schedule(struct demo *d, uint32_t tick, uint32_t shopper, uint8_t act)
{
    if (tick >= TICKS) return; /* after the end of the simulation: never happens */
    if (d->n_acts == d->acts_max) die("action pool full");
    struct action *a = &d->acts[d->n_acts];
    a->shopper = shopper;
    a->act = act;
    a->next = d->tick_head[tick];
    d->tick_head[tick] = d->n_acts++;
}

static double
mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
hot_of(trastenda_str sku)
{
    for (uint32_t h = 0; h < HOT; h++)
        if (sku.len == strlen(HOT_SKU[h].id) && memcmp(sku.ptr, HOT_SKU[h].id, sku.len) == 0)
            return (int)h;
    return -1;
}

static int
loc_of(trastenda_str loc)
{
    for (uint32_t l = 0; l < LOCS; l++)
        if (loc.len == strlen(LOC[l].id) && memcmp(loc.ptr, LOC[l].id, loc.len) == 0) return (int)l;
    return -1;
}

/* Reads the events of a batch's log entry: counts, the sold-out state, the first few. */
static void
read_events(struct demo *d, const trastenda_batch_out *out)
{
    trastenda_entry_header hdr;
    trastenda_entry_iter it;
    if (trastenda_entry_open(out->entry, out->entry_len, &hdr, &it) != TRASTENDA_OK)
        die("log entry %llu does not open", (unsigned long long)out->seq);
    uint8_t type;
    const uint8_t *body;
    uint32_t len;
    trastenda_err err;
    while ((err = trastenda_entry_next(&it, &type, &body, &len)) == TRASTENDA_OK) {
        if (type != TRASTENDA_REC_EVENT) continue;
        trastenda_event ev;
        if (trastenda_event_decode(body, len, &ev) != TRASTENDA_OK) die("bad event");
        if (ev.kind < 8) d->t.ev[ev.kind]++;
        int h = hot_of(ev.sku), l = loc_of(ev.loc);
        if (h < 0 || l < 0) continue;
        if (ev.kind == TRASTENDA_EVENT_OUT_OF_STOCK) d->out_now[h][l] = true;
        if (ev.kind == TRASTENDA_EVENT_BACK_IN_STOCK) d->out_now[h][l] = false;
        bool all = true;
        for (uint32_t k = 0; k < LOCS; k++)
            all &= d->out_now[h][k] || HOT_SKU[h].stock[k] == 0;
        if (all && d->all_out_at[h] == 0) d->all_out_at[h] = hdr.time_ms;
        bool first = (ev.kind == TRASTENDA_EVENT_LOW_STOCK && !d->low_seen[h][l]) ||
                     (ev.kind == TRASTENDA_EVENT_OUT_OF_STOCK && !d->out_seen[h][l]);
        if (ev.kind == TRASTENDA_EVENT_LOW_STOCK) d->low_seen[h][l] = true;
        if (ev.kind == TRASTENDA_EVENT_OUT_OF_STOCK) d->out_seen[h][l] = true;
        if (first && d->n_timeline < TIMELINE_MAX) {
            struct stock_event *tl = &d->timeline[d->n_timeline++];
            tl->at_ms = hdr.time_ms;
            tl->kind = ev.kind;
            snprintf(tl->sku, sizeof(tl->sku), "%.*s", (int)ev.sku.len, ev.sku.ptr);
            snprintf(tl->loc, sizeof(tl->loc), "%.*s", (int)ev.loc.len, ev.loc.ptr);
            tl->available = ev.available;
        }
    }
    if (err != TRASTENDA_E_SEQUENCE)
        die("log entry %llu is malformed", (unsigned long long)out->seq);
}

/* Applies n commands at the current time; replays the entry on the replica; reads its events. */
static void
apply(struct demo *d, uint32_t n)
{
    trastenda_batch_out out;
    double t0 = mono_s();
    trastenda_err err = trastenda_engine_apply(d->e, d->now_ms, d->cmds, n, d->res, &out);
    d->t.apply_s += mono_s() - t0;
    if (err != TRASTENDA_OK) die("apply: %s", trastenda_err_name(err));
    if (trastenda_engine_apply_entry(d->replica, out.entry, out.entry_len) != TRASTENDA_OK)
        die("replica refused entry %llu", (unsigned long long)out.seq);
    d->t.commands += n;
    d->t.batches++;
    d->t.ledger += out.ledger_count;
    d->t.events += out.event_count;
    d->t.entry_bytes += out.entry_len;
    read_events(d, &out);
}

static void
apply_setup(struct demo *d, uint32_t n, const char *what)
{
    apply(d, n);
    for (uint32_t i = 0; i < n; i++)
        if (d->res[i].code != TRASTENDA_OK)
            die("%s: %s: %s", what, trastenda_err_name(d->res[i].code), d->res[i].message);
}

/* ---- the shop before the sale ---- */

static char regular_id[REGULAR][12];

static void
shop_open(struct demo *d)
{
    static const trastenda_str web_store[2] = {{"web", 3}, {"store", 5}};
    uint32_t n = 0;
    for (uint32_t l = 0; l < LOCS; l++) {
        trastenda_cmd *c = &d->cmds[n++];
        cmd_clear(c, TRASTENDA_OP_LOCATION_UPSERT);
        c->loc = ref(LOC[l].id);
        c->name = str(LOC[l].name);
        c->lat_e6 = LOC[l].lat_e6;
        c->lon_e6 = LOC[l].lon_e6;
        c->priority = LOC[l].priority;
        c->channels = web_store;
        c->channel_count = 2;
        c->active = 1;
    }
    for (uint32_t h = 0; h < HOT + REGULAR; h++) {
        trastenda_cmd *c = &d->cmds[n++];
        cmd_clear(c, TRASTENDA_OP_SKU_UPSERT);
        if (h < HOT) {
            c->sku = ref(HOT_SKU[h].id);
            c->name = str(HOT_SKU[h].name);
            c->reorder_point = HOT_REORDER_POINT;
        } else {
            snprintf(regular_id[h - HOT], sizeof(regular_id[0]), "REG-%02u", h - HOT + 1);
            c->sku = ref(regular_id[h - HOT]);
            c->name = str(REGULAR_NAME[h - HOT]);
            c->reorder_point = 50;
        }
        c->reorder_qty = 100;
        c->lead_days = 5;
        c->active = 1;
    }
    apply_setup(d, n, "catalog");
    for (uint32_t l = 0; l < LOCS; l++)
        if (trastenda_engine_location_lookup(d->e, str(LOC[l].id), &d->loc_ix[l]) != TRASTENDA_OK)
            die("location lookup");
    for (uint32_t h = 0; h < HOT; h++)
        if (trastenda_engine_sku_lookup(d->e, str(HOT_SKU[h].id), &d->hot_ix[h]) != TRASTENDA_OK)
            die("sku lookup");
}

static void
shop_stock(struct demo *d)
{
    uint32_t n = 0;
    for (uint32_t s = 0; s < HOT + REGULAR; s++)
        for (uint32_t l = 0; l < LOCS; l++) {
            int32_t qty = s < HOT ? HOT_SKU[s].stock[l] : 1000;
            if (qty == 0) continue;
            trastenda_cmd *c = &d->cmds[n++];
            cmd_clear(c, TRASTENDA_OP_RECEIVE);
            c->sku = ref(s < HOT ? HOT_SKU[s].id : regular_id[s - HOT]);
            c->loc = ref(LOC[l].id);
            c->qty = qty;
            c->reference = str("pre-sale stock");
        }
    apply_setup(d, n, "receive");
}

/* ---- shoppers ---- */

static uint32_t
ms_ticks(int64_t ms)
{
    return (uint32_t)(ms / TICK_MS);
}

static void
shoppers_make(struct demo *d)
{
    for (uint32_t i = 0; i < SHOPPERS; i++) {
        struct shopper *s = &d->shoppers[i];
        uint32_t r = ts_rand_below(&d->rng, 100);
        s->flow = r < 15   ? FLOW_DIRECT
                  : r < 70 ? FLOW_CHECKOUT
                  : r < 88 ? FLOW_RELEASE
                           : FLOW_ABANDON;
        uint32_t w = ts_rand_below(&d->rng, 100), h = 0;
        while (h + 1 < HOT && w >= HOT_SKU[h].weight)
            w -= HOT_SKU[h++].weight;
        s->cart[0] = (trastenda_line){ref(HOT_SKU[h].id), {{NULL, 0}, TRASTENDA_IX_NONE}, 1, 0};
        if (ts_rand_below(&d->rng, 10) == 0) s->cart[0].qty = 2;
        s->cart_n = 1;
        if (ts_rand_below(&d->rng, 100) < 35)
            s->cart[s->cart_n++] =
                (trastenda_line){ref(regular_id[ts_rand_below(&d->rng, REGULAR)]),
                                 {{NULL, 0}, TRASTENDA_IX_NONE},
                                 1 + ts_rand_below(&d->rng, 3),
                                 0};
        uint32_t city = ts_rand_below(&d->rng, CITIES);
        s->lat_e6 = CITY[city].lat_e6 - 50000 + (int32_t)ts_rand_below(&d->rng, 100000);
        s->lon_e6 = CITY[city].lon_e6 - 50000 + (int32_t)ts_rand_below(&d->rng, 100000);
        snprintf(s->key, sizeof(s->key), "rsv-%06u", i);
        snprintf(s->order_id, sizeof(s->order_id), "ORD-%06u", i);
        /* Most shoppers come right at the start (the product of two uniforms peaks at 0), the
         * rest at any time of the sale, and buy what released and expired carts give back. */
        uint64_t u = (uint64_t)ts_rand_below(&d->rng, 1u << 16) << 16;
        if (ts_rand_below(&d->rng, 100) < 70) u = (u >> 16) * ts_rand_below(&d->rng, 1u << 16);
        schedule(d, ms_ticks((int64_t)(u * (uint64_t)SALE_MS >> 32)), i, ACT_ARRIVE);
    }
}

static void
shopper_cmd(const struct demo *d, const struct action *a, trastenda_cmd *c)
{
    const struct shopper *s = &d->shoppers[a->shopper];
    if (a->act == ACT_CONFIRM || a->act == ACT_RELEASE) {
        cmd_clear(c, a->act == ACT_CONFIRM ? TRASTENDA_OP_CONFIRM : TRASTENDA_OP_RELEASE);
        c->hold_id = s->hold_id;
        if (a->act == ACT_CONFIRM) c->order_id = str(s->order_id);
        return;
    }
    if (s->flow == FLOW_DIRECT) {
        cmd_clear(c, TRASTENDA_OP_ORDER_PLACE);
        c->order_id = str(s->order_id); /* the order id is its idempotency key */
    } else {
        cmd_clear(c, TRASTENDA_OP_RESERVE);
        c->key = str(s->key);
        c->ttl_ms = HOLD_TTL_MS;
    }
    c->lines = s->cart;
    c->line_count = s->cart_n;
    c->channel = CH_WEB;
    c->has_ship_to = 1;
    c->lat_e6 = s->lat_e6;
    c->lon_e6 = s->lon_e6;
    c->actor = str("web-checkout");
}

static void
tally_allocs(struct demo *d, const trastenda_result *r)
{
    for (uint32_t i = 0; i < r->alloc_count; i++) {
        const trastenda_alloc *al = &r->allocs[i];
        d->t.units_sold += (uint64_t)al->qty;
        for (uint32_t h = 0; h < HOT; h++)
            for (uint32_t l = 0; l < LOCS; l++)
                if (al->sku_ix == d->hot_ix[h] && al->loc_ix == d->loc_ix[l])
                    d->t.sold[h][l] += (uint64_t)al->qty;
    }
}

_Noreturn static void
unexpected(const struct action *a, const trastenda_result *r)
{
    die("shopper %u action %u: %s: %s", a->shopper, a->act, trastenda_err_name(r->code),
        r->message);
}

/* A retried request must get the first result back, unchanged. */
static void
on_retry(struct demo *d, const struct action *a, const trastenda_result *r)
{
    const struct shopper *s = &d->shoppers[a->shopper];
    uint64_t want = s->flow == FLOW_DIRECT ? s->order_no : s->hold_id;
    d->t.retries++;
    if (r->code != TRASTENDA_OK || !r->duplicate || r->id != want) unexpected(a, r);
    d->t.retries_matched++;
}

/* What the shopper does next after a successful first request. */
static void
follow_up(struct demo *d, uint32_t tick, const struct action *a)
{
    struct shopper *s = &d->shoppers[a->shopper];
    if (ts_rand_below(&d->rng, 100) < 8)
        schedule(d, tick + 1 + ts_rand_below(&d->rng, 3), a->shopper, ACT_RETRY);
    if (s->flow == FLOW_CHECKOUT) {
        int64_t delay = 5000 + ts_rand_below(&d->rng, 55000);
        if (ts_rand_below(&d->rng, 100) < 3) delay += HOLD_TTL_MS; /* a slow checkout: too late */
        schedule(d, tick + ms_ticks(delay), a->shopper, ACT_CONFIRM);
    } else if (s->flow == FLOW_RELEASE) {
        schedule(d, tick + ms_ticks(5000 + ts_rand_below(&d->rng, 85000)), a->shopper, ACT_RELEASE);
    }
}

static void
on_result(struct demo *d, uint32_t tick, const struct action *a, const trastenda_result *r)
{
    struct shopper *s = &d->shoppers[a->shopper];
    switch (a->act) {
    case ACT_RETRY:
        on_retry(d, a, r);
        return;
    case ACT_CONFIRM:
        if (r->code == TRASTENDA_E_HOLD_EXPIRED) {
            d->t.late_confirms++;
            return;
        }
        if (r->code != TRASTENDA_OK || r->duplicate) unexpected(a, r);
        d->t.orders_confirmed++;
        tally_allocs(d, r);
        return;
    case ACT_RELEASE:
        if (r->code != TRASTENDA_OK) unexpected(a, r);
        d->t.released++;
        return;
    }
    d->t.arrivals++;
    bool direct = s->flow == FLOW_DIRECT;
    if (r->code == TRASTENDA_E_SHORT) {
        *(direct ? &d->t.direct_short : &d->t.reserve_short) += 1;
        return;
    }
    if (r->code != TRASTENDA_OK || r->duplicate) unexpected(a, r);
    if (direct) {
        s->order_no = r->id;
        d->t.orders_direct++;
        tally_allocs(d, r);
    } else {
        s->hold_id = r->id;
        d->t.reserves++;
    }
    follow_up(d, tick, a);
}

/* One tick: the actions due, in batches of at most BATCH_MAX commands (an empty batch still
 * advances the clock, which expires due holds). */
static void
run_tick(struct demo *d, uint32_t tick)
{
    d->now_ms = SALE_START_MS + (int64_t)tick * TICK_MS;
    uint32_t a = d->tick_head[tick];
    d->tick_head[tick] = UINT32_MAX;
    do {
        uint32_t n = 0;
        for (; a != UINT32_MAX && n < BATCH_MAX; a = d->acts[a].next, n++) {
            shopper_cmd(d, &d->acts[a], &d->cmds[n]);
            d->cmd_act[n] = a;
        }
        apply(d, n);
        for (uint32_t i = 0; i < n; i++)
            on_result(d, tick, &d->acts[d->cmd_act[i]], &d->res[i]);
    } while (a != UINT32_MAX);
}

/* ---- the report ---- */

static const char *
num(char *buf, size_t cap, uint64_t v)
{
    char raw[32];
    snprintf(raw, sizeof(raw), "%llu", (unsigned long long)v);
    size_t len = strlen(raw), o = 0;
    for (size_t i = 0; i < len && o + 2 < cap; i++) {
        buf[o++] = raw[i];
        if ((len - i - 1) % 3 == 0 && i + 1 < len) buf[o++] = ',';
    }
    buf[o] = 0;
    return buf;
}
#define N(v) num((char[32]){0}, 32, (uint64_t)(v))

static const char *
at(char *buf, size_t cap, int64_t ms)
{
    int64_t rel = ms - SALE_START_MS;
    if (rel < 0 || rel >= 100 * 60000) rel = 0; /* the sale lasts minutes */
    snprintf(buf, cap, "t+%02u:%02u.%03u", (unsigned)(rel / 60000) % 100u,
             (unsigned)(rel / 1000 % 60), (unsigned)(rel % 1000));
    return buf;
}
#define AT(ms) at((char[24]){0}, 24, (ms))

static const char *
event_name(uint8_t kind)
{
    static const char *const names[] = {
        "?",         "LOW_STOCK",    "OUT_OF_STOCK", "BACK_IN_STOCK",
        "SHORTFALL", "HOLD_EXPIRED", "ORDER_STATE"};
    return kind <= TRASTENDA_EVENT_ORDER_STATE ? names[kind] : "?";
}

static void
report_header(void)
{
    printf("Trastenda flash sale: an in-process demo on the engine (trastenda %s)\n\n",
           TRASTENDA_VERSION_STRING);
    printf("Shop      %u locations:\n", LOCS);
    for (uint32_t l = 0; l < LOCS; l++)
        printf("            %-8s %s\n", LOC[l].id, LOC[l].name);
    printf("          %u SKUs, %u of them hot; channels web and store\n", HOT + REGULAR, HOT);
    printf("Sale      %s simulated shoppers over %d min, most at the start; carts held %d min; "
           "a batch every %d ms\n",
           N(SHOPPERS), SALE_MS / 60000, HOLD_TTL_MS / 60000, TICK_MS);
    printf("          55%% reserve then check out, 18%% release their cart, 12%% walk away "
           "(hold expires),\n          15%% order directly; 8%% retry a request with the same "
           "key; 3%% of checkouts come too late\n");
}

static void
report_timeline(const struct demo *d)
{
    printf("\nFirst stock events (the first low and out of stock of each SKU at each location)\n");
    for (uint32_t i = 0; i < d->n_timeline; i++) {
        const struct stock_event *t = &d->timeline[i];
        printf("  %s  %-13s %-12s at %-8s available %lld\n", AT(t->at_ms), event_name(t->kind),
               t->sku, t->loc, (long long)t->available);
    }
}

/* Prints s padded with spaces to width columns (UTF-8: one column per character). */
static void
print_padded(const char *s, int width)
{
    int cols = 0;
    for (const char *p = s; *p; p++)
        cols += ((unsigned char)*p & 0xc0) != 0x80;
    printf("%s%*s", s, width > cols ? width - cols : 0, "");
}

/* Per hot SKU: initial, sold, still held, left; checked against the engine. Returns false on
 * any oversold or inconsistent figure. */
static bool
report_hot(const struct demo *d)
{
    bool ok = true;
    printf("\n%-51s%7s %6s %5s %5s  %s\n", "Hot SKUs", "initial", "sold", "held", "left",
           "sold out everywhere");
    for (uint32_t h = 0; h < HOT; h++) {
        int64_t initial = 0, sold = 0, held = 0, left = 0;
        for (uint32_t l = 0; l < LOCS; l++) {
            trastenda_stock st;
            if (trastenda_engine_stock_read(d->e, d->hot_ix[h], d->loc_ix[l], &st) != TRASTENDA_OK)
                continue; /* no stock there before the sale */
            initial += HOT_SKU[h].stock[l];
            sold += st.committed;
            held += st.held;
            left += st.available > 0 ? st.available : 0;
            /* Design: nothing ever promised beyond what is on the shelf. */
            ok &= st.committed + st.held <= HOT_SKU[h].stock[l] && st.available >= 0;
            ok &= st.on_hand == HOT_SKU[h].stock[l];
            ok &= (uint64_t)st.committed == d->t.sold[h][l];
        }
        printf("  %-11s ", HOT_SKU[h].id);
        print_padded(HOT_SKU[h].name, 36);
        printf(" %7lld %6lld %5lld %5lld  %s\n", (long long)initial, (long long)sold,
               (long long)held, (long long)left, d->all_out_at[h] ? AT(d->all_out_at[h]) : "never");
        ok &= sold <= initial;
    }
    printf("  left: units that carts released or expired after the last shoppers gave back\n");
    printf("  per location (sold/initial):");
    for (uint32_t l = 0; l < LOCS; l++) {
        uint64_t s = 0, i = 0;
        for (uint32_t h = 0; h < HOT; h++)
            s += d->t.sold[h][l], i += (uint64_t)HOT_SKU[h].stock[l];
        printf(" %s %llu/%llu", LOC[l].id, (unsigned long long)s, (unsigned long long)i);
    }
    printf("\n");
    return ok;
}

static void
report_shoppers(const struct demo *d)
{
    const struct tally *t = &d->t;
    printf("\nShoppers  %s arrived\n", N(t->arrivals));
    printf("  carts reserved      %s   (turned away, sold out: %s)\n", N(t->reserves),
           N(t->reserve_short));
    printf("  checked out         %s   (too late, hold expired: %s)\n", N(t->orders_confirmed),
           N(t->late_confirms));
    printf("  carts released      %s\n", N(t->released));
    printf("  holds expired       %s   (walked away, or checked out too late)\n",
           N(t->ev[TRASTENDA_EVENT_HOLD_EXPIRED]));
    printf("  direct orders       %s   (turned away, sold out: %s)\n", N(t->orders_direct),
           N(t->direct_short));
    printf("  retries (same key)  %s, %s answered with the first result (duplicate, same id)\n",
           N(t->retries), N(t->retries_matched));
    printf("Orders taken          %s (%s checked out + %s direct), %s units\n",
           N(t->orders_confirmed + t->orders_direct), N(t->orders_confirmed), N(t->orders_direct),
           N(t->units_sold));
}

static void
report_log(const struct demo *d, double wall_s)
{
    const struct tally *t = &d->t;
    printf("\nEvents    LOW_STOCK %s, OUT_OF_STOCK %s, BACK_IN_STOCK %s, SHORTFALL %s,\n"
           "          HOLD_EXPIRED %s, ORDER_STATE %s\n",
           N(t->ev[1]), N(t->ev[2]), N(t->ev[3]), N(t->ev[4]), N(t->ev[5]), N(t->ev[6]));
    printf("Log       %s batches, %s commands, %s ledger entries, %s events, %.1f MB of entries\n",
           N(t->batches), N(t->commands), N(t->ledger), N(t->events),
           (double)t->entry_bytes / 1048576.0);
    printf("Speed     %s commands in %.3f s of apply time: %s commands/s (small batches: a "
           "flash sale\n          is bursty); %.2f s wall with the replica and event decoding\n",
           N(t->commands), t->apply_s, N((uint64_t)((double)t->commands / t->apply_s)), wall_s);
}

/* ---- main ---- */

static trastenda_engine *
engine_new(void)
{
    trastenda_engine_config cfg;
    trastenda_engine_config_default(&cfg);
    cfg.locations_max = 16;
    cfg.skus_max = 64;
    cfg.stock_max = 256;
    cfg.holds_max = 131072;
    cfg.orders_max = 131072;
    cfg.keys_max = 262144;
    cfg.lines_max = 524288;
    cfg.pos_max = 16;
    cfg.batch_cmds_max = BATCH_MAX;
    trastenda_engine *e;
    trastenda_err err = trastenda_engine_create(&cfg, &e);
    if (err != TRASTENDA_OK) die("engine create: %s", trastenda_err_name(err));
    return e;
}

/* After the sale: time runs on until every open hold has expired. */
static void
drain(struct demo *d)
{
    trastenda_engine_stats st;
    for (uint32_t guard = 0;; guard++) {
        trastenda_engine_stats_get(d->e, &st);
        if (st.holds_open == 0) return;
        if (guard > 100000) die("holds never expired");
        d->now_ms += TICK_MS;
        apply(d, 0);
    }
}

static void
check_line(const char *what, bool ok)
{
    printf("  %-76s %s\n", what, ok ? "OK" : "FAILED");
}

static bool
report_checks(struct demo *d, bool hot_ok)
{
    trastenda_engine_check(d->e); /* aborts on a violated invariant */
    uint64_t a = trastenda_engine_digest(d->e), b = trastenda_engine_digest(d->replica);
    bool ok = hot_ok && a == b && d->t.retries == d->t.retries_matched;
    printf("\nChecks\n");
    check_line("none oversold: per hot SKU and location committed + held <= initial,", hot_ok);
    printf("    available >= 0, on_hand unchanged\n");
    check_line("units sold per (SKU, location) in the results == committed in the engine", hot_ok);
    check_line("every retry got its first result back", d->t.retries == d->t.retries_matched);
    check_line("trastenda_engine_check (the full invariant check)", true);
    char line[96];
    snprintf(line, sizeof(line), "replica rebuilt from the log entries: digest %016llx %s primary",
             (unsigned long long)b, a == b ? "==" : "!=");
    check_line(line, a == b);
    return ok;
}

int
main(void)
{
    static struct demo d;
    d.rng = 0x666c617368ull; /* fixed seed: every run is the same sale */
    d.e = engine_new();
    d.replica = engine_new();
    d.shoppers = calloc(SHOPPERS, sizeof(*d.shoppers));
    d.acts_max = SHOPPERS * 4;
    d.acts = calloc(d.acts_max, sizeof(*d.acts));
    d.tick_head = malloc(TICKS * sizeof(*d.tick_head));
    if (d.shoppers == NULL || d.acts == NULL || d.tick_head == NULL) die("out of memory");
    memset(d.tick_head, 0xff, TICKS * sizeof(*d.tick_head));
    double t0 = mono_s();
    d.now_ms = SALE_START_MS - 3600000; /* an hour before: the shop opens */
    shop_open(&d);
    shop_stock(&d);
    memset(d.t.ev, 0, sizeof(d.t.ev)); /* count the sale's events only */
    d.n_timeline = 0;
    shoppers_make(&d);
    for (uint32_t tick = 0; tick < TICKS; tick++)
        run_tick(&d, tick);
    drain(&d);
    double wall_s = mono_s() - t0;
    report_header();
    report_timeline(&d);
    bool hot_ok = report_hot(&d);
    report_shoppers(&d);
    report_log(&d, wall_s);
    bool ok = report_checks(&d, hot_ok);
    trastenda_engine_destroy(d.e);
    trastenda_engine_destroy(d.replica);
    free(d.shoppers);
    free(d.acts);
    free(d.tick_head);
    (void)CH_STORE;
    return ok ? 0 : 1;
}
