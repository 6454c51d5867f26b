/*
 * tests/engine/test_base.c - the small pieces under the engine, through the internal headers:
 * the hash index (map.c), the three-level bit set (table.c), pools and FIFOs, id validation
 * (str.c), distances (geo.c), the allocation seam and assertions (base.c), error names.
 */
#include "helpers.h"

#include "eng.h"
#include "map.h"

TestSuite(engine_base);

/* A small deterministic generator (xorshift). */
static uint32_t
rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return (uint32_t)(*s >> 11);
}

/* ---- map ---- */

#define MAP_N 64

struct map_fixture {
    uint32_t key[MAP_N]; /* entry ix -> key */
    bool present[MAP_N];
};

static int
key_eq(const void *ctx, uint32_t ix, const void *key)
{
    const struct map_fixture *f = ctx;
    return f->present[ix] && f->key[ix] == *(const uint32_t *)key;
}

/* Few distinct hashes, homes near the end of the slot array: long runs that wrap around. */
static uint32_t
clumpy_hash(uint32_t key)
{
    return 0xffffff00u | (120u + key % 11u);
}

static uint32_t
map_find(const struct eng_map *m, const struct map_fixture *f, uint32_t key)
{
    uint32_t ix;
    ENG_MAP_FIND(m, clumpy_hash(key), key_eq, f, &key, ix);
    return ix;
}

Test(engine_base, map_remove_keeps_the_rest_of_a_probe_run_findable)
{
    struct eng_map m;
    cr_assert_eq(eng_map_init(&m, MAP_N), TRASTENDA_OK);
    struct map_fixture f = {{0}, {0}};
    /* Keys 0, 11, 22, 33 share a home; 1 and 12 the next one: one run. */
    uint32_t keys[] = {0, 11, 1, 22, 12, 33};
    for (uint32_t i = 0; i < 6; i++) {
        f.key[i] = keys[i];
        f.present[i] = true;
        eng_map_insert(&m, clumpy_hash(keys[i]), i);
    }
    for (uint32_t i = 0; i < 6; i++)
        cr_assert_eq(map_find(&m, &f, keys[i]), i);
    uint32_t order[] = {1, 0, 4, 3, 5, 2};
    for (uint32_t k = 0; k < 6; k++) {
        uint32_t gone = order[k];
        eng_map_remove(&m, clumpy_hash(keys[gone]), gone);
        f.present[gone] = false;
        cr_assert_eq(map_find(&m, &f, keys[gone]), ENG_MAP_NONE);
        for (uint32_t i = 0; i < 6; i++)
            if (f.present[i])
                cr_assert_eq(map_find(&m, &f, keys[i]), i, "key %u lost after removing %u", keys[i],
                             keys[gone]);
    }
    cr_assert_eq(m.count, 0);
    for (uint32_t i = 0; i <= m.mask; i++)
        cr_assert_eq(m.slots[i], 0, "slot %u left dirty", i);
    eng_map_fini(&m);
}

Test(engine_base, map_matches_a_brute_force_array_under_random_inserts_and_removes)
{
    struct eng_map m;
    cr_assert_eq(eng_map_init(&m, MAP_N), TRASTENDA_OK);
    struct map_fixture f = {{0}, {0}};
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    uint32_t n = 0;
    for (int step = 0; step < 20000; step++) {
        uint32_t ix = rnd(&seed) % MAP_N;
        if (f.present[ix]) {
            eng_map_remove(&m, clumpy_hash(f.key[ix]), ix);
            f.present[ix] = false;
            n--;
        } else {
            /* A key not present under another index. */
            uint32_t key;
            do
                key = rnd(&seed) % 200;
            while (map_find(&m, &f, key) != ENG_MAP_NONE);
            f.key[ix] = key;
            f.present[ix] = true;
            eng_map_insert(&m, clumpy_hash(key), ix);
            n++;
        }
        cr_assert_eq(m.count, n);
        for (uint32_t i = 0; i < MAP_N; i++) {
            if (!f.present[i]) continue;
            uint32_t got = map_find(&m, &f, f.key[i]);
            cr_assert_eq(got, i, "step %d: key %u at %u found at %u", step, f.key[i], i, got);
        }
        uint32_t absent = 200 + rnd(&seed) % 50;
        cr_assert_eq(map_find(&m, &f, absent), ENG_MAP_NONE);
    }
    eng_map_fini(&m);
}

