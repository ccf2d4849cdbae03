/* digest.c - SHA-256 through Nettle, as hex. */
#include "reports/digest.h"

#include <stdio.h>

void ep_sha256_init(struct ep_sha256 *h)
{
	sha256_init(&h->ctx);
}

void ep_sha256_update(struct ep_sha256 *h, const void *data, size_t len)
{
	sha256_update(&h->ctx, len, data);
}

void ep_sha256_hex(struct ep_sha256 *h, char *hex)
{
	uint8_t d[SHA256_DIGEST_SIZE];
	sha256_digest(&h->ctx, sizeof(d), d);
	for (int i = 0; i < SHA256_DIGEST_SIZE; i++)
		snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

void ep_sha256_of(const void *data, size_t len, char *hex)
{
	struct ep_sha256 h;
	ep_sha256_init(&h);
	ep_sha256_update(&h, data, len);
	ep_sha256_hex(&h, hex);
}
