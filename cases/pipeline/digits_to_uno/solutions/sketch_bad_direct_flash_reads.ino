// Indexes the PROGMEM arrays like RAM: on the AVR that reads RAM at the flash addresses.
#include <avr/pgmspace.h>
#include <avr/sleep.h>

#include "digits_model.h"
#include "digits_images.h"

static int classify(int index) {
  uint8_t pixels[64];
  for (int i = 0; i < 64; i++) pixels[i] = digits_images[index][i];
  float hidden[80];
  for (int j = 0; j < 80; j++) {
    // integer dot product of the int8 weights with the 0..16 pixels, then the scale and the / 16 once
    int32_t dot = 0;
    for (int i = 0; i < 64; i++) dot += digits_w1[i][j] * (int16_t)pixels[i];
    const float sum = dot * (digits_s1[j] / 16.0f) + digits_b1[j];
    hidden[j] = sum > 0.0f ? sum : 0.0f;
  }
  int best = 0;
  float best_score = 0.0f;
  for (int k = 0; k < 10; k++) {
    float sum = 0.0f;
    for (int j = 0; j < 80; j++) sum += hidden[j] * digits_w2[j][k];
    const float score = sum * digits_s2[k] + digits_b2[k];
    if (k == 0 || score > best_score) {
      best = k;
      best_score = score;
    }
  }
  return best;
}

void setup() {
  Serial.begin(9600);
  for (int n = 0; n < DIGITS_IMAGE_COUNT; n++) {
    Serial.print("class: ");
    Serial.println(classify(n));
  }
  Serial.flush();
  cli();
  sleep_enable();
  sleep_cpu();
}

void loop() {}
