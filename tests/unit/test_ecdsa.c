/*
 * tls.c's P-256 ECDSA verification (mbedtls_ecdsa_verify, built with
 * MBEDTLS_ECDSA_VERIFY_ALT): the field arithmetic against mbedTLS bignums,
 * u1*G + u2*Q against mbedtls_ecp_muladd (including the sums that meet a
 * doubling or the point at infinity), and verification of mbedTLS's own
 * signatures: good ones pass, altered ones (hash, r, s, key, ranges) fail;
 * a CSR whose signature was altered is refused by tls_issue_for_csr.
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
	int i, k;

	for (i = 0; i < 4; i++)
		for (k = 0; k < 8; k++)
			b[(3 - i) * 8 + k] = (unsigned char)(a[i] >> (56 - 8 * k));
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
		mbedtls_ecdsa_sign(&kp.grp, &r, &s, &kp.d, hash, 32, tls_rng, NULL);
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
		mbedtls_ecdsa_sign(&kp.grp, &r, &s, &kp.d, hash, 48, tls_rng, NULL);
		h384 &= mbedtls_ecdsa_verify(&kp.grp, hash, 48, &kp.Q, &r, &s) == 0;
	}
	TEST("ecdsa: mbedTLS's signatures verify (100 keys)", good);
	TEST("ecdsa: a flipped hash bit fails", bad_hash);
	TEST("ecdsa: r + 1 fails", bad_r);
	TEST("ecdsa: s + 1 fails", bad_s);
	TEST("ecdsa: another key fails", bad_key);
	TEST("ecdsa: (r, n - s) verifies, as mbedTLS's own verify accepts", neg_s);
	TEST("ecdsa: a 48-byte hash (leftmost 256 bits) verifies", h384);
	mbedtls_ecdsa_sign(&kp.grp, &r, &s, &kp.d, hash, 32, tls_rng, NULL);
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
	test_csr();
	mbedtls_ecp_group_free(&grp);
	return test_report();
}
