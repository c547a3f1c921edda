"""curl_cffi's `Curl.setopt` and `Curl.getinfo` without their per-call Python overhead.

Each request curl_cffi sends sets ~17 options and reads ~15 infos, and each of those
calls rebuilds a few dicts and, for a string option, a set of 14 options (Windows file
paths) before the one C call that matters (in a profile of a batch, `Curl.setopt` and
`Curl.getinfo` took ~8% of the worker's samples). `lean(curl)` makes one handle answer
the common calls from tables built once: a number (`long`, `curl_off_t`) or string
option (CAINFO noted as set, as curl_cffi notes it), the body and header buffers
(`WRITEDATA`, `HEADERDATA`: curl_cffi's buffer callback, its context kept on the
handle), the header and resolve lists (`HTTPHEADER`, `RESOLVE`: appended to the handle's
own lists, which its cleanup frees), and an info of a string, number, size or time,
with the very C calls, conversions and error checks curl_cffi's methods make; every
other call (other callbacks and lists, POSTFIELDS' reference, Windows) goes to
curl_cffi's own method.

Guarded: the tables follow curl_cffi 0.17's `Curl` (`FITS`); another version, or a `Curl`
without what they rely on (its handle attribute, its error check, the C functions), keeps
its own methods (`lean` leaves the handle as it is).

`lean_response` is curl_cffi 0.17's `BaseSession._parse_response` for the HTTP rungs'
session, which reads of a response only its status, headers (Location, Retry-After, the
charset of Content-Type), Set-Cookie cookies and body: those are read as curl_cffi reads
them; the ~12 infos nobody reads (addresses, ports, sizes, timings, the effective URL,
curl's own redirect history and next URL: the rungs follow redirects themselves) are left
at `Response`'s defaults. A session that keeps cookies, or asks for infos of its own,
parses its own way.
"""

from __future__ import annotations

import functools
import http.cookies
import re
import sys
from collections.abc import Callable
from importlib.metadata import version
from io import BytesIO
from typing import Any

__all__ = ["FITS", "lean", "lean_class", "lean_response"]

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
        from curl_cffi.curl import (  # type: ignore[attr-defined]  # `Curl`'s own
            _CallbackContext,
            ffi,
            lib,
        )
    except ImportError:  # pragma: no cover - curl_cffi is a dependency
        return None
    if not version("curl_cffi").startswith(FITS):
        return None
    needed: tuple[str, ...] = ("setopt", "getinfo", "_check_error", "_curl")
    needed += ("_write_handle", "_header_handle", "_headers", "_resolve", "_is_cert_set")
    functions = ("_curl_easy_setopt", "curl_easy_getinfo", "curl_slist_append")
    probe = Curl()
    try:
        if not all(hasattr(probe, name) for name in needed):
            return None
        if not all(hasattr(lib, f) for f in (*functions, "buffer_callback")):
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
    # the buffers: the handle's attribute keeping the callback's context, the callback option
    buffers = {
        int(CurlOpt.WRITEDATA): ("_write_handle", CurlOpt.WRITEFUNCTION),
        int(CurlOpt.HEADERDATA): ("_header_handle", CurlOpt.HEADERFUNCTION),
    }
    lists = {int(CurlOpt.HTTPHEADER): "_headers", int(CurlOpt.RESOLVE): "_resolve"}
    resolve = int(CurlOpt.RESOLVE)  # its entries may be str (encoded), the headers' not
    cainfo = int(CurlOpt.CAINFO)  # a string curl_cffi notes as set (`_is_cert_set`)
    setopt_c = lib._curl_easy_setopt
    getinfo_c = lib.curl_easy_getinfo
    append = lib.curl_slist_append
    buffer_callback = lib.buffer_callback
    new = ffi.new
    new_handle = ffi.new_handle
    null = ffi.NULL
    # option -> C type of a number, "" a string, "buffer" or "list" (above), None other
    options: dict[int, str | None] = {}
    infos: dict[int, tuple[str, Any] | None] = {}

    def kind_of(option: int) -> str | None:
        number = int(option)
        if number in buffers:
            return "buffer"
        if number in lists:
            return "list"
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
            if kind == "buffer":  # as curl_cffi: its buffer callback, the context kept
                attribute, function = buffers[option]
                c_value = new_handle(_CallbackContext(value))
                setattr(self, attribute, c_value)
                setopt_c(self._curl, function, buffer_callback)
            elif kind == "list":  # as curl_cffi: appended to the handle's own list
                attribute = lists[option]
                c_value = getattr(self, attribute)
                for item in value:
                    if option == resolve and isinstance(item, str):
                        item = item.encode()  # noqa: PLW2901 - as curl_cffi
                    c_value = append(c_value, item)
                setattr(self, attribute, c_value)
            elif kind:
                c_value = new(kind, value)
            else:
                c_value = value.encode() if isinstance(value, str) else value
            ret: int = setopt_c(self._curl, option, c_value)
            self._check_error(ret, "setopt", option, value)
            if option == cainfo:
                self._is_cert_set = True
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


