/* oracle.c - golden/verify directories: roles, manifest, the normal-mode reference (see oracle.h). */
#include "cli/oracle.h"
#include "cli/oracle_layer.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "collectives/error.h"
#include "reports/results.h"
#include "reports/atomic_file.h"
#include "reports/digest.h"
#include "reports/json.h"
#include "reports/text_file.h"

#define MANIFEST_MAX ((size_t)64 << 20)
#define TENSOR_FILE_MAX ((size_t)1 << 40)
#define TENSOR_MAX TENSOR_FILE_MAX

enum ep_oracle_role ep_oracle_role_of(const char *name, int ascend)
{
	static const char *const inputs[] = {"x", "x_scales", "topk_idx", "topk_weights", "bias_0", "bias_1"};
	static const char *const placement[] = {"topk_idx_logical", "phy2log", "logcnt", "log2phy"};
	const char *const *in = ascend ? ep_ascend_input_names : inputs;
	for (size_t i = 0; i < 6; i++)
		if (in[i] && !strcmp(name, in[i]))
			return EP_ROLE_INPUT;
	for (size_t i = 0; i < 4; i++) /* redundant experts: the router's logical ids and the map to physical ones */
		if (!strcmp(name, placement[i]))
			return EP_ROLE_INPUT;
	if (ascend)
		return !strcmp(name, "expert_outputs") ? EP_ROLE_EXPERT : EP_ROLE_OUTPUT;
	return !strcmp(name, "combine_x") || !strcmp(name, "combine_topk_weights") || !strcmp(name, "moe_tp_partial") ||
	       !strcmp(name, "world_partial") ? EP_ROLE_EXPERT : EP_ROLE_OUTPUT;
}

const char *ep_oracle_role_name(enum ep_oracle_role r)
{
	return r == EP_ROLE_INPUT ? "input" : r == EP_ROLE_EXPERT ? "expert" : "output";
}

int ep_oracle_add(struct ep_oracle_manifest *m, const char *dir, int rank, const char *name,
		  enum ep_oracle_role role)
{
	char path[8192], err[256];
	char *data = NULL;
	size_t len = 0;
	struct ep_npy a;
	snprintf(path, sizeof(path), "%s/rank%d/%s.npy", dir, rank, name);
	int rc = ep_file_read(".npy file", path, TENSOR_FILE_MAX, &data, &len, err, sizeof(err));
	if (rc)
		return rc;
	if ((rc = ep_npy_parse(data, len, name, &a, err, sizeof(err)))) {
		free(data);
		return rc;
	}
	if (m->ntensors == m->cap) {
		int cap = m->cap ? m->cap * 2 : 64;
		struct ep_oracle_tensor *t = realloc(m->tensors, sizeof(*t) * (size_t)cap);
		if (!t) {
			free(data), ep_npy_free(&a);
			return -ENOMEM;
		}
		m->tensors = t, m->cap = cap;
	}
	struct ep_oracle_tensor *t = &m->tensors[m->ntensors++];
	memset(t, 0, sizeof(*t));
	t->rank = rank, t->role = role, t->dtype = a.dtype, t->ndim = a.ndim;
	snprintf(t->name, sizeof(t->name), "%s", name);
	memcpy(t->shape, a.shape, sizeof(t->shape));
	ep_sha256_of(data, len, t->sha256);
	free(data);
	ep_npy_free(&a);
	return 0;
}

static void write_shape(struct ep_json *j, const struct ep_oracle_manifest *m)
{
	const struct ep_shape *s = &m->shape;
	ep_json_begin_object(j, "shape");
	ep_json_int(j, "num_ranks", s->num_ranks);
	ep_json_int(j, "num_tokens", s->num_tokens);
	ep_json_int(j, "hidden", s->hidden);
	ep_json_int(j, "num_topk", s->num_topk);
	ep_json_int(j, "num_experts", s->num_experts);
	ep_json_int(j, "expert_alignment", s->expert_alignment);
	ep_json_string(j, "dtype", ep_dtype_name(s->dtype));
	ep_json_int(j, "with_topk", s->with_topk);
	ep_json_int(j, "num_bias", s->num_bias);
	ep_json_string(j, "expert_counts", s->expert_counts == EP_COUNTS_PREFIX ? "prefix" : "counts");
	ep_json_int(j, "ranks_per_node", m->ranks_per_node);
	ep_json_int(j, "num_max_dispatch_tokens_per_rank", m->ll_max_tokens);
	ep_json_int(j, "round_scale", m->ll_round_scale);
	ep_json_int(j, "use_ue8m0", m->ll_ue8m0);
	if (m->ascend.on) {
		ep_json_int(j, "shared_experts", m->ascend.shared_experts);
		ep_json_int(j, "shared_expert_ranks", m->ascend.shared_expert_ranks);
		ep_json_int(j, "smooth_scales", m->ascend.smooth_scales);
		ep_json_int(j, "comm_quant", m->ascend.comm_quant);
	}
	ep_json_end_object(j);
}

