/*
 * tls.c's P-256 ECDSA (mbedtls_ecdsa_verify and mbedtls_ecdsa_sign, built
 * with MBEDTLS_ECDSA_VERIFY_ALT and _SIGN_ALT): the field arithmetic against
 * mbedTLS bignums, u1*G + u2*Q against mbedtls_ecp_muladd (including the sums
 * that meet a doubling or the point at infinity), verification of signatures
 * made by mbedTLS's own arithmetic (k G, then s by bignums): good ones pass,
 * altered ones (hash, r, s, key, ranges) fail; the signer's k G against
 * mbedtls_ecp_mul (random and edge scalars), its signatures against
 * mbedtls_ecp_muladd's verification math and ours, its nonces (fresh per
 * signature, out-of-range draws rejected, a failing RNG reported); a CSR
 * whose signature was altered is refused by tls_issue_for_csr.
 */
#define MBEDTLS_ALLOW_PRIVATE_ACCESS  /* key pairs and points, for the checks below */
#include "../../modules/tls.c"

#include "test.h"

static mbedtls_ecp_group grp;

static void mpi_to_fe(p256_fe r, const mbedtls_mpi *x)
{
	if (fe_from_mpi(r, x) != 0)
		memset(r, 0xff, sizeof(p256_fe));
}

static void fe_to_mpi(mbedtls_mpi *x, const p256_fe a)
{
	unsigned char b[32];

	fe_to_be(b, a);
	mbedtls_mpi_read_binary(x, b, sizeof(b));
}

static void random_below(mbedtls_mpi *x, const mbedtls_mpi *bound)
{
	mbedtls_mpi_random(x, 0, bound, tls_rng, NULL);
}

static void test_field(void)
{
	mbedtls_mpi a, b, c, want;
	p256_fe fa, fb, ma, mb, fr;
	int i, ok_mul = 1, ok_add = 1, ok_sub = 1, ok_inv = 1;

	mbedtls_mpi_init(&a);
	mbedtls_mpi_init(&b);
	mbedtls_mpi_init(&c);
	mbedtls_mpi_init(&want);
	for (i = 0; i < 300; i++) {
		if (i == 0) {                          /* the edges: p - 1 and 0, p - 1 and 1 */
			mbedtls_mpi_sub_int(&a, &grp.P, 1);
			mbedtls_mpi_lset(&b, 0);
		} else if (i == 1) {
			mbedtls_mpi_sub_int(&a, &grp.P, 1);
			mbedtls_mpi_sub_int(&b, &grp.P, 1);
		} else if (i == 2) {
			mbedtls_mpi_lset(&a, 1);
			mbedtls_mpi_sub_int(&b, &grp.P, 1);
		} else {
			random_below(&a, &grp.P);
			random_below(&b, &grp.P);
		}
		mpi_to_fe(fa, &a);
		mpi_to_fe(fb, &b);
		fe_to_mont(ma, fa);
		fe_to_mont(mb, fb);
		fe_mul(fr, ma, mb);
		fe_from_mont(fr, fr);
		fe_to_mpi(&c, fr);
		mbedtls_mpi_mul_mpi(&want, &a, &b);
		mbedtls_mpi_mod_mpi(&want, &want, &grp.P);
		ok_mul &= mbedtls_mpi_cmp_mpi(&c, &want) == 0;
		fe_add(fr, fa, fb);
		fe_to_mpi(&c, fr);
		mbedtls_mpi_add_mpi(&want, &a, &b);
		mbedtls_mpi_mod_mpi(&want, &want, &grp.P);
		ok_add &= mbedtls_mpi_cmp_mpi(&c, &want) == 0;
		fe_sub(fr, fa, fb);
		fe_to_mpi(&c, fr);
		mbedtls_mpi_sub_mpi(&want, &a, &b);
		mbedtls_mpi_mod_mpi(&want, &want, &grp.P);
		ok_sub &= mbedtls_mpi_cmp_mpi(&c, &want) == 0;
		if (!fe_is_zero(fa)) {
			fe_inv(fr, ma);
			fe_mul(fr, fr, ma);
			ok_inv &= fe_eq(fr, p256_one);
		}
	}
	TEST("p256: field multiplication matches bignums (300 pairs, edges included)", ok_mul);
	TEST("p256: field addition matches bignums", ok_add);
	TEST("p256: field subtraction matches bignums", ok_sub);
	TEST("p256: a * 1/a = 1", ok_inv);
	mbedtls_mpi_free(&a);
	mbedtls_mpi_free(&b);
	mbedtls_mpi_free(&c);
	mbedtls_mpi_free(&want);
}

