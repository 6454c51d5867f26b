/*
 * engine/catalog.c - locations, SKUs and sales channels.
 *
 * These tables are insert-only (deactivation is a flag), so their maps and entries are read
 * lock-free from any thread (eng.h Design note 3). Tables are preallocated; a full one is an
 * error naming the setting to raise.
 */
#include <string.h>

#include "eng.h"

static int
sku_eq(const void *ctx, uint32_t ix, const void *key)
{
    const trastenda_engine *e = ctx;
    return eng_id_eq(&e->skus[ix].id, *(const trastenda_str *)key);
}

static int
loc_eq(const void *ctx, uint32_t ix, const void *key)
{
    const trastenda_engine *e = ctx;
    return eng_id_eq(&e->locs[ix].id, *(const trastenda_str *)key);
}

uint32_t
eng_sku_find(const trastenda_engine *e, trastenda_str id)
{
    uint32_t ix;
    ENG_MAP_FIND(&e->sku_map, eng_str_hash(id), sku_eq, e, &id, ix);
    return ix;
}

uint32_t
eng_location_find(const trastenda_engine *e, trastenda_str id)
{
    uint32_t ix;
    ENG_MAP_FIND(&e->loc_map, eng_str_hash(id), loc_eq, e, &id, ix);
    return ix;
}

uint32_t
eng_channel_find(const trastenda_engine *e, trastenda_str name)
{
    uint32_t n = __atomic_load_n(&e->channel_count, __ATOMIC_ACQUIRE);
    for (uint32_t i = 0; i < n; i++)
        if (eng_id_eq(&e->channels[i], name)) return i;
    return ENG_NONE;
}

uint32_t
eng_channel_insert(trastenda_engine *e, trastenda_str name)
{
    TS_ASSERT(e->channel_count < TRASTENDA_CHANNELS_MAX);
    TS_ASSERT(eng_channel_find(e, name) == ENG_NONE);
    uint32_t ix = e->channel_count;
    eng_id_set(&e->channels[ix], name);
    __atomic_store_n(&e->channel_count, ix + 1, __ATOMIC_RELEASE);
    e->channel_dirty = 1;
    return ix;
}

trastenda_err
eng_channel_resolve(const trastenda_engine *e, trastenda_str name, bool required,
                    trastenda_result *r, uint8_t *ch)
{
    *ch = 0;
    trastenda_err err = eng_id_check(name, "channel", required, r);
    if (err != TRASTENDA_OK || name.len == 0) return err;
    uint32_t ix = eng_channel_find(e, name);
    if (ix == ENG_NONE)
        return eng_fail(r, TRASTENDA_E_INVALID, "channel '%.*s' is served by no location",
                        (int)name.len, name.ptr);
    *ch = (uint8_t)(ix + 1);
    return TRASTENDA_OK;
}

static trastenda_err
ref_resolve(const trastenda_engine *e, const trastenda_ref *ref, const char *field,
            trastenda_result *r, uint32_t *ix, bool sku)
{
    uint32_t count = __atomic_load_n(sku ? &e->sku_count : &e->loc_count, __ATOMIC_ACQUIRE);
    trastenda_err unknown = sku ? TRASTENDA_E_UNKNOWN_SKU : TRASTENDA_E_UNKNOWN_LOCATION;
    if (ref->ix != TRASTENDA_IX_NONE) {
        if (ref->ix >= count)
            return eng_fail(r, unknown, "%s index %u is not a known %s", field, ref->ix,
                            sku ? "sku" : "location");
        *ix = ref->ix;
        TS_DEBUG_ASSERT(ref->id.len == 0 ||
                        eng_id_eq(sku ? &e->skus[*ix].id : &e->locs[*ix].id, ref->id));
        return TRASTENDA_OK;
    }
    trastenda_err err = eng_id_check(ref->id, field, true, r);
    if (err != TRASTENDA_OK) return err;
    *ix = sku ? eng_sku_find(e, ref->id) : eng_location_find(e, ref->id);
    if (*ix == ENG_NONE)
        return eng_fail(r, unknown, "%s '%.*s' is unknown", field, (int)ref->id.len, ref->id.ptr);
    return TRASTENDA_OK;
}

trastenda_err
eng_sku_resolve(const trastenda_engine *e, const trastenda_ref *ref, const char *field,
                trastenda_result *r, uint32_t *ix)
{
    return ref_resolve(e, ref, field, r, ix, true);
}