/* A MoE layer's configuration and every rank's groups (cli/oracle_layer.h). */
static void write_layer(struct ep_json *j, const struct ep_oracle_manifest *m)
{
	static const char *const pads[] = {"none", "zero", "replicate0"};
	const struct ep_oracle_layer *l = &m->layer;
	struct ep_parallel p = {.v = {[EP_PAR_DP] = l->dp, [EP_PAR_TP] = l->tp, [EP_PAR_CP] = 1, [EP_PAR_SP] = 1,
				     [EP_PAR_MOE_TP] = l->moe_tp, [EP_PAR_MOE_EP] = l->moe_ep},
				.moe_comm = l->allgather ? EP_MOE_ALLGATHER : EP_MOE_A2A};
	char groups[256], node[24];
	ep_json_begin_object(j, "layer");
	ep_json_int(j, "dp", l->dp);
	ep_json_int(j, "tp", l->tp);
	ep_json_int(j, "moe_tp", l->moe_tp);
	ep_json_int(j, "moe_ep", l->moe_ep);
	ep_json_string(j, "moe_comm", l->allgather ? "allgather" : "a2a");
	ep_json_string(j, "sp_pad", pads[l->sp_pad % 3]);
	ep_json_int(j, "tokens_per_dp", l->tokens_per_dp);
	ep_json_int(j, "uneven_tokens", l->uneven);
	int P = m->ranks_per_node;
	if (P) { /* across nodes: the layout (each rank's node is also on its groups line) */
		ep_json_int(j, "nodes", m->shape.num_ranks / P);
		ep_json_int(j, "ranks_per_node", P);
	}
	ep_json_begin_array(j, "groups");
	for (int r = 0; r < m->shape.num_ranks; r++) {
		ep_parallel_describe(&p, r, groups, sizeof(groups) - sizeof(node));
		if (P) {
			snprintf(node, sizeof(node), " node=%d", r / P);
			strcat(groups, node);
		}
		ep_json_string(j, NULL, groups);
	}
	ep_json_end_array(j);
	ep_json_end_object(j);
}

int ep_oracle_write_manifest(const struct ep_oracle_manifest *m, const char *dir)
{
	char path[8192];
	struct ep_json *j = ep_json_new();
	ep_json_begin_object(j, NULL);
	ep_json_string(j, "schema", EP_ORACLE_SCHEMA);
	ep_json_string(j, "subcommand", m->subcommand);
	ep_json_string(j, "ep_semantics", m->ascend.on ? "ascend" : "deepep");
	ep_json_string(j, "command_line", m->command_line);
	ep_json_string(j, "payload", ep_payload_name(m->payload));
	ep_json_uint(j, "seed", (unsigned long long)m->seed);
	write_shape(j, m);
	if (m->layer.on)
		write_layer(j, m);
	ep_json_begin_array(j, "tensors");
	for (int i = 0; i < m->ntensors; i++) {
		const struct ep_oracle_tensor *t = &m->tensors[i];
		ep_json_begin_object(j, NULL);
		ep_json_int(j, "rank", t->rank);
		ep_json_string(j, "name", t->name);
		ep_json_string(j, "role", ep_oracle_role_name(t->role));
		if (m->layer.on)
			ep_json_string(j, "phase", ep_layer_phase_of(t->name, m->ascend.on, m->layer.moe_tp));
		ep_json_string(j, "dtype", ep_npy_descr(t->dtype));
		ep_json_begin_array(j, "shape");
		for (int d = 0; d < t->ndim; d++)
			ep_json_uint(j, NULL, t->shape[d]);
		ep_json_end_array(j);
		ep_json_string(j, "sha256", t->sha256);
		ep_json_end_object(j);
	}
	ep_json_end_array(j);
	ep_json_end_object(j);
	snprintf(path, sizeof(path), "%s/manifest.json", dir);
	return ep_json_write_file(j, path);
}

