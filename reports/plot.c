/* plot.c - gnuplot scripts of sweeps, comparisons and node-pair heatmaps (see plot.h). */
#include "reports/plot.h"

#include <math.h>
#include <string.h>

#include "collectives/error.h"
#include "reports/compare.h"

/* The terminal for out's suffix, and the output line. */
static void preamble(FILE *f, const char *out, const char *title)
{
	size_t n = strlen(out);
	int png = n > 4 && strcmp(out + n - 4, ".png") == 0;
	fprintf(f, "set terminal %s size 900,560 font 'sans,11'\n", png ? "png" : "svg dynamic");
	fprintf(f, "set output '%s'\n", out);
	fprintf(f, "set title \"%s\" noenhanced\n", title);
	fprintf(f, "set grid\nset key below noenhanced\n");
}

/* Which of ranks / tokens / hidden varies across d's points (0, 1, 2), -1 none. */
static int swept_dim(const struct ep_doc *d)
{
	for (int k = 0; k < 3; k++)
		for (int i = 1; i < d->npoints; i++) {
			const struct ep_doc_point *a = &d->points[0], *b = &d->points[i];
			int va = k == 0 ? a->ranks : k == 1 ? a->tokens : a->hidden;
			int vb = k == 0 ? b->ranks : k == 1 ? b->tokens : b->hidden;
			if (va != vb)
				return k;
		}
	return -1;
}

static int dim_of(const struct ep_doc_point *p, int k)
{
	return k == 0 ? p->ranks : k == 1 ? p->tokens : p->hidden;
}

/* A geometric sweep (constant ratio >= 2) is drawn on a log scale. */
static int geometric(const struct ep_doc *d, int k)
{
	for (int i = 2; i < d->npoints; i++) {
		double r1 = (double)dim_of(&d->points[i - 1], k) / fmax(1, dim_of(&d->points[i - 2], k));
		double r2 = (double)dim_of(&d->points[i], k) / fmax(1, dim_of(&d->points[i - 1], k));
		if (fabs(r1 - r2) > 1e-9 || r1 < 2)
			return 0;
	}
	return d->npoints > 2;
}

/* One data block per (file, op), and the plot line's part for each. */
static int sweep_blocks(FILE *f, const struct ep_doc *docs, int ndocs, int k, enum ep_plot_y y, char *plot,
			size_t plen)
{
	int series = 0;
	size_t n = 0;
	for (int d = 0; d < ndocs; d++) {
		const struct ep_doc *doc = &docs[d];
		for (int o = 0; doc->npoints && o < doc->points[0].nops; o++) {
			const char *op = doc->points[0].ops[o].name;
			fprintf(f, "$S%d << EOD\n", series);
			for (int i = 0; i < doc->npoints; i++) {
				const struct ep_doc_op *x = ep_doc_op(&doc->points[i], op);
				if (x)
					fprintf(f, "%d %.6g\n", k >= 0 ? dim_of(&doc->points[i], k) : i,
						y == EP_PLOT_TIME ? x->median_us : x->algbw_gbs);
			}
			fprintf(f, "EOD\n");
			n += (size_t)snprintf(plot + n, plen > n ? plen - n : 0, "%s$S%d with linespoints lw 2 title \"%s %s\"",
					      series ? ", " : "", series, ndocs > 1 ? doc->path : doc->command, op);
			series++;
		}
	}
	return series;
}

/* The host copy bandwidth per rank, for every point of doc (algbw's roofline). */
static void roofline_block(FILE *f, const struct ep_doc *doc, int k, char *plot, size_t plen)
{
	size_t n = strlen(plot);
	if (doc->copy_gbs <= 0 || doc->points[0].nlinks)
		return;
	fprintf(f, "$ROOF << EOD\n");
	for (int i = 0; i < doc->npoints; i++)
		fprintf(f, "%d %.6g\n", k >= 0 ? dim_of(&doc->points[i], k) : i, doc->copy_gbs / doc->points[i].ranks);
	fprintf(f, "EOD\n");
	snprintf(plot + n, plen > n ? plen - n : 0, ", $ROOF with lines dt 2 lw 2 lc rgb 'gray30' title \"host copy bandwidth per rank (%.3g GB/s, %d threads)\"",
		 doc->copy_gbs, doc->copy_threads);
}

int ep_plot_sweep(FILE *f, const char *out, const struct ep_doc *docs, int ndocs, enum ep_plot_y y, char *err,
		  size_t len)
{
	static const char *const dims[] = {"ranks", "tokens per rank", "hidden"};
	char plot[8192] = "", title[256];
	int k = swept_dim(&docs[0]);
	if (!docs[0].npoints)
		return snprintf(err, len, "'%s' has no points to draw", docs[0].path), -EP_EUSAGE;
	snprintf(title, sizeof(title), "epbench %s: %s against %s", docs[0].command,
		 y == EP_PLOT_TIME ? "median time" : "algorithm bandwidth", k >= 0 ? dims[k] : "point");
	preamble(f, out, title);
	fprintf(f, "set xlabel '%s'\nset ylabel '%s'\n", k >= 0 ? dims[k] : "point",
		y == EP_PLOT_TIME ? "median of per-iteration max over ranks (us)" : "algbw (GB/s per rank)");
	if (k >= 0 && geometric(&docs[0], k))
		fprintf(f, "set logscale x 2\n");
	if (!sweep_blocks(f, docs, ndocs, k, y, plot, sizeof(plot)))
		return snprintf(err, len, "'%s' has no timed ops to draw", docs[0].path), -EP_EUSAGE;
	if (y == EP_PLOT_ALGBW)
		roofline_block(f, &docs[0], k, plot, sizeof(plot));
	fprintf(f, "plot %s\n", plot);
	return 0;
}