/* our u1 G + u2 Q against mbedtls_ecp_muladd's: 1 when both agree */
static int muladd_agrees(const mbedtls_mpi *u1, const mbedtls_mpi *u2, const mbedtls_ecp_point *Q)
{
	mbedtls_ecp_point want;
	struct p256_pt q, got;
	p256_fe f1, f2, x, y;
	mbedtls_mpi gx, gy;
	int ok;

	mbedtls_ecp_point_init(&want);
	mbedtls_mpi_init(&gx);
	mbedtls_mpi_init(&gy);
	if (mbedtls_ecp_muladd(&grp, &want, u1, &grp.G, u2, Q) != 0)
		return 0;
	mpi_to_fe(f1, u1);
	mpi_to_fe(f2, u2);
	mpi_to_fe(x, &Q->X);
	mpi_to_fe(y, &Q->Y);
	fe_to_mont(q.x, x);
	fe_to_mont(q.y, y);
	memcpy(q.z, p256_one, sizeof(q.z));
	p256_muladd(&got, f1, f2, &q);
	if (mbedtls_ecp_is_zero(&want)) {
		ok = fe_is_zero(got.z);
	} else if (fe_is_zero(got.z)) {
		ok = 0;
	} else {
		pt_affine(x, y, &got);
		fe_from_mont(x, x);
		fe_from_mont(y, y);
		fe_to_mpi(&gx, x);
		fe_to_mpi(&gy, y);
		ok = mbedtls_mpi_cmp_mpi(&gx, &want.X) == 0 && mbedtls_mpi_cmp_mpi(&gy, &want.Y) == 0;
	}
	mbedtls_ecp_point_free(&want);
	mbedtls_mpi_free(&gx);
	mbedtls_mpi_free(&gy);
	return ok;
}

static void test_muladd(void)
{
	mbedtls_mpi u1, u2, k;
	mbedtls_ecp_point Q;
	int i, ok = 1;

	mbedtls_mpi_init(&u1);
	mbedtls_mpi_init(&u2);
	mbedtls_mpi_init(&k);
	mbedtls_ecp_point_init(&Q);
	for (i = 0; i < 100; i++) {
		random_below(&k, &grp.N);
		mbedtls_mpi_add_int(&k, &k, 1);
		mbedtls_ecp_mul(&grp, &Q, &k, &grp.G, tls_rng, NULL);
		random_below(&u1, &grp.N);
		random_below(&u2, &grp.N);
		if (i == 0)
			mbedtls_mpi_lset(&u1, 0);          /* u2 Q alone */
		if (i == 1)
			mbedtls_mpi_sub_int(&u2, &grp.N, 1);
		ok &= muladd_agrees(&u1, &u2, &Q);
	}
	TEST("p256: u1 G + u2 Q matches mbedtls_ecp_muladd (100 random)", ok);
	/* Q = G: sums that meet doublings and infinity */
	mbedtls_ecp_copy(&Q, &grp.G);
	random_below(&u1, &grp.N);
	mbedtls_mpi_copy(&u2, &u1);
	TEST("p256: u G + u G (Q = G)", muladd_agrees(&u1, &u2, &Q));
	mbedtls_mpi_sub_mpi(&u2, &grp.N, &u1);
	TEST("p256: u G + (n - u) G is infinity", muladd_agrees(&u1, &u2, &Q));
	mbedtls_mpi_lset(&u1, 1);
	mbedtls_mpi_sub_int(&u2, &grp.N, 1);
	TEST("p256: G + (n - 1) G is infinity", muladd_agrees(&u1, &u2, &Q));
	mbedtls_mpi_lset(&u1, 5);
	mbedtls_mpi_lset(&u2, 3);
	TEST("p256: 5G + 3G", muladd_agrees(&u1, &u2, &Q));
	mbedtls_mpi_lset(&u1, 1);
	mbedtls_mpi_lset(&u2, 1);
	TEST("p256: G + G", muladd_agrees(&u1, &u2, &Q));
	mbedtls_mpi_sub_mpi(&Q.Y, &grp.P, &grp.G.Y);  /* Q = -G */
	random_below(&u1, &grp.N);
	mbedtls_mpi_copy(&u2, &u1);
	TEST("p256: u G + u (-G) is infinity", muladd_agrees(&u1, &u2, &Q));
	mbedtls_mpi_lset(&u1, 7);
	mbedtls_mpi_lset(&u2, 3);
	TEST("p256: 7G + 3(-G)", muladd_agrees(&u1, &u2, &Q));
	mbedtls_mpi_free(&u1);
	mbedtls_mpi_free(&u2);
	mbedtls_mpi_free(&k);
	mbedtls_ecp_point_free(&Q);
}

/* e from a hash as mbedTLS derives it for a 256-bit group (leftmost 32 bytes, < n) */
static void hash_to_mpi(mbedtls_mpi *e, const unsigned char *h, size_t hlen)
{
	mbedtls_mpi_read_binary(e, h, hlen > 32 ? 32 : hlen);
	if (mbedtls_mpi_cmp_mpi(e, &grp.N) >= 0)
		mbedtls_mpi_sub_mpi(e, e, &grp.N);
}

/* a signature by mbedTLS's arithmetic alone: k G by mbedtls_ecp_mul, s = (e + r d) / k by bignums */
static void ref_sign(mbedtls_mpi *r, mbedtls_mpi *s, const mbedtls_mpi *d, const unsigned char *h, size_t hlen)
{
	mbedtls_mpi k, e;
	mbedtls_ecp_point R;
	int tries = 0;

	mbedtls_mpi_init(&k);
	mbedtls_mpi_init(&e);
	mbedtls_ecp_point_init(&R);
	hash_to_mpi(&e, h, hlen);
	do {
		mbedtls_mpi_random(&k, 1, &grp.N, tls_rng, NULL);
		mbedtls_ecp_mul(&grp, &R, &k, &grp.G, tls_rng, NULL);
		mbedtls_mpi_mod_mpi(r, &R.X, &grp.N);
		mbedtls_mpi_mul_mpi(s, r, d);
		mbedtls_mpi_add_mpi(s, s, &e);
		mbedtls_mpi_inv_mod(&k, &k, &grp.N);
		mbedtls_mpi_mul_mpi(s, s, &k);
		mbedtls_mpi_mod_mpi(s, s, &grp.N);
	} while ((mbedtls_mpi_cmp_int(r, 0) == 0 || mbedtls_mpi_cmp_int(s, 0) == 0) && ++tries < 10);
	mbedtls_mpi_free(&k);
	mbedtls_mpi_free(&e);
	mbedtls_ecp_point_free(&R);
}

