/*
 * auth.c - JSON Web Token verification (see auth.h). HS256 with the
 * configured secret, or RS256/ES256 with the configured public key: the
 * key decides the one algorithm accepted, so "none" and algorithm
 * confusion are refused. Claims: exp and nbf (with leeway), aud, iss, and
 * the configured topic-list claims. Nothing here logs or returns the token.
 */
#include "auth.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "acl.h"
#include "conf.h"
#include "payload.h"
#include "topic.h"

#define AUTH_LEEWAY_S 30
#define AUTH_MAX_FILTERS 256
#define AUTH_TOKEN_MAX 8192

bool auth_enabled(const struct conf_auth *a)
{
	return a->jwt_secret || a->jwt_public_key;
}

/* base64url without padding -> bytes; malloc'd, NUL-terminated. */
static unsigned char *auth_b64url(const char *s, size_t len, size_t *out_len)
{
	char *std = malloc(len + 4);
	unsigned char *out;
	long n;
	size_t i;

	if (!std)
		return NULL;
	for (i = 0; i < len; i++) {
		char c = s[i];

		if (c == '+' || c == '/' || c == '=') {
			free(std);
			return NULL;
		}
		std[i] = c == '-' ? '+' : c == '_' ? '/' : c;
	}
	while (i % 4)
		std[i++] = '=';
	out = malloc(i / 4 * 3 + 4);
	if (!out) {
		free(std);
		return NULL;
	}
	n = base64_decode(std, i, out);
	free(std);
	if (n < 0) {
		free(out);
		return NULL;
	}
	out[n] = 0;
	*out_len = (size_t)n;
	return out;
}

static bool auth_hs256(const struct conf_auth *a, const char *signed_part,
		       size_t slen, const unsigned char *sig, size_t siglen)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;

	if (!HMAC(EVP_sha256(), a->jwt_secret, (int)strlen(a->jwt_secret),
		  (const unsigned char *)signed_part, slen, mac, &maclen))
		return false;
	return maclen == siglen && CRYPTO_memcmp(mac, sig, siglen) == 0;
}

static EVP_PKEY *auth_public_key(const struct conf_auth *a)
{
	BIO *bio = BIO_new_mem_buf(a->jwt_public_key, -1);
	EVP_PKEY *k;

	if (!bio)
		return NULL;
	k = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	BIO_free(bio);
	return k;
}

/* The JWS algorithm the configured key allows. */
static const char *auth_expected_alg(const struct conf_auth *a, EVP_PKEY *k)
{
	if (a->jwt_secret)
		return "HS256";
	if (!k)
		return NULL;
	switch (EVP_PKEY_base_id(k)) {
	case EVP_PKEY_RSA:
		return "RS256";
	case EVP_PKEY_EC:
		return "ES256";
	default:
		return NULL;
	}
}

static bool auth_pk_verify(EVP_PKEY *k, bool ec, const char *signed_part,
			   size_t slen, const unsigned char *sig, size_t siglen)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char *der = NULL;
	int derlen = 0;
	bool ok = false;

	if (!md)
		return false;
	if (ec) {
		/* JWS carries r||s; OpenSSL wants DER. */
		ECDSA_SIG *es = ECDSA_SIG_new();
		BIGNUM *r, *s;

		if (siglen != 64 || !es)
			goto ec_out;
		r = BN_bin2bn(sig, 32, NULL);
		s = BN_bin2bn(sig + 32, 32, NULL);
		if (!r || !s || !ECDSA_SIG_set0(es, r, s)) {
			BN_free(r);
			BN_free(s);
			goto ec_out;
		}
		derlen = i2d_ECDSA_SIG(es, &der);
ec_out:
		ECDSA_SIG_free(es);
		if (derlen <= 0)
			goto out;
		sig = der;
		siglen = (size_t)derlen;
	}
	ok = EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, k) == 1 &&
	     EVP_DigestVerify(md, sig, siglen,
			      (const unsigned char *)signed_part, slen) == 1;
out:
	OPENSSL_free(der);
	EVP_MD_CTX_free(md);
	return ok;
}

/* Copies a claim's list of filters; a lone string counts as one. */
static int auth_filters(const cJSON *claim, char ***out, size_t *n,
			const char **why)
{
	const cJSON *it;
	size_t cap, i = 0;
	char **v;

	*out = NULL;
	*n = 0;
	if (!claim)
		return 0;
	if (cJSON_IsString(claim))
		cap = 1;
	else if (cJSON_IsArray(claim))
		cap = (size_t)cJSON_GetArraySize(claim);
	else {
		*why = "a topic claim must be a list of filters";
		return -EINVAL;
	}
	if (cap > AUTH_MAX_FILTERS) {
		*why = "too many filters in a topic claim";
		return -EINVAL;
	}
	v = calloc(cap + 1, sizeof(*v));
	if (!v) {
		*why = "out of memory";
		return -ENOMEM;
	}
	for (it = cJSON_IsString(claim) ? claim : claim->child; it && i < cap;
	     it = cJSON_IsString(claim) ? NULL : it->next) {
		const char *f = cJSON_GetStringValue(it);

		if (!f || topic_validate(f, strlen(f), TOPIC_FILTER, NULL) < 0 ||
		    !(v[i] = strdup(f))) {
			for (size_t j = 0; j < i; j++)
				free(v[j]);
			free(v);
			*why = "a topic claim holds an invalid filter";
			return -EINVAL;
		}
		i++;
	}
	*out = v;
	*n = i;
	return 0;
}

