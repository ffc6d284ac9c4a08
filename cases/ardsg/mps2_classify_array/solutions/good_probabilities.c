/* The same classification through the class probabilities, printed with fputs/puts. */
#include <stdio.h>

#include "fruit_model.h"
#include "sim_vectors.h"

int main(void) {
  static const char *names[3] = {"apple", "banana", "orange"};
  for (unsigned i = 0; i < SIM_VECTOR_COUNT; ++i) {
    float x[3], p[3];
    for (int j = 0; j < 3; ++j) x[j] = (float)sim_vectors[i][j] / 255.0f;
    eml_net_predict_proba(&fruit_model, x, 3, p, 3);
    int best = 0;
    for (int k = 1; k < 3; ++k) {
      if (p[k] > p[best]) best = k;
    }
    fputs("class: ", stdout);
    puts(names[best]);
  }
  return 0;
}