/* mbedTLS's verification math: 1 <= r, s < n and x(e/s G + r/s Q) mod n == r */
static int ref_verify(const mbedtls_ecp_point *Q, const unsigned char *h, size_t hlen,
                      const mbedtls_mpi *r, const mbedtls_mpi *s)
{
	mbedtls_mpi e, w, u1, u2, v;
	mbedtls_ecp_point R;
	int ok = 0;

	if (mbedtls_mpi_cmp_int(r, 1) < 0 || mbedtls_mpi_cmp_mpi(r, &grp.N) >= 0 ||
	    mbedtls_mpi_cmp_int(s, 1) < 0 || mbedtls_mpi_cmp_mpi(s, &grp.N) >= 0)
		return 0;
	mbedtls_mpi_init(&e);
	mbedtls_mpi_init(&w);
	mbedtls_mpi_init(&u1);
	mbedtls_mpi_init(&u2);
	mbedtls_mpi_init(&v);
	mbedtls_ecp_point_init(&R);
	hash_to_mpi(&e, h, hlen);
	mbedtls_mpi_inv_mod(&w, s, &grp.N);
	mbedtls_mpi_mul_mpi(&u1, &e, &w);
	mbedtls_mpi_mod_mpi(&u1, &u1, &grp.N);
	mbedtls_mpi_mul_mpi(&u2, r, &w);
	mbedtls_mpi_mod_mpi(&u2, &u2, &grp.N);
	if (mbedtls_ecp_muladd(&grp, &R, &u1, &grp.G, &u2, Q) == 0 && !mbedtls_ecp_is_zero(&R)) {
		mbedtls_mpi_mod_mpi(&v, &R.X, &grp.N);
		ok = mbedtls_mpi_cmp_mpi(&v, r) == 0;
	}
	mbedtls_mpi_free(&e);
	mbedtls_mpi_free(&w);
	mbedtls_mpi_free(&u1);
	mbedtls_mpi_free(&u2);
	mbedtls_mpi_free(&v);
	mbedtls_ecp_point_free(&R);
	return ok;
}

static void test_verify(void)
{
	mbedtls_ecp_keypair kp, other;
	mbedtls_mpi r, s, t;
	mbedtls_ecp_point bad;
	unsigned char hash[48];
	int i, good = 1, bad_hash = 1, bad_r = 1, bad_s = 1, bad_key = 1, neg_s = 1, h384 = 1;

	mbedtls_ecp_keypair_init(&kp);
	mbedtls_ecp_keypair_init(&other);
	mbedtls_mpi_init(&r);
	mbedtls_mpi_init(&s);
	mbedtls_mpi_init(&t);
	mbedtls_ecp_point_init(&bad);
	mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, &other, tls_rng, NULL);
	for (i = 0; i < 100; i++) {
		mbedtls_ecp_keypair_free(&kp);
		mbedtls_ecp_keypair_init(&kp);
		mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, &kp, tls_rng, NULL);
		tls_rng(NULL, hash, sizeof(hash));
		if (i == 0)
			memset(hash, 0, 32);               /* e = 0: u1 = 0 */
		ref_sign(&r, &s, &kp.d, hash, 32);
		good &= mbedtls_ecdsa_verify(&kp.grp, hash, 32, &kp.Q, &r, &s) == 0;
		hash[i % 32] ^= (unsigned char)(1u << (i % 8));
		bad_hash &= mbedtls_ecdsa_verify(&kp.grp, hash, 32, &kp.Q, &r, &s) != 0;
		hash[i % 32] ^= (unsigned char)(1u << (i % 8));
		mbedtls_mpi_add_int(&t, &r, 1);
		bad_r &= mbedtls_ecdsa_verify(&kp.grp, hash, 32, &kp.Q, &t, &s) != 0;
		mbedtls_mpi_add_int(&t, &s, 1);
		bad_s &= mbedtls_ecdsa_verify(&kp.grp, hash, 32, &kp.Q, &r, &t) != 0;
		bad_key &= mbedtls_ecdsa_verify(&kp.grp, hash, 32, &other.Q, &r, &s) != 0;
		mbedtls_mpi_sub_mpi(&t, &kp.grp.N, &s);  /* (r, n - s) is valid too, as in every ECDSA */
		neg_s &= mbedtls_ecdsa_verify(&kp.grp, hash, 32, &kp.Q, &r, &t) == 0;
		ref_sign(&r, &s, &kp.d, hash, 48);
		h384 &= mbedtls_ecdsa_verify(&kp.grp, hash, 48, &kp.Q, &r, &s) == 0;
	}
	TEST("ecdsa: signatures by mbedTLS's arithmetic verify (100 keys)", good);
	TEST("ecdsa: a flipped hash bit fails", bad_hash);
	TEST("ecdsa: r + 1 fails", bad_r);
	TEST("ecdsa: s + 1 fails", bad_s);
	TEST("ecdsa: another key fails", bad_key);
	TEST("ecdsa: (r, n - s) verifies, as mbedTLS's own verify accepts", neg_s);
	TEST("ecdsa: a 48-byte hash (leftmost 256 bits) verifies", h384);
	ref_sign(&r, &s, &kp.d, hash, 32);
	mbedtls_mpi_lset(&t, 0);
	TEST("ecdsa: r = 0 fails", mbedtls_ecdsa_verify(&kp.grp, hash, 32, &kp.Q, &t, &s) != 0);
	TEST("ecdsa: s = 0 fails", mbedtls_ecdsa_verify(&kp.grp, hash, 32, &kp.Q, &r, &t) != 0);
	mbedtls_mpi_add_mpi(&t, &r, &kp.grp.N);
	TEST("ecdsa: r + n fails", mbedtls_ecdsa_verify(&kp.grp, hash, 32, &kp.Q, &t, &s) != 0);
	mbedtls_mpi_add_mpi(&t, &s, &kp.grp.N);
	TEST("ecdsa: s + n fails", mbedtls_ecdsa_verify(&kp.grp, hash, 32, &kp.Q, &r, &t) != 0);
	mbedtls_ecp_copy(&bad, &kp.Q);
	mbedtls_mpi_add_int(&bad.Y, &bad.Y, 1);
	TEST("ecdsa: a key off the curve is refused", mbedtls_ecdsa_verify(&kp.grp, hash, 32, &bad, &r, &s) != 0);
	mbedtls_ecp_set_zero(&bad);
	TEST("ecdsa: the point at infinity as key is refused", mbedtls_ecdsa_verify(&kp.grp, hash, 32, &bad, &r, &s) != 0);
	TEST("ecdsa: still verifies after all that", mbedtls_ecdsa_verify(&kp.grp, hash, 32, &kp.Q, &r, &s) == 0);
	mbedtls_ecp_keypair_free(&kp);
	mbedtls_ecp_keypair_free(&other);
	mbedtls_mpi_free(&r);
	mbedtls_mpi_free(&s);
	mbedtls_mpi_free(&t);
	mbedtls_ecp_point_free(&bad);
}