static bool auth_audience_ok(const cJSON *aud, const char *want)
{
	const cJSON *it;

	if (cJSON_IsString(aud))
		return strcmp(aud->valuestring, want) == 0;
	cJSON_ArrayForEach(it, aud)
		if (cJSON_IsString(it) && strcmp(it->valuestring, want) == 0)
			return true;
	return false;
}

static int auth_claims(const struct conf_auth *a, const cJSON *claims,
		       struct acl *acl, int64_t *expires_ms, const char **why)
{
	const cJSON *exp = cJSON_GetObjectItemCaseSensitive(claims, "exp");
	const cJSON *nbf = cJSON_GetObjectItemCaseSensitive(claims, "nbf");
	const cJSON *aud = cJSON_GetObjectItemCaseSensitive(claims, "aud");
	const cJSON *iss = cJSON_GetObjectItemCaseSensitive(claims, "iss");
	double now = (double)time(NULL);

	if (exp) {
		if (!cJSON_IsNumber(exp)) {
			*why = "'exp' must be a number";
			return -EACCES;
		}
		if (now > exp->valuedouble + AUTH_LEEWAY_S) {
			*why = "token expired";
			return -EACCES;
		}
		*expires_ms = (int64_t)((exp->valuedouble + AUTH_LEEWAY_S) * 1000);
	}
	if (nbf && (!cJSON_IsNumber(nbf) || now + AUTH_LEEWAY_S < nbf->valuedouble)) {
		*why = "token not valid yet";
		return -EACCES;
	}
	if (a->jwt_audience && a->jwt_audience[0] &&
	    (!aud || !auth_audience_ok(aud, a->jwt_audience))) {
		*why = "token audience does not match";
		return -EACCES;
	}
	if (a->jwt_issuer && a->jwt_issuer[0] &&
	    (!cJSON_IsString(iss) || strcmp(iss->valuestring, a->jwt_issuer) != 0)) {
		*why = "token issuer does not match";
		return -EACCES;
	}
	acl->owned = true;
	if (auth_filters(cJSON_GetObjectItemCaseSensitive(claims, a->jwt_subscribe_claim),
			 &acl->sub, &acl->nsub, why) < 0 ||
	    auth_filters(cJSON_GetObjectItemCaseSensitive(claims, a->jwt_publish_claim),
			 &acl->pub, &acl->npub, why) < 0) {
		acl_free(acl);
		return -EACCES;
	}
	return 0;
}

int auth_verify(const struct conf_auth *a, const char *token, size_t len,
		struct acl *acl, int64_t *expires_ms, char *why,
		size_t whylen)
{
	const char *dot1, *dot2, *reason = "malformed token";
	unsigned char *hdr = NULL, *body = NULL, *sig = NULL;
	size_t hlen, blen, slen;
	cJSON *jh = NULL, *jb = NULL;
	const cJSON *alg;
	const char *want;
	EVP_PKEY *key = NULL;
	bool ok;
	int r = -EACCES;

	memset(acl, 0, sizeof(*acl));
	*expires_ms = 0;
	if (len == 0 || len > AUTH_TOKEN_MAX)
		goto out;
	dot1 = memchr(token, '.', len);
	dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
	if (!dot1 || !dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)))
		goto out;
	hdr = auth_b64url(token, (size_t)(dot1 - token), &hlen);
	body = auth_b64url(dot1 + 1, (size_t)(dot2 - dot1 - 1), &blen);
	sig = auth_b64url(dot2 + 1, len - (size_t)(dot2 + 1 - token), &slen);
	if (!hdr || !body || !sig)
		goto out;
	jh = cJSON_ParseWithLength((const char *)hdr, hlen);
	jb = cJSON_ParseWithLength((const char *)body, blen);
	if (!cJSON_IsObject(jh) || !cJSON_IsObject(jb))
		goto out;
	alg = cJSON_GetObjectItemCaseSensitive(jh, "alg");
	if (a->jwt_public_key)
		key = auth_public_key(a);
	want = auth_expected_alg(a, key);
	if (!cJSON_IsString(alg) || !want || strcmp(alg->valuestring, want) != 0) {
		reason = "token algorithm not accepted";
		goto out;
	}
	if (a->jwt_secret)
		ok = auth_hs256(a, token, (size_t)(dot2 - token), sig, slen);
	else
		ok = auth_pk_verify(key, strcmp(want, "ES256") == 0, token,
				    (size_t)(dot2 - token), sig, slen);
	if (!ok) {
		reason = "bad token signature";
		goto out;
	}
	r = auth_claims(a, jb, acl, expires_ms, &reason);
out:
	if (r < 0)
		snprintf(why, whylen, "%s", reason);
	EVP_PKEY_free(key);
	cJSON_Delete(jh);
	cJSON_Delete(jb);
	free(hdr);
	free(body);
	free(sig);
	return r;
}
