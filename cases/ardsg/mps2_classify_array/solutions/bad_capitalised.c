/* Prints capitalised class names. */
#include <stdio.h>

#include "fruit_model.h"
#include "sim_vectors.h"

static const char *const CLASS_NAMES[] = {"Apple", "Banana", "Orange"};

int main(void) {
  for (int i = 0; i < SIM_VECTOR_COUNT; i++) {
    const float features[3] = {sim_vectors[i][0] / 255.0f, sim_vectors[i][1] / 255.0f, sim_vectors[i][2] / 255.0f};
    const int32_t label = fruit_model_predict(features, 3);
    printf("Class: %s\n", (label >= 0 && label < 3) ? CLASS_NAMES[label] : "unknown");
  }
  return 0;
}