/* ------------------------------------------------------------------ signing */

/* k G by tls.c's constant-time fixed-base code against mbedtls_ecp_mul (x and y) */
static int base_mul_agrees(const mbedtls_mpi *k)
{
	mbedtls_ecp_point want;
	struct p256_pt got;
	p256_fe kf, zi, x, y;
	mbedtls_mpi gx, gy;
	int ok;

	mbedtls_ecp_point_init(&want);
	mbedtls_mpi_init(&gx);
	mbedtls_mpi_init(&gy);
	if (mbedtls_ecp_mul(&grp, &want, k, &grp.G, tls_rng, NULL) != 0)
		return 0;
	mpi_to_fe(kf, k);
	p256_base_mul(&got, kf);
	if (mbedtls_ecp_is_zero(&want)) {
		ok = fe_is_zero(got.z);
	} else if (fe_is_zero(got.z)) {
		ok = 0;
	} else {
		fe_inv(zi, got.z);                     /* homogeneous: x = X/Z, y = Y/Z */
		fe_mul(x, got.x, zi);
		fe_mul(y, got.y, zi);
		fe_from_mont(x, x);
		fe_from_mont(y, y);
		fe_to_mpi(&gx, x);
		fe_to_mpi(&gy, y);
		ok = mbedtls_mpi_cmp_mpi(&gx, &want.X) == 0 && mbedtls_mpi_cmp_mpi(&gy, &want.Y) == 0;
	}
	mbedtls_ecp_point_free(&want);
	mbedtls_mpi_free(&gx);
	mbedtls_mpi_free(&gy);
	return ok;
}

/* a = P (Jacobian, z = one) as homogeneous (X : Y : Z) with a random Z */
static void to_homogeneous(struct p256_pt *h, const struct p256_pt *a)
{
	mbedtls_mpi z;
	p256_fe zf, zm;

	mbedtls_mpi_init(&z);
	mbedtls_mpi_random(&z, 1, &grp.P, tls_rng, NULL);
	mpi_to_fe(zf, &z);
	fe_to_mont(zm, zf);
	fe_mul(h->x, a->x, zm);
	fe_mul(h->y, a->y, zm);
	memcpy(h->z, zm, sizeof(zm));
	mbedtls_mpi_free(&z);
}

