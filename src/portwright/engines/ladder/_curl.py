"""curl_cffi's `Curl.setopt` and `Curl.getinfo` without their per-call Python overhead.

Each request curl_cffi sends sets ~17 options and reads ~15 infos, and each of those
calls rebuilds a few dicts and, for a string option, a set of 14 options (Windows file
paths) before the one C call that matters (in a profile of a batch, `Curl.setopt` and
`Curl.getinfo` took ~8% of the worker's samples). `lean(curl)` makes one handle answer
the common calls from tables built once: a number (`long`, `curl_off_t`) or string
option not handled specially, and an info of a string, number, size or time, with the
very C calls, conversions and error checks curl_cffi's methods make; every other call
(callbacks, header and resolve lists, POSTFIELDS' reference, CAINFO's flag, Windows)
goes to curl_cffi's own method.

Guarded: the tables follow curl_cffi 0.17's `Curl` (`FITS`); another version, or a `Curl`
without what they rely on (its handle attribute, its error check, the C functions), keeps
its own methods (`lean` leaves the handle as it is).
"""

from __future__ import annotations

import functools
import sys
from importlib.metadata import version
from typing import Any

__all__ = ["FITS", "lean", "lean_class"]

FITS = ("0.17.",)  # curl_cffi versions whose `Curl.setopt` / `getinfo` the tables follow

_LONG_RANGES = {0: "long*", 30000: "int64_t*"}  # curl's option number ranges, by type
_STRING_RANGE = 10000
# curl's info types (the high bits of an info number): C type, Python conversion
_INFO_TYPES: dict[int, tuple[str, Any]] = {}


@functools.cache
def lean_class() -> type | None:
    """The `Curl` subclass `lean` gives handles, or None when this curl_cffi does not fit."""
    try:
        from curl_cffi import Curl, CurlOpt
        from curl_cffi.curl import ffi, lib  # type: ignore[attr-defined]  # `Curl`'s own
    except ImportError:  # pragma: no cover - curl_cffi is a dependency
        return None
    if not version("curl_cffi").startswith(FITS):
        return None
    needed = ("setopt", "getinfo", "_check_error", "_curl")
    probe = Curl()
    try:
        if not all(hasattr(probe, name) for name in needed):
            return None
        if not all(hasattr(lib, f) for f in ("_curl_easy_setopt", "curl_easy_getinfo")):
            return None
    finally:
        probe.close()
    if sys.platform.startswith("win"):  # curl_cffi encodes file paths its own way there
        return None
    special = {
        getattr(CurlOpt, name)
        for name in (
            "WRITEDATA",
            "HEADERDATA",
            "READDATA",
            "SEEKDATA",
            "POSTFIELDS",  # curl_cffi keeps a reference to the body
            "HTTPHEADER",  # lists: curl_cffi builds an slist
            "HTTP3_HTTPHEADER",
            "WS_HTTPHEADER",
            "PROXYHEADER",
            "RESOLVE",
            "CAINFO",  # curl_cffi notes that a CA file is set
        )
        if hasattr(CurlOpt, name)
    }
    _INFO_TYPES.update(
        {
            0x100000: ("char**", ffi.string),
            0x200000: ("long*", int),
            0x300000: ("double*", float),
            0x600000: ("int64_t*", int),
        }
    )
    setopt_c = lib._curl_easy_setopt
    getinfo_c = lib.curl_easy_getinfo
    new = ffi.new
    null = ffi.NULL
    options: dict[int, str | None] = {}  # option -> C type of a number, "" a string, None other
    infos: dict[int, tuple[str, Any] | None] = {}

    def kind_of(option: int) -> str | None:
        number = int(option)
        if number in special:
            return None
        base = (number // 10000) * 10000
        if base in _LONG_RANGES:
            return _LONG_RANGES[base]
        return "" if base == _STRING_RANGE else None

    class LeanCurl(Curl):
        def setopt(self, option: Any, value: Any) -> int:
            try:
                kind = options[option]
            except KeyError:
                kind = options[option] = kind_of(option)
            if kind is None or self._curl is None:
                return super().setopt(option, value)
            if kind:
                c_value = new(kind, value)
            else:
                c_value = value.encode() if isinstance(value, str) else value
            ret: int = setopt_c(self._curl, option, c_value)
            self._check_error(ret, "setopt", option, value)
            return ret

        def getinfo(self, option: Any) -> Any:
            try:
                spec = infos[option]
            except KeyError:
                spec = infos[option] = _INFO_TYPES.get(int(option) & 0xF00000)
            if spec is None or self._curl is None:
                return super().getinfo(option)
            c_value = new(spec[0])
            ret = getinfo_c(self._curl, option, c_value)
            self._check_error(ret, "getinfo", option)
            if c_value[0] == null:
                return b""
            return spec[1](c_value[0])

    return LeanCurl


def lean(curl: Any) -> Any:
    """`curl` (a curl_cffi `Curl`) made to set options and read infos from the tables above;
    unchanged when this curl_cffi does not fit them."""
    cls = lean_class()
    if isinstance(cls, type) and type(curl) is cls.__bases__[0]:
        curl.__class__ = cls
    return curl
