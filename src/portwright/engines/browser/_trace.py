"""One Playwright trace per job, grown a step at a time.

Each browser step records its own trace (its context closes with the step);
`merge_trace` appends that chunk to the job's trace zip under the next
ordinal (`1-trace.trace`, `2-trace.trace`, …, with their `.network` and
`.stacks` files; `resources/` and `screencast/` entries, uniquely named,
kept as they are). Playwright's trace viewer loads every ordinal of one zip,
so the job replays as one trace. Secrets are masked in every text entry
before the chunk is stored (screencast frames are images and stay as shot;
password fields render as dots there).
"""

from __future__ import annotations

import io
import re
import zipfile

from portwright.engines.browser._evidence import Masker

__all__ = ["merge_trace", "trace_ordinals"]

_ORDINAL = re.compile(r"^(\d+)-trace\.trace$")
_TEXT_SUFFIXES = (".trace", ".network", ".stacks", ".html", ".json", ".css", ".js", ".txt")


def trace_ordinals(trace: bytes) -> list[int]:
    """The step ordinals a job trace holds, in order."""
    with zipfile.ZipFile(io.BytesIO(trace)) as archive:
        found = (_ORDINAL.match(name) for name in archive.namelist())
        return sorted(int(m.group(1)) for m in found if m)


def merge_trace(job_trace: bytes | None, chunk: bytes, masker: Masker | None = None) -> bytes:
    """`job_trace` with `chunk` (one context's trace zip) appended as the next ordinal."""
    masker = masker or Masker()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as merged:
        names: set[str] = set()
        ordinal = 1
        if job_trace:
            with zipfile.ZipFile(io.BytesIO(job_trace)) as previous:
                for info in previous.infolist():
                    merged.writestr(info, previous.read(info))
                    names.add(info.filename)
            ordinal = max(trace_ordinals(job_trace), default=0) + 1
        with zipfile.ZipFile(io.BytesIO(chunk)) as part:
            for info in part.infolist():
                name = info.filename
                if "/" in name:
                    # resources/<sha1>, screencast/<page>-<time>.jpeg: unique names, shared
                    if name in names:
                        continue
                    target = name
                else:
                    target = f"{ordinal}-{name.split('-')[-1]}"
                data = part.read(info)
                if masker.secrets and name.endswith(_TEXT_SUFFIXES):
                    data = masker.data(data)
                merged.writestr(target, data)
                names.add(target)
    return out.getvalue()