/* the complete mixed addition on the cases incomplete formulas get wrong */
static void test_add_complete(void)
{
	struct p256_pt inf, g, g2, h, r;
	struct p256_aff ga = { { 0 }, { 0 } }, gn;
	p256_fe zi, x, y;

	memcpy(ga.x, p256_g[0].x, sizeof(p256_fe));
	memcpy(ga.y, p256_g[0].y, sizeof(p256_fe));
	gn = ga;
	fe_sub(gn.y, (const uint64_t[4]){ 0, 0, 0, 0 }, ga.y);
	memset(&inf, 0, sizeof(inf));
	memcpy(inf.y, p256_one, sizeof(p256_fe));
	pt_add_complete(&r, &inf, &ga);            /* O + G = G */
	fe_inv(zi, r.z);
	fe_mul(x, r.x, zi);
	fe_mul(y, r.y, zi);
	TEST("p256 sign: O + G = G (complete addition)", !fe_is_zero(r.z) && fe_eq(x, ga.x) && fe_eq(y, ga.y));
	to_homogeneous(&h, &p256_g[0]);
	pt_add_complete(&r, &h, &ga);              /* G + G = 2G, a doubling */
	pt_double(&g2, &p256_g[0]);
	pt_affine(g.x, g.y, &g2);
	fe_inv(zi, r.z);
	fe_mul(x, r.x, zi);
	fe_mul(y, r.y, zi);
	TEST("p256 sign: G + G = 2G (complete addition)", !fe_is_zero(r.z) && fe_eq(x, g.x) && fe_eq(y, g.y));
	pt_add_complete(&r, &h, &gn);              /* G + (-G) = O */
	TEST("p256 sign: G + (-G) = O (complete addition)", fe_is_zero(r.z) && !fe_is_zero(r.y));
	pt_add_complete(&r, &r, &ga);              /* O (as the sum left it) + G = G */
	fe_inv(zi, r.z);
	fe_mul(x, r.x, zi);
	fe_mul(y, r.y, zi);
	TEST("p256 sign: (G + (-G)) + G = G", !fe_is_zero(r.z) && fe_eq(x, ga.x) && fe_eq(y, ga.y));
}

static void test_base_mul(void)
{
	mbedtls_mpi k;
	struct p256_pt r;
	p256_fe kf;
	int i, ok = 1, pow16 = 1;

	mbedtls_mpi_init(&k);
	for (i = 0; i < 200; i++) {
		mbedtls_mpi_random(&k, 1, &grp.N, tls_rng, NULL);
		ok &= base_mul_agrees(&k);
	}
	TEST("p256 sign: k G matches mbedtls_ecp_mul (200 random k)", ok);
	ok = 1;
	for (i = 1; i <= 17; i++) {
		mbedtls_mpi_lset(&k, i);
		ok &= base_mul_agrees(&k);
	}
	TEST("p256 sign: k G for k = 1 .. 17", ok);
	for (i = 1; i <= 3; i++) {
		mbedtls_mpi_sub_int(&k, &grp.N, i);
		ok &= base_mul_agrees(&k);
	}
	TEST("p256 sign: k G for k = n - 1, n - 2, n - 3", ok);
	for (i = 0; i < 64; i++) {
		mbedtls_mpi_lset(&k, 1);
		mbedtls_mpi_shift_l(&k, (size_t)(4 * i));
		pow16 &= base_mul_agrees(&k);          /* one non-zero window, 63 zero ones */
		mbedtls_mpi_mul_int(&k, &k, 15);
		pow16 &= base_mul_agrees(&k);          /* the table's last entry of window i */
	}
	TEST("p256 sign: k G for k = 16^i and 15 16^i (i = 0 .. 63)", pow16);
	ok = 1;
	mbedtls_mpi_read_string(&k, 16, "1000000000000000000000000000000000000000000000000000000000000001");
	ok &= base_mul_agrees(&k);
	mbedtls_mpi_read_string(&k, 16, "0fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff");
	ok &= base_mul_agrees(&k);
	mbedtls_mpi_read_string(&k, 16, "f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0");
	ok &= base_mul_agrees(&k);
	mbedtls_mpi_read_string(&k, 16, "0000000100000000000000000000000000000000000000000000000000000000");
	ok &= base_mul_agrees(&k);
	TEST("p256 sign: k G with runs of zero and full windows", ok);
	/* outside what signing uses, but the formula is complete: n G = O, its last step adding P and -P */
	mpi_to_fe(kf, &grp.N);
	p256_base_mul(&r, kf);
	TEST("p256 sign: n G is the point at infinity", fe_is_zero(r.z) && !fe_is_zero(r.y));
	memset(kf, 0, sizeof(kf));
	p256_base_mul(&r, kf);
	TEST("p256 sign: 0 G is the point at infinity", fe_is_zero(r.z) && !fe_is_zero(r.y));
	mbedtls_mpi_free(&k);
}

/* an RNG that plays back a script of 32-byte values, then fails */
struct script_rng {
	const unsigned char (*v)[32];              /* the values, in order */
	int n, calls;                              /* how many; calls so far */
};

static int script_rng(void *ctx, unsigned char *out, size_t len)
{
	struct script_rng *sr = ctx;

	if (len != 32 || sr->calls >= sr->n)
		return MBEDTLS_ERR_CTR_DRBG_ENTROPY_SOURCE_FAILED;
	memcpy(out, sr->v[sr->calls++], 32);
	return 0;
}

