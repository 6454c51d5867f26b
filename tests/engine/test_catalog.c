/*
 * tests/engine/test_catalog.c - engine/catalog.c: locations, SKUs, sales channels, refs and
 * lookups.
 */
#include "helpers.h"

#include <criterion/parameterized.h>

TestSuite(engine_catalog, .init = h_setup, .fini = h_teardown);

/* Available units of sku in the scope (ALL when channel is NULL). */
static int64_t
avail(const char *sku, const char *channel)
{
    int64_t a = -1;
    trastenda_err err = trastenda_engine_availability(
        H.e, h_sku_ix(sku), channel ? TRASTENDA_SCOPE_CHANNEL : TRASTENDA_SCOPE_ALL, h_s(channel),
        &a, NULL, 0, NULL);
    cr_assert_eq(err, TRASTENDA_OK, "availability: %s", trastenda_err_name(err));
    return a;
}

static trastenda_engine_stats
stats(void)
{
    trastenda_engine_stats s;
    trastenda_engine_stats_get(H.e, &s);
    return s;
}

/* ---- locations ---- */

Test(engine_catalog, location_upsert_creates_a_location_found_by_id)
{
    trastenda_cmd c = h_cmd_location("madrid", 40416800, -3703800, 0, NULL, 0);
    H_OK(&c);
    cr_assert_eq(h_records(TRASTENDA_REC_LOCATION), 1);
    uint32_t ix = TRASTENDA_IX_NONE;
    cr_assert_eq(trastenda_engine_location_lookup(H.e, h_s("madrid"), &ix), TRASTENDA_OK);
    cr_assert_eq(ix, 0);
    cr_assert(h_str_eq(trastenda_engine_location_id(H.e, ix), "madrid"));
    cr_assert_eq(stats().locations, 1);
}

Test(engine_catalog, location_upsert_of_a_known_id_updates_it_in_place)
{
    uint32_t ix = h_add_location_at("madrid", 0, 0, 0, "web");
    h_add_sku("tee", 0);
    h_receive("tee", "madrid", 5);
    cr_assert_eq(avail("tee", "web"), 5);
    trastenda_str store[] = {h_s("store")};
    trastenda_cmd c = h_cmd_location("madrid", 1000000, 2000000, 7, store, 1);
    H_OK(&c);
    cr_assert_eq(h_loc_ix("madrid"), ix, "same index");
    cr_assert_eq(stats().locations, 1, "no second location");
    cr_assert_eq(avail("tee", "web"), 0, "channel web no longer served");
    cr_assert_eq(avail("tee", "store"), 5);
}

Test(engine_catalog, location_upsert_inactive_location_counts_for_nothing)
{
    trastenda_cmd c = h_cmd_location("madrid", 0, 0, 0, NULL, 0);
    c.active = 0;
    H_OK(&c);
    h_add_sku("tee", 0);
    h_receive("tee", "madrid", 5);
    cr_assert_eq(avail("tee", NULL), 0);
    cr_assert_eq(h_stock("tee", "madrid").on_hand, 5, "stock still received");
}

Test(engine_catalog, location_deactivate_excludes_it_until_upserted_active)
{
    h_add_location("madrid");
    h_add_location("lugo");
    h_add_sku("tee", 0);
    h_receive("tee", "madrid", 5);
    h_receive("tee", "lugo", 3);
    cr_assert_eq(avail("tee", NULL), 8);
    trastenda_cmd d = h_cmd(TRASTENDA_OP_LOCATION_DEACTIVATE);
    d.loc = h_ref("madrid");
    H_OK(&d);
    cr_assert_eq(h_records(TRASTENDA_REC_LOCATION), 1);
    cr_assert_eq(avail("tee", NULL), 3);
    h_add_location("madrid");
    cr_assert_eq(avail("tee", NULL), 8);
}

Test(engine_catalog, location_deactivate_of_unknown_id_fails)
{
    trastenda_cmd d = h_cmd(TRASTENDA_OP_LOCATION_DEACTIVATE);
    d.loc = h_ref("nowhere");
    trastenda_result r = H_FAIL(&d, TRASTENDA_E_UNKNOWN_LOCATION);
    cr_assert(strstr(r.message, "nowhere") != NULL, "message names the id: %s", r.message);
}

