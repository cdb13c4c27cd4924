#!/usr/bin/env python3
"""Prints one line per image, `text=N data=N bss=N file`, for the lx106 build.

text = code (iram + flash), data = initialised RAM (.data and .rodata, which
the ESP8266 keeps in DRAM), bss = zeroed RAM. Static RAM is data + bss.
The firmware image is also split by origin using the linker map: the core
(libiotguard.a) and BearSSL (libbearssl.a), each as `image:part`.

usage: size.py MAP FILE...   (FILE: .elf images or .a archives)
"""
import re
import subprocess
import sys

SIZE = "xtensa-lx106-elf-size"
OUT_CLASS = {".iram.text": "text", ".irom0.text": "text", ".qemu_reset": "text",
             ".data": "data", ".rodata": "data", ".bss": "bss"}


def classify(sec):
    if sec.startswith((".text", ".literal", ".iram", ".irom")):
        return "text"
    if sec.startswith((".data", ".rodata", ".sdata", ".srodata")):
        return "data"
    if sec.startswith((".bss", ".sbss", "COMMON")):
        return "bss"
    return None


def sections(path):
    out = subprocess.run([SIZE, "-A", path], check=True, capture_output=True, text=True).stdout
    tot = {"text": 0, "data": 0, "bss": 0}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 2 or not parts[1].isdigit():
            continue
        name = parts[0]
        cls = OUT_CLASS.get(name) if path.endswith(".elf") else classify(name)
        if cls:
            tot[cls] += int(parts[1])
    return tot


def split_map(path):
    parts = {}
    cur = None
    pending = None
    with open(path) as f:
        lines = f.read().splitlines()
    for line in lines:
        m = re.match(r"^(\.\S+)\s+0x[0-9a-f]+\s+0x[0-9a-f]+", line)
        if m or re.match(r"^\.\S+\s*$", line):
            name = line.split()[0]
            cur = OUT_CLASS.get(name)
            pending = None
            continue
        if cur is None:
            continue
        toks = line.split()
        if pending is not None and toks and toks[0].startswith("0x"):
            toks = [pending] + toks
        pending = None
        if len(toks) == 1 and line.startswith(" ") and (toks[0].startswith(".") or toks[0] == "COMMON"):
            pending = toks[0]
            continue
        if len(toks) >= 4 and toks[1].startswith("0x") and toks[2].startswith("0x") and \
                line.startswith(" ") and not line.startswith(" *"):
            size = int(toks[2], 16)
            src = " ".join(toks[3:])
            if "libbearssl.a" in src:
                who = "bearssl"
            elif "libiotguard.a" in src:
                who = "core"
            else:
                who = "app+libc+libgcc"
            parts.setdefault(who, {"text": 0, "data": 0, "bss": 0})[cur] += size
    return parts


def line(t, name):
    print(f"text={t['text']} data={t['data']} bss={t['bss']} {name}")


def main():
    mapfile, files = sys.argv[1], sys.argv[2:]
    for f in files:
        line(sections(f), f)
        if f.endswith("iotguard-core.elf"):
            parts = split_map(mapfile)
            for who in ("core", "bearssl", "app+libc+libgcc"):
                if who in parts:
                    line(parts[who], f"{f}:{who}")


main()
