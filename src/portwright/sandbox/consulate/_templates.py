"""The consulate's pages, as Jinja2 templates kept in code.

Markup depends on the DOM version (chaos knob `dom_version`): v1 puts the CSRF
token in each form's hidden `csrf` input; v2 puts it in
`<meta name="csrf-token">` and leaves the forms' `csrf` inputs empty for a
script to fill, renames the login and hold forms, and lists slots as
`ul.slot-list li.slot-item` instead of `table#slots tr.slot`.
"""

from __future__ import annotations

from typing import Any

from jinja2 import DictLoader, Environment, StrictUndefined

__all__ = ["render"]

_BASE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{% if v2 %}<meta name="csrf-token" content="{{ csrf }}">{% endif %}
{% block head %}{% endblock %}
<title>{{ title }} · Sandbox Consulate</title>
<style>
body { font-family: system-ui, sans-serif; margin: 0; background: #f6f5f1; color: #1f2328; }
header { background: #20364f; color: #fff; padding: .6rem 1rem; display: flex; gap: 1rem;
  align-items: center; }
header a { color: #fff; text-decoration: none; font-weight: 600; }
header .who { margin-left: auto; }
main { max-width: 52rem; margin: 1.5rem auto; background: #fff; padding: 1.2rem 1.6rem;
  border: 1px solid #d8d4c8; }
.error { color: #a40e26; font-weight: 600; }
.notice { color: #1a6334; }
label { display: block; margin: .5rem 0; }
table { border-collapse: collapse; width: 100%; }
td, th { border-bottom: 1px solid #e4e0d4; padding: .3rem .5rem; text-align: left; }
.captcha svg { display: block; margin: .3rem 0; }
</style>
</head>
<body class="dom-v{{ version }}">
<header><a href="/">Sandbox Consulate</a>
{% if email %}<a href="/appointments">Appointments</a><a href="/bookings">My bookings</a>
<span class="who">{{ email }}</span>
<form id="logout-form" method="post" action="/logout">{{ csrf_input() }}
<button type="submit">Sign out</button></form>{% endif %}
</header>
<main>
{% if error %}<p class="error">{{ error }}</p>{% endif %}
{% if notice %}<p class="notice">{{ notice }}</p>{% endif %}
{% block main %}{% endblock %}
</main>
{% if v2 %}<script>
document.querySelectorAll("input[data-csrf]").forEach(function (input) {
  input.value = document.querySelector('meta[name="csrf-token"]').content;
});
</script>{% endif %}
</body>
</html>
"""

_IMPORT = '{% from "macros" import csrf_input with context %}'

_MACROS = """{% macro csrf_input() -%}
{% if v2 %}<input type="hidden" name="csrf" value="" data-csrf>{% else -%}
<input type="hidden" name="csrf" value="{{ csrf }}">{% endif %}
{%- endmacro %}"""

_LOGIN = """{% extends "base" %}{% from "macros" import csrf_input with context %}
{% block main %}
<h1>Sign in</h1>
{% if v2 %}<div class="auth-card">{% endif %}
<form id="{{ 'auth-form' if v2 else 'login-form' }}" method="post" action="/login">
{{ csrf_input() }}
<input type="hidden" name="next" value="{{ next }}">
<label>Email <input type="email" name="email" value="{{ form_email }}" required></label>
<label>Password <input type="password" name="password" required></label>
{% if captcha %}{{ captcha | safe }}{% endif %}
<button type="submit">Sign in</button>
</form>
{% if v2 %}</div>{% endif %}
<p>No account? <a href="/register">Register</a>.</p>
{% endblock %}"""

_REGISTER = """{% extends "base" %}{% from "macros" import csrf_input with context %}
{% block main %}
{% if registered %}
<h1 id="registered" data-email="{{ registered }}">Account created</h1>
<p>You can now <a href="/login">sign in</a> as {{ registered }}.</p>
{% else %}
<h1>Register</h1>
<form id="register-form" method="post" action="/register">
<label>Email <input type="email" name="email" required></label>
<label>Password <input type="password" name="password" required></label>
<button type="submit">Create account</button>
</form>
{% endif %}
{% endblock %}"""

_APPOINTMENTS = """{% extends "base" %}{% from "macros" import csrf_input with context %}
{% block main %}
<h1>Appointments</h1>
<form id="search-form" method="get" action="/appointments">
<label>Center <select name="center">{% for c in centers %}
<option value="{{ c }}"{% if c == center %} selected{% endif %}>{{ c }}</option>{% endfor %}
</select></label>
<label>Visa type <select name="visa">{% for v in visas %}
<option value="{{ v }}"{% if v == visa %} selected{% endif %}>{{ v }}</option>{% endfor %}
</select></label>
<button type="submit">Search</button>
</form>
<section class="calendar" data-center="{{ center }}" data-visa="{{ visa }}">
{% if portal_now is not none %}<p id="portal-clock" data-now="{{ '%.3f' % portal_now }}">
Portal time {{ portal_now | int }}</p>{% endif %}
{% if v2 %}
<form id="slot-reservation" method="post" action="/appointments/hold">
{{ csrf_input() }}
<label>Your reference <input type="text" name="client_reference"></label>
{% if slots %}<ul class="slot-list">{% for s in slots %}
<li class="slot-item" data-id="{{ s.id }}"><span class="when">{{ s.when_text }}</span>
<span class="where">{{ s.center }} · {{ s.visa }}</span>
<button type="submit" name="slot_id" value="{{ s.id }}">Reserve</button></li>{% endfor %}
</ul>{% else %}<p class="no-slots">No appointments are available right now.</p>{% endif %}
</form>
{% else %}
<form id="hold-form" method="post" action="/appointments/hold">
{{ csrf_input() }}
<label>Your reference <input type="text" name="client_reference"></label>
{% if slots %}<table id="slots"><thead><tr><th>Date</th><th>Center</th><th>Visa</th><th></th>
</tr></thead><tbody>{% for s in slots %}
<tr class="slot" data-slot-id="{{ s.id }}"><td class="date">{{ s.when_text }}</td>
<td class="center">{{ s.center }}</td><td class="visa">{{ s.visa }}</td>
<td><button type="submit" name="slot_id" value="{{ s.id }}">Hold</button></td></tr>{% endfor %}
</tbody></table>{% else %}<p class="no-slots">No appointments are available right now.</p>
{% endif %}
</form>
{% endif %}
</section>
{% endblock %}"""

_HOLD = """{% extends "base" %}{% from "macros" import csrf_input with context %}
{% block main %}
<h1>Slot held</h1>
<div id="hold" data-hold-id="{{ hold.id }}" data-slot-id="{{ hold.slot.id }}"
 data-state="{{ hold.state }}" data-client-reference="{{ hold.client_reference }}">
<p>{{ hold.slot.center }} · {{ hold.slot.visa }} · <span class="when">{{ hold.slot.when_text
}}</span></p>
<p>Held until <span id="hold-expires" data-expires-at="{{ expires_at }}"
 data-expires-in="{{ expires_in }}">{{ expires_text }}</span>
 ({{ expires_in }} s left).</p>
</div>
{% if hold.state == "held" %}
<p>We sent a one-time code to {{ hold.email }}.</p>
<form id="otp-form" method="post" action="/appointments/hold/{{ hold.id }}/otp">
{{ csrf_input() }}
<label>One-time code <input type="text" name="code" inputmode="numeric" autocomplete="one-time-code"
 pattern="[0-9]{6}" required></label>
<button type="submit">Verify</button>
</form>
<form id="resend-form" method="post" action="/appointments/hold/{{ hold.id }}/resend">
{{ csrf_input() }}<button type="submit">Send a new code</button></form>
{% elif hold.payment_id %}
<p><a id="payment-link" href="/payments/{{ hold.payment_id }}">Go to payment</a></p>
{% endif %}
{% endblock %}"""

_PAYMENT = """{% extends "base" %}{% from "macros" import csrf_input with context %}
{% block head %}{% if payment.status == "pending" %}
<meta http-equiv="refresh" content="1;url=/payments/{{ payment.id }}">{% endif %}{% endblock %}
{% block main %}
<h1>Payment</h1>
<div id="payment" data-payment-id="{{ payment.id }}" data-hold-id="{{ payment.hold_id }}"
 data-amount="{{ payment.amount }}" data-currency="{{ payment.currency }}">
<p>Amount: <span id="amount">{{ payment.currency }} {{ amount_text }}</span></p>
<p>Status: <span id="payment-status">{{ payment.status }}</span></p>
</div>
{% if payment.status == "pending" %}<p class="processing">Processing your payment…</p>{% endif %}
{% if payment.status in ("requires_payment", "failed") and not hold_expired %}
<form id="pay-form" method="post" action="/payments/{{ payment.id }}/pay">
{{ csrf_input() }}
<label>Card number <input type="text" name="card_number" inputmode="numeric"
 autocomplete="cc-number" required></label>
<button type="submit">Pay</button>
</form>
{% endif %}
{% if payment.status == "succeeded" and owner %}
<form id="confirm-form" method="post" action="/appointments/confirm">
{{ csrf_input() }}
<input type="hidden" name="hold_id" value="{{ payment.hold_id }}">
<button type="submit">Confirm booking</button>
</form>
{% endif %}
{% endblock %}"""

_CONFIRMATION = """{% extends "base" %}{% from "macros" import csrf_input with context %}
{% block main %}
<h1>Booking confirmed</h1>
<div id="confirmation" data-reference="{{ booking.reference }}" data-hold-id="{{ booking.hold_id }}"
 data-client-reference="{{ booking.client_reference }}">
<p>Your reference: <strong class="reference">{{ booking.reference }}</strong></p>
<p>{{ booking.center }} · {{ booking.visa }} · <span class="when">{{ booking.when }}</span></p>
</div>
{% endblock %}"""

_BOOKINGS = """{% extends "base" %}{% from "macros" import csrf_input with context %}
{% block main %}
<h1>My bookings</h1>
{% if bookings %}<ul id="bookings">{% for b in bookings %}
<li class="booking" data-reference="{{ b.reference }}" data-client-reference="{{ b.client_reference
}}" data-hold-id="{{ b.hold_id }}" data-slot-id="{{ b.slot_id }}">
<span class="reference">{{ b.reference }}</span> · {{ b.center }} · {{ b.visa }} ·
<span class="when">{{ b.when }}</span></li>{% endfor %}</ul>
{% else %}<p class="no-bookings">No bookings.</p>{% endif %}
{% endblock %}"""

_MESSAGE = """{% extends "base" %}{% from "macros" import csrf_input with context %}
{% block main %}<h1>{{ title }}</h1>{% if link %}<p><a href="{{ link }}">Continue</a></p>{% endif %}
{% endblock %}"""

_ENV = Environment(
    loader=DictLoader(
        {
            "macros": _MACROS,
            "base": _IMPORT + _BASE,
            "login": _LOGIN,
            "register": _REGISTER,
            "appointments": _APPOINTMENTS,
            "hold": _HOLD,
            "payment": _PAYMENT,
            "confirmation": _CONFIRMATION,
            "bookings": _BOOKINGS,
            "message": _MESSAGE,
        }
    ),
    autoescape=True,
    undefined=StrictUndefined,
)


def render(name: str, *, version: int, csrf: str, **context: Any) -> str:
    """Render page `name`; `version` is the DOM version, `csrf` the session's token."""
    defaults: dict[str, Any] = {"error": None, "notice": None, "email": None, "title": name}
    return _ENV.get_template(name).render(
        defaults | context, v2=version == 2, version=version, csrf=csrf
    )
