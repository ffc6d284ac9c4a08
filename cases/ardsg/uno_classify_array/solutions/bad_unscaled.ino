// Feeds the raw readings to the model (not scaled to 0..1).
#include <avr/sleep.h>

#include "fruit_model.h"
#include "sim_vectors.h"

const char *const CLASS_NAMES[] = {"apple", "banana", "orange"};

void setup() {
  Serial.begin(9600);
  for (int i = 0; i < SIM_VECTOR_COUNT; i++) {
    const float features[3] = {(float)sim_vectors[i][0], (float)sim_vectors[i][1], (float)sim_vectors[i][2]};
    const int32_t label = fruit_model_predict(features, 3);
    Serial.print("class: ");
    Serial.println(label >= 0 && label < 3 ? CLASS_NAMES[label] : "unknown");
  }
  Serial.flush();
  cli();
  sleep_enable();
  sleep_cpu();
}

void loop() {}