class _Names:
    """curl_cffi's names a lean GET uses, imported once (an import statement in a function
    costs ~0.3-1.2 µs a call, and a GET ran seven)."""

    __slots__ = (
        "CurlError",
        "CurlInfo",
        "CurlOpt",
        "Headers",
        "ImpersonateError",
        "code2error",
        "requote_uri",
    )

    def __init__(self) -> None:
        from curl_cffi import CurlError, CurlInfo, CurlOpt
        from curl_cffi.requests import Headers
        from curl_cffi.requests.exceptions import ImpersonateError, code2error
        from curl_cffi.requests.utils import requote_uri

        self.CurlError = CurlError
        self.CurlInfo = CurlInfo
        self.CurlOpt = CurlOpt
        self.Headers = Headers
        self.ImpersonateError = ImpersonateError
        self.code2error = code2error
        self.requote_uri = requote_uri


@functools.cache
def _names() -> _Names:
    return _Names()


def lean_response(
    session: Any, curl: Any, buffer: BytesIO, header_buffer: BytesIO, default_encoding: Any
) -> Any:
    """`session._parse_response(…)` (curl_cffi 0.17) of a session that discards cookies and
    reads no infos of its own, without the infos nobody reads (see the module docstring),
    nor the effective URL: the rungs follow redirects themselves (curl follows none), so
    they know the URL each response answers; `url` stays `Response`'s empty default.
    Only for a curl_cffi that `FITS`."""
    names = _names()

    rsp = session.response_class(curl)  # its `url` left empty: see the docstring
    if buffer:
        rsp.content = buffer.getvalue()
    status = rsp.status_code = curl.getinfo(names.CurlInfo.RESPONSE_CODE)
    rsp.ok = 200 <= status < 400
    # the headers of the transfer's last response with a status, as curl_cffi picks them
    header_list: list[bytes] = []
    status_line = b""
    header_status = 0
    last: tuple[bytes, list[bytes]] | None = None
    for line in header_buffer.getvalue().splitlines():
        if not line.strip():
            continue
        if line.startswith(b"HTTP/"):
            if header_status:
                last = (status_line, header_list)
            try:
                header_status = int(line.split(maxsplit=2)[1])
            except (IndexError, ValueError):
                header_status = 0
            status_line, header_list = line, []
            continue
        if line.startswith((b" ", b"\t")):
            header_list[-1] += line
            continue
        header_list.append(line)
    if header_status:
        last = (status_line, header_list)
    if last is not None:
        rsp.reason = curl.get_reason_phrase(last[0]).decode(errors="replace")
        header_list = last[1]
    # `Headers(header_list)`'s list, built as its constructor builds it from lines of bytes
    # (each split at its first colon: a line without one raises the same ValueError),
    # without its type dispatch (ABC checks) and per-item normalizing calls, which leave
    # bytes as they are: the key, the key lowercased, the value stripped
    headers = rsp.headers = names.Headers()
    pairs = [line.split(b":", maxsplit=1) for line in header_list]
    headers._list = [(k, k.lower(), v.strip()) for k, v in pairs]
    block = b"\n".join(header_list)
    # what `Headers.encoding` finds on its first read (each key and value tried as ASCII);
    # None (as `Headers()` left it): found there, as before
    headers._encoding = "ascii" if block.isascii() else None
    cookies = rsp.cookies  # `Response()` made it: a jar of its own, empty
    # only a response whose header lines hold the name at all can have a Set-Cookie
    has_cookies = b"set-cookie" in block.lower()
    for set_cookie in headers.get_list("set-cookie") if has_cookies else ():
        try:
            cookie = http.cookies.SimpleCookie()
            cookie.load(set_cookie)  # type: ignore[arg-type]  # as curl_cffi: str
            for name, morsel in cookie.items():
                cookies.set(
                    name,
                    morsel.coded_value,
                    domain=morsel.get("domain", ""),
                    path=morsel.get("path", "/"),
                    secure=bool(morsel.get("secure")),
                )
        except Exception:  # noqa: BLE001, S112 - as curl_cffi: a bad cookie is skipped
            continue
    rsp.default_encoding = default_encoding
    return rsp


