// Feeds the raw 0..255 readings to the network instead of reading / 255.
#include <avr/sleep.h>

#include "fruit_model.h"
#include "readings.h"

const char *const CLASS_NAMES[] = {"apple", "banana", "orange"};

int classify(const float features[3]) {
  float hidden[8];
  for (int j = 0; j < 8; j++) {
    float sum = fruit_b1[j];
    for (int i = 0; i < 3; i++) sum += features[i] * fruit_w1[i][j];
    hidden[j] = sum > 0 ? sum : 0;
  }
  int best = 0;
  float best_score = 0;
  for (int k = 0; k < 3; k++) {
    float score = fruit_b2[k];
    for (int j = 0; j < 8; j++) score += hidden[j] * fruit_w2[j][k];
    if (k == 0 || score > best_score) {
      best = k;
      best_score = score;
    }
  }
  return best;
}

void setup() {
  Serial.begin(9600);
  for (int i = 0; i < READING_COUNT; i++) {
    const float features[3] = {(float)READINGS[i][0], (float)READINGS[i][1], (float)READINGS[i][2]};
    Serial.print("class: ");
    Serial.println(CLASS_NAMES[classify(features)]);
  }
  Serial.flush();
  cli();
  sleep_enable();
  sleep_cpu();
}

void loop() {}