trastenda_err
eng_location_resolve(const trastenda_engine *e, const trastenda_ref *ref, const char *field,
                     trastenda_result *r, uint32_t *ix)
{
    return ref_resolve(e, ref, field, r, ix, false);
}

uint32_t
eng_location_insert(trastenda_engine *e, trastenda_str id)
{
    TS_ASSERT(e->loc_count < e->cfg.locations_max);
    uint32_t ix = e->loc_count;
    struct eng_location *l = &e->locs[ix];
    memset(l, 0, sizeof(*l));
    eng_id_set(&l->id, id);
    eng_location_set_vec(l);
    eng_map_insert(&e->loc_map, eng_str_hash(id), ix);
    __atomic_store_n(&e->loc_count, ix + 1, __ATOMIC_RELEASE);
    return ix;
}

uint32_t
eng_sku_insert(trastenda_engine *e, trastenda_str id)
{
    TS_ASSERT(e->sku_count < e->cfg.skus_max);
    uint32_t ix = e->sku_count;
    struct eng_sku *s = &e->skus[ix];
    memset(s, 0, sizeof(*s));
    eng_id_set(&s->id, id);
    s->first_stock = ENG_NONE;
    eng_map_insert(&e->sku_map, eng_str_hash(id), ix);
    __atomic_store_n(&e->sku_count, ix + 1, __ATOMIC_RELEASE);
    return ix;
}

void
eng_location_set_vec(struct eng_location *l)
{
    eng_geo_vec(l->lat_e6, l->lon_e6, l->vec);
}

/* Validates the channels of a location upsert; *fresh counts those not yet known. */
static trastenda_err
channels_check(const trastenda_engine *e, const trastenda_cmd *c, trastenda_result *r,
               uint32_t *fresh)
{
    *fresh = 0;
    if (c->channel_count > TRASTENDA_CHANNELS_MAX)
        return eng_fail(r, TRASTENDA_E_LIMIT, "channels must be 0..%u (got %u)",
                        TRASTENDA_CHANNELS_MAX, c->channel_count);
    if (c->channel_count > 0 && c->channels == NULL)
        return eng_fail(r, TRASTENDA_E_INVALID, "channels is NULL");
    for (uint32_t i = 0; i < c->channel_count; i++) {
        trastenda_err err = eng_id_check(c->channels[i], "channel", true, r);
        if (err != TRASTENDA_OK) return err;
        bool seen = false;
        for (uint32_t j = 0; j < i; j++)
            if (eng_str_cmp(c->channels[i], c->channels[j]) == 0) seen = true;
        if (!seen && eng_channel_find(e, c->channels[i]) == ENG_NONE) (*fresh)++;
    }
    if (e->channel_count + *fresh > TRASTENDA_CHANNELS_MAX)
        return eng_fail(r, TRASTENDA_E_LIMIT, "channels known must be at most %u (would be %u)",
                        TRASTENDA_CHANNELS_MAX, e->channel_count + *fresh);
    return TRASTENDA_OK;
}

static trastenda_err
location_check(const trastenda_engine *e, const trastenda_cmd *c, trastenda_result *r, uint32_t *ix)
{
    trastenda_err err = eng_id_check(c->loc.id, "location", true, r);
    if (err == TRASTENDA_OK) err = eng_name_check(c->name, "name", r);
    if (err == TRASTENDA_OK) err = eng_qty_check(c->lat_e6, -90000000, 90000000, "lat_e6", r);
    if (err == TRASTENDA_OK) err = eng_qty_check(c->lon_e6, -180000000, 180000000, "lon_e6", r);
    if (err == TRASTENDA_OK) err = eng_qty_check(c->priority, -1000000, 1000000, "priority", r);
    if (err != TRASTENDA_OK) return err;
    uint32_t fresh;
    err = channels_check(e, c, r, &fresh);
    if (err != TRASTENDA_OK) return err;
    *ix = eng_location_find(e, c->loc.id);
    if (*ix == ENG_NONE && e->loc_count >= e->cfg.locations_max)
        return eng_fail(r, TRASTENDA_E_TABLE_FULL, "locations table full (%u); raise locations_max",
                        e->cfg.locations_max);
    return TRASTENDA_OK;
}

