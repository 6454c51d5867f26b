/*
 * tests/net/test_mp.c - the bounded msgpack reader (net/mp.c) against msgpack-c's packer.
 *
 * Every integer width and sign reads back; strings point into the message; counts that claim
 * more elements than bytes remain, nesting deeper than allowed, reserved bytes and every
 * truncation of a valid message are refused without reading past the end.
 */
#include <criterion/criterion.h>
#include <msgpack.h>
#include <stdlib.h>

#include "mp.h"

static msgpack_sbuffer sb;
static msgpack_packer pk;

static void
fresh(void)
{
    msgpack_sbuffer_destroy(&sb);
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
}

static void
setup(void)
{
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
}

static void
teardown(void)
{
    msgpack_sbuffer_destroy(&sb);
}

TestSuite(net_mp, .init = setup, .fini = teardown);

Test(net_mp, integers_of_every_width_and_sign)
{
    const int64_t vals[] = {
        0,      1,         127,       128,       255,       256,          65535,
        65536,  -1,        -32,       -33,       -128,      -129,         -32768,
        -32769, INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN, 4294967296ll, -4294967297ll};
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        fresh();
        msgpack_pack_int64(&pk, vals[i]);
        struct mp_rd r;
        mp_rd_init(&r, sb.data, sb.size);
        int64_t v;
        cr_assert(mp_read_i64(&r, &v), "value %lld", (long long)vals[i]);
        cr_assert_eq(v, vals[i]);
        cr_assert_eq(mp_left(&r), 0);
    }
    fresh();
    msgpack_pack_uint64(&pk, UINT64_MAX);
    struct mp_rd r;
    mp_rd_init(&r, sb.data, sb.size);
    int64_t i;
    cr_assert(!mp_read_i64(&r, &i), "2^64-1 does not fit in int64");
    mp_rd_init(&r, sb.data, sb.size);
    uint64_t u;
    cr_assert(mp_read_u64(&r, &u) && u == UINT64_MAX);
    fresh();
    msgpack_pack_int64(&pk, -5);
    mp_rd_init(&r, sb.data, sb.size);
    cr_assert(!mp_read_u64(&r, &u), "negative is not unsigned");
    cr_assert(r.bad);
    cr_assert(!mp_read_nil(&r), "after a failure every read fails");
}

Test(net_mp, strings_maps_and_arrays)
{
    fresh();
    msgpack_pack_map(&pk, 2);
    msgpack_pack_str(&pk, 3);
    msgpack_pack_str_body(&pk, "sku", 3);
    char long_s[300];
    memset(long_s, 'x', sizeof(long_s));
    msgpack_pack_str(&pk, sizeof(long_s));
    msgpack_pack_str_body(&pk, long_s, sizeof(long_s));
    msgpack_pack_str(&pk, 1);
    msgpack_pack_str_body(&pk, "a", 1);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_nil(&pk);
    msgpack_pack_true(&pk);
    msgpack_pack_double(&pk, 1.5);
    struct mp_rd r;
    mp_rd_init(&r, sb.data, sb.size);
    uint32_t n, len;
    const char *s;
    bool b;
    cr_assert(mp_read_map(&r, &n) && n == 2);
    cr_assert(mp_read_str(&r, &s, &len) && len == 3 && memcmp(s, "sku", 3) == 0);
    cr_assert(s >= sb.data && s < sb.data + sb.size, "zero copy");
    cr_assert(mp_read_str(&r, &s, &len) && len == 300);
    cr_assert(mp_read_str(&r, &s, &len) && len == 1);
    cr_assert_eq(mp_peek(&r), MP_ARRAY);
    cr_assert(mp_read_array(&r, &n) && n == 3);
    cr_assert(mp_read_nil(&r));
    cr_assert(mp_read_bool(&r, &b) && b);
    cr_assert_eq(mp_peek(&r), MP_FLOAT);
    cr_assert(mp_skip(&r, 1));
    cr_assert_eq(mp_left(&r), 0);
    cr_assert(!r.bad);
}