void ep_oracle_manifest_free(struct ep_oracle_manifest *m)
{
	free(m->tensors);
	m->tensors = NULL;
	m->ntensors = m->cap = 0;
}

/* An integer v in [lo, hi], else *ok = 0. */
static long long int_in(json_t *v, long long lo, long long hi, int *ok)
{
	if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
		return *ok = 0, lo;
	return json_integer_value(v);
}

static long long get_int(json_t *o, const char *key, long long lo, long long hi, int *ok)
{
	return int_in(json_object_get(o, key), lo, hi, ok);
}

/* Ascend's options, held to section 4's rules as the run holds them (cli/options.c check_ascend). */
static int read_ascend(json_t *s, struct ep_oracle_manifest *m)
{
	struct ep_oracle_ascend *a = &m->ascend;
	const struct ep_shape *x = &m->shape;
	int ok = 1;
	a->shared_experts = (int)get_int(s, "shared_experts", 0, 4095, &ok);
	a->shared_expert_ranks = (int)get_int(s, "shared_expert_ranks", 0, 4095, &ok);
	a->smooth_scales = (int)get_int(s, "smooth_scales", 0, 1, &ok);
	a->comm_quant = (int)get_int(s, "comm_quant", 0, 1, &ok);
	int Sn = a->shared_experts, Sr = a->shared_expert_ranks;
	ok = ok && (Sn > 0) == (Sr > 0) && (!Sn || Sr % Sn == 0) && Sr < x->num_ranks;
	/* a layer's EP group: its experts are held to moe_ep in read_layer */
	ok = ok && (m->layer.on || x->num_experts % (x->num_ranks - Sr) == 0) && x->dtype != EP_DTYPE_FP8;
	ok = ok && (!m->ranks_per_node || x->num_ranks % m->ranks_per_node == 0); /* internode: the same tensors */
	ok = ok && (!a->smooth_scales || x->dtype == EP_DTYPE_INT8) && (!a->comm_quant || x->hidden % 8 == 0);
	return ok && x->with_topk && x->num_bias <= 1 ? 0 : -1;
}

static int read_shape(json_t *s, struct ep_oracle_manifest *m)
{
	int ok = json_is_object(s);
	struct ep_shape *x = &m->shape;
	x->num_ranks = (int)get_int(s, "num_ranks", 1, 4096, &ok);
	x->num_tokens = (int)get_int(s, "num_tokens", 0, 1 << 24, &ok);
	x->hidden = (int)get_int(s, "hidden", 1, 1 << 20, &ok);
	x->num_topk = (int)get_int(s, "num_topk", 1, 1024, &ok);
	x->num_experts = (int)get_int(s, "num_experts", 1, 1 << 20, &ok);
	x->expert_alignment = (int)get_int(s, "expert_alignment", 0, 1 << 20, &ok);
	x->with_topk = (int)get_int(s, "with_topk", 0, 1, &ok);
	x->num_bias = (int)get_int(s, "num_bias", 0, 2, &ok);
	m->ranks_per_node = (int)get_int(s, "ranks_per_node", 0, 4096, &ok);
	m->ll_max_tokens = (int)get_int(s, "num_max_dispatch_tokens_per_rank", 0, 1 << 24, &ok);
	m->ll_round_scale = (int)get_int(s, "round_scale", 0, 1, &ok);
	m->ll_ue8m0 = (int)get_int(s, "use_ue8m0", 0, 1, &ok);
	const char *d = json_string_value(json_object_get(s, "dtype"));
	const char *c = json_string_value(json_object_get(s, "expert_counts"));
	ok = ok && d && c && (!strcmp(c, "counts") || !strcmp(c, "prefix"));
	x->dtype = d && !strcmp(d, "fp8") ? EP_DTYPE_FP8 : d && !strcmp(d, "int8") ? EP_DTYPE_INT8 : EP_DTYPE_BF16;
	ok = ok && (!strcmp(d, "bf16") || !strcmp(d, "fp8") || !strcmp(d, "int8"));
	x->expert_counts = c && !strcmp(c, "prefix") ? EP_COUNTS_PREFIX : EP_COUNTS_PLAIN;
	if (!ok)
		return -1;
	if (m->ascend.on)
		return read_ascend(s, m);
	return (m->layer.on || x->num_experts % x->num_ranks == 0) && (!m->ranks_per_node || x->num_ranks % m->ranks_per_node == 0)
		? 0 : -1;
}