Test(engine_base, map_insert_beyond_its_maximum_aborts, .signal = SIGABRT)
{
    struct eng_map m;
    cr_assert_eq(eng_map_init(&m, 2), TRASTENDA_OK);
    eng_map_insert(&m, 1, 0);
    eng_map_insert(&m, 2, 1);
    eng_map_insert(&m, 3, 2);
}

Test(engine_base, map_remove_of_an_absent_entry_aborts, .signal = SIGABRT)
{
    struct eng_map m;
    cr_assert_eq(eng_map_init(&m, 4), TRASTENDA_OK);
    eng_map_insert(&m, 1, 0);
    eng_map_remove(&m, 1, 1);
}

/* ---- bit set ---- */

/* Bits enough for all three levels: level 1 spans 74 words, level 2 two. */
#define BITS_N 300000u

/* next_set[i] = first set bit >= i (ENG_NONE when none), for i in 0..BITS_N. */
static void
brute_next(const bool *set, uint32_t *next_set)
{
    next_set[BITS_N] = ENG_NONE;
    for (uint32_t i = BITS_N; i-- > 0;)
        next_set[i] = set[i] ? i : next_set[i + 1];
}

static uint32_t
probe_point(uint64_t *seed)
{
    /* Around word, level-1 and level-2 boundaries, or anywhere. */
    uint32_t spans[] = {64, 4096, 262144};
    uint32_t k = rnd(seed) % 4;
    if (k == 3) return rnd(seed) % (BITS_N + 1);
    uint32_t base = (rnd(seed) % (BITS_N / spans[k] + 1)) * spans[k];
    uint32_t p = base + (rnd(seed) % 3) - 1;
    return p > BITS_N ? BITS_N : p;
}

Test(engine_base, bits_next_matches_brute_force_across_word_boundaries)
{
    struct eng_bits b;
    memset(&b, 0, sizeof(b));
    cr_assert_eq(eng_bits_init(&b, BITS_N), TRASTENDA_OK);
    cr_assert_gt(b.n2, 1, "the set must use several level-2 words");
    static bool set[BITS_N];
    static uint32_t next_set[BITS_N + 1];
    memset(set, 0, sizeof(set));
    uint64_t seed = 0x1234567887654321ull;
    brute_next(set, next_set);
    cr_assert_eq(eng_bits_next(&b, 0), ENG_NONE, "empty");
    for (int round = 0; round < 60; round++) {
        /* Sparse rounds reach far (level 2); dense ones fill words; some clear bits. */
        uint32_t flips = round % 3 == 0 ? 3 : 40;
        for (uint32_t k = 0; k < flips; k++) {
            uint32_t i = round % 2 ? probe_point(&seed) : rnd(&seed) % BITS_N;
            if (i >= BITS_N) i = BITS_N - 1;
            bool on = round % 5 != 4;
            eng_bits_set(&b, i, on);
            set[i] = on;
        }
        brute_next(set, next_set);
        for (int q = 0; q < 500; q++) {
            uint32_t from = probe_point(&seed);
            uint32_t got = eng_bits_next(&b, from);
            cr_assert_eq(got, next_set[from], "round %d: next(%u) = %u, expected %u", round, from,
                         got, next_set[from]);
        }
        for (uint32_t i = 0; i < BITS_N; i += 997)
            cr_assert_eq(eng_bits_get(&b, i), set[i]);
    }
    /* Walking from 0 visits every set bit in order. */
    uint32_t count = 0, expect = 0;
    for (uint32_t i = 0; i < BITS_N; i++)
        expect += set[i];
    for (uint32_t i = eng_bits_next(&b, 0); i != ENG_NONE; i = eng_bits_next(&b, i + 1)) {
        cr_assert(set[i]);
        count++;
    }
    cr_assert_eq(count, expect);
    eng_bits_fini(&b);
}