static void test_sign(void)
{
	mbedtls_ecp_keypair kp, other;
	mbedtls_mpi r, s, r2, s2, t, k;
	mbedtls_ecp_point R;
	unsigned char hash[48], v[3][32], ff[200][32];
	struct script_rng sr = { (const unsigned char (*)[32])v, 3, 0 };
	int i, rc, good = 1, ours = 1, bad_hash = 1, bad_key = 1, h384 = 1, fresh = 1;

	mbedtls_ecp_keypair_init(&kp);
	mbedtls_ecp_keypair_init(&other);
	mbedtls_mpi_init(&r);
	mbedtls_mpi_init(&s);
	mbedtls_mpi_init(&r2);
	mbedtls_mpi_init(&s2);
	mbedtls_mpi_init(&t);
	mbedtls_mpi_init(&k);
	mbedtls_ecp_point_init(&R);
	mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, &other, tls_rng, NULL);
	for (i = 0; i < 100; i++) {
		mbedtls_ecp_keypair_free(&kp);
		mbedtls_ecp_keypair_init(&kp);
		mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, &kp, tls_rng, NULL);
		tls_rng(NULL, hash, sizeof(hash));
		if (i == 0)
			memset(hash, 0, 32);               /* e = 0 */
		if (i == 1)
			memset(hash, 0xff, 32);            /* e >= n: reduced */
		rc = mbedtls_ecdsa_sign(&kp.grp, &r, &s, &kp.d, hash, 32, tls_rng, NULL);
		good &= rc == 0 && ref_verify(&kp.Q, hash, 32, &r, &s);
		ours &= mbedtls_ecdsa_verify(&kp.grp, hash, 32, &kp.Q, &r, &s) == 0;
		bad_key &= !ref_verify(&other.Q, hash, 32, &r, &s);
		hash[i % 32] ^= (unsigned char)(1u << (i % 8));
		bad_hash &= !ref_verify(&kp.Q, hash, 32, &r, &s) &&
		            mbedtls_ecdsa_verify(&kp.grp, hash, 32, &kp.Q, &r, &s) != 0;
		/* a fresh nonce every time: the same key and hash give another signature */
		mbedtls_ecdsa_sign(&kp.grp, &r2, &s2, &kp.d, hash, 32, tls_rng, NULL);
		mbedtls_ecdsa_sign(&kp.grp, &r, &s, &kp.d, hash, 32, tls_rng, NULL);
		fresh &= mbedtls_mpi_cmp_mpi(&r, &r2) != 0 && mbedtls_mpi_cmp_mpi(&s, &s2) != 0;
		rc = mbedtls_ecdsa_sign(&kp.grp, &r, &s, &kp.d, hash, 48, tls_rng, NULL);
		h384 &= rc == 0 && ref_verify(&kp.Q, hash, 48, &r, &s);
	}
	TEST("p256 sign: signatures pass mbedTLS's verification math (100 keys, e = 0 and e >= n included)", good);
	TEST("p256 sign: signatures pass our verify", ours);
	TEST("p256 sign: another key's check fails", bad_key);
	TEST("p256 sign: a flipped hash bit fails both verifications", bad_hash);
	TEST("p256 sign: signing twice gives two different signatures", fresh);
	TEST("p256 sign: a 48-byte hash (leftmost 256 bits)", h384);

	/* nonces: n and 0 are rejected, the third draw is used: r = x(k G) mod n for that k */
	tls_rng(NULL, hash, 32);
	mbedtls_mpi_write_binary(&grp.N, v[0], 32);
	memset(v[1], 0, 32);
	mbedtls_mpi_random(&k, 1, &grp.N, tls_rng, NULL);
	mbedtls_mpi_write_binary(&k, v[2], 32);
	rc = mbedtls_ecdsa_sign(&kp.grp, &r, &s, &kp.d, hash, 32, script_rng, &sr);
	mbedtls_ecp_mul(&grp, &R, &k, &grp.G, tls_rng, NULL);
	mbedtls_mpi_mod_mpi(&t, &R.X, &grp.N);
	TEST("p256 sign: nonces n and 0 are drawn again, the valid one is used",
	     rc == 0 && sr.calls == 3 && mbedtls_mpi_cmp_mpi(&r, &t) == 0 && ref_verify(&kp.Q, hash, 32, &r, &s));
	sr.calls = 2;                              /* the same nonce again: the same signature (k is the only randomness) */
	rc = mbedtls_ecdsa_sign(&kp.grp, &r2, &s2, &kp.d, hash, 32, script_rng, &sr);
	TEST("p256 sign: the same nonce gives the same signature", rc == 0 &&
	     mbedtls_mpi_cmp_mpi(&r, &r2) == 0 && mbedtls_mpi_cmp_mpi(&s, &s2) == 0);
	sr.calls = 0;
	sr.n = 2;                                  /* only bad nonces, then the RNG fails: its error comes back */
	rc = mbedtls_ecdsa_sign(&kp.grp, &r, &s, &kp.d, hash, 32, script_rng, &sr);
	TEST("p256 sign: a failing RNG's error is returned", rc == MBEDTLS_ERR_CTR_DRBG_ENTROPY_SOURCE_FAILED);
	memset(ff, 0xff, sizeof(ff));              /* always >= n: gives up after a bounded number of draws */
	sr.v = (const unsigned char (*)[32])ff;
	sr.n = (int)(sizeof(ff) / sizeof(ff[0]));
	sr.calls = 0;
	rc = mbedtls_ecdsa_sign(&kp.grp, &r, &s, &kp.d, hash, 32, script_rng, &sr);
	TEST("p256 sign: an RNG that never gives a valid nonce fails cleanly",
	     rc == MBEDTLS_ERR_ECP_RANDOM_FAILED && sr.calls > 1 && sr.calls < sr.n);
	mbedtls_mpi_lset(&t, 0);
	rc = mbedtls_ecdsa_sign(&kp.grp, &r, &s, &t, hash, 32, tls_rng, NULL);
	TEST("p256 sign: d = 0 is refused", rc == MBEDTLS_ERR_ECP_INVALID_KEY);
	rc = mbedtls_ecdsa_sign(&kp.grp, &r, &s, &grp.N, hash, 32, tls_rng, NULL);
	TEST("p256 sign: d = n is refused", rc == MBEDTLS_ERR_ECP_INVALID_KEY);
	mbedtls_mpi_sub_int(&t, &grp.N, 1);        /* d = n - 1: Q = -G */
	rc = mbedtls_ecdsa_sign(&kp.grp, &r, &s, &t, hash, 32, tls_rng, NULL);
	mbedtls_ecp_copy(&R, &grp.G);
	mbedtls_mpi_sub_mpi(&R.Y, &grp.P, &grp.G.Y);
	TEST("p256 sign: d = n - 1 signs (Q = -G)", rc == 0 && ref_verify(&R, hash, 32, &r, &s));
	mbedtls_ecp_keypair_free(&kp);
	mbedtls_ecp_keypair_free(&other);
	mbedtls_mpi_free(&r);
	mbedtls_mpi_free(&s);
	mbedtls_mpi_free(&r2);
	mbedtls_mpi_free(&s2);
	mbedtls_mpi_free(&t);
	mbedtls_mpi_free(&k);
	mbedtls_ecp_point_free(&R);
}

