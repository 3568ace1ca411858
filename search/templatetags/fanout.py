"""Fanout's template filters and tags: `{% load fanout %}`.

- `or_dash`: a number formatted, or "–" when there is none: `{{ search.speedup|or_dash:"2×" }}`.
- `sort_link`: a column header that sorts the table, or reverses it when already sorted by that column.
"""

from __future__ import annotations

import re
from typing import Any

from django import template
from django.template.defaultfilters import floatformat, stringformat
from django.utils.html import format_html
from django.utils.safestring import SafeString

register = template.Library()

DASH = "–"
_SPEC = re.compile(r"(?P<format>-?\d+|%|\.\d+g|)(?P<suffix>.*)", re.DOTALL)


def _percent(value: Any) -> str:
    """`value` × 100 rounded to a whole number, as `{% widthratio value 1 100 %}` renders it."""
    try:
        return str(round(float(value) / 1.0 * 100))
    except (ValueError, TypeError, OverflowError):
        return ""


@register.filter
def or_dash(value: Any, spec: str | int = "") -> str:
    """`value` formatted by `spec` and followed by the rest of `spec`, or "–" when `value` is None (or a
    variable that does not resolve, which filters receive as "").

    `spec` starts with the format: decimals as for `floatformat` ("4", "0"), "%" for a whole percentage
    (as `widthratio value 1 100`), ".3g" as for `stringformat`, or nothing (the value as it is); what follows
    is appended: "2 s" gives "1.50 s", "2×" gives "3.10×", "%" gives "85%"."""
    if value is None or value == "":
        return DASH
    match = _SPEC.fullmatch(str(spec))
    assert match is not None  # the format may be empty, so every spec matches
    fmt, suffix = match["format"], match["suffix"]
    if fmt == "%":
        text = _percent(value) + "%"
    elif fmt.startswith("."):
        text = str(stringformat(value, fmt))
    elif fmt:
        text = str(floatformat(value, int(fmt)))
    else:
        text = str(value)
    return text + suffix


def _reversed(key: str) -> str:
    return key[1:] if key.startswith("-") else f"-{key}"


@register.simple_tag
def sort_link(current: str, key: str, label: str, query: str = "", data: bool = False) -> SafeString:
    """`<a href="?{query}sort={key}">{label}</a>`, with the key reversed when the table is already sorted by
    `key` (`current`); `query` keeps the other parameters ("status=done&"), `data` adds `data-sort` for the
    page's script."""
    target = _reversed(key) if current == key else key
    attrs = format_html(' data-sort="{}"', target) if data else ""
    return format_html('<a href="?{}sort={}"{}>{}</a>', query, target, attrs, label)