Test(engine_base, bits_clearing_the_last_bit_of_a_word_empties_the_summaries)
{
    struct eng_bits b;
    memset(&b, 0, sizeof(b));
    cr_assert_eq(eng_bits_init(&b, BITS_N), TRASTENDA_OK);
    eng_bits_set(&b, 5, true);
    eng_bits_set(&b, 270000, true);
    cr_assert_eq(eng_bits_next(&b, 6), 270000);
    eng_bits_set(&b, 270000, false);
    cr_assert_eq(eng_bits_next(&b, 6), ENG_NONE);
    cr_assert_eq(eng_bits_next(&b, 0), 5);
    eng_bits_set(&b, 5, false);
    cr_assert_eq(eng_bits_next(&b, 0), ENG_NONE);
    for (uint32_t i = 0; i < b.n1; i++)
        cr_assert_eq(b.l1[i], 0);
    for (uint32_t i = 0; i < b.n2; i++)
        cr_assert_eq(b.l2[i], 0);
    eng_bits_fini(&b);
}

/* ---- pools and FIFOs ---- */

Test(engine_base, pool_hands_out_each_slot_once_until_empty)
{
    struct eng_pool p;
    cr_assert_eq(eng_pool_init(&p, 8), TRASTENDA_OK);
    bool seen[8] = {0};
    for (int i = 0; i < 8; i++) {
        uint32_t ix = eng_pool_take(&p);
        cr_assert_lt(ix, 8);
        cr_assert_not(seen[ix]);
        seen[ix] = true;
    }
    cr_assert_eq(eng_pool_take(&p), ENG_NONE);
    cr_assert_eq(eng_pool_used(&p), 8);
    eng_pool_give(&p, 3);
    cr_assert_eq(eng_pool_take(&p), 3);
    eng_pool_fini(&p);
}

Test(engine_base, fifo_keeps_order_and_removes_from_anywhere)
{
    struct eng_fifo f;
    cr_assert_eq(eng_fifo_init(&f, 8), TRASTENDA_OK);
    uint32_t in[] = {4, 1, 7, 0, 5};
    for (int i = 0; i < 5; i++)
        eng_fifo_push(&f, in[i]);
    eng_fifo_remove(&f, 7);
    eng_fifo_remove(&f, 4);
    eng_fifo_remove(&f, 5);
    cr_assert_not(eng_fifo_has(&f, 7));
    cr_assert(eng_fifo_has(&f, 1));
    cr_assert_eq(f.count, 2);
    cr_assert_eq(f.head, 1);
    cr_assert_eq(f.next[1], 0);
    cr_assert_eq(f.tail, 0);
    eng_fifo_push(&f, 7);
    cr_assert_eq(f.tail, 7);
    eng_fifo_fini(&f, 8);
}

Test(engine_base, fifo_push_twice_aborts, .signal = SIGABRT)
{
    struct eng_fifo f;
    cr_assert_eq(eng_fifo_init(&f, 4), TRASTENDA_OK);
    eng_fifo_push(&f, 2);
    eng_fifo_push(&f, 2);
}

/* ---- UTF-8 and id validation ---- */

struct text_case {
    const char *s;
    uint32_t len; /* 0: strlen */
    trastenda_err want;
};

static trastenda_err
id_check(const struct text_case *c, trastenda_result *r)
{
    trastenda_str s = {c->s, c->len ? c->len : (uint32_t)strlen(c->s)};
    memset(r, 0, sizeof(*r));
    return eng_id_check(s, "id", true, r);
}

