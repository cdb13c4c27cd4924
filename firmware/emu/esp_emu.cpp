// Emulator-only additions to the ESP8266 core 3.1.2 host emulator (tests/host),
// compiled with USERCXXSOURCES by `make -C firmware emu`. It lives outside the
// sketch folder so that the Arduino IDE never compiles it.
//
// The emulator's MockEsp.cpp lacks what the sketch uses here:
//  - ESP.random(buf, len): on the chip it reads RANDOM_REG32; here getrandom().
//  - RTC user memory (512 bytes that survive deep sleep and resets, not power
//    loss): here the file "rtcmem" in the working directory.
//  - ESP.deepSleep(us): here the program prints "sleep N ms" on stderr,
//    leaves the file "deep-sleep" and stops cleanly (flash is saved);
//    starting it again is the wake-up.
//  - ESP.getResetInfoPtr(): the reset reason of this start, as the chip
//    reports it: REASON_DEEP_SLEEP_AWAKE when the last run ended in
//    ESP.deepSleep() (its file, removed at the start), else
//    REASON_EXT_SYS_RST (remove the file to reset the board during its sleep).
#include <Arduino.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <unistd.h>
#include <user_interface.h>

extern bool user_exit;
extern struct rst_info resetInfo;  // MockEsp.cpp's, zero until set here

static const char sleep_file[] = "deep-sleep";

__attribute__((constructor)) static void reset_reason()
{
    resetInfo.reason = unlink(sleep_file) == 0 ? REASON_DEEP_SLEEP_AWAKE : REASON_EXT_SYS_RST;
}

struct rst_info *EspClass::getResetInfoPtr()
{
    return &resetInfo;
}

uint8_t *EspClass::random(uint8_t *buf, const size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = getrandom(buf + done, len - done, 0);
        if (n <= 0) {
            abort();  // no entropy: never go on with predictable keys
        }
        done += (size_t)n;
    }
    return buf;
}

static const char rtc_file[] = "rtcmem";

bool EspClass::rtcUserMemoryRead(uint32_t offset, uint32_t *data, size_t size)
{
    if (offset * 4 + size > 512 || size % 4) {
        return false;
    }
    memset(data, 0xff, size);  // a cold start: the file does not exist yet
    int fd = open(rtc_file, O_RDONLY);
    if (fd >= 0) {
        (void)pread(fd, data, size, offset * 4);
        close(fd);
    }
    return true;
}

bool EspClass::rtcUserMemoryWrite(uint32_t offset, uint32_t *data, size_t size)
{
    if (offset * 4 + size > 512 || size % 4) {
        return false;
    }
    int fd = open(rtc_file, O_WRONLY | O_CREAT, 0600);
    if (fd < 0) {
        return false;
    }
    bool ok = pwrite(fd, data, size, offset * 4) == (ssize_t)size;
    close(fd);
    return ok;
}

void EspClass::deepSleep(uint64_t time_us, RFMode)
{
    fprintf(stderr, "emu: deep sleep %llu ms: stopping (start again to wake)\n",
            (unsigned long long)(time_us / 1000));
    fflush(stdout);
    int fd = open(sleep_file, O_WRONLY | O_CREAT, 0600);
    if (fd >= 0) {
        close(fd);
    }
    exit(0);  // atexit(cleanup) saves the emulated flash
}
