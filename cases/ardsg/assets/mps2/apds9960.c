/* See apds9960.h. sim_vectors.h is laid out per build by the harness. */
#include "apds9960.h"

#include "sim_vectors.h"

static int begun;
static int next;

int apds9960_begin(void) {
  begun = 1;
  return 1;
}

int apds9960_read_color(int *r, int *g, int *b, int *c) {
  if (!begun || next >= SIM_VECTOR_COUNT) return 0;
  *r = sim_vectors[next][0];
  *g = sim_vectors[next][1];
  *b = sim_vectors[next][2];
  *c = sim_vectors[next][3];
  next++;
  return 1;
}