Test(engine_base, utf8_validation_accepts_well_formed_text_and_rejects_the_rest)
{
    static const struct text_case cases[] = {
        {"plain-ASCII ~!", 0, TRASTENDA_OK},
        {"caf\xc3\xa9", 0, TRASTENDA_OK},             /* U+00E9 */
        {"\xc2\xa0nbsp", 0, TRASTENDA_OK},            /* U+00A0, first after C1 */
        {"\xe2\x82\xac", 0, TRASTENDA_OK},            /* U+20AC */
        {"\xef\xbf\xbd", 0, TRASTENDA_OK},            /* U+FFFD */
        {"\xf0\x9f\x98\x80", 0, TRASTENDA_OK},        /* U+1F600 */
        {"\xf4\x8f\xbf\xbf", 0, TRASTENDA_OK},        /* U+10FFFF */
        {"\xed\x9f\xbf", 0, TRASTENDA_OK},            /* U+D7FF, below the surrogates */
        {"\xee\x80\x80", 0, TRASTENDA_OK},            /* U+E000, above them */
        {"\xc0\xaf", 0, TRASTENDA_E_INVALID},         /* overlong '/' */
        {"\xc1\xbf", 0, TRASTENDA_E_INVALID},         /* overlong */
        {"\xe0\x80\xaf", 0, TRASTENDA_E_INVALID},     /* overlong, 3 bytes */
        {"\xe0\x9f\xbf", 0, TRASTENDA_E_INVALID},     /* overlong U+07FF */
        {"\xf0\x80\x80\xaf", 0, TRASTENDA_E_INVALID}, /* overlong, 4 bytes */
        {"\xf0\x8f\xbf\xbf", 0, TRASTENDA_E_INVALID}, /* overlong U+FFFF */
        {"\xed\xa0\x80", 0, TRASTENDA_E_INVALID},     /* U+D800 */
        {"\xed\xbf\xbf", 0, TRASTENDA_E_INVALID},     /* U+DFFF */
        {"\xf4\x90\x80\x80", 0, TRASTENDA_E_INVALID}, /* U+110000 */
        {"\xf5\x80\x80\x80", 0, TRASTENDA_E_INVALID}, /* lead byte beyond F4 */
        {"\xff", 0, TRASTENDA_E_INVALID},             /* never in UTF-8 */
        {"\x80", 0, TRASTENDA_E_INVALID},             /* lone continuation */
        {"a\xbf", 0, TRASTENDA_E_INVALID},            /* lone continuation */
        {"\xc2\x80", 0, TRASTENDA_E_INVALID},         /* C1 U+0080 */
        {"\xc2\x85", 0, TRASTENDA_E_INVALID},         /* C1 NEL */
        {"\xc2\x9f", 0, TRASTENDA_E_INVALID},         /* C1 U+009F */
        {"ab\xc3", 0, TRASTENDA_E_INVALID},           /* truncated 2 */
        {"\xe2\x82", 0, TRASTENDA_E_INVALID},         /* truncated 3 */
        {"\xf0\x9f\x98", 0, TRASTENDA_E_INVALID},     /* truncated 4 */
        {"\xe2\x28\xa1", 0, TRASTENDA_E_INVALID},     /* bad continuation */
        {"\xf0\x9f\x98\x28", 0, TRASTENDA_E_INVALID}, /* bad last continuation */
        {"a\0b", 3, TRASTENDA_E_INVALID},             /* NUL */
        {"\x1f", 0, TRASTENDA_E_INVALID},             /* C0 control */
        {"x\x7f", 0, TRASTENDA_E_INVALID},            /* DEL */
        {"", 0, TRASTENDA_E_INVALID},                 /* required */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        trastenda_result r;
        trastenda_err err = id_check(&cases[i], &r);
        cr_expect_eq(err, cases[i].want, "case %zu: want %s, got %s (%s)", i,
                     trastenda_err_name(cases[i].want), trastenda_err_name(err), r.message);
        if (err != TRASTENDA_OK) cr_expect_eq(r.code, err);
    }
}

Test(engine_base, utf8_error_names_the_offset_of_the_bad_byte)
{
    trastenda_result r;
    struct text_case c = {"ok-\xc3\xa9-\xed\xa0\x80", 0, TRASTENDA_E_INVALID};
    cr_assert_eq(id_check(&c, &r), TRASTENDA_E_INVALID);
    cr_assert(strstr(r.message, "bad byte at 6") != NULL, "%s", r.message);
}

