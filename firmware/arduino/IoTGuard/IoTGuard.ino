// IoT-Guard device for the ESP8266: joins a cluster head, then listens for
// peers (M2) and/or talks to one (M1) with encrypted M2M messages, speaking
// docs/PROTOCOL.md through the portable core in src/iotguard (copied from
// firmware/src by `make -C firmware arduino`). Serial at 115200 baud shows
// what happens; the LED blinks once per message.
//
// Board: esp8266:esp8266 (e.g. "LOLIN(WEMOS) D1 R2 & mini" or "Generic
// ESP8266 Module"), CPU 80 or 160 MHz. See firmware/README.md.
#include <errno.h>

#include <ESP8266WiFi.h>
#include <LittleFS.h>
#include <StackThunk.h>
#include <WiFiUdp.h>
#include <time.h>

#include "config.h"

extern "C" {
#include "src/iotguard/iog_device.h"
}

static WiFiUDP udp;
static iog_platform_t plat;
static iog_device_t dev;  // about 8 KB: keep it static, never on the stack
static iog_addr_t peer_addr;
static iog_id_t peer_id;
static iog_m2m_t *session;
static uint32_t last_send;

// ---- platform hooks over WiFiUDP, millis() and the hardware RNG ----

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
    delay(1);  // lets the Wi-Fi stack run
  } while (millis() - start < timeout_ms);
  return -ETIMEDOUT;
}

static uint32_t esp_now(void *) { return millis(); }

static int esp_random(void *, uint8_t *buf, size_t len) {
  ESP.random(buf, len);  // the hardware RNG
  return 0;
}

static uint64_t esp_unix(void *) {
  time_t t = time(nullptr);
  return t > 1600000000 ? (uint64_t)t : 0;  // 0: no clock yet
}

// ---- persistence: identity and sequence number in LittleFS ----

