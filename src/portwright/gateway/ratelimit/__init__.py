"""Rate limiting: per API key and route, and per client address for failed authentication."""

from portwright.gateway.ratelimit._limiter import Decision, RateLimiter, rate_headers
from portwright.gateway.ratelimit._middleware import RateLimitMiddleware, route_template

__all__ = ["Decision", "RateLimitMiddleware", "RateLimiter", "rate_headers", "route_template"]