Test(engine_base, id_and_name_lengths_are_limited)
{
    char buf[TRASTENDA_NAME_BYTES_MAX + 2];
    memset(buf, 'a', sizeof(buf));
    trastenda_result r;
    memset(&r, 0, sizeof(r));
    cr_assert_eq(eng_id_check((trastenda_str){buf, TRASTENDA_ID_BYTES_MAX}, "id", true, &r),
                 TRASTENDA_OK);
    cr_assert_eq(eng_id_check((trastenda_str){buf, TRASTENDA_ID_BYTES_MAX + 1}, "id", true, &r),
                 TRASTENDA_E_LIMIT);
    cr_assert(strstr(r.message, "id must be 1..64 bytes (got 65)") != NULL, "%s", r.message);
    cr_assert_eq(eng_name_check((trastenda_str){buf, TRASTENDA_NAME_BYTES_MAX}, "name", &r),
                 TRASTENDA_OK);
    cr_assert_eq(eng_name_check((trastenda_str){buf, TRASTENDA_NAME_BYTES_MAX + 1}, "name", &r),
                 TRASTENDA_E_LIMIT);
    cr_assert_eq(eng_id_check((trastenda_str){NULL, 3}, "id", true, &r), TRASTENDA_E_INVALID);
    cr_assert_eq(eng_id_check((trastenda_str){NULL, 0}, "id", false, &r), TRASTENDA_OK);
}

/* ---- geo ---- */

static int64_t
distance_m(int32_t lat1, int32_t lon1, int32_t lat2, int32_t lon2)
{
    int32_t a[3], b[3];
    eng_geo_vec(lat1, lon1, a);
    eng_geo_vec(lat2, lon2, b);
    return eng_geo_distance_m(a, b);
}

/* References: haversine in double precision on the same sphere (R = 6,371,009 m). */
Test(engine_base, geo_distance_madrid_lugo_is_within_a_kilometre)
{
    int64_t d = distance_m(40416775, -3703790, 43012087, -7555851);
    cr_assert(d >= 430624 - 1000 && d <= 430624 + 1000, "Madrid-Lugo %lld m", (long long)d);
    cr_assert_eq(distance_m(43012087, -7555851, 40416775, -3703790), d, "symmetric");
}

Test(engine_base, geo_distance_of_antipodes_is_half_the_circumference)
{
    int64_t half = 20015115;
    int64_t d[] = {distance_m(0, 0, 0, 180000000), distance_m(90000000, 0, -90000000, 0),
                   distance_m(40416775, -3703790, -40416775, 176296210)};
    for (int i = 0; i < 3; i++)
        cr_assert(d[i] >= half - 1000 && d[i] <= half + 1000, "case %d: %lld m", i,
                  (long long)d[i]);
}

Test(engine_base, geo_distance_is_accurate_at_any_range)
{
    /* 45, 90 and 170 degrees of arc along the equator or a meridian. */
    int64_t d = distance_m(0, 0, 45000000, 0);
    cr_assert(d >= 5003779 - 5 && d <= 5003779 + 5, "45 degrees: %lld m", (long long)d);
    d = distance_m(0, 0, 0, 90000000);
    cr_assert(d >= 10007558 - 5 && d <= 10007558 + 5, "90 degrees: %lld m", (long long)d);
    d = distance_m(0, 0, 0, 170000000);
    cr_assert(d >= 18903164 - 5 && d <= 18903164 + 5, "170 degrees: %lld m", (long long)d);
}

Test(engine_base, geo_distance_of_a_point_to_itself_is_zero)
{
    cr_assert_eq(distance_m(40416775, -3703790, 40416775, -3703790), 0);
    cr_assert_eq(distance_m(-90000000, 0, -90000000, 123456789), 0, "the pole, any longitude");
    cr_assert_eq(distance_m(0, 180000000, 0, -180000000), 0, "the date line, both ways");
}

Test(engine_base, geo_distance_is_accurate_at_short_range)
{
    int64_t d = distance_m(0, 0, 0, 10000); /* 0.01 degrees: 1111.95 m */
    cr_assert(d >= 1102 && d <= 1122, "%lld m", (long long)d);
    d = distance_m(-33868800, 151209300, 51507400, -127800); /* Sydney-London 16,993,957 m */
    cr_assert(d >= 16993957 - 1000 && d <= 16993957 + 1000, "%lld m", (long long)d);
}