Test(engine_catalog, location_deactivate_without_id_fails)
{
    trastenda_cmd d = h_cmd(TRASTENDA_OP_LOCATION_DEACTIVATE);
    H_FAIL(&d, TRASTENDA_E_INVALID);
}

Test(engine_catalog, location_table_full_names_the_setting)
{
    char id[16];
    for (int i = 0; i < 8; i++) {
        snprintf(id, sizeof(id), "loc-%d", i);
        h_add_location(id);
    }
    trastenda_cmd c = h_cmd_location("one-too-many", 0, 0, 0, NULL, 0);
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_TABLE_FULL);
    cr_assert(strstr(r.message, "locations_max") != NULL, "%s", r.message);
    cr_assert_eq(stats().locations, 8);
    /* A known id is still updated when the table is full. */
    trastenda_cmd u = h_cmd_location("loc-3", 1, 1, 1, NULL, 0);
    H_OK(&u);
}

/* ---- SKUs ---- */

Test(engine_catalog, sku_upsert_creates_a_sku_found_by_id)
{
    trastenda_cmd c = h_cmd_sku("tee", 5, 10, 3, 0);
    c.name = h_s("T-shirt, blue");
    H_OK(&c);
    cr_assert_eq(h_records(TRASTENDA_REC_SKU), 1);
    uint32_t ix = TRASTENDA_IX_NONE;
    cr_assert_eq(trastenda_engine_sku_lookup(H.e, h_s("tee"), &ix), TRASTENDA_OK);
    cr_assert(h_str_eq(trastenda_engine_sku_id(H.e, ix), "tee"));
    cr_assert_eq(stats().skus, 1);
}

Test(engine_catalog, sku_upsert_safety_stock_is_the_default_of_new_records)
{
    h_add_location("madrid");
    trastenda_cmd c = h_cmd_sku("tee", 0, 0, 0, 4);
    H_OK(&c);
    h_receive("tee", "madrid", 10);
    trastenda_stock s = h_stock("tee", "madrid");
    cr_assert_eq(s.safety_stock, 4);
    cr_assert_eq(s.available, 6);
}

Test(engine_catalog, sku_upsert_new_reorder_point_moves_records_into_low_stock)
{
    h_add_location("madrid");
    h_add_sku("tee", 5);
    h_receive("tee", "madrid", 10);
    trastenda_stock page[4];
    uint32_t n = 9;
    uint64_t next = 9;
    cr_assert_eq(trastenda_engine_low_stock(H.e, 0, 4, page, &n, &next), TRASTENDA_OK);
    cr_assert_eq(n, 0, "10 > reorder point 5");
    trastenda_cmd c = h_cmd_sku("tee", 20, 0, 0, 0);
    H_OK(&c);
    cr_assert_eq(h_event_find(TRASTENDA_EVENT_LOW_STOCK, "tee", "madrid", NULL), 1);
    cr_assert_eq(trastenda_engine_low_stock(H.e, 0, 4, page, &n, &next), TRASTENDA_OK);
    cr_assert_eq(n, 1);
    cr_assert_eq(page[0].on_hand, 10);
    c = h_cmd_sku("tee", 5, 0, 0, 0);
    H_OK(&c);
    cr_assert_eq(trastenda_engine_low_stock(H.e, 0, 4, page, &n, &next), TRASTENDA_OK);
    cr_assert_eq(n, 0);
}

Test(engine_catalog, sku_deactivate_refuses_new_holds)
{
    h_add_location("madrid");
    h_add_sku("tee", 0);
    h_receive("tee", "madrid", 10);
    trastenda_cmd d = h_cmd(TRASTENDA_OP_SKU_DEACTIVATE);
    d.sku = h_ref("tee");
    H_OK(&d);
    cr_assert_eq(h_records(TRASTENDA_REC_SKU), 1);
    trastenda_line ln = h_line("tee", "madrid", 1);
    trastenda_cmd rv = h_cmd_reserve(&ln, 1, 60000);
    trastenda_result r = H_FAIL(&rv, TRASTENDA_E_INACTIVE);
    cr_assert_eq(r.line, 0);
    cr_assert_eq(h_stock("tee", "madrid").held, 0);
}

