#!/usr/bin/env python3
"""elf-hide.py OBJ HIDDEN [WEAK]: in the ELF64 relocatable object OBJ, in
place, give every defined global symbol named in the file HIDDEN (one per
line) hidden visibility, and make those named in WEAK weak. Used by
xen/core-archive.sh: libxl's internal functions are `_hidden` in Xen's
libxl (the rest of libxl links to them, the .so does not export them), and
our two test operations that Xen's libxenlight_test.so also defines yield
to Xen's there; a Rust staticlib cannot say either itself."""
import struct
import sys

STV_HIDDEN = 2
STB_GLOBAL = 1
STB_WEAK = 2
SHT_SYMTAB = 2


def names_in(path):
    return {l.strip() for l in open(path) if l.strip()} if path else set()


def main(obj, hidden_file, weak_file=None):
    hidden = names_in(hidden_file)
    weak = names_in(weak_file)
    names = hidden | weak
    data = bytearray(open(obj, 'rb').read())
    if data[:4] != b'\x7fELF' or data[4] != 2 or data[5] != 1:
        sys.exit(f"{obj}: not a little-endian ELF64 object")
    shoff, = struct.unpack_from('<Q', data, 0x28)
    shentsize, shnum = struct.unpack_from('<HH', data, 0x3A)
    sections = [struct.unpack_from('<IIQQQQIIQQ', data, shoff + i * shentsize) for i in range(shnum)]
    done = set()
    for sh in sections:
        if sh[1] != SHT_SYMTAB:
            continue
        off, size, link, entsize = sh[4], sh[5], sh[6], sh[9]
        stroff = sections[link][4]
        for i in range(size // entsize):
            at = off + i * entsize
            st_name, st_info, st_other, st_shndx = struct.unpack_from('<IBBH', data, at)
            if st_shndx == 0 or (st_info >> 4) != STB_GLOBAL:  # undefined, or not GLOBAL
                continue
            end = data.index(b'\0', stroff + st_name)
            name = data[stroff + st_name:end].decode()
            if name in hidden:
                data[at + 5] = (st_other & ~3) | STV_HIDDEN
            if name in weak:
                data[at + 4] = (STB_WEAK << 4) | (st_info & 0xF)
            if name in names:
                done.add(name)
    missing = names - done
    if missing:
        sys.exit(f"{obj}: no such global symbols: {' '.join(sorted(missing))}")
    open(obj, 'wb').write(data)


if __name__ == '__main__':
    main(*sys.argv[1:])