class LeanPlan:
    """What every lean GET of one session sets the same way (see `lean_plan`)."""

    __slots__ = (
        "base",
        "cainfo",
        "default_headers",
        "http_version",
        "impersonate",
        "lines",
        "max_redirects",
    )

    def __init__(self, session: Any) -> None:
        from curl_cffi.requests.impersonate import resolve_latest_browser_type
        from curl_cffi.requests.utils import normalize_http_version

        self.base = session.headers
        self.lines = header_lines(session.headers, None)  # a GET without headers of its own
        self.max_redirects: int = session.max_redirects
        # the CA bundle curl_cffi took from the environment (REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE)
        self.cainfo: str | None = session.verify if isinstance(session.verify, str) else None
        version = session.http_version
        self.http_version = normalize_http_version(version) if version else None
        target = session.impersonate
        self.impersonate = resolve_latest_browser_type(target) if target else None  # type: ignore[no-untyped-call]
        self.default_headers = session.default_headers


def _fits_lean(session: Any) -> bool:
    """Whether every option of `session` is one `lean_get` sets as curl_cffi would: no base
    URL, parameters, authentication, proxies, certificates, fingerprint strings, extra
    options or interface; the environment ignored; redirects not followed; no retries."""
    from curl_cffi.requests.utils import _is_native_impersonate_target

    target = session.impersonate
    return (
        not (session.base_url or session.params or session.auth or session.proxies)
        and not (session.cert or session.curl_options or session.interface)
        and not (session.dns or session.doh_url or session.raise_for_status)
        and not (session.ja3 or session.akamai or session.perk or session.extra_fp)
        and (session.verify is True or (isinstance(session.verify, str) and session.verify != ""))
        and session.trust_env is False
        and session.allow_redirects is False
        and type(session.max_redirects) is int
        and session.retry.count == 0
        and isinstance(session.default_headers, bool)
        and (target is None or (isinstance(target, str) and _is_native_impersonate_target(target)))
    )


def lean_plan(session: Any) -> LeanPlan | None:
    """The session's `LeanPlan` (built on its first GET), or None when this curl_cffi does
    not fit or the session has an option `lean_get` does not reproduce. The session's
    options are read once: the HTTP rungs never change a session's options."""
    if lean_class() is None:
        return None
    try:
        plan: LeanPlan | None = session._portwright_lean
    except AttributeError:
        plan = session._portwright_lean = LeanPlan(session) if _fits_lean(session) else None
    return plan


def header_lines(base: Any, headers: Any) -> list[bytes]:
    """The HTTPHEADER lines curl_cffi's `set_curl_options` builds for a request without a
    body from the session's headers and the request's (0.17, the same steps)."""
    from curl_cffi.requests import Headers
    from curl_cffi.requests.utils import update_header_line

    encoding = headers.encoding if isinstance(headers, Headers) else None
    h = Headers(base, encoding=encoding)
    h.update(headers)
    lines = []
    for k, v in h.multi_items():
        if v is None:
            lines.append(f"{k}:")
        elif v == "":
            lines.append(f"{k};")
        else:
            lines.append(f"{k}: {v}")
    update_header_line(lines, "Expect", "", replace=True)
    return [line.encode() for line in lines]


