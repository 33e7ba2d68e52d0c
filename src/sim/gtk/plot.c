/*
 * plot.c — rings of the last values per device and their drawing: one line
 * per device, newest at the right edge, a y axis in kWh per reading that
 * grows to fit what is shown, and a legend naming the devices.
 */
#include "plot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int64_t v[SIM_PLOT_POINTS];
    size_t head; /* index of the next write */
    size_t n;
    char label[64];
} plot_ring;

struct sim_plot {
    size_t ndev;
    uint64_t total;
    plot_ring *rings;
};

/* Line colours, cycled over the devices: distinct on white and for most colour-blind readers. */
static const double palette[][3] = {
    {0.00, 0.45, 0.70}, {0.84, 0.37, 0.00}, {0.00, 0.62, 0.45}, {0.80, 0.47, 0.65},
    {0.34, 0.71, 0.91}, {0.90, 0.62, 0.00}, {0.40, 0.40, 0.40}, {0.55, 0.27, 0.07},
};
#define NPALETTE (sizeof palette / sizeof palette[0])

#define MARGIN_L 64.0
#define MARGIN_R 12.0
#define MARGIN_T 12.0
#define MARGIN_B 22.0
#define GRID_LINES 4

sim_plot *sim_plot_new(size_t ndev) {
    sim_plot *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->ndev = ndev;
    if (ndev && !(p->rings = calloc(ndev, sizeof *p->rings))) {
        free(p);
        return NULL;
    }
    return p;
}

void sim_plot_free(sim_plot *p) {
    if (!p) return;
    free(p->rings);
    free(p);
}

void sim_plot_set_label(sim_plot *p, size_t dev, const char *label) {
    if (!p || dev >= p->ndev) return;
    snprintf(p->rings[dev].label, sizeof p->rings[dev].label, "%s", label ? label : "");
}

void sim_plot_push(sim_plot *p, size_t dev, int64_t micro) {
    plot_ring *r;
    if (!p || dev >= p->ndev) return;
    r = &p->rings[dev];
    r->v[r->head] = micro;
    r->head = (r->head + 1) % SIM_PLOT_POINTS;
    if (r->n < SIM_PLOT_POINTS) r->n++;
    p->total++;
}

uint64_t sim_plot_total(const sim_plot *p) { return p ? p->total : 0; }

/* The k-th newest value of a ring (k < n). */
static int64_t ring_at(const plot_ring *r, size_t k) {
    return r->v[(r->head + SIM_PLOT_POINTS - 1 - k) % SIM_PLOT_POINTS];
}

/* A round upper bound for the axis: 1, 2 or 5 times a power of ten, at least the largest value. */
static double nice_top(double max) {
    double step = 1e-2;
    if (max <= step) return step;
    for (;;) {
        if (max <= step) return step;
        if (max <= 2 * step) return 2 * step;
        if (max <= 5 * step) return 5 * step;
        step *= 10;
    }
}

static void draw_text(cairo_t *cr, double x, double y, const char *text, int right_align) {
    cairo_text_extents_t ext;
    cairo_text_extents(cr, text, &ext);
    cairo_move_to(cr, right_align ? x - ext.x_advance : x, y);
    cairo_show_text(cr, text);
}

void sim_plot_draw(const sim_plot *p, cairo_t *cr, int w, int h) {
    double pw = w - MARGIN_L - MARGIN_R, ph = h - MARGIN_T - MARGIN_B, max = 0, top, lx = MARGIN_L + 8;
    char buf[96];
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    if (pw < 20 || ph < 20) return;
    cairo_select_font_face(cr, "Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, 11);
    for (size_t d = 0; p && d < p->ndev; d++)
        for (size_t k = 0; k < p->rings[d].n; k++)
            if ((double)ring_at(&p->rings[d], k) / 1e6 > max) max = (double)ring_at(&p->rings[d], k) / 1e6;
    top = nice_top(max);

    /* Grid and y labels. */
    cairo_set_line_width(cr, 1);
    for (int i = 0; i <= GRID_LINES; i++) {
        double y = MARGIN_T + ph - ph * i / GRID_LINES;
        cairo_set_source_rgb(cr, i ? 0.88 : 0.55, i ? 0.88 : 0.55, i ? 0.88 : 0.55);
        cairo_move_to(cr, MARGIN_L, (int)y + 0.5);
        cairo_line_to(cr, MARGIN_L + pw, (int)y + 0.5);
        cairo_stroke(cr);
        snprintf(buf, sizeof buf, "%g", top * i / GRID_LINES);
        cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
        draw_text(cr, MARGIN_L - 6, y + 4, buf, 1);
    }
    cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
    snprintf(buf, sizeof buf, "kWh per reading; last %d readings per device, newest right", SIM_PLOT_POINTS);
    draw_text(cr, MARGIN_L, h - 6, buf, 0);

    if (!p || p->total == 0) {
        cairo_set_source_rgb(cr, 0.5, 0.5, 0.5);
        draw_text(cr, MARGIN_L + pw / 2 - 80, MARGIN_T + ph / 2, "no readings sent yet", 0);
        return;
    }

    /* One line per device. */
    cairo_set_line_width(cr, 1.6);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    for (size_t d = 0; d < p->ndev; d++) {
        const plot_ring *r = &p->rings[d];
        const double *c = palette[d % NPALETTE];
        if (r->n == 0) continue;
        cairo_set_source_rgb(cr, c[0], c[1], c[2]);
        for (size_t k = 0; k < r->n; k++) {
            double x = MARGIN_L + pw - pw * (double)k / (SIM_PLOT_POINTS - 1);
            double y = MARGIN_T + ph - ph * ((double)ring_at(r, k) / 1e6) / top;
            if (k == 0) cairo_move_to(cr, x, y);
            else cairo_line_to(cr, x, y);
        }
        if (r->n == 1) cairo_rel_line_to(cr, -2, 0); /* a lone value still shows as a dot */
        cairo_stroke(cr);
    }

    /* Legend along the top. */
    for (size_t d = 0; d < p->ndev; d++) {
        const double *c = palette[d % NPALETTE];
        cairo_text_extents_t ext;
        if (!p->rings[d].label[0]) continue;
        cairo_text_extents(cr, p->rings[d].label, &ext);
        if (lx + 18 + ext.x_advance > MARGIN_L + pw) break;
        cairo_set_source_rgb(cr, c[0], c[1], c[2]);
        cairo_rectangle(cr, lx, MARGIN_T + 4, 10, 10);
        cairo_fill(cr);
        cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
        draw_text(cr, lx + 14, MARGIN_T + 13, p->rings[d].label, 0);
        lx += 14 + ext.x_advance + 16;
    }
}
