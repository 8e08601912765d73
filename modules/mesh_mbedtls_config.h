/*
 * mbedTLS configuration for mesh: only what a mesh proxy, CA and controller use.
 * TLS 1.3 (preferred) and 1.2, ECDHE-ECDSA with P-256 only, AEAD ciphers only
 * (AES-GCM, ChaCha20-Poly1305), session tickets for resumption, X.509 parsing
 * and writing (certificates and CSRs for the CA), PSA crypto (TLS 1.3 needs it).
 * Everything else (RSA, CBC, DHE, SHA-1, legacy curves, filesystem I/O...) is
 * left out: smaller binary, smaller attack surface.
 */
#ifndef MESH_MBEDTLS_CONFIG_H
#define MESH_MBEDTLS_CONFIG_H

/* platform */
#define MBEDTLS_HAVE_ASM
#define MBEDTLS_HAVE_TIME
#define MBEDTLS_HAVE_TIME_DATE
#define MBEDTLS_PLATFORM_C
#define MBEDTLS_ERROR_C
#define MBEDTLS_VERSION_C
/* the agent renews identities on its own thread, the CA may sign on several */
#define MBEDTLS_THREADING_C
#define MBEDTLS_THREADING_PTHREAD
#define MBEDTLS_DEPRECATED_REMOVED

/* randomness */
#define MBEDTLS_ENTROPY_C
#define MBEDTLS_CTR_DRBG_C

/* symmetric: AEAD only */
#define MBEDTLS_CIPHER_C
#define MBEDTLS_AES_C
#define MBEDTLS_AES_ROM_TABLES
#define MBEDTLS_AESNI_C                    /* AES-NI when the CPU has it (run-time check): ~10% CPU per mTLS request */
#define MBEDTLS_GCM_C
#define MBEDTLS_CHACHA20_C
#define MBEDTLS_POLY1305_C
#define MBEDTLS_CHACHAPOLY_C

/* hashes: SHA-256 and SHA-384 (TLS_AES_256_GCM_SHA384, certificate signatures) */
#define MBEDTLS_MD_C
#define MBEDTLS_SHA224_C
#define MBEDTLS_SHA256_C
#define MBEDTLS_SHA384_C
#define MBEDTLS_SHA512_C
#define MBEDTLS_HKDF_C

/* public key: ECDSA / ECDHE on P-256 */
#define MBEDTLS_BIGNUM_C
#define MBEDTLS_ECP_C
#define MBEDTLS_ECP_DP_SECP256R1_ENABLED
#define MBEDTLS_ECP_NIST_OPTIM
#define MBEDTLS_ECDH_C
#define MBEDTLS_ECDSA_C
/* ECDSA verification is modules/tls.c's (P-256, public inputs only): 0.17 ms instead of
 * mbedTLS's 1.1 ms, for the CA's CSR checks and every handshake (docs/security.md) */
#define MBEDTLS_ECDSA_VERIFY_ALT
/* and signing (constant time, secrets): 4-bit fixed-base table for k G, complete
 * addition formulas, Fermat inverses; a quarter of the work of mbedTLS's sign */
#define MBEDTLS_ECDSA_SIGN_ALT
/* and ECDH's shared secret (constant time, the same formulas over a 4-bit table of the
 * peer's key): one of the handshake's two secret-key operations */
#define MBEDTLS_ECDH_COMPUTE_SHARED_ALT
#define MBEDTLS_PK_C
#define MBEDTLS_PK_PARSE_C
#define MBEDTLS_PK_WRITE_C

/* encodings and X.509 (workload certificates, CSRs, the CA) */
#define MBEDTLS_ASN1_PARSE_C
#define MBEDTLS_ASN1_WRITE_C
#define MBEDTLS_OID_C
#define MBEDTLS_BASE64_C
#define MBEDTLS_PEM_PARSE_C
#define MBEDTLS_PEM_WRITE_C
#define MBEDTLS_X509_USE_C
#define MBEDTLS_X509_CRT_PARSE_C
#define MBEDTLS_X509_CSR_PARSE_C
#define MBEDTLS_X509_CREATE_C
#define MBEDTLS_X509_CRT_WRITE_C
#define MBEDTLS_X509_CSR_WRITE_C

/* PSA crypto: required by TLS 1.3 in 3.6 */
#define MBEDTLS_PSA_CRYPTO_C
#define MBEDTLS_USE_PSA_CRYPTO
#define MBEDTLS_PSA_ASSUME_EXCLUSIVE_BUFFERS  /* one process owns its buffers: no copy of every record into a fresh 16 KiB heap buffer (it cost 3x CPU per mTLS request, docs/benchmarks.md) */
/* TLS keeps its record keys in PSA slots: a fixed store of 32 would cap us at a
 * dozen connections (and fail certificate checks past that); grow it on demand */
#define MBEDTLS_PSA_KEY_STORE_DYNAMIC

/* TLS */
#define MBEDTLS_SSL_TLS_C
#define MBEDTLS_SSL_CLI_C
#define MBEDTLS_SSL_SRV_C
#define MBEDTLS_SSL_PROTO_TLS1_2
#define MBEDTLS_SSL_PROTO_TLS1_3
#define MBEDTLS_SSL_TLS1_3_COMPATIBILITY_MODE
#define MBEDTLS_SSL_TLS1_3_KEY_EXCHANGE_MODE_EPHEMERAL_ENABLED
#define MBEDTLS_SSL_TLS1_3_KEY_EXCHANGE_MODE_PSK_EPHEMERAL_ENABLED
#define MBEDTLS_KEY_EXCHANGE_ECDHE_ECDSA_ENABLED
#define MBEDTLS_SSL_EXTENDED_MASTER_SECRET
#define MBEDTLS_SSL_SESSION_TICKETS
#define MBEDTLS_SSL_TICKET_C
#define MBEDTLS_SSL_SERVER_NAME_INDICATION
#define MBEDTLS_SSL_ALPN
#define MBEDTLS_SSL_KEEP_PEER_CERTIFICATE
/* smaller per-connection buffers when the peer does not need 16 KiB records */
#define MBEDTLS_SSL_VARIABLE_BUFFER_LENGTH
#define MBEDTLS_SSL_MAX_FRAGMENT_LENGTH

#endif