/* A MoE layer's configuration, held to parallel-semantics.md section 1 as
 * --parallel is, on what golden writes (DeepEP semantics, bf16, top-k, no
 * bias, one host or across nodes; ll: a low-latency layer, whose top-k ids
 * are its input and whose attention-TP groups may hold whole nodes). 0, or
 * -1 with one line in err. */
static int read_layer(json_t *o, struct ep_oracle_manifest *m, int ll, char *err, size_t len)
{
	struct ep_oracle_layer *l = &m->layer;
	const struct ep_shape *x = &m->shape;
	int ok = json_is_object(o);
	l->dp = (int)get_int(o, "dp", 1, 4096, &ok);
	l->tp = (int)get_int(o, "tp", 1, 4096, &ok);
	l->moe_tp = (int)get_int(o, "moe_tp", 1, 4096, &ok);
	l->moe_ep = (int)get_int(o, "moe_ep", 1, 4096, &ok);
	l->tokens_per_dp = (int)get_int(o, "tokens_per_dp", 1, 1 << 24, &ok);
	l->uneven = (int)get_int(o, "uneven_tokens", 0, 1, &ok);
	const char *comm = json_string_value(json_object_get(o, "moe_comm"));
	const char *pad = json_string_value(json_object_get(o, "sp_pad"));
	ok = ok && comm && pad && (!strcmp(comm, "a2a") || !strcmp(comm, "allgather"));
	ok = ok && (!strcmp(pad, "none") || !strcmp(pad, "zero") || !strcmp(pad, "replicate0"));
	if (!ok)
		return snprintf(err, len, "layer: dp, tp, moe_tp, moe_ep, moe_comm, sp_pad, tokens_per_dp or uneven_tokens missing or out of range"), -1;
	l->allgather = !strcmp(comm, "allgather");
	l->sp_pad = !strcmp(pad, "zero") ? EP_SLICE_ZERO : !strcmp(pad, "replicate0") ? EP_SLICE_REPLICATE0 : EP_SLICE_NONE;
	struct ep_parallel p = {.v = {[EP_PAR_DP] = l->dp, [EP_PAR_TP] = l->tp, [EP_PAR_MOE_TP] = l->moe_tp,
				      [EP_PAR_MOE_EP] = l->moe_ep}}, out;
	char why[EP_TEXT_MAX - 64];
	if (ep_parallel_resolve(&p, x->num_ranks, 0, &out, why, sizeof(why)))
		return snprintf(err, len, "layer: %.400s", why), -1;
	int Sr = m->ascend.on ? m->ascend.shared_expert_ranks : 0; /* Ascend's: the first EP ranks of each MoE-EP group */
	if (out.v[EP_PAR_MOE_TP] * out.v[EP_PAR_MOE_EP] != x->num_ranks || Sr >= l->moe_ep || x->num_experts % (l->moe_ep - Sr))
		return snprintf(err, len, "layer: moe_tp x moe_ep is not the world, or its MoE ranks (moe_ep less the shared-expert "
				      "ranks) do not divide the experts"), -1;
	int P = m->ranks_per_node;
	if (m->ascend.on && l->allgather)
		return snprintf(err, len, "layer: with ep_semantics ascend, a2a only"), -1;
	/* MoE-TP groups of whole nodes: Ascend's give one host's bytes (cli/ascend_tpnet.h), DeepEP's
	 * internode's in MoE-EP groups of one rank per node (cli/moe_layer_geometry.c, oracle_layer.c);
	 * a low-latency layer's (cli/ll_tpnet.c) has no dump to verify yet */
	int moe_tp_ok = !P || l->allgather || P % l->moe_tp == 0 || (!ll && l->moe_tp % P == 0);
	if (P && ((P % l->tp && l->tp != x->num_ranks && !(ll && l->tp % P == 0)) || !moe_tp_ok))
		return snprintf(err, len, "layer: across nodes tp divides the ranks of a node (or is the world; low-latency: or is a "
				      "multiple of them), and in a2a mode moe_tp divides it or (normal mode) is a multiple of it"), -1;
	if (!m->ascend.on && ((!x->with_topk && !ll) || (l->allgather && (x->dtype != EP_DTYPE_BF16 || x->num_bias))))
		return snprintf(err, len, "layer: DeepEP semantics with top-k; allgather mode in bf16 without bias"), -1;
	return 0;
}

