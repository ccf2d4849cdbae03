/* transport.c - backend lookup, "auto" selection and error lines shared by all backends. */
#include "collectives/transport/transport.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const struct ep_transport_ops *ep_transport_find(const char *name)
{
	static const struct ep_transport_ops *const all[] = {
		&ep_transport_tcp, &ep_transport_verbs, &ep_transport_shm,
	};
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		if (strcmp(all[i]->name, name) == 0)
			return all[i];
	return NULL;
}

const struct ep_transport_ops *ep_transport_auto(const struct ep_transport_cfg *cfg, char *why,
						 size_t len)
{
	if (ep_transport_verbs.probe(cfg, why, len) == 0)
		return &ep_transport_verbs;
	return &ep_transport_tcp;
}

int ep_transport_fail(struct ep_transport *t, int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(t->error, sizeof(t->error), fmt, ap);
	va_end(ap);
	return err;
}

void ep_transport_peer_name(const struct ep_transport *t, int peer, char *buf, size_t len)
{
	int per = t->cfg.ranks_per_node > 0 ? t->cfg.ranks_per_node : 1;
	snprintf(buf, len, "rank %d (node %d)", peer, peer / per);
}