# what curl_cffi's `requote_uri` leaves as it is: no percent sign (nothing to unquote) and
# only the characters `urllib.parse.quote` keeps with its `safe` set ("!#$%&'()*+,/:;=?@[]~|"):
# ASCII letters, digits and "_.-~", and those
_AS_QUOTED = re.compile(r"[A-Za-z0-9_.\-~!#$&'()*+,/:;=?@\[\]|]*")


def requoted(url: str, requote_uri: Callable[[str], str]) -> str:
    """`requote_uri(url)` (curl_cffi 0.17's), without its unquote and quote passes (~4 µs)
    for a URL they would give back unchanged (`_AS_QUOTED`): most URLs a rung fetches."""
    if "%" not in url and _AS_QUOTED.fullmatch(url):
        return url
    return requote_uri(url)


def set_get_options(
    curl: Any, plan: LeanPlan, url: str, headers: Any, timeout: float
) -> tuple[BytesIO, BytesIO]:
    """Set on `curl` the options curl_cffi 0.17's `set_curl_options` sets, in its order,
    for a GET without a body, parameters or cookies of its own, on a session that fits
    (`_fits_lean`), not streamed: the body and header buffers."""
    names = _names()
    opt = names.CurlOpt
    requote_uri = names.requote_uri

    c = curl
    c.setopt(opt.URL, requoted(url, requote_uri).encode())
    lines = plan.lines if headers is None else header_lines(plan.base, headers)
    c.setopt(opt.HTTPHEADER, lines)
    c.setopt(opt.COOKIEFILE, b"")
    c.setopt(opt.COOKIELIST, "ALL")
    c.setopt(opt.TIMEOUT_MS, int(timeout * 1000))
    c.setopt(opt.FOLLOWLOCATION, 0)
    c.setopt(opt.MAXREDIRS, plan.max_redirects)
    c.setopt(opt.PROXY, "")
    c.setopt(opt.NOPROXY, "")
    c._skip_cacert = False
    if plan.cainfo is not None:
        c.setopt(opt.CAINFO, plan.cainfo)
        c.setopt(opt.PROXY_CAINFO, plan.cainfo)
    c.setopt(opt.ACCEPT_ENCODING, b"gzip, deflate, br")
    if plan.http_version:
        c.setopt(opt.HTTP_VERSION, plan.http_version)
    impersonate = plan.impersonate
    if impersonate and c.impersonate(impersonate, default_headers=plan.default_headers) != 0:
        raise names.ImpersonateError(f"Impersonating {impersonate} is not supported")
    buffer = BytesIO()
    c.setopt(opt.WRITEDATA, buffer)
    header_buffer = BytesIO()
    c.setopt(opt.HEADERDATA, header_buffer)
    c.setopt(opt.MAX_RECV_SPEED_LARGE, 0)
    return buffer, header_buffer


async def lean_get(session: Any, plan: LeanPlan, url: str, headers: Any, seconds: float) -> Any:
    """`await session.request("GET", url, headers=headers, timeout=seconds,
    discard_cookies=True)` as curl_cffi 0.17's `AsyncSession` sends it (the same handle from
    the pool, the same options, the same errors), with the options set by `set_get_options`
    rather than `set_curl_options`; the response is `session._parse_response`'s, without its
    `request` (the HTTP rungs never read it)."""
    names = _names()

    session._check_session_closed()
    curl = await session.pop_curl()
    try:
        buffer, header_buffer = set_get_options(curl, plan, url, headers, seconds)
    except BaseException:
        session.release_curl(curl)
        raise
    try:
        await session.acurl.add_handle(curl)
    except names.CurlError as e:
        rsp = session._parse_response(curl, buffer, header_buffer, "utf-8", True)
        error = names.code2error(e.code, str(e))  # type: ignore[arg-type]
        raise error(str(e), e.code, rsp) from e
    else:
        return session._parse_response(curl, buffer, header_buffer, "utf-8", True)
    finally:
        session.release_curl(curl)
