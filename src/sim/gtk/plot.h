/*
 * plot.h — the live plot of ems-sim-gtk: the last values sent per device,
 * kept in fixed rings and drawn with cairo.  Plain data and drawing only: it
 * knows nothing of GTK widgets or of the simulation, so the window feeds it
 * from its main loop and draws it in a GtkDrawingArea.
 */
#ifndef EMS_SIM_GTK_PLOT_H
#define EMS_SIM_GTK_PLOT_H

#include <cairo.h>
#include <stddef.h>
#include <stdint.h>

/* How many values per device the plot keeps and shows. */
#define SIM_PLOT_POINTS 144

typedef struct sim_plot sim_plot;

/* A plot for ndev devices, all empty; NULL when out of memory. */
sim_plot *sim_plot_new(size_t ndev);
/* Accepts NULL. */
void sim_plot_free(sim_plot *p);

/* The legend text of a device (copied; NULL or "" shows nothing). */
void sim_plot_set_label(sim_plot *p, size_t dev, const char *label);
/* Appends a value in micro-kWh; the oldest falls out once the ring is full. */
void sim_plot_push(sim_plot *p, size_t dev, int64_t micro);
/* Values pushed since the plot was made (for tests and the status line). */
uint64_t sim_plot_total(const sim_plot *p);

/* Draws the plot into a w × h area at the origin of cr. */
void sim_plot_draw(const sim_plot *p, cairo_t *cr, int w, int h);

#endif
