// IoT-Guard ESP8266 sketch: configuration. Edit before flashing.
#pragma once

// Wi-Fi
#define IOG_WIFI_SSID "my-network"
#define IOG_WIFI_PASS "my-password"

// This device: its ID (1-64 bytes of [A-Za-z0-9._-]) and position in
// microdegrees (48.858370 N, 2.294481 E -> 48858370, 2294481). The cluster
// head refuses joins outside its radius.
#define IOG_DEVICE_ID "esp-01"
#define IOG_LAT_UDEG 48858370
#define IOG_LON_UDEG 2294481

// The cluster head (iotguard serve --listen 0.0.0.0:5683 on the LAN).
#define IOG_CH_HOST "192.168.1.10"
#define IOG_CH_PORT 5683
// Optional pin: the CH key thumbprint (64 hex digits) as printed by
// `iotguard serve` ("ch_key_thumbprint=..."). Empty: trust on first use.
#define IOG_CH_PIN ""

// UDP port for this device's /talk and /m2m.
#define IOG_LISTEN_PORT 5700

// Role. Empty IOG_PEER_ID: only listen (M2). Otherwise also talk to that
// peer (M1) every IOG_SEND_EVERY_MS with a reading.
#define IOG_PEER_ID ""
#define IOG_PEER_HOST "192.168.1.21"
#define IOG_PEER_PORT 5700
#define IOG_SEND_EVERY_MS 10000

// NTP for ticket and session expiry checks (PROTOCOL.md §4.4). Without a
// clock (0) the device skips the expiry check and says so on the serial port.
#define IOG_NTP_SERVER "pool.ntp.org"

// Status LED (active low on most ESP-12 boards).
#define IOG_LED_PIN LED_BUILTIN
