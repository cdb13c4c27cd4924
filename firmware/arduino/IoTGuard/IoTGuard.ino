// IoT-Guard board for the ESP8266: set it up on the serial console (115200
// baud, one command per line, `help`), and it joins the cluster head once,
// keeps its membership, key and sequence numbers in flash across reboots,
// answers peers on its own /talk and /m2m, and talks to them on command; in
// sleepy mode it wakes, sends one sealed reading and deep-sleeps. All of that
// is the portable core in src/iotguard (copied from firmware/src by `make -C
// firmware arduino`); this file plugs in Wi-Fi, WiFiUDP, LittleFS, RTC
// memory, the hardware RNG, the watchdog and Serial. See firmware/README.md.
//
// Board: esp8266:esp8266 (e.g. "LOLIN(WEMOS) D1 R2 & mini" or "Generic
// ESP8266 Module"), CPU 80 or 160 MHz, a flash layout with a filesystem.
// Deep sleep needs GPIO16 (D0) wired to RST.
#include <errno.h>

#include <ESP8266WiFi.h>
#include <LittleFS.h>
#include <StackThunk.h>
#include <WiFiUdp.h>

#include "config.h"

extern "C" {
#include "src/iotguard/iog_console.h"
}

static WiFiUDP udp;
static iog_platform_t plat;
static iog_rng_t rng;
static iog_board_t board;  // about 10 KB: static, never on the stack
static uint32_t heap_min = 0xFFFFFFFF;

// ---- platform hooks: WiFiUDP, millis(), the RNG, the watchdog ----

static int esp_send(void *, const iog_addr_t *to, const uint8_t *buf, size_t len) {
  IPAddress ip(to->ip[0], to->ip[1], to->ip[2], to->ip[3]);
  if (!udp.beginPacket(ip, to->port)) return -EIO;
  udp.write(buf, len);
  return udp.endPacket() ? 0 : -EIO;
}

static int esp_recv(void *, iog_addr_t *from, uint8_t *buf, size_t cap, uint32_t timeout_ms) {
  uint32_t start = millis();
  do {
    int n = udp.parsePacket();
    if (n > 0) {
      if ((size_t)n > cap) {
        udp.flush();
        return -EMSGSIZE;
      }
      udp.read(buf, n);
      IPAddress ip = udp.remoteIP();
      memset(from, 0, sizeof(*from));
      from->family = 2;
      for (int i = 0; i < 4; i++) from->ip[i] = ip[i];
      from->port = udp.remotePort();
      return n;
    }
    delay(1);  // lets the Wi-Fi stack run and feeds the watchdog
  } while (millis() - start < timeout_ms);
  return -ETIMEDOUT;
}

static uint32_t esp_now(void *) { return millis(); }

// HMAC-DRBG seeded from the hardware RNG: ESP.random() reads RANDOM_REG32
// (Wi-Fi on: RF noise) at a rate the core keeps below 0.5 MHz; one more
// register sample is mixed in before every draw.
static int esp_random(void *, uint8_t *buf, size_t len) {
  if (!rng.seeded) {
    uint8_t seed[64];
    ESP.random(seed, sizeof(seed));
    iog_rng_mix(&rng, seed, sizeof(seed));
    iog_wipe(seed, sizeof(seed));
  }
  uint32_t r = RANDOM_REG32;
  iog_rng_mix(&rng, &r, sizeof(r));
  return iog_rng_fill(&rng, buf, len);
}

// No RTC and no NTP: the board keeps the cluster head's signed time.
static uint64_t esp_unix(void *) { return 0; }

// Between the P-256 operations of a join (0.2-0.4 s each at 80 MHz):
// yield() runs the Wi-Fi stack and feeds the software watchdog.
static void esp_yield(void *) { yield(); }

// ---- storage: LittleFS files for the flash records, RTC memory for the RTC one ----

static_assert(IOG_RTC_BLOCK * 4 + 4 + IOG_STORE_RTC_MAX <= 512, "the largest RTC record must fit");

static void rec_name(unsigned rec, char *p) { snprintf(p, 12, "/iog/%u", rec); }

static int st_read(void *, unsigned rec, uint8_t *buf, size_t cap) {
  if (rec == IOG_REC_RTC) {
    uint32_t w[1 + IOG_STORE_FRAME_MAX / 4];
    if (!ESP.rtcUserMemoryRead(IOG_RTC_BLOCK, w, 4)) return -EIO;
    if (w[0] == 0 || w[0] > cap || w[0] > sizeof(w) - 4 ||
        IOG_RTC_BLOCK * 4 + 4 + w[0] > 512) return -ENOENT;  // power-on garbage fails the check later
    if (!ESP.rtcUserMemoryRead(IOG_RTC_BLOCK, w, (4 + w[0] + 3) & ~3u)) return -EIO;
    memcpy(buf, w + 1, w[0]);
    return (int)w[0];
  }
  char name[12];
  rec_name(rec, name);
  File f = LittleFS.open(name, "r");
  if (!f) return -ENOENT;
  int n = f.read(buf, cap);
  f.close();
  return n < 0 ? -EIO : n;
}