static int hexval(char c) {
  return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

static bool load_identity(iog_identity_t *me) {
  File f = LittleFS.open("/iotguard.key", "r");
  if (!f) return false;
  String hex = f.readStringUntil('\n');
  f.close();
  if (hex.length() != 64) return false;
  for (int i = 0; i < 32; i++) me->priv[i] = hexval(hex[2 * i]) << 4 | hexval(hex[2 * i + 1]);
  return iog_p256_public(me->priv, me->pub) == 0;
}

static void save_identity(const iog_identity_t *me) {
  File f = LittleFS.open("/iotguard.key", "w");
  for (int i = 0; i < 32; i++) f.printf("%02x", me->priv[i]);
  f.print('\n');
  f.close();
}

// Called before each protected request: the sequence number must never repeat
// for one K_m. This sketch rejoins after every boot (a new K_m), so keeping
// the counter in RAM is enough; a device that keeps its membership across
// reboots must write dev.mem.seq to flash here.
static int persist(void *, const iog_device_t *) { return 0; }

static void blink() {
  digitalWrite(IOG_LED_PIN, LOW);
  delay(30);
  digitalWrite(IOG_LED_PIN, HIGH);
}

static size_t on_message(void *, const iog_id_t *from, const uint8_t *msg, size_t len,
                         uint8_t *reply, size_t cap) {
  Serial.printf("message from %s: %.*s\n", from->s, (int)len, (const char *)msg);
  blink();
  const char ack[] = "ok";
  size_t n = sizeof(ack) - 1 < cap ? sizeof(ack) - 1 : cap;
  memcpy(reply, ack, n);
  return n;
}

static void on_warning(void *, const iog_id_t *from, const char *why) {
  Serial.printf("WARNING: refused %s: %s\n", from->s, why);
}

static bool parse_ip(const char *s, uint16_t port, iog_addr_t *a) {
  IPAddress ip;
  if (!ip.fromString(s)) return false;
  memset(a, 0, sizeof(*a));
  a->family = 2;
  for (int i = 0; i < 4; i++) a->ip[i] = ip[i];
  a->port = port;
  return true;
}

void setup() {
  Serial.begin(115200);
  pinMode(IOG_LED_PIN, OUTPUT);
  digitalWrite(IOG_LED_PIN, HIGH);
  Serial.println("\nIoT-Guard device " IOG_DEVICE_ID);

  WiFi.mode(WIFI_STA);
  WiFi.begin(IOG_WIFI_SSID, IOG_WIFI_PASS);
  while (WiFi.status() != WL_CONNECTED) delay(200);
  Serial.printf("Wi-Fi up: %s\n", WiFi.localIP().toString().c_str());
  configTime(0, 0, IOG_NTP_SERVER);

  stack_thunk_add_ref();  // BearSSL's stack for the P-256 operations
  LittleFS.begin();
  udp.begin(IOG_LISTEN_PORT);
  plat = {nullptr, esp_send, esp_recv, esp_now, esp_random, esp_unix};

  iog_identity_t me;
  if (iog_id_set(&me.id, IOG_DEVICE_ID, strlen(IOG_DEVICE_ID))) {
    Serial.println("bad IOG_DEVICE_ID");
    for (;;) delay(1000);
  }
  if (!load_identity(&me)) {
    Serial.println("generating a P-256 key...");
    iog_p256_keygen(&plat, me.priv, me.pub);
    save_identity(&me);
  }
  iog_addr_t ch;
  parse_ip(IOG_CH_HOST, IOG_CH_PORT, &ch);
  iog_device_init(&dev, &plat, &ch, &me);
  dev.persist = persist;
  dev.on_message = on_message;
  dev.on_warning = on_warning;
  if (strlen(IOG_CH_PIN) == 64) {
    for (int i = 0; i < 32; i++) dev.pin[i] = hexval(IOG_CH_PIN[2 * i]) << 4 | hexval(IOG_CH_PIN[2 * i + 1]);
    dev.has_pin = 1;
  }
  if (!esp_unix(nullptr)) Serial.println("no NTP time yet: ticket expiry is not checked");

  for (;;) {
    uint32_t t0 = millis();
    int e = iog_device_join(&dev, IOG_LAT_UDEG, IOG_LON_UDEG);
    if (e == 0) {
      Serial.printf("joined %s in block %u (%u ms)\n", dev.mem.ch.cluster.s,
                    (unsigned)dev.mem.height, (unsigned)(millis() - t0));
      break;
    }
    Serial.printf("join failed: %d %u.%02u %s; retrying in 10 s\n", e, dev.code >> 5,
                  dev.code & 31, dev.diag);
    delay(10000);
  }
  if (strlen(IOG_PEER_ID)) {
    iog_id_set(&peer_id, IOG_PEER_ID, strlen(IOG_PEER_ID));
    parse_ip(IOG_PEER_HOST, IOG_PEER_PORT, &peer_addr);
  }
}

void loop() {
  iog_device_serve(&dev, 50);  // answers /talk and /m2m (M2)
  if (!strlen(IOG_PEER_ID) || millis() - last_send < IOG_SEND_EVERY_MS) return;
  last_send = millis();
  if (!session || !session->active) {
    int e = iog_device_talk(&dev, &peer_addr, &peer_id, &session);
    if (e) {
      Serial.printf("talk to %s refused: %u.%02u %s\n", peer_id.s, dev.code >> 5, dev.code & 31,
                    dev.diag);
      session = nullptr;
      return;
    }
  }
  char msg[48];
  int n = snprintf(msg, sizeof(msg), "uptime %lu s, heap %u", millis() / 1000, ESP.getFreeHeap());
  uint8_t reply[64];
  int r = iog_device_send(&dev, session, &peer_addr, (const uint8_t *)msg, n, reply, sizeof(reply));
  if (r < 0) {
    Serial.printf("send failed: %d %s\n", r, dev.diag);
    session = nullptr;  // expired or refused: talk again next time
    return;
  }
  Serial.printf("sent \"%s\", reply \"%.*s\"\n", msg, r, (const char *)reply);
  blink();
}
