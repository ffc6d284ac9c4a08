// The same classification through the class probabilities, done once from loop().
#include <avr/sleep.h>

#include "fruit_model.h"
#include "sim_vectors.h"

static bool done = false;

static const char *className(int index) {
  switch (index) {
    case 0: return "apple";
    case 1: return "banana";
    default: return "orange";
  }
}

void setup() { Serial.begin(9600); }

void loop() {
  if (done) return;
  for (int i = 0; i < SIM_VECTOR_COUNT; i++) {
    float features[3];
    for (int j = 0; j < 3; j++) features[j] = (float)sim_vectors[i][j] / 255.0f;
    float probabilities[3];
    eml_net_predict_proba(&fruit_model, features, 3, probabilities, 3);
    int best = 0;
    for (int k = 1; k < 3; k++) {
      if (probabilities[k] > probabilities[best]) best = k;
    }
    Serial.print("class: ");
    Serial.println(className(best));
  }
  done = true;
  Serial.flush();
  cli();
  sleep_enable();
  sleep_cpu();
}