Test(engine_catalog, sku_deactivate_of_unknown_id_fails)
{
    trastenda_cmd d = h_cmd(TRASTENDA_OP_SKU_DEACTIVATE);
    d.sku = h_ref("nothing");
    H_FAIL(&d, TRASTENDA_E_UNKNOWN_SKU);
}

Test(engine_catalog, sku_table_full_names_the_setting)
{
    char id[16];
    for (int i = 0; i < 16; i++) {
        snprintf(id, sizeof(id), "sku-%d", i);
        h_add_sku(id, 0);
    }
    trastenda_cmd c = h_cmd_sku("one-too-many", 0, 0, 0, 0);
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_TABLE_FULL);
    cr_assert(strstr(r.message, "skus_max") != NULL, "%s", r.message);
    cr_assert_eq(stats().skus, 16);
    trastenda_cmd u = h_cmd_sku("sku-0", 1, 1, 1, 1);
    H_OK(&u);
}

/* ---- channels ---- */

Test(engine_catalog, channels_are_registered_once_and_scope_availability)
{
    h_add_location_at("madrid", 0, 0, 0, "web,store");
    cr_assert_eq(h_records(TRASTENDA_REC_CHANNEL), 2);
    h_add_location_at("lugo", 0, 0, 0, "store");
    cr_assert_eq(h_records(TRASTENDA_REC_CHANNEL), 0, "store was known");
    h_add_sku("tee", 0);
    h_receive("tee", "madrid", 5);
    h_receive("tee", "lugo", 3);
    cr_assert_eq(avail("tee", "web"), 5);
    cr_assert_eq(avail("tee", "store"), 8);
    cr_assert_eq(avail("tee", NULL), 8);
}

Test(engine_catalog, channel_repeated_in_one_command_counts_once)
{
    trastenda_str ch[] = {h_s("web"), h_s("web"), h_s("store"), h_s("web")};
    trastenda_cmd c = h_cmd_location("madrid", 0, 0, 0, ch, 4);
    H_OK(&c);
    cr_assert_eq(h_records(TRASTENDA_REC_CHANNEL), 2);
}

/* names[i] = "ch-<i>" for first..first+n-1. */
static void
channel_names(char names[][16], trastenda_str *out, uint32_t first, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        snprintf(names[i], 16, "ch-%u", first + i);
        out[i] = h_s(names[i]);
    }
}

Test(engine_catalog, channels_up_to_32_are_known_then_a_new_one_is_refused)
{
    char names[TRASTENDA_CHANNELS_MAX][16];
    trastenda_str ch[TRASTENDA_CHANNELS_MAX];
    channel_names(names, ch, 0, TRASTENDA_CHANNELS_MAX);
    trastenda_cmd c = h_cmd_location("madrid", 0, 0, 0, ch, TRASTENDA_CHANNELS_MAX);
    H_OK(&c);
    cr_assert_eq(h_records(TRASTENDA_REC_CHANNEL), TRASTENDA_CHANNELS_MAX);

    trastenda_str fresh[] = {h_s("ch-0"), h_s("one-more")};
    trastenda_cmd d = h_cmd_location("lugo", 0, 0, 0, fresh, 2);
    trastenda_result r = H_FAIL(&d, TRASTENDA_E_LIMIT);
    cr_assert(strstr(r.message, "32") != NULL, "%s", r.message);
    cr_assert_eq(stats().locations, 1, "lugo not created");

    /* Known channels only: fine. */
    trastenda_cmd k = h_cmd_location("lugo", 0, 0, 0, ch + 30, 2);
    H_OK(&k);
}