static int read_tensor(json_t *o, const struct ep_oracle_manifest *m, struct ep_oracle_tensor *t)
{
	int ok = json_is_object(o);
	const char *name = json_string_value(json_object_get(o, "name"));
	const char *sha = json_string_value(json_object_get(o, "sha256"));
	json_t *shape = json_object_get(o, "shape");
	t->rank = (int)get_int(o, "rank", 0, 4095, &ok);
	if (!ok || !name || strlen(name) >= sizeof(t->name) || !sha || strlen(sha) != 64 || !json_is_array(shape) ||
	    json_array_size(shape) > EP_NPY_MAX_NDIM)
		return -1;
	snprintf(t->name, sizeof(t->name), "%s", name);
	snprintf(t->sha256, sizeof(t->sha256), "%s", sha);
	t->role = ep_oracle_role_of(name, m->ascend.on);
	t->ndim = (int)json_array_size(shape);
	for (int d = 0; d < t->ndim; d++)
		t->shape[d] = (size_t)int_in(json_array_get(shape, (size_t)d), 0, 1LL << 40, &ok);
	return ok ? 0 : -1;
}

static int read_root(json_t *root, struct ep_oracle_manifest *m, const char *path, char *err, size_t len)
{
	const char *schema = json_string_value(json_object_get(root, "schema"));
	const char *sub = json_string_value(json_object_get(root, "subcommand"));
	const char *payload = json_string_value(json_object_get(root, "payload"));
	const char *sem = json_string_value(json_object_get(root, "ep_semantics"));
	json_t *tensors = json_object_get(root, "tensors"), *seed = json_object_get(root, "seed");
	if (!schema || strcmp(schema, EP_ORACLE_SCHEMA))
		return snprintf(err, len, "'%s' is not an epbench golden manifest (schema %s)", path, EP_ORACLE_SCHEMA),
		       -EP_EUSAGE;
	if (sem && strcmp(sem, "deepep") && strcmp(sem, "ascend"))
		return snprintf(err, len, "'%s': ep_semantics is deepep or ascend", path), -EP_EUSAGE;
	m->ascend.on = sem && !strcmp(sem, "ascend"); /* manifests before Ascend have none: DeepEP's */
	json_t *layer = json_object_get(root, "layer");
	m->layer.on = layer != NULL;
	if (!sub || strlen(sub) >= sizeof(m->subcommand) || !payload || !json_is_integer(seed) || !json_is_array(tensors) ||
	    json_array_size(tensors) > 1u << 20 || read_shape(json_object_get(root, "shape"), m))
		return snprintf(err, len, "'%s': subcommand, payload, seed, shape or tensors missing or out of range", path),
		       -EP_EUSAGE;
	char why[EP_TEXT_MAX - 64];
	if (layer && read_layer(layer, m, sub && !strcmp(sub, "low-latency"), why, sizeof(why)))
		return snprintf(err, len, "'%s': %s", path, why), -EP_EUSAGE;
	snprintf(m->subcommand, sizeof(m->subcommand), "%s", sub);
	const char *cl = json_string_value(json_object_get(root, "command_line"));
	snprintf(m->command_line, sizeof(m->command_line), "%s", cl ? cl : "");
	m->seed = (uint64_t)json_integer_value(seed);
	m->payload = !strcmp(payload, "narrow") ? EP_PAYLOAD_NARROW : !strcmp(payload, "special") ? EP_PAYLOAD_SPECIAL
											     : EP_PAYLOAD_WIDE;
	m->cap = (int)json_array_size(tensors);
	if (m->cap && !(m->tensors = calloc((size_t)m->cap, sizeof(*m->tensors))))
		return -EP_ENOMEM;
	for (int i = 0; i < m->cap; i++, m->ntensors++)
		if (read_tensor(json_array_get(tensors, (size_t)i), m, &m->tensors[i]) ||
		    m->tensors[i].rank >= m->shape.num_ranks)
			return snprintf(err, len, "'%s': tensor %d is malformed", path, i), -EP_EUSAGE;
	return 0;
}

