/*
 * SimAPDS9960: the public API of the Arduino_APDS9960 library (same header name, class,
 * methods and global APDS object) backed by compiled-in test readings instead of the I2C
 * chip. Part of pytest-autopilot's ArdSG cases; written for the harness, not a copy of the
 * Arduino library. Header-only (nothing to compile per build but the sketch), so include it
 * from the sketch only.
 *
 * Behaviour, per reading of sim_vectors.h (laid out next to this file by the harness):
 *   begin()               -> true (must be called first, as with the real sensor)
 *   colorAvailable()      -> 1 while readings are left, else 0
 *   readColor(r,g,b[,c])  -> the next reading (0..255 counts, c = clear channel), true;
 *                            false and nothing stored once the readings are used up
 *   proximityAvailable()  -> 1;  readProximity() -> 0 (an object is close) until the
 *                            readings are used up, then 255
 *   gestureAvailable()    -> 0;  readGesture() -> GESTURE_NONE
 * When the sketch asks for data after the last reading was taken (or before begin()), the
 * library waits SIM_GRACE_MS of simulated time for output still being printed, then
 * flushes Serial and stops the CPU: under simavr that ends the simulation cleanly
 * ("sleeping with interrupts off"); on a real board the CPU just sleeps.
 */
#ifndef ARDUINO_APDS9960
#define ARDUINO_APDS9960
#define SIM_APDS9960 1

#include <Arduino.h>

#if defined(__AVR__)
#include <avr/interrupt.h>
#include <avr/pgmspace.h>
#include <avr/sleep.h>
#define SIM_ROM PROGMEM
#define SIM_VALUE(i, j) ((int)pgm_read_word(&sim_vectors[(i)][(j)]))
#else
#define SIM_ROM
#define SIM_VALUE(i, j) ((int)sim_vectors[(i)][(j)])
#endif

#include "sim_vectors.h"

#ifndef SIM_GRACE_MS
#define SIM_GRACE_MS 250UL /* simulated time left for printing after the last reading */
#endif
#ifndef SIM_MAX_IDLE_POLLS
#define SIM_MAX_IDLE_POLLS 200000UL /* polls without data before stopping, if millis() stands still */
#endif

enum {
  GESTURE_NONE = -1,
  GESTURE_UP = 0,
  GESTURE_DOWN = 1,
  GESTURE_LEFT = 2,
  GESTURE_RIGHT = 3
};

class APDS9960 {
public:
  APDS9960() : _begun(false), _present(false), _idle(false), _next(0), _idleSince(0), _idlePolls(0) {}

  bool begin() {
    _begun = true;
    return true;
  }
  void end() { _begun = false; }

  int gestureAvailable() { return 0; }
  int readGesture() { return GESTURE_NONE; }

  int colorAvailable() {
    if (_begun && _next < SIM_VECTOR_COUNT) return 1;
    noData();
    return 0;
  }

  bool readColor(int& r, int& g, int& b, int& c) {
    if (!_begun || _next >= SIM_VECTOR_COUNT) {
      noData();
      return false;
    }
    r = SIM_VALUE(_next, 0);
    g = SIM_VALUE(_next, 1);
    b = SIM_VALUE(_next, 2);
    c = SIM_VALUE(_next, 3);
    _next++;
    _present = true;
    return true;
  }

  bool readColor(int& r, int& g, int& b) {
    int c;
    return readColor(r, g, b, c);
  }

  int proximityAvailable() { return _begun ? 1 : 0; }
  int readProximity() {
    if (!_begun) return -1;
    return (_present || _next < SIM_VECTOR_COUNT) ? 0 : 255;
  }

  void setGestureSensitivity(uint8_t) {}
  void setInterruptPin(int) {}
  bool setLEDBoost(uint8_t) { return true; }

  /* simulation only: readings taken so far, and how many there are */
  int simReadingsTaken() const { return _next; }
  int simReadingsTotal() const { return SIM_VECTOR_COUNT; }

private:
  bool _begun;
  bool _present;
  bool _idle;
  int _next;
  unsigned long _idleSince;
  unsigned long _idlePolls;

  void noData() {
    _present = false;
    unsigned long now = millis();
    if (!_idle) {
      _idle = true;
      _idleSince = now;
    }
    if (now - _idleSince >= SIM_GRACE_MS || ++_idlePolls >= SIM_MAX_IDLE_POLLS) {
      simEnd();
    }
  }

  static void simEnd() {
    Serial.flush();
#if defined(__AVR__)
    cli();
    sleep_enable();
    sleep_cpu();
#endif
    for (;;) {
    }
  }
};

static APDS9960 APDS;

#endif