/* ------------------------------------------------------------------ ECDH */

/* x(d Q) by tls.c's mbedtls_ecdh_compute_shared against mbedtls_ecp_mul (mbedTLS's own code) */
static int ecdh_agrees(const mbedtls_mpi *d, const mbedtls_ecp_point *Q)
{
	mbedtls_ecp_point want;
	mbedtls_mpi z;
	int ok;

	mbedtls_ecp_point_init(&want);
	mbedtls_mpi_init(&z);
	ok = mbedtls_ecp_mul(&grp, &want, d, Q, tls_rng, NULL) == 0 &&
	     mbedtls_ecdh_compute_shared(&grp, &z, Q, d, tls_rng, NULL) == 0 &&
	     mbedtls_mpi_cmp_mpi(&z, &want.X) == 0;
	mbedtls_ecp_point_free(&want);
	mbedtls_mpi_free(&z);
	return ok;
}

static void test_ecdh(void)
{
	mbedtls_ecp_point Q, bad, qa, qb;
	mbedtls_mpi d, k, z, za, zb;
	int i, ok = 1, edges = 1;

	mbedtls_ecp_point_init(&Q);
	mbedtls_ecp_point_init(&bad);
	mbedtls_mpi_init(&d);
	mbedtls_mpi_init(&k);
	mbedtls_mpi_init(&z);
	for (i = 0; i < 100; i++) {                /* random keys, random peers */
		mbedtls_mpi_random(&k, 1, &grp.N, tls_rng, NULL);
		mbedtls_ecp_mul(&grp, &Q, &k, &grp.G, tls_rng, NULL);
		mbedtls_mpi_random(&d, 1, &grp.N, tls_rng, NULL);
		ok &= ecdh_agrees(&d, &Q);
	}
	TEST("p256 ecdh: x(d Q) matches mbedtls_ecp_mul (100 random d and Q)", ok);
	mbedtls_mpi_random(&k, 1, &grp.N, tls_rng, NULL);
	mbedtls_ecp_mul(&grp, &Q, &k, &grp.G, tls_rng, NULL);
	for (i = 1; i <= 17; i++) {                /* the table itself, and the first carries */
		mbedtls_mpi_lset(&d, i);
		edges &= ecdh_agrees(&d, &Q);
	}
	for (i = 1; i <= 3; i++) {
		mbedtls_mpi_sub_int(&d, &grp.N, i);
		edges &= ecdh_agrees(&d, &Q);
	}
	for (i = 0; i < 64; i++) {                 /* one non-zero window among zero ones */
		mbedtls_mpi_lset(&d, 15);
		mbedtls_mpi_shift_l(&d, (size_t)(4 * i));
		edges &= ecdh_agrees(&d, &Q);
	}
	mbedtls_mpi_read_string(&d, 16, "f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0");
	edges &= ecdh_agrees(&d, &Q);
	edges &= ecdh_agrees(&d, &grp.G);
	TEST("p256 ecdh: d = 1 .. 17, n - 1 .. n - 3, 15 16^i, alternating windows; Q = G", edges);
	/* refused as mbedTLS refuses them: d out of [1, n - 1], Q off the curve or at infinity */
	mbedtls_mpi_lset(&d, 0);
	ok = mbedtls_ecdh_compute_shared(&grp, &z, &Q, &d, tls_rng, NULL) != 0;
	mbedtls_mpi_copy(&d, &grp.N);
	ok &= mbedtls_ecdh_compute_shared(&grp, &z, &Q, &d, tls_rng, NULL) != 0;
	mbedtls_mpi_lset(&d, 7);
	mbedtls_ecp_copy(&bad, &Q);
	mbedtls_mpi_add_int(&bad.Y, &bad.Y, 1);
	ok &= mbedtls_ecdh_compute_shared(&grp, &z, &bad, &d, tls_rng, NULL) != 0;
	mbedtls_ecp_set_zero(&bad);
	ok &= mbedtls_ecdh_compute_shared(&grp, &z, &bad, &d, tls_rng, NULL) != 0;
	TEST("p256 ecdh: d = 0, d = n, Q off the curve, Q at infinity are refused", ok);
	/* two parties agree: x(da (db G)) = x(db (da G)), both by tls.c */
	mbedtls_ecp_point_init(&qa);
	mbedtls_ecp_point_init(&qb);
	mbedtls_mpi_init(&za);
	mbedtls_mpi_init(&zb);
	mbedtls_mpi_random(&d, 1, &grp.N, tls_rng, NULL);
	mbedtls_mpi_random(&k, 1, &grp.N, tls_rng, NULL);
	ok = mbedtls_ecp_mul(&grp, &qa, &d, &grp.G, tls_rng, NULL) == 0 && mbedtls_ecp_mul(&grp, &qb, &k, &grp.G, tls_rng, NULL) == 0 &&
	     mbedtls_ecdh_compute_shared(&grp, &za, &qb, &d, tls_rng, NULL) == 0 &&
	     mbedtls_ecdh_compute_shared(&grp, &zb, &qa, &k, tls_rng, NULL) == 0 && mbedtls_mpi_cmp_mpi(&za, &zb) == 0;
	TEST("p256 ecdh: two parties compute the same secret", ok);
	mbedtls_ecp_point_free(&qa);
	mbedtls_ecp_point_free(&qb);
	mbedtls_mpi_free(&za);
	mbedtls_mpi_free(&zb);
	mbedtls_ecp_point_free(&Q);
	mbedtls_ecp_point_free(&bad);
	mbedtls_mpi_free(&d);
	mbedtls_mpi_free(&k);
	mbedtls_mpi_free(&z);
}