Test(engine_catalog, channels_repeated_new_name_at_the_limit_counts_once)
{
    char names[TRASTENDA_CHANNELS_MAX][16];
    trastenda_str ch[TRASTENDA_CHANNELS_MAX];
    channel_names(names, ch, 0, TRASTENDA_CHANNELS_MAX - 1);
    trastenda_cmd c = h_cmd_location("madrid", 0, 0, 0, ch, TRASTENDA_CHANNELS_MAX - 1);
    H_OK(&c);
    trastenda_str last[] = {h_s("last"), h_s("last"), h_s("last")};
    trastenda_cmd d = h_cmd_location("lugo", 0, 0, 0, last, 3);
    H_OK(&d);
    /* The channel table's image lists every known channel: 31 + "last" once. */
    cr_assert_eq(h_records(TRASTENDA_REC_CHANNEL), TRASTENDA_CHANNELS_MAX);
    trastenda_str more[] = {h_s("more")};
    trastenda_cmd m = h_cmd_location("vigo", 0, 0, 0, more, 1);
    H_FAIL(&m, TRASTENDA_E_LIMIT);
}

Test(engine_catalog, channel_count_above_32_in_one_command_is_refused)
{
    char names[TRASTENDA_CHANNELS_MAX + 1][16];
    trastenda_str ch[TRASTENDA_CHANNELS_MAX + 1];
    channel_names(names, ch, 0, TRASTENDA_CHANNELS_MAX + 1);
    trastenda_cmd c = h_cmd_location("madrid", 0, 0, 0, ch, TRASTENDA_CHANNELS_MAX + 1);
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_LIMIT);
    cr_assert(strstr(r.message, "channels") != NULL, "%s", r.message);
    cr_assert_eq(stats().locations, 0);
}

Test(engine_catalog, channels_null_with_a_count_is_refused)
{
    trastenda_cmd c = h_cmd_location("madrid", 0, 0, 0, NULL, 2);
    H_FAIL(&c, TRASTENDA_E_INVALID);
}

Test(engine_catalog, channel_with_empty_or_bad_name_is_refused)
{
    trastenda_str empty[] = {h_s("web"), h_s("")};
    trastenda_cmd c = h_cmd_location("madrid", 0, 0, 0, empty, 2);
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_INVALID);
    cr_assert(strstr(r.message, "channel") != NULL, "%s", r.message);
    trastenda_str ctl[] = {h_s("w\teb")};
    c = h_cmd_location("madrid", 0, 0, 0, ctl, 1);
    H_FAIL(&c, TRASTENDA_E_INVALID);
    cr_assert_eq(stats().locations, 0);
    cr_assert_eq(h_records(TRASTENDA_REC_CHANNEL), 0, "no channel registered by a failure");
}

Test(engine_catalog, availability_of_an_unknown_channel_is_invalid)
{
    h_add_location_at("madrid", 0, 0, 0, "web");
    h_add_sku("tee", 0);
    int64_t a;
    cr_assert_eq(trastenda_engine_availability(H.e, h_sku_ix("tee"), TRASTENDA_SCOPE_CHANNEL,
                                               h_s("fax"), &a, NULL, 0, NULL),
                 TRASTENDA_E_INVALID);
}

/* ---- bad input: every field of the upserts ---- */

enum which {
    W_LOCATION,
    W_SKU
};

enum field {
    F_ID,
    F_NAME,
    F_LAT,
    F_LON,
    F_PRIORITY,
    F_REORDER_POINT,
    F_REORDER_QTY,
    F_LEAD_DAYS,
    F_SAFETY
};

struct bad_case {
    int which;
    int field;
    int64_t num;        /* numeric fields */
    int text;           /* id/name: index into bad_texts */
    trastenda_err code; /* expected */
    char needle[24];    /* must appear in the message */
};

/* Texts by index (params stay plain data). */
static const char *const bad_texts[] = {
    "",                                                                  /* 0: missing */
    "0123456789012345678901234567890123456789012345678901234567890123X", /* 1: 65 bytes */
    "bad\xc3",                                                           /* 2: truncated UTF-8 */
    "bad\xff",                                                           /* 3: invalid byte */
    "tab\there",                                                         /* 4: control char */
    "del\x7f",                                                           /* 5: DEL */
    "c1\xc2\x85",                                                        /* 6: C1 control NEL */
    "over\xc0\xaf",                                                      /* 7: overlong '/' */
};

