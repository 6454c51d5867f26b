/*
 * engine/geo.c - great-circle distances in integer arithmetic.
 *
 * Routing must decide the same way on every node (Design note 4), so no floating point and no
 * libm: coordinates are micro-degrees, sines come from a fixed-point Taylor series, the arc from a
 * fixed-point arcsine polynomial (Abramowitz & Stegun 4.4.46, |error| <= 2e-8 rad, ~0.13 m), and
 * the result is whole metres. Every operation is integer, so every machine gets the same bits.
 */
#include "eng.h"

#define Q              28
#define ONE            (1ll << Q)
#define PI_Q           843314857ll /* pi in Q28 */
#define EARTH_RADIUS_M 6371009ll

static int64_t
mul_q(int64_t a, int64_t b)
{
    return (a * b) / ONE;
}

/* sin of x (Q28 radians, |x| <= pi). */
static int64_t
sin_q(int64_t x)
{
    TS_ASSERT(x >= -PI_Q && x <= PI_Q);
    if (x > PI_Q / 2) x = PI_Q - x;
    if (x < -PI_Q / 2) x = -PI_Q - x;
    int64_t x2 = mul_q(x, x);
    /* Terms up to x^13: stopping at x^11 leaves sin(pi/2) 6e-8 short, and vectors that short
     * of unit length put antipodal distances 6 km off (asin is steep near 1). */
    int64_t t = ONE - x2 / 156;
    t = ONE - mul_q(x2, t) / 110;
    t = ONE - mul_q(x2, t) / 72;
    t = ONE - mul_q(x2, t) / 42;
    t = ONE - mul_q(x2, t) / 20;
    t = ONE - mul_q(x2, t) / 6;
    int64_t s = mul_q(x, t);
    TS_ASSERT(s >= -ONE - 4 && s <= ONE + 4);
    return s;
}

static int64_t
cos_q(int64_t x)
{
    x += PI_Q / 2;
    if (x > PI_Q) x -= 2 * PI_Q;
    return sin_q(x);
}

static int64_t
rad_q(int32_t deg_e6)
{
    return (int64_t)deg_e6 * PI_Q / 180000000ll;
}

void
eng_geo_vec(int32_t lat_e6, int32_t lon_e6, int32_t vec[3])
{
    TS_ASSERT(lat_e6 >= -90000000 && lat_e6 <= 90000000);
    TS_ASSERT(lon_e6 >= -180000000 && lon_e6 <= 180000000);
    int64_t lat = rad_q(lat_e6), lon = rad_q(lon_e6);
    int64_t cl = cos_q(lat);
    vec[0] = (int32_t)mul_q(cl, cos_q(lon));
    vec[1] = (int32_t)mul_q(cl, sin_q(lon));
    vec[2] = (int32_t)sin_q(lat);
}

static uint64_t
isqrt64(uint64_t v)
{
    uint64_t r = 0, bit = 1ull << 62;
    while (bit > v)
        bit >>= 2;
    while (bit != 0) {
        if (v >= r + bit) {
            v -= r + bit;
            r = (r >> 1) + bit;
        } else {
            r >>= 1;
        }
        bit >>= 2;
    }
    return r;
}

/* asin of x (Q28, 0 <= x <= 1) in Q28 radians. */
static int64_t
asin_q(int64_t x)
{
    static const int64_t a[8] = {421657422, -57605927, 23885115, -13468562,
                                 8292476,   -4587059,  1790489,  -338897};
    TS_ASSERT(x >= 0);
    if (x > ONE) x = ONE;
    int64_t p = a[7];
    for (int i = 6; i >= 0; i--)
        p = a[i] + mul_q(p, x);
    int64_t root = (int64_t)isqrt64((uint64_t)(ONE - x) << Q); /* sqrt(1 - x) in Q28 */
    return PI_Q / 2 - mul_q(root, p);
}

uint64_t
eng_geo_chord2(const int32_t a[3], const int32_t b[3])
{
    uint64_t sum = 0;
    for (int i = 0; i < 3; i++) {
        int64_t d = (int64_t)a[i] - b[i];
        sum += (uint64_t)(d * d);
    }
    return sum;
}

int64_t
eng_geo_distance_m(const int32_t a[3], const int32_t b[3])
{
    return eng_geo_metres(eng_geo_chord2(a, b));
}

int64_t
eng_geo_metres(uint64_t chord2)
{
    int64_t chord = (int64_t)isqrt64(chord2); /* Q28, 0..2 */
    int64_t m = 2 * EARTH_RADIUS_M * asin_q(chord / 2) / ONE;
    TS_ASSERT(m >= 0 && m <= 20100000);
    return m;
}