/* ---- allocation seam ---- */

static void
small_config(trastenda_engine_config *cfg)
{
    h_config_small(cfg);
}

Test(engine_base, engine_create_fails_cleanly_at_each_allocation)
{
    trastenda_engine_config cfg;
    small_config(&cfg);
    size_t before = ts_allocated_bytes();
    uint32_t failures = 0;
    for (uint32_t n = 1; n < 1000; n++) {
        trastenda_engine *e = (trastenda_engine *)0x1;
        ts_alloc_fail_after(n);
        trastenda_err err = trastenda_engine_create(&cfg, &e);
        ts_alloc_fail_after(0);
        if (err == TRASTENDA_OK) {
            cr_assert_not_null(e);
            cr_assert_gt(failures, 10, "create allocates many tables");
            trastenda_engine_destroy(e);
            cr_assert_eq(ts_allocated_bytes(), before, "destroy frees everything");
            return;
        }
        cr_assert_eq(err, TRASTENDA_E_NOMEM, "allocation %u: %s", n, trastenda_err_name(err));
        cr_assert_null(e, "no engine handed out");
        cr_assert_eq(ts_allocated_bytes(), before, "allocation %u failing leaked %zu bytes", n,
                     ts_allocated_bytes() - before);
        failures++;
    }
    cr_assert_fail("create never succeeded");
}

Test(engine_base, engine_create_rejects_bad_configs)
{
    trastenda_engine_config cfg;
    trastenda_engine *e = NULL;
    cr_assert_eq(trastenda_engine_create(NULL, &e), TRASTENDA_E_INVALID);
    small_config(&cfg);
    cr_assert_eq(trastenda_engine_create(&cfg, NULL), TRASTENDA_E_INVALID);
    small_config(&cfg);
    cfg.locations_max = 0;
    cr_assert_eq(trastenda_engine_create(&cfg, &e), TRASTENDA_E_INVALID);
    small_config(&cfg);
    cfg.locations_max = TRASTENDA_LOCATIONS_MAX + 1;
    cr_assert_eq(trastenda_engine_create(&cfg, &e), TRASTENDA_E_INVALID);
    small_config(&cfg);
    cfg.keys_max = 0;
    cr_assert_eq(trastenda_engine_create(&cfg, &e), TRASTENDA_E_INVALID);
    small_config(&cfg);
    cfg.stock_max = (1u << 30) + 1;
    cr_assert_eq(trastenda_engine_create(&cfg, &e), TRASTENDA_E_INVALID);
    small_config(&cfg);
    cfg.key_retention_ms = -1;
    cr_assert_eq(trastenda_engine_create(&cfg, &e), TRASTENDA_E_INVALID);
    small_config(&cfg);
    cfg.review_days = TRASTENDA_LEAD_DAYS_MAX + 1;
    cr_assert_eq(trastenda_engine_create(&cfg, &e), TRASTENDA_E_INVALID);
    cr_assert_null(e);
}

Test(engine_base, destroy_accepts_null)
{
    size_t before = ts_allocated_bytes();
    trastenda_engine_destroy(NULL);
    cr_assert_eq(ts_allocated_bytes(), before);
}

Test(engine_base, ts_alloc_counts_bytes_and_returns_zeroed_memory)
{
    size_t before = ts_allocated_bytes();
    uint8_t *p = ts_alloc(100);
    cr_assert_not_null(p);
    for (int i = 0; i < 100; i++)
        cr_assert_eq(p[i], 0);
    cr_assert_eq(ts_allocated_bytes(), before + 100);
    ts_free(p, 100);
    cr_assert_eq(ts_allocated_bytes(), before);
    ts_free(NULL, 100);
    ts_alloc_fail_after(2);
    void *a = ts_alloc(8);
    void *b = ts_alloc(8);
    void *c = ts_alloc(8);
    cr_assert_not_null(a);
    cr_assert_null(b, "the second allocation fails");
    cr_assert_not_null(c, "only that one");
    ts_free(a, 8);
    ts_free(c, 8);
}

/* ---- assertions ---- */

