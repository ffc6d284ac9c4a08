/* The colour sensor of the ArdSG Cortex-M3 cases: a C shim with the APDS9960's colour API,
 * provided by the harness. It replays compiled-in test readings (sim_vectors.h). */
#ifndef APDS9960_H
#define APDS9960_H

#ifdef __cplusplus
extern "C" {
#endif

/* Starts the sensor. Returns 1 on success (always, in the simulation). */
int apds9960_begin(void);

/* Reads the next colour reading: red, green, blue and clear counts, each 0..255 for the
 * colour channels (the scale of the training data). Returns 1 when a reading was stored
 * in *r, *g, *b, *c; returns 0, storing nothing, when no reading is left: the end of the
 * run. Calling it before apds9960_begin() returns 0. */
int apds9960_read_color(int *r, int *g, int *b, int *c);

#ifdef __cplusplus
}
#endif

#endif
