"""RFC 8785 (JSON Canonicalization Scheme) encoding, fast where it can be exact.

msgspec with ``order="sorted"`` already writes JCS for what Frontline stores: ASCII keys,
strings with minimal escaping, integers. It differs from JCS only for floats that JCS writes
another way (integral floats such as ``38.0``, or magnitudes where msgspec switches to
exponents) and for non-ASCII keys, which JCS orders by UTF-16 code units. Such values take
the exact path below; ``tests/unit/test_canonical.py`` checks both paths against the reference
implementation.
"""

from __future__ import annotations

import math
from typing import Any

import msgspec

_encode_sorted = msgspec.json.Encoder(order="sorted").encode


def _fast_path_ok(value: Any) -> bool:
    if isinstance(value, dict):
        return all(k.isascii() and _fast_path_ok(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_fast_path_ok(v) for v in value)
    if isinstance(value, float):
        return _float_ok(value)
    return True


def _es6_number(value: float) -> str:
    """A float as ECMAScript's Number.prototype.toString writes it (RFC 8785 section 3.2.2.3)."""
    if not math.isfinite(value):
        raise ValueError("JSON has no NaN or Infinity")
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    mantissa, _, exponent_text = repr(abs(value)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0")
    # Where the decimal point falls in `digits`: shortest round-trip digits, as ES6 wants.
    point = len(whole) + int(exponent_text or 0) - (len(whole + fraction) - len(digits))
    digits = digits.rstrip("0")
    if 0 < point <= 21:
        if len(digits) <= point:
            return sign + digits + "0" * (point - len(digits))
        return sign + digits[:point] + "." + digits[point:]
    if -6 < point <= 0:
        return sign + "0." + "0" * (-point) + digits
    exp = point - 1
    head = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{sign}{head}e{'+' if exp > 0 else '-'}{abs(exp)}"


def _exact(value: Any) -> str:
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda kv: kv[0].encode("utf-16-be"))
        return "{" + ",".join(_exact(k) + ":" + _exact(v) for k, v in items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_exact(v) for v in value) + "]"
    if isinstance(value, float):
        return _es6_number(value)
    return _encode_sorted(value).decode()


def canonical_struct(value: msgspec.Struct, floats: tuple[float | None, ...]) -> bytes:
    """RFC 8785 bytes of a contract struct, encoded straight from the struct.

    The contract's field names are ASCII, so JCS differs from msgspec's sorted output only
    through floats; ``floats`` lists every float the struct holds (a caller that knows its
    schema names them), and any that msgspec would write otherwise than JCS sends the struct
    down the exact path.
    """
    if all(f is None or _float_ok(f) for f in floats):
        return _encode_sorted(value)
    return canonical_json(msgspec.to_builtins(value))


def _float_ok(value: float) -> bool:
    return math.isfinite(value) and not value.is_integer() and 1e-4 <= abs(value) < 1e15


def canonical_json(value: Any) -> bytes:
    """Encode JSON builtins (dict, list, str, int, float, bool, None) as RFC 8785 bytes."""
    if _fast_path_ok(value):
        return _encode_sorted(value)
    return _exact(value).encode()