trastenda_err
eng_cmd_location_upsert(trastenda_engine *e, const trastenda_cmd *c, trastenda_result *r)
{
    uint32_t ix;
    trastenda_err err = location_check(e, c, r, &ix);
    if (err != TRASTENDA_OK) return err;
    if (ix == ENG_NONE) ix = eng_location_insert(e, c->loc.id);
    uint32_t mask = 0;
    for (uint32_t i = 0; i < c->channel_count; i++) {
        uint32_t ch = eng_channel_find(e, c->channels[i]);
        if (ch == ENG_NONE) ch = eng_channel_insert(e, c->channels[i]);
        mask |= 1u << ch;
    }
    struct eng_location *l = &e->locs[ix];
    eng_name_set(&l->name, c->name);
    l->lat_e6 = c->lat_e6;
    l->lon_e6 = c->lon_e6;
    l->priority = c->priority;
    eng_location_set_vec(l);
    __atomic_store_n(&l->channels, mask, __ATOMIC_RELEASE);
    __atomic_store_n(&l->active, (uint8_t)(c->active != 0), __ATOMIC_RELEASE);
    eng_dirty_mark(e, TRASTENDA_REC_LOCATION, ix, &l->dirty);
    TS_ASSERT(eng_location_find(e, c->loc.id) == ix);
    return TRASTENDA_OK;
}

trastenda_err
eng_cmd_location_deactivate(trastenda_engine *e, const trastenda_cmd *c, trastenda_result *r)
{
    uint32_t ix;
    trastenda_err err = eng_location_resolve(e, &c->loc, "location", r, &ix);
    if (err != TRASTENDA_OK) return err;
    __atomic_store_n(&e->locs[ix].active, (uint8_t)0, __ATOMIC_RELEASE);
    eng_dirty_mark(e, TRASTENDA_REC_LOCATION, ix, &e->locs[ix].dirty);
    return TRASTENDA_OK;
}

static trastenda_err
sku_check(const trastenda_engine *e, const trastenda_cmd *c, trastenda_result *r, uint32_t *ix)
{
    trastenda_err err = eng_id_check(c->sku.id, "sku", true, r);
    if (err == TRASTENDA_OK) err = eng_name_check(c->name, "name", r);
    if (err == TRASTENDA_OK)
        err = eng_qty_check(c->reorder_point, 0, TRASTENDA_QTY_MAX, "reorder_point", r);
    if (err == TRASTENDA_OK)
        err = eng_qty_check(c->reorder_qty, 0, TRASTENDA_QTY_MAX, "reorder_qty", r);
    if (err == TRASTENDA_OK)
        err = eng_qty_check(c->lead_days, 0, TRASTENDA_LEAD_DAYS_MAX, "lead_days", r);
    if (err == TRASTENDA_OK)
        err = eng_qty_check(c->safety_stock, 0, TRASTENDA_QTY_MAX, "safety_stock", r);
    if (err != TRASTENDA_OK) return err;
    *ix = eng_sku_find(e, c->sku.id);
    if (*ix == ENG_NONE && e->sku_count >= e->cfg.skus_max)
        return eng_fail(r, TRASTENDA_E_TABLE_FULL, "skus table full (%u); raise skus_max",
                        e->cfg.skus_max);
    return TRASTENDA_OK;
}

trastenda_err
eng_cmd_sku_upsert(trastenda_engine *e, const trastenda_cmd *c, trastenda_result *r)
{
    uint32_t ix;
    trastenda_err err = sku_check(e, c, r, &ix);
    if (err != TRASTENDA_OK) return err;
    if (ix == ENG_NONE) ix = eng_sku_insert(e, c->sku.id);
    struct eng_sku *s = &e->skus[ix];
    eng_name_set(&s->name, c->name);
    s->reorder_point = (int32_t)c->reorder_point;
    s->reorder_qty = (int32_t)c->reorder_qty;
    s->lead_days = c->lead_days;
    s->safety_default = (int32_t)c->safety_stock;
    s->active = c->active != 0;
    eng_dirty_mark(e, TRASTENDA_REC_SKU, ix, &s->dirty);
    /* A new reorder point moves records in or out of the low-stock index. */
    uint32_t n = 0;
    for (uint32_t rec = s->first_stock; rec != ENG_NONE; rec = e->stock[rec].next_in_sku) {
        TS_ASSERT(n++ < e->cfg.locations_max);
        eng_stock_flags_update(e, rec);
    }
    return TRASTENDA_OK;
}

trastenda_err
eng_cmd_sku_deactivate(trastenda_engine *e, const trastenda_cmd *c, trastenda_result *r)
{
    uint32_t ix;
    trastenda_err err = eng_sku_resolve(e, &c->sku, "sku", r, &ix);
    if (err != TRASTENDA_OK) return err;
    e->skus[ix].active = 0;
    eng_dirty_mark(e, TRASTENDA_REC_SKU, ix, &e->skus[ix].dirty);
    return TRASTENDA_OK;
}