static trastenda_cmd
bad_cmd(const struct bad_case *b, char *long_name)
{
    trastenda_cmd c = b->which == W_LOCATION ? h_cmd_location("madrid", 0, 0, 0, NULL, 0)
                                             : h_cmd_sku("tee", 0, 0, 0, 0);
    trastenda_str text = h_s(bad_texts[b->text]);
    switch (b->field) {
    case F_ID:
        if (b->which == W_LOCATION)
            c.loc.id = text;
        else
            c.sku.id = text;
        break;
    case F_NAME:
        memset(long_name, 'n', TRASTENDA_NAME_BYTES_MAX + 1);
        long_name[TRASTENDA_NAME_BYTES_MAX + 1] = 0;
        c.name = b->text == 1 ? h_s(long_name) : text;
        break;
    case F_LAT:
        c.lat_e6 = (int32_t)b->num;
        break;
    case F_LON:
        c.lon_e6 = (int32_t)b->num;
        break;
    case F_PRIORITY:
        c.priority = (int32_t)b->num;
        break;
    case F_REORDER_POINT:
        c.reorder_point = b->num;
        break;
    case F_REORDER_QTY:
        c.reorder_qty = b->num;
        break;
    case F_LEAD_DAYS:
        c.lead_days = (int32_t)b->num;
        break;
    case F_SAFETY:
        c.safety_stock = b->num;
        break;
    }
    return c;
}

#define E_INV TRASTENDA_E_INVALID
#define E_LIM TRASTENDA_E_LIMIT