int ep_oracle_read_manifest(const char *dir, struct ep_oracle_manifest *m, char *err, size_t len)
{
	char path[4096], q[256], *text = NULL;
	size_t n = 0;
	json_error_t je;
	memset(m, 0, sizeof(*m));
	snprintf(path, sizeof(path), "%s/manifest.json", dir);
	ep_quote(path, q, sizeof(q));
	int rc = ep_text_file_read("golden manifest", path, MANIFEST_MAX, &text, &n, err, len);
	if (rc)
		return rc;
	json_t *root = json_loadb(text, n, JSON_REJECT_DUPLICATES, &je);
	free(text);
	if (!root)
		return snprintf(err, len, "'%s' is not JSON: line %d: %s", q, je.line, je.text), -EP_EUSAGE;
	rc = json_is_object(root) ? read_root(root, m, q, err, len)
				  : (snprintf(err, len, "'%s' is not a JSON object", q), -EP_EUSAGE);
	json_decref(root);
	if (rc)
		ep_oracle_manifest_free(m);
	return rc;
}

/* a's dtype and shape against the wanted ones; else one line, a freed, exit 2. */
static int check_loaded(struct ep_npy *a, int rank, const char *name, enum ep_npy_dtype dtype, int ndim,
			const size_t *want)
{
	int ok = a->dtype == dtype && a->ndim == ndim;
	for (int d = 0; ok && d < ndim; d++)
		ok = !want[d] || a->shape[d] == want[d];
	if (ok)
		return 0;
	char got[96] = "", exp[96] = "";
	for (int d = 0, n = 0, k = 0; d < EP_NPY_MAX_NDIM; d++) {
		if (d < a->ndim)
			n += snprintf(got + n, sizeof(got) - (size_t)n, "%s%zu", d ? "x" : "", a->shape[d]);
		if (d < ndim)
			k += snprintf(exp + k, sizeof(exp) - (size_t)k, "%s%s", d ? "x" : "", want[d] ? "" : "*"),
			k += want[d] ? snprintf(exp + k, sizeof(exp) - (size_t)k, "%zu", want[d]) : 0;
	}
	fprintf(stderr, "epbench verify: rank%d/%s.npy is %s [%s], expected %s [%s]\n", rank, name,
		ep_npy_descr(a->dtype), got, ep_npy_descr(dtype), exp);
	ep_npy_free(a);
	return EP_EXIT_USAGE;
}

/* Reads rank/name.npy into a: 0, 1 when absent and not required, or exit 2 after one line. */
static int read_npy(const char *dir, int rank, const char *name, struct ep_npy *a, int required)
{
	char path[8192], err[EP_TEXT_MAX];
	struct stat st;
	memset(a, 0, sizeof(*a));
	snprintf(path, sizeof(path), "%s/rank%d/%s.npy", dir, rank, name);
	if (!required && stat(path, &st) && errno == ENOENT)
		return 1;
	if (ep_npy_read(path, TENSOR_MAX, a, err, sizeof(err)))
		return fprintf(stderr, "epbench verify: %s\n", err), EP_EXIT_USAGE;
	return 0;
}

/* Loads rank/name.npy into a, checking dtype and shape (0 in want: any). */
int ep_oracle_load(const char *dir, int rank, const char *name, enum ep_npy_dtype dtype, int ndim,
		   const size_t *want, struct ep_npy *a, int required)
{
	int rc = read_npy(dir, rank, name, a, required);
	return rc ? rc : check_loaded(a, rank, name, dtype, ndim, want);
}

