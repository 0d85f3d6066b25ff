/*
 * test_auth.c - JWT verification: each algorithm with keys made here,
 * algorithm pinning ("none", HS256 against a public key, RS256 against an
 * EC key), signature tampering, exp/nbf leeway, aud/iss, topic claims.
 */
#include <cjson/cJSON.h>
#include <openssl/bio.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "acl.h"
#include "auth.h"
#include "check.h"
#include "conf.h"

static char *b64url(const void *data, size_t len)
{
	static const char tbl[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	const unsigned char *p = data;
	char *out = malloc(len * 4 / 3 + 4), *o = out;

	for (size_t i = 0; i < len; i += 3) {
		unsigned v = p[i] << 16 | (i + 1 < len ? p[i + 1] << 8 : 0) |
			     (i + 2 < len ? p[i + 2] : 0);

		*o++ = tbl[v >> 18 & 63];
		*o++ = tbl[v >> 12 & 63];
		if (i + 1 < len)
			*o++ = tbl[v >> 6 & 63];
		if (i + 2 < len)
			*o++ = tbl[v & 63];
	}
	*o = 0;
	return out;
}

/* Signs header.claims with alg using the given secret or private key. */
static char *make_token(const char *alg, const char *claims,
			const char *secret, EVP_PKEY *key)
{
	char header[128], *h, *c, *signing, *sig64 = NULL, *token;
	unsigned char sig[1024];
	size_t siglen = sizeof(sig);

	snprintf(header, sizeof(header), "{\"alg\":\"%s\",\"typ\":\"JWT\"}", alg);
	h = b64url(header, strlen(header));
	c = b64url(claims, strlen(claims));
	if (asprintf(&signing, "%s.%s", h, c) < 0)
		abort();
	if (!key && strcmp(alg, "none") != 0) {
		/* HS256, and headers naming other algorithms over an HMAC
		 * signature (the verifier must refuse those). */
		unsigned int n = 0;

		HMAC(EVP_sha256(), secret, (int)strlen(secret),
		     (unsigned char *)signing, strlen(signing), sig, &n);
		siglen = n;
	} else if (strcmp(alg, "none") == 0) {
		siglen = 0;
	} else {
		EVP_MD_CTX *md = EVP_MD_CTX_new();

		EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key);
		EVP_DigestSign(md, sig, &siglen, (unsigned char *)signing,
			       strlen(signing));
		EVP_MD_CTX_free(md);
		if (strcmp(alg, "ES256") == 0) { /* DER -> r||s */
			const unsigned char *p = sig;
			ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)siglen);
			const BIGNUM *r, *s;

			ECDSA_SIG_get0(es, &r, &s);
			memset(sig, 0, 64);
			BN_bn2binpad(r, sig, 32);
			BN_bn2binpad(s, sig + 32, 32);
			siglen = 64;
			ECDSA_SIG_free(es);
		}
	}
	sig64 = b64url(sig, siglen);
	if (asprintf(&token, "%s.%s", signing, sig64) < 0)
		abort();
	free(h);
	free(c);
	free(signing);
	free(sig64);
	return token;
}

static char *public_pem(EVP_PKEY *k)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data, *out;
	long n;

	PEM_write_bio_PUBKEY(bio, k);
	n = BIO_get_mem_data(bio, &data);
	out = strndup(data, (size_t)n);
	BIO_free(bio);
	return out;
}

static struct conf_auth base_auth(void)
{
	struct conf_auth a;

	memset(&a, 0, sizeof(a));
	a.jwt_subscribe_claim = "sub_topics";
	a.jwt_publish_claim = "pub_topics";
	a.jwt_audience = "";
	a.jwt_issuer = "";
	return a;
}

/* Verifies; returns the result and frees what it got. */
static int verify(const struct conf_auth *a, const char *token,
		  struct acl *acl_out)
{
	struct acl acl;
	int64_t exp;
	char why[256];
	int r = auth_verify(a, token, strlen(token), &acl, &exp, why, sizeof(why));

	if (r == 0 && acl_out)
		*acl_out = acl;
	else
		acl_free(&acl);
	CHECK(strstr(why, token) == NULL || r == 0);
	return r;
}

