// Reads columns 1..3 (green, blue, clear) as the colour channels.
#include <avr/sleep.h>

#include "fruit_model.h"
#include "sim_vectors.h"

const char *const CLASS_NAMES[] = {"apple", "banana", "orange"};

void setup() {
  Serial.begin(9600);
  for (int i = 0; i < SIM_VECTOR_COUNT; i++) {
    const float features[3] = {sim_vectors[i][1] / 255.0f, sim_vectors[i][2] / 255.0f, sim_vectors[i][3] / 255.0f};
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