int ep_oracle_load_index(const char *dir, int rank, const char *name, int ndim, const size_t *want,
			 struct ep_npy *a, int required)
{
	int rc = read_npy(dir, rank, name, a, required);
	if (rc || a->dtype != EP_NPY_I4)
		return rc ? rc : check_loaded(a, rank, name, EP_NPY_I8, ndim, want);
	int64_t *wide = malloc(sizeof(int64_t) * (a->count + 1));
	if (!wide)
		return ep_npy_free(a), EP_EXIT_ENV;
	for (size_t i = 0; i < a->count; i++)
		wide[i] = ((const int32_t *)a->data)[i];
	free(a->data);
	a->data = wide, a->dtype = EP_NPY_I8;
	return check_loaded(a, rank, name, EP_NPY_I8, ndim, want);
}

int ep_normal_ref_init(struct ep_normal_ref *n, const struct ep_shape *s, const struct ep_routing *r,
		       uint64_t seed, int me, int ranks_per_node)
{
	memset(n, 0, sizeof(*n));
	n->ranks_per_node = ranks_per_node;
	return ranks_per_node ? ep_internode_ref_init(&n->in, s, r, seed, me, ranks_per_node)
			      : ep_reference_init(&n->in.base, s, r, seed, me);
}

void ep_normal_ref_fini(struct ep_normal_ref *n)
{
	if (n->ranks_per_node)
		ep_internode_ref_fini(&n->in);
	else
		ep_reference_fini(&n->in.base);
}

void ep_normal_ref_check(const struct ep_normal_ref *n, const struct ep_layout *layout,
			 const struct ep_dispatch_out *out, const uint16_t *combined_x, const float *combined_w,
			 struct ep_check_report *rep)
{
	if (n->ranks_per_node)
		ep_internode_ref_check_layout(&n->in, layout, rep);
	else
		ep_reference_check_layout(&n->in.base, layout, rep);
	ep_reference_check_dispatch(&n->in.base, out, 0, rep);
	if (n->ranks_per_node)
		ep_internode_ref_check_combine(&n->in, combined_x, combined_w, rep);
	else
		ep_reference_check_combine(&n->in.base, combined_x, combined_w, rep);
}

int ep_oracle_check_replicas(const char *dir, int rank, const int64_t *idx, size_t T, size_t K,
			     struct ep_check_report *rep)
{
	struct ep_npy lg, p2l;
	size_t want[2] = {T, K}, any[1] = {0};
	int rc = ep_oracle_load_index(dir, rank, "topk_idx_logical", 2, want, &lg, 0);
	if (rc == 1)
		return 0; /* no redundant experts */
	if (rc)
		return rc;
	if ((rc = ep_oracle_load(dir, rank, "phy2log", EP_NPY_I4, 1, any, &p2l, 1)))
		return ep_npy_free(&lg), rc;
	const int64_t *l = lg.data;
	const int32_t *map = p2l.data;
	int64_t got[K + 1];
	for (size_t t = 0; t < T; t++) {
		for (size_t j = 0; j < K; j++) {
			int64_t p = idx[t * K + j];
			got[j] = p == -1 ? -1 : p < 0 || (size_t)p >= p2l.count ? -2 : map[p];
		}
		ep_compare_row(rep, "topk_idx_phy2log", EP_ELEM_I64, l + t * K, got, K, (int64_t)t, rank, (int64_t)t);
	}
	ep_npy_free(&lg);
	ep_npy_free(&p2l);
	return 0;
}

int ep_oracle_hash_differs(const struct ep_oracle_manifest *m, const char *dir, int rank, const char *name)
{
	char path[8192], err[256], hex[65], *data = NULL;
	size_t len;
	snprintf(path, sizeof(path), "%s/rank%d/%s.npy", dir, rank, name);
	for (int i = 0; i < m->ntensors; i++) {
		const struct ep_oracle_tensor *t = &m->tensors[i];
		if (t->rank != rank || strcmp(t->name, name) ||
		    ep_file_read(".npy file", path, TENSOR_MAX, &data, &len, err, sizeof(err)))
			continue;
		ep_sha256_of(data, len, hex);
		free(data);
		return strcmp(hex, t->sha256) != 0;
	}
	return 0;
}