static void test_hs256(void)
{
	struct conf_auth a = base_auth();
	char claims[512], *t;
	struct acl acl;
	long now = (long)time(NULL);

	a.jwt_secret = "s3cret";
	CHECK(auth_enabled(&a));
	snprintf(claims, sizeof(claims),
		 "{\"sub\":\"u\",\"exp\":%ld,\"sub_topics\":[\"sensors/#\"],\"pub_topics\":\"cmd/+/set\"}",
		 now + 600);
	t = make_token("HS256", claims, "s3cret", NULL);
	CHECK_INT(verify(&a, t, &acl), 0);
	CHECK_INT(acl.nsub, 1);
	CHECK_INT(acl.npub, 1);
	CHECK(acl_may_subscribe(&acl, "sensors/+/temp"));
	CHECK(!acl_may_subscribe(&acl, "#"));
	CHECK(acl_may_publish(&acl, "cmd/a/set"));
	CHECK(!acl_may_publish(&acl, "cmd/a/b/set"));
	acl_free(&acl);
	/* tampered signature, wrong secret */
	t[strlen(t) - 2] ^= 1;
	CHECK(verify(&a, t, NULL) < 0);
	free(t);
	t = make_token("HS256", claims, "other", NULL);
	CHECK(verify(&a, t, NULL) < 0);
	free(t);
	/* alg none, lower-case variants */
	t = make_token("none", claims, NULL, NULL);
	CHECK(verify(&a, t, NULL) < 0);
	free(t);
	t = make_token("hs256", claims, "s3cret", NULL);
	CHECK(verify(&a, t, NULL) < 0);
	free(t);
	/* expired beyond leeway, within leeway, nbf in the future */
	snprintf(claims, sizeof(claims), "{\"exp\":%ld}", now - 120);
	t = make_token("HS256", claims, "s3cret", NULL);
	CHECK(verify(&a, t, NULL) < 0);
	free(t);
	snprintf(claims, sizeof(claims), "{\"exp\":%ld}", now - 5);
	t = make_token("HS256", claims, "s3cret", NULL);
	CHECK_INT(verify(&a, t, NULL), 0);
	free(t);
	snprintf(claims, sizeof(claims), "{\"nbf\":%ld}", now + 300);
	t = make_token("HS256", claims, "s3cret", NULL);
	CHECK(verify(&a, t, NULL) < 0);
	free(t);
	snprintf(claims, sizeof(claims), "{\"exp\":\"soon\"}");
	t = make_token("HS256", claims, "s3cret", NULL);
	CHECK(verify(&a, t, NULL) < 0);
	free(t);
	/* audience and issuer */
	a.jwt_audience = "mqgate";
	a.jwt_issuer = "https://issuer.example";
	t = make_token("HS256", "{\"aud\":[\"x\",\"mqgate\"],\"iss\":\"https://issuer.example\"}",
		       "s3cret", NULL);
	CHECK_INT(verify(&a, t, NULL), 0);
	free(t);
	t = make_token("HS256", "{\"aud\":\"other\",\"iss\":\"https://issuer.example\"}",
		       "s3cret", NULL);
	CHECK(verify(&a, t, NULL) < 0);
	free(t);
	t = make_token("HS256", "{\"aud\":\"mqgate\"}", "s3cret", NULL);
	CHECK(verify(&a, t, NULL) < 0);
	free(t);
	/* invalid filters in claims, wrong claim type */
	a.jwt_audience = a.jwt_issuer = "";
	t = make_token("HS256", "{\"sub_topics\":[\"a/#/b\"]}", "s3cret", NULL);
	CHECK(verify(&a, t, NULL) < 0);
	free(t);
	t = make_token("HS256", "{\"sub_topics\":{\"a\":1}}", "s3cret", NULL);
	CHECK(verify(&a, t, NULL) < 0);
	free(t);
	/* no claims: a valid token that allows nothing */
	t = make_token("HS256", "{}", "s3cret", NULL);
	CHECK_INT(verify(&a, t, &acl), 0);
	CHECK(!acl_may_subscribe(&acl, "a"));
	CHECK(acl.owned);
	acl_free(&acl);
	free(t);
	/* malformed */
	CHECK(verify(&a, "abc", NULL) < 0);
	CHECK(verify(&a, "a.b", NULL) < 0);
	CHECK(verify(&a, "a.b.c.d", NULL) < 0);
	CHECK(verify(&a, "!!!.???.***", NULL) < 0);
	CHECK(verify(&a, "..", NULL) < 0);
}

static void test_public_keys(void)
{
	EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	EVP_PKEY *rsa2 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	struct conf_auth a = base_auth();
	char *rsa_pem = public_pem(rsa), *ec_pem = public_pem(ec), *t;
	const char *claims = "{\"sub_topics\":[\"#\"]}";

	CHECK(rsa && ec && rsa2);
	a.jwt_public_key = rsa_pem;
	t = make_token("RS256", claims, NULL, rsa);
	CHECK_INT(verify(&a, t, NULL), 0);
	free(t);
	t = make_token("RS256", claims, NULL, rsa2);
	CHECK(verify(&a, t, NULL) < 0);
	free(t);
	/* algorithm confusion: HS256 signed with the public key text */
	t = make_token("HS256", claims, rsa_pem, NULL);
	CHECK(verify(&a, t, NULL) < 0);
	free(t);
	t = make_token("ES256", claims, NULL, ec);
	CHECK(verify(&a, t, NULL) < 0);
	free(t);

	a.jwt_public_key = ec_pem;
	t = make_token("ES256", claims, NULL, ec);
	CHECK_INT(verify(&a, t, NULL), 0);
	t[strlen(t) - 3] ^= 2;
	CHECK(verify(&a, t, NULL) < 0);
	free(t);
	t = make_token("RS256", claims, NULL, rsa);
	CHECK(verify(&a, t, NULL) < 0);
	free(t);
	a.jwt_public_key = "not a key";
	t = make_token("RS256", claims, NULL, rsa);
	CHECK(verify(&a, t, NULL) < 0);
	free(t);
	free(rsa_pem);
	free(ec_pem);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(rsa2);
	EVP_PKEY_free(ec);
}

int main(void)
{
	test_hs256();
	test_public_keys();
	return check_summary("auth");
}
