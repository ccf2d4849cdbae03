/* digest.h - SHA-256 (Nettle), for routing hashes, golden manifests and traces.
 *
 * One hashing library for the project: Debian's Nettle. A digest is written
 * as 64 lowercase hex characters.
 */
#ifndef EP_DIGEST_H
#define EP_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#include <nettle/sha2.h>

#define EP_SHA256_HEX 65 /* 64 hex characters and a NUL */

struct ep_sha256 {
	struct sha256_ctx ctx;
};

void ep_sha256_init(struct ep_sha256 *h);
void ep_sha256_update(struct ep_sha256 *h, const void *data, size_t len);
/* Finishes h into hex (EP_SHA256_HEX bytes). */
void ep_sha256_hex(struct ep_sha256 *h, char *hex);

/* The digest of one buffer, as hex. */
void ep_sha256_of(const void *data, size_t len, char *hex);

#endif