Test(engine_base, ts_assert_aborts_on_a_false_condition, .signal = SIGABRT)
{
    volatile int zero = 0;
    TS_ASSERT(zero == 1);
}

Test(engine_base, ts_assert_passes_on_a_true_condition)
{
    volatile int one = 1;
    TS_ASSERT(one == 1);
    cr_assert(true);
}

Test(engine_base, ts_alloc_of_zero_bytes_aborts, .signal = SIGABRT) { (void)ts_alloc(0); }

Test(engine_base, engine_check_aborts_on_a_broken_invariant, .signal = SIGABRT)
{
    trastenda_engine_config cfg;
    small_config(&cfg);
    h_setup_with(&cfg, 0);
    h_add_location("madrid");
    h_add_sku("tee", 0);
    h_receive("tee", "madrid", 5);
    trastenda_engine_check(H.e);
    /* held must equal the open hold lines on the record (Design note 2): there are none. */
    H.e->stock[0].q[TRASTENDA_Q_HELD] = 1;
    trastenda_engine_check(H.e);
}

/* ---- error names ---- */

Test(engine_base, every_error_has_a_stable_name_and_a_message)
{
#define CHECK_ERR_(name, value, msg)                                                               \
    cr_assert_str_eq(trastenda_err_name(name), #name);                                             \
    cr_assert_str_eq(trastenda_err_message(name), msg);                                            \
    cr_assert_eq((int)name, value);
    TRASTENDA_ERRORS(CHECK_ERR_)
#undef CHECK_ERR_
    cr_assert_str_eq(trastenda_err_name((trastenda_err)999), "TRASTENDA_E_?");
    cr_assert_str_eq(trastenda_err_message((trastenda_err)999), "unknown error");
}

/* huge_pages changes where tables live, not what they hold: the same commands give the same state
 * (its digest) on tables of several MiB with and without it, and the advice does not outlive the
 * engine's own allocations. */
Test(engine_base, huge_pages_changes_no_state)
{
    uint64_t digest[2];
    for (int hp = 0; hp < 2; hp++) {
        trastenda_engine_config cfg;
        trastenda_engine_config_default(&cfg);
        cfg.huge_pages = hp;
        cfg.stock_max = 100000; /* 6+ MiB of stock records: advised when hp */
        trastenda_engine *e;
        cr_assert_eq(trastenda_engine_create(&cfg, &e), TRASTENDA_OK);
        trastenda_cmd c[3] = {{0}};
        c[0].op = TRASTENDA_OP_LOCATION_UPSERT;
        c[0].loc = (trastenda_ref){{"w1", 2}, TRASTENDA_IX_NONE};
        c[1].op = TRASTENDA_OP_SKU_UPSERT;
        c[1].sku = (trastenda_ref){{"s1", 2}, TRASTENDA_IX_NONE};
        c[2].op = TRASTENDA_OP_RECEIVE;
        c[2].sku = (trastenda_ref){{"s1", 2}, TRASTENDA_IX_NONE};
        c[2].loc = (trastenda_ref){{"w1", 2}, TRASTENDA_IX_NONE};
        c[2].qty = 7;
        trastenda_result r[3];
        trastenda_batch_out out;
        cr_assert_eq(trastenda_engine_apply(e, 1000, c, 3, r, &out), TRASTENDA_OK);
        for (int i = 0; i < 3; i++)
            cr_assert_eq(r[i].code, TRASTENDA_OK, "command %d: %s", i, r[i].message);
        uint32_t sku, loc;
        trastenda_stock st;
        cr_assert_eq(trastenda_engine_sku_lookup(e, (trastenda_str){"s1", 2}, &sku), TRASTENDA_OK);
        cr_assert_eq(trastenda_engine_location_lookup(e, (trastenda_str){"w1", 2}, &loc),
                     TRASTENDA_OK);
        cr_assert_eq(trastenda_engine_stock_read(e, sku, loc, &st), TRASTENDA_OK);
        cr_assert_eq(st.on_hand, 7);
        digest[hp] = trastenda_engine_digest(e);
        trastenda_engine_destroy(e);
    }
    cr_assert_eq(digest[0], digest[1]);
}
