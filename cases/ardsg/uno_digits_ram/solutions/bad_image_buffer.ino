// Keeps the weights in flash but first copies every image into one global RAM buffer:
// 1,280 bytes more of globals, over the Uno's budget (it still links and runs).
#include <avr/pgmspace.h>
#include <avr/sleep.h>

#define DIGITS_ROM PROGMEM
#include "digits_cnn_weights.h"
#include "digits_images.h"

static float pooled[3][3][8];
static uint8_t images[DIGITS_IMAGE_COUNT][64];

static void classify(int index) {
  float pixels[64];
  for (int p = 0; p < 64; p++) pixels[p] = images[index][p] / 16.0f;
  for (int r = 0; r < 3; r++) {
    for (int c = 0; c < 3; c++) {
      for (int f = 0; f < 8; f++) {
        float best = 0.0f;  // relu outputs are >= 0, so 0 is a safe start for the max
        for (int dr = 0; dr < 2; dr++) {
          for (int dc = 0; dc < 2; dc++) {
            const int row = 2 * r + dr, col = 2 * c + dc;
            float acc = pgm_read_float(&DIGITS_CONV_B[f]);
            for (int i = 0; i < 3; i++) {
              for (int j = 0; j < 3; j++) {
                acc += pixels[(row + i) * 8 + col + j] * pgm_read_float(&DIGITS_CONV_W[i][j][f]);
              }
            }
            if (acc > best) best = acc;
          }
        }
        pooled[r][c][f] = best;
      }
    }
  }
  int digit = 0;
  float top = 0.0f;
  for (int d = 0; d < 10; d++) {
    float score = pgm_read_float(&DIGITS_DENSE_B[d]);
    for (int k = 0; k < 72; k++) score += pooled[k / 24][(k / 8) % 3][k % 8] * pgm_read_float(&DIGITS_DENSE_W[k][d]);
    if (d == 0 || score > top) {
      top = score;
      digit = d;
    }
  }
  Serial.print("class: ");
  Serial.println(digit);
}

void setup() {
  Serial.begin(9600);
  memcpy_P(images, digits_images, sizeof(images));
  for (int i = 0; i < DIGITS_IMAGE_COUNT; i++) classify(i);
  Serial.flush();
  cli();
  sleep_enable();
  sleep_cpu();
}

void loop() {}
