// IoT-Guard ESP8266 sketch: build-time choices. Everything a user sets per
// board (Wi-Fi, cluster head, ID, position, pin, port, sleepy mode) is set
// on the serial console and kept in flash: see firmware/README.md.
#pragma once

// Serial console speed.
#define IOG_CONSOLE_BAUD 115200

// Status LED (active low on most ESP-12 boards), blinks once per message.
#define IOG_LED_PIN LED_BUILTIN

// How long a sleepy board waits for Wi-Fi before it gives up for this wake.
#define IOG_WIFI_WAIT_MS 15000

// Sleepy mode: how long each wake-up listens for a console line before its
// cycle; a key pressed in that window keeps the board awake in the console.
#define IOG_SLEEPY_GRACE_MS 300

// RTC user memory block (4 bytes each) where the RTC record starts. The
// first 32 blocks are cleared by an OTA update; the record (at most
// IOG_STORE_RTC_MAX = 380 bytes after its 4-byte length) lives above them.
#define IOG_RTC_BLOCK 32