Test(net_mp, counts_beyond_the_bytes_left_are_refused)
{
    /* array32 claiming 2^32-1 elements in a 5-byte message */
    const uint8_t arr[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    struct mp_rd r;
    uint32_t n;
    mp_rd_init(&r, arr, sizeof(arr));
    cr_assert(!mp_read_array(&r, &n));
    /* map16 claiming 3 pairs with 5 bytes left (needs 6) */
    const uint8_t map[] = {0xde, 0x00, 0x03, 1, 2, 3, 4, 5};
    mp_rd_init(&r, map, sizeof(map));
    cr_assert(!mp_read_map(&r, &n));
    /* str32 claiming 1 GiB */
    const uint8_t str[] = {0xdb, 0x40, 0x00, 0x00, 0x00, 'a'};
    const char *s;
    mp_rd_init(&r, str, sizeof(str));
    cr_assert(!mp_read_str(&r, &s, &n));
    /* 0xc1 is reserved */
    const uint8_t bad[] = {0xc1};
    mp_rd_init(&r, bad, 1);
    cr_assert_eq(mp_peek(&r), MP_NONE);
    cr_assert(!mp_skip(&r, 4));
}

Test(net_mp, nesting_is_bounded)
{
    fresh();
    for (int i = 0; i < 40; i++)
        msgpack_pack_array(&pk, 1);
    msgpack_pack_nil(&pk);
    struct mp_rd r;
    mp_rd_init(&r, sb.data, sb.size);
    cr_assert(!mp_skip(&r, MP_DEPTH_MAX));
    mp_rd_init(&r, sb.data, sb.size);
    cr_assert(mp_skip(&r, 64), "within a larger bound it is fine");
}

Test(net_mp, every_truncation_of_a_valid_message_is_refused)
{
    fresh();
    msgpack_pack_map(&pk, 3);
    msgpack_pack_str(&pk, 2);
    msgpack_pack_str_body(&pk, "id", 2);
    msgpack_pack_uint64(&pk, 1234567890123ull);
    msgpack_pack_str(&pk, 3);
    msgpack_pack_str_body(&pk, "ops", 3);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_int32(&pk, -70000);
    msgpack_pack_bin(&pk, 4);
    msgpack_pack_bin_body(&pk, "abcd", 4);
    msgpack_pack_str(&pk, 1);
    msgpack_pack_str_body(&pk, "x", 1);
    msgpack_pack_float(&pk, 2.0f);
    struct mp_rd r;
    mp_rd_init(&r, sb.data, sb.size);
    cr_assert(mp_skip(&r, 4) && mp_left(&r) == 0);
    for (size_t cut = 0; cut < sb.size; cut++) {
        /* A copy of exactly cut bytes: ASan catches any read past it. */
        uint8_t *copy = malloc(cut + 1);
        memcpy(copy, sb.data, cut);
        mp_rd_init(&r, copy, cut);
        cr_assert(!mp_skip(&r, 4), "cut at %zu", cut);
        free(copy);
    }
}

/* The first-byte table against the msgpack specification's ranges, for all 256 bytes. */
Test(net_mp, every_first_byte_has_its_type)
{
    for (int b = 0; b < 256; b++) {
        enum mp_type want = b <= 0x7f || b >= 0xe0                                 ? MP_INT
                            : b <= 0x8f || b == 0xde || b == 0xdf                  ? MP_MAP
                            : b <= 0x9f || b == 0xdc || b == 0xdd                  ? MP_ARRAY
                            : b <= 0xbf || (b >= 0xd9 && b <= 0xdb)                ? MP_STR
                            : b == 0xc0                                            ? MP_NIL
                            : b == 0xc2 || b == 0xc3                               ? MP_BOOL
                            : b >= 0xc4 && b <= 0xc6                               ? MP_BIN
                            : (b >= 0xc7 && b <= 0xc9) || (b >= 0xd4 && b <= 0xd8) ? MP_EXT
                            : b == 0xca || b == 0xcb                               ? MP_FLOAT
                            : b >= 0xcc && b <= 0xd3                               ? MP_INT
                                                                                   : MP_NONE;
        uint8_t byte = (uint8_t)b;
        struct mp_rd r;
        mp_rd_init(&r, &byte, 1);
        cr_assert_eq(mp_peek(&r), want, "byte 0x%02x", b);
    }
}