int ep_plot_compare(FILE *f, const char *out, const struct ep_doc *a, const struct ep_doc *b, double confidence,
		    char *err, size_t len)
{
	char title[1400], plot[8192] = "", labels[4096] = "";
	size_t n = 0, ln = 0;
	int series = 0, x = 0;
	snprintf(title, sizeof(title), "epbench %s: B (%s) against A (%s), %.0f%% intervals", a->command, b->path, a->path,
		 confidence * 100);
	preamble(f, out, title);
	fprintf(f, "set ylabel 'B median / A median - 1 (%%)'\nset xzeroaxis lt -1\nset style data yerrorbars\n");
	for (int o = 0; a->npoints && o < a->points[0].nops; o++, series++) {
		const char *op = a->points[0].ops[o].name;
		fprintf(f, "$C%d << EOD\n", series);
		x = 0;
		for (int i = 0; i < a->npoints; i++, x++) {
			const struct ep_doc_point *pa = &a->points[i], *pb = ep_doc_match(a, i, b);
			const struct ep_doc_op *oa = ep_doc_op(pa, op), *ob = pb ? ep_doc_op(pb, op) : NULL;
			if (o == 0)
				ln += (size_t)snprintf(labels + ln, sizeof(labels) > ln ? sizeof(labels) - ln : 0, "%s\"r%d t%d h%d\" %d",
						       i ? ", " : "", pa->ranks, pa->tokens, pa->hidden, x);
			if (!oa || !ob)
				continue;
			struct ep_op_cmp c = {.median_a = oa->median_us, .median_b = ob->median_us};
			ep_compare_samples(oa->samples_us, oa->nsamples, ob->samples_us, ob->nsamples, confidence, -1, &c);
			fprintf(f, "%.3f %.4g %.4g %.4g\n", x + 0.1 * series, c.delta_pct,
				c.have_interval ? c.lo_pct : c.delta_pct, c.have_interval ? c.hi_pct : c.delta_pct);
		}
		fprintf(f, "EOD\n");
		n += (size_t)snprintf(plot + n, sizeof(plot) > n ? sizeof(plot) - n : 0,
				      "%s$C%d using 1:2:3:4 with yerrorbars pt 7 lw 2 title \"%s\"", series ? ", " : "", series, op);
	}
	if (!series)
		return snprintf(err, len, "'%s' has no ops to compare", a->path), -EP_EUSAGE;
	fprintf(f, "set xtics (%s) rotate by -30\nset xrange [-0.5:%d.5]\nplot %s\n", labels, x - 1, plot);
	return 0;
}

int ep_plot_links(FILE *f, const char *out, const struct ep_doc *d, const char *op, char *err, size_t len)
{
	const struct ep_doc_point *p = NULL;
	for (int i = 0; i < d->npoints && !p; i++)
		if (d->points[i].nlinks)
			p = &d->points[i];
	if (!p)
		return snprintf(err, len, "'%s' has no node pairs (an internode result has)", d->path), -EP_EUSAGE;
	int o = 0, nodes = 0;
	while (op && o < p->nops && strcmp(p->ops[o].name, op))
		o++;
	if (o == p->nops)
		return snprintf(err, len, "'%s' has no op '%s'", d->path, op), -EP_EUSAGE;
	for (int l = 0; l < p->nlinks; l++)
		nodes = p->links[l].src + 1 > nodes ? p->links[l].src + 1 : nodes;
	char title[256];
	snprintf(title, sizeof(title), "epbench %s %s: GB/s per node pair (tokens %d, hidden %d)", d->command,
		 p->ops[o].name, p->tokens, p->hidden);
	preamble(f, out, title);
	fprintf(f, "set xlabel 'destination node'\nset ylabel 'source node'\nset cblabel 'GB/s'\n"
		   "set xrange [-0.5:%d.5]\nset yrange [-0.5:%d.5]\nset xtics 1\nset ytics 1\n$L << EOD\n",
		nodes - 1, nodes - 1);
	for (int s = 0; s < nodes; s++)
		for (int t = 0; t < nodes; t++) {
			double g = 0;
			for (int l = 0; l < p->nlinks; l++)
				if (p->links[l].src == s && p->links[l].dst == t)
					g = p->links[l].gbs[o];
			fprintf(f, "%d %d %.6g\n", t, s, g);
		}
	fprintf(f, "EOD\nplot $L using 1:2:3 with image title \"%s GB/s\", $L using 1:2:(sprintf('%%.3g', $3)) with labels notitle\n",
		p->ops[o].name);
	return 0;
}