ParameterizedTestParameters(engine_catalog, upsert_bad_field_is_refused_naming_it)
{
    static struct bad_case cases[] = {
        {W_LOCATION, F_ID, 0, 0, E_INV, "location is required"},
        {W_LOCATION, F_ID, 0, 1, E_LIM, "(got 65)"},
        {W_LOCATION, F_ID, 0, 2, E_INV, "UTF-8"},
        {W_LOCATION, F_ID, 0, 3, E_INV, "UTF-8"},
        {W_LOCATION, F_ID, 0, 4, E_INV, "control"},
        {W_LOCATION, F_ID, 0, 5, E_INV, "control"},
        {W_LOCATION, F_ID, 0, 6, E_INV, "control"},
        {W_LOCATION, F_ID, 0, 7, E_INV, "UTF-8"},
        {W_LOCATION, F_NAME, 0, 1, E_LIM, "name must be 1..128"},
        {W_LOCATION, F_NAME, 0, 3, E_INV, "name"},
        {W_LOCATION, F_LAT, 90000001, 0, E_INV, "lat_e6"},
        {W_LOCATION, F_LAT, -90000001, 0, E_INV, "lat_e6"},
        {W_LOCATION, F_LON, 180000001, 0, E_INV, "lon_e6"},
        {W_LOCATION, F_LON, -180000001, 0, E_INV, "lon_e6"},
        {W_LOCATION, F_PRIORITY, 1000001, 0, E_INV, "priority"},
        {W_LOCATION, F_PRIORITY, -1000001, 0, E_INV, "priority"},
        {W_SKU, F_ID, 0, 0, E_INV, "sku is required"},
        {W_SKU, F_ID, 0, 1, E_LIM, "(got 65)"},
        {W_SKU, F_ID, 0, 2, E_INV, "UTF-8"},
        {W_SKU, F_ID, 0, 4, E_INV, "control"},
        {W_SKU, F_ID, 0, 7, E_INV, "UTF-8"},
        {W_SKU, F_NAME, 0, 1, E_LIM, "name must be 1..128"},
        {W_SKU, F_NAME, 0, 4, E_INV, "name"},
        {W_SKU, F_REORDER_POINT, -1, 0, E_INV, "reorder_point"},
        {W_SKU, F_REORDER_POINT, TRASTENDA_QTY_MAX + 1ll, 0, E_INV, "reorder_point"},
        {W_SKU, F_REORDER_QTY, -1, 0, E_INV, "reorder_qty"},
        {W_SKU, F_REORDER_QTY, TRASTENDA_QTY_MAX + 1ll, 0, E_INV, "reorder_qty"},
        {W_SKU, F_LEAD_DAYS, -1, 0, E_INV, "lead_days"},
        {W_SKU, F_LEAD_DAYS, TRASTENDA_LEAD_DAYS_MAX + 1, 0, E_INV, "lead_days"},
        {W_SKU, F_SAFETY, -1, 0, E_INV, "safety_stock"},
        {W_SKU, F_SAFETY, TRASTENDA_QTY_MAX + 1ll, 0, E_INV, "safety_stock"},
    };
    return cr_make_param_array(struct bad_case, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct bad_case *b, engine_catalog, upsert_bad_field_is_refused_naming_it)
{
    char long_name[TRASTENDA_NAME_BYTES_MAX + 2];
    trastenda_cmd c = bad_cmd(b, long_name);
    trastenda_result r = h_apply(&c);
    cr_assert_eq(r.code, b->code, "field %d: want %s, got %s (%s)", b->field,
                 trastenda_err_name(b->code), trastenda_err_name(r.code), r.message);
    cr_assert(strstr(r.message, b->needle) != NULL, "message '%s' lacks '%s'", r.message,
              b->needle);
    /* No trace: nothing created, no post-image, no ledger entry. */
    cr_assert_eq(stats().locations + stats().skus, 0);
    cr_assert_eq(h_records(TRASTENDA_REC_LOCATION) + h_records(TRASTENDA_REC_SKU), 0);
    cr_assert_eq(H.out.ledger_count, 0);
}

Test(engine_catalog, upsert_limits_themselves_are_accepted)
{
    char id[TRASTENDA_ID_BYTES_MAX + 1];
    memset(id, 'x', TRASTENDA_ID_BYTES_MAX);
    id[TRASTENDA_ID_BYTES_MAX] = 0;
    char name[TRASTENDA_NAME_BYTES_MAX + 1];
    memset(name, 'n', TRASTENDA_NAME_BYTES_MAX);
    name[TRASTENDA_NAME_BYTES_MAX] = 0;
    trastenda_cmd l = h_cmd_location(id, 90000000, -180000000, -1000000, NULL, 0);
    l.name = h_s(name);
    H_OK(&l);
    trastenda_cmd s = h_cmd_sku("\xe2\x82\xac-euro-\xf0\x9f\x98\x80", TRASTENDA_QTY_MAX,
                                TRASTENDA_QTY_MAX, TRASTENDA_LEAD_DAYS_MAX, TRASTENDA_QTY_MAX);
    s.name = h_s(name);
    H_OK(&s);
    cr_assert_eq(h_loc_ix(id), 0);
    cr_assert_eq(h_sku_ix("\xe2\x82\xac-euro-\xf0\x9f\x98\x80"), 0);
}

/* ---- refs by index ---- */

Test(engine_catalog, ref_index_hint_resolves_without_the_id)
{
    uint32_t loc = h_add_location("madrid");
    uint32_t sku = h_add_sku("tee", 0);
    trastenda_cmd c = h_cmd(TRASTENDA_OP_RECEIVE);
    c.sku = h_ref_ix(sku);
    c.loc = h_ref_ix(loc);
    c.qty = 4;
    H_OK(&c);
    cr_assert_eq(h_stock("tee", "madrid").on_hand, 4);
}

Test(engine_catalog, ref_index_hint_out_of_range_is_unknown)
{
    uint32_t loc = h_add_location("madrid");
    uint32_t sku = h_add_sku("tee", 0);
    trastenda_cmd c = h_cmd(TRASTENDA_OP_RECEIVE);
    c.qty = 4;
    c.sku = h_ref_ix(sku + 1);
    c.loc = h_ref_ix(loc);
    trastenda_result r = H_FAIL(&c, TRASTENDA_E_UNKNOWN_SKU);
    cr_assert(strstr(r.message, "index 1") != NULL, "%s", r.message);
    c.sku = h_ref_ix(sku);
    c.loc = h_ref_ix(loc + 1);
    H_FAIL(&c, TRASTENDA_E_UNKNOWN_LOCATION);
    trastenda_cmd d = h_cmd(TRASTENDA_OP_LOCATION_DEACTIVATE);
    d.loc = h_ref_ix(UINT32_MAX - 1);
    H_FAIL(&d, TRASTENDA_E_UNKNOWN_LOCATION);
    trastenda_cmd s = h_cmd(TRASTENDA_OP_SKU_DEACTIVATE);
    s.sku = h_ref_ix(7);
    H_FAIL(&s, TRASTENDA_E_UNKNOWN_SKU);
}

Test(engine_catalog, ref_by_unknown_id_is_unknown)
{
    h_add_location("madrid");
    h_add_sku("tee", 0);
    trastenda_cmd c = h_cmd_stock(TRASTENDA_OP_RECEIVE, "shirt", "madrid", 1);
    H_FAIL(&c, TRASTENDA_E_UNKNOWN_SKU);
    c = h_cmd_stock(TRASTENDA_OP_RECEIVE, "tee", "paris", 1);
    H_FAIL(&c, TRASTENDA_E_UNKNOWN_LOCATION);
}

/* ---- lookups ---- */

Test(engine_catalog, lookup_of_unknown_ids_fails)
{
    h_add_location("madrid");
    h_add_sku("tee", 0);
    uint32_t ix = 77;
    cr_assert_eq(trastenda_engine_sku_lookup(H.e, h_s("madrid"), &ix), TRASTENDA_E_UNKNOWN_SKU);
    cr_assert_eq(trastenda_engine_location_lookup(H.e, h_s("tee"), &ix),
                 TRASTENDA_E_UNKNOWN_LOCATION);
    cr_assert_eq(trastenda_engine_sku_lookup(H.e, h_s(""), &ix), TRASTENDA_E_UNKNOWN_SKU);
}

Test(engine_catalog, lookup_rejects_bad_arguments)
{
    uint32_t ix;
    cr_assert_eq(trastenda_engine_sku_lookup(H.e, h_s(bad_texts[1]), &ix), TRASTENDA_E_INVALID);
    cr_assert_eq(trastenda_engine_location_lookup(H.e, h_s(bad_texts[1]), &ix),
                 TRASTENDA_E_INVALID);
    cr_assert_eq(trastenda_engine_sku_lookup(H.e, h_s("tee"), NULL), TRASTENDA_E_INVALID);
    cr_assert_eq(trastenda_engine_location_lookup(NULL, h_s("tee"), &ix), TRASTENDA_E_INVALID);
}

Test(engine_catalog, lookups_find_each_of_many_ids)
{
    char id[16];
    for (int i = 0; i < 16; i++) {
        snprintf(id, sizeof(id), "sku-%d", i);
        cr_assert_eq(h_add_sku(id, 0), (uint32_t)i, "indices are dense, in creation order");
    }
    for (int i = 0; i < 8; i++) {
        snprintf(id, sizeof(id), "loc-%d", i);
        cr_assert_eq(h_add_location(id), (uint32_t)i);
    }
    for (int i = 15; i >= 0; i--) {
        snprintf(id, sizeof(id), "sku-%d", i);
        cr_assert_eq(h_sku_ix(id), (uint32_t)i);
        cr_assert(h_str_eq(trastenda_engine_sku_id(H.e, (uint32_t)i), id));
    }
    for (int i = 7; i >= 0; i--) {
        snprintf(id, sizeof(id), "loc-%d", i);
        cr_assert_eq(h_loc_ix(id), (uint32_t)i);
        cr_assert(h_str_eq(trastenda_engine_location_id(H.e, (uint32_t)i), id));
    }
}

Test(engine_catalog, sku_id_of_an_index_past_the_end_aborts, .signal = SIGABRT)
{
    h_add_sku("tee", 0);
    (void)trastenda_engine_sku_id(H.e, 1);
}
