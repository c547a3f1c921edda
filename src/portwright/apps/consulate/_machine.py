"""The 20-state booking machine of scenario 1."""

from __future__ import annotations

from portwright.sdk import StateMachine

__all__ = ["BOOKING"]

BOOKING = StateMachine.build(
    "booking",
    initial="INIT",
    transitions={
        "INIT": ["VALIDATING"],
        "VALIDATING": ["QUEUED", "AWAITING_USER_SIGNUP"],
        "AWAITING_USER_SIGNUP": ["VALIDATING", "EXPIRED"],
        "QUEUED": ["LOGGING_IN"],
        "LOGGING_IN": ["SCANNING", "AWAITING_USER_SIGNUP"],
        "SCANNING": ["SLOT_FOUND", "LOGGING_IN", "EXPIRED"],
        "SLOT_FOUND": ["HOLDING", "SCANNING"],
        "HOLDING": ["OTP_REQUIRED", "SCANNING"],
        "OTP_REQUIRED": ["OTP_SUBMITTED", "SCANNING"],
        "OTP_SUBMITTED": ["PAYMENT_REQUIRED", "OTP_REQUIRED", "SCANNING"],
        "PAYMENT_REQUIRED": ["PAYMENT_PENDING", "SCANNING"],
        "PAYMENT_PENDING": ["CONFIRMING", "PAYMENT_REQUIRED", "SCANNING"],
        "CONFIRMING": ["CONFIRMED", "SCANNING"],
        "OPERATOR_ACTION_REQUIRED": [],
        "COOLDOWN": [],
        "RETRY_WAIT": [],
    },
    terminal={
        "CONFIRMED": "succeeded",
        "FAILED": "failed",
        "CANCELLED": "cancelled",
        "EXPIRED": "failed",
    },
    success="CONFIRMED",
    waiting=["AWAITING_USER_SIGNUP", "OTP_REQUIRED", "PAYMENT_PENDING"],
)
