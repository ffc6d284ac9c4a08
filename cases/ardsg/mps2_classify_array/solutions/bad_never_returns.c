/* Prints every class, then waits forever like an Arduino loop(). */
#include <stdio.h>

#include "fruit_model.h"
#include "sim_vectors.h"

static const char *const CLASS_NAMES[] = {"apple", "banana", "orange"};

int main(void) {
  for (int i = 0; i < SIM_VECTOR_COUNT; i++) {
    const float features[3] = {sim_vectors[i][0] / 255.0f, sim_vectors[i][1] / 255.0f, sim_vectors[i][2] / 255.0f};
    const int32_t label = fruit_model_predict(features, 3);
    printf("class: %s\n", (label >= 0 && label < 3) ? CLASS_NAMES[label] : "unknown");
  }
  while (1) {
  }
  return 0;
}