/* the CA's path: a good CSR is signed, one with an altered signature is refused */
static void test_csr(void)
{
	long long now = time(NULL);
	struct tls_issue rq = { "CN=test root,O=mesh", NULL, NULL, 0, 1, -1, now - 60, now + 3600 };
	struct tls_issue wr = { "O=mesh", "spiffe://cluster.local/ns/default/sa/a", NULL, 0, 0, -1, now - 60, now + 3600 };
	char err[256] = "", *ck = tls_key_generate(err, sizeof(err)), *key = tls_key_generate(err, sizeof(err));
	char *crt = ck ? tls_issue_for_key(NULL, &rq, ck, err, sizeof(err)) : NULL;
	struct tls_issuer *iss = crt ? tls_issuer_new(crt, ck, err, sizeof(err)) : NULL;
	char *csr = key ? tls_csr_create(key, wr.uri_san, err, sizeof(err)) : NULL;
	char *out = iss && csr ? tls_issue_for_csr(iss, &wr, csr, strlen(csr), err, sizeof(err)) : NULL;
	mbedtls_x509_csr c;
	unsigned char der[2048], *sig;
	char pem[4096];
	size_t dl = 0, pl;

	TEST("csr: a good CSR is signed", out != NULL);
	free(out);
	/* flip one bit of the signature's last byte (s's lowest bit) in the DER, re-armour */
	mbedtls_x509_csr_init(&c);
	if (csr && mbedtls_x509_csr_parse(&c, (const unsigned char *)csr, strlen(csr) + 1) == 0 && c.raw.len <= sizeof(der)) {
		dl = c.raw.len;
		memcpy(der, c.raw.p, dl);
		sig = der + (c.MBEDTLS_PRIVATE(sig).p - c.raw.p) + c.MBEDTLS_PRIVATE(sig).len - 1;
		*sig ^= 1;
	}
	mbedtls_x509_csr_free(&c);
	out = NULL;
	if (dl && mbedtls_pem_write_buffer("-----BEGIN CERTIFICATE REQUEST-----\n", "-----END CERTIFICATE REQUEST-----\n",
	                                   der, dl, (unsigned char *)pem, sizeof(pem), &pl) == 0)
		out = tls_issue_for_csr(iss, &wr, pem, strlen(pem), err, sizeof(err));
	TEST("csr: an altered signature is refused", dl && !out && strstr(err, "signature"));
	free(out);
	tls_issuer_free(iss);
	free(ck);
	free(key);
	free(crt);
	free(csr);
}

int main(void)
{
	TEST("init", tls_global_init() == 0);
	mbedtls_ecp_group_init(&grp);
	TEST("group", mbedtls_ecp_group_load(&grp, MBEDTLS_ECP_DP_SECP256R1) == 0);
	pthread_once(&p256_once, p256_init);
	TEST("p256: table made, constants match mbedTLS's group", p256_ready);
	if (!p256_ready)
		return test_report();
	test_field();
	test_muladd();
	test_verify();
	pthread_once(&p256_sign_once, p256_sign_init);
	TEST("p256 sign: fixed-base table made", p256_sign_ready);
	if (!p256_sign_ready)
		return test_report();
	test_add_complete();
	test_base_mul();
	test_sign();
	test_ecdh();
	test_csr();
	mbedtls_ecp_group_free(&grp);
	return test_report();
}
