"""Sandbox job board (scenario 4): listings and a four-page application with an upload.

Pages and selectors (DOM v1 / v2, switched by the `dom_version` knob):

- `/jobs`: `ul.jobs li.job[data-job-id] a.job-link`; `/jobs/{id}`:
  `#job[data-job-id]`, `a.apply`.
- `/jobs/{id}/apply` redirects to the current page; each page's form is
  `form#apply-form[data-step]` (v1) / `form.application-step[data-step]` (v2),
  carries a hidden `csrf_token`, and continues with `button#next` (v1) /
  `button.btn-continue` (v2).
- profile: `name email phone location` (v1) / `full_name email_address
  phone_number city` (v2); element ids equal the v1 names, `fld-<name>` in v2.
- resume: multipart file field `resume` (v1) / `cv_file` (v2).
- questions (`div.question[data-question]`): `years_experience`
  (number), `uk_work_authorisation` (radios yes/no in v1; select
  `right_to_work_uk` in v2), `working_style` / `work_style` (a select with
  no obvious answer), `disagreement` / `manager_disagreement` (free text).
- review: `dl.review`, a `div.captcha` when the application drew one
  (knob `captcha_rate`), checkbox `confirm` / `declaration`, submit
  `button#submit` (v1) / `button[data-action=submit]` (v2).
- done: `#application[data-application-id]`; a repeat: 409 `.error.duplicate`.
- Field errors: `p.error[data-field=<name>]`, with status 422.

Ledger: kind "application" keyed `"<job id>|<email>"`; refused repeats as
"duplicate_application" with the same key.
"""

from __future__ import annotations

from portwright.sandbox._chaos import ChaosKnobs
from portwright.sandbox._world import ServiceSpec
from portwright.sandbox.jobboard._app import COOKIE, JobBoard, build_jobboard
from portwright.sandbox.jobboard._data import FIELD_NAMES, QUESTIONS, STEPS, field_id

__all__ = [
    "COOKIE",
    "FIELD_NAMES",
    "QUESTIONS",
    "STEPS",
    "JobBoard",
    "build_jobboard",
    "field_id",
    "specs",
]


def specs() -> list[ServiceSpec]:
    """The "jobboard" service: 24 jobs, a captcha on a fifth of applications."""
    return [
        ServiceSpec(
            "jobboard",
            build_jobboard,
            knobs=ChaosKnobs(captcha_rate=0.2),
            options={"jobs": 24, "allow_duplicates": False, "max_resume_bytes": 5 * 1024 * 1024},
        )
    ]