static int st_write(void *, unsigned rec, const uint8_t *buf, size_t len) {
  if (rec == IOG_REC_RTC) {
    uint32_t w[1 + IOG_STORE_FRAME_MAX / 4];
    if (len > sizeof(w) - 4 || IOG_RTC_BLOCK * 4 + 4 + len > 512) return -ENOSPC;
    w[0] = len;
    memcpy(w + 1, buf, len);
    return ESP.rtcUserMemoryWrite(IOG_RTC_BLOCK, w, (4 + len + 3) & ~3u) ? 0 : -EIO;
  }
  char name[12];
  rec_name(rec, name);
  if (len == 0) {
    return !LittleFS.exists(name) || LittleFS.remove(name) ? 0 : -EIO;
  }
  // LittleFS replaces a file atomically when it is closed: a reset in
  // between leaves the old record
  File f = LittleFS.open(name, "w");
  if (!f) return -ENOSPC;
  size_t n = f.write(buf, len);
  f.close();
  return n == len ? 0 : -ENOSPC;
}

static const iog_storage_t storage = {nullptr, st_read, st_write};

// ---- console hooks ----

static void out(void *, const char *line) { Serial.println(line); }

static void mem(void *, iog_mem_t *m) {
  m->heap_free = ESP.getFreeHeap();
  m->heap_min = heap_min < m->heap_free ? heap_min : m->heap_free;
  m->stack_free = ESP.getFreeContStack();           // painted stack: its low-water mark
  m->bearssl_stack = stack_thunk_get_max_usage();   // BearSSL's own stack, most used
}

static void deep_sleep(void *, uint32_t ms) {
  Serial.flush();
  ESP.deepSleep((uint64_t)ms * 1000);  // wakes through RST (GPIO16 wired to it)
}

static void restart(void *) {
  Serial.flush();
  ESP.restart();
}

// Why this start: only the deep-sleep timer's wake-up (REASON_DEEP_SLEEP_AWAKE)
// adds the planned sleep to the board's clock; a reset during the sleep does not.
static int reset_reason(void *) { return (int)ESP.getResetInfoPtr()->reason; }

static const iog_board_hooks_t hooks = {nullptr, out, mem, deep_sleep, restart, reset_reason};

static void console() {
  while (Serial.available()) {
    char c = (char)Serial.read();
    iog_board_input(&board, &c, 1);
  }
}

static bool wifi_up() {
  if (!board.set.ssid[0]) {
    Serial.println("error wifi not configured: set wifi.ssid S, set wifi.pass P, then reboot");
    return false;
  }
  WiFi.mode(WIFI_STA);
  WiFi.begin(board.set.ssid, board.set.pass);
  uint32_t t0 = millis();
  while (WiFi.status() != WL_CONNECTED && millis() - t0 < IOG_WIFI_WAIT_MS) {
    console();  // a wrong passphrase can be fixed meanwhile
    delay(100);
  }
  if (WiFi.status() != WL_CONNECTED) {
    Serial.printf("error wifi: no connection to %s (set wifi.ssid / wifi.pass, then reboot)\n",
                  board.set.ssid);
    return false;
  }
  Serial.printf("ok wifi %s address %s\n", board.set.ssid, WiFi.localIP().toString().c_str());
  return true;
}

void setup() {
  Serial.begin(IOG_CONSOLE_BAUD);
  pinMode(IOG_LED_PIN, OUTPUT);
  digitalWrite(IOG_LED_PIN, HIGH);
  Serial.println();
  LittleFS.begin();         // formats an empty filesystem on first use
  stack_thunk_add_ref();    // BearSSL's separate stack for the P-256 operations
  plat = {nullptr, esp_send, esp_recv, esp_now, esp_random, esp_unix, esp_yield};
  iog_board_init(&board, &plat, &storage, &hooks);
  bool net = wifi_up();
  udp.begin(board.set.port);
  Serial.printf("ok iotguard board %s on port %u (type help)\n", board.dev.me.id.s, board.set.port);
  if (net) iog_board_start(&board);
  if (board.set.mode == IOG_MODE_SLEEPY) {
    uint32_t t0 = millis();
    while (!Serial.available() && millis() - t0 < IOG_SLEEPY_GRACE_MS) delay(5);
    if (Serial.available()) {
      Serial.println("ok staying awake in the console (set mode console, or reboot to sleep again)");
      return;
    }
    char msg[48];
    int n = snprintf(msg, sizeof(msg), "wake %u heap %u", (unsigned)board.wakes, ESP.getFreeHeap());
    iog_board_wake(&board, (const uint8_t *)msg, (size_t)n);  // deep-sleeps
  }
}

void loop() {
  console();
  unsigned before = board.dev.messages;
  iog_board_poll(&board, 2);  // answers /talk and /m2m; joins when one is due
  if (board.dev.messages != before) {
    digitalWrite(IOG_LED_PIN, LOW);
    delay(30);
    digitalWrite(IOG_LED_PIN, HIGH);
  }
  uint32_t h = ESP.getFreeHeap();
  if (h < heap_min) heap_min = h;
}
